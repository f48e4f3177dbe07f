"""Shared plumbing of the benchmarks: JSON-line output, timers, arguments, peers' availability.

Every benchmark prints one JSON object per line to stdout (``{"bench": ..., "engine": ...,
"device": ..., ...}``) and its human-readable progress to stderr, so that
``python benchmarks/cuba.py > out.jsonl`` keeps the figures machine-readable. A measurement
that could not be made is still one line, with ``"skipped": "<reason>"``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import functools
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Self

#: Published / previously measured figures (DESIGN.md section 3), never measured by a run
#: of these scripts; printed beside our figures as ``anchor_*`` fields.
ANCHORS: dict[str, float] = {
    "brian2cuda_cobahh_1e5_k1000_h200_wall_per_sim_s": 0.80,
    "brian2cuda_brunel_hakim_1e5_h200_wall_per_sim_s": 0.57,
    "brian2cuda_per_step_floor_us": 57.0,
    "brian2cuda_host_synapse_creation_per_s": 1.2e6,
    "cupy_launch_in_cuda_graph_us": 0.5,
    "cupy_launch_from_python_us": 6.9,
}

#: Targets from DESIGN.md / the benchmark issue (goals, not measurements).
GOALS: dict[str, float] = {
    "cuba_per_step_overhead_us": 5.0,
    "cobahh_1e5_k1000_wall_per_sim_s": 0.2,
    "construction_1e8_synapses_s": 1.0,
}


def log(*parts: Any) -> None:
    """Human-readable progress on stderr (stdout carries only JSON lines)."""
    print(*parts, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- device info
@functools.cache
def device_description(engine: str) -> str:
    """What ``engine`` computes on, in words (GPU name, or the CPU and NumPy version)."""
    if engine == "cupy":
        try:
            from gpuspike.engine.backend import cuda_status

            ok, what = cuda_status()
            return what if ok else f"unavailable: {what}"
        except Exception as exc:  # noqa: BLE001 - any failure means 'no GPU here'
            return f"unavailable: {exc}"
    import numpy as np

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"CPU {cpu} x{os.cpu_count()} (NumPy {np.__version__})"


@functools.lru_cache(maxsize=1)
def host_info() -> dict[str, Any]:
    """Host facts attached to every line."""
    return {
        "host_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def _clean(value: Any) -> Any:
    """JSON-safe values: NumPy scalars to Python, NaN/inf to None."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def emit(**fields: Any) -> dict[str, Any]:
    """Print one JSON line to stdout; adds ``device`` (from ``engine``), host and date.

    ``bench`` and ``engine`` come first. Floats are rounded to 6 significant digits.
    """
    line: dict[str, Any] = {"bench": fields.pop("bench", "?"), "engine": fields.pop("engine", "?")}
    if "device" not in fields:
        eng = line["engine"]
        line["device"] = device_description("cupy" if eng == "cupy" else "numpy")
    line.update(fields)
    for k, v in list(line.items()):
        v = _clean(v)
        if isinstance(v, float) and v != 0.0:
            v = float(f"{v:.6g}")
        line[k] = v
    line.update(host_info())
    line["date"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    print(json.dumps(line), flush=True)
    return line


# ----------------------------------------------------------------------------- timing
class Timer:
    """``with Timer() as t: ...`` then ``t.s`` (seconds, perf_counter)."""

    def __enter__(self) -> Self:
        self.t0 = time.perf_counter()
        self.s = float("nan")
        return self

    def __exit__(self, *exc: object) -> None:
        self.s = time.perf_counter() - self.t0


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """``(fn(*args, **kwargs), wall seconds)``."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def synchronize(engine: str) -> None:
    """Wait for the GPU (no-op on NumPy) so that a timer reads finished work."""
    if engine == "cupy":
        import cupy

        cupy.cuda.get_current_stream().synchronize()
        cupy.cuda.Device().synchronize()


def gpu_memory_bytes(engine: str) -> int | None:
    """Bytes held by CuPy's default memory pool (its peak since the last free), or None."""
    if engine != "cupy":
        return None
    import cupy

    return int(cupy.get_default_memory_pool().total_bytes())


def free_gpu_memory(engine: str) -> None:
    """Give CuPy's pooled blocks back between measurements."""
    if engine == "cupy":
        import gc

        import cupy

        gc.collect()
        cupy.get_default_memory_pool().free_all_blocks()


# ----------------------------------------------------------------------------- peers
@functools.lru_cache(maxsize=1)
def brian2_available() -> tuple[bool, str]:
    """(importable, version or the reason it is not)."""
    try:
        import brian2
    except Exception as exc:  # noqa: BLE001 - a broken install is reported, not raised
        return False, f"brian2 is not importable ({exc.__class__.__name__}: {exc})"
    return True, str(brian2.__version__)


def resolve_engine(engine: str) -> str:
    """``auto`` -> the engine gpuspike would pick here; others unchanged."""
    if engine != "auto":
        return engine
    from gpuspike.engine.backend import cuda_status

    return "cupy" if cuda_status()[0] else "numpy"


# ----------------------------------------------------------------------------- arguments
def make_parser(description: str) -> argparse.ArgumentParser:
    """The arguments every benchmark takes; scripts add their own."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--engine",
        choices=("auto", "numpy", "cupy"),
        default="auto",
        help="gpuspike engine (default: auto = CuPy where a GPU is usable)",
    )
    p.add_argument(
        "--duration", type=float, default=None, help="simulated seconds (default: per benchmark)"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="short CPU-sized version (the whole suite in < 5 min on 2 cores)",
    )
    p.add_argument(
        "--precision",
        choices=("float32", "float64"),
        default="float64",
        help="floating point precision of gpuspike and of the Brian2 peer",
    )
    p.add_argument("--no-brian2", action="store_true", help="skip the Brian2 peer")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--chunk-steps",
        type=int,
        default=250,
        help="gpuspike chunk length (CUDA graph length on CuPy)",
    )
    return p


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b`` or None when either is missing or b is 0."""
    if a is None or b is None or not b:
        return None
    return a / b
