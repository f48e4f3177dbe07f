"""Engine choice: CuPy on a usable CUDA device, else compiled C++, else NumPy.

``auto`` tries CuPy (importable, at least one device, a tiny kernel runs), then the C++
target (a compiler that builds a probe, :mod:`.cpp_build`), and falls back to NumPy; the
choice and the reason are logged once per process on the ``gpuspike`` logger. ``cupy`` or
``cpp`` asked for where it cannot run raises
:class:`~gpuspike.bridge.errors.EngineUnavailable` with the reason and the way out.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from types import ModuleType

import numpy as np
from gpuspike.bridge.errors import EngineUnavailable

logger = logging.getLogger("gpuspike")
if not logger.handlers:
    _h = logging.StreamHandler()
    _h.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logger.addHandler(_h)
    logger.setLevel(logging.INFO)
    logger.propagate = False

ENGINES = ("auto", "numpy", "cpp", "cupy")


@dataclass(frozen=True)
class Backend:
    """The array module an engine computes with, and a description for logs and results."""

    name: str  # 'numpy', 'cpp' or 'cupy'
    xp: ModuleType  # the array module of its arrays (NumPy for both CPU engines)
    device: str

    @property
    def is_gpu(self) -> bool:
        return self.name == "cupy"


@functools.lru_cache(maxsize=1)
def cuda_status() -> tuple[bool, str]:
    """(usable, description or reason) for CuPy on this machine; cached per process."""
    try:
        import cupy
    except Exception as exc:  # ImportError, or a broken CUDA install raising at import
        return False, f"CuPy is not importable ({exc.__class__.__name__}: {exc})"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
        if n < 1:
            return False, "CuPy found no CUDA device"
        x = cupy.arange(4, dtype=cupy.float32)
        if float((x * 2).sum()) != 12.0:
            return False, "a test kernel gave a wrong result"
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        return True, f"{name} (CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()})"
    except Exception as exc:
        return False, f"no usable CUDA device ({exc.__class__.__name__}: {exc})"


_announced: set[str] = set()


def _cpp_backend() -> tuple[Backend | None, str]:
    from .cpp_build import default_threads, find_compiler

    comp = find_compiler()
    if comp is None:
        return None, "no working C++ compiler (g++/clang++ or $CXX)"
    threads = default_threads() if comp.openmp else 1
    return Backend("cpp", np, f"CPU ({comp.describe()}, {threads} threads)"), ""


def select_backend(engine: str = "auto") -> Backend:
    """The backend for ``engine`` in ``('auto', 'numpy', 'cpp', 'cupy')``; ``auto`` is
    ``$GPUSPIKE_ENGINE`` where that is set (a machine- or job-wide choice without editing
    scripts)."""
    if engine == "auto" and os.environ.get("GPUSPIKE_ENGINE"):
        engine = os.environ["GPUSPIKE_ENGINE"].strip()
        if engine not in ENGINES:
            raise EngineUnavailable(f"GPUSPIKE_ENGINE={engine!r} is not an engine; choose one "
                                    f"of {ENGINES}")
    if engine not in ENGINES:
        raise EngineUnavailable(f"unknown engine {engine!r}; choose one of {ENGINES}")
    why = ""
    if engine in ("auto", "cupy"):
        ok, what = cuda_status()
        if ok:
            import cupy

            backend = Backend("cupy", cupy, what)
        elif engine == "cupy":
            raise EngineUnavailable(
                f"engine='cupy' was asked for but {what}. Install CuPy for your CUDA version "
                "(pip install 'gpuspike[gpu]' for CUDA 13, cupy-cuda12x for CUDA 12) on a "
                "machine with an NVIDIA GPU, or use engine='cpp' / 'numpy' / 'auto'."
            )
        else:
            cpp, no_cpp = _cpp_backend()
            if cpp is not None:
                backend, why = cpp, f"auto: {what}"
            else:
                backend = Backend("numpy", np, f"CPU (NumPy {np.__version__})")
                why = f"auto: {what}; {no_cpp}"
    elif engine == "cpp":
        from .cpp_build import require_compiler

        require_compiler()  # raises with what to install
        backend, _ = _cpp_backend()
    else:
        backend = Backend("numpy", np, f"CPU (NumPy {np.__version__})")
    if backend.name not in _announced:
        _announced.add(backend.name)
        logger.info("using the %s engine on %s%s", backend.name, backend.device,
                    f" ({why})" if why else "")
        import gpuspike

        if backend.name == "cpp" and gpuspike.OPENMP_PRELOADED:
            logger.warning(
                "an OpenMP runtime was loaded before gpuspike (torch ships one) and its idle "
                "threads spin: the cpp engine can run 5-50x slower while anything else uses "
                "the cores; set OMP_WAIT_POLICY=passive before Python starts, or import "
                "gpuspike first")
    return backend
