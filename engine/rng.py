"""Counter-based random numbers: Philox4x32-10 on any array module, with a CUDA twin.

The generator
-------------
Philox4x32-10 (Salmon et al. 2011, Random123) maps a 128-bit counter ``(c0, c1, c2, c3)``
and a 64-bit key ``(k0, k1)`` to four 32-bit words through ten rounds of::

    (c0, c1, c2, c3) <- (hi(M1 c2) ^ c1 ^ k0,  lo(M1 c2),  hi(M0 c0) ^ c3 ^ k1,  lo(M0 c0))

with ``M0 = 0xD2511F53``, ``M1 = 0xCD9E8D57`` (``hi``/``lo``: upper/lower 32 bits of the
64-bit product), and the key bumped by the Weyl constants ``(0x9E3779B9, 0xBB67AE85)``
between rounds. Because every output depends only on (counter, key), draws need no state:
any element, step and call site can be drawn in any order, on the host or the device, and
``K`` steps can be captured once in a CUDA graph.

The engine's stream convention
------------------------------
For a network seed ``seed`` (64 bits), a stream ``stream`` (32 bits: one per population or
kernel), a step ``step`` (64 bits), a call site ``draw`` (32 bits) and an element ``index``::

    key     = (seed & 0xffffffff,  (seed >> 32) ^ (stream * 0x9E3779B9 mod 2**32))
    counter = (index,  step & 0xffffffff,  step >> 32,  draw)

Connectivity is built with ``step >= CONNECT_STEP_BASE`` (upper step word all ones), which
no simulation reaches, so it never reuses a counter of a running kernel in the same stream.

From words to numbers
---------------------
- float64 uniform on [0, 1), 53 bits: ``((w0 >> 5) * 2**26 + (w1 >> 6)) * 2**-53``;
- float32 uniform on [0, 1), 24 bits: ``(w0 >> 8) * 2**-24``.

Both are exact integer -> float conversions followed by a multiplication by a power of
two, hence bit-identical on every IEEE-754 machine (NumPy, CuPy, the CUDA twin below).

- standard normal (Box-Muller, one of the pair): ``u1 = 1 - U(w0, w1)`` in (0, 1],
  ``u2 = U(w2, w3)``, ``z = sqrt(-2 log u1) cos(2 pi u2)``; float32 uses ``w0`` and ``w2``.
  ``log`` and ``cos`` differ between libraries by an ulp or so, so normals agree to
  rounding, not bit for bit.
- geometric gaps for connectivity: ``floor(log(1 - u) / log(1 - p)) + 1`` is the number
  of Bernoulli(p) trials up to and including the first success (see
  :func:`geometric_gaps`).

All functions take the array module ``xp`` (``numpy`` or ``cupy``) and use only
element-wise operations both provide.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

__all__ = [
    "CONNECT_STEP_BASE",
    "CUDA_SOURCE",
    "PHILOX_M0",
    "PHILOX_M1",
    "PHILOX_W0",
    "PHILOX_W1",
    "geometric_gaps",
    "normal",
    "philox4x32",
    "random_words",
    "stream_key",
    "uniform",
]

PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9
PHILOX_W1 = 0xBB67AE85
MASK32 = 0xFFFFFFFF
MASK64 = 0xFFFFFFFFFFFFFFFF
#: Steps at or above this value are reserved for building connectivity.
CONNECT_STEP_BASE = 0xFFFFFFFF_00000000

ArrayLike = Any  # an ``xp`` array or a Python int


def _u32(xp: ModuleType, x: ArrayLike) -> Any:
    """``x`` as a uint32 array of ``xp`` (Python ints are reduced mod 2**32)."""
    if isinstance(x, (int, np.integer)):
        return xp.asarray(int(x) & MASK32, dtype=xp.uint32)
    x = xp.asarray(x)
    if x.dtype == xp.uint32:
        return x
    # Through int64/uint64 so that negative or wide integers wrap mod 2**32 like C.
    if x.dtype.kind == "i":
        x = x.astype(xp.int64).astype(xp.uint64)
    return (x.astype(xp.uint64) & xp.uint64(MASK32)).astype(xp.uint32)


def _mulhilo(xp: ModuleType, m: int, a: Any) -> tuple[Any, Any]:
    """Upper and lower 32 bits of the 64-bit product ``m * a`` (``a`` uint32)."""
    prod = a.astype(xp.uint64) * xp.uint64(m)
    return (prod >> xp.uint64(32)).astype(xp.uint32), prod.astype(xp.uint32)


def _philox_rounds(xp: ModuleType, c: list[Any], keys: list[tuple[Any, Any]]) -> list[Any]:
    c0, c1, c2, c3 = c
    for k0, k1 in keys:
        hi0, lo0 = _mulhilo(xp, PHILOX_M0, c0)
        hi1, lo1 = _mulhilo(xp, PHILOX_M1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return [c0, c1, c2, c3]


#: NumPy works through large counters in chunks of this many elements, which keep the
#: ~15 temporaries per round in cache (about 4x faster than whole-array passes).
_NUMPY_CHUNK = 1 << 15


def philox4x32(
    xp: ModuleType,
    counter: Sequence[ArrayLike],
    key: Sequence[ArrayLike],
    rounds: int = 10,
) -> tuple[Any, Any, Any, Any]:
    """Philox4x32 with ``rounds`` rounds (10: Random123's Philox4x32-10).

    Parameters
    ----------
    xp : module
        ``numpy`` or ``cupy``.
    counter : 4 uint32 arrays or ints
        The counter words ``(c0, c1, c2, c3)``; broadcast together.
    key : 2 uint32 arrays or ints
        The key words ``(k0, k1)``.
    rounds : int
        Number of rounds.

    Returns
    -------
    tuple of 4 uint32 arrays
        The output words, of the broadcast shape of the counter and key.
    """
    ctr = [_u32(xp, c) for c in counter]
    k0, k1 = (_u32(xp, k).astype(xp.uint64) for k in key)
    # Key schedule in uint64 (no wrap-around warnings), then back to uint32.
    keys = []
    for _r in range(rounds):
        keys.append((k0.astype(xp.uint32), k1.astype(xp.uint32)))
        k0 = (k0 + xp.uint64(PHILOX_W0)) & xp.uint64(MASK32)
        k1 = (k1 + xp.uint64(PHILOX_W1)) & xp.uint64(MASK32)
    shape = np.broadcast_shapes(*(c.shape for c in ctr), *(k.shape for ks in keys for k in ks))
    size = int(np.prod(shape))
    key_is_scalar = all(k.ndim == 0 for ks in keys for k in ks)
    if xp is not np or size <= _NUMPY_CHUNK or not key_is_scalar:
        out = _philox_rounds(xp, ctr, keys)
        return tuple(xp.broadcast_to(c, shape) for c in out)  # type: ignore[return-value]
    flat = [np.broadcast_to(c, shape).reshape(-1) for c in ctr]
    res = [np.empty(size, dtype=np.uint32) for _ in range(4)]
    for lo in range(0, size, _NUMPY_CHUNK):
        part = _philox_rounds(np, [c[lo : lo + _NUMPY_CHUNK] for c in flat], keys)
        for r, p in zip(res, part):
            r[lo : lo + _NUMPY_CHUNK] = p
    return tuple(r.reshape(shape) for r in res)  # type: ignore[return-value]


def stream_key(seed: int, stream: int) -> tuple[int, int]:
    """The Philox key of stream ``stream`` under network seed ``seed``."""
    seed &= MASK64
    return seed & MASK32, ((seed >> 32) ^ ((stream * PHILOX_W0) & MASK32)) & MASK32


def _split_step(xp: ModuleType, step: ArrayLike) -> tuple[Any, Any]:
    if isinstance(step, (int, np.integer)):
        s = int(step) & MASK64
        return _u32(xp, s & MASK32), _u32(xp, s >> 32)
    s = xp.asarray(step).astype(xp.uint64)
    return (s & xp.uint64(MASK32)).astype(xp.uint32), (s >> xp.uint64(32)).astype(xp.uint32)


def random_words(
    xp: ModuleType, seed: int, stream: int, step: ArrayLike, draw: ArrayLike, index: ArrayLike
) -> tuple[Any, Any, Any, Any]:
    """The four Philox words of (seed, stream, step, draw, index) under the engine's
    stream convention (module docstring); array arguments broadcast together."""
    lo, hi = _split_step(xp, step)
    return philox4x32(xp, (index, lo, hi, draw), stream_key(seed, stream))


def _words_to_uniform(xp: ModuleType, w0: Any, w1: Any, dtype: Any) -> Any:
    if np.dtype(dtype) == np.float64:
        a = (w0 >> xp.uint32(5)).astype(xp.uint64)
        b = (w1 >> xp.uint32(6)).astype(xp.uint64)
        x = (a << xp.uint64(26)) | b  # (w0 >> 5) * 2**26 + (w1 >> 6) < 2**53: exact
        return x.astype(xp.float64) * xp.float64(2.0**-53)
    if np.dtype(dtype) == np.float32:
        return (w0 >> xp.uint32(8)).astype(xp.float32) * xp.float32(2.0**-24)
    raise TypeError(f"uniform: dtype must be float32 or float64, got {dtype!r}")


def uniform(
    xp: ModuleType,
    seed: int,
    stream: int,
    step: ArrayLike,
    draw: ArrayLike,
    index: ArrayLike,
    dtype: Any = np.float64,
) -> Any:
    """Uniform draws on [0, 1), bit-identical to the CUDA ``_rng_uniform_f64/_f32``.

    Parameters
    ----------
    xp : module
        ``numpy`` or ``cupy``.
    seed, stream : int
        Network seed (64 bits) and stream id (32 bits).
    step, draw, index : int or uint array
        Step (64 bits), call site (32 bits) and element (32 bits); broadcast together.
    dtype : float32 or float64
        Precision: 24 or 53 random bits.
    """
    w0, w1, _, _ = random_words(xp, seed, stream, step, draw, index)
    return _words_to_uniform(xp, w0, w1, dtype)


def normal(
    xp: ModuleType,
    seed: int,
    stream: int,
    step: ArrayLike,
    draw: ArrayLike,
    index: ArrayLike,
    dtype: Any = np.float64,
) -> Any:
    """Standard normal draws by Box-Muller (arguments as :func:`uniform`)."""
    w0, w1, w2, w3 = random_words(xp, seed, stream, step, draw, index)
    one = xp.asarray(1, dtype=dtype)
    u1 = one - _words_to_uniform(xp, w0, w1, dtype)  # (0, 1]: log stays finite
    u2 = _words_to_uniform(xp, w2, w3, dtype)
    two_pi = xp.asarray(2.0 * np.pi, dtype=dtype)
    minus_two = xp.asarray(-2.0, dtype=dtype)
    return xp.sqrt(minus_two * xp.log(u1)) * xp.cos(two_pi * u2)


def geometric_gaps(xp: ModuleType, u: Any, p: float, cap: int) -> Any:
    """Gaps between successive successes of Bernoulli(``p``) trials, from uniforms ``u``.

    ``G = floor(log(1 - u) / log(1 - p)) + 1`` has ``P(G = g) = (1 - p)**(g - 1) p`` for
    ``u`` uniform on [0, 1). Gaps are clipped to ``cap`` (int64 result) so that long
    gaps (tiny ``p``) cannot overflow; pass ``cap`` > the largest column you care about.
    Requires ``0 < p < 1``.
    """
    g = xp.floor(xp.log1p(-u) / np.log1p(-p)) + 1.0
    return xp.minimum(g, float(cap)).astype(xp.int64)


# ----------------------------------------------------------------------------- CUDA twin
CUDA_SOURCE: str = r"""
// Philox4x32-10 and the engine's stream convention (gpuspike.engine.rng).
// key = (seed lo, seed hi ^ stream * 0x9E3779B9), counter = (index, step lo, step hi, draw).
__device__ __forceinline__ uint4 philox4x32_10(uint4 ctr, uint2 key)
{
    #pragma unroll
    for (int r = 0; r < 10; ++r) {
        if (r > 0) {
            key.x += 0x9E3779B9u;
            key.y += 0xBB67AE85u;
        }
        const unsigned int hi0 = __umulhi(0xD2511F53u, ctr.x);
        const unsigned int lo0 = 0xD2511F53u * ctr.x;
        const unsigned int hi1 = __umulhi(0xCD9E8D57u, ctr.z);
        const unsigned int lo1 = 0xCD9E8D57u * ctr.z;
        ctr = make_uint4(hi1 ^ ctr.y ^ key.x, lo1, hi0 ^ ctr.w ^ key.y, lo0);
    }
    return ctr;
}

__device__ __forceinline__ uint4 _rng_words(unsigned long long seed, unsigned int stream,
                                            unsigned long long step, unsigned int draw,
                                            unsigned int index)
{
    const uint2 key = make_uint2((unsigned int)(seed & 0xffffffffull),
                                 (unsigned int)(seed >> 32) ^ (stream * 0x9E3779B9u));
    const uint4 ctr = make_uint4(index, (unsigned int)(step & 0xffffffffull),
                                 (unsigned int)(step >> 32), draw);
    return philox4x32_10(ctr, key);
}

// 53 random bits; exact conversion, then a power-of-two scaling: bit-identical to NumPy.
__device__ __forceinline__ double _rng_words_to_f64(unsigned int w0, unsigned int w1)
{
    const unsigned long long x = ((unsigned long long)(w0 >> 5) << 26) | (w1 >> 6);
    return (double)x * 1.1102230246251565404e-16;  // 2**-53
}

// 24 random bits.
__device__ __forceinline__ float _rng_words_to_f32(unsigned int w0)
{
    return (float)(w0 >> 8) * 5.9604644775390625e-08f;  // 2**-24
}

__device__ __forceinline__ double _rng_uniform_f64(unsigned long long seed, unsigned int stream,
                                                   unsigned long long step, unsigned int draw,
                                                   unsigned int index)
{
    const uint4 w = _rng_words(seed, stream, step, draw, index);
    return _rng_words_to_f64(w.x, w.y);
}

__device__ __forceinline__ float _rng_uniform_f32(unsigned long long seed, unsigned int stream,
                                                  unsigned long long step, unsigned int draw,
                                                  unsigned int index)
{
    const uint4 w = _rng_words(seed, stream, step, draw, index);
    return _rng_words_to_f32(w.x);
}

// Box-Muller: u1 in (0, 1] from (w0, w1), u2 in [0, 1) from (w2, w3).
__device__ __forceinline__ double _rng_normal_f64(unsigned long long seed, unsigned int stream,
                                                  unsigned long long step, unsigned int draw,
                                                  unsigned int index)
{
    const uint4 w = _rng_words(seed, stream, step, draw, index);
    const double u1 = 1.0 - _rng_words_to_f64(w.x, w.y);
    const double u2 = _rng_words_to_f64(w.z, w.w);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586232 * u2);
}

__device__ __forceinline__ float _rng_normal_f32(unsigned long long seed, unsigned int stream,
                                                 unsigned long long step, unsigned int draw,
                                                 unsigned int index)
{
    const uint4 w = _rng_words(seed, stream, step, draw, index);
    const float u1 = 1.0f - _rng_words_to_f32(w.x);
    const float u2 = _rng_words_to_f32(w.z);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853071795864769f * u2);
}
"""
