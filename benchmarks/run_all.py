"""Run every benchmark (CUBA, COBAHH, construction, PyNN microcircuit, SHD training, the
PyNN and Brian2 example comparisons), each in its own process.

Each benchmark runs as a subprocess of this interpreter (so Brian2's global state and the
GPU memory of one do not leak into the next); its stdout JSON lines are passed through to
ours, its stderr to ours. A benchmark that fails adds a line ``{"bench": ..., "error": ...}``
and the others still run; the exit status is 1 if any failed.

Run: ``python benchmarks/run_all.py --engine numpy --quick`` (CPU, < 5 min on 2 cores) or
``python benchmarks/run_all.py --engine cupy`` (GPU sizes).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import emit, log, resolve_engine  # noqa: E402 - after the path set-up

#: train_shd's size on the CPU without --quick (minutes on 2 cores, not the GPU's sizes):
#: every rule but e-prop's online traces (per synapse and step: ~0.5 s per batch on a core)
SHD_CPU = ["train_shd.py", "--dt", "5", "--batches", "3", "--rules", "eventprop", "bptt",
           "eprop"]
#: on the GPU every rule and e-prop's online form, 10 timed batches at dt 1 and 5 ms
SHD_GPU = ["train_shd.py", "--rules", "eventprop", "bptt", "eprop", "eprop_online"]


def jobs(engine: str, quick: bool) -> list[tuple[str, list[str]]]:
    """(label, script and its arguments) of every benchmark to run."""
    out = [
        ("cuba", ["cuba.py"]),
        ("cobahh", ["cobahh.py"]),
        ("construction", ["construction.py"]),
        # PyNN microcircuit: scale 0.02 against pyNN.nest on the CPU, scale 1 (DC drive,
        # NEST skipped where it is missing) on the GPU
        ("pynn_microcircuit", ["pynn_microcircuit.py"] if engine != "cupy" or quick
         else ["pynn_microcircuit.py", "--scale", "1", "--dc"]),
        # our rules against snnTorch / torch BPTT: 10 timed batches at dt 1 and 5 ms on the GPU
        ("train_shd", ["train_shd.py"] if quick else SHD_GPU if engine == "cupy" else SHD_CPU),
    ]
    if engine == "cupy" and not quick:
        # the CPU size on the GPU too, against the same Brian2 peer, and float32 at scale
        out.insert(
            2, ("cobahh-4000", ["cobahh.py", "--neurons", "4000", "--synapses-per-neuron", "80"])
        )
        out.insert(
            3, ("cobahh-1e5-float32", ["cobahh.py", "--precision", "float32", "--no-brian2"])
        )
    if engine != "cupy":
        # Brian2 scripts on Brian2's devices and gpuspike's CPU engines, equal threads;
        # many short runs (tutorial-style scripts) against Brian2's runtime
        devices = (["runtime", "gpuspike-numpy", "gpuspike-cpp-1"] if quick else
                   ["runtime", "runtime-cython", "cpp_standalone-1", "cpp_standalone-2",
                    "gpuspike-numpy", "gpuspike-cpp-1", "gpuspike-cpp-2"])
        out.append(("brian2_devices", ["brian2_devices.py", "--devices", *devices,
                                       *(["--models", "cuba", "--duration", "0.2"]
                                         if quick else [])]))
        out.append(("many_runs", ["many_runs.py", *(["--runs", "20", "--scans", "5"]
                                                    if quick else [])]))
    # the frontends' own example scripts against NEST and Brian2's runtime (sdists fetched
    # at run time; a subset with --quick)
    out.append(("pynn_examples", ["pynn_examples.py", *(
        ["--only", "small_network", "tsodyksmarkram", "VAbenchmarks"] if quick else [])]))
    out.append(("brian2_examples", ["brian2_examples.py", *(
        ["--only", "CUBA", "synapses/STDP"] if quick else [])]))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--engine", choices=("auto", "numpy", "cpp", "cupy"), default="auto")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--precision", choices=("float32", "float64"), default=None)
    p.add_argument("--no-brian2", action="store_true")
    p.add_argument("--only", nargs="*", default=None, help="labels to run (default: all)")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per benchmark")
    args = p.parse_args(argv)
    engine = resolve_engine(args.engine)
    failed = []
    t_all = time.perf_counter()
    for label, cmd in jobs(engine, args.quick):
        if args.only and label not in args.only:
            continue
        full = [sys.executable, str(HERE / cmd[0]), *cmd[1:], "--engine", engine]
        if args.quick:
            full.append("--quick")
        if args.precision and "--precision" not in cmd:
            full += ["--precision", args.precision]
        if args.no_brian2 and "--no-brian2" not in cmd:
            full.append("--no-brian2")
        log(f"== {label}: {' '.join(full[1:])}")
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                full, stdout=subprocess.PIPE, text=True, timeout=args.timeout, check=False
            )
            rc, stdout = proc.returncode, proc.stdout
        except subprocess.TimeoutExpired as exc:
            rc, stdout = (
                -1,
                exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or ""),
            )
        sys.stdout.write(stdout)
        sys.stdout.flush()
        wall = time.perf_counter() - t0
        log(f"== {label}: exit {rc} after {wall:.1f} s")
        if rc != 0:
            failed.append(label)
            emit(bench=label, engine=engine, error=f"exit status {rc}", wall_s=wall)
    emit(
        bench="run_all",
        engine=engine,
        quick=args.quick,
        failed=failed,
        wall_s=time.perf_counter() - t_all,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
