"""Brian2 neuron groups -> NeuronGroupIR: state, linked variables, events, refractoriness.

A :class:`GroupDraft` collects what the group's runners (state updater, thresholders,
resetters) contribute while :func:`.objects.build_network` walks the schedule;
:func:`finish_group` makes the IR value. Spike generator groups become spike array
sources.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy
from gpuspike.bridge import ir
from gpuspike.bridge.errors import UnsupportedFeature
from gpuspike.bridge.passes import specialise_flag

from .binding import Binding
from .names import elementwise_link, ir_dtype, ir_name, link_names, root_group
from .translate import Context, inline_locals, runner_block


@dataclass
class GroupDraft:
    """A neuron group (or PoissonGroup) being assembled."""

    brian: Any
    name: str
    variables: list[ir.Variable] = field(default_factory=list)
    update: list[ir.Statement] = field(default_factory=list)
    events: dict[str, dict] = field(default_factory=dict)
    order: int = 0
    dt: float | None = None  # None: the network's


def state_variables(obj: Any, size: int, binding: Binding, ir_owner: str,
                    written: frozenset[int] = frozenset()) -> list[ir.Variable]:
    """IR variables for the per-element ArrayVariables a Brian2 group owns, and for its
    shared variables that per-step code writes (the others become numbers)."""
    from brian2.core.variables import ArrayVariable

    out = []
    for name, var in obj.variables.items():
        if (not isinstance(var, ArrayVariable) or (var.scalar and id(var) not in written)
                or getattr(var.owner, "name", None) != obj.name
                or name != var.name or name.startswith("_") or name in ("i", "j", "t", "dt")):
            continue
        if obj.variables.indices.get(name, "_idx") != ("0" if var.scalar else "_idx"):
            continue  # e.g. a Synapses' N_incoming: one value per post-synaptic neuron
        out.append(ir.Variable(name, ir_dtype(var.dtype),
                               read_only=bool(var.read_only)
                               and name not in ("lastspike", "not_refractory"),
                               shared=bool(var.scalar)))
        binding.state[(ir_owner, name)] = var
    return out


def linked_variables(obj: Any, binding: Binding, ir_owner: str, group_of: Any
                     ) -> list[ir.Variable]:
    """IR variables for the linked variables of a neuron group (``x : 1 (linked)`` with
    ``G.x = linked_var(...)``): views of the target group's variable, element for element
    (writable: writing one writes the target) or through an index array that the device
    pushes as an int variable (read-only). A variable linked to a subexpression is left
    to Brian2, which inlines it over references to the state it reads: those references
    become linked variables (see :func:`.translate.link_names`)."""
    from brian2.core.variables import ArrayVariable, Subexpression

    out = []
    for name, lname in link_names(obj).items():
        var = obj.variables[name]
        if isinstance(var, Subexpression):
            continue  # never reached: link_names lists the references instead
        if not isinstance(var, ArrayVariable) or getattr(var, "owner", None) is None:
            raise UnsupportedFeature(f"{obj.name!r}: the linked variable {name!r} refers to "
                                     f"a {type(var).__name__} (only state variables and "
                                     "subexpressions)")
        target = root_group(var.owner)
        tgt = group_of(target)
        index = obj.variables.indices[name]
        if elementwise_link(obj, name):
            arr = None
        elif index == "0" or var.scalar:
            arr = np.zeros(len(obj), dtype=np.int32)
        else:
            arr = np.asarray(obj.variables[index].get_value(), dtype=np.int32)
        link_index = None
        if arr is not None:
            link_index = f"gs_link_{lname}"
            out.append(ir.Variable(link_index, "int32", batched=False, read_only=True))
            binding.derived[(ir_owner, link_index)] = arr
        out.append(ir.Variable(lname, ir_dtype(var.dtype), read_only=arr is not None,
                               linked=(tgt.name, var.name), linked_index=link_index))
        binding.links[(ir_owner, lname)] = (tgt.name, var.name, arr)
    return out


def written_scalars(runners: list[Any]) -> frozenset[int]:
    """Shared variables that per-step code writes (they cannot become numbers)."""
    from brian2.codegen.translation import make_statements  # noqa: F401
    from brian2.core.variables import ArrayVariable

    out = set()
    for r in runners:
        cap = getattr(getattr(r, "codeobj", None), "_gs_captured", None)
        if cap is None:
            continue
        for code in cap.abstract_code.values():
            for line in code.splitlines():
                head = line.split("=")[0].strip().rstrip("+-*/").strip() if "=" in line else ""
                var = cap.variables.get(head)
                if isinstance(var, ArrayVariable) and var.scalar and "==" not in line:
                    out.add(id(var))
    return frozenset(out)


def host_writable_scalars(objects: list[Any]) -> frozenset[int]:
    """Shared variables a ``network_operation`` could set between steps: every writable
    shared variable of the network's groups and synapses (they keep an engine array
    instead of becoming numbers, so that the write reaches the kernels)."""
    from brian2.core.clocks import Clock
    from brian2.core.variables import ArrayVariable

    out = set()
    for o in objects:
        for g in (o, getattr(o, "group", None), getattr(o, "source", None)):
            variables = getattr(g, "variables", None)
            if g is None or variables is None or isinstance(g, Clock):
                continue
            for name, var in variables.items():
                if (isinstance(var, ArrayVariable) and var.scalar and not var.read_only
                        and not name.startswith("_") and var.owner is not None
                        and not isinstance(var.owner, Clock)):
                    out.add(id(var))
    return frozenset(out)


def add_neuron_runner(o: Any, g: GroupDraft, ctx: Context, order: int) -> None:
    """Add what Brian2's StateUpdater, Thresholder or Resetter ``o`` runs to ``g``."""
    from brian2.core.preferences import prefs
    from brian2.groups.neurongroup import StateUpdater, Thresholder

    tr, code = runner_block(o, ctx)
    stmts = tr.statements(code)
    if isinstance(o, StateUpdater):
        g.order = order  # the update and the events run at the updater's place
        ref = getattr(g.brian, "_refractory", False)
        if ref is not False:
            g.events.setdefault("spike", {})["refractory"] = refractory(
                ref, stmts, fixed=g.dt is None)
            if (not isinstance(ref, str) and not prefs.legacy.refractory_timing
                    and g.dt is None):
                # a fixed duration: the engine's own test (one comparison per neuron)
                # is Brian2's `timestep(t - lastspike, dt) >= timestep(ref, dt)`
                stmts = [st for st in stmts if not (isinstance(st, ir.Assign)
                                                    and st.target == "not_refractory")]
            # int(not_refractory) factors -> two branches whose constants fold
            stmts = list(specialise_flag(stmts, "not_refractory"))
        g.update += stmts
    elif isinstance(o, Thresholder):
        ev = g.events.setdefault(o.event, {})
        ev["condition"] = inline_locals(stmts, "_cond")
        ev.setdefault("order", len(g.events))
    else:
        g.events.setdefault(o.event, {})["reset"] = tuple(stmts)


def refractory(ref: Any, stmts: list[ir.Statement], fixed: bool = True) -> sympy.Basic:
    """EventIR.refractory of Brian2's ``refractory=ref``.

    A fixed duration (not in legacy timing, the group on the network's clock: ``fixed``)
    is handed to the engine. Anything else (an
    expression, a condition, legacy timing) keeps Brian2's own ``not_refractory = ...``
    statement in the state update, which then decides; the engine's statement before it
    is made a no-op (``not_refractory or not True``)."""
    from brian2.core.preferences import prefs

    if not isinstance(ref, str) and not prefs.legacy.refractory_timing and fixed:
        return sympy.Float(float(ref))
    if not any(isinstance(st, ir.Assign) and st.target == "not_refractory" for st in stmts):
        raise UnsupportedFeature(f"refractory={ref!r}: no refractoriness code from Brian2")
    return sympy.true


def finish_group(g: GroupDraft) -> ir.NeuronGroupIR:
    events = []
    for name, ev in sorted(g.events.items(), key=lambda kv: (kv[0] != "spike", kv[0])):
        if "condition" not in ev:
            if ev.get("reset"):
                raise UnsupportedFeature(f"{g.brian.name!r}: reset on event {name!r} "
                                         "without a threshold")
            continue
        events.append(ir.EventIR(name, ev["condition"], ev.get("reset", ()),
                                 ev.get("refractory") if name == "spike" else None))
    return ir.NeuronGroupIR(g.name, len(g.brian), tuple(g.variables), (), tuple(g.update),
                            tuple(events), dt=g.dt, order=g.order)


def spike_generator(o: Any, dt: float, order: int) -> ir.SpikeArraySourceIR:
    times = np.asarray(o.variables["spike_time"].get_value(), dtype=np.float64)
    idx = np.asarray(o.variables["neuron_index"].get_value(), dtype=np.int64)
    period = float(o.variables["period"].get_value()[0]) if "period" in o.variables else 0.0
    # Brian2 bins spikes at round(t/dt) of the group's own clock; the IR rounds t by the
    # network's dt, so the times become exact multiples of the group's dt
    gdt = float(o.clock.dt_)
    if abs(gdt - dt) > 1e-9 * dt:
        times = np.round(times / gdt) * gdt
        period = round(period / gdt) * gdt
    return ir.SpikeArraySourceIR(ir_name(o.name), len(o), times, idx, period, order=order)
