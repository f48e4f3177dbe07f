"""Binomial and Poisson draws on the Philox streams, with the same algorithm on both engines.

Every draw of a call site uses the counter convention of :mod:`.rng`; a rejection sampler's
iteration ``r`` (``r = 0, 1, ...``) uses the call-site id ``draw + (r + 1) * 2**20`` so that
the sequence of uniforms an element consumes is fixed by (seed, stream, step, draw, index)
alone, whatever the other elements do. Uniforms are the 53-bit ones of :func:`.rng.uniform`.

Poisson(λ)
    ``λ < 10``: inversion (``k = 0, p = e^{-λ}, F = p; while u > F: k += 1, p *= λ/k,
    F += p``) from one uniform. ``λ >= 10``: PTRS, the transformed rejection of Hörmann
    (1993), with ``b = 0.931 + 2.53 √λ``, ``a = -0.059 + 0.02483 b``,
    ``1/α = 1.1239 + 1.1328/(b - 3.4)``, ``v_r = 0.9277 - 3.6224/(b - 2)``: per iteration
    ``U = u - 1/2``, ``V``, ``u_s = 1/2 - |U|``, ``k = ⌊(2a/u_s + b) U + λ + 0.43⌋``; accept if
    ``u_s >= 0.07 and V <= v_r``, or if ``k >= 0``, not ``(u_s < 0.013 and V > u_s)`` and
    ``log V + log(1/α) - log(a/u_s² + b) <= -λ + k log λ - lgamma(k + 1)``.
Binomial(n, p)
    with ``q = min(p, 1 - p)`` (and ``n - k`` returned when ``p > 1/2``): ``n q < 10``:
    inversion (BINV: ``s = q/(1-q)``, ``a = (n+1) s``, ``r = (1-q)^n``; ``while u > r:
    u -= r, k += 1, r *= a/k - s``); otherwise BTRS (Hörmann 1993): ``σ = √(n q (1-q))``,
    ``b = 1.15 + 2.53 σ``, ``a = -0.0873 + 0.0248 b + 0.01 q``, ``c = n q + 0.5``,
    ``v_r = 0.92 - 4.2/b``, ``α = (2.83 + 5.1/b) σ``, ``m = ⌊(n+1) q⌋``; per iteration as for
    PTRS with ``k = ⌊(2a/u_s + b) U + c⌋`` rejected outside [0, n], quick accept
    ``u_s >= 0.07 and V <= v_r``, else accept if ``log(V α/(a/u_s² + b)) <= h - lgamma(k+1)
    - lgamma(n-k+1) + (k - m) log(q/(1-q))`` with ``h = lgamma(m+1) + lgamma(n-m+1)``.

Both exact in distribution. ``lgamma``, ``log`` and ``exp`` may differ by an ulp between
libraries, so rare draws at an acceptance boundary can differ between CPU and GPU; the
uniforms themselves are bit-identical.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
from scipy.special import gammaln

from .rng import uniform

#: Call-site offset of rejection iterations (call-site ids stay below this).
ITERATION_STRIDE = 1 << 20
MAX_ITERATIONS = 64
MAX_INVERSION_STEPS = 1000


def _uv(xp, seed, stream, step, draw, index, r):
    """Two independent uniforms of rejection iteration ``r`` (two Philox calls)."""
    d = draw + (r + 1) * ITERATION_STRIDE
    u = uniform(xp, seed, stream, step, d, index, np.float64)
    v = uniform(xp, seed, stream, step, d + ITERATION_STRIDE // 2, index, np.float64)
    return u, v


def poisson(xp: ModuleType, seed: int, stream: int, step: Any, draw: int, index: Any,
            lam: Any) -> Any:
    """Poisson(``lam``) draws (float64 values), one per ``index`` (arrays broadcast)."""
    index = xp.asarray(index)
    lam = xp.broadcast_to(xp.asarray(lam, dtype=xp.float64), index.shape).copy()
    out = xp.zeros(index.shape, dtype=xp.float64)
    small = lam < 10.0
    # inversion
    u = uniform(xp, seed, stream, step, draw, index, np.float64)
    p = xp.exp(-lam)
    f = p.copy()
    k = xp.zeros_like(lam)
    active = small & (lam > 0) & (u > f)
    for _ in range(MAX_INVERSION_STEPS):
        if not bool(active.any()):
            break
        k = xp.where(active, k + 1, k)
        p = xp.where(active, p * lam / xp.maximum(k, 1), p)
        f = xp.where(active, f + p, f)
        active = active & (u > f)
    out = xp.where(small, k, out)
    # PTRS
    big = ~small
    if bool(big.any()):
        slam = xp.sqrt(lam)
        loglam = xp.log(xp.maximum(lam, 1e-300))
        b = 0.931 + 2.53 * slam
        a = -0.059 + 0.02483 * b
        invalpha = 1.1239 + 1.1328 / (b - 3.4)
        vr = 0.9277 - 3.6224 / (b - 2.0)
        todo = big.copy()
        for r in range(MAX_ITERATIONS):
            if not bool(todo.any()):
                break
            uu, v = _uv(xp, seed, stream, step, draw, index, r)
            uu = uu - 0.5
            us = 0.5 - xp.abs(uu)
            kk = xp.floor((2.0 * a / us + b) * uu + lam + 0.43)
            quick = (us >= 0.07) & (v <= vr)
            possible = (kk >= 0) & ~((us < 0.013) & (v > us))
            lhs = xp.log(xp.maximum(v, 1e-300)) + xp.log(invalpha) - xp.log(a / (us * us) + b)
            rhs = -lam + kk * loglam - _gammaln(xp, kk + 1.0)
            accept = todo & (quick | (possible & (lhs <= rhs)))
            out = xp.where(accept, kk, out)
            todo = todo & ~accept
        out = xp.where(todo, xp.floor(lam), out)  # practically never (64 rejections)
    return out


def binomial(xp: ModuleType, seed: int, stream: int, step: Any, draw: int, index: Any,
             n: Any, p: Any) -> Any:
    """Binomial(``n``, ``p``) draws (float64 values), one per ``index``."""
    index = xp.asarray(index)
    n = xp.broadcast_to(xp.floor(xp.asarray(n, dtype=xp.float64)), index.shape).copy()
    p = xp.broadcast_to(xp.asarray(p, dtype=xp.float64), index.shape).copy()
    flip = p > 0.5
    q = xp.clip(xp.where(flip, 1.0 - p, p), 0.0, 0.5)
    out = xp.zeros(index.shape, dtype=xp.float64)
    trivial = (q <= 0) | (n <= 0)
    small = ~trivial & (n * q < 10.0)
    # BINV inversion
    u = uniform(xp, seed, stream, step, draw, index, np.float64)
    qq = xp.where(small, q, 0.25)
    s = qq / (1.0 - qq)
    a = (n + 1.0) * s
    r_ = xp.exp(n * xp.log1p(-qq))
    k = xp.zeros_like(n)
    active = small & (u > r_)
    for _ in range(MAX_INVERSION_STEPS):
        if not bool(active.any()):
            break
        u = xp.where(active, u - r_, u)
        k = xp.where(active, k + 1, k)
        r_ = xp.where(active, r_ * (a / xp.maximum(k, 1) - s), r_)
        active = active & (u > r_) & (k < n)
    out = xp.where(small, k, out)
    # BTRS
    big = ~trivial & ~small
    if bool(big.any()):
        qb = xp.where(big, q, 0.25)
        nb = xp.where(big, n, 100.0)
        spq = xp.sqrt(nb * qb * (1.0 - qb))
        b = 1.15 + 2.53 * spq
        a = -0.0873 + 0.0248 * b + 0.01 * qb
        c = nb * qb + 0.5
        vr = 0.92 - 4.2 / b
        alpha = (2.83 + 5.1 / b) * spq
        lpq = xp.log(qb / (1.0 - qb))
        m = xp.floor((nb + 1.0) * qb)
        h = _gammaln(xp, m + 1.0) + _gammaln(xp, nb - m + 1.0)
        todo = big.copy()
        for r in range(MAX_ITERATIONS):
            if not bool(todo.any()):
                break
            uu, v = _uv(xp, seed, stream, step, draw, index, r)
            uu = uu - 0.5
            us = 0.5 - xp.abs(uu)
            kk = xp.floor((2.0 * a / us + b) * uu + c)
            inside = (kk >= 0) & (kk <= nb)
            quick = (us >= 0.07) & (v <= vr)
            lv = xp.log(xp.maximum(v * alpha / (a / (us * us) + b), 1e-300))
            kc = xp.clip(kk, 0, nb)
            bound = h - _gammaln(xp, kc + 1.0) - _gammaln(xp, nb - kc + 1.0) + (kc - m) * lpq
            accept = todo & inside & (quick | (lv <= bound))
            out = xp.where(accept, kk, out)
            todo = todo & ~accept
        out = xp.where(todo, xp.floor(nb * qb), out)
    out = xp.where(flip & ~(n <= 0), n - out, out)
    return xp.where(p >= 1.0, n, out)


def _gammaln(xp: ModuleType, x: Any) -> Any:
    if xp is np:
        return gammaln(x)
    from cupyx.scipy.special import gammaln as cupy_gammaln

    return cupy_gammaln(x)


CUDA_SOURCE: str = r"""
// Binomial and Poisson draws on the Philox streams (gpuspike.engine.rng_discrete).
#define _GS_ITER (1u << 20)
__device__ __forceinline__ double _rng_poisson(unsigned long long seed, unsigned int stream,
                                               unsigned long long step, unsigned int draw,
                                               unsigned int index, double lam)
{
    if (!(lam > 0.0)) return 0.0;
    if (lam < 10.0) {
        const double u = _rng_uniform_f64(seed, stream, step, draw, index);
        double p = exp(-lam), f = p, k = 0.0;
        for (int it = 0; it < 1000 && u > f; ++it) { k += 1.0; p *= lam / k; f += p; }
        return k;
    }
    const double slam = sqrt(lam), loglam = log(lam);
    const double b = 0.931 + 2.53 * slam, a = -0.059 + 0.02483 * b;
    const double invalpha = 1.1239 + 1.1328 / (b - 3.4), vr = 0.9277 - 3.6224 / (b - 2.0);
    for (unsigned int r = 0; r < 64u; ++r) {
        const unsigned int d = draw + (r + 1u) * _GS_ITER;
        const double uu = _rng_uniform_f64(seed, stream, step, d, index) - 0.5;
        const double v = _rng_uniform_f64(seed, stream, step, d + _GS_ITER / 2u, index);
        const double us = 0.5 - fabs(uu);
        const double k = floor((2.0 * a / us + b) * uu + lam + 0.43);
        if (us >= 0.07 && v <= vr) return k;
        if (k < 0.0 || (us < 0.013 && v > us)) continue;
        if (log(fmax(v, 1e-300)) + log(invalpha) - log(a / (us * us) + b)
            <= -lam + k * loglam - lgamma(k + 1.0)) return k;
    }
    return floor(lam);
}

__device__ __forceinline__ double _rng_binomial(unsigned long long seed, unsigned int stream,
                                                unsigned long long step, unsigned int draw,
                                                unsigned int index, double n, double p)
{
    n = floor(n);
    if (p >= 1.0) return n;
    const bool flip = p > 0.5;
    const double q = fmin(fmax(flip ? 1.0 - p : p, 0.0), 0.5);
    if (q <= 0.0 || n <= 0.0) return flip && n > 0.0 ? n : 0.0;
    double k = 0.0;
    if (n * q < 10.0) {
        double u = _rng_uniform_f64(seed, stream, step, draw, index);
        const double s = q / (1.0 - q), a = (n + 1.0) * s;
        double r = exp(n * log1p(-q));
        for (int it = 0; it < 1000 && u > r && k < n; ++it) {
            u -= r; k += 1.0; r *= a / k - s;
        }
    } else {
        const double spq = sqrt(n * q * (1.0 - q));
        const double b = 1.15 + 2.53 * spq, a = -0.0873 + 0.0248 * b + 0.01 * q;
        const double c = n * q + 0.5, vr = 0.92 - 4.2 / b, alpha = (2.83 + 5.1 / b) * spq;
        const double lpq = log(q / (1.0 - q)), m = floor((n + 1.0) * q);
        const double h = lgamma(m + 1.0) + lgamma(n - m + 1.0);
        k = floor(n * q);
        for (unsigned int r = 0; r < 64u; ++r) {
            const unsigned int d = draw + (r + 1u) * _GS_ITER;
            const double uu = _rng_uniform_f64(seed, stream, step, d, index) - 0.5;
            const double v = _rng_uniform_f64(seed, stream, step, d + _GS_ITER / 2u, index);
            const double us = 0.5 - fabs(uu);
            const double kk = floor((2.0 * a / us + b) * uu + c);
            if (kk < 0.0 || kk > n) continue;
            if (us >= 0.07 && v <= vr) { k = kk; break; }
            const double lv = log(fmax(v * alpha / (a / (us * us) + b), 1e-300));
            if (lv <= h - lgamma(kk + 1.0) - lgamma(n - kk + 1.0) + (kk - m) * lpq) {
                k = kk; break;
            }
        }
    }
    return flip ? n - k : k;
}
"""
