"""The Potjans-Diesmann cortical microcircuit through PyNN: pyNN.gpuspike against pyNN.nest.

The network is ``build()`` of ``examples/pynn/microcircuit.py`` (the same script on both
simulators; NEST draws the fixed-total-number connectivity with its own rule, gpuspike with
its vectorised connector). Standard recipe: construction timed (PyNN calls plus, for
gpuspike, the engine build and compile), a presimulation discarded, then the timed run with
no spike recording; afterwards spikes are recorded for ``--rate-window`` ms to give the
per-population rates (correctness check; on gpuspike switching recording on rebuilds the
engine, which is not timed; PyNN's NEST backend cannot add recorders after a run, so NEST's
rates come from a second, recorded network run over the same times). Lines printed (stdout, JSON):

- ``pynn_microcircuit`` per simulator: neurons, synapses, ``construction_s``,
  ``presim_s``, ``sim_s``, ``rtf`` (wall per simulated second), ``rates_hz``;
- ``pynn_microcircuit-ratio``: NEST / gpuspike for construction and simulation (> 1:
  gpuspike faster), and the rate differences.

Run: ``python benchmarks/pynn_microcircuit.py --engine numpy`` (CPU: scale 0.02) or
``python benchmarks/pynn_microcircuit.py --engine cupy --scale 1 --no-nest`` (GPU). The
background is Poisson (``--poisson``, the default, at every scale: a source's spikes of one
step arrive as one event of that multiplicity, as with NEST's poisson_generator, so the
full-scale rates of up to 23 kHz per neuron are exact) or the equal DC current (``--dc``).
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import EXAMPLES, device_description, emit, log, resolve_engine  # noqa: E402

sys.path.insert(0, str(EXAMPLES / "pynn"))


def run_one(simulator: str, args, engine: str) -> dict:
    import microcircuit as mc

    sim = importlib.import_module(f"pyNN.{simulator}")
    setup = {"engine": engine} if simulator == "gpuspike" else {"threads": os.cpu_count()}
    t0 = time.perf_counter()
    net = mc.build(sim, args.scale, args.k_scale, args.drive, args.seed, record=False,
                   **setup)
    if simulator == "gpuspike":  # the engine is built at the first run: count it here
        steps = int(round((args.t_presim + args.t_sim) / sim.get_time_step()))
        sim.simulator.state.prepare(steps)
    construction = time.perf_counter() - t0
    log(f"{simulator}: {net['neurons']} neurons, {net['synapses']} synapses built in "
        f"{construction:.2f} s")
    t0 = time.perf_counter()
    sim.run(args.t_presim)
    t1 = time.perf_counter()
    sim.run(args.t_sim)
    t2 = time.perf_counter()
    log(f"{simulator}: presim {t1 - t0:.2f} s, sim {t2 - t1:.2f} s")
    rates = {}
    timings = getattr(getattr(sim.simulator.state, "engine", None), "timings", {})
    if args.rate_window > 0 and simulator == "gpuspike":
        # recording switched on after the timed run (the engine is rebuilt, state kept)
        for p in net["populations"].values():
            p.record("spikes")
        t_start = sim.get_current_time()
        sim.run(args.rate_window)
        rates = mc.rates(net["populations"], t_start, t_start + args.rate_window)
    sim.end()
    if args.rate_window > 0 and simulator != "gpuspike":
        # PyNN's NEST backend cannot add recorders after a run: a second, recorded network
        net2 = mc.build(sim, args.scale, args.k_scale, args.drive, args.seed, record=True,
                        **setup)
        sim.run(args.t_presim + args.t_sim)
        t_start = sim.get_current_time()
        sim.run(args.rate_window)
        rates = mc.rates(net2["populations"], t_start, t_start + args.rate_window)
        sim.end()
    device = (device_description(engine) if simulator == "gpuspike"
              else f"NEST {importlib.import_module('nest').__version__}, "
              f"{os.cpu_count()} threads, {device_description('numpy')}")
    return emit(bench="pynn_microcircuit", engine=engine if simulator == "gpuspike" else "nest",
                device=device, simulator=f"pyNN.{simulator}", scale=args.scale,
                k_scale=args.k_scale if args.k_scale is not None else args.scale,
                drive=args.drive, neurons=net["neurons"], synapses=net["synapses"],
                construction_s=construction, pynn_build_s=net["build_s"],
                engine_build_s=timings.get("build_s"), compile_s=timings.get("compile_s"),
                presim_ms=args.t_presim, sim_ms=args.t_sim, presim_s=t1 - t0,
                sim_s=t2 - t1, rtf=(t2 - t1) / (args.t_sim * 1e-3),
                rates_hz={k: round(v, 3) for k, v in rates.items()},
                rate_window_ms=args.rate_window)


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--engine", choices=("auto", "numpy", "cpp", "cupy"), default="auto")
    p.add_argument("--scale", type=float, default=None,
                   help="population scale (default 0.02 on NumPy, 1 on CuPy)")
    p.add_argument("--k-scale", type=float, default=None, help="in-degree scale (= scale)")
    drive = p.add_mutually_exclusive_group()
    drive.add_argument("--poisson", dest="drive", action="store_const", const="poisson")
    drive.add_argument("--dc", dest="drive", action="store_const", const="dc")
    p.add_argument("--t-presim", type=float, default=None, help="ms (default 500, 100 small)")
    p.add_argument("--t-sim", type=float, default=None, help="ms (default 1000, 500 on CPU)")
    p.add_argument("--rate-window", type=float, default=300.0, help="ms recorded for rates")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-nest", action="store_true")
    p.add_argument("--quick", action="store_true", help="scale 0.01, 200 ms")
    p.add_argument("--precision", default=None, help="ignored (PyNN runs float64)")
    p.add_argument("--no-brian2", action="store_true", help="ignored (no Brian2 peer)")
    args = p.parse_args(argv)
    engine = resolve_engine(args.engine)
    gpu = engine == "cupy"
    if args.scale is None:
        args.scale = 0.01 if args.quick else (1.0 if gpu else 0.02)
    if args.t_sim is None:
        args.t_sim = 200.0 if args.quick else (1000.0 if gpu else 500.0)
    if args.t_presim is None:
        args.t_presim = 500.0 if args.scale >= 0.5 else 100.0
    args.drive = args.drive or "poisson"
    try:
        importlib.import_module("pyNN.gpuspike")
    except Exception as exc:  # noqa: BLE001 - reported as a skipped line
        emit(bench="pynn_microcircuit", engine=engine, skipped=f"pyNN.gpuspike: {exc}")
        return 0
    ours = run_one("gpuspike", args, engine)
    if args.no_nest:
        return 0
    try:
        importlib.import_module("pyNN.nest")
    except Exception as exc:  # noqa: BLE001
        emit(bench="pynn_microcircuit", engine="nest", skipped=f"pyNN.nest: {exc}")
        return 0
    ref = run_one("nest", args, engine)
    emit(bench="pynn_microcircuit-ratio", engine=engine, scale=args.scale,
         construction_nest_over_gpuspike=ref["construction_s"] / ours["construction_s"],
         sim_nest_over_gpuspike=ref["sim_s"] / ours["sim_s"],
         rate_diff_hz={k: round(ours["rates_hz"][k] - v, 3)
                       for k, v in ref["rates_hz"].items()} if ref["rates_hz"] else {})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
