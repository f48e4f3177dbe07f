"""Brian2 Synapses -> SynapseGroupIR: connectivity, pathways, summed variables, order.

A :class:`SynapsesDraft` collects the pathways and summed variables of one Synapses while
:func:`.objects.build_network` walks the schedule; :func:`finish_synapses` makes the IR
value. Every pathway carries its own ``order`` (its Brian2 object's rank: Brian2 runs a
Synapses' ``pre`` pathway at ``order=-1`` and its ``post`` pathway at ``+1``, and other
objects of the ``synapses`` slot may come in between); the synapse group's ``order``
places its summed variables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gpuspike.bridge import ir
from gpuspike.bridge.errors import UnsupportedFeature

from .binding import Binding
from .names import ir_name, root_group
from .neurons import state_variables
from .schedule import own_dt
from .translate import Context, TimedArrays, inline_locals, runner_block


@dataclass
class SynapsesDraft:
    """A Synapses being assembled."""

    brian: Any
    name: str
    pre: str
    post: str
    pre_root: Any
    post_root: Any
    i: np.ndarray
    j: np.ndarray
    variables: list[ir.Variable] = field(default_factory=list)
    pathways: list[ir.PathwayIR] = field(default_factory=list)
    #: summed variables with the Brian2 runner each comes from
    summed: list[tuple[ir.SummedVariableIR, Any]] = field(default_factory=list)
    order: int | None = None
    dt: float | None = None  # None: the network's

    def context(self, what: str, timed: TimedArrays, written: frozenset[int]) -> Context:
        """The translation context of code that runs on these synapses."""
        sides = {"_idx": self.brian, "_presynaptic_idx": self.pre_root,
                 "_postsynaptic_idx": self.post_root}
        return Context(what, sides, timed, synaptic=True, written_scalars=written)


def new_synapses(S: Any, pre: str, post: str, binding: Binding,
                 written: frozenset[int]) -> SynapsesDraft:
    """The draft of the Brian2 Synapses ``S`` from the IR population ``pre`` to ``post``,
    with its state variables bound and its connectivity read from Brian2."""
    name = ir_name(S.name)
    draft = SynapsesDraft(
        S, name, pre, post, root_group(S.source), root_group(S.target),
        np.asarray(S.variables["_synaptic_pre"].get_value(), dtype=np.int64),
        np.asarray(S.variables["_synaptic_post"].get_value(), dtype=np.int64),
        state_variables(S, len(S), binding, name, written))
    binding.names[name] = S.name
    return draft


def add_pathway(o: Any, s: SynapsesDraft, dt: float, binding: Binding, timed: TimedArrays,
                written: frozenset[int], order: int) -> None:
    """Brian2's SynapticPathway ``o`` (``on_pre`` / ``on_post``) -> a PathwayIR of ``s``
    at its own place (``order``) in the synapses phase."""
    what = f"{type(o).__name__} {o.name!r}"
    tr, code = runner_block(o, s.context(what, timed, written))
    stmts = tuple(tr.statements(code))
    pw_name = ir_name(o.objname)
    delay = pathway_delay(o, s, pw_name, dt, binding)
    s.pathways.append(ir.PathwayIR(pw_name, stmts, o.prepost, o.event, delay, order=order))
    if s.order is None:
        s.order = order


def add_summed_variable(o: Any, s: SynapsesDraft, dt: float, timed: TimedArrays,
                        written: frozenset[int], order: int) -> None:
    """Brian2's SummedVariableUpdater ``o`` -> a SummedVariableIR of ``s`` (into the
    target's elements only, where the target is a subgroup)."""
    what = f"{type(o).__name__} {o.name!r}"
    target = o.target
    root = root_group(target)
    start = int(getattr(target, "start", 0))
    trange = None if len(target) == len(root) else (start, start + len(target))
    tr, code = runner_block(o, s.context(what, timed, written))
    expr = inline_locals(tr.statements(code), "_synaptic_var")
    side = "post" if o.template_kwds["_index_var"].name == "_synaptic_post" else "pre"
    s.summed.append((ir.SummedVariableIR(o.target_var.name, expr, side, trange),
                     o))
    own = own_dt(o, dt, what)
    if len(s.summed) > 1 and s.dt != own:
        raise UnsupportedFeature(f"{what}: summed variables of one Synapses into "
                                 "groups on different clocks")
    s.dt = own
    s.order = order if len(s.summed) == 1 else min(s.order or order, order)


def order_summed_variables(drafts: list[SynapsesDraft], ranks: dict[int, int],
                           objects: list[Any]) -> None:
    """Run a summed variable into a subgroup that starts at element 0 before the other
    summed variables into the same variable, and refuse it where that cannot help.

    NOTE: engine issue (NumPy printer): the kernel that clears a summed variable's
    ``target_range = (0, stop)`` before summing clears the whole target array (a store at
    index ``elem`` on a smaller element domain). It is harmless when it runs first and
    the other summed variables into that variable cover the rest of the group; else the
    elements outside every range would lose their values. ``ranks`` must be even (a
    moved synapse group takes the odd order just before the first summed variable).
    """
    targets: dict[tuple[str, str], list[tuple[SynapsesDraft, ir.SummedVariableIR, Any]]] = {}
    summed_of = {id(o): (s.post if sv.side == "post" else s.pre, sv)
                 for s in drafts for sv, o in s.summed}
    for s in drafts:
        for sv, o in s.summed:
            group = s.post if sv.side == "post" else s.pre
            targets.setdefault((group, sv.target), []).append((s, sv, o))
    for (_group, var), entries in targets.items():
        first = [e for e in entries if e[1].target_range and e[1].target_range[0] == 0]
        if not first:
            continue
        s0, sv0, o0 = first[0]
        size = len(root_group(o0.target))
        covered = sorted(e[1].target_range or (0, size) for e in entries)
        end = 0
        for lo, hi in covered:
            if lo > end:
                break  # a gap
            end = max(end, hi)
        what = f"{type(o0).__name__} {o0.name!r}"
        if end < size:
            raise UnsupportedFeature(
                f"{what}: a summed variable into a subgroup that starts at element 0 of "
                f"{root_group(o0.target).name!r}, where no other summed variable covers the "
                f"rest of {var!r} (the gpuspike NumPy engine would clear all of it; target "
                "a subgroup that does not start at 0, or the whole group)")
        position = {id(s): k for k, s in enumerate(drafts)}
        key = {id(e[2]): (e[0].order, position[id(e[0])]) for e in entries}
        if key[id(o0)] == min(key.values()):
            continue
        lowest = min(ranks[id(e[2])] for e in entries)
        between = [x for x in objects if lowest <= ranks[id(x)] < ranks[id(o0)]]
        touched = {root_group(g).name for g in (o0.target, s0.pre_root, s0.post_root)}
        if len(s0.summed) > 1 or not all(_swappable(x, (_group, sv0), summed_of, touched)
                                         for x in between):
            raise UnsupportedFeature(
                f"{what}: a summed variable into a subgroup that starts at element 0 must "
                f"run before the other summed variables into {var!r} on the gpuspike "
                "NumPy engine, and other objects run in between (rename the Synapses so "
                "that its name sorts first)")
        # Brian2 runs summed variables into one group at the same (when, order), sorted
        # by name; they write disjoint elements, so running this one first changes nothing
        s0.order = lowest - 1


def _swappable(x: Any, summed: tuple[str, ir.SummedVariableIR],
               summed_of: dict[int, tuple[str, ir.SummedVariableIR]],
               touched: set[str]) -> bool:
    """Whether the summed variable ``summed`` (target group, IR) may run before the
    Brian2 object ``x``: ``x`` is a neuron group's state updater that runs no code or
    touches no variable of the groups the summed variable reads or writes (``touched``:
    their Brian2 names), or another summed variable, into the same variable (other
    elements) or into one that the summed variable does not read and whose expression
    does not read the summed variable's target. Anything else is refused (kept simple:
    the objects in question share one slot and one order, only their names set them
    apart)."""
    from brian2.core.variables import ArrayVariable
    from brian2.groups.neurongroup import StateUpdater

    group, sv = summed
    if id(x) not in summed_of:
        if not isinstance(x, StateUpdater):
            return False
        codeobj = getattr(x, "codeobj", None)
        if codeobj is None:
            return True  # runs nothing
        cap = getattr(codeobj, "_gs_captured", None)
        return cap is not None and not any(
            isinstance(v, ArrayVariable) and getattr(v, "owner", None) is not None
            and root_group(v.owner).name in touched for v in cap.variables.values())
    other_group, other = summed_of[id(x)]
    if (other_group, other.target) == (group, sv.target):
        return True

    def reads(expr: Any, target: str) -> bool:
        return any(s.name.startswith(target) for s in expr.free_symbols)

    return not reads(sv.expr, other.target) and not reads(other.expr, sv.target)


def finish_synapses(s: SynapsesDraft) -> ir.SynapseGroupIR:
    """The IR value of a finished draft."""
    pathways = sorted(s.pathways, key=lambda p: p.source != "pre")
    return ir.SynapseGroupIR(s.name, s.pre, s.post, ir.FromList(s.i, s.j),
                             tuple(s.variables), (), tuple(pathways), (),
                             tuple(sv for sv, _ in s.summed), dt=s.dt, order=s.order or 0)


def pathway_delay(o: Any, s: SynapsesDraft, pw_name: str, dt: float, binding: Binding
                  ) -> ir.Delay:
    """Brian2 rounds delays to steps of the source's clock (``round(delay / dt)``); equal
    delays are homogeneous."""
    values = np.asarray(o._delays.get_value(), dtype=np.float64)
    sdt = float(o.source.clock.dt_)
    steps = np.round(values / sdt).astype(np.int64) * int(round(sdt / dt))
    if o._delays.scalar or steps.size == 0 or np.all(steps == steps[0]):
        return ir.HomogeneousDelay(int(steps[0]) if steps.size else 0)
    var = f"gs_delay_{pw_name}"
    s.variables.append(ir.Variable(var, "int32", batched=False, read_only=True))
    binding.derived[(s.name, var)] = steps.astype(np.int32)
    return ir.HeterogeneousDelay(var, int(steps.max()))
