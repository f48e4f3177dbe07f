"""Engine choice: auto, numpy, cpp, cupy and the errors around them."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from gpuspike.bridge.errors import EngineUnavailable
from gpuspike.engine import backend, cpp_build


def test_numpy_backend():
    b = backend.select_backend("numpy")
    assert b.name == "numpy" and b.xp is np and not b.is_gpu


def test_unknown_engine_is_a_clear_error():
    with pytest.raises(EngineUnavailable, match="unknown engine 'tpu'"):
        backend.select_backend("tpu")


def test_auto_follows_cuda_status_then_the_compiler():
    ok, _ = backend.cuda_status()
    expected = "cupy" if ok else ("cpp" if cpp_build.find_compiler() else "numpy")
    assert backend.select_backend("auto").name == expected


@pytest.fixture
def no_compiler(monkeypatch):
    """A machine whose CXX does not exist (the probe is redone, then restored)."""
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    cpp_build.find_compiler.cache_clear()
    yield
    monkeypatch.undo()
    cpp_build.find_compiler.cache_clear()


def test_cpp_without_compiler_says_what_to_install(no_compiler):
    with pytest.raises(EngineUnavailable) as err:
        backend.select_backend("cpp")
    msg = str(err.value)
    assert "C++17 compiler" in msg and "apt-get install g++" in msg and "CXX" in msg


def test_auto_without_gpu_or_compiler_falls_back_to_numpy(no_compiler, caplog):
    if backend.cuda_status()[0]:
        pytest.skip("a GPU is usable here")
    backend._announced.discard("numpy")
    log = logging.getLogger("gpuspike")
    log.propagate = True
    try:
        with caplog.at_level(logging.INFO, logger="gpuspike"):
            assert backend.select_backend("auto").name == "numpy"
    finally:
        log.propagate = False
    assert any("no working C++ compiler" in r.getMessage() for r in caplog.records)


def test_cpp_backend_computes_on_host_arrays():
    if cpp_build.find_compiler() is None:
        pytest.skip("no compiler")
    b = backend.select_backend("cpp")
    assert b.name == "cpp" and b.xp is np and not b.is_gpu and "threads" in b.device


def test_cupy_without_gpu_says_why_and_what_to_do():
    ok, why = backend.cuda_status()
    if ok:
        pytest.skip("a GPU is usable here")
    with pytest.raises(EngineUnavailable) as err:
        backend.select_backend("cupy")
    msg = str(err.value)
    assert why in msg and "engine=" in msg and "'numpy'" in msg and "cupy-cuda12x" in msg


def test_one_log_line_per_engine(caplog):
    backend._announced.clear()
    log = logging.getLogger("gpuspike")
    log.propagate = True
    try:
        with caplog.at_level(logging.INFO, logger="gpuspike"):
            backend.select_backend("numpy")
            backend.select_backend("numpy")
    finally:
        log.propagate = False
    lines = list({id(r): r for r in caplog.records if "engine" in r.getMessage()}.values())
    assert len(lines) == 1 and "numpy engine" in lines[0].getMessage()


def test_environment_chooses_what_auto_means(monkeypatch):
    monkeypatch.setenv("GPUSPIKE_ENGINE", "numpy")
    assert backend.select_backend("auto").name == "numpy"
    assert backend.select_backend("numpy").name == "numpy"
    monkeypatch.setenv("GPUSPIKE_ENGINE", "gpu")
    with pytest.raises(EngineUnavailable, match="GPUSPIKE_ENGINE='gpu'"):
        backend.select_backend("auto")
