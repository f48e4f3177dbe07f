"""Smoke test of benchmarks/train_shd.py: its --quick path runs in-process and reports
parseable JSON lines in which both frameworks fire and start from the same forward pass."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("snntorch")

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_quick_path_reports_both_frameworks():
    bench = _load("train_shd")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = bench.main(
            ["--quick", "--engine", "numpy", "--dt", "1", "--peers", "snntorch", "--threads", "1"]
        )
    assert rc == 0, err.getvalue()
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    runs = {r["framework"]: r for r in lines if r["bench"] == "train_shd"}
    assert set(runs) == {"gpuspike-eventprop", "snntorch-bptt"}, lines
    for r in runs.values():
        assert "skipped" not in r, r
        assert r["dt_ms"] == 1.0 and r["n_steps"] == 50 and r["hidden"] == 64
        assert r["epoch_time_s"] > 0 and r["peak_mem_mib"] is not None
        assert r["warmup_spikes_per_hidden_neuron"] > 0
        assert r["spikes_per_hidden_neuron"] > 0
    ours, peer = runs["gpuspike-eventprop"], runs["snntorch-bptt"]
    # same initial weights and data: the same forward pass up to float rounding
    assert peer["warmup_loss"] == pytest.approx(ours["warmup_loss"], rel=1e-4)
    assert peer["warmup_spikes_per_hidden_neuron"] == pytest.approx(
        ours["warmup_spikes_per_hidden_neuron"], rel=0.05
    )
    (ratio,) = [r for r in lines if r["bench"] == "train_shd_ratio"]
    assert ratio["peer"] == "snntorch-bptt"
    assert ratio["speedup"] > 0 and ratio["memory_ratio"] is not None


def test_quick_path_times_every_rule_on_the_same_batches():
    """``--rules``: one line per rule, all from the same initial weights and batches (the
    same forward pass: equal warm-up losses and spike counts)."""
    bench = _load("train_shd")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = bench.main(["--quick", "--engine", "numpy", "--dt", "1", "--no-peers",
                         "--rules", "eventprop", "bptt", "eprop", "eprop_online",
                         "--threads", "1",
                         "--batches", "1", "--hidden", "16", "--duration", "0.02"])
    assert rc == 0, err.getvalue()
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    runs = {r["framework"]: r for r in lines if r["bench"] == "train_shd"}
    assert set(runs) == {"gpuspike-eventprop", "gpuspike-bptt", "gpuspike-eprop",
                         "gpuspike-eprop_online"}
    ref = runs["gpuspike-eventprop"]
    for r in runs.values():
        assert r["epoch_time_s"] > 0 and r["rule"] == r["framework"].split("-")[1]
        assert r["warmup_loss"] == pytest.approx(ref["warmup_loss"], rel=1e-6)
        assert r["warmup_spikes_per_hidden_neuron"] == ref["warmup_spikes_per_hidden_neuron"]
