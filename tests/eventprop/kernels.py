"""Closed-form kernels of the LIF/exponential-synapse model and of its adjoint.

Forward, between events (EVENTPROP.md §1.1)::

    tau_m dV/dt = -V + I,        tau_s dI/dt = -I
    V(t+u) = alpha(u) V + P(u) I,   I(t+u) = beta(u) I
    alpha(u) = exp(-u/tau_m),  beta(u) = exp(-u/tau_s)
    P(u) = A (beta - alpha),   A = tau_s/(tau_s - tau_m)      (= (u/tau) e^{-u/tau} if equal)

Adjoint, in reverse time (§1.3), with ``lambda_V(t1) -> lambda(t1 - u)``::

    lambda_V <- alpha(u) lambda_V
    lambda_I <- beta(u) lambda_I + K(u) lambda_V
    K(u) = B (alpha - beta),  B = tau_m/(tau_m - tau_s)

Both P and K are evaluated as ``x e^{-y} expm1(z)/z``, which is exact at tau_s = tau_m and
free of cancellation near it. Every time function used here is a sum of terms
``c u^p e^{-q u}`` (p in {0, 1}); :func:`exp_poly_integral` integrates them in closed form.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

#: A term ``coef * u**power * exp(-rate * u)``.
Term = tuple[float, int, float]


def _phi(z: np.ndarray | float) -> np.ndarray | float:
    """``expm1(z)/z`` with its limit 1 at z = 0."""
    z = np.asarray(z, dtype=float)
    out = np.ones_like(z)
    nz = z != 0.0
    out[nz] = np.expm1(z[nz]) / z[nz]
    return out if out.ndim else float(out)


def current_to_voltage(u, tau_m: float, tau_s: float):
    """P(u): voltage at lag u produced by a unit current at lag 0 (V(0) = 0)."""
    u = np.asarray(u, dtype=float)
    return np.exp(-u / tau_m) * (u / tau_m) * _phi(u * (1.0 / tau_m - 1.0 / tau_s))


def adjoint_v_to_i(u, tau_m: float, tau_s: float):
    """K(u): lambda_I at reverse lag u produced by a unit lambda_V at lag 0."""
    u = np.asarray(u, dtype=float)
    return np.exp(-u / tau_s) * (u / tau_s) * _phi(u * (1.0 / tau_s - 1.0 / tau_m))


def propagate_state(v, i, u, tau_m: float, tau_s: float):
    """Exact forward propagator over lag ``u``: returns ``(V(u), I(u))``."""
    return (np.exp(-u / tau_m) * v + current_to_voltage(u, tau_m, tau_s) * i,
            np.exp(-u / tau_s) * i)


def propagate_scalar(v: float, i: float, u: float, tau_m: float,
                     tau_s: float) -> tuple[float, float]:
    """:func:`propagate_state` for Python floats (the event loop's hot path)."""
    z = u * (1.0 / tau_m - 1.0 / tau_s)
    phi = math.expm1(z) / z if z != 0.0 else 1.0
    alpha = math.exp(-u / tau_m)
    return alpha * v + alpha * (u / tau_m) * phi * i, math.exp(-u / tau_s) * i


def voltage_terms(v0: float, i0: float, tau_m: float, tau_s: float) -> list[Term]:
    """``V(u)`` of a segment starting at ``(v0, i0)`` as exponential-polynomial terms."""
    if tau_m == tau_s:
        return [(v0, 0, 1.0 / tau_m), (i0 / tau_m, 1, 1.0 / tau_m)]
    a = tau_s / (tau_s - tau_m)
    return [(v0 - a * i0, 0, 1.0 / tau_m), (a * i0, 0, 1.0 / tau_s)]


def adjoint_kernel_terms(tau_m: float, tau_s: float) -> list[Term]:
    """``K(u)`` as exponential-polynomial terms."""
    if tau_m == tau_s:
        return [(1.0 / tau_m, 1, 1.0 / tau_m)]
    b = tau_m / (tau_m - tau_s)
    return [(b, 0, 1.0 / tau_m), (-b, 0, 1.0 / tau_s)]


def exp_poly_integral(rate: float, power: int, length: float) -> float:
    """``int_0^length u**power exp(-rate u) du`` for power 0 or 1 (any real rate)."""
    if rate == 0.0:
        return length if power == 0 else 0.5 * length * length
    x = rate * length
    if power == 0:
        return -math.expm1(-x) / rate
    # int u e^{-ru} du = (1 - e^{-x}(1 + x)) / r^2, written without cancellation for small x
    if abs(x) < 1e-3:
        return length * length * (0.5 - x / 3.0 + x * x / 8.0 - x ** 3 / 30.0)
    return (-math.expm1(-x) - x * math.exp(-x)) / (rate * rate)


def integrate_terms(terms: Iterable[Term], length: float, extra_rate: float = 0.0) -> float:
    """``int_0^length sum(terms)(u) exp(-extra_rate u) du`` in closed form."""
    return sum(c * exp_poly_integral(q + extra_rate, p, length) for c, p, q in terms if c != 0.0)


def segment_peak(v0: float, i0: float, length: float, tau_m: float,
                 tau_s: float) -> tuple[float, float]:
    """Maximum of ``V(u)`` on ``[0, length]`` for a segment starting at ``(v0, i0)``.

    ``tau_m dV/dt = I - V`` and ``g = I - V`` obeys ``g' = -I/tau_s - g/tau_m``: where g = 0,
    g' has the sign of -I, and I keeps its sign, so V has at most one interior extremum, a
    maximum when I > 0. It sits where I = V (closed form below); otherwise V is monotone.
    Returns ``(u_peak, V_peak)``.
    """
    if i0 <= 0.0 or i0 <= v0:
        return 0.0, v0
    if tau_m == tau_s:
        u = tau_m * (1.0 - v0 / i0)
    else:
        a = tau_s / (tau_s - tau_m)
        ca, cb = v0 - a * i0, a * i0          # V = ca e^{-u/tau_m} + cb e^{-u/tau_s}
        ratio = -(cb * tau_m) / (ca * tau_s) if ca != 0.0 else -1.0
        u = math.log(ratio) / (1.0 / tau_s - 1.0 / tau_m) if ratio > 0.0 else math.inf
    u = min(max(u, 0.0), length)
    return u, propagate_scalar(v0, i0, u, tau_m, tau_s)[0]
