"""Fixtures of the Brian2 device tests: run a script body on a device, reset afterwards."""

from __future__ import annotations

import gc

import pytest

brian2 = pytest.importorskip("brian2")

import gpuspike  # noqa: E402,F401 - registers the device


@pytest.fixture(autouse=True)
def _fresh_brian2():
    """Every test starts from Brian2's initial state on the runtime device."""
    from brian2 import prefs, start_scope
    from brian2.devices.device import reinit_and_delete, set_device

    prefs["codegen.target"] = "numpy"
    prefs["core.default_float_dtype"] = __import__("numpy").float64
    set_device("runtime")
    start_scope()
    yield
    reinit_and_delete()
    set_device("runtime")
    brian2.defaultclock.dt = 0.1 * brian2.ms


@pytest.fixture
def on_device():
    """``on_device(name, fn)``: run ``fn()`` (which builds and runs a network and returns
    results) with device ``name`` active, in a fresh scope."""
    from brian2 import start_scope
    from brian2.devices.device import get_device, set_device

    def run(name, fn):
        # Free the previous run's objects first: Brian2 gives automatic names by the lowest
        # free suffix among live objects and orders a slot by name, so both runs of a
        # comparison should get the same names.
        gc.collect()
        set_device(name)
        start_scope()
        brian2.seed(4321)
        try:
            return fn(), get_device()
        finally:
            set_device("runtime")

    return run
