"""Brian2 network objects -> one :class:`~gpuspike.bridge.ir.NetworkIR`.

Every active object of a Brian2 network is either a group (NeuronGroup, PoissonGroup,
SpikeGeneratorGroup, Synapses: they own state) or a code runner that runs per step on a
group (state updater, thresholder, resetter, synaptic pathway, summed-variable updater,
monitors). :func:`build_network` walks them in Brian2's schedule order and assembles the
IR from the code objects the device captured (see :mod:`.translate`); it also returns
the :class:`Binding` of every IR array to its Brian2 variable, which :mod:`.results` uses
to move state and recordings in and out of the engine.

Order within a phase: every IR object's ``order`` is the rank of its Brian2 object in
``Network.sorted_objects`` (slot, ``order``, then name, as Brian2 breaks ties), so the
engine's stable sort by ``order`` repeats Brian2's sequence. A neuron group takes its state
updater's rank; a Synapses its first summed variable's (else its first pathway's); its
clock-driven dynamics become an operation with their own rank.

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
    var_name,
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
    #: (IR group, linked variable) -> (IR target group, target variable, index array or
    #: None for element-wise links)
    links: dict[tuple[str, str], tuple[str, str, np.ndarray | None]] = field(
        default_factory=dict)


@dataclass
class _Group:
    """A neuron group (or PoissonGroup) being assembled."""

    brian: Any
    name: str
    variables: list[ir.Variable] = field(default_factory=list)
    update: list[ir.Statement] = field(default_factory=list)
    events: dict[str, dict] = field(default_factory=dict)
    order: int = 0
    dt: float | None = None  # None: the network's


def _state_variables(obj: Any, size: int, binding: Binding, ir_owner: str,
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
        out.append(ir.Variable(var_name(name), ir_dtype(var.dtype),
                               read_only=bool(var.read_only)
                               and name not in ("lastspike", "not_refractory"),
                               shared=bool(var.scalar)))
        binding.state[(ir_owner, var_name(name))] = var
    return out


def _linked_variables(obj: Any, binding: Binding, ir_owner: str, group_of: Any
                      ) -> list[ir.Variable]:
    """IR variables for the linked variables of a neuron group (``x : 1 (linked)`` with
    ``G.x = linked_var(...)``): read-only views of the target group's variable, element
    for element or through an index array that the device pushes as an int variable."""
    from brian2.core.variables import ArrayVariable

    out = []
    for name in sorted(getattr(obj, "_linked_variables", ())):
        var = obj.variables.get(name)
        if var is None:
            continue  # never linked: Brian2 raises before the run
        if not isinstance(var, ArrayVariable) or getattr(var, "owner", None) is None:
            raise UnsupportedFeature(f"{obj.name!r}: the linked variable {name!r} refers to "
                                     f"a {type(var).__name__} (only state variables)")
        target = root_group(var.owner)
        tgt = group_of(target)
        index = obj.variables.indices[name]
        if index == "_idx" and len(target) == len(obj) and not var.scalar:
            arr = None
        elif index == "0" or var.scalar:
            arr = np.zeros(len(obj), dtype=np.int32)
        else:
            arr = np.asarray(obj.variables[index].get_value(), dtype=np.int32)
        lname = var_name(name)
        link_index = None
        if arr is not None:
            link_index = f"gs_link_{lname}"
            out.append(ir.Variable(link_index, "int32", batched=False, read_only=True))
            binding.derived[(ir_owner, link_index)] = arr
        out.append(ir.Variable(lname, ir_dtype(var.dtype), read_only=True,
                               linked=(tgt.name, var_name(var.name)), linked_index=link_index))
        binding.links[(ir_owner, lname)] = (tgt.name, var_name(var.name), arr)
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
    from brian2.core.preferences import prefs
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
    ranks = {id(o): k for k, o in enumerate(objects)}
    written = _written_scalars(objects)
    for o in objects:
        # objects on slower clocks (a multiple of the network's dt) run every k-th step;
        # a group's runners must share the group's clock
        if isinstance(o, (StateUpdater, Thresholder, Resetter)) and (
                abs(float(o.clock.dt_) - float(o.group.clock.dt_)) > 1e-9 * dt):
            raise UnsupportedFeature(f"{type(o).__name__} {o.name!r}: a clock other than "
                                     f"its group's ({o.group.name!r})")
        if isinstance(o, PopulationRateMonitor) and abs(float(o.clock.dt_) - dt) > 1e-9 * dt:
            raise UnsupportedFeature(f"PopulationRateMonitor {o.name!r} on a clock with "
                                     f"dt = {float(o.clock.dt_)} s (network: {dt} s)")
        _every(o, dt, f"{type(o).__name__} {o.name!r}")
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
            grp = _Group(root, name, order=ranks.get(id(root), 0),
                         dt=_own_dt(root, dt, f"{type(root).__name__} {root.name!r}"))
            grp.variables = _state_variables(root, len(root), binding, name, written)
            groups[root.name] = grp
            binding.names[name] = root.name
            grp.variables += _linked_variables(root, binding, name, group_of)
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
            variables = _state_variables(S, n, binding, name, written)
            i = np.asarray(S.variables["_synaptic_pre"].get_value(), dtype=np.int64)
            j = np.asarray(S.variables["_synaptic_post"].get_value(), dtype=np.int64)
            synapses[S.name] = dict(name=name, brian=S, pre=pre_name, post=post_name,
                                   pre_root=pre, post_root=post, variables=variables,
                                   pathways=[], summed=[], i=i, j=j, order=None)
            binding.names[name] = S.name
        return synapses[S.name]

    def emits(src: Any, event: str) -> bool:
        """Whether the source of a monitor or pathway can emit ``event`` in this run (an
        inactive group, or one whose thresholder is inactive, emits nothing)."""
        root = root_group(src)
        if isinstance(root, SpikeGeneratorGroup):
            return any(x is root for x in objects)
        return any(isinstance(x, Thresholder) and x.event == event
                   and root_group(x.group).name == root.name for x in objects)

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
            g.order = ranks[id(o)]  # the update and the events run at the updater's place
            ctx = Context(what, {"_idx": g.brian}, timed, written_scalars=written)
            tr, code = _block(o, ctx)
            stmts = tr.statements(code)
            ref = getattr(g.brian, "_refractory", False)
            if ref is not False:
                g.events.setdefault("spike", {})["refractory"] = _refractory(
                    ref, stmts, fixed=g.dt is None)
                if (not isinstance(ref, str) and not prefs.legacy.refractory_timing
                        and g.dt is None):
                    # a fixed duration: the engine's own test (one comparison per neuron)
                    # is Brian2's `timestep(t - lastspike, dt) >= timestep(ref, dt)`
                    stmts = [st for st in stmts if not (isinstance(st, ir.Assign)
                                                        and st.target == "not_refractory")]
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
            sources.append(_spike_generator(o, dt, ranks[id(o)]))
            binding.names[ir_name(o.name)] = o.name
        elif isinstance(o, SynapticPathway):
            s = syn_of(o.synapses)
            if not emits(o.source, o.event):
                continue
            sides = {"_idx": o.synapses, "_presynaptic_idx": s["pre_root"],
                     "_postsynaptic_idx": s["post_root"]}
            ctx = Context(what, sides, timed, synaptic=True, written_scalars=written)
            tr, code = _block(o, ctx)
            stmts = tuple(tr.statements(code))
            pw_name = ir_name(o.objname)
            delay = _pathway_delay(o, s, pw_name, dt, binding)
            s["pathways"].append(ir.PathwayIR(pw_name, stmts, o.prepost, o.event, delay))
            if s["order"] is None:
                s["order"] = ranks[id(o)]
        elif isinstance(o, SynStateUpdater):
            s = syn_of(o.group)
            sides = {"_idx": o.group, "_presynaptic_idx": s["pre_root"],
                     "_postsynaptic_idx": s["post_root"]}
            ctx = Context(what, sides, timed, synaptic=True, written_scalars=written)
            tr, code = _block(o, ctx)
            stmts = tuple(tr.statements(code))
            if stmts:
                # an operation of its own, at its own place in the 'groups' slot (the
                # synapse group's order places its summed variables and pathways)
                operations.append(ir.CustomOperationIR(
                    ir_name(o.name), s["name"], stmts, _every(o, dt, what),
                    _PHASE.get(o.when, "groups"), ranks[id(o)]))
        elif isinstance(o, SummedVariableUpdater):
            s = syn_of(o.group)
            target = o.target
            root = root_group(target)
            start = int(getattr(target, "start", 0))
            trange = None if len(target) == len(root) else (start, start + len(target))
            sides = {"_idx": o.group, "_presynaptic_idx": s["pre_root"],
                     "_postsynaptic_idx": s["post_root"]}
            ctx = Context(what, sides, timed, synaptic=True, written_scalars=written)
            tr, code = _block(o, ctx)
            expr = inline_locals(tr.statements(code), "_synaptic_var")
            side = "post" if o.template_kwds["_index_var"].name == "_synaptic_post" else "pre"
            if any(sv.target == var_name(o.target_var.name) for sv in s["summed"]):
                # NOTE: the engine names a summed variable's kernels after the target
                # only; two of the same name (pre and post) would clash (engine issue)
                raise UnsupportedFeature(
                    f"{what}: summed variables of the same name {o.target_var.name!r} "
                    "into both the pre- and the post-synaptic group of one Synapses")
            s["summed"].append(ir.SummedVariableIR(var_name(o.target_var.name), expr, side,
                                                   trange))
            own = _own_dt(o, dt, what)
            if "dt" in s and s["dt"] != own:
                raise UnsupportedFeature(f"{what}: summed variables of one Synapses into "
                                         "groups on different clocks")
            s["dt"] = own
            s["order"] = ranks[id(o)] if s["order"] is None else min(s["order"],
                                                                     ranks[id(o)])
        elif (type(o).__name__ in ("CodeRunner", "SubexpressionUpdater", "PoissonInput")
              and getattr(o, "template", "") == "stateupdate"):
            # run_regularly, PoissonInput and `(constant over dt)` subexpressions
            operations.append(_run_regularly(o, group_of, syn_of, timed, written, dt,
                                             ranks[id(o)]))
        elif isinstance(o, EventMonitor) and not emits(o.source, o.event):
            binding.monitors[ir_name(o.name)] = (o, "idle", {})
        elif isinstance(o, PopulationRateMonitor) and not emits(o.source, "spike"):
            binding.monitors[ir_name(o.name)] = (o, "idle_rate", {})
        elif isinstance(o, EventMonitor):
            monitors.append(_event_monitor(o, pop_name(o.source), binding, ranks, objects,
                                           groups))
        elif isinstance(o, StateMonitor) and isinstance(o.source, Synapses):
            monitors.append(_synapse_state_monitor(o, syn_of(o.source), dt, binding,
                                                   ranks[id(o)]))
        elif isinstance(o, StateMonitor):
            monitors += _state_monitor(o, pop_name, dt, binding, timed, written,
                                       ranks[id(o)])
        elif isinstance(o, PopulationRateMonitor):
            monitors.append(_rate_monitor(o, pop_name(o.source), binding, ranks[id(o)]))
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
        monitors=tuple(m for m in monitors if m is not None),
        **({"operations": tuple(operations)} if operations else {}),
        precision=precision,
        seed=seed,
        name=ir_name(net.name),
    )
    return net_ir, binding


def _refractory(ref: Any, stmts: list[ir.Statement], fixed: bool = True) -> sympy.Basic:
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
    return ir.NeuronGroupIR(g.name, len(g.brian), tuple(g.variables), (), tuple(g.update),
                            tuple(events), dt=g.dt, order=g.order)


def _finish_synapses(s: dict) -> ir.SynapseGroupIR:
    pathways = sorted(s["pathways"], key=lambda p: p.source != "pre")
    return ir.SynapseGroupIR(s["name"], s["pre"], s["post"], ir.FromList(s["i"], s["j"]),
                             tuple(s["variables"]), (), tuple(pathways), (),
                             tuple(s["summed"]), dt=s.get("dt"), order=s["order"] or 0)


def _pathway_delay(o: Any, s: dict, pw_name: str, dt: float, binding: Binding) -> ir.Delay:
    """Brian2 rounds delays to steps of the source's clock (``round(delay / dt)``); equal
    delays are homogeneous."""
    values = np.asarray(o._delays.get_value(), dtype=np.float64)
    sdt = float(o.source.clock.dt_)
    steps = np.round(values / sdt).astype(np.int64) * int(round(sdt / dt))
    if o._delays.scalar or steps.size == 0 or np.all(steps == steps[0]):
        return ir.HomogeneousDelay(int(steps[0]) if steps.size else 0)
    var = f"gs_delay_{pw_name}"
    s["variables"].append(ir.Variable(var, "int32", batched=False, read_only=True))
    binding.derived[(s["name"], var)] = steps.astype(np.int32)
    return ir.HeterogeneousDelay(var, int(steps.max()))


def _own_dt(o: Any, dt: float, what: str) -> float | None:
    """The dt of ``o``'s clock for the IR: None where it is the network's."""
    return None if _every(o, dt, what) == 1 else float(o.clock.dt_)


def _every(o: Any, dt: float, what: str) -> int:
    """Steps of the network between two runs of ``o`` (its clock's dt / the network's)."""
    ratio = float(o.clock.dt_) / dt
    every = int(round(ratio))
    if abs(ratio - every) > 1e-6 * ratio or every < 1:
        raise UnsupportedFeature(f"{what}: its dt ({float(o.clock.dt_)} s) is not a "
                                 f"multiple of the network's dt ({dt} s)")
    return every


def _spike_generator(o: Any, dt: float, order: int) -> ir.SpikeArraySourceIR:
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


def _event_monitor(o: Any, source: str, binding: Binding, ranks: dict[int, int],
                   objects: list[Any], groups: dict[str, _Group]) -> ir.EventMonitorIR:
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
        values.append(var_name(name))
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
                          groups: dict[str, _Group]) -> tuple[ir.Statement, ...]:
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
    return tuple(reset)


def _statement_symbols(st: ir.Statement) -> set[str]:
    """Names a statement reads or writes."""
    if isinstance(st, ir.Conditional):
        out = {s.name for s in st.condition.free_symbols}
        for b in (*st.body, *st.orelse):
            out |= _statement_symbols(b)
        return out
    return {st.target} | {s.name for s in st.expr.free_symbols}


def _run_regularly(o: Any, group_of: Any, syn_of: Any, timed: TimedArrays,
                   written: frozenset[int], dt: float, order: int) -> Any:
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
        ctx = Context(what, {"_idx": g.brian, "_sub_idx": g.brian}, timed,
                      written_scalars=written)
        owner = g.name
    tr, code = _block(o, ctx)
    stmts = tuple(tr.statements(code))
    if not isinstance(o.group, Synapses) and len(o.group) != len(g.brian):
        # a subgroup's operation: on the whole group, for the subgroup's elements only
        start = int(o.group.start)
        i = sympy.Symbol("i")
        stmts = (ir.Conditional(sympy.And(i >= start, i < start + len(o.group)), stmts),)
    every = _every(o, dt, what)
    when = _PHASE.get(o.when)
    if when is None:
        raise UnsupportedFeature(f"{what}: when={o.when!r}")
    return ir.CustomOperationIR(ir_name(o.name), owner, stmts, every, when, order)


def _state_monitor(o: Any, pop_name: Any, dt: float, binding: Binding, timed: TimedArrays,
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
    tr, code = _block(o, ctx)
    stmts = tr.statements(code)
    record: list[str] = []
    derived: dict[str, sympy.Basic] = {}
    for name in o.record_variables:
        var = root.variables.get(name)
        if (isinstance(var, ArrayVariable) and not var.scalar
                and getattr(var.owner, "name", None) == root.name):
            if var_name(name) not in record:
                record.append(var_name(name))
            continue
        expr = inline_locals(stmts, f"_to_record_{name}")
        derived[var_name(name)] = expr
        for sym in expr.free_symbols:
            if sym.name not in ("t", "i") and sym.name not in record:
                record.append(sym.name)
    idx = np.asarray(o.variables["_indices"].get_value(), dtype=np.int64) + start
    every = _every(o, dt, f"StateMonitor {o.name!r}")
    when = _PHASE.get(o.when)
    if when is None:
        raise UnsupportedFeature(f"StateMonitor {o.name!r}: when={o.when!r}")
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
                                           "linked": linked})
    out.insert(0, ir.StateMonitorIR(name, group, tuple(record), tuple(int(x) for x in idx),
                                    every, when, order))
    return out


def _synapse_state_monitor(o: Any, s: dict, dt: float, binding: Binding, order: int
                           ) -> ir.StateMonitorIR | None:
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
    every = _every(o, dt, f"StateMonitor {o.name!r}")
    idx = np.asarray(o.variables["_indices"].get_value(), dtype=np.int64)
    name = ir_name(o.name)
    binding.names[name] = o.name
    if idx.size == 0:  # record=False: only the times
        binding.monitors[name] = (o, "times", {"every": every})
        return None
    binding.monitors[name] = (o, "state", {"every": every, "derived": {}, "timed": {},
                                           "indices": idx})
    return ir.StateMonitorIR(name, s["name"], tuple(var_name(v) for v in o.record_variables),
                             tuple(int(x) for x in idx), every, when, order)


def _rate_monitor(o: Any, source: str, binding: Binding, order: int) -> ir.Monitor:
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
