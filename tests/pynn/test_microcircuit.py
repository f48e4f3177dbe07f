"""The vectorised FixedTotalNumberConnector and the microcircuit example (tiny scale)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyNN.gpuspike as gs

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "pynn"))

import microcircuit as mc  # noqa: E402


def test_fixed_total_number_is_vectorised_and_uniform():
    gs.setup(timestep=0.1)
    a, b = gs.Population(50, gs.IF_curr_exp()), gs.Population(40, gs.IF_curr_exp())
    rng = gs.NumpyRNG(seed=3)
    w = gs.RandomDistribution("normal_clipped", mu=-0.35, sigma=0.035, low=-np.inf,
                              high=0.0, rng=rng)
    d = gs.RandomDistribution("normal_clipped", mu=0.75, sigma=0.375, low=0.1,
                              high=np.inf, rng=rng)
    prj = gs.Projection(a, b, gs.FixedTotalNumberConnector(20000, rng=rng),
                        gs.StaticSynapse(weight=w, delay=d), receptor_type="inhibitory")
    assert len(prj) == 20000
    pre, post, weight, delay = (np.array(c) for c in zip(*prj.get(
        ["weight", "delay"], format="list", with_address=True)))
    pre, post = pre.astype(int), post.astype(int)
    assert weight.max() <= 0.0 and delay.min() >= 0.1
    assert abs(weight.mean() + 0.35) < 0.002 and abs(np.median(delay) - 0.75) < 0.03
    for idx, n in ((pre, 50), (post, 40)):  # uniform: counts within 5 sigma
        counts = np.bincount(idx, minlength=n)
        mean = 20000 / n
        assert np.all(np.abs(counts - mean) < 5 * np.sqrt(mean))
    gs.run(1.0)
    gs.end()


def test_published_sizes_at_full_scale():
    par = mc.network_parameters(1.0, 1.0, "poisson")
    assert par["n"].sum() == 77169
    assert 2.9e8 < par["synapses"].sum() < 3.0e8
    assert np.all(par["dc"] == 0)  # nothing to compensate at k = 1 with Poisson input
    half = mc.network_parameters(0.5, 0.25, "poisson")
    assert np.all(half["dc"] > 0) and half["w"][0, 0] == mc.PSC_MEAN * 2


def test_tiny_microcircuit_runs_and_fires():
    net = mc.build(gs, 0.01, drive="poisson", record=True)
    gs.run(150.0)
    rates = mc.rates(net["populations"], 50.0, 150.0)
    gs.end()
    assert set(rates) == set(mc.POPULATIONS)
    assert all(np.isfinite(r) and r < 100 for r in rates.values())
    assert sum(rates.values()) > 0
