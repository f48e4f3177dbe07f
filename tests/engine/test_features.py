"""Engine feature tests against analytic results, on every available engine.

Each test builds a small network with the model builder, runs it through
:func:`tests.simulate.simulate` (which also compiles the CUDA source with nvcc) and
compares with a closed form or a statistical law derived independently here.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import sympy
from gpuspike.bridge import ir
from gpuspike.bridge.expressions import parse_expression, parse_statements
from gpuspike.bridge.model import neuron_group, synapses

from tests.simulate import host, simulate

DT = 1e-4


def spike_source(name, n, times, indices):
    return ir.SpikeArraySourceIR(name, n, np.asarray(times, float), np.asarray(indices, int))


# ----------------------------------------------------------------------------- neurons
@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_lif_constant_drive_spike_times(engine, precision):
    """LIF dv/dt = (I - v)/tau, reset to 0, clamped during refractoriness.

    The exact integrator makes v exact on the grid: v_n = I (1 - exp(-n dt/tau)) after n
    updates, so the first crossing of 1 is after k = floor(t1/dt) + 1 updates with
    t1 = tau ln(I/(I-1)). Spikes are then at steps (k-1) + m (R - 1 + k), R = ref/dt.
    """
    tau, ref = 10e-3, 2e-3
    currents = np.array([1.2, 1.5, 2.0, 3.3])
    g = neuron_group("lif", len(currents), """
        dv/dt = (I - v)/tau : 1 (unless refractory)
        I : 1 (constant)
        """, threshold="v > 1", reset="v = 0", refractory="2*ms", namespace={"tau": tau},
        init={"I": currents})
    net = ir.NetworkIR(dt=DT, groups=(g,), monitors=(ir.SpikeMonitorIR("sm", "lif"),),
                       precision=precision)
    steps = 1000
    sim = simulate(net, engine, steps)
    rec = sim.spikes("sm")
    R = round(ref / DT)
    for n, current in enumerate(currents):
        t1 = tau * math.log(current / (current - 1))
        k = math.floor(t1 / DT) + 1
        expected = np.arange(k - 1, steps, R - 1 + k)
        got = np.round(rec.t[rec.i == n] / DT).astype(int)
        np.testing.assert_array_equal(got, expected, err_msg=f"neuron {n}, I={current}")


def test_refractory_condition(engine):
    """A refractory *condition* (Brian2's ``refractory='v > 0.5'``) is only left once it
    stops holding. v climbs 0.2 per step (Euler, exact here) and resets to 1: the neuron
    first spikes after 4 updates (v = 0.8 > 0.7), then stays refractory while v > 0.5, i.e.
    for ever: it climbs from 1. With a reset to 0 it is refractory for no step at all and
    fires every 4 steps."""
    for reset, expected in (("v = 1", [3]), ("v = 0", [3, 7, 11, 15])):
        g = neuron_group("g", 1, "dv/dt = 2000/second : 1", threshold="v > 0.7", reset=reset,
                         refractory="v > 0.5")
        net = ir.NetworkIR(dt=DT, groups=(g,), monitors=(ir.SpikeMonitorIR("sm", "g"),))
        rec = simulate(net, engine, 18).spikes("sm")
        assert np.round(rec.t / DT).astype(int).tolist() == expected, reset


@pytest.mark.parametrize("method,factor", [
    ("exact", lambda h: math.exp(-h)),
    ("exponential_euler", lambda h: math.exp(-h)),
    ("euler", lambda h: 1 - h),
    ("rk2", lambda h: 1 - h + h**2 / 2),
    ("rk4", lambda h: 1 - h + h**2 / 2 - h**3 / 6 + h**4 / 24),
])
def test_integrators_linear_ode(engine, method, factor):
    """dx/dt = -x/tau: each method multiplies x by its own amplification factor per step."""
    tau = 3e-3
    g = neuron_group("g", 1, "dx/dt = -x/tau : 1", method=method, namespace={"tau": tau},
                     init={"x": 1.0})
    net = ir.NetworkIR(dt=DT, groups=(g,),
                       monitors=(ir.StateMonitorIR("st", "g", ("x",), when="end"),))
    rec = simulate(net, engine, 40).states("st")
    n = np.arange(1, 41)
    expected = factor(DT / tau) ** n
    np.testing.assert_allclose(rec.values["x"][0, :, 0], expected, rtol=1e-12)


def test_euler_maruyama_ornstein_uhlenbeck(engine):
    """dx/dt = -x/tau + sigma sqrt(2/tau) xi has stationary variance sigma**2."""
    tau, sigma, n = 5e-3, 2.0, 4000
    g = neuron_group("ou", n, "dx/dt = -x/tau + sigma*sqrt(2/tau)*xi : 1",
                     namespace={"tau": tau, "sigma": sigma})
    net = ir.NetworkIR(dt=DT, groups=(g,), seed=3)
    sim = simulate(net, engine, 500)  # 10 tau: stationary
    x = sim.get("ou", "x")
    # Euler-Maruyama's stationary variance: sigma^2 * (2h) / (2h - h^2) with h = dt/tau
    h = DT / tau
    var = sigma**2 * 2 * h / (1 - (1 - h) ** 2)
    assert abs(x.mean()) < 5 * math.sqrt(var / n)
    assert abs(x.var() / var - 1) < 5 * math.sqrt(2 / n)


# ----------------------------------------------------------------------------- sources
def test_poisson_rates(engine):
    """Counts of a Poisson source are Binomial(steps, rate dt) per neuron."""
    n, rate, steps = 2000, 40.0, 2000
    src = ir.PoissonSourceIR("P", n, ir.Constant(rate))
    net = ir.NetworkIR(dt=DT, sources=(src,), monitors=(ir.SpikeMonitorIR("sm", "P"),), seed=7)
    counts = simulate(net, engine, steps).spikes("sm").count(n)
    p = rate * DT
    mean, var = steps * p, steps * p * (1 - p)
    assert abs(counts.mean() - mean) < 5 * math.sqrt(var / n)
    assert abs(counts.var() / var - 1) < 5 * math.sqrt(2 / n)


def test_poisson_seed_determinism_and_batches(engine):
    src = ir.PoissonSourceIR("P", 50, ir.Constant(100.0))
    mon = (ir.SpikeMonitorIR("sm", "P"),)
    a = simulate(ir.NetworkIR(dt=DT, sources=(src,), monitors=mon, seed=1), engine, 300)
    b = simulate(ir.NetworkIR(dt=DT, sources=(src,), monitors=mon, seed=1), engine, 300)
    c = simulate(ir.NetworkIR(dt=DT, sources=(src,), monitors=mon, seed=2), engine, 300)
    ra, rb, rc = a.spikes("sm"), b.spikes("sm"), c.spikes("sm")
    np.testing.assert_array_equal(ra.i, rb.i)
    np.testing.assert_array_equal(ra.t, rb.t)
    assert len(ra.i) != len(rc.i) or not np.array_equal(ra.i, rc.i)
    batched = simulate(ir.NetworkIR(dt=DT, sources=(src,), monitors=mon, seed=1,
                                    batch_size=3), engine, 300).spikes("sm")
    per_batch = [set(zip(batched.i[batched.batch == b], batched.t[batched.batch == b]))
                 for b in range(3)]
    assert per_batch[0] != per_batch[1] and per_batch[1] != per_batch[2]


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("delay", ["homogeneous", "heterogeneous"])
def test_event_multiplicity(engine, batch, delay):
    """An event of multiplicity n (NEST's several spikes per step): its pathway runs once
    (a synapse counter grows by 1), every accumulation is scaled by n, and the spike
    monitor records it n times. Element i of ``g`` emits i spikes every step; a spike
    array emits scheduled counts."""
    steps = 20
    g = neuron_group("g", 4, "n : 1", threshold="n > 0")
    g = dataclasses.replace(g, update=(ir.Assign("n", sympy.Symbol("i")),),
                            events=(dataclasses.replace(g.events[0], multiplicity="n"),))
    src = ir.SpikeArraySourceIR("S", 2, np.array([0.0, 0.0, 3 * DT]), np.array([0, 1, 0]),
                                counts=np.array([3, 1, 2]))
    post = neuron_group("post", 4, "x : 1")
    hetero = delay == "heterogeneous"
    kw = ({"delay": "d", "max_delay": 4 * DT, "init": {"d": np.array([2, 3, 4, 2]) * DT}}
          if hetero else {"delay": 2 * DT})
    model = "c : 1" + ("\nd : second" if hetero else "")
    s1 = synapses("s1", "g", "post", model=model, on_pre="x_post += 0.5\nc += 1",
                  connector=ir.OneToOne(), dt=DT, post_variables=("x",), batched=True, **kw)
    s2 = synapses("s2", "S", "post", on_pre="x_post += 100", connector=ir.AllToAll(),
                  delay=DT, dt=DT, post_variables=("x",))
    net = ir.NetworkIR(dt=DT, groups=(g, post), sources=(src,), synapses=(s1, s2),
                       monitors=(ir.SpikeMonitorIR("sm", "g"), ir.SpikeMonitorIR("ss", "S")),
                       batch_size=batch)
    sim = simulate(net, engine, steps)
    d = np.array([2, 3, 4, 2]) if hetero else np.full(4, 2)
    arrived = steps - d  # events of steps 0 .. steps-1-d have arrived
    x = host(sim.get("post", "x")).reshape(batch, 4)
    expected = 0.5 * np.arange(4) * arrived + 100 * 6  # 3 + 1 + 2 spikes from S
    np.testing.assert_allclose(x, np.broadcast_to(expected, (batch, 4)))
    c = host(sim.get("s1", "c")).reshape(batch, -1)
    np.testing.assert_allclose(c[:, 1:], np.broadcast_to(arrived[1:], (batch, 3)))
    rec = sim.spikes("sm")
    for b in range(batch):
        np.testing.assert_array_equal(rec.count(4, b), np.arange(4) * steps)
    rs = sim.spikes("ss")
    assert sorted(zip(np.round(rs.t[rs.batch == 0] / DT).astype(int).tolist(),
                      rs.i[rs.batch == 0].tolist())) == [(0, 0)] * 3 + [(0, 1)] + [(3, 0)] * 2


def test_spike_array_repeated_spikes_in_a_step_are_one_event(engine):
    """A spike array with two spikes of one element inside one step (a Poisson train
    written as an array): NEST's semantics, one event of multiplicity 2: the synapse adds
    its weight twice, its counter once, and the monitor records both spikes."""
    src = ir.SpikeArraySourceIR("S", 2, np.array([3.0, 3.2, 3.0, 7.0]) * DT,
                                np.array([1, 1, 0, 1]))
    post = neuron_group("post", 2, "x : 1")
    s = synapses("s", "S", "post", model="c : 1", on_pre="x_post += 0.5\nc += 1",
                 connector=ir.OneToOne(), delay=DT, dt=DT, post_variables=("x",))
    net = ir.NetworkIR(dt=DT, groups=(post,), sources=(src,), synapses=(s,),
                       monitors=(ir.SpikeMonitorIR("ss", "S"),))
    sim = simulate(net, engine, 12)
    np.testing.assert_allclose(sim.get("post", "x"), [0.5, 1.5])
    np.testing.assert_allclose(sim.get("s", "c"), [1, 2])
    rec = sim.spikes("ss")
    got = sorted(zip(np.round(rec.t / DT).astype(int).tolist(), rec.i.tolist()))
    assert got == [(3, 0), (3, 1), (3, 1), (7, 1)]


def test_heterogeneous_delays_set_between_runs(engine):
    """Delays written between runs take effect at once (the NumPy engine's per-delay
    delivery index is rebuilt): spikes at steps 0 and 20 reach three targets after 1, 2, 3
    steps, then after 4, 5, 6."""
    src = spike_source("S", 1, [0.0, 20 * DT], [0, 0])
    post = neuron_group("post", 3, "x : 1")
    s = synapses("s", "S", "post", model="d : second", on_pre="x_post += 1",
                 connector=ir.AllToAll(), delay="d", max_delay=6 * DT, dt=DT,
                 init={"d": np.array([1, 2, 3]) * DT}, post_variables=("x",))
    net = ir.NetworkIR(dt=DT, groups=(post,), sources=(src,), synapses=(s,),
                       monitors=(ir.StateMonitorIR("st", "post", ("x",), when="end"),))
    sim = simulate(net, engine, 10)
    sim.set("s", "d_steps", np.array([4, 5, 6]))
    sim.run(20)
    x = sim.states("st").values["x"][0]
    arrival = [int(np.flatnonzero(x[:, j] > 0)[0]) for j in range(3)]
    second = [int(np.flatnonzero(x[:, j] > 1)[0]) for j in range(3)]
    assert arrival == [1, 2, 3] and second == [24, 25, 26]


def test_spike_array_source_exact_steps(engine):
    times = [0.0, 5 * DT, 5 * DT, 17 * DT]
    idx = [0, 1, 2, 0]
    net = ir.NetworkIR(dt=DT, sources=(spike_source("S", 3, times, idx),),
                       monitors=(ir.SpikeMonitorIR("sm", "S"),))
    rec = simulate(net, engine, 30).spikes("sm")
    got = sorted(zip(np.round(rec.t / DT).astype(int).tolist(), rec.i.tolist()))
    assert got == [(0, 0), (5, 1), (5, 2), (17, 0)]


def test_timed_array_drive(engine):
    values = np.array([0.0, 1.0, 3.0, -2.0])
    ta = ir.TimedArrayIR("stim", values, dt=5 * DT)
    g = neuron_group("g", 2, "x = stim(t) * (i + 1) : 1\ny : 1",
                     functions=("stim",))
    g = ir.NeuronGroupIR(g.name, g.size, g.variables, g.parameters,
                         (ir.Assign("y", parse_expression("stim(t) * (i + 1)",
                                                          functions=("stim",))),), g.events)
    net = ir.NetworkIR(dt=DT, groups=(g,), timed_arrays=(ta,),
                       monitors=(ir.StateMonitorIR("st", "g", ("y",), when="end"),))
    rec = simulate(net, engine, 25).states("st")
    steps = np.arange(25)
    expected = values[np.minimum(steps // 5, 3)][:, None] * np.array([1, 2])[None, :]
    np.testing.assert_allclose(rec.values["y"][0], expected)


# ----------------------------------------------------------------------------- synapses
def test_exponential_synapse_decay(engine):
    """One input spike: g jumps by w when delivered, then g = w exp(-k dt / tau)."""
    tau, w = 5e-3, 0.7
    src = spike_source("S", 1, [10 * DT], [0])
    g = neuron_group("post", 1, "dg/dt = -g/tau : 1", namespace={"tau": tau})
    s = synapses("syn", "S", "post", on_pre="g_post += w", connector=ir.AllToAll(),
                 namespace={"w": w}, dt=DT, post_variables=("g",))
    net = ir.NetworkIR(dt=DT, groups=(g,), sources=(src,), synapses=(s,),
                       monitors=(ir.StateMonitorIR("st", "post", ("g",), when="end"),))
    rec = simulate(net, engine, 60).states("st")
    gv = rec.values["g"][0, :, 0]
    assert np.all(gv[:10] == 0)
    k = np.arange(50)
    np.testing.assert_allclose(gv[10:], w * np.exp(-k * DT / tau), rtol=1e-12)


@pytest.mark.parametrize("delay_steps", [0, 1, 30])
def test_homogeneous_delay_arrival_step(engine, delay_steps):
    src = spike_source("S", 1, [4 * DT], [0])
    g = neuron_group("post", 3, "v : 1")
    s = synapses("syn", "S", "post", on_pre="v_post += 1", connector=ir.AllToAll(),
                 delay=delay_steps * DT, dt=DT, post_variables=("v",))
    net = ir.NetworkIR(dt=DT, groups=(g,), sources=(src,), synapses=(s,),
                       monitors=(ir.StateMonitorIR("st", "post", ("v",), when="end"),))
    v = simulate(net, engine, 50).states("st").values["v"][0, :, 0]
    arrival = 4 + delay_steps
    assert np.all(v[:arrival] == 0) and np.all(v[arrival:] == 1)


def test_heterogeneous_delays(engine):
    """Synapse k (onto post neuron k) has delay k steps: neuron k changes at step 3 + k;
    two spikes of the source three steps apart overlap in the ring."""
    n = 6
    src = spike_source("S", 1, [3 * DT, 6 * DT], [0, 0])
    g = neuron_group("post", n, "v : 1")
    s = synapses("syn", "S", "post", model="d : second", on_pre="v_post += 1",
                 connector=ir.AllToAll(), delay="d", max_delay=(n - 1) * DT, dt=DT,
                 init={"d": np.arange(n) * DT}, post_variables=("v",))
    net = ir.NetworkIR(dt=DT, groups=(g,), sources=(src,), synapses=(s,),
                       monitors=(ir.StateMonitorIR("st", "post", ("v",), when="end"),))
    v = simulate(net, engine, 20).states("st").values["v"][0]
    steps = np.arange(20)[:, None]
    k = np.arange(n)[None, :]
    expected = (steps >= 3 + k).astype(float) + (steps >= 6 + k)
    np.testing.assert_array_equal(v, expected)


def test_on_post_pathway_counts_post_spikes(engine):
    pre = spike_source("A", 3, [0.0], [0])
    post = spike_source("B", 2, [2 * DT, 5 * DT, 5 * DT, 9 * DT], [0, 0, 1, 0])
    s = synapses("syn", "A", "B", model="n_post_spikes : 1", on_post="n_post_spikes += 1",
                 connector=ir.AllToAll(), dt=DT)
    net = ir.NetworkIR(dt=DT, sources=(pre, post), synapses=(s,))
    sim = simulate(net, engine, 15)
    i, j = sim.connectivity("syn")
    counts = sim.get("syn", "n_post_spikes")
    expected = np.where(j == 0, 3, 1)
    np.testing.assert_array_equal(counts, expected)
    assert len(i) == 6


def test_summed_variable_gap_junction(engine):
    """Igap_post = sum over synapses of w (v_pre - v_post), every step."""
    n = 5
    v0 = np.array([0.1, -0.3, 0.7, 0.2, 0.0])
    w = np.arange(n * n, dtype=float).reshape(n, n) / 10
    g = neuron_group("g", n, "v : 1\nIgap : 1", init={"v": v0})
    s = synapses("gap", "g", "g", model="w : 1\nIgap_post = w*(v_pre - v_post) : 1 (summed)",
                 connector=ir.AllToAll(), init={"w": w.reshape(-1)}, dt=DT,
                 pre_variables=("v",), post_variables=("v", "Igap"))
    net = ir.NetworkIR(dt=DT, groups=(g,), synapses=(s,))
    sim = simulate(net, engine, 2)
    expected = (w * (v0[:, None] - v0[None, :])).sum(axis=0)
    np.testing.assert_allclose(sim.get("g", "Igap"), expected, rtol=1e-12, atol=1e-15)


def test_event_driven_trace(engine):
    """Event-driven apre decays exactly between pre spikes: at each spike the pathway sees
    apre(t) = sum over earlier spikes of exp(-(t - t_k)/tau) before adding 1."""
    tau = 4e-3
    times = np.array([2, 10, 13, 40]) * DT
    src = spike_source("S", 1, times, [0] * 4)
    g = neuron_group("post", 1, "x : 1")
    s = synapses("syn", "S", "post", model="dapre/dt = -apre/tau : 1 (event-driven)",
                 on_pre="x_post += apre\napre += 1", connector=ir.AllToAll(),
                 namespace={"tau": tau}, dt=DT, post_variables=("x",))
    net = ir.NetworkIR(dt=DT, groups=(g,), sources=(src,), synapses=(s,))
    sim = simulate(net, engine, 50)
    expected = sum(math.exp(-(tb - ta) / tau) for n, tb in enumerate(times)
                   for ta in times[:n])
    np.testing.assert_allclose(sim.get("post", "x"), [expected], rtol=1e-12)


# ----------------------------------------------------------------------------- monitors and state
def test_monitors_agree(engine):
    """Spike monitor with a variable, rate monitor and state monitor of one network."""
    g = neuron_group("g", 20, "dv/dt = (1.5 + 0.05*i - v)/(10*ms) : 1", threshold="v > 1",
                     reset="v = 0")
    mons = (ir.SpikeMonitorIR("sm", "g", variables=("v",)), ir.RateMonitorIR("rm", "g"),
            ir.SpikeMonitorIR("plain", "g"), ir.StateMonitorIR("st", "g", ("v",), (3,)))
    sim = simulate(ir.NetworkIR(dt=DT, groups=(g,), monitors=mons), engine, 600)
    rec, plain = sim.spikes("sm"), sim.spikes("plain")
    order = np.lexsort((rec.i, rec.t))
    order_p = np.lexsort((plain.i, plain.t))
    np.testing.assert_array_equal(rec.i[order], plain.i[order_p])
    assert np.all(rec.values["v"] > 1)  # recorded at the threshold, before the reset
    t, rate = sim.rates("rm")
    assert rate.shape == (1, 600)
    np.testing.assert_allclose(rate.sum() * DT * 20, len(plain.i))
    st = sim.states("st")
    assert st.values["v"].shape == (1, 600, 1)


def test_runs_continue_and_set_between_runs(engine):
    g = neuron_group("g", 10, "dv/dt = (2 - v)/(5*ms) : 1", threshold="v > 1", reset="v = 0")
    mon = (ir.SpikeMonitorIR("sm", "g"),)
    one = simulate(ir.NetworkIR(dt=DT, groups=(g,), monitors=mon), engine, 0,
                   chunk_steps=64)
    one.run(150)
    one.run(250)
    whole = simulate(ir.NetworkIR(dt=DT, groups=(g,), monitors=mon), engine, 400)
    a, b = one.spikes("sm"), whole.spikes("sm")
    np.testing.assert_array_equal(a.i, b.i)
    np.testing.assert_allclose(a.t, b.t)
    one.set("g", "v", np.linspace(0, 0.5, 10))
    np.testing.assert_allclose(one.get("g", "v"), np.linspace(0, 0.5, 10))
    assert one.t == pytest.approx(400 * DT)


def test_connectivity_through_simulation(engine):
    pre = neuron_group("a", 30, "v : 1")
    post = neuron_group("b", 40, "v : 1")
    cond = parse_expression("abs(i - j) <= 2")
    syn = (synapses("fp", "a", "b", connector=ir.FixedProbability(0.3), dt=DT),
           synapses("fnpre", "a", "b", connector=ir.FixedNumberPre(4), dt=DT),
           synapses("cond", "a", "b", connector=ir.ConditionConnect(cond), dt=DT),
           synapses("lst", "a", "b", connector=ir.FromList(np.array([5, 1, 5]),
                                                          np.array([3, 2, 7])), dt=DT))
    sim = simulate(ir.NetworkIR(dt=DT, groups=(pre, post), synapses=syn, seed=4), engine)
    i, j = sim.connectivity("fnpre")
    assert np.all(np.bincount(j, minlength=40) == 4)
    i, j = sim.connectivity("cond")
    assert set(zip(i.tolist(), j.tolist())) == {(a, b) for a in range(30) for b in range(40)
                                                if abs(a - b) <= 2}
    i, j = sim.connectivity("lst")
    assert list(zip(i.tolist(), j.tolist())) == [(5, 3), (1, 2), (5, 7)]
    i, j = sim.connectivity("fp")
    assert abs(len(i) - 0.3 * 1200) < 5 * math.sqrt(1200 * 0.21)


def test_synapse_variables_user_order_from_list(engine):
    pre = neuron_group("a", 3, "v : 1")
    post = neuron_group("b", 3, "v : 1")
    s = synapses("lst", "a", "b", model="w : 1", connector=ir.FromList(
        np.array([2, 0, 2, 1]), np.array([0, 1, 2, 2])), init={"w": [1.0, 2.0, 3.0, 4.0]},
        dt=DT)
    sim = simulate(ir.NetworkIR(dt=DT, groups=(pre, post), synapses=(s,)), engine)
    np.testing.assert_array_equal(sim.get("lst", "w"), [1.0, 2.0, 3.0, 4.0])
    sim.set("lst", "w", [5.0, 6.0, 7.0, 8.0])
    np.testing.assert_array_equal(sim.get("lst", "w"), [5.0, 6.0, 7.0, 8.0])


# ----------------------------------------------------------------------------- clocks, operations
def test_slower_clock_group(engine):
    """A group on dt = 3 network steps integrates only every third step, with its own dt."""
    fast = neuron_group("fast", 1, "dx/dt = 1/second : 1")
    slow = neuron_group("slow", 1, "dx/dt = 1/second : 1")
    slow = ir.NeuronGroupIR(slow.name, slow.size, slow.variables, slow.parameters,
                            slow.update, slow.events, dt=3 * DT)
    net = ir.NetworkIR(dt=DT, groups=(fast, slow),
                       monitors=(ir.StateMonitorIR("st", "slow", ("x",), when="end"),))
    sim = simulate(net, engine, 10)
    np.testing.assert_allclose(sim.get("fast", "x"), [10 * DT])
    x = sim.states("st").values["x"][0, :, 0]
    np.testing.assert_allclose(x, 3 * DT * np.array([1, 1, 1, 2, 2, 2, 3, 3, 3, 4]))


def test_custom_operation_every_and_order(engine):
    """run_regularly-style operations: every k steps, in their phase and order."""
    g = neuron_group("g", 2, "x : 1\ny : 1")
    ops = (ir.CustomOperationIR("double", "g", parse_statements("y = 2*x"), every=1,
                                when="end", order=1),
           ir.CustomOperationIR("tick", "g", parse_statements("x = x + 1"), every=4,
                                when="end", order=0))
    net = ir.NetworkIR(dt=DT, groups=(g,), operations=ops)
    sim = simulate(net, engine, 10)  # ticks at steps 0, 4, 8
    np.testing.assert_array_equal(sim.get("g", "x"), [3, 3])
    np.testing.assert_array_equal(sim.get("g", "y"), [6, 6])  # after the tick: order 1


def test_linked_variables(engine):
    """A linked variable reads another group's variable, directly or through an index."""
    src = neuron_group("src", 3, "v : 1", init={"v": np.array([1.0, 2.0, 3.0])})
    same = ir.NeuronGroupIR("same", 3, (ir.Variable("vl", linked=("src", "v")),
                                       ir.Variable("y")),
                            update=parse_statements("y = 10*vl"))
    idx = ir.NeuronGroupIR("idx", 2, (ir.Variable("k", "int32", init=ir.ArrayInit(
        np.array([2, 0]))), ir.Variable("vl", linked=("src", "v"), linked_index="k"),
        ir.Variable("y")), update=parse_statements("y = vl + 0.5"))
    sim = simulate(ir.NetworkIR(dt=DT, groups=(src, same, idx)), engine, 2)
    np.testing.assert_array_equal(sim.get("same", "y"), [10, 20, 30])
    np.testing.assert_array_equal(sim.get("idx", "y"), [3.5, 1.5])


def test_state_monitor_of_synapse_variables(engine):
    """Record a plastic weight: each pre spike adds 0.5 to the weights of its row."""
    src = spike_source("S", 2, [2 * DT, 5 * DT, 5 * DT], [0, 0, 1])
    post = neuron_group("post", 3, "v : 1")
    s = synapses("syn", "S", "post", model="w : 1", on_pre="w += 0.5",
                 connector=ir.FromList(np.array([1, 0, 0]), np.array([2, 0, 1])), dt=DT)
    net = ir.NetworkIR(dt=DT, sources=(src,), groups=(post,), synapses=(s,),
                       monitors=(ir.StateMonitorIR("ws", "syn", ("w",), (0, 2), when="end"),))
    rec = simulate(net, engine, 8).states("ws")
    w = rec.values["w"][0]  # synapse 0 is (1 -> 2), synapse 2 is (0 -> 1)
    steps = np.arange(8)
    np.testing.assert_array_equal(w[:, 0], np.where(steps >= 5, 0.5, 0.0))
    np.testing.assert_array_equal(w[:, 1], 0.5 * ((steps >= 2).astype(int) + (steps >= 5)))


def side_write_objects(times, indices, update: str):
    """Spike source ``S``, group ``post`` (``v``, ``v_reset``, shared ``count``, ``tot``)
    updated by ``update``, and synapses ``syn`` writing ``v_post = v_reset_post`` and
    summing ``w`` into ``tot`` of elements 1 and 2 only (as a subgroup's synapses do)."""
    src = spike_source("S", 2, times, indices)
    post = ir.NeuronGroupIR("post", 4, (ir.Variable("v", init=ir.Constant(5.0)),
                                        ir.Variable("v_reset", init=ir.Constant(-1.0)),
                                        ir.Variable("count", shared=True),
                                        ir.Variable("tot", init=ir.Constant(7.0))),
                            update=parse_statements(update))
    s = ir.SynapseGroupIR("syn", "S", "post", ir.FromList(np.array([0, 0, 1, 1]),
                                                          np.array([1, 2, 1, 2])),
                          (ir.Variable("w", batched=False, init=ir.Constant(2.0)),),
                          pathways=(ir.PathwayIR("pre", parse_statements(
                              "v_post = v_reset_post")),),
                          summed=(ir.SummedVariableIR("tot", parse_expression("w"), "post",
                                                      (1, 3)),))
    return src, post, s


def test_uniform_side_writes_shared_variables_and_summed_ranges(engine):
    """`v_post = v_reset_post` from every synapse is order-independent (same value), a
    shared variable takes a uniform value, and a summed variable may fill part of a group."""
    src, post, s = side_write_objects([3 * DT], [0], "count = count + 1")
    sim = simulate(ir.NetworkIR(dt=DT, groups=(post,), sources=(src,), synapses=(s,)),
                   engine, 6)
    np.testing.assert_array_equal(sim.get("post", "v"), [5, -1, -1, 5])
    np.testing.assert_array_equal(sim.get("post", "count"), [6])
    np.testing.assert_array_equal(sim.get("post", "tot"), [7, 4, 4, 7])


def test_non_uniform_cross_write_is_rejected(engine):
    from gpuspike.bridge.errors import ModelError

    post = neuron_group("post", 2, "v : 1")
    src = spike_source("S", 1, [0.0], [0])
    s = ir.SynapseGroupIR("syn", "S", "post", ir.AllToAll(), (ir.Variable("w", batched=False),),
                          pathways=(ir.PathwayIR("pre", parse_statements("v_post = w")),))
    with pytest.raises(ModelError, match=r"v_post \+="):
        simulate(ir.NetworkIR(dt=DT, groups=(post,), sources=(src,), synapses=(s,)), engine)


def test_binomial_and_poisson_draws_in_kernels(engine):
    """PoissonInput-style drive: counts per step are Binomial(N, p) and Poisson(lam)."""
    g = ir.NeuronGroupIR("g", 2000, (ir.Variable("b"), ir.Variable("q")),
                         update=parse_statements("b = b + binomial(1000, 0.002)\n"
                                                 "q = q + poisson(0.5 + 0.0*i)"))
    sim = simulate(ir.NetworkIR(dt=DT, groups=(g,), seed=5), engine, 50)
    b, q = sim.get("g", "b"), sim.get("g", "q")
    assert abs(b.mean() - 50 * 2.0) < 5 * np.sqrt(50 * 2.0 * 0.998 / 2000)
    assert abs(q.mean() - 25.0) < 5 * np.sqrt(25.0 / 2000)
    assert abs(q.var() / 25.0 - 1) < 0.15


def test_model_names_that_clash_with_generated_code(engine):
    """Variables named like the printers' own names (A, np, _v, double, s, b) still work."""
    g = ir.NeuronGroupIR("g", 3, tuple(ir.Variable(n, init=ir.Constant(1.0))
                                       for n in ("A", "np", "_v", "double", "s", "b")),
                         update=parse_statements("A = A + np\n_v = 2*_v\ndouble = s + b"))
    sim = simulate(ir.NetworkIR(dt=DT, groups=(g,)), engine, 3)
    np.testing.assert_array_equal(sim.get("g", "A"), [4, 4, 4])
    np.testing.assert_array_equal(sim.get("g", "_v"), [8, 8, 8])
    np.testing.assert_array_equal(sim.get("g", "double"), [2, 2, 2])


def test_summed_variables_into_pre_and_post_and_disjoint_ranges(engine):
    """Two summed variables with one target name on the pre and the post side, and two
    synapse groups summing into disjoint ranges of one variable (subgroups)."""
    g = neuron_group("g", 4, "v : 1\nI : 1\nS : 1",
                     init={"v": np.array([1.0, 2.0, 3.0, 4.0])})
    h = neuron_group("h", 2, "v : 1\nS : 1", init={"v": np.array([10.0, 20.0])})
    both = synapses("both", "g", "h", model="S_post = v_pre : 1 (summed)\n"
                    "S_pre = v_post : 1 (summed)", connector=ir.AllToAll(), dt=DT,
                    pre_variables=("v", "S"), post_variables=("v", "S"))
    lo = ir.SynapseGroupIR("lo", "h", "g", ir.FromList(np.array([0, 1]), np.array([0, 1])),
                           summed=(ir.SummedVariableIR("I", parse_expression("2*v_pre"),
                                                       "post", (0, 2)),))
    hi = ir.SynapseGroupIR("hi", "h", "g", ir.FromList(np.array([0, 1]), np.array([2, 3])),
                           summed=(ir.SummedVariableIR("I", parse_expression("3*v_pre"),
                                                       "post", (2, 4)),))
    net = ir.NetworkIR(dt=DT, groups=(g, h), synapses=(both, lo, hi))
    sim = simulate(net, engine, 1)
    np.testing.assert_array_equal(sim.get("h", "S"), [10, 10])      # sum of g.v
    np.testing.assert_array_equal(sim.get("g", "S"), [30, 30, 30, 30])  # sum of h.v
    np.testing.assert_array_equal(sim.get("g", "I"), [20, 40, 30, 60])


def test_writing_a_linked_variable_writes_its_target(engine):
    src = neuron_group("src", 3, "v : 1", init={"v": np.array([1.0, 2.0, 3.0])})
    other = ir.NeuronGroupIR("other", 3, (ir.Variable("vl", linked=("src", "v")),),
                             update=parse_statements("vl = vl * 10"))
    sim = simulate(ir.NetworkIR(dt=DT, groups=(src, other)), engine, 2)
    np.testing.assert_array_equal(sim.get("src", "v"), [100, 200, 300])


def test_summed_range_starting_at_zero_leaves_the_rest(engine):
    g = neuron_group("g", 4, "I : 1", init={"I": np.array([5.0, 5.0, 5.0, 5.0])})
    h = neuron_group("h", 1, "v : 1", init={"v": np.array([2.0])})
    s = ir.SynapseGroupIR("s", "h", "g", ir.FromList(np.array([0, 0]), np.array([0, 1])),
                          summed=(ir.SummedVariableIR("I", parse_expression("v_pre"), "post",
                                                      (0, 2)),))
    sim = simulate(ir.NetworkIR(dt=DT, groups=(g, h), synapses=(s,)), engine, 1)
    np.testing.assert_array_equal(sim.get("g", "I"), [2, 2, 5, 5])
