"""Tests of gpuspike.engine.rng: Philox4x32-10, the stream convention, and the CUDA twin."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from gpuspike.engine import rng
from scipy import stats

from tests.simulate import host

# Random123 kat_vectors: philox4x32 10 <counter> <key> <expected>
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


def philox_reference(ctr, key, rounds=10):
    """Scalar pure-Python Philox4x32 (independent of the vectorised code)."""
    c = list(ctr)
    k0, k1 = key
    m = 0xFFFFFFFF
    for r in range(rounds):
        if r:
            k0, k1 = (k0 + 0x9E3779B9) & m, (k1 + 0xBB67AE85) & m
        p0, p1 = 0xD2511F53 * c[0], 0xCD9E8D57 * c[2]
        c = [(p1 >> 32) ^ c[1] ^ k0, p1 & m, (p0 >> 32) ^ c[3] ^ k1, p0 & m]
    return c


@pytest.mark.parametrize("ctr,key,expected", KAT)
def test_known_answers(xp, ctr, key, expected):
    words = rng.philox4x32(xp, ctr, key)
    assert [int(host(w)) for w in words] == list(expected)
    assert philox_reference(ctr, key) == list(expected)


def test_known_answers_vectorised(xp):
    ctr = [xp.asarray([kat[0][w] for kat in KAT], dtype=xp.uint32) for w in range(4)]
    key = [xp.asarray([kat[1][w] for kat in KAT], dtype=xp.uint32) for w in range(2)]
    words = rng.philox4x32(xp, ctr, key)
    for w in range(4):
        assert host(words[w]).tolist() == [kat[2][w] for kat in KAT]
        assert words[w].dtype == xp.uint32


def test_matches_scalar_reference_on_random_counters(xp):
    gen = np.random.default_rng(3)
    ctr = gen.integers(0, 2**32, size=(4, 50), dtype=np.uint64).astype(np.uint32)
    key = gen.integers(0, 2**32, size=(2, 50), dtype=np.uint64).astype(np.uint32)
    words = rng.philox4x32(xp, [xp.asarray(c) for c in ctr], [xp.asarray(k) for k in key])
    got = np.stack([host(w) for w in words])
    for n in range(50):
        ref = philox_reference([int(c) for c in ctr[:, n]], [int(k) for k in key[:, n]])
        assert got[:, n].tolist() == ref


def test_chunked_numpy_path_equals_unchunked(monkeypatch):
    index = np.arange(5000, dtype=np.uint32)
    whole = rng.random_words(np, 7, 3, 11, 2, index)
    monkeypatch.setattr(rng, "_NUMPY_CHUNK", 777)
    chunked = rng.random_words(np, 7, 3, 11, 2, index)
    for a, b in zip(whole, chunked):
        np.testing.assert_array_equal(a, b)


def test_stream_convention():
    seed, stream, step, draw = 0x0123456789ABCDEF, 5, (7 << 32) | 9, 4
    index = np.arange(4, dtype=np.uint32)
    words = rng.random_words(np, seed, stream, step, draw, index)
    key = (0x89ABCDEF, 0x01234567 ^ ((5 * 0x9E3779B9) & 0xFFFFFFFF))
    assert rng.stream_key(seed, stream) == key
    for n in range(4):
        assert [int(w[n]) for w in words] == philox_reference((n, 9, 7, 4), key)


def test_uniform_bits_and_range(xp):
    index = xp.arange(200_000, dtype=xp.uint32)
    u64 = host(rng.uniform(xp, 1, 2, 3, 0, index, np.float64))
    u32 = host(rng.uniform(xp, 1, 2, 3, 0, index, np.float32))
    assert u64.dtype == np.float64 and u32.dtype == np.float32
    assert u64.min() >= 0.0 and u64.max() < 1.0
    assert u32.min() >= 0.0 and u32.max() < 1.0
    np.testing.assert_array_equal(u64 * 2.0**53, np.floor(u64 * 2.0**53))
    np.testing.assert_array_equal(u32 * np.float32(2**24), np.floor(u32 * np.float32(2**24)))
    # The float32 draw is the top 24 bits of the float64 one (both use w0 first).
    np.testing.assert_array_equal(np.floor(u64 * 2**24), u32.astype(np.float64) * 2**24)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_uniform_moments(xp, dtype):
    n = 1_000_000
    u = host(rng.uniform(xp, 42, 1, 0, 0, xp.arange(n, dtype=xp.uint32), dtype)).astype(float)
    # CLT tolerances (5 sigma): sd of the mean sqrt(1/12/n), of the variance sqrt(1/180/n).
    assert abs(u.mean() - 0.5) < 5 * np.sqrt(1 / 12 / n)
    assert abs(u.var() - 1 / 12) < 5 * np.sqrt(1 / 180 / n)
    assert stats.kstest(u[:100_000], "uniform").pvalue > 1e-4


def test_streams_and_draws_independent(xp):
    n = 500_000
    index = xp.arange(n, dtype=xp.uint32)
    base = host(rng.uniform(xp, 9, 0, 0, 0, index))
    others = {
        "stream": host(rng.uniform(xp, 9, 1, 0, 0, index)),
        "draw": host(rng.uniform(xp, 9, 0, 0, 1, index)),
        "step": host(rng.uniform(xp, 9, 0, 1, 0, index)),
        "step_hi": host(rng.uniform(xp, 9, 0, 1 << 32, 0, index)),
        "seed": host(rng.uniform(xp, 10, 0, 0, 0, index)),
        "seed_hi": host(rng.uniform(xp, 9 + (1 << 32), 0, 0, 0, index)),
    }
    tol = 5 / np.sqrt(n)
    for what, other in others.items():
        assert abs(np.corrcoef(base, other)[0, 1]) < tol, what
        assert not np.array_equal(base, other), what
    # Neighbouring elements of one draw are uncorrelated too.
    assert abs(np.corrcoef(base[:-1], base[1:])[0, 1]) < tol


def test_deterministic_and_order_free(xp):
    index = xp.arange(10_000, dtype=xp.uint32)
    a = host(rng.uniform(xp, 5, 6, 7, 8, index))
    b = host(rng.uniform(xp, 5, 6, 7, 8, index))
    np.testing.assert_array_equal(a, b)
    picked = xp.asarray([9999, 3, 17], dtype=xp.uint32)
    np.testing.assert_array_equal(host(rng.uniform(xp, 5, 6, 7, 8, picked)), a[[9999, 3, 17]])
    # Broadcast counters: draws along one axis, elements along the other.
    grid = host(rng.uniform(xp, 5, 6, 7, xp.arange(3, dtype=xp.uint32)[:, None], index))
    np.testing.assert_array_equal(grid[1], host(rng.uniform(xp, 5, 6, 7, 1, index)))


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1.0), (np.float32, 1.0)])
def test_normal_moments(xp, dtype, tol):
    n = 1_000_000
    z = host(rng.normal(xp, 3, 4, 5, 6, xp.arange(n, dtype=xp.uint32), dtype))
    assert z.dtype == dtype and np.isfinite(z).all()
    z = z.astype(float)
    assert abs(z.mean()) < 5 / np.sqrt(n)
    assert abs(z.var() - 1.0) < 5 * np.sqrt(2 / n)
    kurtosis = np.mean(z**4)  # E z^4 = 3, Var z^4 = 96
    assert abs(kurtosis - 3.0) < 5 * np.sqrt(96 / n)
    assert stats.kstest(z[:100_000], "norm").pvalue > 1e-4


def test_normal_from_words():
    index = np.arange(1000, dtype=np.uint32)
    w0, w1, w2, w3 = rng.random_words(np, 1, 2, 3, 4, index)
    u1 = 1.0 - ((w0 >> 5).astype(np.float64) * 2**26 + (w1 >> 6)) / 2**53
    u2 = ((w2 >> 5).astype(np.float64) * 2**26 + (w3 >> 6)) / 2**53
    expected = np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2)
    np.testing.assert_array_equal(rng.normal(np, 1, 2, 3, 4, index), expected)


def test_geometric_gaps(xp):
    p, n = 0.2, 400_000
    u = rng.uniform(xp, 1, 1, 0, 0, xp.arange(n, dtype=xp.uint32))
    g = host(rng.geometric_gaps(xp, u, p, 10**6))
    assert g.min() >= 1
    assert abs(g.mean() - 1 / p) < 5 * np.sqrt((1 - p) / p**2 / n)
    counts = np.bincount(g, minlength=12)[1:12]
    expected = n * (1 - p) ** np.arange(11) * p
    assert stats.chisquare(counts, expected * counts.sum() / expected.sum()).pvalue > 1e-4
    assert host(rng.geometric_gaps(xp, u, 1e-12, 50)).max() == 50


# ----------------------------------------------------------------------------- CUDA twin
KERNEL = r"""
extern "C" __global__ void rng_draws(unsigned long long seed, unsigned int stream,
                                     unsigned long long step, unsigned int draw,
                                     unsigned int n, double* u64, float* u32,
                                     double* z64, float* z32)
{
    const unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    u64[i] = _rng_uniform_f64(seed, stream, step, draw, i);
    u32[i] = _rng_uniform_f32(seed, stream, step, draw, i);
    z64[i] = _rng_normal_f64(seed, stream, step, draw, i);
    z32[i] = _rng_normal_f32(seed, stream, step, draw, i);
}
"""

# Lets a host C++ compiler build CUDA_SOURCE, so the twin's arithmetic is checked here.
HOST_PRELUDE = r"""
#include <cmath>
using std::sqrt; using std::log; using std::cos;
struct uint2 { unsigned int x, y; };
struct uint4 { unsigned int x, y, z, w; };
static inline uint2 make_uint2(unsigned int x, unsigned int y) { return {x, y}; }
static inline uint4 make_uint4(unsigned int x, unsigned int y, unsigned int z,
                               unsigned int w) { return {x, y, z, w}; }
static inline unsigned int __umulhi(unsigned int a, unsigned int b)
{ return (unsigned int)(((unsigned long long)a * b) >> 32); }
#define __device__
#define __forceinline__ inline
"""

HOST_WRAPPER = r"""
extern "C" void rng_draws(unsigned long long seed, unsigned int stream,
                          unsigned long long step, unsigned int draw, unsigned int n,
                          double* u64, float* u32, double* z64, float* z32)
{
    for (unsigned int i = 0; i < n; ++i) {
        u64[i] = _rng_uniform_f64(seed, stream, step, draw, i);
        u32[i] = _rng_uniform_f32(seed, stream, step, draw, i);
        z64[i] = _rng_normal_f64(seed, stream, step, draw, i);
        z32[i] = _rng_normal_f32(seed, stream, step, draw, i);
    }
}
"""

ARGS = (0xDEADBEEF12345678, 17, (3 << 32) + 123, 5)


def expected_draws(n):
    index = np.arange(n, dtype=np.uint32)
    return (
        rng.uniform(np, *ARGS, index, np.float64),
        rng.uniform(np, *ARGS, index, np.float32),
        rng.normal(np, *ARGS, index, np.float64),
        rng.normal(np, *ARGS, index, np.float32),
    )


def check_twin(u64, u32, z64, z32):
    e64, e32, n64, n32 = expected_draws(u64.size)
    np.testing.assert_array_equal(u64, e64)
    np.testing.assert_array_equal(u32, e32)
    np.testing.assert_allclose(z64, n64, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(z32, n32, rtol=2e-5, atol=1e-5)


@pytest.mark.nvcc
@pytest.mark.skipif(shutil.which("nvcc") is None, reason="needs nvcc on PATH")
def test_cuda_source_compiles(tmp_path: Path):
    src = tmp_path / "rng.cu"
    src.write_text(rng.CUDA_SOURCE + KERNEL)
    out = tmp_path / "rng.ptx"
    result = subprocess.run(
        ["nvcc", "-ptx", "-arch=sm_80", str(src), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "rng_draws" in out.read_text()


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ on PATH")
def test_cuda_source_bit_identical_on_host(tmp_path: Path):
    src = tmp_path / "rng_host.cpp"
    src.write_text(HOST_PRELUDE + rng.CUDA_SOURCE + HOST_WRAPPER)
    lib = tmp_path / "librng.so"
    result = subprocess.run(
        ["g++", "-O2", "-ffp-contract=off", "-shared", "-fPIC", str(src), "-o", str(lib)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    n = 4096
    out = [
        np.empty(n, np.float64),
        np.empty(n, np.float32),
        np.empty(n, np.float64),
        np.empty(n, np.float32),
    ]
    func = ctypes.CDLL(str(lib)).rng_draws
    func.argtypes = [
        ctypes.c_ulonglong,
        ctypes.c_uint,
        ctypes.c_ulonglong,
        ctypes.c_uint,
        ctypes.c_uint,
    ] + [ctypes.c_void_p] * 4
    func(*ARGS, n, *(a.ctypes.data for a in out))
    check_twin(*out)


@pytest.mark.gpu
@pytest.mark.gpu
def test_cuda_draws_equal_numpy_draws():
    import cupy

    module = cupy.RawModule(code=rng.CUDA_SOURCE + KERNEL)
    kernel = module.get_function("rng_draws")
    n = 100_000
    out = [
        cupy.empty(n, cupy.float64),
        cupy.empty(n, cupy.float32),
        cupy.empty(n, cupy.float64),
        cupy.empty(n, cupy.float32),
    ]
    seed, stream, step, draw = ARGS
    kernel(
        ((n + 255) // 256,),
        (256,),
        (np.uint64(seed), np.uint32(stream), np.uint64(step), np.uint32(draw), np.uint32(n), *out),
    )
    check_twin(*(a.get() for a in out))
    # And the CuPy vectorised twin agrees with NumPy bit for bit.
    index = cupy.arange(n, dtype=cupy.uint32)
    np.testing.assert_array_equal(
        rng.uniform(cupy, *ARGS, index, np.float64).get(), expected_draws(n)[0]
    )


# ----------------------------------------------------------------------------- discrete draws
@pytest.mark.parametrize("lam", [0.3, 4.0, 25.0, 300.0])
def test_poisson_moments(lam):
    from gpuspike.engine.rng_discrete import poisson

    n = 40000
    x = poisson(np, 3, 11, 5, 2, np.arange(n, dtype=np.uint32), lam)
    assert np.all(x == np.floor(x)) and x.min() >= 0
    assert abs(x.mean() - lam) < 5 * np.sqrt(lam / n)
    assert abs(x.var() / lam - 1) < 5 * np.sqrt(2 / n) + 5 / np.sqrt(n * lam)
    # determinism per (seed, stream, step, draw, index)
    y = poisson(np, 3, 11, 5, 2, np.arange(n, dtype=np.uint32), lam)
    np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("n_trials,p", [(10, 0.1), (1000, 0.001), (200, 0.3), (5000, 0.8),
                                        (50, 0.97), (7, 1.0), (0, 0.5)])
def test_binomial_moments(n_trials, p):
    from gpuspike.engine.rng_discrete import binomial

    n = 40000
    x = binomial(np, 9, 1, 123, 0, np.arange(n, dtype=np.uint32), n_trials, p)
    assert np.all((x >= 0) & (x <= n_trials)) and np.all(x == np.floor(x))
    mean, var = n_trials * p, n_trials * p * (1 - p)
    if var == 0:
        assert np.all(x == mean)
        return
    assert abs(x.mean() - mean) < 5 * np.sqrt(var / n)
    assert abs(x.var() / var - 1) < 0.06


def test_binomial_distribution_small_regime_chi_square():
    """Exact inversion: the histogram matches the binomial pmf (chi-square)."""
    from gpuspike.engine.rng_discrete import binomial
    from scipy import stats

    n = 60000
    x = binomial(np, 1, 2, 3, 4, np.arange(n, dtype=np.uint32), 12, 0.3).astype(int)
    observed = np.bincount(x, minlength=13)
    expected = stats.binom.pmf(np.arange(13), 12, 0.3) * n
    keep = expected > 5
    chi2 = (((observed - expected) ** 2 / expected)[keep]).sum()
    assert chi2 < stats.chi2.ppf(0.999, keep.sum() - 1)
