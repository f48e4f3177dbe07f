"""Every example of PyNN's distribution on NEST and on gpuspike, compared as a user would.

PyNN's ``examples/`` scripts take the simulator as their argument (``python ex.py nest``)
and write their recordings as Neo pickles under ``Results/``. Each example runs once per
simulator in its own copy of the folder (``--timeout`` seconds each); then:

- ``reference_failed``: NEST cannot run it here (a missing optional package, NineML, CSA,
  NEURON, ...): skipped, with the last line of its error;
- ``failed``: NEST ran it, gpuspike did not (the last line of the error);
- ``agrees`` / ``differs``: both ran; every Neo file they both wrote is compared by its
  spike trains (total spike count within ``max(5 spikes, 10 %)`` of NEST's) and analog
  signals (same shape; mean within 2 % of NEST's mean magnitude; ``exact`` when the traces
  agree to 1e-6 relative). Examples with random connectivity or Poisson input draw other
  numbers on each simulator, so only the statistics can agree there: the bands are for
  them. Examples that write nothing count as ``agrees`` when both finish.

Examples whose recordings are one draw of a random process (:data:`STOCHASTIC`: a chaotic
network driven by Poisson input, Bernoulli or binomial synapses) cannot agree within those
bands even when the physics is the same. gpuspike runs them :data:`ENSEMBLE_SEEDS` more
times with other seeds (``rng_seed``), and each figure NEST gives must lie in the 99.9 %
prediction interval of gpuspike's ensemble: ``|x_nest - mean| <= t(0.9995, n-1) s
sqrt(1 + 1/n)`` (``n`` runs, standard deviation ``s``; never narrower than the bands
above; 99.9 % because an example has up to 10 such figures and ``s`` from 5 runs is
rough); the check reports the ensemble's mean, ``s`` and NEST's z-score.

The NEST reference runs through this script (``--run-example``), which first applies to
PyNN the workaround pyNN.gpuspike carries for numpy >= 2.1 (:func:`patch_pynn`); every
copy of the examples gets an empty ``Results/`` folder (some examples write there
without creating it).

The sdist comes from the same cache ``make test`` fills (``.cache/pynn-<version>``; else it
is downloaded with pip). One JSON line per example, a summary line (``agree``, ``ran``,
``total``).

    python benchmarks/pynn_examples.py [--only small_network brunel] [--timeout 300]
    python benchmarks/pynn_examples.py --run-example brunel.py nest   # (in a copy) one run
"""

from __future__ import annotations

import argparse
import glob
import os
import pickle
import re
import runpy
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import emit, log, resolve_engine  # noqa: E402 - after the path set-up

VERSION = "0.13.0"
#: Examples that need arguments beyond the simulator: one run per argument list.
ARGUMENTS: dict[str, list[list[str]]] = {"VAbenchmarks": [["CUBA"], ["COBA"]]}
#: Examples compared with gpuspike's seed ensemble (module docstring), and why.
STOCHASTIC: dict[str, str] = {
    "brunel": "Brunel's network (case C) driven by Poisson sources, 100 ms: from seed to "
              "seed the mean v of its 4 traces ranges over -200..-990 mV and the spike "
              "count of its 100 recorded cells (an unseeded sample()) over 490..940 on "
              "both simulators; with the Poisson trains replaced by the same spike arrays "
              "gpuspike's v traces equal NEST's to 1e-11 mV (pyNN.nest's Poisson sources "
              "also start 1 ms late: origin = 1 ms)",
    "stochastic_synapses": "one synapse transmits each of 9 spikes with p = 0.5: its "
                           "gsyn mean is a Binomial(9, 0.5) count times 0.5 nS",
    "multiquantal_synapses": "1000 binomial synapses per population: their gsyn means "
                             "vary by 0.5-1.3 % from seed to seed (the exact law)",
}
ENSEMBLE_SEEDS = 4
#: Environment variable that gives ``setup`` an ``rng_seed`` (``--run-example``).
SEED_VARIABLE = "PYNN_EXAMPLE_SEED"


def examples_dir(cache: Path) -> Path:
    root = cache / f"pynn-{VERSION}"
    if not (root / "examples").is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--no-binary", ":all:", f"PyNN=={VERSION}", "-d", str(cache)],
                       check=True)
        shutil.unpack_archive(str(cache / f"pynn-{VERSION}.tar.gz"), str(cache))
    return root / "examples"


def patch_pynn() -> None:
    """The workaround pyNN.gpuspike's Projection carries for PyNN 0.13.0 under numpy
    >= 2.1, applied to PyNN itself (for the NEST reference).

    ``Connector._standard_connect`` turns a column of the connection map into indices with
    ``source_mask.nonzero()``; a 1x1 ``OneToOneConnector`` map gives a 0-d array there,
    which numpy >= 2.1 rejects (``ValueError: Calling nonzero on 0d arrays is not
    allowed``: Izhikevich, multi_synapse, simple_STDP). All-to-all makes the same single
    connection.
    """
    from pyNN import connectors

    one_to_one = connectors.OneToOneConnector.connect
    if getattr(one_to_one, "_patched", False):
        return

    def connect(self, projection):
        if projection.pre.size == 1 and projection.post.size == 1:
            return connectors.AllToAllConnector(safe=self.safe,
                                                callback=self.callback).connect(projection)
        return one_to_one(self, projection)

    connect._patched = True
    connectors.OneToOneConnector.connect = connect


def run_script(argv: list[str]) -> None:
    """``--run-example SCRIPT SIMULATOR [ARGS]``: run an example as ``python SCRIPT
    SIMULATOR ARGS`` would, with :func:`patch_pynn` for NEST and, when
    :data:`SEED_VARIABLE` is set, that ``rng_seed`` for ``setup``."""
    script, simulator = argv[0], argv[1]
    if simulator == "nest":
        patch_pynn()
    seed = os.environ.get(SEED_VARIABLE)
    if seed is not None:
        import importlib

        module = importlib.import_module(f"pyNN.{simulator}")
        setup = module.setup

        def seeded_setup(*args, **kwargs):
            kwargs["rng_seed"] = int(seed)
            return setup(*args, **kwargs)

        module.setup = seeded_setup
    sys.argv = list(argv)
    sys.path.insert(0, os.getcwd())
    runpy.run_path(script, run_name="__main__")


def run_example(src: Path, name: str, simulator: str, timeout: float,
                args: list[str] | None = None, seed: int | None = None) -> dict:
    """Run ``name``.py on ``simulator`` (then ``args``) in a fresh copy of the examples
    folder (through :func:`run_script` for NEST or a given ``seed``)."""
    work = Path(tempfile.mkdtemp(prefix=f"pynn_{name}_{simulator}_"))
    shutil.copytree(src, work / "examples")
    (work / "examples" / "Results").mkdir(exist_ok=True)
    env = dict(os.environ, MPLBACKEND="Agg")
    command = [f"{name}.py", simulator, *(args or [])]
    if simulator == "nest" or seed is not None:
        command = [str(Path(__file__).resolve()), "--run-example", *command]
    if seed is not None:
        env[SEED_VARIABLE] = str(seed)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, *command], cwd=work / "examples",
                              capture_output=True, text=True, timeout=timeout, env=env)
        ok, why = proc.returncode == 0, (proc.stderr.strip().splitlines() or [""])[-1]
    except subprocess.TimeoutExpired:
        ok, why = False, f"timed out after {timeout:.0f} s"
    files = sorted(glob.glob(str(work / "examples" / "Results" / "**" / "*.pkl"),
                             recursive=True))
    return {"ok": ok, "why": why[:300], "wall_s": time.perf_counter() - t0, "files": files,
            "work": work}


def _key(path: str, simulator: str) -> str:
    """A Neo file's name without the simulator and the time stamp."""
    base = os.path.basename(path).replace(f"_{simulator}", "")
    return re.sub(r"(_np\d+)?(_\d{8}-\d{6})?\.pkl$", "", base)


def _load(path: str):
    with open(path, "rb") as fh:
        return pickle.load(fh)


def _spike_count(segment) -> int:
    return int(sum(len(st) for st in segment.spiketrains))


def _signal(segment, name: str):
    return next((x for x in segment.analogsignals if x.name == name), None)


def _within_ensemble(reference: float, values: list[float], band: float, check: dict) -> bool:
    """Whether ``reference`` lies in the 99.9 % prediction interval of the ensemble
    ``values`` (never narrower than ``band``); the figures go into ``check``."""
    from scipy.stats import t as student

    v = np.asarray(values, dtype=float)
    n, mean = v.size, float(v.mean())
    sd = float(v.std(ddof=1)) if n > 1 else 0.0
    width = band if n < 2 else max(band, float(student.ppf(0.9995, n - 1)) * sd
                                   * np.sqrt(1 + 1 / n))
    check.update(ensemble_mean=mean, ensemble_sd=sd, band=width,
                 z=(reference - mean) / sd if sd > 0 else None)
    return abs(reference - mean) <= width


def compare(ref_files: list[str], got_files: list[str],
            ensemble: list[list[str]] | None = None) -> dict:
    """Spike counts and analog signals of the Neo files both wrote (module docstring);
    ``ensemble``: the files of gpuspike's runs with other seeds (:data:`STOCHASTIC`)."""
    ref = {_key(f, "nest"): f for f in ref_files}
    got = {_key(f, "gpuspike"): f for f in got_files}
    others = [{_key(f, "gpuspike"): f for f in files} for files in ensemble or []]
    common = sorted(set(ref) & set(got))
    out = {"files": len(common), "missing": sorted(set(ref) - set(got)), "checks": []}
    agree, exact = not out["missing"], True
    for key in common:
        a, b = _load(ref[key]), _load(got[key])
        extra = [_load(o[key]) for o in others if key in o]
        for k, (sa, sb) in enumerate(zip(a.segments, b.segments)):
            sx = [e.segments[k] for e in extra if len(e.segments) > k]
            na, nb = _spike_count(sa), _spike_count(sb)
            check = {"file": key, "spikes": [na, nb]}
            band = max(5, 0.1 * na)
            ok = (_within_ensemble(na, [nb, *map(_spike_count, sx)], band, check) if sx
                  else abs(na - nb) <= band)
            exact &= na == nb
            check["ok"] = bool(ok)
            out["checks"].append(check)
            agree &= ok
            for xa in sa.analogsignals:
                xb = _signal(sb, xa.name)
                if xb is None or np.shape(xa) != np.shape(xb):
                    out["checks"].append({"file": key, "signal": xa.name, "ok": False,
                                          "why": "missing or another shape"})
                    agree = False
                    continue
                va, vb = np.asarray(xa, float), np.asarray(xb, float)
                scale = max(np.abs(va).mean(), 1e-12)
                check = {"file": key, "signal": xa.name,
                         "means": [float(va.mean()), float(vb.mean())]}
                if sx:
                    means = [float(np.asarray(x, float).mean()) for x in
                             (_signal(s, xa.name) for s in sx)
                             if x is not None and np.shape(x) == np.shape(xa)]
                    ok = _within_ensemble(float(va.mean()), [float(vb.mean()), *means],
                                          0.02 * scale, check)
                else:
                    ok = abs(va.mean() - vb.mean()) <= 0.02 * scale
                exact &= bool(np.allclose(va, vb, rtol=1e-6, atol=1e-9 * scale))
                check["ok"] = bool(ok)
                out["checks"].append(check)
                agree &= ok
    out["agree"], out["exact"] = bool(agree), bool(exact and common)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", default=str(HERE.parent / ".cache"))
    p.add_argument("--only", nargs="*", help="example names (default: all)")
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--engine", choices=("auto", "numpy", "cpp", "cupy"), default="auto",
                   help="gpuspike's engine for the examples ($GPUSPIKE_ENGINE)")
    p.add_argument("--quick", action="store_true", help="(run_all's flag; use --only)")
    args = p.parse_args(argv)
    if args.engine != "auto":
        os.environ["GPUSPIKE_ENGINE"] = args.engine  # the examples' setup() takes 'auto'
    engine = resolve_engine(args.engine)  # the engine gpuspike's runs get

    src = examples_dir(Path(args.cache))
    names = sorted(Path(f).stem for f in glob.glob(str(src / "*.py")))
    if args.only:
        names = [n for n in names if n in set(args.only)]
    runs = [(n, a) for n in names for a in ARGUMENTS.get(n, [[]])]
    counts = {"agree": 0, "ran": 0, "total": len(runs), "reference_ran": 0}
    for name, extra in runs:
        label = " ".join([name, *extra])
        ref = run_example(src, name, "nest", args.timeout, extra)
        got = run_example(src, name, "gpuspike", args.timeout, extra)
        line = {"example": label, "nest_wall_s": ref["wall_s"],
                "gpuspike_wall_s": got["wall_s"], "gpuspike_ran": got["ok"]}
        if not ref["ok"]:
            # NEST cannot run it here: say whether gpuspike does, nothing to compare
            line.update(status="reference_failed", why=ref["why"],
                        gpuspike_why=None if got["ok"] else got["why"])
        else:
            counts["reference_ran"] += 1
            if not got["ok"]:
                line.update(status="failed", why=got["why"])
            else:
                counts["ran"] += 1
                seeds = [run_example(src, name, "gpuspike", args.timeout, extra, seed=s)
                         for s in range(1, ENSEMBLE_SEEDS + 1)] if name in STOCHASTIC else []
                cmp = compare(ref["files"], got["files"],
                              [r["files"] for r in seeds if r["ok"]] or None)
                if seeds:
                    line.update(ensemble=1 + sum(r["ok"] for r in seeds),
                                stochastic=STOCHASTIC[name])
                line.update(status="agrees" if cmp["agree"] else "differs", **cmp)
                counts["agree"] += cmp["agree"]
                for r in seeds:
                    shutil.rmtree(r["work"], ignore_errors=True)
        shutil.rmtree(got["work"], ignore_errors=True)
        shutil.rmtree(ref["work"], ignore_errors=True)
        emit(bench="pynn_examples", engine=engine, **line)
        log(f"{label}: {line['status']}")
    emit(bench="pynn_examples_summary", engine=engine, pynn=VERSION, **counts,
         note="agree: both ran and the recordings agree within the bands; ran: both ran; "
         "reference_ran: NEST ran (the others need packages or PyNN fixes NEST lacks here)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--run-example"]:
        run_script(sys.argv[2:])
    else:
        main()
