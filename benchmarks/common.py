"""Shared plumbing of the benchmarks: JSON-line output, timers, arguments, peers' availability.

Every benchmark prints one JSON object per line to stdout (``{"bench": ..., "engine": ...,
"device": ..., ...}``) and its human-readable progress to stderr, so that
``python benchmarks/cuba.py > out.jsonl`` keeps the figures machine-readable. A measurement
that could not be made is still one line, with ``"skipped": "<reason>"``.

The benchmarks run as scripts (``python benchmarks/cuba.py``, or as subprocesses of
``run_all.py``); each puts its own folder on ``sys.path`` and imports this module as
``common``. This module puts ``examples/`` on ``sys.path`` too, so that a benchmark can time
the very network an example defines (``from demo import cuba``).
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
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import Self

    import numpy as np

#: ``examples/`` (its networks are imported by the benchmarks: ``from demo import cuba``).
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
if str(EXAMPLES) not in sys.path:
    sys.path.append(str(EXAMPLES))

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
    if engine == "cpp":
        from gpuspike.engine.cpp_build import default_threads, find_compiler

        comp = find_compiler()
        what = comp.describe() if comp else "no compiler"
        return f"CPU {cpu} x{os.cpu_count()} (C++: {what}, {default_threads()} threads)"
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
        line["device"] = device_description(eng if eng in ("cupy", "cpp") else "numpy")
    line.update(fields)
    for k, v in list(line.items()):
        v = _clean(v)
        if isinstance(v, float) and v != 0.0:
            v = float(f"{v:.6g}")
        line[k] = v
    line.update(host_info())
    line["date"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
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
    from gpuspike.engine.backend import select_backend

    return select_backend("auto").name


# ----------------------------------------------------------------------------- arguments
def make_parser(description: str) -> argparse.ArgumentParser:
    """The arguments every benchmark takes; scripts add their own."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--engine",
        choices=("auto", "numpy", "cpp", "cupy"),
        default="auto",
        help="gpuspike engine (default: auto = CuPy where a GPU is usable, else C++ where "
             "a compiler works, else NumPy)",
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


# ----------------------------------------------------------------------------- running
def figures(res: dict[str, Any], n: int, duration: float) -> dict[str, Any]:
    """``res`` (one simulator's raw figures) plus the derived ones common to all simulators:
    wall per simulated second, us per step and, where spikes were counted, the firing rate
    and synaptic events per second."""
    out = dict(res)
    out["neurons"] = n
    out["duration_s"] = duration
    out["wall_per_sim_s"] = res["run_s"] / duration
    out["us_per_step"] = 1e6 * res["run_s"] / res["steps"]
    if "spikes" in res:
        out["rate_hz"] = res["spikes"] / n / duration
        out["syn_events_per_s"] = res["syn_events"] / res["run_s"]
    return out


def run_gpuspike_network(
    build: Callable[[], Any], engine: str, duration: float, *, dt: float, chunk_steps: int
) -> tuple[Any, Any, float, dict[str, Any]]:
    """Build a network (``build()`` -> NetworkIR), set up its Simulation, warm up one chunk
    (on CuPy: the CUDA graph capture), then run ``duration`` seconds.

    Returns ``(net, sim, warm_t, timings)``: ``warm_t`` is the simulated time at the end of
    the warm-up (spikes at or after it belong to the timed run); ``timings`` holds set-up
    (IR build + Simulation), connectivity, compile, warm-up and run seconds and the steps.
    """
    from gpuspike.engine.runtime import Simulation

    with Timer() as t_ir:
        net = build()
    with Timer() as t_sim:
        sim = Simulation(net, engine=engine, chunk_steps=chunk_steps)
        synchronize(sim.backend.name)
    with Timer() as t_warm:
        sim.run(steps=chunk_steps)
    warm_t = sim.t
    steps = round(duration / dt)
    with Timer() as t_run:
        sim.run(steps=steps)
        synchronize(sim.backend.name)
    timings = {
        "setup_s": t_ir.s + t_sim.s,
        "ir_build_s": t_ir.s,
        "connectivity_s": sim.timings.get("connectivity_s"),
        "compile_s": sim.timings.get("compile_s"),
        "warmup_s": t_warm.s,
        "run_s": t_run.s,
        "steps": steps,
    }
    return net, sim, warm_t, timings


def backend_fields(sim: Any) -> dict[str, Any]:
    """The engine a Simulation ran on, its device in words and CuPy's pool size."""
    backend = sim.backend
    return {
        "backend": backend.name,
        "device": backend.device if backend.is_gpu else device_description("numpy"),
        "gpu_pool_bytes": gpu_memory_bytes(backend.name),
    }


def out_degree(sim: Any, synapses: str) -> np.ndarray:
    """Synapses per pre-synaptic neuron of one synapse group of ``sim`` (a host array)."""
    import numpy as np

    rl = sim.rows[synapses].row_length
    return rl.get() if hasattr(rl, "get") else np.asarray(rl)


def brian2_numpy(precision: str, seed: int, dt_ms: float = 0.1) -> Any:
    """A fresh Brian2 scope on its numpy target (``precision``, ``seed``, ``dt``); the
    ``brian2`` module."""
    import brian2 as b2
    import numpy as np

    b2.start_scope()
    b2.prefs.codegen.target = "numpy"
    b2.prefs.core.default_float_dtype = np.float32 if precision == "float32" else np.float64
    b2.seed(seed)
    b2.defaultclock.dt = dt_ms * b2.ms
    return b2


def run_brian2_network(
    net: Any,
    spike_monitor: Any,
    out_degree: np.ndarray,
    *,
    setup_s: float,
    warm_steps: int,
    duration: float,
    dt: float,
    **run_kwargs: Any,
) -> dict[str, Any]:
    """Run a built Brian2 network ``warm_steps`` steps (untimed figures), then ``duration``
    seconds; its raw figures as a dict. ``out_degree``: synapses per neuron (index as the
    monitor's ``i``); ``run_kwargs`` go to every ``net.run`` (e.g. ``namespace``)."""
    import brian2 as b2
    import numpy as np

    with Timer() as t_warm:
        net.run(warm_steps * b2.defaultclock.dt, **run_kwargs)
    n_warm = int(spike_monitor.num_spikes)
    with Timer() as t_run:
        net.run(duration * b2.second, **run_kwargs)
    idx = np.asarray(spike_monitor.i[:])[n_warm:]
    return {
        "setup_s": setup_s,
        "warmup_s": t_warm.s,
        "run_s": t_run.s,
        "steps": round(duration / dt),
        "spikes": int(idx.size),
        "synapses": int(out_degree.sum()),
        "syn_events": int(out_degree[idx].sum()),
        "brian2_version": b2.__version__,
    }


def compare_with_brian2(
    bench: str,
    engine: str,
    gs: dict[str, Any],
    run_peer: Callable[[], dict[str, Any]],
    *,
    n: int,
    duration: float,
    precision: str,
    no_brian2: bool = False,
    skip: str | None = None,
    fields: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Run the Brian2 numpy peer and emit its ``bench`` line, then the ``<bench>-ratio`` line.

    ``gs``: gpuspike's figures (from :func:`figures`); ``run_peer()``: the peer's raw figures.
    The peer is skipped (a ``skipped`` line with the reason) with ``no_brian2``, with a
    ``skip`` reason, when Brian2 is not importable or when it fails; the ratio line is
    printed either way (None where the peer has no figure). ``fields`` (e.g. the synapses
    per neuron) go on every line after ``neurons``. Returns the peer's figures or None.
    """
    fields = fields or {}
    ok, why = brian2_available()
    if no_brian2:
        ok, why = False, "--no-brian2"
    elif skip:
        ok, why = False, skip
    b2 = None
    if ok:
        try:
            b2 = figures(run_peer(), n, duration)
            log(
                f"  brian2/numpy: set-up {b2['setup_s']:.2f} s, run {b2['run_s']:.2f} s, "
                f"{b2['rate_hz']:.2f} Hz"
            )
            emit(
                bench=bench,
                engine="brian2-numpy",
                simulator="brian2",
                precision=precision,
                **fields,
                **b2,
            )
        except Exception as exc:  # noqa: BLE001 - the peer failing must not hide our figures
            why, b2 = f"brian2 failed: {exc.__class__.__name__}: {exc}", None
    if b2 is None:
        log(f"  brian2 peer skipped: {why}")
        emit(
            bench=bench, engine="brian2-numpy", simulator="brian2", neurons=n, **fields, skipped=why
        )
    emit(
        bench=f"{bench}-ratio",
        engine=engine,
        peer="brian2-numpy",
        neurons=n,
        **fields,
        duration_s=duration,
        precision=precision,
        speedup_run=ratio(b2 and b2["run_s"], gs["run_s"]),
        speedup_setup=ratio(b2 and b2["setup_s"], gs["setup_s"]),
        rate_hz_gpuspike=gs["rate_hz"],
        rate_hz_brian2=b2 and b2["rate_hz"],
        rate_rel_diff=ratio(b2 and abs(gs["rate_hz"] - b2["rate_hz"]), b2 and b2["rate_hz"]),
        note="speedup = brian2 wall / gpuspike wall, same simulated interval, same process",
    )
    return b2
