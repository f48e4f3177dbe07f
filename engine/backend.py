"""Engine choice: CuPy on a usable CUDA device, NumPy otherwise.

``auto`` tries CuPy (importable, at least one device, a tiny kernel runs) and falls back to
NumPy; the choice is logged once per process on the ``gpuspike`` logger. ``cupy`` asked
for where it cannot run raises :class:`~gpuspike.bridge.errors.EngineUnavailable` with the
reason and the way out.
"""

from __future__ import annotations

import functools
import logging
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

ENGINES = ("auto", "numpy", "cupy")


@dataclass(frozen=True)
class Backend:
    """The array module an engine computes with, and a description for logs and results."""

    name: str  # 'numpy' or 'cupy'
    xp: ModuleType
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


def select_backend(engine: str = "auto") -> Backend:
    """The backend for ``engine`` in ``('auto', 'numpy', 'cupy')``."""
    if engine not in ENGINES:
        raise EngineUnavailable(f"unknown engine {engine!r}; choose one of {ENGINES}")
    if engine in ("auto", "cupy"):
        ok, what = cuda_status()
        if ok:
            import cupy

            backend = Backend("cupy", cupy, what)
        elif engine == "cupy":
            raise EngineUnavailable(
                f"engine='cupy' was asked for but {what}. Install CuPy for your CUDA version "
                "(pip install 'gpuspike[gpu]' for CUDA 13, cupy-cuda12x for CUDA 12) on a "
                "machine with an NVIDIA GPU, or use engine='numpy' / 'auto'."
            )
        else:
            backend = Backend("numpy", np, f"CPU (NumPy {np.__version__}; {what})")
    else:
        backend = Backend("numpy", np, f"CPU (NumPy {np.__version__})")
    if backend.name not in _announced:
        _announced.add(backend.name)
        logger.info("using the %s engine on %s", backend.name, backend.device)
    return backend
