"""benchmarks/recipe_transfer.py's run of one encoding and seed: ``--set`` reaches the
training run (the recipe in its JSON line), the figures are parsed."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

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
