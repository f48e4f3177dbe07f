"""``sim.NativeRNG``: the engine's Philox generator behind PyNN's random interface."""

from __future__ import annotations

import numpy as np
import pyNN.gpuspike as sim
import pytest
from gpuspike.engine import rng as philox
from gpuspike.engine.backend import cuda_status
from pyNN.gpuspike.native_rng import NATIVE_STREAM
from pyNN.random import RandomDistribution
from scipy import stats


def test_draws_are_the_engines_philox_numbers_and_reproducible():
    rng = sim.NativeRNG(seed=7)
    u = rng.next(1000, "uniform", {"low": 0.0, "high": 1.0})
    want = philox.uniform(np, 7, NATIVE_STREAM, 0, 0, np.arange(1000, dtype=np.uint32))
    np.testing.assert_array_equal(u, want)
    again = sim.NativeRNG(seed=7)
    np.testing.assert_array_equal(again.next(1000, "uniform", {"low": 0.0, "high": 1.0}), u)
    assert not np.array_equal(rng.next(1000, "uniform", {"low": 0.0, "high": 1.0}), u)
    if cuda_status()[0]:  # the same numbers on the GPU
        import cupy

        got = philox.uniform(cupy, 7, NATIVE_STREAM, 0, 0, cupy.arange(1000, dtype=cupy.uint32))
        np.testing.assert_array_equal(got.get(), u)


@pytest.mark.parametrize("name,params,dist", [
    ("uniform", {"low": -2.0, "high": 3.0}, stats.uniform(-2.0, 5.0)),
    ("normal", {"mu": 1.0, "sigma": 0.5}, stats.norm(1.0, 0.5)),
    ("exponential", {"beta": 2.0}, stats.expon(scale=2.0)),
    ("lognormal", {"mu": 0.1, "sigma": 0.3}, stats.lognorm(0.3, scale=np.exp(0.1))),
    ("normal_clipped", {"mu": 0.0, "sigma": 1.0, "low": -0.5, "high": 2.0},
     stats.truncnorm(-0.5, 2.0)),
])
def test_continuous_laws_pass_a_kolmogorov_smirnov_test(name, params, dist):
    x = sim.NativeRNG(seed=3).next(20000, name, params)
    assert stats.kstest(x, dist.cdf).pvalue > 1e-3


def test_discrete_laws_and_helpers():
    rng = sim.NativeRNG(seed=5)
    k = rng.next(20000, "uniform_int", {"low": 2, "high": 6})
    assert set(np.unique(k)) == {2, 3, 4, 5}
    assert np.abs(np.bincount(k - 2) / k.size - 0.25).max() < 0.02
    lam = rng.next(20000, "poisson", {"lambda_": 3.5})
    assert abs(lam.mean() - 3.5) < 0.05 and abs(lam.var() - 3.5) < 0.15
    b = rng.next(20000, "binomial", {"n": 10, "p": 0.3})
    assert abs(b.mean() - 3.0) < 0.05
    perm = rng.permutation(np.arange(50))
    assert sorted(perm) == list(range(50)) and not (perm == np.arange(50)).all()
    assert len(set(rng.choice(50, size=20, replace=False))) == 20
    with pytest.raises(NotImplementedError, match="NumpyRNG"):
        rng.next(3, "gamma", {"k": 2.0, "theta": 1.0})


def test_a_script_with_native_rng_runs_and_repeats_exactly():
    """Random parameters and a random connector drawn with NativeRNG: the same network
    (connections, weights, spikes) for the same seed, another one for another seed; the
    simulator's seed when NativeRNG has none."""

    def build(seed: int | None, sim_seed: int = 0):
        sim.setup(timestep=0.1, min_delay=0.1, seed=sim_seed)
        rng = sim.NativeRNG(seed)
        cells = sim.Population(40, sim.IF_curr_exp(
            tau_m=RandomDistribution("normal", mu=20.0, sigma=2.0, rng=rng), i_offset=1.2))
        cells.initialize(v=RandomDistribution("uniform", low=-65.0, high=-55.0, rng=rng))
        prj = sim.Projection(cells, cells, sim.FixedProbabilityConnector(0.2, rng=rng),
                             sim.StaticSynapse(weight=RandomDistribution(
                                 "uniform", low=0.0, high=0.2, rng=rng), delay=0.5))
        cells.record("spikes")
        sim.run(100.0)
        conns = np.array(prj.get(["weight"], format="list"))
        spikes = [np.asarray(st) for st in cells.get_data().segments[0].spiketrains]
        tau = np.asarray(cells.get("tau_m"))
        sim.end()
        return conns, spikes, tau

    a, b, c = build(11), build(11), build(12)
    np.testing.assert_array_equal(a[0], b[0])
    for x, y in zip(a[1], b[1]):
        np.testing.assert_array_equal(x, y)
    assert a[0].shape != c[0].shape or not np.array_equal(a[0], c[0])
    assert 10 < len(a[0]) < 600 and 18 < a[2].mean() < 22 and sum(len(s) for s in a[1]) > 0
    d, e = build(None, sim_seed=11), build(None, sim_seed=11)
    np.testing.assert_array_equal(d[0], e[0])
