"""The slope at a threshold crossing: the denominator of EventProp's jump, as a kernel helper.

A neuron whose state at the start of a step is ``(u0, J0)`` (canonical form of
:mod:`gpuspike.bridge.adjoint`) and that is at or above ``theta`` at the end of it crossed
the threshold at a lag ``s*`` in ``[0, dt]`` that solves

    f(s) = alpha(s) u0 + P(s) J0 - theta = 0 ,   alpha(s) = e^{-s/tau_m},
    P(s) = e^{-s/tau_m} (s/tau_m) expm1(z)/z ,  z = s (1/tau_m - 1/tau_s)

(``P`` is the exact current-to-voltage propagator; ``tau_s = tau_m`` included). There
``tau_m du/dt^- = J0 e^{-s*/tau_s} - theta``, positive for every upward crossing: the exact
event-based value, up to the grid rounding of the inputs (``"interpolated"``). mlGeNN's
``"sample"`` takes ``J_n - u_n`` on the grid sample after the crossing instead (often
past the PSP's peak on a coarse grid, so small or negative).

The root is found by a safeguarded Newton iteration (rtsafe), ``f'(s) = (J0 e^{-s/tau_s} -
u(s)) / tau_m``, on the bracket ``[0, dt]``, started at the root of the cubic Hermite
interpolant of ``f`` through both ends of the step: ``f(0) = u0 - theta`` and ``f(dt) = u1 -
theta`` with their slopes ``(J - u) / tau_m``, where ``(u1, J1)`` is the state at the step's
end that the forward pass has anyway (before the reset). The cubic is exact to
``O(dt^4)``, so one or two Newton evaluations (two transcendental calls each) finish the
solve, against five or six from a secant start. A Newton step that leaves the current
bracket, meets ``f' <= 0`` or shrinks it too slowly is replaced by a bisection, so it
converges whenever bisection does. An entry stops at an exact root, once an accepted
Newton step is below ``sqrt(eps) dt`` or its bracket below ``4 eps dt``. A state with no
sign change over the step (``u1`` exactly at the threshold) crosses at the end of the step
(at its start if ``u0`` is already at the threshold), without iterating.

The kernels call one function, ``gs_crossing_slope(u0, J0, u1, J1, tau_m, tau_s, theta,
dt)`` (:data:`CROSSING_SLOPE`): C++/CUDA source in the module's preamble (overloaded:
double arithmetic and tolerances in float64 plans, float in float32 plans), the vectorised
:func:`crossing_slope` on the NumPy engine (float64). All implement the iteration above.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gpuspike.bridge.ir import FunctionIR

#: Most safeguarded Newton steps (bisection alone needs <= 55 in double precision).
MAX_STEPS = 80

_C_SOURCE = r"""
// u(s) and tau_m du/ds at lag s: a = e^{-s/tau_m}, e^{-s/tau_s} = a (1 + expm1(z)),
// z = s (1/tau_m - 1/tau_s): two transcendental calls per evaluation
template <typename T>
inline void gs_crossing_eval(T u0, T j0, T tau_m, T r, T s, T* u, T* slope) {
    const T a = exp(-s / tau_m);
    const T z = s * r;
    const T em = expm1(z);
    const T phi = fabs(z) > (T)1e-8 ? em / z : (T)1 + (T)0.5 * z;
    *u = a * u0 + a * (s / tau_m) * phi * j0;
    *slope = a * ((T)1 + em) * j0 - *u;
}
// the root in [0, 1] of the cubic Hermite interpolant of f (values f0, f1, slopes d0, d1
// per unit x = s/dt), from the secant, by Newton steps kept inside [0, 1]
template <typename T>
inline T gs_hermite_root(T f0, T f1, T d0, T d1) {
    T x = f0 / (f0 - f1);
    for (int it = 0; it < 4; ++it) {
        const T x2 = x * x, x3 = x2 * x;
        const T p = ((T)2 * x3 - (T)3 * x2 + (T)1) * f0 + (x3 - (T)2 * x2 + x) * d0
                    + ((T)-2 * x3 + (T)3 * x2) * f1 + (x3 - x2) * d1;
        const T dp = ((T)6 * x2 - (T)6 * x) * f0 + ((T)3 * x2 - (T)4 * x + (T)1) * d0
                     + ((T)-6 * x2 + (T)6 * x) * f1 + ((T)3 * x2 - (T)2 * x) * d1;
        if (!(dp > (T)0)) break;
        const T next = x - p / dp;
        x = next < (T)0 ? (T)0 : (next > (T)1 ? (T)1 : next);
    }
    return x;
}
template <typename T>
inline T gs_crossing_slope_t(T u0, T j0, T u1, T j1, T tau_m, T tau_s, T theta, T dt, T eps) {
    // safeguarded Newton for the crossing lag s* in [0, dt] (engine/eventprop/crossing.py)
    const T r = (T)1 / tau_m - (T)1 / tau_s;
    const T tol = sqrt(eps) * dt, width = (T)4 * eps * dt;
    const T f_lo = u0 - theta, f_hi = u1 - theta;
    T lo = 0, hi = dt, u, slope, s;
    if (f_hi <= (T)0) {
        s = dt;  // no sign change: the end of the step
    } else if (f_lo >= (T)0) {
        s = 0;
    } else {
        s = dt * gs_hermite_root(f_lo, f_hi, (j0 - u0) / tau_m * dt, (j1 - u1) / tau_m * dt);
        for (int it = 0; it < 80; ++it) {
            gs_crossing_eval(u0, j0, tau_m, r, s, &u, &slope);
            const T f = u - theta;
            if (f == (T)0) break;  // the root itself
            if (f > (T)0) hi = s; else lo = s;
            const T d = slope / tau_m;
            const T newton = s - f / (d > (T)0 ? d : (T)1);
            const bool ok = d > (T)0 && newton > lo && newton < hi
                            && (T)2 * fabs(newton - s) <= hi - lo;
            const T next = ok ? newton : (T)0.5 * (lo + hi);
            const bool done = (ok && fabs(next - s) <= tol) || !(hi - lo > width);
            s = next;
            if (done) break;
        }
    }
    return j0 * exp(-s / tau_s) - theta;
}
// double precision plans, and single precision ones (float32 states: float arithmetic)
inline double gs_crossing_slope(double u0, double j0, double u1, double j1, double tau_m,
                                double tau_s, double theta, double dt) {
    return gs_crossing_slope_t(u0, j0, u1, j1, tau_m, tau_s, theta, dt, 2.220446049250313e-16);
}
inline float gs_crossing_slope(float u0, float j0, float u1, float j1, float tau_m,
                               float tau_s, float theta, float dt) {
    return gs_crossing_slope_t(u0, j0, u1, j1, tau_m, tau_s, theta, dt, 1.1920929e-07f);
}
"""


def _voltage(u0: Any, j0: Any, tau_m: float, tau_s: float, s: Any) -> Any:
    a = np.exp(-s / tau_m)
    z = s * (1.0 / tau_m - 1.0 / tau_s)
    safe = np.where(np.abs(z) > 1e-8, z, 1.0)
    phi = np.where(np.abs(z) > 1e-8, np.expm1(safe) / safe, 1.0 + 0.5 * z)
    return a * u0 + a * (s / tau_m) * phi * j0


def _hermite_root(f0: np.ndarray, f1: np.ndarray, d0: np.ndarray, d1: np.ndarray) -> np.ndarray:
    """The root in ``[0, 1]`` of the cubic Hermite interpolant (values ``f0, f1``, slopes
    ``d0, d1`` per unit ``x``), from the secant, by Newton steps kept inside ``[0, 1]``."""
    x = f0 / (f0 - f1)
    going = np.ones(x.shape, dtype=bool)
    for _ in range(4):
        x2, x3 = x * x, x * x * x
        p = ((2 * x3 - 3 * x2 + 1) * f0 + (x3 - 2 * x2 + x) * d0 + (-2 * x3 + 3 * x2) * f1
             + (x3 - x2) * d1)
        dp = ((6 * x2 - 6 * x) * f0 + (3 * x2 - 4 * x + 1) * d0 + (-6 * x2 + 6 * x) * f1
              + (3 * x2 - 2 * x) * d1)
        going &= dp > 0
        x = np.where(going, np.clip(x - p / np.where(going, dp, 1.0), 0.0, 1.0), x)
    return x


def crossing_lag(u0: Any, j0: Any, u1: Any, j1: Any, tau_m: float, tau_s: float,
                 theta: float, dt: float) -> np.ndarray:
    """The lag ``s*`` (module docstring) per entry, in float64, from the states at the
    step's start ``(u0, j0)`` and end ``(u1, j1)``; needs ``u0 < theta <= u1``."""
    u0, j0, u1, j1 = (np.asarray(x, dtype=np.float64).ravel() for x in (u0, j0, u1, j1))
    tau_m, tau_s, theta, dt = (float(np.asarray(x).ravel()[0]) for x in (tau_m, tau_s, theta, dt))
    lo = np.zeros_like(u0)
    hi = np.full_like(u0, dt)
    f_lo, f_hi = u0 - theta, u1 - theta
    active = np.flatnonzero((f_lo < 0) & (f_hi > 0))
    s = np.where(f_hi <= 0, dt, 0.0)   # no sign change: the step's end (or start)
    s[active] = dt * _hermite_root(f_lo[active], f_hi[active],
                                   (j0[active] - u0[active]) / tau_m * dt,
                                   (j1[active] - u1[active]) / tau_m * dt)
    eps = float(np.finfo(np.float64).eps)
    tol, width = eps**0.5 * dt, 4.0 * eps * dt
    for _ in range(MAX_STEPS):
        if active.size == 0:
            break
        sa, la, ha, ua, ja = s[active], lo[active], hi[active], u0[active], j0[active]
        u = _voltage(ua, ja, tau_m, tau_s, sa)
        f = u - theta
        above = f > 0
        ha = np.where(above, sa, ha)
        la = np.where(above, la, sa)
        slope = (ja * np.exp(-sa / tau_s) - u) / tau_m
        newton = sa - f / np.where(slope > 0, slope, 1.0)
        ok = (slope > 0) & (newton > la) & (newton < ha) & (2.0 * np.abs(newton - sa) <= ha - la)
        new = np.where(ok, newton, 0.5 * (la + ha))
        new = np.where(f == 0, sa, new)   # the root itself
        s[active], lo[active], hi[active] = new, la, ha
        active = active[~(ok & (np.abs(new - sa) <= tol)) & (ha - la > width) & (f != 0)]
    return s


def crossing_slope(u0: Any, j0: Any, u1: Any, j1: Any, tau_m: Any, tau_s: Any, theta: Any,
                   dt: Any) -> np.ndarray:
    """``tau_m du/dt^-`` at the crossing, ``J0 e^{-s*/tau_s} - theta`` (the NumPy engine's
    implementation of ``gs_crossing_slope``; computed in float64, returned in the input's
    float type)."""
    arrays = [np.asarray(x) for x in (u0, j0, u1, j1)]
    shape = np.broadcast(*arrays).shape
    out_type = np.result_type(*(a.dtype for a in arrays))
    if not np.issubdtype(out_type, np.floating):
        out_type = np.dtype(np.float64)
    u0b, j0b, u1b, j1b = (np.broadcast_to(a, shape) for a in arrays)
    j = j0b.astype(np.float64).ravel()
    tau_s_f, theta_f = float(np.asarray(tau_s).ravel()[0]), float(np.asarray(theta).ravel()[0])
    s = crossing_lag(u0b, j0b, u1b, j1b, tau_m, tau_s, theta, dt)
    return (j * np.exp(-s / tau_s_f) - theta_f).reshape(shape).astype(out_type)


#: The helper as a kernel function (NumPy and C++/CUDA implementations).
CROSSING_SLOPE = FunctionIR("gs_crossing_slope", numpy=crossing_slope, cuda=_C_SOURCE)
