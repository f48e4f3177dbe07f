"""Does the bare ``gpuspike train --dataset shd`` recipe hold on encodings nobody tuned it for?

Spoken digits (FSDD, official split: takes 0-4 test) are encoded three ways, plus one
synthetic SHD-shaped set, and each is trained with the defaults only (the file rule picks
``dt``, duration and pooling; the input weights are calibrated on one batch; the runaway
guard is on), for several seeds:

- ``v1``: the cochlea-like encoder at 700 channels, gain 2.88, no adaptation (~10 Hz);
- ``v2``: the same encoder's defaults (gain 4.5, threshold adaptation; ~14 Hz);
- ``mel``: a mel-spectrogram rate code, 256 channels, Poisson spikes, ~10 Hz
  (:mod:`gpuspike.datasets.melcode`);
- ``synthetic``: 700 channels, 20 classes, Gaussian bumps sweeping between class-specific
  channels (``benchmarks/train_shd.py``'s generator), 2000 train / 400 test samples.

One JSON line per run: best and final test accuracy (``--eval-every``), train accuracy,
runaways detected (and recovered), the recipe chosen; then one line per encoding with the
mean and spread over seeds, and whether any run collapsed (final test accuracy below half
its best, or an error). Each encoding also gets a line with the ridge classifier on binned
counts (:mod:`gpuspike.datasets.baseline`: official split, and nested leave-one-speaker-out
where the files hold several speakers), the reference of what the code carries.
``--set key=value`` changes an option for every run (to compare a
recipe against the defaults), e.g. ``--set lr=2e-3 --set reg=0``.

    python benchmarks/recipe_transfer.py --epochs 30 --seeds 0 1 2 --engine cpp
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import emit, log  # noqa: E402 - after the path set-up

ENCODINGS = ("v1", "v2", "mel", "synthetic")


def _split_write(data, stem: Path) -> tuple[Path, Path]:
    from gpuspike.datasets.fsdd import fsdd_takes, official_split
    from gpuspike.datasets.shd import write_shd

    tr, te = official_split(fsdd_takes(data))
    paths = stem.with_name(stem.name + "_train.h5"), stem.with_name(stem.name + "_test.h5")
    write_shd(paths[0], data.subset(tr))
    write_shd(paths[1], data.subset(te))
    return paths


def make_encoding(name: str, recordings: Path, work: Path) -> tuple[Path, Path]:
    """Train and test files of one encoding (made once, then reused from ``work``)."""
    stem = work / name
    paths = stem.with_name(name + "_train.h5"), stem.with_name(name + "_test.h5")
    if all(p.exists() for p in paths):
        return paths
    work.mkdir(parents=True, exist_ok=True)
    from gpuspike.datasets.shd import read_shd

    if name == "synthetic":
        from train_shd import synthetic_shd

        from gpuspike.datasets.shd import write_shd

        # one draw of the class templates for both parts (the generator's seed fixes them)
        both = synthetic_shd(2400, seed=1)
        write_shd(paths[0], both.subset(np.arange(2000)))
        write_shd(paths[1], both.subset(np.arange(2000, 2400)))
        return paths
    from gpuspike.datasets.audio import EncoderConfig
    from gpuspike.datasets.encode import encode_directory
    from gpuspike.datasets.melcode import MelPoissonConfig

    config = {"v1": EncoderConfig(channels=700, gain=2.88, adaptation=0.0),
              "v2": EncoderConfig(channels=700),
              "mel": MelPoissonConfig(channels=256, max_rate=72.0)}[name]
    whole = work / f"{name}_all.h5"
    result = encode_directory(recordings, whole, config=config)
    log(f"{name}: {result.summary()}")
    return _split_write(read_shd(whole), stem)


def ridge_line(train: Path, test: Path) -> dict:
    """The ridge classifier on binned counts: official-split accuracy (``lam`` by
    leave-one-speaker-out on the training part, or 5-fold where it has one speaker) and, with
    three or more speakers, the nested leave-one-speaker-out mean over train + test."""
    from gpuspike.datasets.baseline import (
        choose_lambda,
        count_features,
        ridge_accuracy,
        ridge_baseline,
    )
    from gpuspike.datasets.shd import read_shd

    a, b = read_shd(train), read_shd(test)
    x = np.concatenate([count_features(a), count_features(b)])
    y = np.concatenate([a.labels, b.labels])
    speakers = np.concatenate([a.speakers, b.speakers])
    tr, te = np.arange(len(a)), np.arange(len(a), len(a) + len(b))
    if len(np.unique(speakers)) >= 3:
        r = ridge_baseline(x, y, speakers, tr, te)
        return {"official": r["official_split_accuracy"], "loso_mean": r["loso_mean_accuracy"],
                "loso_per_speaker": r["loso_per_speaker"], "lambda": r["official_lambda"]}
    lam = choose_lambda(x[tr], y[tr], tr % 5)
    return {"official": ridge_accuracy(x, y, tr, te, lam), "loso_mean": None, "lambda": lam}


def run_one(train: Path, test: Path, seed: int, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, "-m", "gpuspike.cli", "train", "--dataset", "shd", "--train",
           str(train), "--test", str(test), "--seed", str(seed), "--epochs",
           str(args.epochs), "--engine", args.engine, "--eval-every", str(args.eval_every),
           "--no-progress"]
    config = {}
    for item in args.set:
        key, _, value = item.partition("=")
        config[key] = json.loads(value) if value[:1] in "[{0123456789-." or value in (
            "true", "false", "null") else value
    if config:
        # a stable name per option set (``hash`` of a str changes between processes)
        digest = hashlib.sha1("\n".join(args.set).encode()).hexdigest()[:12]
        path = args.work / f"set_{digest}.json"
        path.write_text(json.dumps(config))
        cmd[4:4] = ["--config", str(path)]   # after "train"
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1][:400], "wall_s": wall}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    cfg = out["config"]
    return {"best_test_acc": out["best_test_acc"], "final_test_acc": out["test_acc"],
            "train_acc": out["train_acc"], "runaways": out["runaways"],
            "runaway_events": out["runaway_events"], "epochs": out["epochs"],
            "epoch_time_s": out["epoch_time_s"], "wall_s": wall, "engine": out["engine"],
            "spikes_per_neuron": out["spikes_per_neuron"],
            "calibration": [c["scale"] for c in out["calibration"]],
            "recipe": {k: cfg[k] for k in ("dt", "duration", "pool_channels", "lr", "reg")}}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recordings", type=Path,
                   default=HERE.parent.parent / "shared" / "data" / "fsdd" / "recordings")
    p.add_argument("--work", type=Path, default=HERE.parent / ".cache" / "recipe_transfer")
    p.add_argument("--encodings", nargs="*", default=list(ENCODINGS), choices=ENCODINGS)
    p.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--eval-every", type=int, default=5)
    p.add_argument("--engine", default="auto")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="an option for every run (JSON value), e.g. lr=2e-3")
    args = p.parse_args(argv)
    for name in args.encodings:
        train, test = make_encoding(name, args.recordings, args.work)
        emit(bench="recipe_transfer_ridge", encoding=name, **ridge_line(train, test))
        finals, bests, collapsed = [], [], 0
        for seed in args.seeds:
            r = run_one(train, test, seed, args)
            emit(bench="recipe_transfer", encoding=name, seed=seed, set=args.set, **r)
            if "error" in r:
                collapsed += 1
                continue
            finals.append(r["final_test_acc"])
            bests.append(r["best_test_acc"])
            collapsed += r["final_test_acc"] < 0.5 * r["best_test_acc"]
        emit(bench="recipe_transfer_summary", engine=args.engine, encoding=name, set=args.set,
             runs=len(args.seeds),
             collapsed=collapsed,
             final_mean=float(np.mean(finals)) if finals else None,
             final_std=float(np.std(finals)) if finals else None,
             best_mean=float(np.mean(bests)) if bests else None)


if __name__ == "__main__":
    main()
