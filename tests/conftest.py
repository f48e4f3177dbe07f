"""Shared fixtures: every feature test runs on every engine available here.

``GPUSPIKE_TEST_ENGINES`` (comma-separated, e.g. ``numpy,cpp,cupy``) chooses the engines;
by default NumPy always, the compiled C++ target where a compiler works and CuPy where a
CUDA device is usable (as GeNN parametrises its feature tests over backends).
"""

from __future__ import annotations

import os

import pytest
from gpuspike.engine.backend import cuda_status
from gpuspike.engine.cpp_build import find_compiler


def available_engines() -> list[str]:
    asked = os.environ.get("GPUSPIKE_TEST_ENGINES")
    if asked:
        return [e.strip() for e in asked.split(",") if e.strip()]
    engines = ["numpy"]
    if find_compiler() is not None:
        engines.append("cpp")
    if cuda_status()[0]:
        engines.append("cupy")
    return engines


ENGINES = available_engines()


@pytest.fixture(params=ENGINES)
def engine(request) -> str:
    if request.param == "cupy" and not cuda_status()[0]:
        pytest.skip(f"no usable CUDA device: {cuda_status()[1]}")
    if request.param == "cpp" and find_compiler() is None:
        pytest.skip("no working C++ compiler")
    return request.param


def pytest_collection_modifyitems(config, items):
    import shutil

    ok, why = cuda_status()
    for item in items:
        if "gpu" in item.keywords and not ok:
            item.add_marker(pytest.mark.skip(reason=f"needs a GPU: {why}"))
        if "nvcc" in item.keywords and shutil.which("nvcc") is None:
            item.add_marker(pytest.mark.skip(reason="nvcc is not on PATH"))


@pytest.fixture(params=ENGINES)
def xp(request):
    """The array module of each available engine (numpy; cupy where a GPU is usable)."""
    if request.param == "cupy":
        if not cuda_status()[0]:
            pytest.skip(f"no usable CUDA device: {cuda_status()[1]}")
        import cupy

        return cupy
    import numpy

    return numpy
