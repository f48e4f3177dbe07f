"""Brian2 monitors -> IR monitors (SpikeMonitor, EventMonitor, StateMonitor,
PopulationRateMonitor), and what the device must do on the host to match Brian2.

Recorded subexpressions are evaluated on the host from the recorded variables they read;
linked variables are recorded from their target group; an event monitor scheduled after
its group's reset gets the reset applied to its recorded values on the host; a subgroup's
rate monitor counts spikes and makes rates on the host (see :mod:`.results`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy
from gpuspike.bridge import ir
from gpuspike.bridge.errors import UnsupportedFeature

from .binding import Binding
from .names import ir_name, root_group
from .neurons import GroupDraft
from .schedule import every_steps, phase
from .translate import Context, TimedArrays, inline_locals, runner_block


def event_monitor(o: Any, source: str, binding: Binding, ranks: dict[int, int],
                  objects: list[Any], groups: dict[str, GroupDraft]) -> ir.EventMonitorIR:
    from brian2.core.variables import ArrayVariable

    src = o.source
    start = int(getattr(src, "start", 0))
    stop = int(getattr(src, "stop", len(src)))
    root = root_group(src)
    values = []
    for name in o.record_variables:
        if name in ("i", "t"):
            continue
        var = root.variables.get(name) if hasattr(root, "variables") else None
        if (not isinstance(var, ArrayVariable) or var.scalar
                or getattr(var.owner, "name", None) != root.name):
            raise UnsupportedFeature(f"{type(o).__name__} {o.name!r}: recording {name!r} "
                                     "(only state variables of the source group)")
        values.append(name)
    indices = None if (start == 0 and stop == len(root)) else tuple(range(start, stop))
    name = ir_name(o.name)
    cls = ir.SpikeMonitorIR if o.event == "spike" else ir.EventMonitorIR
    reset = _reset_before_monitor(o, root, ranks, objects, groups) if values else ()
    recorded = list(values)
    for st in reset:
        for sym in _statement_symbols(st):
            if sym not in recorded and sym not in ("t", "i") and not sym.startswith("_L_"):
                recorded.append(sym)
    binding.monitors[name] = (o, "event", {"start": start, "variables": tuple(values),
                                           "reset": reset})
    binding.names[name] = o.name
    return cls(name, source, o.event, tuple(recorded), indices, order=ranks[id(o)])


def _reset_before_monitor(o: Any, root: Any, ranks: dict[int, int], objects: list[Any],
                          groups: dict[str, GroupDraft]) -> tuple[ir.Statement, ...]:
    """The reset statements that Brian2 runs between the event and the monitor ``o``.

    The engine records event monitors right after the thresholds; a monitor scheduled
    after the reset of its group (``when='after_resets'``) must see the values after it:
    the device applies the reset to the recorded values on the host. Anything else that
    may write the group in between (pathways, run_regularly) is refused.
    """
    from brian2.groups.neurongroup import Resetter, Thresholder
    from brian2.synapses.synapses import SynapticPathway

    mine = ranks[id(o)]
    def on_root(group: Any) -> bool:  # Brian2 holds groups through weak proxies
        return group is not None and root_group(group).name == root.name

    threshold = next((ranks[id(x)] for x in objects if isinstance(x, Thresholder)
                      and on_root(x.group) and x.event == o.event), -1)
    for x in objects:
        r = ranks[id(x)]
        if not threshold < r < mine or x is o:
            continue
        if isinstance(x, SynapticPathway) and (on_root(x.synapses.source)
                                               or on_root(x.synapses.target)):
            raise UnsupportedFeature(
                f"{type(o).__name__} {o.name!r} (when={o.when!r}) records variables that "
                f"the pathway {x.name!r} may change after the event; record them with the "
                "default when='thresholds'")
        if type(x).__name__ == "CodeRunner" and on_root(getattr(x, "group", None)):
            raise UnsupportedFeature(
                f"{type(o).__name__} {o.name!r} (when={o.when!r}) records variables that "
                f"{x.name!r} may change after the event; record them with the default "
                "when='thresholds'")
    resetter = next((x for x in objects if isinstance(x, Resetter)
                     and on_root(x.group) and x.event == o.event), None)
    if resetter is None or not threshold < ranks[id(resetter)] < mine:
        return ()
    reset = groups[root.name].events.get(o.event, {}).get("reset", ())
    if any("rand" in str(st) for st in reset):
        raise UnsupportedFeature(f"{type(o).__name__} {o.name!r} (when={o.when!r}) records "
                                 "variables after a reset that draws random numbers")
    if any(_calls(st) for st in reset):
        raise UnsupportedFeature(f"{type(o).__name__} {o.name!r} (when={o.when!r}) records "
                                 "variables after a reset that calls a timed array or a "
                                 "user function; record them with the default "
                                 "when='thresholds'")
    return tuple(reset)


def _calls(st: ir.Statement) -> bool:
    """Whether a statement calls a timed array or a user function."""
    if isinstance(st, ir.Conditional):
        return bool(st.condition.atoms(sympy.core.function.AppliedUndef)) or any(
            _calls(b) for b in (*st.body, *st.orelse))
    return bool(st.expr.atoms(sympy.core.function.AppliedUndef))


def _statement_symbols(st: ir.Statement) -> set[str]:
    """Names a statement reads or writes."""
    if isinstance(st, ir.Conditional):
        out = {s.name for s in st.condition.free_symbols}
        for b in (*st.body, *st.orelse):
            out |= _statement_symbols(b)
        return out
    return {st.target} | {s.name for s in st.expr.free_symbols}


def state_monitor(o: Any, pop_name: Any, dt: float, binding: Binding, timed: TimedArrays,
                   written: frozenset[int], order: int) -> list[ir.Monitor]:
    """A StateMonitor of a neuron group. Recorded subexpressions are evaluated on the host
    from the recorded variables they depend on (and ``t``, ``i``, timed arrays)."""
    from brian2.core.variables import ArrayVariable
    from brian2.synapses.synapses import Synapses

    src = o.source
    if isinstance(src, Synapses):
        raise UnsupportedFeature(f"StateMonitor {o.name!r} of the Synapses {src.name!r}: "
                                 "the engine records neuron groups only")
    root = root_group(src)
    start = int(getattr(src, "start", 0))
    ctx = Context(f"StateMonitor {o.name!r}", {"_idx": root, "_sub_idx": root}, timed,
                  written_scalars=written)
    tr, code = runner_block(o, ctx)
    stmts = tr.statements(code)
    record: list[str] = []
    derived: dict[str, sympy.Basic] = {}
    for name in o.record_variables:
        var = root.variables.get(name)
        if (isinstance(var, ArrayVariable) and not var.scalar
                and getattr(var.owner, "name", None) == root.name):
            if name not in record:
                record.append(name)
            continue
        expr = inline_locals(stmts, f"_to_record_{name}")
        derived[name] = expr
        for sym in expr.free_symbols:
            if sym.name not in ("t", "i") and sym.name not in record:
                record.append(sym.name)
    idx = np.asarray(o.variables["_indices"].get_value(), dtype=np.int64) + start
    every = every_steps(o, dt, f"StateMonitor {o.name!r}")
    when = phase(o, f"StateMonitor {o.name!r}")
    name = ir_name(o.name)
    binding.names[name] = o.name
    if idx.size == 0:  # record=False: only the times
        binding.monitors[name] = (o, "times", {"every": every})
        return []
    # linked variables: recorded from their target group by monitors of their own
    group = pop_name(root)
    out: list[ir.Monitor] = []
    linked: dict[str, tuple[str, str]] = {}
    for var in [v for v in record if (group, v) in binding.links]:
        record.remove(var)
        tgt, tvar, link = binding.links[(group, var)]
        aux = f"{name}_gs_{var}"
        tidx = idx if link is None else link[idx]
        out.append(ir.StateMonitorIR(aux, tgt, (tvar,), tuple(int(x) for x in tidx), every,
                                     when, order))
        linked[var] = (aux, tvar)
    binding.monitors[name] = (o, "state", {"every": every, "derived": derived,
                                           "timed": dict(timed.arrays), "indices": idx - start,
                                           "linked": linked,
                                           "functions": dict(timed.functions)})
    out.insert(0, ir.StateMonitorIR(name, group, tuple(record), tuple(int(x) for x in idx),
                                    every, when, order))
    return out


def synapse_state_monitor(o: Any, s: dict, dt: float, binding: Binding, order: int
                           ) -> ir.StateMonitorIR | None:
    """A StateMonitor of Synapses (indices in Brian2's synapse order)."""
    from brian2.core.variables import ArrayVariable

    for name in o.record_variables:
        var = o.source.variables.get(name)
        if (not isinstance(var, ArrayVariable) or var.scalar or name.startswith("_")
                or getattr(var.owner, "name", None) != o.source.name):
            raise UnsupportedFeature(f"StateMonitor {o.name!r}: recording {name!r} of "
                                     "Synapses (only synaptic state variables)")
    when = phase(o, f"StateMonitor {o.name!r}")
    every = every_steps(o, dt, f"StateMonitor {o.name!r}")
    idx = np.asarray(o.variables["_indices"].get_value(), dtype=np.int64)
    name = ir_name(o.name)
    binding.names[name] = o.name
    if idx.size == 0:  # record=False: only the times
        binding.monitors[name] = (o, "times", {"every": every})
        return None
    binding.monitors[name] = (o, "state", {"every": every, "derived": {}, "timed": {},
                                           "indices": idx})
    return ir.StateMonitorIR(name, s.name, tuple(o.record_variables),
                             tuple(int(x) for x in idx), every, when, order)


def rate_monitor(o: Any, source: str, binding: Binding, order: int) -> ir.Monitor:
    src = o.source
    root = root_group(src)
    start = int(getattr(src, "start", 0))
    stop = int(getattr(src, "stop", len(src)))
    name = ir_name(o.name)
    binding.names[name] = o.name
    if start == 0 and stop == len(root):
        binding.monitors[name] = (o, "rate", {"size": len(src)})
        return ir.RateMonitorIR(name, source, "spike", order=order)
    # a subgroup: count its spikes with a spike monitor, rates made on the host
    binding.monitors[name] = (o, "rate_from_spikes", {"size": stop - start})
    return ir.SpikeMonitorIR(name, source, "spike", (), tuple(range(start, stop)),
                             order=order)
