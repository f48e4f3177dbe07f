"""STDPMechanism and SimpleStochasticSynapse of pyNN.gpuspike against NEST and statistics.

STDP: pre- and post-synaptic spike times are fixed (spike-array sources and IF_curr_exp
cells that a strong input makes fire at known times; the plastic weights are too small to
move them), so NEST (on-grid, its ``stdp_synapse``) and gpuspike see the same spike pairs
and must give the same weights. The grid is dt = 0.125 ms: every time and delay is then a
binary fraction, so no spike moves by a step through rounding (PyNN's NEST backend shifts
a spike-array time ``t`` to ``t - min_delay``, which on a 0.1 ms grid sometimes lands a
step late). Nothing is discretised differently: the traces are exact exponentials between
events in both, so weights agree to round-off (tolerance 1e-12 of ``w_max``).

When: NEST changes a synapse's weight when the pre-synaptic spike is sent (``t_pre``),
gpuspike when it arrives (``t_pre + d``); both transmit the same value, and ``get('weight')``
adds the updates of the spikes still in flight (a look-ahead that is undone), so the
trajectories read after every short run are compared sample for sample.
"""

from __future__ import annotations

import importlib

import numpy as np
import pyNN.gpuspike as gs
import pytest
from pyNN.parameters import Sequence

DT = 0.125  # ms
DELAYS = (1.0, 2.5)  # ms, per synapse: heterogeneous delays of the post pathway too
SAMPLE = 0.5  # ms between weight samples; the delays are multiples of it
T_STOP = 200.0
N_PRE, N_POST = 6, 2
RULE = dict(tau_plus=16.8, tau_minus=33.7, A_plus=0.05, A_minus=0.06)
W_MAX = 0.002  # nA: tiny next to the 20 nA drive, so the post spike times stay fixed
DRIVE = (np.arange(20.0, 190.0, 23.0), np.arange(31.0, 190.0, 29.0))
FIRE_AFTER = 1.75  # ms from a drive spike to the post spike it causes (NEST and gpuspike)


def _nest():
    try:
        return importlib.import_module("pyNN.nest")
    except Exception:  # pragma: no cover - NEST is in the test extra
        pytest.skip("pyNN.nest not available")


def _delay(i: int, j: int) -> float:
    return DELAYS[(i + j) % len(DELAYS)]


def _pre_trains() -> list[np.ndarray]:
    """Random spikes on the grid, plus spikes exactly at (and one step around)
    ``t_post + d``: the pairs that NEST counts as potentiation only."""
    rng = np.random.default_rng(7)
    trains = []
    for i in range(N_PRE):
        t = np.round(rng.uniform(1.0, T_STOP - 10.0, 10) / DT) * DT
        post = DRIVE[i % N_POST][1::2] + FIRE_AFTER + _delay(i, i % N_POST)
        shift = (0.0, -DT, DT)[i // N_POST]
        trains.append(np.unique(np.concatenate([t, post + shift])))
    return trains


def _weight_dependence(sim, name: str):
    if name == "Gutig":
        return sim.GutigWeightDependence(w_min=0.0, w_max=W_MAX, mu_plus=0.5, mu_minus=0.5)
    if name == "AdditivePotentiationMultiplicativeDepression":
        return sim.AdditivePotentiationMultiplicativeDepression(w_min=0.0, w_max=W_MAX)
    return getattr(sim, f"{name}WeightDependence")(w_min=0.0, w_max=W_MAX)


def _stdp_run(sim, dependence: str, chunk: float = SAMPLE, fraction: float = 1.0, **setup):
    """Weights (samples, pre, post) after every ``chunk`` ms, the post and pre spikes."""
    sim.setup(timestep=DT, min_delay=DT, **setup)
    post = sim.Population(N_POST, sim.IF_curr_exp(tau_syn_E=1.0, tau_refrac=5.0))
    drive = sim.Population(N_POST, sim.SpikeSourceArray(spike_times=[Sequence(t) for t in DRIVE]))
    sim.Projection(drive, post, sim.OneToOneConnector(), sim.StaticSynapse(weight=20.0, delay=DT))
    pre = sim.Population(
        N_PRE, sim.SpikeSourceArray(spike_times=[Sequence(t) for t in _pre_trains()])
    )
    stdp = sim.STDPMechanism(
        sim.SpikePairRule(**RULE),
        _weight_dependence(sim, dependence),
        weight=0.5 * W_MAX,
        delay=1.0,
        dendritic_delay_fraction=fraction,
    )
    prj = sim.Projection(pre, post, sim.AllToAllConnector(), stdp)
    prj.set(delay=np.array([[_delay(i, j) for j in range(N_POST)] for i in range(N_PRE)]))
    prj.set(weight=np.random.default_rng(1).uniform(0.1, 0.9, (N_PRE, N_POST)) * W_MAX)
    post.record("spikes")
    pre.record("spikes")
    weights = []
    for _ in range(int(round(T_STOP / chunk))):
        sim.run(chunk)
        weights.append(prj.get("weight", format="array"))
    post_spikes = [np.asarray(s) for s in post.get_data().segments[0].spiketrains]
    pre_spikes = [np.asarray(s) for s in pre.get_data().segments[0].spiketrains]
    sim.end()
    return np.array(weights), post_spikes, pre_spikes


def _replay(pre, post, d, w, dependence: str) -> np.ndarray:
    """NEST's ``stdp_synapse.send`` replayed in Python (weight after each pre spike):
    facilitation by the post spikes with ``t_last < t_post + d <= t_pre``, then
    depression by the post trace at ``t_pre - d`` of the spikes strictly before it."""
    mu = {
        "Additive": (0, 0),
        "Multiplicative": (1, 1),
        "AdditivePotentiationMultiplicativeDepression": (0, 1),
        "Gutig": (0.5, 0.5),
    }[dependence]
    a_plus, a_minus = RULE["A_plus"], RULE["A_minus"]
    k_plus, t_last, out, eps = 0.0, 0.0, [], 1e-9
    post = np.asarray(post)
    for t in pre:
        for tp in post[(post + d > t_last + eps) & (post + d <= t + eps)]:
            k = k_plus * np.exp((t_last - tp - d) / RULE["tau_plus"])
            w = min(w / W_MAX + a_plus * (1 - w / W_MAX) ** mu[0] * k, 1.0) * W_MAX
        before = post[post < t - d - eps]
        k = np.exp(-(t - d - before) / RULE["tau_minus"]).sum()
        w = max(w / W_MAX - a_minus * (w / W_MAX) ** mu[1] * k, 0.0) * W_MAX
        out.append(w)
        k_plus = k_plus * np.exp((t_last - t) / RULE["tau_plus"]) + 1
        t_last = t
    return np.array(out)


@pytest.mark.parametrize(
    "dependence",
    ["Additive", "Multiplicative", "AdditivePotentiationMultiplicativeDepression", "Gutig"],
)
def test_stdp_weight_trajectories_match_nest(dependence):
    nest = _nest()
    ref, ref_post, ref_pre = _stdp_run(nest, dependence, spike_precision="on_grid")
    w, post, pre = _stdp_run(gs, dependence)
    for a, b in zip(ref_pre, pre):  # the grid keeps every spike-array time in NEST
        np.testing.assert_allclose(a, b, atol=1e-9)
    for j, (a, b) in enumerate(zip(ref_post, post)):
        np.testing.assert_allclose(b, a, atol=1e-9)
        np.testing.assert_allclose(a[:6], DRIVE[j][:6] + FIRE_AFTER, atol=1e-9)
    ties = sum(
        np.isclose(t - _delay(i, j), p).sum()
        for i, train in enumerate(pre)
        for j, p_train in enumerate(post)
        for t in train
        for p in p_train
    )
    assert ties >= 6  # coincident pairs (t_post + d == t_pre) are exercised
    assert np.ptp(ref, axis=0).max() > 0.1 * W_MAX  # the weights did learn
    samples = np.arange(1, ref.shape[0] + 1) * SAMPLE
    # get('weight') after every run is NEST's weight at that time, pre-spike times included
    np.testing.assert_allclose(w, ref, rtol=0, atol=1e-12 * W_MAX)
    for i in range(N_PRE):
        for j in range(N_POST):
            # and both equal the replay of NEST's algorithm at every pre spike
            replay = _replay(pre[i], post[j], _delay(i, j), ref[0, i, j], dependence)
            after = np.searchsorted(samples, pre[i] + 1e-9)  # first sample after each
            alone = np.append(pre[i][1:], np.inf) > samples[after] + 1e-9
            np.testing.assert_allclose(
                ref[after[alone], i, j], replay[alone], rtol=0, atol=1e-12 * W_MAX
            )
    on_pre = np.isin(np.round(samples / DT), np.round(np.concatenate(pre) / DT))
    assert on_pre.sum() >= 5  # samples at pre-spike times (spikes sent, not yet arrived)


def test_stdp_axonal_delays_follow_pynn_definition():
    """``dendritic_delay_fraction = 0`` (NEST refuses it): the synapse sees the pre spike
    when it arrives (``t_pre + d``) and the post spike at once, i.e. NEST's rule with
    pre spikes at ``t_pre + d`` and no dendritic delay."""
    w, post, pre = _stdp_run(gs, "Multiplicative", chunk=T_STOP, fraction=0.0)
    w0 = np.random.default_rng(1).uniform(0.1, 0.9, (N_PRE, N_POST)) * W_MAX
    for i in range(N_PRE):
        for j in range(N_POST):
            replay = _replay(pre[i] + _delay(i, j), post[j], 0.0, w0[i, j], "Multiplicative")
            np.testing.assert_allclose(w[-1, i, j], replay[-1], rtol=0, atol=1e-12 * W_MAX)


def test_stdp_set_weight_parameters_and_reset():
    """``set(weight=...)`` between runs overrides the learnt weight; a changed rule
    parameter rebuilds the engine and keeps the learnt weights; ``reset()`` keeps them."""
    gs.setup(timestep=DT, min_delay=DT)
    pre = gs.Population(3, gs.SpikeSourcePoisson(rate=50.0))
    post = gs.Population(2, gs.IF_cond_exp(i_offset=[1.0, 1.2]))
    stdp = gs.STDPMechanism(
        gs.SpikePairRule(**RULE), gs.AdditiveWeightDependence(w_min=0.0, w_max=0.02), weight=0.01
    )
    prj = gs.Projection(pre, post, gs.AllToAllConnector(), stdp)
    gs.run(200.0)
    learnt = prj.get("weight", format="array")
    assert np.all((learnt >= 0) & (learnt <= 0.02)) and np.ptp(learnt) > 0
    prj.set(weight=0.005)
    np.testing.assert_allclose(prj.get("weight", format="array"), 0.005)
    gs.run(100.0)
    again = prj.get("weight", format="array")
    prj.set(A_plus=0.0)  # a rebuild: the weights carry over
    np.testing.assert_allclose(prj.get("weight", format="array"), again)
    gs.run(100.0)
    assert np.all(prj.get("weight", format="array") <= again + 1e-15)  # only depression
    kept = prj.get("weight", format="array")
    gs.reset()
    np.testing.assert_allclose(prj.get("weight", format="array"), kept)
    gs.end()


# ----------------------------------------------------------------------------- stochastic
def _transmissions(p: np.ndarray, n_spikes: int = 400, seed: int = 0) -> np.ndarray:
    """(synapse, spike) -> 1 where the spike reached the target: the jumps of gsyn_exc."""
    gs.setup(timestep=0.1, min_delay=0.5, rng_seed=seed)
    spikes = np.arange(n_spikes) * 2.5 + 1.0
    src = gs.Population(1, gs.SpikeSourceArray(spike_times=spikes))
    cells = gs.Population(p.size, gs.IF_cond_exp(tau_syn_E=0.3, v_thresh=100.0))
    gs.Projection(
        src,
        cells,
        gs.AllToAllConnector(),
        gs.SimpleStochasticSynapse(weight=0.01, delay=0.5, p=p[None, :]),
    )
    cells.record("gsyn_exc")
    gs.run(spikes[-1] + 2.0)
    g = np.asarray(cells.get_data().segments[0].analogsignals[0])
    gs.end()
    arrive = np.round((spikes + 0.5) / 0.1).astype(int)  # sample index of each arrival
    jump = g[arrive] - g[arrive - 1]
    assert np.all((jump > 0.009) | (np.abs(jump) < 1e-4))  # whole events or nothing
    return (jump > 0.005).T


def test_simple_stochastic_synapse_transmits_with_probability_p():
    """k transmissions of n events per p: |k - n p| <= 4.5 sqrt(n p (1 - p)) (a two-sided
    binomial bound, p-value 7e-6; the RNG is seeded, so the test is deterministic)."""
    levels = np.array([0.0, 0.1, 0.5, 0.9, 1.0])
    p = np.repeat(levels, 8)
    sent = _transmissions(p)
    for level in levels:
        k, n = sent[p == level].sum(), sent[p == level].size
        assert abs(k - n * level) <= 4.5 * np.sqrt(n * level * (1 - level)), (level, k, n)
    # independent draws per synapse: two p = 0.5 synapses coincide a quarter of the time
    a, b = sent[p == 0.5][0], sent[p == 0.5][1]
    n = a.size
    assert abs((a & b).sum() - n / 4) <= 4.5 * np.sqrt(n * 0.25 * 0.75)
    assert not np.array_equal(a, b)
    assert not np.array_equal(sent, _transmissions(p, seed=1))  # the seed matters


@pytest.mark.nvcc
def test_plastic_and_stochastic_synapses_compile_for_cuda():
    """The CUDA source of a network with heterogeneous STDP (Gutig exponents per
    synapse: powers) and stochastic synapses compiles with nvcc."""
    import dataclasses

    from gpuspike.engine.codegen_cuda import cuda_source

    from tests.simulate import compile_ptx

    gs.setup(timestep=0.1, min_delay=0.1, engine="numpy")
    pre = gs.Population(4, gs.SpikeSourcePoisson(rate=20.0))
    post = gs.Population(3, gs.IF_curr_delta())
    wd = gs.GutigWeightDependence(
        w_min=0.0, w_max=1.0, mu_plus=gs.RandomDistribution("uniform", (0.2, 0.8)), mu_minus=0.3
    )
    gs.Projection(
        pre,
        post,
        gs.AllToAllConnector(),
        gs.STDPMechanism(
            gs.SpikePairRule(), wd, weight=0.5, delay=gs.RandomDistribution("uniform", (0.1, 2.0))
        ),
    )
    gs.Projection(pre, post, gs.AllToAllConnector(), gs.SimpleStochasticSynapse(weight=0.1, p=0.3))
    gs.run(1.0)
    plan = gs.simulator.state.engine.plan
    gs.end()
    for precision in ("float64", "float32"):
        compile_ptx(cuda_source(dataclasses.replace(plan, precision=precision)))
