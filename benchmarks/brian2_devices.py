"""Brian2 scripts on several Brian2 devices in one invocation: the runtime (numpy and
cython targets), cpp_standalone (CPU, N OpenMP threads), gpuspike (each engine, N threads
for its C++ engine), and Brian2CUDA (cuda_standalone) where it is installed.

Each (model, device) runs in its own subprocess (Brian2 devices cannot be switched back
and forth in one process) and prints one JSON line; the driver prints them and ratio lines
per model: ``speedup = peer wall / gpuspike wall`` for the run and for set-up
(construction + code generation + compilation), for every gpuspike variant against every
peer, with the thread counts in the line (compare equal threads).

Device names: ``runtime``, ``runtime-cython``, ``cpp_standalone[-THREADS]``,
``gpuspike[-ENGINE[-THREADS]]`` (ENGINE: auto, numpy, cpp, cupy), ``cuda_standalone``.
gpuspike's C++ engine runs twice, from an empty compiled-code cache (``"cache": "cold"``)
and again with it (``"cache": "warm"``).

    python benchmarks/brian2_devices.py [--models cuba cobahh] [--duration 1.0]
        [--devices runtime cpp_standalone-1 gpuspike-numpy gpuspike-cpp-1 ...]

Networks are built with an explicit ``Network(...)`` (Brian2's magic ``run()`` misses
objects created inside functions).
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


# ----------------------------------------------------------------------------- models
def cuba(b2, n: int = 4000):
    """Brian2's examples/CUBA.py."""
    ms, mV = b2.ms, b2.mV
    ns = dict(taum=20 * ms, taue=5 * ms, taui=10 * ms, Vt=-50 * mV, Vr=-60 * mV, El=-49 * mV,
              we=(60 * 0.27 / 10) * mV, wi=(-20 * 4.5 / 10) * mV)
    P = b2.NeuronGroup(n, """
        dv/dt  = (ge+gi-(v-El))/taum : volt (unless refractory)
        dge/dt = -ge/taue : volt
        dgi/dt = -gi/taui : volt
        """, threshold="v>Vt", reset="v = Vr", refractory=5 * ms, method="exact",
        namespace=ns)
    P.v = "Vr + rand() * (Vt - Vr)"
    Ce = b2.Synapses(P, P, on_pre="ge += we", namespace=ns)
    Ci = b2.Synapses(P, P, on_pre="gi += wi", namespace=ns)
    Ce.connect(f"i<{int(0.8 * n)}", p=0.02)
    Ci.connect(f"i>={int(0.8 * n)}", p=0.02)
    mon = b2.SpikeMonitor(P)
    return b2.Network(P, Ce, Ci, mon), mon, n


def cobahh(b2, n: int = 4000):
    """Brian2's examples/COBAHH.py (Brette et al. 2007 benchmark)."""
    ms, mV, nS, umetre, cm, siemens, ufarad, msiemens = (
        b2.ms, b2.mV, b2.nS, b2.umetre, b2.cm, b2.siemens, b2.ufarad, b2.msiemens)
    area = 20000 * umetre**2
    ns = dict(Cm=(1 * ufarad * cm**-2) * area, gl=(5e-5 * siemens * cm**-2) * area,
              El=-60 * mV, EK=-90 * mV, ENa=50 * mV, g_na=(100 * msiemens * cm**-2) * area,
              g_kd=(30 * msiemens * cm**-2) * area, VT=-63 * mV, taue=5 * ms, taui=10 * ms,
              Ee=0 * mV, Ei=-80 * mV, we=6 * nS, wi=67 * nS)
    eqs = """
    dv/dt = (gl*(El-v)+ge*(Ee-v)+gi*(Ei-v)-
             g_na*(m*m*m)*h*(v-ENa)-
             g_kd*(n*n*n*n)*(v-EK))/Cm : volt
    dm/dt = alpha_m*(1-m)-beta_m*m : 1
    dn/dt = alpha_n*(1-n)-beta_n*n : 1
    dh/dt = alpha_h*(1-h)-beta_h*h : 1
    dge/dt = -ge*(1./taue) : siemens
    dgi/dt = -gi*(1./taui) : siemens
    alpha_m = 0.32*(mV**-1)*4*mV/exprel((13*mV-v+VT)/(4*mV))/ms : Hz
    beta_m = 0.28*(mV**-1)*5*mV/exprel((v-VT-40*mV)/(5*mV))/ms : Hz
    alpha_h = 0.128*exp((17*mV-v+VT)/(18*mV))/ms : Hz
    beta_h = 4./(1+exp((40*mV-v+VT)/(5*mV)))/ms : Hz
    alpha_n = 0.032*(mV**-1)*5*mV/exprel((15*mV-v+VT)/(5*mV))/ms : Hz
    beta_n = .5*exp((10*mV-v+VT)/(40*mV))/ms : Hz
    """
    P = b2.NeuronGroup(n, model=eqs, threshold="v>-20*mV", refractory=3 * ms,
                       method="exponential_euler", namespace=ns)
    P.v = "El + (randn() * 5 - 5)*mV"
    P.ge = "(randn() * 1.5 + 4) * 10.*nS"
    P.gi = "(randn() * 12 + 20) * 10.*nS"
    Ce = b2.Synapses(P, P, on_pre="ge+=we", namespace=ns)
    Ci = b2.Synapses(P, P, on_pre="gi+=wi", namespace=ns)
    Ce.connect(f"i<{int(0.8 * n)}", p=0.02)
    Ci.connect(f"i>={int(0.8 * n)}", p=0.02)
    mon = b2.SpikeMonitor(P)
    return b2.Network(P, Ce, Ci, mon), mon, n


MODELS = {"cuba": cuba, "cobahh": cobahh}


# ----------------------------------------------------------------------------- one run
def parse_device(name: str) -> tuple[str, str | None, int | None]:
    """(Brian2 device, gpuspike engine or runtime target, threads) of a device name."""
    parts = name.split("-")
    base = parts[0]
    if base == "runtime":
        return base, parts[1] if len(parts) > 1 else "numpy", None
    if base == "gpuspike":
        engine = parts[1] if len(parts) > 1 else "auto"
        return base, engine, int(parts[2]) if len(parts) > 2 else None
    return base, None, int(parts[1]) if len(parts) > 1 else None


def run_one(model: str, name: str, duration: float, neurons: int) -> dict:
    """Build and run ``model`` on device ``name`` in this process; return the figures."""
    t0 = time.perf_counter()
    import brian2 as b2

    device, variant, threads = parse_device(name)
    if device == "gpuspike":
        import gpuspike  # noqa: F401 - registers the device

    b2.prefs.codegen.target = variant if device == "runtime" else "numpy"
    workdir = tempfile.mkdtemp(prefix=f"gs_{device}_")
    if device == "gpuspike":
        b2.prefs.devices.gpuspike.engine = variant
        b2.prefs.devices.gpuspike.threads = threads or 0
    if device == "cpp_standalone" and threads:
        b2.prefs.devices.cpp_standalone.openmp_threads = threads
    if device in ("cpp_standalone", "cuda_standalone"):
        if device == "cuda_standalone":
            import brian2cuda  # noqa: F401 - registers the device

        # CUDA 13 and recent compilers need C++17 (DESIGN.md: Brian2CUDA on CUDA 13)
        b2.prefs.codegen.cpp.extra_compile_args_gcc = [
            a.replace("-std=c++11", "-std=c++17")
            for a in b2.prefs.codegen.cpp.extra_compile_args_gcc] + ["-std=c++17"]
        b2.set_device(device, build_on_run=False, directory=workdir)
    elif device != "runtime":
        b2.set_device(device)
    b2.seed(1)
    net, mon, n = MODELS[model](b2, neurons)
    t_built = time.perf_counter()
    if device in ("cpp_standalone", "cuda_standalone"):
        net.run(duration * b2.second)
        t1 = time.perf_counter()
        b2.device.build(directory=workdir, compile=True, run=True)
        t2 = time.perf_counter()
        run_s = float(getattr(b2.device, "_last_run_time", float("nan")))
        setup_s = (t2 - t0) - run_s
    else:
        # the first short run pays code generation / compilation; the timed run follows
        warm = 10 * b2.defaultclock.dt
        net.run(warm)
        t1 = time.perf_counter()
        net.run(duration * b2.second)
        t2 = time.perf_counter()
        run_s = t2 - t1
        setup_s = t1 - t0
    spikes = int(mon.num_spikes)
    out = {"bench": f"brian2-{model}", "device_name": name, "neurons": n,
           "duration_s": duration, "setup_s": round(setup_s, 4),
           "construction_s": round(t_built - t0, 4), "run_s": round(run_s, 4),
           "wall_per_sim_s": round(run_s / duration, 4), "spikes": spikes,
           "rate_hz": round(spikes / n / duration, 4), "brian2": b2.__version__,
           "threads": threads, "engine": variant if device == "gpuspike" else device}
    if device == "gpuspike":
        last = b2.get_device().last_run
        out["engine"] = last["engine"]  # the engine that ran ('auto' resolved)
        out["engine_loop_s"] = round(float(last["wall_s"]), 4)
        out["compile_s"] = round(float(last.get("compile_s", 0.0)), 4)
        out["steps_per_s"] = round(last["steps"] / max(float(last["wall_s"]), 1e-12), 1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["cuba", "cobahh"], choices=list(MODELS))
    ap.add_argument("--devices", nargs="+",
                    default=["runtime", "cpp_standalone", "gpuspike", "cuda_standalone"])
    ap.add_argument("--duration", type=float, default=1.0)
    ap.add_argument("--neurons", type=int, default=4000)
    ap.add_argument("--one", nargs=2, metavar=("MODEL", "DEVICE"), help=argparse.SUPPRESS)
    ap.add_argument("--timeout", type=float, default=900)
    # run_all.py passes these to every benchmark; the device list decides here
    ap.add_argument("--engine", help=argparse.SUPPRESS)
    ap.add_argument("--precision", help=argparse.SUPPRESS)
    ap.add_argument("--no-brian2", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one[0], args.one[1], args.duration, args.neurons)))
        return 0
    for model in args.models:
        results = {}
        for device in args.devices:
            if device == "cuda_standalone" and not _importable("brian2cuda"):
                emit(bench=f"brian2-{model}", device_name=device, skipped=True,
                     reason="brian2cuda is not installed (GPU machine with Python 3.12)")
                continue
            base, variant, _threads = parse_device(device)
            compiled = base == "gpuspike" and variant in ("cpp", "auto")
            cache = tempfile.mkdtemp(prefix="gs_cache_") if compiled else None
            for label in (("cold", "warm") if compiled else (None,)):
                log(f"== {model} on {device}" + (f" ({label} cache)" if label else ""))
                env = {**os.environ, "PYTHONUNBUFFERED": "1"}
                if cache:
                    env["GPUSPIKE_CACHE_DIR"] = cache
                proc = subprocess.run(
                    [sys.executable, __file__, "--one", model, device, "--duration",
                     str(args.duration), "--neurons", str(args.neurons)],
                    capture_output=True, text=True, timeout=args.timeout, env=env)
                line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
                if proc.returncode != 0 or not line.startswith("{"):
                    emit(bench=f"brian2-{model}", device_name=device, failed=True,
                         error=proc.stderr.strip().splitlines()[-1:] or ["no output"])
                    break
                r = json.loads(line)
                if label:
                    r["cache"] = label
                    r["setup_cold_s" if label == "cold" else "setup_warm_s"] = r["setup_s"]
                    if label == "warm":
                        r["setup_cold_s"] = results[device]["setup_s"]
                results[device] = r
                emit(**r)
        for ours_name, ours in results.items():
            if not ours_name.startswith("gpuspike"):
                continue
            for peer, r in results.items():
                if peer.startswith("gpuspike"):
                    continue
                emit(bench=f"brian2-{model}-ratio", engine=ours["engine"],
                     device_name=ours_name, peer=peer, threads=ours.get("threads"),
                     peer_threads=r.get("threads"),
                     speedup_run=round(r["run_s"] / max(ours["run_s"], 1e-12), 4),
                     speedup_setup=round(r["setup_s"] / max(ours["setup_s"], 1e-12), 4),
                     speedup_setup_cold=round(r["setup_s"] / max(
                         ours.get("setup_cold_s", ours["setup_s"]), 1e-12), 4),
                     rate_hz_gpuspike=ours["rate_hz"], rate_hz_peer=r["rate_hz"],
                     note="speedup = peer wall / gpuspike wall, same script, same machine; "
                          "setup = warm compiled-code cache unless _cold")
    return 0


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


if __name__ == "__main__":
    sys.exit(main())
