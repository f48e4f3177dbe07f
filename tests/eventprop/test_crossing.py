"""The crossing-slope helper: against the closed-form PSP and brentq, on every engine."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
from gpuspike.bridge.adjoint import CanonicalLIF, step_propagators
from gpuspike.engine import kernel_ir as k
from gpuspike.engine.backend import select_backend
from gpuspike.engine.eventprop.crossing import (
    CROSSING_SLOPE,
    _voltage,
    crossing_lag,
    crossing_slope,
)
from gpuspike.engine.memory import allocate
from gpuspike.engine.programs import make_program
from scipy.optimize import brentq


def end_state(u0, j0, neuron: CanonicalLIF, dt: float):
    """The state at the step's end (the exact propagator, as the forward pass has it)."""
    p = step_propagators(neuron.tau_m, neuron.tau_s, dt)
    return p.alpha * np.asarray(u0) + p.p_vi * np.asarray(j0), p.beta * np.asarray(j0)


def slopes_on_engine(engine: str, u0, j0, neuron: CanonicalLIF, dt: float) -> np.ndarray:
    """``gs_crossing_slope`` called from a generated kernel (one element per entry)."""
    n = len(u0)
    S = sympy.Symbol
    u1, j1 = end_state(u0, j0, neuron, dt)
    body = (k.Load("a", "u0"), k.Load("c", "j0"), k.Load("e", "u1"), k.Load("f", "j1"),
            k.Store("out", sympy.Function("gs_crossing_slope")(
                S("a"), S("c"), S("e"), S("f"), neuron.tau_m, neuron.tau_s, neuron.theta,
                dt)))
    kern = k.Kernel("slope", k.ElementDomain("g", n), body, "update",
                    locals=tuple((x, "float") for x in "acef"))
    arrays = (k.ArrayDecl("__step", "int64", 1), k.ArrayDecl("__origin", "int64", 1),
              *(k.ArrayDecl(a, "float", n, batched=True)
                for a in ("u0", "j0", "u1", "j1", "out")))
    plan = k.Plan("crossing_test", "float64", 1, dt, 0, arrays, (kern,), (), (CROSSING_SLOPE,))
    backend = select_backend(engine)
    A = allocate(plan, backend.xp)
    for name, value in (("u0", u0), ("j0", j0), ("u1", u1), ("j1", j1)):
        A[name][0] = backend.xp.asarray(value)
    prog = make_program(backend, plan, A)
    prog.run(1)
    prog.sync()
    out = A["out"][0]
    return out.get() if hasattr(out, "get") else np.asarray(out)


@pytest.mark.parametrize("w,dt", [(7.0, 1e-3), (8.0, 1e-3), (8.0, 5e-3), (20.0, 2e-3)])
def test_interpolated_slope_is_the_exact_slope_at_the_crossing(w, dt, engine):
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
    got = slopes_on_engine(engine, [u0], [j0], neuron, dt)[0]
    assert got == pytest.approx(slope, rel=1e-6, abs=1e-9)
    assert slope > 0


def test_the_kernel_helper_equals_the_numpy_implementation(engine):
    """The C++/CUDA text and the NumPy function run the same iteration: equal to rounding."""
    neuron, dt = CanonicalLIF(20e-3, 5e-3, 1.0, 0.0), 1e-3
    rng = np.random.default_rng(5)
    u0 = rng.uniform(-0.5, 0.999, 3000)
    j0 = rng.uniform(-2.0, 60.0, 3000)
    crosses = _voltage(u0, j0, neuron.tau_m, neuron.tau_s, dt) >= neuron.theta
    u0, j0 = u0[crosses], j0[crosses]
    want = crossing_slope(u0, j0, *end_state(u0, j0, neuron, dt), neuron.tau_m,
                          neuron.tau_s, neuron.theta, dt)
    got = slopes_on_engine(engine, u0, j0, neuron, dt)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_crossing_lag_matches_brentq_on_random_brackets(dtype):
    """Safeguarded Newton vs scipy's brentq on 2000 random (u0, J0) that cross in one step,
    near-grazing ones (u(dt) just above theta) and tau_s = tau_m included, with states
    rounded to ``dtype`` (the solve itself runs in double precision; the end state as the
    exact propagator gives it).

    Every root's voltage residual is at rounding level; where the crossing is well
    conditioned (slope du/ds >= 0.05 / tau_m) the lag itself equals brentq's."""
    eps = float(np.finfo(np.float64).eps)
    rng = np.random.default_rng(3)
    for neuron, dt in ((CanonicalLIF(20e-3, 5e-3, 1.0, 0.0), 5e-3),
                       (CanonicalLIF(10e-3, 10e-3, 1.0, 0.0), 1e-3)):
        tm, ts = neuron.tau_m, neuron.tau_s
        u0 = rng.uniform(-0.5, 0.999, 4000)
        j0 = rng.uniform(-2.0, 60.0, 4000)
        u0, j0 = u0.astype(dtype).astype(float), j0.astype(dtype).astype(float)
        crosses = _voltage(u0, j0, tm, ts, dt) >= neuron.theta
        u0, j0 = u0[crosses][:2000], j0[crosses][:2000]
        u1, j1 = end_state(u0, j0, neuron, dt)
        got = crossing_lag(u0.astype(dtype), j0.astype(dtype), u1, j1, tm, ts, neuron.theta, dt)
        ref = np.array([brentq(lambda s, a=a, b=b, tm=tm, ts=ts: _voltage(a, b, tm, ts, s) - 1.0,
                               0.0, dt, xtol=1e-16) for a, b in zip(u0, j0)])
        assert len(ref) > 500 and np.all((got >= 0) & (got <= dt))
        residual = np.abs(_voltage(u0, j0, tm, ts, got) - neuron.theta)
        assert residual.max() <= 32 * eps * (1 + np.abs(j0).max()), residual.max()
        slope = (j0 * np.exp(-ref / ts) - neuron.theta) / tm
        good = slope >= 0.05 / tm
        assert good.mean() > 0.9
        np.testing.assert_allclose(got[good], ref[good], rtol=0, atol=200 * eps * dt)


def test_the_hermite_start_leaves_one_or_two_newton_evaluations():
    """The cubic through both ends of the step starts Newton next to the root: on 2000
    random crossings at dt = 1 ms the solve needs at most two evaluations (a secant start
    needed five or six)."""
    from gpuspike.engine.eventprop import crossing

    neuron, dt = CanonicalLIF(20e-3, 5e-3, 1.0, 0.0), 1e-3
    rng = np.random.default_rng(7)
    u0 = rng.uniform(-0.5, 0.999, 6000)
    j0 = rng.uniform(-2.0, 60.0, 6000)
    u1, j1 = end_state(u0, j0, neuron, dt)
    keep = u1 > neuron.theta
    calls = []
    real = crossing._voltage

    def counting(*args):
        calls.append(np.size(args[0]))
        return real(*args)

    crossing._voltage = counting
    try:
        crossing.crossing_lag(u0[keep], j0[keep], u1[keep], j1[keep], neuron.tau_m,
                              neuron.tau_s, neuron.theta, dt)
    finally:
        crossing._voltage = real
    assert keep.sum() > 1000 and len(calls) <= 3, calls
