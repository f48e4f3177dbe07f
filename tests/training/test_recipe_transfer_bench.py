"""benchmarks/recipe_transfer.py's run of one encoding and seed: ``--set`` reaches the
training run (the recipe in its JSON line), the figures are parsed."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import sys
from pathlib import Path

import numpy as np

from .test_training_cli import two_class_file

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _load():
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("_bench_recipe_transfer",
                                                  BENCH / "recipe_transfer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_set_options_reach_the_run(tmp_path):
    bench = _load()
    train = two_class_file(tmp_path / "train.h5", 40, 0)
    test = two_class_file(tmp_path / "test.h5", 10, 1)
    args = argparse.Namespace(epochs=1, eval_every=1, engine="numpy", work=tmp_path,
                              set=["lr=2e-3", "lr_decay=0.98", "hidden=8"])
    r = bench.run_one(train, test, 0, args)
    assert "error" not in r, r.get("error")
    assert r["recipe"]["lr"] == 2e-3 and r["epochs"] == 1
    assert 0.0 <= r["final_test_acc"] <= 1.0 and r["runaways"] == 0


def test_ridge_line_reads_the_files(tmp_path):
    """Three speakers: official split and leave-one-speaker-out; one speaker: the official
    split only (lambda by 5-fold). The classes differ by channel and time: ridge separates
    them."""
    from gpuspike.datasets.shd import read_shd, write_shd

    bench = _load()
    train = two_class_file(tmp_path / "train.h5", 60, 0)
    test = two_class_file(tmp_path / "test.h5", 20, 1)
    r = bench.ridge_line(train, test)
    assert r["official"] > 0.9 and r["loso_mean"] > 0.9 and len(r["loso_per_speaker"]) == 3
    for path in (train, test):   # one speaker
        d = read_shd(path)
        write_shd(path, dataclasses.replace(d, speakers=np.zeros(len(d), int)))
    r = bench.ridge_line(train, test)
    assert r["loso_mean"] is None and r["official"] > 0.9
