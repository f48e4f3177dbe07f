"""PyNN objects -> one :class:`~gpuspike.bridge.ir.NetworkIR` (SI units, NEST's timing).

Timing (checked against NEST in ``tests/pynn``): the network runs with
:data:`~gpuspike.bridge.ir.SCHEDULE_GENN` (events delivered before the neurons update).
A neuron firing in step ``s`` spikes at ``(s + 1) dt`` in PyNN's convention, and with a
delay of ``d`` steps its event must change the target's synaptic variable at
``(s + 1 + d) dt``, i.e. be delivered in step ``s + 1 + d``: the engine delay is ``d + 1``
steps. A spike-array source fires in the step of its time rounded up to the grid (NEST's
on-grid spike generator), so its delay is ``d``.
Current sources (:mod:`.electrodes`): the current applied during the step from ``t`` to
``t + dt`` is the source's value at ``t``, which is also what it records at ``t`` (its
onset at ``start`` first moves ``v`` at ``start + dt``, as with PyNN's NEST backend).
"""

from __future__ import annotations

import re

import dataclasses
from functools import cache

import numpy as np
import sympy
from gpuspike.bridge import ir
from gpuspike.bridge.expressions import parse_expression
from gpuspike.bridge.model import neuron_group, synapses

from .composition import beta_peak
from .models import UNIT_SCALE, instantiate, neuron_template
from .simulator import HOST_SOURCES
from .synapse_models import synapse_code


def _si(celltype, name: str, values) -> np.ndarray:
    return np.asarray(values, dtype=float) * UNIT_SCALE.get(celltype.units.get(name, ""), 1.0)


def state_variable_name(celltype, variable: str) -> str:
    return getattr(celltype, "model", None) and celltype.model.renames.get(
        variable, variable) or variable


def parameter_values(pop) -> dict[str, np.ndarray]:
    """SI values of a population's numeric parameters, by IR variable name."""
    ct = pop.celltype
    out = {}
    for name, value in pop._parameters.items():
        arr = np.asarray(value)
        if arr.dtype == object:
            continue
        out[state_variable_name(ct, name)] = _si(ct, name, np.broadcast_to(arr, (pop.size,)))
    model = getattr(ct, "model", None)
    if model is not None and model.method == "exact" and "tau_m" in out:
        # the exact propagator divides by tau_m - tau_syn: nudge equal time constants
        for syn in [n for n in out if n.startswith("tau_syn_")]:
            same = np.abs(out[syn] - out["tau_m"]) <= 1e-9 * out["tau_m"]
            out[syn] = np.where(same, out["tau_m"] * (1 + 1e-6), out[syn])
    for rise in [n for n in out if n.startswith("tau_rise_")]:
        # a beta receptor's normalisation follows from its time constants
        receptor = rise[len("tau_rise_"):]
        out[f"peak_{receptor}"] = beta_peak(out[rise], out[f"tau_decay_{receptor}"])
    return out


# ----------------------------------------------------------------------------- sources
@cache
def _source_template(kind: str) -> ir.NeuronGroupIR:
    window = "t + 0.5*dt > start and t + 0.5*dt < start + duration"
    if kind == "poisson":
        # NEST's poisson_generator: a Poisson number of spikes per step, sent as one event
        # of that multiplicity (several spikes per step once rate*dt is not small)
        g = neuron_group("template", 1, "rate : hertz (constant)\nstart : second (constant)"
                         "\nduration : second (constant)\nn_spikes : 1",
                         threshold="n_spikes > 0")
        draw = parse_expression(f"where({window}, poisson(rate*dt), 0)",
                                allowed={"rate", "dt", "t", "start", "duration"})
        spike = dataclasses.replace(g.events[0], multiplicity="n_spikes")
        return dataclasses.replace(g, update=(ir.Assign("n_spikes", draw),), events=(spike,))
    if kind == "poisson_refractory":
        return neuron_group(
            "template", 1, "rate : hertz (constant)\nstart : second (constant)\n"
            "duration : second (constant)\ntau_refrac : second (constant)",
            threshold=f"rand() < rate/(1 - rate*tau_refrac)*dt and {window}",
            refractory="tau_refrac")
    if kind == "gamma":
        # an integer-order gamma process: every alpha-th event of a Poisson process of
        # rate beta
        g = neuron_group("template", 1, "alpha : 1 (constant)\nbeta : hertz (constant)\n"
                         "start : second (constant)\nduration : second (constant)\nk : 1",
                         threshold=f"k >= alpha and {window}", reset="k = 0")
        step = parse_expression("k + where(rand() < beta*dt, 1, 0)",
                                allowed={"k", "beta", "dt"})
        return dataclasses.replace(g, update=(ir.Assign("k", step),))
    raise ValueError(kind)


def grid_step(t_ms: np.ndarray, dt_ms: float) -> np.ndarray:
    """The step a spike-array time belongs to: its time rounded up to the grid, as NEST's
    on-grid spike generators do (a time within 1e-6 step of a grid point is on it)."""
    return np.ceil(np.round(np.asarray(t_ms, dtype=float) / dt_ms, 6)).astype(np.int64)


def _spike_array(pop, name: str, dt_s: float, t_now: int) -> ir.SpikeArraySourceIR:
    """The source's schedule from step ``t_now`` on. ``pop._spike_schedule`` keeps each
    scheduled spike's exact time by ``step * size + index`` (for off-grid recording)."""
    times, idx = [], []
    for i, seq in enumerate(np.broadcast_to(pop._parameters["spike_times"], (pop.size,))):
        values = np.asarray(seq.value if hasattr(seq, "value") else seq, dtype=float)
        times.append(values)
        idx.append(np.full(values.size, i))
    t = np.concatenate(times) if times else np.zeros(0)
    i = np.concatenate(idx).astype(np.int64) if idx else np.zeros(0, np.int64)
    steps = grid_step(t, dt_s * 1e3)
    keep = steps >= t_now  # spikes in the past were already delivered (or missed)
    keys = steps[keep] * pop.size + i[keep]
    order = np.argsort(keys, kind="stable")
    pop._spike_schedule = (keys[order], t[keep][order])
    return ir.SpikeArraySourceIR(name, pop.size, steps[keep] * dt_s, i[keep])


def _host_poisson(state, pop, kind: str, name: str, values: dict,
                  dt_s: float) -> ir.SpikeArraySourceIR:
    """Poisson-type trains drawn on the host for steps [now, state.horizon) (NumPy engine).

    NOTE: the NumPy engine's per-step Philox draw costs about 1 ms per call whatever the
    size, so per-step ``rand()`` makes long CPU runs slow; until the engine draws a chunk
    of steps at once (issue 4), CPU runs take these sources' spikes from a schedule drawn
    with the same law as the device code: for the Poisson source a Poisson number of
    spikes per step (:func:`_poisson_counts`, sent with that multiplicity); for the
    others inter-spike intervals in steps that are geometric (a Bernoulli trial per step
    with p = rate*dt), plus the dead time for the refractory source, and the sum of
    ``alpha`` of them for the gamma source. Parameters are read when the schedule is
    drawn, so changing them rebuilds it.
    """
    rng = np.random.default_rng([state.seed, pop.first_index_id, state.step])
    if kind == "poisson":
        return _poisson_counts(rng, state, name, pop.size, values, dt_s)
    all_i, all_s = [], []
    for i in range(pop.size):
        rate = values["beta" if kind == "gamma" else "rate"][i]
        dead = 0
        if kind == "poisson_refractory":
            ref = values["tau_refrac"][i]
            dead = max(int(round(ref / dt_s)) - 1, 0)
            rate = rate / (1 - rate * ref) if rate * ref < 1 else np.inf
        order = int(round(values["alpha"][i])) if kind == "gamma" else 1
        p = min(rate * dt_s, 1.0)
        if p <= 0:
            continue
        lo = max(state.step, int(np.floor(values["start"][i] / dt_s + 1e-6)))
        hi = min(state.horizon, int(np.floor((values["start"][i] + values["duration"][i])
                                             / dt_s + 1e-6)))
        if hi <= lo:
            continue
        n = int((hi - lo) * p / order * 1.2) + 20
        fires, last = [], lo - 1
        while last < hi:
            isi = rng.geometric(p, size=(n, order)).sum(axis=1) + dead
            isi[0] -= dead if not fires else 0
            steps = last + np.cumsum(isi)
            fires.append(steps)
            last = int(steps[-1])
        fire = np.concatenate(fires)
        fire = fire[fire < hi]
        all_s.append(fire)
        all_i.append(np.full(fire.size, i))
    s = np.concatenate(all_s) if all_s else np.zeros(0, np.int64)
    i = np.concatenate(all_i) if all_i else np.zeros(0, np.int64)
    return ir.SpikeArraySourceIR(name, pop.size, s * dt_s, i.astype(np.int64))


def _poisson_counts(rng, state, name: str, size: int, values: dict,
                    dt_s: float) -> ir.SpikeArraySourceIR:
    """Poisson spike counts per step for steps [now, state.horizon), as events with
    multiplicities: a Poisson process of ``rate`` draws ``Poisson(rate T)`` spikes spread
    uniformly over its window of length ``T``, so the count of each step is an independent
    ``Poisson(rate dt)`` (NEST's poisson_generator); the cost grows with the spikes, not
    the steps."""
    start = np.floor(values["start"] / dt_s + 1e-6).astype(np.int64)
    stop = np.floor((values["start"] + values["duration"]) / dt_s + 1e-6)
    lo = np.maximum(state.step, start)
    hi = np.minimum(state.horizon, stop).astype(np.int64)
    span = np.maximum(hi - lo, 0)
    lam = np.maximum(values["rate"], 0.0) * dt_s * span
    n = rng.poisson(lam)
    owner = np.repeat(np.arange(size), n)
    steps = lo[owner] + np.floor(rng.random(owner.size) * span[owner]).astype(np.int64)
    keys, counts = np.unique(steps * size + owner, return_counts=True)
    return ir.SpikeArraySourceIR(name, size, (keys // size) * dt_s, keys % size,
                                 counts=counts)


# ----------------------------------------------------------------------------- current sources
def _current_terms(state, pop, dt_s: float):
    """Extra variables, ``i_inj`` statement, timed arrays, operations and monitors of a
    group's current sources (their expressions and values: :mod:`.electrodes`)."""
    extra, terms, timed, ops, monitors, values = [], [], [], [], [], {}
    for src in state.current_sources:
        mask = np.zeros(pop.size)
        for cell in src.cell_list:
            if cell.parent is pop:
                mask[int(cell) - pop.first_index_id] = 1.0
        if not mask.any():
            continue
        k = src.index
        prefix = f"cs{k}_"
        on = f"{prefix}on"
        extra.append(ir.Variable(on, "float", "1", batched=False, read_only=True))
        values[on] = mask
        src._engine_groups.append(pop.group_name)
        if src.tabulated:
            timed.append(ir.TimedArrayIR(f"{prefix}steps", src.table(), dt_s))
            terms.append(sympy.Symbol(on) * sympy.Function(f"{prefix}steps")(sympy.Symbol("t")))
            continue
        names = {}
        for name, value in src.engine_values().items():
            extra.append(ir.Variable(prefix + name, "float", "1", batched=False,
                                     read_only=True, init=ir.Constant(float(value))))
            names[name] = prefix + name
        if src.state_variable:
            var = prefix + src.state_variable
            names[src.state_variable] = var
            # the value for step 0 (later ones are drawn at the end of the step before)
            first = parse_expression("mean + stdev*randn()", allowed={"mean", "stdev"})
            first = first.xreplace({sympy.Symbol(n): sympy.Float(v) for n, v in
                                    src.engine_values().items()})
            extra.append(ir.Variable(var, "float", "amp", init=ir.ExpressionInit(first)))
            draw = parse_expression(src.draw, allowed=set(names) | {"t", "dt"})
            ops.append(ir.CustomOperationIR(f"{pop.group_name}_cs{k}", pop.group_name,
                                            (ir.Assign(var, _renamed(draw, names)),),
                                            when="end"))
            if src._recording and src.recorded_cell[0] is pop:
                monitors.append(ir.StateMonitorIR(f"cs{k}_recorded", pop.group_name, (var,),
                                                  indices=(src.recorded_cell[1],),
                                                  when="synapses", order=1))
        expr = parse_expression(src.expression, allowed=set(names) | {"t", "dt"})
        terms.append(sympy.Symbol(on) * _renamed(expr, names))
    if not terms:
        return (), (), (), (), (), {}
    return (tuple(extra), (ir.Assign("i_inj", sympy.Add(*terms)),), tuple(timed), tuple(ops),
            tuple(monitors), values)


def _renamed(expr: sympy.Expr, names: dict[str, str]) -> sympy.Expr:
    return expr.xreplace({sympy.Symbol(a): sympy.Symbol(b) for a, b in names.items()})


# ----------------------------------------------------------------------------- populations
def _population(state, pop, dt_s: float):
    ct = pop.celltype
    name = pop.group_name
    kind = getattr(ct, "source_kind", None)
    if kind == "array":
        return _spike_array(pop, name, dt_s, state.step), (), (), ()
    values = parameter_values(pop)
    if kind in HOST_SOURCES and state.host_poisson:
        return _host_poisson(state, pop, kind, name, values, dt_s), (), (), ()
    if kind is not None:
        template = _source_template(kind)
        return instantiate(template, name, pop.size, values), (), (), ()
    for var, default in ct.default_initial_values.items():
        init = pop._initial.get(var)
        if init is None:
            init = np.full(pop.size, float(default))
        values[state_variable_name(ct, var)] = _si(ct, var, init)
    extra, pre, timed, ops, cs_monitors, cs_values = _current_terms(state, pop, dt_s)
    values.update(cs_values)
    group = instantiate(neuron_template(ct.model), name, pop.size, values, extra, pre)
    return group, timed, ops, cs_monitors


# ----------------------------------------------------------------------------- projections
def _locate(state, cells: np.ndarray):
    """(population index, index within it) of global ids."""
    firsts = np.array([p.first_index_id for p in state.populations])
    order = np.argsort(firsts)
    k = order[np.searchsorted(firsts[order], cells, side="right") - 1]
    return k, cells - firsts[k]


def _side(state, cells, idx: np.ndarray):
    """(population index, index within it) of a projection side's connection indices; a
    whole population needs no look-up (a full-scale microcircuit has 3e8 of them)."""
    for k, pop in enumerate(state.populations):
        if pop is cells:
            return np.broadcast_to(np.int64(k), idx.shape), idx
    return _locate(state, np.asarray(cells.all_cells, dtype=np.int64)[idx])


def _receptor_tau(model, receptor: str) -> str | None:
    """The post-synaptic parameter holding a receptor's current time constant
    (``tau_syn_E``/``tau_syn_I``, ``tau_syn_<R>`` of composed cells), if the cell has one:
    NEST's tsodyks_synapse takes it as ``tau_psc`` (pyNN.nest copies it over)."""
    name = {"excitatory": "tau_syn_E", "inhibitory": "tau_syn_I"}.get(receptor,
                                                                        f"tau_syn_{receptor}")
    return name if re.search(rf"\b{name}\b", model.equations) else None


def _projection(state, prj, dt_s: float) -> list[ir.SynapseGroupIR]:
    pre_pop, pre_i = _side(state, prj.pre, prj._pre_idx)
    post_pop, post_j = _side(state, prj.post, prj._post_idx)
    out, parts = [], []
    n_pops = len(state.populations)
    if pre_pop.strides == (0,) and post_pop.strides == (0,):  # population to population
        pairs = [(int(pre_pop[0]), int(post_pop[0]))] if pre_pop.size else []
    else:
        pairs = [divmod(int(k), n_pops) for k in np.unique(pre_pop * n_pops + post_pop)]
    attrs = prj._attrs
    if getattr(prj, "_stdp_weight", None) is not None:
        attrs = {**attrs, "_w_stdp": prj._stdp_weight}  # STDP's running weight
    # NOTE: a rebuild restarts the synaptic state (MultiQuantalSynapse, Tsodyks-Markram)
    # from its initial values
    attrs = {**attrs, **{f"_init_{k}": v for k, v in getattr(prj, "_initial_state", {}).items()}}
    for a, b in pairs:
        sel = (np.arange(pre_pop.size) if len(pairs) == 1
               else np.flatnonzero((pre_pop == a) & (post_pop == b)))
        src, tgt = state.populations[a], state.populations[b]
        model = tgt.celltype.model
        target, factor = model.receptors[prj.receptor_type]
        offset = src.celltype.spike_time_offset_steps
        delay_steps = np.round(attrs["delay"][sel] / state.dt).astype(np.int64)
        steps = np.maximum(delay_steps + offset, 1)
        gname = f"s{prj.index}_{a}_{b}"
        conn = ir.FromList(pre_i[sel].astype(np.int64), post_j[sel].astype(np.int64))
        code = synapse_code(prj.synapse_type, attrs, sel, target, factor, delay_steps,
                            _receptor_tau(model, prj.receptor_type))
        model_eqs, on_pre, init = code.model, code.on_pre, code.init
        if sel.size and np.all(steps == steps[0]):
            delay: float | str = float(steps[0]) * dt_s
            max_delay = None
        else:
            model_eqs += "\nd : second"
            init["d"] = steps * dt_s
            delay, max_delay = "d", float(max(steps.max(initial=1), 1)) * dt_s
        post_vars: tuple[str, ...] = (target, *code.post_variables)
        if model.delta_input:
            # a voltage jump at t + delay is visible at that time: it goes straight into v
            # (the state sample at t is taken after delivery), unless the cell is refractory
            gate = "*where(not_refractory_post, 1, 0)" if model.refractory else ""
            on_pre = on_pre.replace(f"{target}_post += weight", f"v_post += weight{gate}")
            post_vars = ("v", "not_refractory") if model.refractory else ("v",)
        syn = synapses(gname, src.group_name, tgt.group_name, model=model_eqs, on_pre=on_pre,
                       on_post=code.on_post, connector=conn, delay=delay, max_delay=max_delay,
                       dt=dt_s, namespace=code.namespace, init=init, post_variables=post_vars)
        if code.post_delay_steps is not None:
            syn = _delay_post_pathway(syn, code.post_delay_steps)
        out.append(syn)
        parts.append((gname, sel, factor))
    prj._engine_parts = [(g, s) for g, s, _ in parts]
    prj._weight_factor = parts[0][2] if parts else 1.0
    prj._engine_factors = {g: f for g, _, f in parts}
    return out


def _delay_post_pathway(syn: ir.SynapseGroupIR, steps: np.ndarray) -> ir.SynapseGroupIR:
    """Give the post-synaptic pathway its delay (engine steps per synapse) and run it before
    the pre-synaptic one (kernels of one order keep the pathways' order)."""
    extra: tuple[ir.Variable, ...] = ()
    if steps.size and np.all(steps == steps[0]):
        delay: ir.Delay = ir.HomogeneousDelay(int(steps[0]))
    else:
        delay = ir.HeterogeneousDelay("dpost_steps", int(steps.max(initial=1)))
        extra = (ir.Variable("dpost_steps", "int32", "1", batched=False, read_only=True,
                             init=ir.ArrayInit(steps.astype(np.int32))),)
    post = tuple(dataclasses.replace(pw, delay=delay) for pw in syn.pathways
                 if pw.source == "post")
    pre = tuple(pw for pw in syn.pathways if pw.source != "post")
    return dataclasses.replace(syn, variables=syn.variables + extra, pathways=post + pre)


def push_projection_attribute(prj, name: str) -> bool:
    """Write a changed attribute to the engine; False when it needs a rebuild."""
    state = prj._simulator.state
    if name == "weight":
        stdp = type(prj.synapse_type).__name__ == "STDPMechanism"
        for g, sel in prj._engine_parts:
            w = prj._attrs["weight"][sel] * prj._engine_factors[g]
            state.engine.set(g, "weight", w)
            if stdp:
                state.engine.set(g, "w_stdp", prj._stdp_weight[sel] * prj._engine_factors[g])
        return True
    if name == "p" and type(prj.synapse_type).__name__ == "SimpleStochasticSynapse":
        for g, sel in prj._engine_parts:
            state.engine.set(g, "p", prj._attrs["p"][sel])
        return True
    if name == "n" and type(prj.synapse_type).__name__ == "MultiQuantalSynapse":
        for g, sel in prj._engine_parts:
            state.engine.set(g, "n_sites", np.round(prj._attrs["n"][sel]))
        return True
    if name in ("U", "tau_rec", "tau_facil"):
        scale = 1.0 if name == "U" else 1e-3
        for g, sel in prj._engine_parts:
            state.engine.set(g, name, prj._attrs[name][sel] * scale)
        return True
    return False


# ----------------------------------------------------------------------------- network
def build_network(state) -> ir.NetworkIR:
    dt_s = state.dt * 1e-3
    groups, sources, timed, ops, syns, monitors = [], [], [], [], [], []
    for src in state.current_sources:
        src._engine_groups.clear()
    for pop in state.populations:
        g, ta, op, cs_monitors = _population(state, pop, dt_s)
        monitors += cs_monitors
        (sources if isinstance(g, ir.SpikeArraySourceIR) else groups).append(g)
        timed += ta
        ops += op
        rec = pop.recorder
        spikes, variables = rec.recorded_variables()
        rec._engine_variables = (spikes, variables)
        spikes_name, states_name = rec.monitor_names
        if spikes:
            monitors.append(ir.SpikeMonitorIR(spikes_name, pop.group_name))
        if variables:
            names = tuple(state_variable_name(pop.celltype, v) for v in variables)
            monitors.append(ir.StateMonitorIR(states_name, pop.group_name, names,
                                              every=rec.sampling_steps(), when="synapses",
                                              order=1))
    for prj in state.projections:
        syns += _projection(state, prj, dt_s)
    return ir.NetworkIR(dt=dt_s, groups=tuple(groups), synapses=tuple(syns),
                        sources=tuple(sources), timed_arrays=tuple(timed),
                        monitors=tuple(monitors), operations=tuple(ops),
                        schedule=ir.SCHEDULE_GENN, precision="float64", seed=state.seed,
                        name="pynn")
