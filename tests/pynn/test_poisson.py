"""SpikeSourcePoisson at high rates: several spikes per step, as NEST's poisson_generator.

The count of one source in one step is Poisson(rate dt) (not a Bernoulli trial capped at
one spike); the spikes of a step travel as one event of that multiplicity, a synapse
delivers ``k w`` and the recorded train repeats the time ``k`` times (NEST's format).
Checked on both ways gpuspike draws them (the engine's per-step draw, and the schedule
the CPU path draws on the host), against the Poisson law and against pyNN.nest.
"""

from __future__ import annotations

import importlib
import math

import numpy as np
import pyNN.gpuspike as gs
import pytest
from pyNN.gpuspike import simulator
from scipy import stats

DT = 0.1  # ms


def _nest():
    try:
        return importlib.import_module("pyNN.nest")
    except Exception:  # pragma: no cover - NEST is in the test extra
        pytest.skip("pyNN.nest not available")


@pytest.fixture(params=["engine", "host"])
def draw(request, monkeypatch):
    """Where the spikes are drawn: by the engine each step (the GPU's way, run here on
    NumPy), or as a host-drawn schedule (the CPU path)."""
    host = request.param == "host"
    monkeypatch.setattr(type(simulator.state), "host_poisson", property(lambda self: host))
    return request.param


def _counts(lam: float, n: int = 100, steps: int = 2000, seed: int = 3) -> np.ndarray:
    """Spikes per (step, source) of ``n`` sources with rate ``lam/dt``."""
    gs.setup(timestep=DT, min_delay=DT, rng_seed=seed, engine="numpy")
    src = gs.Population(n, gs.SpikeSourcePoisson(rate=lam / DT * 1e3))
    src.record("spikes")
    gs.run(steps * DT)
    trains = src.get_data().segments[0].spiketrains
    gs.end()
    out = np.zeros((steps, n), dtype=np.int64)
    for k, train in enumerate(trains):
        step = np.round(np.asarray(train) / DT).astype(np.int64) - 1  # spike at (s + 1) dt
        np.add.at(out[:, k], step, 1)
    return out


@pytest.mark.parametrize("lam", [0.5, 2.3])
def test_counts_per_step_follow_the_poisson_law(draw, lam):
    """Mean and variance of the counts within 4.5 standard errors of lam (Var of a sample
    variance of Poisson counts: (lam + 2 lam^2)/N), and a chi-square test of the count
    histogram against Poisson(lam) (p > 1e-4; fixed seed, so deterministic)."""
    counts = _counts(lam).ravel()
    N = counts.size
    assert abs(counts.mean() - lam) < 4.5 * math.sqrt(lam / N)
    assert abs(counts.var() - lam) < 4.5 * math.sqrt((lam + 2 * lam**2) / N)
    top = int(stats.poisson.ppf(1 - 1e-4, lam))  # last bin: top and above
    observed = np.bincount(np.minimum(counts, top), minlength=top + 1)
    expected = stats.poisson.pmf(np.arange(top + 1), lam) * N
    expected[-1] = stats.poisson.sf(top - 1, lam) * N
    assert stats.chisquare(observed, expected).pvalue > 1e-4
    assert counts.max() > 1  # several spikes in one step do occur


def _mean_conductance(sim, rate_hz: float, w: float, tau: float, n: int, t_ms: float,
                      seed: int, **setup) -> float:
    """Mean gsyn_exc (uS) of ``n`` cells, each driven by its own Poisson source, after a
    burn-in of 5 tau."""
    sim.setup(timestep=DT, min_delay=DT, rng_seed=seed, **setup)
    src = sim.Population(n, sim.SpikeSourcePoisson(rate=rate_hz))
    cells = sim.Population(n, sim.IF_cond_exp(v_thresh=1000.0, tau_syn_E=tau))
    sim.Projection(src, cells, sim.OneToOneConnector(),
                   sim.StaticSynapse(weight=w, delay=DT), receptor_type="excitatory")
    cells.record("gsyn_exc")
    sim.run(t_ms)
    g = np.asarray(cells.get_data().segments[0].analogsignals[0])
    sim.end()
    return float(g[int(round(5 * tau / DT)):].mean())


def test_mean_input_of_a_high_rate_source_matches_theory_and_nest(monkeypatch):
    """A 23 kHz source (rate*dt = 2.3, the full-scale microcircuit's background) into an
    exponential synapse: the mean conductance is rate*w*tau_syn (sampled on the grid just
    after each step's jump: rate*w*dt/(1 - exp(-dt/tau)), tau*(1 + dt/(2 tau)) to first
    order), within 5 standard errors of shot noise (variance rate*w^2*tau/2, correlation
    time tau), on both drawing paths, and NEST's mean agrees within the same error. One
    spike per step at most would give 10 kHz, i.e. less than half."""
    rate, w, tau, n, t_ms = 23000.0, 1e-4, 5.0, 20, 500.0
    rate_ms = rate * 1e-3
    theory = rate_ms * w * DT / (1 - math.exp(-DT / tau))
    samples = n * (t_ms - 5 * tau) / (2 * tau)  # about independent samples
    se = math.sqrt(rate_ms * w**2 * tau / 2) / math.sqrt(samples)
    for host in (False, True):
        monkeypatch.setattr(type(simulator.state), "host_poisson",
                            property(lambda self, h=host: h))
        ours = _mean_conductance(gs, rate, w, tau, n, t_ms, seed=5, engine="numpy")
        assert abs(ours - theory) < 5 * se, (host, ours, theory, se)
    nest = _nest()
    ref = _mean_conductance(nest, rate, w, tau, n, t_ms, seed=5, spike_precision="on_grid")
    assert abs(ref - theory) < 5 * se, (ref, theory, se)
    assert abs(ours - ref) < 5 * math.sqrt(2) * se


def test_high_rate_trains_repeat_times_as_nest():
    """Recorded trains hold a spike of multiplicity k as k equal times, as pyNN.nest does:
    same spike counts within Poisson error, and repeated times in both."""
    def trains(sim, **setup):
        sim.setup(timestep=DT, min_delay=DT, rng_seed=2, **setup)
        src = sim.Population(10, sim.SpikeSourcePoisson(rate=15000.0))
        src.record("spikes")
        sim.run(100.0)
        out = [np.asarray(s) for s in src.get_data().segments[0].spiketrains]
        sim.end()
        return out

    ours = trains(gs, engine="numpy")
    ref = trains(_nest(), spike_precision="on_grid")
    n_ours, n_ref = sum(t.size for t in ours), sum(t.size for t in ref)
    expected = 10 * 15.0 * 100.0
    assert abs(n_ours - expected) < 5 * math.sqrt(expected)
    assert abs(n_ref - expected) < 5 * math.sqrt(expected)
    for t in (*ours, *ref):
        assert np.all(np.diff(t) >= 0) and np.any(np.diff(t) == 0)
