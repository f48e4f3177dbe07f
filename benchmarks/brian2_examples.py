"""Every example of Brian2's distribution on Brian2's NumPy runtime and on gpuspike, compared.

Brian2 2.9.0's sdist (from PyPI, unpacked under ``--cache``) ships ``examples/`` with
subfolders (``frompapers/``, ``synapses/``, ...); each example is named by its path there
without ``.py`` (``synapses/STDP``). Helper modules that sibling examples import
(``frompapers/Brette_2012/params``, ``frompapers/Stimberg_et_al_2018/plot_utils``) are not
examples and are left out. Each example runs twice, in a subprocess (``--timeout`` seconds
each), in a fresh copy of its own folder (some read data files next to them), with
``MPLBACKEND=Agg`` and ``matplotlib.pyplot.show`` made a no-op:

- reference: Brian2's runtime device with ``prefs.codegen.target = 'numpy'``;
- gpuspike: ``import gpuspike`` and ``set_device('gpuspike')`` before the script, the one
  line a user changes (engine ``auto``, as a user gets it, or ``--engine``, passed on as
  ``$GPUSPIKE_ENGINE``; each line names the engine that ran, ``gpuspike_engine``).

Examples that pick the C++ standalone device with a plain ``set_device('cpp_standalone',
...)`` run unchanged otherwise: that call is made a no-op in both modes, so the reference
stays on the NumPy runtime and gpuspike stays on gpuspike. Examples that drive the
standalone build themselves (``device.build``, ``build_on_run=False``, ``device.reinit``,
``reset_device``) cannot run on a runtime device: they are ``reference_failed`` with the
reason ``sets its own device``, found by a text search before running.

After the script ends, every Brian2 monitor still alive (``gc.get_objects()``) is read, in
creation order: ``SpikeMonitor`` / ``EventMonitor`` their number of events,
``StateMonitor`` for each recorded variable its recorded values (mean, mean magnitude,
shape), ``PopulationRateMonitor`` its rates. Then:

- ``reference_failed``: Brian2 itself cannot run it here (a missing optional package, data
  set, ...; or it sets its own device): skipped, with the last line of its error;
- ``failed``: the reference ran, gpuspike did not (the last line of the error);
- ``agrees`` / ``differs``: both ran; the monitors are matched by (class, monitored group's
  name, variable) in creation order, and each one of the reference must have its match
  with: event count within ``max(5, 10 %)`` of the reference's; recorded state of the same
  shape, its mean within 2 % of the reference's mean magnitude; population rate of the same
  shape, its mean within the rate that ``max(5, 10 %)`` spikes make over the group and the
  recorded time. ``exact`` when every count is equal and every trace agrees to 1e-6
  relative. Examples with random numbers (Poisson input, random connectivity, noise,
  ``rand()`` initial values) draw other numbers on each device, so only the statistics can
  agree there: the bands are for them. For such examples (found by a text search:
  ``rand()``, ``randn()``, noise ``xi``, ``Poisson``, ``random``, a ``p=`` argument) the
  bands widen to the spread of two independent realisations: event counts (and population
  rates, as spike counts) within ``3 sqrt(n_ref + n_gpuspike)`` (Poisson), state means
  within 3 standard errors of the difference of the two means, ``3 sqrt(2) max(se_ref,
  se_gpuspike)``: each run's standard error of its mean from batch means in time (10
  blocks, variance from successive differences, so that the slow trends both runs share
  do not count) plus the spread of the recorded traces' time averages over their number
  (which neurons fire depends on the drawn connectivity and input: ``COBAHH`` records
  3 of its neurons). Single-neuron examples with Poisson input or noise need this.
  Where a random example still differs, the reference runs ``--repeats`` more times
  (default 2) and a monitor agrees when gpuspike's figure lies within the bands of any one
  of the reference runs, or within the 95 % prediction interval of a further draw from
  the reference runs' figures (mean +- t(0.975, n-1) s sqrt(1 + 1/n), at least their
  range): networks whose outcome is a random choice (``frompapers/Wang_2002``: which
  population wins the decision, and how clearly) spread far wider than any band from one
  run. Examples that leave no monitor alive count as ``agrees`` when both finish.

One JSON line per example, a summary line (``agree``, ``ran``, ``total``).

    python benchmarks/brian2_examples.py [--only CUBA synapses/STDP] [--timeout 300]
        [--repeats 2] [--engine auto] [--cache .cache]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import emit, log, resolve_engine  # noqa: E402 - after the path set-up

VERSION = "2.9.0"
#: Arrays up to this many values go to the .npz beside the monitors' JSON (for ``exact``).
MAX_SAVED = 4_000_000
#: Text that marks an example drawing random numbers: ``rand()``/``randn()``, noise ``xi``,
#: Poisson input, ``random`` modules, random connectivity (a ``p=`` argument).
RANDOM = re.compile(r"\brandn?\(|\bxi(_\w+)?\b|Poisson|random|[(,]\s*p\s*=")
#: Blocks of the batch-means estimate of a random trace's spread (:func:`_spread`).
BLOCKS = 10
#: Student's t, 97.5 % quantile, by degrees of freedom (prediction interval of --repeats).
T975 = {1: 12.71, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306}
#: Text that marks an example driving the standalone build itself.
OWN_DEVICE = re.compile(r"\.build\s*\(|build_on_run\s*=\s*False|\.reinit\s*\(|reset_device")


# ----------------------------------------------------------------------------- the sdist
def examples_dir(cache: Path) -> Path:
    """``examples/`` of Brian2's sdist (downloaded with pip into ``cache`` when missing).

    ``--no-binary brian2`` (not ``:all:``): pip prepares the sdist's metadata, and with
    ``:all:`` it would try to build its build dependencies (NumPy) from source too.
    """
    root = cache / f"brian2-{VERSION}"
    if not (root / "examples").is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--no-binary", "brian2", f"brian2=={VERSION}", "-d", str(cache)],
                       check=True)
        shutil.unpack_archive(str(cache / f"brian2-{VERSION}.tar.gz"), str(cache))
    return root / "examples"


def example_names(src: Path) -> list[str]:
    """Relative paths without ``.py``, less the helper modules sibling scripts import."""
    files = sorted(src.rglob("*.py"))
    names = []
    for f in files:
        siblings = [g for g in f.parent.glob("*.py") if g != f]
        imported = re.compile(rf"^\s*(from|import)\s+{re.escape(f.stem)}\b", re.M)
        if any(imported.search(g.read_text(errors="replace")) for g in siblings):
            continue
        names.append(f.relative_to(src).with_suffix("").as_posix())
    return names


# ----------------------------------------------------------------------------- the runner
def _spread(values: np.ndarray) -> float | None:
    """Standard error of the mean of one realisation of random traces (module docstring).

    In time: the recorded traces' average cut into ``BLOCKS`` blocks; the variance of the
    block means from their mean squared successive difference (slow trends, which both
    runs share, do not count), over the number of blocks. Across traces: the variance of
    the traces' time averages over their number (which neurons fire depends on the drawn
    connectivity and input)."""
    if values.ndim == 0 or values.shape[-1] < 2 * BLOCKS or not np.isfinite(values).all():
        return None
    traces = values.reshape(-1, values.shape[-1])
    means = np.array([b.mean() for b in np.array_split(traces.mean(axis=0), BLOCKS)])
    var = np.sum(np.diff(means) ** 2) / (2 * (BLOCKS - 1)) / BLOCKS
    if traces.shape[0] > 1:
        var += traces.mean(axis=1).var(ddof=1) / traces.shape[0]
    return float(np.sqrt(var))


def _stats(values: np.ndarray) -> dict:
    finite = values[np.isfinite(values)] if values.size else values
    return {"shape": list(values.shape), "mean": float(finite.mean()) if finite.size else None,
            "mean_abs": float(np.abs(finite).mean()) if finite.size else None,
            "nonfinite": int(values.size - finite.size), "se": _spread(values)}


def _collect(out: str, device: object) -> None:
    """Every live monitor, in creation order, to ``out`` (JSON, with the device the script
    ended on and the runs gpuspike made) and ``out``.npz (arrays)."""
    import gc
    import weakref

    from brian2 import EventMonitor, PopulationRateMonitor, StateMonitor

    mons = [o for o in gc.get_objects()  # proxies pass isinstance too (or raise, when dead)
            if type(o) not in weakref.ProxyTypes
            and isinstance(o, (EventMonitor, StateMonitor, PopulationRateMonitor))]
    mons.sort(key=lambda o: o.__dict__.get("_bench_order", -1))
    entries, arrays = [], {}
    for mon in mons:
        try:
            source = mon.source.name
        except ReferenceError:  # its group is gone: the monitor is an orphan of a finished run
            continue
        base = {"cls": type(mon).__name__, "name": mon.name, "source": source}
        try:
            if isinstance(mon, EventMonitor):
                entries.append({**base, "var": f"<{mon.event}>", "count": int(mon.num_events)})
            elif isinstance(mon, PopulationRateMonitor):
                rate = np.asarray(mon.rate_, dtype=float)
                e = {**base, "var": "<rate>", **_stats(rate), "n": len(mon.source),
                     "duration": float(rate.size * mon.clock.dt_)}
                if rate.size <= MAX_SAVED:
                    e["array"] = f"a{len(arrays)}"
                    arrays[e["array"]] = rate
                entries.append(e)
            else:
                for var in mon.record_variables:
                    vals = np.asarray(getattr(mon, var + "_"), dtype=float)
                    e = {**base, "var": var, **_stats(vals)}
                    if vals.size <= MAX_SAVED:
                        e["array"] = f"a{len(arrays)}"
                        arrays[e["array"]] = vals
                    entries.append(e)
        except Exception as exc:  # noqa: BLE001 - an unreadable monitor is a finding
            entries.append({**base, "var": "?", "error": f"{type(exc).__name__}: {exc}"[:300]})
    np.savez(out + ".npz", **arrays)
    engines = sorted(getattr(device, "engines_used", ()))
    with open(out, "w") as fh:
        json.dump({"device": type(device).__name__, "engine": "/".join(engines) or None,
                   "engine_steps": getattr(device, "engine_steps", None),
                   "runtime_step_calls": getattr(device, "runtime_step_calls", None),
                   "monitors": entries}, fh)


def _run(mode: str, path: str, out: str) -> None:
    """Run one example in this process (``--_run``), then collect its monitors."""
    import itertools
    import runpy

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.show = lambda *a, **k: None
    import brian2
    import brian2.devices
    import brian2.devices.device
    from brian2.core.base import BrianObject

    # not ``import brian2.devices.device as devmod``: that name resolves to the device proxy
    devmod = sys.modules["brian2.devices.device"]

    counter = itertools.count()
    init = BrianObject.__init__

    def counted_init(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        self.__dict__.setdefault("_bench_order", next(counter))
        init(self, *args, **kwargs)

    BrianObject.__init__ = counted_init
    real_set_device = devmod.set_device
    if mode == "reference":
        brian2.prefs.codegen.target = "numpy"
        keep = "runtime"
    else:
        import gpuspike  # noqa: F401 - registers the device

        real_set_device("gpuspike")
        keep = "gpuspike"

    def set_device(device, build_on_run=True, **kwargs):  # noqa: ANN001, ANN003, ANN202
        name = device if isinstance(device, str) else type(device).__name__
        if name == keep:
            return real_set_device(device, build_on_run, **kwargs)
        print(f"[brian2_examples] set_device({name!r}) ignored: stays on {keep}",
              file=sys.stderr)
        return None

    for mod in (brian2, brian2.devices, devmod):
        mod.set_device = set_device
    folder = os.path.dirname(os.path.abspath(path))
    ours = (str(HERE), str(HERE.parent / "examples"))  # put there by this file and common
    sys.path[:] = [folder] + [p for p in sys.path[1:] if p not in ours]
    sys.argv = [path]
    scope = None  # the script's globals, kept alive (runpy hands back their copy)
    try:
        scope = runpy.run_path(path, run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise
    _collect(out, devmod.get_device())
    del scope


# ----------------------------------------------------------------------------- one run
def _why(stderr: str) -> str:
    """The error line of a traceback (else the last line)."""
    lines = [x for x in stderr.strip().splitlines() if x.strip()]
    for line in reversed(lines):
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Feature|Exit|Interrupt)\b", line):
            return line
    return lines[-1] if lines else ""


def run_example(src: Path, name: str, mode: str, timeout: float) -> dict:
    """Run ``name`` in ``mode`` in a fresh copy of its folder; its monitors or its error."""
    rel = Path(name + ".py")
    work = Path(tempfile.mkdtemp(prefix=f"b2ex_{rel.stem}_{mode}_"))
    folder = work / "example"
    shutil.copytree(src / rel.parent, folder)
    script, out = folder / rel.name, work / "monitors.json"
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--_run", mode,
                             str(script), str(out)], cwd=folder, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=timeout)
        ok, why = proc.returncode == 0, _why(err)
        if ok and not out.is_file():
            ok, why = False, "no monitors file written"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        ok, why = False, f"timed out after {timeout:.0f} s"
    mons, arrays, device, engine = [], {}, None, None
    if ok:
        res = json.loads(out.read_text())
        mons, device = res["monitors"], res["device"]
        engine = res["engine"] and f"{res['engine']} ({res['engine_steps']} steps)"
        with np.load(str(out) + ".npz") as z:
            arrays = {k: z[k] for k in z.files}
        if mode == "gpuspike" and device != "GpuspikeDevice":
            ok, why = False, f"ended on the device {device}, not on gpuspike"
    shutil.rmtree(work, ignore_errors=True)
    return {"ok": ok, "why": why[:300], "wall_s": time.perf_counter() - t0, "monitors": mons,
            "arrays": arrays, "device": device, "engine": engine}


# ----------------------------------------------------------------------------- comparison
def _exact(a: dict, b: dict, ra: dict, rb: dict) -> bool:
    if "array" in a and "array" in b:
        va, vb = ra[a["array"]], rb[b["array"]]
        scale = max(a["mean_abs"] or 0.0, 1e-300)
        return va.shape == vb.shape and bool(np.allclose(va, vb, rtol=1e-6, atol=1e-9 * scale,
                                                         equal_nan=True))
    return a["shape"] == b["shape"] and all(
        (a[k] is None and b[k] is None) or (a[k] is not None and b[k] is not None
                                            and abs(a[k] - b[k]) <= 1e-6 * abs(a[k]))
        for k in ("mean", "mean_abs"))


def _count_band(na: float, nb: float, random: bool) -> float:
    """How far apart two event counts may be (module docstring)."""
    return max(5.0, 0.1 * na, 3.0 * np.sqrt(max(na + nb, 0.0)) if random else 0.0)


def _check(a: dict, b: dict, random: bool) -> tuple[bool, dict]:
    """One reference monitor entry against its match (module docstring)."""
    if "count" in a:
        na, nb = a["count"], b.get("count")
        ok = nb is not None and abs(na - nb) <= _count_band(na, nb, random)
        return ok, {"counts": [na, nb]}
    info = {"shapes": [a["shape"], b.get("shape")], "means": [a["mean"], b.get("mean")]}
    if a["shape"] != b.get("shape") or b.get("nonfinite", 0) > a["nonfinite"]:
        return False, info
    if a["mean"] is None:
        return b.get("mean") is None, info
    diff = abs(a["mean"] - b["mean"])
    if a["var"] == "<rate>":
        spikes = a["n"] * a["duration"]  # rate (Hz) times this = spikes
        ok = diff * spikes <= _count_band(abs(a["mean"]) * spikes, abs(b["mean"]) * spikes,
                                          random)
    else:
        band = 0.02 * max(a["mean_abs"], 1e-300)
        if random and a.get("se") is not None:
            se = max(a["se"], b["se"] if b.get("se") is not None else 0.0)
            band = max(band, 3.0 * np.sqrt(2.0) * se)
        ok = diff <= band
    return ok, info


def _value(entry: dict) -> float | None:
    return entry["count"] if "count" in entry else entry.get("mean")


def _keyed(mons: list[dict]) -> dict:
    out: dict = {}
    for m in mons:
        out.setdefault((m["cls"], m["source"], m["var"]), []).append(m)
    return out


def _nth(keyed: dict, key: tuple, i: int) -> dict | None:
    entries = keyed.get(key, [])
    return entries[i] if i < len(entries) else None


def compare(refs: list[dict], got: dict, random: bool = False) -> dict:
    """The monitors of gpuspike's run against the reference's (``refs[0]``), matched by
    (class, source, variable) in creation order; ``random``: the example draws random
    numbers (wider bands). ``refs[1:]``: further reference runs, whose spread also counts
    (module docstring)."""
    ref = refs[0]
    ka, kb = _keyed(ref["monitors"]), _keyed(got["monitors"])
    others = [_keyed(r["monitors"]) for r in refs[1:]]
    checks, agree, exact = [], True, True
    for key, entries in ka.items():
        for i, a in enumerate(entries):
            what = "/".join(key) + (f"#{i}" if i else "")
            if "error" in a:  # the reference could not read it either: nothing to compare
                continue
            b = _nth(kb, key, i)
            if b is None or "error" in b:
                checks.append({"monitor": what, "ok": False,
                               "why": b["error"] if b else "missing on gpuspike"})
                agree = exact = False
                continue
            ok, info = _check(a, b, random)
            alike = [x for x in (_nth(o, key, i) for o in others)
                     if x is not None and "error" not in x and _value(x) is not None]
            if not ok and alike and _value(a) is not None and _value(b) is not None:
                values = np.array([_value(a)] + [_value(x) for x in alike], dtype=float)
                n = len(values)
                half = T975.get(n - 1, 2.0) * values.std(ddof=1) * np.sqrt(1 + 1 / n)
                lo, hi = values.min(), values.max()
                lo, hi = min(lo, values.mean() - half), max(hi, values.mean() + half)
                info["reference_values"] = values.tolist()
                info["reference_interval"] = [float(lo), float(hi)]
                ok = (info.get("shapes", [0, 0])[0] == info.get("shapes", [0, 0])[1]
                      and lo <= _value(b) <= hi) or any(_check(x, b, random)[0] for x in alike)
            ex = (a["count"] == b["count"]) if "count" in a else _exact(
                a, b, ref["arrays"], got["arrays"])
            checks.append({"monitor": what, "ok": bool(ok), "exact": bool(ex), **info})
            agree &= ok
            exact &= ex
    return {"monitors": len(checks), "agree": bool(agree), "exact": bool(exact and checks),
            "failing": [c for c in checks if not c["ok"]][:6],
            "checks": checks if len(checks) <= 12 else checks[:12]}


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--_run"]:
        _run(*argv[1:4])
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", default=str(HERE.parent / ".cache"))
    p.add_argument("--only", nargs="*", help="example names, e.g. CUBA synapses/STDP "
                   "(default: all)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per run")
    p.add_argument("--engine", choices=("auto", "numpy", "cpp", "cupy"), default="auto",
                   help="gpuspike's engine for the examples ($GPUSPIKE_ENGINE)")
    p.add_argument("--quick", action="store_true", help="(run_all's flag; use --only)")
    p.add_argument("--repeats", type=int, default=2,
                   help="further reference runs of a random example that differs (its "
                        "spread counts; 0: none)")
    args = p.parse_args(argv)
    if args.engine != "auto":
        os.environ["GPUSPIKE_ENGINE"] = args.engine  # the device's 'auto' takes it
    engine = resolve_engine(args.engine)  # the engine gpuspike's runs get
    src = examples_dir(Path(args.cache))
    names = example_names(src)
    if args.only:
        names = [n for n in names if n in set(args.only)]
    counts = {"agree": 0, "ran": 0, "total": len(names)}
    for name in names:
        line: dict = {"example": name}
        text = (src / f"{name}.py").read_text(errors="replace")
        if OWN_DEVICE.search(text):
            line.update(status="reference_failed",
                        why="sets its own device: drives the C++ standalone build itself")
        else:
            ref = run_example(src, name, "reference", args.timeout)
            line["brian2_wall_s"] = ref["wall_s"]
            if not ref["ok"]:
                line.update(status="reference_failed", why=ref["why"])
            else:
                got = run_example(src, name, "gpuspike", args.timeout)
                line.update(gpuspike_wall_s=got["wall_s"], gpuspike_engine=got["engine"])
                if not got["ok"]:
                    line.update(status="failed", why=got["why"])
                else:
                    counts["ran"] += 1
                    random = bool(RANDOM.search(text))
                    refs = [ref]
                    cmp = compare(refs, got, random)
                    if random and not cmp["agree"] and args.repeats:
                        log(f"{name}: differs; {args.repeats} more reference runs")
                        for _ in range(args.repeats):
                            more = run_example(src, name, "reference", args.timeout)
                            refs += [more] if more["ok"] else []
                        cmp = compare(refs, got, random)
                    line.update(status="agrees" if cmp["agree"] else "differs", random=random,
                                reference_runs=len(refs), **cmp)
                    counts["agree"] += cmp["agree"]
        emit(bench="brian2_examples", engine=engine, **line)
        log(f"{name}: {line['status']} {line.get('why', '')}")
    emit(bench="brian2_examples_summary", engine=engine, brian2=VERSION,
         **counts, note="agree: both ran and the monitors agree within the bands; "
                        "ran: both ran")


if __name__ == "__main__":
    main()
