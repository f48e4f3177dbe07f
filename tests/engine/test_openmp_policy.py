"""The OpenMP wait policy gpuspike sets for the C++ engine, and the warning when another
library's OpenMP runtime was there first (its idle threads spin and starve the engine's)."""

from __future__ import annotations

import ctypes.util
import os
import subprocess
import sys

import pytest

PROBE = """
import ctypes, logging, os, sys
logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
if sys.argv[1] == "preload":
    ctypes.CDLL(sys.argv[2])
import gpuspike
print("POLICY", os.environ.get("OMP_WAIT_POLICY"), "PRELOADED", gpuspike.OPENMP_PRELOADED)
from gpuspike.engine.backend import select_backend
from gpuspike.engine.cpp_build import find_compiler
if find_compiler() is not None:
    select_backend("cpp")
"""


def probe(mode: str, env: dict[str, str]) -> str:
    lib = ctypes.util.find_library("gomp") or "libgomp.so.1"
    r = subprocess.run([sys.executable, "-c", PROBE, mode, lib], env=env, text=True,
                       capture_output=True, check=True)
    return r.stdout + r.stderr


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env.update(extra)
    return env


def test_passive_by_default_and_the_users_choice_wins():
    assert "POLICY passive PRELOADED False" in probe("plain", clean_env())
    assert "POLICY active PRELOADED False" in probe("plain", clean_env(OMP_WAIT_POLICY="active"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_a_runtime_loaded_first_is_named_with_the_way_out():
    try:
        ctypes.CDLL(ctypes.util.find_library("gomp") or "libgomp.so.1")
    except OSError:
        pytest.skip("no libgomp here")
    out = probe("preload", clean_env())
    assert "PRELOADED True" in out
    from gpuspike.engine.cpp_build import find_compiler

    if find_compiler() is not None:
        assert "set OMP_WAIT_POLICY=passive before Python starts" in out
    # with the user's own policy there is nothing to warn about
    assert "PRELOADED False" in probe("preload", clean_env(OMP_WAIT_POLICY="passive"))
