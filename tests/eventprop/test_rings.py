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
