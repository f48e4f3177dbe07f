"""Many short runs, as real Brian2 scripts make them: one network run 100 times with a
parameter changed between runs (a tutorial's f-I sweep), and a Brunel network built in a
function and run 25 times (a parameter scan). Each device runs in its own process; one JSON
line per (scenario, device) and a ratio line per scenario
(``speedup = Brian2 runtime wall / gpuspike wall``).

    python benchmarks/many_runs.py [--devices runtime gpuspike-numpy gpuspike-cpp]
        [--runs 100] [--scans 25]

The whole script's wall time counts (translation, lowering, compilation and code caches
included): that is what a user waits for.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import emit, log  # noqa: E402 - after the path set-up


def sweep(b2, runs: int) -> dict:
    """100 runs of 10 ms of one network; the drive changes between runs (f-I curve)."""
    ms = b2.ms
    g = b2.NeuronGroup(100, "dv/dt = (I - v)/(10*ms) : volt (unless refractory)\nI : volt",
                       threshold="v > 20*mV", reset="v = 0*mV", refractory=2 * ms,
                       method="exact")
    mon = b2.SpikeMonitor(g)
    net = b2.Network(g, mon)
    rates = []
    for n in range(runs):
        g.I = f"(15 + {n % 20} + 0.1*i)*mV"
        before = int(mon.num_spikes)
        net.run(10 * ms)
        rates.append(int(mon.num_spikes) - before)
    return {"spikes": int(mon.num_spikes), "checksum": sum(rates)}


def brunel(b2, g_rel: float, seed: int) -> int:
    """A Brunel (2000)-style network, 500 neurons, Poisson input, built in a function."""
    ms, mV, Hz = b2.ms, b2.mV, b2.Hz
    b2.seed(seed)
    n_e, n_i = 400, 100
    P = b2.NeuronGroup(n_e + n_i, "dv/dt = -v/(20*ms) : volt (unless refractory)",
                       threshold="v > 20*mV", reset="v = 10*mV", refractory=2 * ms,
                       method="exact")
    P.v = "rand()*20*mV"
    ce = b2.Synapses(P[:n_e], P, on_pre="v_post += 0.2*mV", delay=1.5 * ms)
    ce.connect(p=0.1)
    ci = b2.Synapses(P[n_e:], P, on_pre=f"v_post -= {0.2 * g_rel}*mV", delay=1.5 * ms)
    ci.connect(p=0.1)
    ext = b2.PoissonInput(P, "v", 1000, 20 * Hz, weight=0.2 * mV)
    mon = b2.SpikeMonitor(P)
    net = b2.Network(P, ce, ci, ext, mon)
    net.run(50 * ms)
    return int(mon.num_spikes)


def run_one(device: str, runs: int, scans: int) -> list[dict]:
    t0 = time.perf_counter()
    import brian2 as b2

    b2.prefs.codegen.target = "numpy"
    engine = None
    if device.startswith("gpuspike"):
        import gpuspike  # noqa: F401 - registers the device

        b2.set_device("gpuspike")
        engine = device.split("-", 1)[1] if "-" in device else "auto"
        b2.prefs.devices.gpuspike.engine = engine
    t_import = time.perf_counter() - t0
    out = []
    t1 = time.perf_counter()
    res = sweep(b2, runs)
    out.append({"bench": "many-runs-sweep", "device_name": device, "engine": engine,
                "runs": runs, "wall_s": round(time.perf_counter() - t1, 3), **res})
    t2 = time.perf_counter()
    spikes = [brunel(b2, 3 + 0.1 * n, n) for n in range(scans)]
    out.append({"bench": "many-runs-brunel", "device_name": device, "engine": engine,
                "runs": scans, "wall_s": round(time.perf_counter() - t2, 3),
                "spikes": int(sum(spikes))})
    for r in out:
        r["import_s"] = round(t_import, 3)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", nargs="+",
                    default=["runtime", "gpuspike-numpy", "gpuspike-cpp"])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--scans", type=int, default=25)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--cold-cache", action="store_true",
                    help="gpuspike-cpp starts from an empty compiled-code cache")
    # run_all.py passes these to every benchmark; the device list decides here
    ap.add_argument("--engine", help=argparse.SUPPRESS)
    ap.add_argument("--precision", help=argparse.SUPPRESS)
    ap.add_argument("--no-brian2", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        for line in run_one(args.one, args.runs, args.scans):
            print(json.dumps(line))
        return 0
    results: dict[str, dict[str, dict]] = {}
    for device in args.devices:
        log(f"== many runs on {device}")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if args.cold_cache:
            env["GPUSPIKE_CACHE_DIR"] = tempfile.mkdtemp(prefix="gs_cache_")
        proc = subprocess.run([sys.executable, __file__, "--one", device, "--runs",
                               str(args.runs), "--scans", str(args.scans)],
                              capture_output=True, text=True, env=env)
        lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
        if proc.returncode != 0 or not lines:
            emit(bench="many-runs", device_name=device, failed=True,
                 error=proc.stderr.strip().splitlines()[-3:])
            continue
        for line in lines:
            r = json.loads(line)
            results.setdefault(r["bench"], {})[device] = r
            emit(**r)
    for bench, per in results.items():
        peer = per.get("runtime")
        for device, r in per.items():
            if device == "runtime" or peer is None:
                continue
            emit(bench=f"{bench}-ratio", device_name=device, peer="runtime",
                 speedup=round(peer["wall_s"] / max(r["wall_s"], 1e-9), 3),
                 note="speedup = Brian2 runtime wall / gpuspike wall, same script")
    return 0


if __name__ == "__main__":
    sys.exit(main())
