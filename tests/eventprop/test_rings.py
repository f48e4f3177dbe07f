"""Spike rings: the crossing slope against the closed-form PSP, and overflow detection."""

from __future__ import annotations

import numpy as np
import pytest
from gpuspike.bridge.adjoint import CanonicalLIF, step_propagators
from gpuspike.bridge.errors import RingBufferOverflow
from gpuspike.engine.eventprop.rings import SpikeRing
from scipy.optimize import brentq


@pytest.mark.parametrize("w,dt", [(7.0, 1e-3), (8.0, 1e-3), (8.0, 5e-3), (20.0, 2e-3)])
def test_interpolated_slope_is_the_exact_slope_at_the_crossing(w, dt, xp):
    """One input of weight w at t = 0: u(t) = w P(t), J(t) = w e^{-t/tau_s}.

    P peaks at 0.157 (t = 9.24 ms) for tau_m = 20 ms, tau_s = 5 ms, so w > 6.4 crosses.
    """
    neuron = CanonicalLIF(20e-3, 5e-3, 1.0, 0.0)
    prop = lambda t: step_propagators(neuron.tau_m, neuron.tau_s, t).p_vi  # noqa: E731
    t_star = brentq(lambda t: w * prop(t) - neuron.theta, 1e-9, 9.24e-3)
    slope = w * np.exp(-t_star / neuron.tau_s) - neuron.theta
    n = int(np.ceil(t_star / dt))                 # first grid step at or above threshold
    t0 = (n - 1) * dt                             # state at the start of that step
    u0 = w * prop(t0) if t0 > 0 else 0.0
    j0 = w * np.exp(-t0 / neuron.tau_s)
    for crossing, expected in (("interpolated", slope),
                               ("sample", w * np.exp(-n * dt / neuron.tau_s) - w * prop(n * dt))):
        ring = SpikeRing.empty(xp, 1, 1, 4, np.float64, "h")
        ring.push(xp, xp.asarray([[True]]), n, xp.asarray([[u0]]), xp.asarray([[j0]]))
        ring.finish(xp, neuron, dt, crossing)
        got = float(ring.i_minus_v[0, 0, 0])
        assert got == pytest.approx(expected, rel=1e-6, abs=1e-9), crossing
    assert slope > 0


def test_reader_returns_spikes_newest_first_and_overflow_raises(xp):
    neuron = CanonicalLIF(20e-3, 5e-3, 1.0, 0.0)
    ring = SpikeRing.empty(xp, 2, 3, 2, np.float64, "h")
    for step, mask in ((3, [[1, 0, 0], [0, 1, 0]]), (5, [[1, 0, 1], [0, 0, 0]])):
        m = xp.asarray(np.array(mask, bool))
        ring.push(xp, m, step, xp.full((2, 3), 0.5), xp.full((2, 3), 3.0))
    ring.check()
    ring.finish(xp, neuron, 1e-3)
    ptr = ring.reader(xp)
    s5, _ = ring.spikes_at(xp, ptr, 5)
    s4, _ = ring.spikes_at(xp, ptr, 4)
    s3, _ = ring.spikes_at(xp, ptr, 3)
    host = lambda a: a.get() if hasattr(a, "get") else np.asarray(a)  # noqa: E731
    assert host(s5).tolist() == [[True, False, True], [False, False, False]]
    assert not host(s4).any()
    assert host(s3).tolist() == [[True, False, False], [False, True, False]]
    ring.push(xp, xp.asarray(np.array([[1, 0, 0], [0, 0, 0]], bool)), 7,
              xp.zeros((2, 3)), xp.zeros((2, 3)))
    with pytest.raises(RingBufferOverflow, match="max_spikes=2"):
        ring.check()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_crossing_lag_matches_brentq_on_random_brackets(dtype):
    """Safeguarded Newton vs scipy's brentq on 2000 random (u0, J0) that cross in one step,
    near-grazing ones (u(dt) just above theta) and tau_s = tau_m included.

    Every root's voltage residual is at rounding level; where the crossing is well
    conditioned (slope du/ds >= 0.05 / tau_m) the lag itself equals brentq's to
    sqrt(eps)^2-ish precision."""
    from gpuspike.engine.eventprop.rings import _voltage, crossing_lag

    eps = float(np.finfo(dtype).eps)
    rng = np.random.default_rng(3)
    for neuron, dt in ((CanonicalLIF(20e-3, 5e-3, 1.0, 0.0), 5e-3),
                       (CanonicalLIF(10e-3, 10e-3, 1.0, 0.0), 1e-3)):
        u0 = rng.uniform(-0.5, 0.999, 4000)
        j0 = rng.uniform(-2.0, 60.0, 4000)
        crosses = _voltage(np, neuron, u0, j0, dt) >= neuron.theta
        u0, j0 = u0[crosses][:2000], j0[crosses][:2000]
        u0, j0 = u0.astype(dtype).astype(float), j0.astype(dtype).astype(float)
        got = crossing_lag(np, neuron, u0.astype(dtype), j0.astype(dtype), dtype(dt))
        got = got.astype(float)
        ref = np.array([brentq(lambda s, a=a, b=b, nrn=neuron: _voltage(np, nrn, a, b, s) - 1.0,
                               0.0, dt, xtol=1e-16) for a, b in zip(u0, j0)])
        assert len(ref) > 500 and np.all((got >= 0) & (got <= dt))
        residual = np.abs(_voltage(np, neuron, u0, j0, got) - neuron.theta)
        assert residual.max() <= 32 * eps * (1 + np.abs(j0).max()), residual.max()
        slope = (j0 * np.exp(-ref / neuron.tau_s) - neuron.theta) / neuron.tau_m
        good = slope >= 0.05 / neuron.tau_m
        assert good.mean() > 0.9
        np.testing.assert_allclose(got[good], ref[good], rtol=0, atol=200 * eps * dt)
