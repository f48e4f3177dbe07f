"""Brian2 network objects -> one :class:`~gpuspike.bridge.ir.NetworkIR`.

Every active object of a Brian2 network is either a group (NeuronGroup, PoissonGroup,
SpikeGeneratorGroup, Synapses: they own state) or a code runner that runs per step on a
group (state updater, thresholder, resetter, synaptic pathway, summed-variable updater,
monitors). :func:`build_network` walks them in Brian2's schedule order and assembles the
IR from the code objects the device captured (see :mod:`.translate`); it also returns
the :class:`Binding` of every IR array to its Brian2 variable, which :mod:`.results` uses
to move state and recordings in and out of the engine.

Initial values are left at zero in the IR: the device pushes Brian2's current values
into the engine before every run, so that the IR (and its fingerprint) only changes when
the model does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

import numpy as np
import sympy
from gpuspike.bridge import ir
from gpuspike.bridge.errors import UnsupportedFeature

from .translate import (
    BlockTranslator,
    Context,
    TimedArrays,
    inline_locals,
    ir_dtype,
    ir_name,
    root_group,
)

#: Templates of code objects that run once per time step (the ones the engine replaces).
PER_STEP_TEMPLATES = frozenset({
    "stateupdate", "threshold", "reset", "synapses", "synapses_push_spikes",
    "summed_variable", "spikemonitor", "statemonitor", "ratemonitor", "spikegenerator",
})
#: Brian2 ``when`` slot -> IR phase of a monitor that only reads state.
_PHASE = {
    "before_start": "start", "start": "start", "after_start": "start",
    "before_groups": "start", "groups": "groups", "after_groups": "groups",
    "before_thresholds": "groups", "thresholds": "thresholds",
    "after_thresholds": "thresholds", "before_synapses": "thresholds",
    "synapses": "synapses", "after_synapses": "synapses", "before_resets": "synapses",
    "resets": "resets", "after_resets": "resets", "before_end": "resets", "end": "end",
    "after_end": "end",
}


@dataclass
class Binding:
    """Where the state and recordings of the IR live on the Brian2 side."""

    #: (IR owner, IR variable) -> Brian2 Variable (state pushed before / pulled after a run)
    state: dict[tuple[str, str], Any] = field(default_factory=dict)
    #: (IR owner, IR variable) -> values computed here (pushed, never pulled)
    derived: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    #: IR monitor name -> (Brian2 monitor, kind, extra)
    monitors: dict[str, tuple[Any, str, dict]] = field(default_factory=dict)
    #: Brian2 StateMonitors of Synapses, recorded on the host between engine steps:
    #: (monitor, IR synapse group, variables, synapse indices, every, after_step)
    host_monitors: list[tuple] = field(default_factory=list)
    #: Brian2 object names by IR name (for messages)
    names: dict[str, str] = field(default_factory=dict)


@dataclass
class _Group:
    """A neuron group (or PoissonGroup) being assembled."""

    brian: Any
    name: str
    variables: list[ir.Variable] = field(default_factory=list)
    update: list[ir.Statement] = field(default_factory=list)
    events: dict[str, dict] = field(default_factory=dict)
    order: int = 0


def _state_variables(obj: Any, size: int, binding: Binding, ir_owner: str) -> list[ir.Variable]:
    """IR variables for the per-element ArrayVariables a Brian2 group owns."""
    from brian2.core.variables import ArrayVariable

    out = []
    for name, var in obj.variables.items():
        if (not isinstance(var, ArrayVariable) or var.scalar
                or getattr(var.owner, "name", None) != obj.name
                or name != var.name or name.startswith("_") or name in ("i", "j", "t", "dt")):
            continue
        if obj.variables.indices.get(name, "_idx") != "_idx":
            continue  # e.g. a Synapses' N_incoming: one value per post-synaptic neuron
        out.append(ir.Variable(name, ir_dtype(var.dtype), read_only=bool(var.read_only)
                               and name not in ("lastspike", "not_refractory")))
        binding.state[(ir_owner, name)] = var
    return out


def _written_scalars(runners: list[Any]) -> frozenset[int]:
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


def _block(r: Any, ctx: Context, key: Any = None) -> tuple[BlockTranslator, str]:
    if getattr(r, "codeobj", None) is None:  # nothing to run (e.g. no differential eqs)
        return BlockTranslator(ctx, {}, {}), ""
    cap = getattr(r.codeobj, "_gs_captured", None)
    if cap is None:
        raise UnsupportedFeature(f"{r.name!r}: its code object was not made by the gpuspike "
                                 "device (was the device set before the objects were created?)")
    tr = BlockTranslator(ctx, cap.variables, cap.variable_indices,
                         frozenset(cap.override_conditional_write or ()))
    code = cap.abstract_code.get(key, "") if key is not None else next(
        iter(cap.abstract_code.values()), "")
    return tr, code


def build_network(net: Any, dt: float, precision: str, seed: int
                  ) -> tuple[ir.NetworkIR, Binding]:
    """Translate the active objects of the Brian2 network ``net`` into a NetworkIR."""
    from brian2.groups.neurongroup import NeuronGroup, Resetter, StateUpdater, Thresholder
    from brian2.groups.subgroup import Subgroup
    from brian2.input.poissongroup import PoissonGroup
    from brian2.input.spikegeneratorgroup import SpikeGeneratorGroup
    from brian2.monitors.ratemonitor import PopulationRateMonitor
    from brian2.monitors.spikemonitor import EventMonitor
    from brian2.monitors.statemonitor import StateMonitor
    from brian2.synapses.synapses import (
        StateUpdater as SynStateUpdater,
    )
    from brian2.synapses.synapses import (
        SummedVariableUpdater,
        Synapses,
        SynapticPathway,
    )

    binding = Binding()
    timed = TimedArrays()
    objects = [o for o in net.sorted_objects if o.active]
    written = _written_scalars(objects)
    for o in objects:
        odt = float(o.clock.dt_)
        if abs(odt - dt) > 1e-9 * dt and not (isinstance(o, StateMonitor) or
                                              "run_regularly" in o.name):
            raise UnsupportedFeature(
                f"{o.name!r} runs on a clock with dt = {odt} s while the network runs at "
                f"{dt} s (several clocks are not supported yet)")
    groups: dict[str, _Group] = {}
    sources: list[ir.Source] = []
    synapses: dict[str, dict] = {}
    monitors: list[ir.Monitor] = []
    operations: list[Any] = []

    def group_of(g: Any) -> _Group:
        root = root_group(g)
        if root.name not in groups:
            if not isinstance(root, (NeuronGroup, PoissonGroup)):
                raise UnsupportedFeature(f"{root.name!r} of type {type(root).__name__}")
            name = ir_name(root.name)
            grp = _Group(root, name, order=int(getattr(root, "order", 0)))
            grp.variables = _state_variables(root, len(root), binding, name)
            groups[root.name] = grp
            binding.names[name] = root.name
        return groups[root.name]

    def pop_name(g: Any) -> str:
        root = root_group(g)
        if isinstance(root, SpikeGeneratorGroup):
            return ir_name(root.name)
        return group_of(root).name

    def syn_of(S: Any) -> dict:
        if S.name not in synapses:
            name = ir_name(S.name)
            pre, post = root_group(S.source), root_group(S.target)
            pre_name, post_name = pop_name(pre), pop_name(post)
            n = len(S)
            variables = _state_variables(S, n, binding, name)
            i = np.asarray(S.variables["_synaptic_pre"].get_value(), dtype=np.int64)
            j = np.asarray(S.variables["_synaptic_post"].get_value(), dtype=np.int64)
            synapses[S.name] = dict(name=name, brian=S, pre=pre_name, post=post_name,
                                   pre_root=pre, post_root=post, variables=variables,
                                   pathways=[], dynamics=[], summed=[], i=i, j=j,
                                   order=int(getattr(S, "order", 0)))
            binding.names[name] = S.name
        return synapses[S.name]

    for o in objects:
        what = f"{type(o).__name__} {o.name!r}"
        if isinstance(o, (NeuronGroup, PoissonGroup)):
            group_of(o)
        elif isinstance(o, Synapses):
            syn_of(o)
        elif isinstance(o, Subgroup):
            continue
        elif isinstance(o, StateUpdater):
            g = group_of(o.group)
            ctx = Context(what, {"_idx": g.brian}, timed, written_scalars=written)
            tr, code = _block(o, ctx)
            stmts = tr.statements(code)
            ref = getattr(g.brian, "_refractory", False)
            if ref is not False and stmts:
                first = stmts[0]
                if isinstance(first, ir.Assign) and first.target == "not_refractory":
                    stmts = stmts[1:]
                g.events.setdefault("spike", {})["refractory"] = (
                    tr.expression(ref) if isinstance(ref, str) else sympy.Float(float(ref)))
            g.update += stmts
        elif isinstance(o, Thresholder):
            g = group_of(o.group)
            ctx = Context(what, {"_idx": g.brian}, timed, written_scalars=written)
            tr, code = _block(o, ctx)
            stmts = tr.statements(code)
            cond = inline_locals(stmts, "_cond")
            ev = g.events.setdefault(o.event, {})
            ev["condition"] = cond
            ev.setdefault("order", len(g.events))
        elif isinstance(o, Resetter):
            g = group_of(o.group)
            ctx = Context(what, {"_idx": g.brian}, timed, written_scalars=written)
            tr, code = _block(o, ctx)
            g.events.setdefault(o.event, {})["reset"] = tuple(tr.statements(code))
        elif isinstance(o, SpikeGeneratorGroup):
            sources.append(_spike_generator(o, dt))
            binding.names[ir_name(o.name)] = o.name
        elif isinstance(o, SynapticPathway):
            s = syn_of(o.synapses)
            sides = {"_idx": o.synapses, "_presynaptic_idx": s["pre_root"],
                     "_postsynaptic_idx": s["post_root"]}
            ctx = Context(what, sides, timed, synaptic=True, written_scalars=written)
            tr, code = _block(o, ctx)
            stmts = tuple(tr.statements(code))
            pw_name = ir_name(o.objname)
            delay = _pathway_delay(o, s, pw_name, dt, binding)
            s["pathways"].append(ir.PathwayIR(pw_name, stmts, o.prepost, o.event, delay))
        elif isinstance(o, SynStateUpdater):
            s = syn_of(o.group)
            sides = {"_idx": o.group, "_presynaptic_idx": s["pre_root"],
                     "_postsynaptic_idx": s["post_root"]}
            ctx = Context(what, sides, timed, synaptic=True, written_scalars=written)
            tr, code = _block(o, ctx)
            s["dynamics"] += tr.statements(code)
        elif isinstance(o, SummedVariableUpdater):
            s = syn_of(o.group)
            target = o.target
            root = root_group(target)
            if len(target) != len(root):
                raise UnsupportedFeature(f"{what}: summed variable into the subgroup "
                                         f"{target.name!r} (only whole groups)")
            sides = {"_idx": o.group, "_presynaptic_idx": s["pre_root"],
                     "_postsynaptic_idx": s["post_root"]}
            ctx = Context(what, sides, timed, synaptic=True, written_scalars=written)
            tr, code = _block(o, ctx)
            expr = inline_locals(tr.statements(code), "_synaptic_var")
            side = "post" if o.template_kwds["_index_var"].name == "_synaptic_post" else "pre"
            s["summed"].append(ir.SummedVariableIR(o.target_var.name, expr, side))
        elif type(o).__name__ == "CodeRunner" and getattr(o, "template", "") == "stateupdate":
            operations.append(_run_regularly(o, group_of, syn_of, timed, written, dt))
        elif isinstance(o, EventMonitor):
            monitors.append(_event_monitor(o, pop_name(o.source), binding))
        elif isinstance(o, StateMonitor) and isinstance(o.source, Synapses):
            monitors.append(_synapse_state_monitor(o, syn_of(o.source), dt, binding))
        elif isinstance(o, StateMonitor):
            monitors.append(_state_monitor(o, pop_name, dt, binding, timed, written))
        elif isinstance(o, PopulationRateMonitor):
            monitors.append(_rate_monitor(o, pop_name(o.source), binding))
        else:
            raise UnsupportedFeature(
                f"{what}: objects of type {type(o).__name__} do not run on the gpuspike "
                "engine yet (set prefs.devices.gpuspike.runtime_fallback = True to run them "
                "on Brian2's runtime, with a warning)")

    net_ir = ir.NetworkIR(
        dt=dt,
        groups=tuple(_finish_group(g) for g in groups.values()),
        synapses=tuple(_finish_synapses(s) for s in synapses.values()),
        sources=tuple(sources),
        timed_arrays=tuple(timed.arrays.values()),
        monitors=tuple(monitors),
        **({"operations": tuple(operations)} if operations else {}),
        precision=precision,
        seed=seed,
        name=ir_name(net.name),
    )
    return net_ir, binding


def _finish_group(g: _Group) -> ir.NeuronGroupIR:
    events = []
    for name, ev in sorted(g.events.items(), key=lambda kv: (kv[0] != "spike", kv[0])):
        if "condition" not in ev:
            if ev.get("reset"):
                raise UnsupportedFeature(f"{g.brian.name!r}: reset on event {name!r} "
                                         "without a threshold")
            continue
        events.append(ir.EventIR(name, ev["condition"], ev.get("reset", ()),
                                 ev.get("refractory") if name == "spike" else None))
    kw = {"order": g.order} if "order" in {f.name for f in fields(ir.NeuronGroupIR)} else {}
    return ir.NeuronGroupIR(g.name, len(g.brian), tuple(g.variables), (), tuple(g.update),
                            tuple(events), **kw)


def _finish_synapses(s: dict) -> ir.SynapseGroupIR:
    pathways = sorted(s["pathways"], key=lambda p: p.source != "pre")
    kw = {"order": s["order"]} if "order" in {f.name for f in fields(ir.SynapseGroupIR)} else {}
    return ir.SynapseGroupIR(s["name"], s["pre"], s["post"], ir.FromList(s["i"], s["j"]),
                             tuple(s["variables"]), (), tuple(pathways), tuple(s["dynamics"]),
                             tuple(s["summed"]), **kw)


def _pathway_delay(o: Any, s: dict, pw_name: str, dt: float, binding: Binding) -> ir.Delay:
    """Brian2 rounds delays to steps (``round(delay / dt)``); equal delays are homogeneous."""
    values = np.asarray(o._delays.get_value(), dtype=np.float64)
    steps = np.round(values / dt).astype(np.int64)
    if o._delays.scalar or steps.size == 0 or np.all(steps == steps[0]):
        return ir.HomogeneousDelay(int(steps[0]) if steps.size else 0)
    var = f"gs_delay_{pw_name}"
    s["variables"].append(ir.Variable(var, "int32", batched=False, read_only=True))
    binding.derived[(s["name"], var)] = steps.astype(np.int32)
    return ir.HeterogeneousDelay(var, int(steps.max()))


def _spike_generator(o: Any, dt: float) -> ir.SpikeArraySourceIR:
    times = np.asarray(o.variables["spike_time"].get_value(), dtype=np.float64)
    idx = np.asarray(o.variables["neuron_index"].get_value(), dtype=np.int64)
    period = float(o.variables["period"].get_value()[0]) if "period" in o.variables else 0.0
    # Brian2 bins spikes at round(t/dt); the IR rounds the same way
    return ir.SpikeArraySourceIR(ir_name(o.name), len(o), times, idx, period)


def _event_monitor(o: Any, source: str, binding: Binding) -> ir.EventMonitorIR:
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
    binding.monitors[name] = (o, "event", {"start": start, "variables": tuple(values)})
    binding.names[name] = o.name
    return cls(name, source, o.event, tuple(values), indices)


def _run_regularly(o: Any, group_of: Any, syn_of: Any, timed: TimedArrays,
                   written: frozenset[int], dt: float) -> Any:
    """Brian2's ``run_regularly`` -> a :class:`CustomOperationIR` on its group."""
    from brian2.synapses.synapses import Synapses

    if not hasattr(ir, "CustomOperationIR"):
        raise UnsupportedFeature(f"run_regularly {o.name!r}: the engine has no operations")
    what = f"run_regularly {o.name!r}"
    if isinstance(o.group, Synapses):
        s = syn_of(o.group)
        sides = {"_idx": o.group, "_presynaptic_idx": s["pre_root"],
                 "_postsynaptic_idx": s["post_root"]}
        ctx = Context(what, sides, timed, synaptic=True, written_scalars=written)
        owner = s["name"]
    else:
        g = group_of(o.group)
        if len(o.group) != len(g.brian):
            raise UnsupportedFeature(f"{what} on the subgroup {o.group.name!r}")
        ctx = Context(what, {"_idx": g.brian}, timed, written_scalars=written)
        owner = g.name
    tr, code = _block(o, ctx)
    stmts = tuple(tr.statements(code))
    ratio = float(o.clock.dt_) / dt
    every = int(round(ratio))
    if abs(ratio - every) > 1e-6 or every < 1:
        raise UnsupportedFeature(f"{what}: its dt is not a multiple of the network's dt")
    when = _PHASE.get(o.when)
    if when is None:
        raise UnsupportedFeature(f"{what}: when={o.when!r}")
    return ir.CustomOperationIR(ir_name(o.name), owner, stmts, every, when, int(o.order))


def _state_monitor(o: Any, pop_name: Any, dt: float, binding: Binding, timed: TimedArrays,
                   written: frozenset[int]) -> ir.StateMonitorIR:
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
    tr, code = _block(o, ctx)
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
    ratio = float(o.clock.dt_) / dt
    every = int(round(ratio))
    if abs(ratio - every) > 1e-6 or every < 1:
        raise UnsupportedFeature(f"StateMonitor {o.name!r}: dt is not a multiple of the "
                                 "network's dt")
    when = _PHASE.get(o.when)
    if when is None:
        raise UnsupportedFeature(f"StateMonitor {o.name!r}: when={o.when!r}")
    name = ir_name(o.name)
    binding.monitors[name] = (o, "state", {"every": every, "derived": derived,
                                           "timed": dict(timed.arrays), "indices": idx - start})
    binding.names[name] = o.name
    kw = {"order": int(o.order)} if "order" in {f.name for f in fields(ir.StateMonitorIR)} \
        else {}
    return ir.StateMonitorIR(name, pop_name(root), tuple(record),
                             tuple(int(x) for x in idx), every, when, **kw)


def _synapse_state_monitor(o: Any, s: dict, dt: float, binding: Binding
                           ) -> ir.StateMonitorIR:
    """A StateMonitor of Synapses (indices in Brian2's synapse order)."""
    from brian2.core.variables import ArrayVariable

    for name in o.record_variables:
        var = o.source.variables.get(name)
        if (not isinstance(var, ArrayVariable) or var.scalar or name.startswith("_")
                or getattr(var.owner, "name", None) != o.source.name):
            raise UnsupportedFeature(f"StateMonitor {o.name!r}: recording {name!r} of "
                                     "Synapses (only synaptic state variables)")
    when = _PHASE.get(o.when)
    if when is None:
        raise UnsupportedFeature(f"StateMonitor {o.name!r}: when={o.when!r}")
    ratio = float(o.clock.dt_) / dt
    every = int(round(ratio))
    if abs(ratio - every) > 1e-6 or every < 1:
        raise UnsupportedFeature(f"StateMonitor {o.name!r}: dt is not a multiple of the "
                                 "network's dt")
    idx = np.asarray(o.variables["_indices"].get_value(), dtype=np.int64)
    name = ir_name(o.name)
    binding.monitors[name] = (o, "state", {"every": every, "derived": {}, "timed": {},
                                           "indices": idx})
    binding.names[name] = o.name
    return ir.StateMonitorIR(name, s["name"], tuple(o.record_variables),
                             tuple(int(x) for x in idx), every, when)


def _rate_monitor(o: Any, source: str, binding: Binding) -> ir.Monitor:
    src = o.source
    root = root_group(src)
    start = int(getattr(src, "start", 0))
    stop = int(getattr(src, "stop", len(src)))
    name = ir_name(o.name)
    binding.names[name] = o.name
    if start == 0 and stop == len(root):
        binding.monitors[name] = (o, "rate", {"size": len(src)})
        return ir.RateMonitorIR(name, source, "spike")
    # a subgroup: count its spikes with a spike monitor, rates made on the host
    binding.monitors[name] = (o, "rate_from_spikes", {"size": stop - start})
    return ir.SpikeMonitorIR(name, source, "spike", (), tuple(range(start, stop)))


# ----------------------------------------------------------------------------- fingerprint
def fingerprint(obj: Any) -> str:
    """A content hash of an IR value (arrays by their bytes): equal hash, same model."""
    h = hashlib.sha256()
    _feed(h, obj)
    return h.hexdigest()


def _feed(h: Any, obj: Any) -> None:
    if isinstance(obj, np.ndarray):
        h.update(f"nd{obj.dtype}{obj.shape}".encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif is_dataclass(obj) and not isinstance(obj, type):
        h.update(type(obj).__name__.encode())
        for f in fields(obj):
            h.update(f.name.encode())
            _feed(h, getattr(obj, f.name))
    elif isinstance(obj, (tuple, list)):
        h.update(b"(")
        for x in obj:
            _feed(h, x)
        h.update(b")")
    else:
        h.update(repr(obj).encode())
        h.update(b";")
