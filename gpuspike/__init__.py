"""gpuspike: run and train spiking neural networks on the GPU from Brian2 and PyNN.

The public surface is small: :func:`gpuspike.simulate` style use goes through
:class:`gpuspike.engine.Simulation` on a :class:`gpuspike.bridge.ir.NetworkIR`.
Importing this package registers the Brian2 device ``'gpuspike'`` (use
``set_device('gpuspike')``) as soon as Brian2 is, or once it gets, imported.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys

__version__ = "0.1.0"

# OpenMP threads of the C++ engine sleep between parallel regions instead of spinning
# (libgomp reads this once, when the first OpenMP library loads; a user's own setting
# wins). Spinning threads take the cores the working ones need whenever anything else
# runs: CUBA (4000 LIF, 5000 steps) took 2.8-10 s with the default policy and 0.10-0.31 s
# with this one on the 2-core CI machine with a second process busy (benchmarks/RESULTS.md).


def _openmp_loaded() -> bool:
    """Whether an OpenMP runtime (libgomp) is already in this process (Linux)."""
    try:
        with open("/proc/self/maps") as maps:
            return any("libgomp" in line for line in maps)
    except OSError:
        return False


#: libgomp was loaded (e.g. by torch, which ships its own) before this package could set
#: the policy: the C++ engine then shares that runtime's spinning threads (it warns).
OPENMP_PRELOADED = "OMP_WAIT_POLICY" not in os.environ and _openmp_loaded()
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

def _register_brian2_device() -> None:
    from gpuspike.brian2_backend import register

    register()


def _install() -> None:
    if "brian2" in sys.modules:
        _register_brian2_device()
    elif importlib.util.find_spec("brian2") is not None:
        _install_post_brian2_hook()


def _install_post_brian2_hook() -> None:
    """Register once the whole ``brian2`` package finished importing (the device module
    imports parts of Brian2 that are not ready while ``brian2.devices.device`` loads)."""

    class _Brian2Done(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path=None, target=None):  # noqa: ANN001, ANN201
            if fullname != "brian2":
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(fullname)
            if spec is None or spec.loader is None:
                return spec
            loader = spec.loader
            exec_module = loader.exec_module

            def exec_then_register(module):  # noqa: ANN001, ANN202
                exec_module(module)
                _register_brian2_device()

            loader.exec_module = exec_then_register  # type: ignore[method-assign]
            return spec

    sys.meta_path.insert(0, _Brian2Done())


_install()
