"""Lowering: :class:`~gpuspike.bridge.ir.NetworkIR` -> kernel :class:`~.kernel_ir.Plan`.

For every IR object the lowering decides which kernels run in which phase, which arrays
they touch and how symbols resolve to memory (:mod:`.kernel_writer` writes the bodies):

==========================  ===========================================================
IR object                   kernels (phase)
==========================  ===========================================================
NeuronGroupIR               ``<g>_update`` (groups), ``<g>_threshold`` (thresholds),
                            ``<g>_<event>_reset`` (resets)
PoissonSourceIR             ``<src>_poisson`` (thresholds): emit where ``u < rate dt``
SpikeArraySourceIR          ``<src>_spikes`` (thresholds): emit the scheduled spikes
SynapseGroupIR              ``<S>_dynamics``, ``<S>_summed_<x>`` (groups, before the
                            neuron updates), ``<S>_<pathway>`` (synapses); a side that
                            is another synapse group goes through its slot map
                            (:mod:`.endpoints`)
CableIR                     ``<c>_currents``, ``<c>_sections``, ``<c>_tree``,
                            ``<c>_voltage`` (groups; :mod:`.lower_cable`)
monitors                    ``<m>_record`` in the monitor's phase, after the groups
==========================  ===========================================================

Every (group, event) owns a spike ring of ``depth = 1 + max delay`` slots; slot of step
``n`` is ``n mod depth``. Events with a multiplicity (:attr:`~gpuspike.bridge.ir.EventIR.
multiplicity`, a spike array's ``counts``) also keep each event's count in the ring
(``<ring>_mult``); their pathways scale every accumulation by it and their event monitors
record the count with each event. Symbols are renamed so that nothing a user names can clash with
the printers' own names: ``t -> _t_``, ``i -> _i_``, ``j -> _j_``; ``dt``, ``N``,
``N_pre``, ``N_post`` and parameters become numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import sympy
from gpuspike.bridge import ir
from gpuspike.bridge.errors import ModelError, UnsupportedFeature

from . import endpoints
from . import kernel_ir as k
from .functions import used_functions
from .kernel_writer import (
    ConnShape,
    I,
    KernelWriter,
    Scope,
    accumulate_targets,
    array_name,
    has_multiplicity,
    is_boolean,
    neuron_scope,
    optimise,
    period,
    population_events,
    population_variables,
    ring_name,
    scaled_accumulations,
    stream_id,
    synapse_scope,
)
from .lower_cable import lower_cable
from .shared_writes import commit_shared_writes

# re-exported: the runtime and the tests know these as part of the lowering
__all__ = ["ConnShape", "array_name", "has_multiplicity", "lower", "population_variables",
           "ring_depths"]


def ring_depths(net: ir.NetworkIR) -> dict[tuple[str, str], int]:
    """Depth of every (population, event) spike ring: 1 + the longest delay reading it."""
    depths: dict[tuple[str, str], int] = {}
    for pop in (*net.groups, *net.sources):
        for ev in population_events(pop):
            depths[(pop.name, ev)] = 1
    for s in net.synapses:
        for pw in s.pathways:
            grp = s.pre if pw.source == "pre" else s.post
            key = (grp, pw.event)
            if key not in depths:
                raise ModelError(f"synapses {s.name!r}, pathway {pw.name!r}: group {grp!r} "
                                 f"has no event {pw.event!r}")
            d = pw.delay.steps if isinstance(pw.delay, ir.HomogeneousDelay) else pw.delay.max_steps
            if d < 0:
                raise ModelError(f"synapses {s.name!r}: negative delay {d}")
            depths[key] = max(depths[key], d + 1)
    return depths


@dataclass
class _Lowering:
    """What the lowerings of the single objects share: the network, its built sizes, and
    the plan as it grows (arrays in declaration order, kernels per phase in creation
    order; the final order within a phase is by ``order``, stable)."""

    net: ir.NetworkIR
    conn: Mapping[str, ConnShape]
    spike_schedules: Mapping[str, int]
    monitor_capacity: Callable[[ir.Monitor], int] | None
    depths: dict[tuple[str, str], int]
    #: the (population, event) rings that also keep each event's multiplicity
    multiple: set[tuple[str, str]]
    arrays: list[k.ArrayDecl]
    phase_kernels: dict[str, list[k.Kernel]]

    @property
    def batch_size(self) -> int:
        return self.net.batch_size


def lower(net: ir.NetworkIR, conn: Mapping[str, ConnShape],
          spike_schedules: Mapping[str, int] | None = None,
          monitor_capacity: Callable[[ir.Monitor], int] | None = None) -> k.Plan:
    """Lower ``net`` given the built connectivity sizes ``conn`` (per synapse group).

    ``spike_schedules``: per spike-array source, the number of steps of its schedule.
    """
    depths = ring_depths(net)
    multiple = {(grp, ev) for (grp, ev) in depths
                if has_multiplicity(net.population(grp), ev)}
    low = _Lowering(net, conn, spike_schedules or {}, monitor_capacity, depths, multiple,
                    _runtime_ring_and_input_arrays(net, depths, multiple),
                    {p: [] for p in ir.PHASES})
    _lower_groups(low)
    _lower_sources(low)
    _lower_synapses(low)  # their groups-phase kernels go before the neuron updates
    _lower_operations(low)
    _lower_cables(low)
    _lower_monitors(low)
    return _plan(low)


def _runtime_ring_and_input_arrays(net: ir.NetworkIR, depths: Mapping[tuple[str, str], int],
                                   multiple: set[tuple[str, str]]) -> list[k.ArrayDecl]:
    """The arrays of the runtime, of every spike ring and of every timed array."""
    B = net.batch_size
    arrays: list[k.ArrayDecl] = [
        k.ArrayDecl("__step", "int64", 1, role="runtime"),
        k.ArrayDecl("__origin", "int64", 1, role="runtime"),
        # the seed as data, not text: networks that differ only in it share compiled code
        k.ArrayDecl("__seed", "int64", 1, role="runtime"),
    ]
    for (grp, ev), depth in depths.items():
        size = net.population(grp).size
        r = ring_name(grp, ev)
        arrays.append(k.ArrayDecl(f"{r}_count", "int32", depth * B, role="ring", owner=grp))
        arrays.append(k.ArrayDecl(f"{r}_list", "int32", depth * B * size, role="ring",
                                  owner=grp))
        if (grp, ev) in multiple:
            arrays.append(k.ArrayDecl(f"{r}_mult", "int32", depth * B * size, role="ring",
                                      owner=grp))
    for ta in net.timed_arrays:
        arrays.append(k.ArrayDecl(array_name("timed", ta.name), "float", int(ta.values.size),
                                  role="input", owner=ta.name))
    return arrays


def _plan(low: _Lowering) -> k.Plan:
    """The kernels in schedule order, locals clear of reserved names, shared writes
    committed after their kernels."""
    net = low.net
    kernels: list[k.Kernel] = []
    for phase in net.schedule:
        kernels += sorted(low.phase_kernels[phase], key=lambda kern: kern.order)  # stable
    kernels = [k.rename_locals(kern, {name: f"{name}_gsu" for name, _ in kern.locals
                                      if name in k.RESERVED_NAMES}) for kern in kernels]
    kernels, shadows = commit_shared_writes(kernels, low.arrays)
    arrays = [*low.arrays, *shadows]
    return k.Plan(net.name, net.precision, low.batch_size, net.dt, net.seed, tuple(arrays),
                  tuple(kernels),
                  tuple((ring_name(g, e), d) for (g, e), d in low.depths.items()),
                  functions=used_functions(kernels, net.functions))


# ----------------------------------------------------------------------------- neuron groups
def _fused_thresholds(net: ir.NetworkIR) -> set[str]:
    """The neuron groups whose threshold kernel fuses with their update kernel."""
    # A group's threshold reads only its own variables, which nothing after its update in
    # the groups phase writes: with 'thresholds' right after 'groups' the two fuse into one
    # kernel (one launch and one pass over memory less per group and step), same result.
    # Not for groups whose variables other kernels of those phases write, or that read
    # linked variables (another group's update may come later in the phase).
    sched = list(net.schedule)
    fuse_adjacent = ("groups" in sched and "thresholds" in sched
                     and sched.index("thresholds") == sched.index("groups") + 1)
    if not fuse_adjacent:
        return set()
    written_elsewhere = {op.group for op in net.operations
                         if op.when in ("groups", "thresholds")}
    written_elsewhere |= {c.group for c in net.cables}  # the cable solve writes v
    for syn in net.synapses:
        written_elsewhere |= {syn.post if sv.side == "post" else syn.pre for sv in syn.summed}
        if syn.dynamics:
            written_elsewhere |= {syn.pre, syn.post}
    return {g.name for g in net.groups
            if g.name not in written_elsewhere and not any(v.linked for v in g.variables)}


def _lower_groups(low: _Lowering) -> None:
    """Per neuron group: its state arrays, update and threshold kernels, and resets."""
    net = low.net
    fused = _fused_thresholds(net)
    for g in net.groups:
        for v in population_variables(g):
            if v.linked is None:
                low.arrays.append(k.ArrayDecl(array_name(g.name, v.name), v.dtype,
                                              1 if v.shared else g.size, v.batched, "state",
                                              g.name))
        scope = neuron_scope(net, g)
        every = period(g.dt, net.dt, f"neuron group {g.name!r}")
        _lower_update_and_events(low, g, scope, every, g.name in fused)
        _lower_resets(low, g, scope, every)


def _lower_update_and_events(low: _Lowering, g: ir.NeuronGroupIR, scope: Scope, every: int,
                             fuse_threshold: bool) -> None:
    """``<g>_update`` and ``<g>_threshold``, or both in one kernel when they fuse."""
    net, B, depths, phase_kernels = low.net, low.batch_size, low.depths, low.phase_kernels
    dom = k.ElementDomain(g.name, g.size)
    # update: refractoriness first (Brian2's state updater does the same)
    w = KernelWriter(scope, f"{g.name}_update", allow_accumulate=False, batch_size=B)
    pre: list[ir.Statement] = []
    for e in g.events:
        if e.refractory is not None:
            pre.append(ir.Assign("not_refractory",
                                 _not_refractory(e.refractory, g.dt or net.dt)))
    body = w.statements(optimise((*pre, *g.update), scope))
    if not fuse_threshold:
        if body:
            phase_kernels["groups"].append(w.kernel(dom, body, "groups",
                                                    f"state update of {g.name}", every,
                                                    g.order))
        w = KernelWriter(scope, f"{g.name}_threshold", allow_accumulate=False,
                         batch_size=B)
        body = ()
    # thresholds: every event's condition
    body_t: list[k.KStmt] = []
    for e in g.events:
        cond = e.condition
        on_event: list[ir.Statement] = []
        if e.refractory is not None:
            cond = sympy.And(cond, sympy.Symbol("not_refractory"))
            on_event = [ir.Assign("lastspike", sympy.Symbol("t")),
                        ir.Assign("not_refractory", sympy.false)]
        c = w.expr(cond, {}, body_t)
        mult = (None if e.multiplicity is None
                else w.expr(sympy.Symbol(e.multiplicity), {}, body_t))
        inner = (k.PushEvent(ring_name(g.name, e.name), g.size,
                             depths[(g.name, e.name)], mult),
                 *w.statements(on_event))
        body_t.append(k.If(c, inner))
    if fuse_threshold and (body or body_t):
        phase_kernels["groups"].append(w.kernel(dom, (*body, *body_t), "groups",
                                                f"state update and events of {g.name}",
                                                every, g.order))
    elif body_t:
        phase_kernels["thresholds"].append(w.kernel(dom, tuple(body_t), "thresholds",
                                                    f"events of {g.name}", every, g.order))


def _not_refractory(refractory: sympy.Basic, dt: float) -> sympy.Basic:
    """Brian2's rule: refractory while ``timestep(t - lastspike) < timestep(refractory)``
    for a duration; for a condition, refractoriness is only *left* when it stops holding:
    ``not_refractory = not_refractory or not condition``."""
    if is_boolean(refractory):
        return sympy.Or(sympy.Symbol("not_refractory"), sympy.Not(refractory))
    t, last = sympy.Symbol("t"), sympy.Symbol("lastspike")
    # timestep(t - lastspike) >= R with the integer R = timestep(refractory); since
    # floor(x) >= R <=> x >= R for an integer R, this is lastspike <= t - (R - 1e-3) dt:
    # one comparison per neuron instead of a floor of a difference.
    steps = sympy.floor((refractory + 1e-3 * dt) / dt)
    return sympy.LessThan(last, t - (steps - 1e-3) * dt)


def _lower_resets(low: _Lowering, g: ir.NeuronGroupIR, scope: Scope, every: int) -> None:
    """Per event with a reset: ``<g>_<event>_reset``, over the elements that emitted it."""
    for e in g.events:
        if not e.reset:
            continue
        w = KernelWriter(scope, f"{g.name}_{e.name}_reset", allow_accumulate=False,
                         batch_size=low.batch_size)
        body = w.statements(e.reset)
        edom = k.EventDomain(g.name, g.size, ring_name(g.name, e.name),
                             low.depths[(g.name, e.name)])
        low.phase_kernels["resets"].append(w.kernel(edom, body, "resets",
                                                    f"{e.name} reset of {g.name}", every,
                                                    g.order))


# ----------------------------------------------------------------------------- sources
def _lower_sources(low: _Lowering) -> None:
    """Per source: its arrays and the kernel that emits its spikes (thresholds phase)."""
    net, arrays = low.net, low.arrays
    for src in net.sources:
        r = ring_name(src.name, "spike")
        depth = low.depths[(src.name, "spike")]
        if isinstance(src, ir.PoissonSourceIR):
            arrays.append(k.ArrayDecl(array_name(src.name, "rates"), "float", src.size, False,
                                      "state", src.name))
            name = f"{src.name}_poisson"
            sid = stream_id(name)
            u, rate = sympy.Symbol("_rand0"), sympy.Symbol("rates")
            body = (k.Load("rates", array_name(src.name, "rates"), "elem"),
                    k.Draw("_rand0", "uniform", 0, sid),
                    k.If(sympy.StrictLessThan(u, rate * net.dt),
                         (k.PushEvent(r, src.size, depth),)))
            low.phase_kernels["thresholds"].append(k.Kernel(
                name, k.ElementDomain(src.name, src.size), body, "thresholds",
                f"Poisson spikes of {src.name}", (("rates", "float"), ("_rand0", "float")),
                order=src.order))
        elif isinstance(src, ir.SpikeArraySourceIR):
            n_steps = low.spike_schedules.get(src.name, 0)
            arrays.append(k.ArrayDecl(array_name(src.name, "offsets"), "int32", n_steps + 1,
                                      role="input", owner=src.name))
            arrays.append(k.ArrayDecl(array_name(src.name, "indices"), "int32",
                                      max(1, len(src.indices)), role="input", owner=src.name))
            repeat = int(round(src.period / net.dt)) if src.period > 0 else 0
            counts = src.counts is not None
            if counts:
                arrays.append(k.ArrayDecl(array_name(src.name, "counts"), "int32",
                                          max(1, len(src.indices)), role="input",
                                          owner=src.name))
            low.phase_kernels["thresholds"].append(k.Kernel(
                f"{src.name}_spikes",
                k.SpikeListDomain(src.name, src.size, n_steps, repeat, counts),
                (k.PushEvent(r, src.size, depth,
                             sympy.Symbol(k.MULT_LOCAL) if counts else None),),
                "thresholds", f"scheduled spikes of {src.name}", order=src.order))
        else:  # pragma: no cover
            raise UnsupportedFeature(f"source type {type(src).__name__}")


# ----------------------------------------------------------------------------- synapses
#: per side (``'pre'``, ``'post'``): what synapse code may accumulate into, name -> (array, index)
_Targets = dict[str, dict[str, tuple[str, k.Index]]]


def _lower_synapses(low: _Lowering) -> None:
    """Per synapse group: its arrays, dynamics and summed-variable kernels (groups phase,
    ahead of every neuron update) and one kernel per pathway (synapses phase)."""
    net = low.net
    synapse_kernels_groups: list[k.Kernel] = []
    endpoint_names = endpoints.used_as_endpoint(net)
    sched = list(net.schedule)
    delivery_before_events = ("synapses" in sched and "thresholds" in sched
                              and sched.index("synapses") < sched.index("thresholds"))
    for s in net.synapses:
        shape = low.conn[s.name]
        _declare_synapse_arrays(low, s, shape, s.name in endpoint_names)
        scope = synapse_scope(net, s, shape)
        acc = {side: accumulate_targets(net, getattr(s, side), side)
               for side in ("pre", "post")}
        sdom = k.SynapseDomain(s.name, shape.n_pre, shape.n_post, shape.max_row)
        every = period(s.dt, net.dt, f"synapses {s.name!r}")
        if s.dynamics:
            w = KernelWriter(scope, f"{s.name}_dynamics", allow_accumulate=True,
                             accumulate_arrays=acc, batch_size=low.batch_size)
            body = w.statements(optimise(s.dynamics, scope))
            synapse_kernels_groups.append(w.kernel(sdom, body, "groups",
                                                   f"clock-driven dynamics of {s.name}",
                                                   every, s.order))
        for sv in s.summed:
            synapse_kernels_groups += _lower_summed(low, s, sv, scope, acc, sdom, every)
        for pw in s.pathways:
            low.phase_kernels["synapses"].append(
                _lower_pathway(low, s, pw, scope, acc, shape, delivery_before_events))
    low.phase_kernels["groups"] = synapse_kernels_groups + low.phase_kernels["groups"]


def _declare_synapse_arrays(low: _Lowering, s: ir.SynapseGroupIR, shape: ConnShape,
                            is_endpoint: bool) -> None:
    """State and connectivity arrays of ``s`` (and its slot maps where another synapse
    group has it as a side)."""
    arrays = low.arrays
    n_padded = shape.n_pre * shape.max_row
    if is_endpoint:
        arrays += endpoints.endpoint_arrays(s.name, shape.n_synapses)
    for v in s.variables:
        arrays.append(k.ArrayDecl(array_name(s.name, v.name), v.dtype,
                                  1 if v.shared else n_padded, v.batched, "state", s.name))
    arrays += [
        k.ArrayDecl(array_name(s.name, "rowlen"), "int32", shape.n_pre,
                    role="connectivity", owner=s.name),
        k.ArrayDecl(array_name(s.name, "cols"), "int32", max(1, n_padded),
                    role="connectivity", owner=s.name),
    ]
    needs_colmap = any(pw.source == "post" for pw in s.pathways)
    if needs_colmap:
        arrays += [
            k.ArrayDecl(array_name(s.name, "collen"), "int32", shape.n_post,
                        role="connectivity", owner=s.name),
            k.ArrayDecl(array_name(s.name, "remap"), "int32",
                        max(1, shape.n_post * shape.max_col), role="connectivity",
                        owner=s.name),
        ]


def _lower_summed(low: _Lowering, s: ir.SynapseGroupIR, sv: ir.SummedVariableIR,
                  scope: Scope, acc: _Targets, sdom: k.SynapseDomain, every: int) -> list[k.Kernel]:
    """A summed variable: clear the target range, then accumulate into it."""
    net = low.net
    target_pop = net.endpoint(s.post if sv.side == "post" else s.pre)
    tarr = array_name(target_pop.name, sv.target)
    if isinstance(target_pop, ir.SynapseGroupIR):
        target_vars = target_pop.variables
        t_shape = low.conn[target_pop.name]
        size = t_shape.n_pre * t_shape.max_row  # every padded slot is cleared
    else:
        target_vars, size = population_variables(target_pop), target_pop.size
    if not any(v.name == sv.target for v in target_vars):
        raise ModelError(f"synapses {s.name!r}: summed variable target {sv.target!r} "
                         f"is not a variable of {target_pop.name!r}")
    if sv.target_range and isinstance(target_pop, ir.SynapseGroupIR):
        raise ModelError(f"synapses {s.name!r}: a summed variable into the synapses "
                         f"{target_pop.name!r} sums into all of them (no range)")
    lo, hi = sv.target_range or (0, size)
    if not 0 <= lo <= hi <= size:
        raise ModelError(f"synapses {s.name!r}: summed variable range {lo}:{hi} lies "
                         f"outside {target_pop.name!r} (size {size})")
    zero = k.Kernel(f"{s.name}_summed_{sv.side}_{sv.target}_zero",
                    k.ElementDomain(target_pop.name, hi - lo),
                    (k.Store(tarr, sympy.Integer(0), I + lo if lo else "elem"),),
                    "groups",
                    f"clear {target_pop.name}.{sv.target} before summing",
                    (), every, s.order)
    w = KernelWriter(scope, f"{s.name}_summed_{sv.side}_{sv.target}",
                     allow_accumulate=True,
                     accumulate_arrays=acc, batch_size=low.batch_size)
    body = w.statements((ir.Accumulate(sv.target, sv.expr, sv.side),))
    return [zero, w.kernel(sdom, body, "groups", f"summed variable {sv.target}", every,
                           s.order)]


def _lower_pathway(low: _Lowering, s: ir.SynapseGroupIR, pw: ir.PathwayIR, scope: Scope,
                   acc: _Targets, shape: ConnShape, delivery_before_events: bool) -> k.Kernel:
    """``<S>_<pathway>``: the pathway's statements per synapse of each arriving event."""
    B = low.batch_size
    grp = s.pre if pw.source == "pre" else s.post
    r = ring_name(grp, pw.event)
    if (isinstance(pw.delay, ir.HomogeneousDelay) and pw.delay.steps == 0
            and delivery_before_events):
        raise ModelError(
            f"synapses {s.name!r}, pathway {pw.name!r}: a delay of 0 steps cannot be "
            "delivered when the schedule runs 'synapses' before 'thresholds' (the "
            "events of a step do not exist yet); use a delay of at least one step")
    mult = (grp, pw.event) in low.multiple
    depth = low.depths[(grp, pw.event)]
    if isinstance(pw.delay, ir.HeterogeneousDelay):
        dvar = s.variable(pw.delay.variable)
        if dvar.dtype not in ("int32", "int64"):
            raise ModelError(f"synapses {s.name!r}: heterogeneous delay variable "
                             f"{dvar.name!r} must be an integer number of steps")
        dom = k.PathwayDomain(s.name, pw.source, grp, shape.n_pre, shape.n_post,
                              shape.max_row, shape.max_col, r, depth,
                              0, array_name(s.name, dvar.name), pw.delay.max_steps,
                              mult)
    else:
        dom = k.PathwayDomain(s.name, pw.source, grp, shape.n_pre, shape.n_post,
                              shape.max_row, shape.max_col, r, depth,
                              pw.delay.steps, mult=mult)
    w = KernelWriter(scope, f"{s.name}_{pw.name}", allow_accumulate=True,
                     accumulate_arrays=acc, batch_size=B)
    body = w.statements(optimise(pw.statements, scope))
    if mult:  # NEST: the synapse runs once, the receiver takes the weight k times
        body = scaled_accumulations(body, sympy.Symbol(k.MULT_LOCAL))
    if B > 1:
        own = {v.name: v for v in s.variables}  # side writes (v_post) are the
        for name in w.written:                   # groups' own, batched variables
            if name in own and not own[name].batched:
                raise ModelError(
                    f"synapses {s.name!r}, pathway {pw.name!r}: `{name} = ...` writes a "
                    f"variable shared by all {B} batch entries; declare it batched"
                )
    return w.kernel(dom, body, "synapses", f"{pw.event} pathway {pw.name}",
                    order=s.order if pw.order is None else pw.order)


# ----------------------------------------------------------------------------- operations, cables
def _lower_operations(low: _Lowering) -> None:
    """Custom operations (run_regularly): one kernel each, in the operation's phase."""
    net, B = low.net, low.batch_size
    for op in net.operations:
        target = next((g for g in (*net.groups, *net.synapses) if g.name == op.group), None)
        if target is None:
            raise ModelError(f"operation {op.name!r}: no neuron or synapse group "
                             f"{op.group!r}")
        if op.when not in low.phase_kernels:
            raise ModelError(f"operation {op.name!r}: unknown phase {op.when!r}")
        if isinstance(target, ir.NeuronGroupIR):
            scope = neuron_scope(net, target)
            w = KernelWriter(scope, op.name, allow_accumulate=False, batch_size=B)
            dom = k.ElementDomain(target.name, target.size)
        else:
            shape = low.conn[target.name]
            scope = synapse_scope(net, target, shape)
            w = KernelWriter(scope, op.name, allow_accumulate=False, batch_size=B)
            dom = k.SynapseDomain(target.name, shape.n_pre, shape.n_post, shape.max_row)
        body = w.statements(optimise(op.statements, scope))
        low.phase_kernels[op.when].append(w.kernel(dom, body, op.when,
                                                   f"operation {op.name} on {op.group}",
                                                   op.every, op.order))


def _lower_cables(low: _Lowering) -> None:
    """Cables (multi-compartment neurons): kernels of their own, see :mod:`.lower_cable`."""
    for c in low.net.cables:
        decls, cable_kernels = lower_cable(low.net, c)
        low.arrays += decls
        low.phase_kernels["groups"] += cable_kernels


# ----------------------------------------------------------------------------- monitors
def _lower_monitors(low: _Lowering) -> None:
    """Per monitor: ``<m>_record`` in the monitor's phase, and its buffers."""
    for m in low.net.monitors:
        kern, decls = _lower_monitor(low, m)
        low.arrays += decls
        low.phase_kernels[kern.phase].append(kern)


def _lower_monitor(low: _Lowering, m: ir.Monitor) -> tuple[k.Kernel, list[k.ArrayDecl]]:
    if isinstance(m, ir.StateMonitorIR):
        return _state_monitor(low, m)
    pop = low.net.population(m.source)
    if isinstance(m, ir.RateMonitorIR):
        return _rate_monitor(low, m, pop)
    if isinstance(m, ir.EventMonitorIR):
        return _event_monitor(low, m, pop)
    raise UnsupportedFeature(f"monitor type {type(m).__name__}")  # pragma: no cover


def _rows(low: _Lowering, m: ir.Monitor) -> int:
    """Rows (samples or events) that the runtime's buffer of ``m`` holds."""
    return low.monitor_capacity(m) if low.monitor_capacity else 1


def _state_monitor(low: _Lowering, m: ir.StateMonitorIR
                   ) -> tuple[k.Kernel, list[k.ArrayDecl]]:
    net = low.net
    syn = next((x for x in net.synapses if x.name == m.source), None)
    if syn is not None:  # synapse variables: the runtime maps indices to padded slots
        n_el = low.conn[syn.name].n_synapses
        variables = {v.name: v for v in syn.variables}
        pop = syn
    else:
        pop = net.population(m.source)
        n_el = pop.size
        variables = {v.name: v for v in population_variables(pop)}
    idx = tuple(range(n_el)) if m.indices is None else m.indices
    decls = [k.ArrayDecl(f"{m.name}__idx", "int32", max(1, len(idx)), role="monitor",
                         owner=m.name)]
    rows = _rows(low, m)
    body: list[k.KStmt] = [k.Load("_rec_i", f"{m.name}__idx", "elem")]
    locs = [("_rec_i", "int32")]
    for var in m.variables:
        if var not in variables:
            raise ModelError(f"monitor {m.name!r}: {pop.name!r} has no variable {var!r}")
        v = variables[var]
        if v.linked is not None:
            raise UnsupportedFeature(f"monitor {m.name!r}: recording the linked variable "
                                     f"{pop.name}.{var}; record {v.linked[0]}."
                                     f"{v.linked[1]} instead")
        buf = f"{m.name}__{var}"
        decls.append(k.ArrayDecl(buf, "float64" if v.dtype == "float64" else
                                 ("float" if v.dtype == "float" else "float64"),
                                 rows * len(idx), True, "monitor", m.name))
        loc = f"_rec_{var}"
        body.append(k.Load(loc, array_name(pop.name, var), sympy.Symbol("_rec_i")))
        locs.append((loc, v.dtype))
        body.append(k.RecordValue(buf, sympy.Symbol(loc), I, len(idx), m.every))
    return (k.Kernel(f"{m.name}_record", k.ElementDomain(m.name, len(idx)), tuple(body),
                     m.when, f"state monitor of {pop.name}", tuple(locs),
                     order=m.order), decls)


def _rate_monitor(low: _Lowering, m: ir.RateMonitorIR, pop: ir.NeuronGroupIR | ir.Source
                  ) -> tuple[k.Kernel, list[k.ArrayDecl]]:
    rows = _rows(low, m)
    r = ring_name(pop.name, m.event)
    decls = [k.ArrayDecl(f"{m.name}__rate", "float64", rows, True, "monitor", m.name)]
    count = sympy.Symbol("_count")
    body = (k.LoadCount("_count", r, low.depths[(pop.name, m.event)]),
            k.RecordValue(f"{m.name}__rate", count / (pop.size * low.net.dt),
                          sympy.Integer(0), 1, 1))
    return (k.Kernel(f"{m.name}_record", k.SingleDomain(), body, m.when,
                     f"population rate of {pop.name}", (("_count", "int32"),),
                     order=m.order), decls)


def _event_monitor(low: _Lowering, m: ir.EventMonitorIR, pop: ir.NeuronGroupIR | ir.Source
                   ) -> tuple[k.Kernel, list[k.ArrayDecl]]:
    r = ring_name(pop.name, m.event)
    if (pop.name, m.event) not in low.depths:
        raise ModelError(f"monitor {m.name!r}: {pop.name!r} has no event {m.event!r}")
    mult = has_multiplicity(pop, m.event)
    edom = k.EventDomain(pop.name, pop.size, r, low.depths[(pop.name, m.event)], mult)
    if not m.variables and not mult:
        words = (pop.size + 31) // 32
        rows = _rows(low, m)
        decls = [k.ArrayDecl(f"{m.name}__bits", "uint32", rows * words, True, "monitor",
                             m.name)]
        return (k.Kernel(f"{m.name}_record", edom, (k.RecordBit(f"{m.name}__bits", words),),
                         "thresholds", f"{m.event} monitor of {pop.name}",
                         order=m.order), decls)
    cap = _rows(low, m)
    variables = {v.name: v for v in population_variables(pop)}
    body: list[k.KStmt] = []
    locs = []
    vals = []
    for var in m.variables:
        if var not in variables:
            raise ModelError(f"monitor {m.name!r}: {pop.name!r} has no variable {var!r}")
        body.append(k.Load(f"_rec_{var}", array_name(pop.name, var), "elem"))
        locs.append((f"_rec_{var}", variables[var].dtype))
        vals.append(sympy.Symbol(f"_rec_{var}"))
    if mult:  # the last value: the event's multiplicity (the runtime repeats the event)
        vals.append(sympy.Symbol(k.MULT_LOCAL))
    decls = [k.ArrayDecl(f"{m.name}__count", "int32", low.batch_size, False, "monitor",
                         m.name),
             k.ArrayDecl(f"{m.name}__events", "float64", cap * (2 + len(vals)), True,
                         "monitor", m.name)]
    body.append(k.RecordEvent(f"{m.name}__events", tuple(vals), cap))
    return (k.Kernel(f"{m.name}_record", edom, tuple(body), "thresholds",
                     f"{m.event} monitor of {pop.name} with "
                     + ("variables" if m.variables else "multiplicities"), tuple(locs),
                     order=m.order), decls)
