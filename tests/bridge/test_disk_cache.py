"""The per-user disk cache (:mod:`gpuspike.bridge.disk_cache`)."""

from __future__ import annotations

import sympy
from gpuspike.bridge import disk_cache


def test_memoise_computes_once_across_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("GPUSPIKE_CACHE_DIR", str(tmp_path))
    calls = []

    def compute():
        calls.append(1)
        return sympy.exp(-sympy.Symbol("dt") / 3)

    a = disk_cache.memoise("t", "key 1", compute)
    b = disk_cache.memoise("t", "key 1", compute)  # from disk, as a new process would
    assert a == b and len(calls) == 1
    disk_cache.memoise("t", "key 2", compute)
    assert len(calls) == 2


def test_damaged_entry_is_recomputed(tmp_path, monkeypatch):
    monkeypatch.setenv("GPUSPIKE_CACHE_DIR", str(tmp_path))
    disk_cache.memoise("t", "k", lambda: 1)
    (entry,) = (tmp_path / "t").glob("*.pkl")
    entry.write_bytes(b"not a pickle")
    assert disk_cache.memoise("t", "k", lambda: 2) == 2
    assert disk_cache.memoise("t", "k", lambda: 3) == 2


def test_unwritable_cache_still_computes(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("GPUSPIKE_CACHE_DIR", str(blocker))  # a file: no folder below it
    assert disk_cache.memoise("t", "k", lambda: 5) == 5


def test_exact_propagator_is_kept_on_disk(tmp_path, monkeypatch):
    """A new process finds the exact integrator's propagator on disk (its simplification
    takes seconds) and gets the same expressions."""
    from gpuspike.bridge import integrators

    monkeypatch.setenv("GPUSPIKE_CACHE_DIR", str(tmp_path))
    A = sympy.ImmutableMatrix([[-1 / sympy.Symbol("tau_m"), 1 / sympy.Symbol("C")],
                               [0, -1 / sympy.Symbol("tau_s")]])
    b = sympy.ImmutableMatrix([sympy.Symbol("E") / sympy.Symbol("tau_m"), 0])
    integrators._propagator_cached.cache_clear()
    first = integrators._propagator_cached(A, b)
    assert list((tmp_path / "sympy").glob("*.pkl"))
    integrators._propagator_cached.cache_clear()
    monkeypatch.setattr(integrators, "_derive_propagator",
                        lambda *a: (_ for _ in ()).throw(AssertionError("derived again")))
    assert integrators._propagator_cached(A, b) == first
    integrators._propagator_cached.cache_clear()
