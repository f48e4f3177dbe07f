"""Tests of gpuspike.sweep.runner: local and Ray executors, aggregation, resume, failures."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from gpuspike.sweep.config import Resources, parse_sweep_config
from gpuspike.sweep.errors import SweepError
from gpuspike.sweep.runner import run_sweep, task_options
from gpuspike.sweep.store import read_record, record_path
from gpuspike.sweep.trials import expand_trials
from tests.sweep.toy_trial import executions, expected_acc

TOY = "tests.sweep.toy_trial:quadratic"
HAVE_MPL = importlib.util.find_spec("matplotlib") is not None
LRS = [0.001, 0.01, 0.03]


def toy_config(tmp_path: Path, **extra):
    """3 learning rates x 2 seeds of the toy trial; executions logged to tmp_path/log."""
    (tmp_path / "log").mkdir(parents=True, exist_ok=True)
    data = {
        "name": "toy",
        "trial": TOY,
        "output": str(tmp_path / "out"),
        "base": {
            "log_dir": str(tmp_path / "log"),
            "fail_flag": str(tmp_path / "FAIL"),
            "fail_lr": 0.03,
            "stop_flag": str(tmp_path / "STOP"),
            "stop_lr": 0.01,
        },
        "grid": {"lr": LRS},
        "seeds": [0, 1],
    }
    data.update(extra)
    return parse_sweep_config(data)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def check_results(out: Path, seeds=(0, 1), folds=(None,)) -> None:
    """results.csv / results.json hold mean and sample std of the toy's closed form."""
    rows = read_csv(out / "results.csv")
    assert [float(r["lr"]) for r in rows] == LRS
    groups = json.loads((out / "results.json").read_text())["groups"]
    for row, group in zip(rows, groups):
        lr = float(row["lr"])
        accs = [expected_acc(lr, s, f) for f in folds for s in seeds]
        assert int(row["n_ok"]) == len(accs) == group["metrics"]["test_acc"]["n"]
        assert float(row["test_acc_mean"]) == pytest.approx(np.mean(accs), abs=1e-12)
        assert float(row["test_acc_std"]) == pytest.approx(np.std(accs, ddof=1), abs=1e-12)
        assert float(row["train_acc_mean"]) == pytest.approx(np.mean(accs) + 0.05, abs=1e-12)
        assert group["metrics"]["test_acc"]["mean"] == pytest.approx(np.mean(accs), abs=1e-12)
        assert "curve_mean" not in row and "note_mean" not in row  # non-numeric: per trial only


# ---------------------------------------------------------------------------- resources


def test_task_options_gpu_only_where_present() -> None:
    res = Resources(gpus_per_trial=1, cpus_per_trial=2)
    assert task_options(res, {"CPU": 16.0}) == {"num_cpus": 2.0, "num_gpus": 0.0}
    assert task_options(res, {"CPU": 16.0, "GPU": 4.0}) == {"num_cpus": 2.0, "num_gpus": 1.0}
    half = Resources(gpus_per_trial=0.5)
    assert task_options(half, {"CPU": 2.0, "GPU": 1.0})["num_gpus"] == 0.5
    assert task_options(Resources(gpus_per_trial=0), {"GPU": 1.0})["num_gpus"] == 0.0
    with pytest.raises(SweepError, match="lower gpus_per_trial"):
        task_options(Resources(gpus_per_trial=2), {"CPU": 8.0, "GPU": 1.0})


# ---------------------------------------------------------------------------- local executor


def test_local_run_aggregates_and_writes(tmp_path) -> None:
    cfg = toy_config(tmp_path)
    lines: list[str] = []
    summary = run_sweep(cfg, executor="local", log=lines.append)
    out = tmp_path / "out"
    assert (summary.n_trials, summary.n_ok, summary.n_failed, summary.n_run) == (6, 6, 0, 6)
    assert summary.n_skipped == 0
    assert len(executions(tmp_path / "log")) == 6
    check_results(out)
    # best: lr = 0.01 is the parabola's top
    assert summary.best["params"] == {"lr": 0.01}
    assert summary.best["test_acc"]["mean"] == pytest.approx(expected_acc(0.01, 0) + 0.005)
    for trial in expand_trials(cfg):
        rec = read_record(out, trial)
        assert rec["status"] == "ok" and rec["config"] == trial.config
        assert rec["metrics"]["curve"] == pytest.approx(
            np.linspace(0, rec["metrics"]["test_acc"], 3)
        )
        assert isinstance(rec["metrics"]["epochs"], int)
    trials_rows = read_csv(out / "trials.csv")
    assert len(trials_rows) == 6 and {r["status"] for r in trials_rows} == {"ok"}
    assert {"results_csv", "trials_csv", "results_json"} <= set(summary.files)
    if HAVE_MPL:
        assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert summary.files["plot"] == str(out / "plot.png")
    else:
        assert "plot" not in summary.files and any("plot skipped" in x for x in lines)
    assert json.loads((out / "sweep.json").read_text())["trial_ids"] == [
        t.id for t in expand_trials(cfg)
    ]
    assert lines[0].startswith("sweep toy: 6 trials, 0 already done, 6 to run")
    assert any(line.startswith("[6/6]") for line in lines)


def test_local_resume_runs_only_missing(tmp_path) -> None:
    cfg = toy_config(tmp_path)
    run_sweep(cfg, executor="local", plot=False)
    assert len(executions(tmp_path / "log")) == 6
    again = run_sweep(cfg, executor="local", plot=False)
    assert (again.n_skipped, again.n_run) == (6, 0)
    assert len(executions(tmp_path / "log")) == 6
    victim = expand_trials(cfg)[3]
    record_path(tmp_path / "out", victim.id).unlink()
    third = run_sweep(cfg, executor="local", plot=False)
    assert (third.n_skipped, third.n_run, third.n_ok) == (5, 1, 6)
    runs = executions(tmp_path / "log")
    assert len(runs) == 7 and victim.config in runs
    check_results(tmp_path / "out")


def test_corrupt_or_foreign_record_is_rerun(tmp_path) -> None:
    cfg = toy_config(tmp_path)
    run_sweep(cfg, executor="local", plot=False)
    trials = expand_trials(cfg)
    record_path(tmp_path / "out", trials[0].id).write_text('{"status": "ok", "conf')  # torn
    foreign = json.loads(record_path(tmp_path / "out", trials[1].id).read_text())
    foreign["config"] = {"lr": 99}
    record_path(tmp_path / "out", trials[1].id).write_text(json.dumps(foreign))
    summary = run_sweep(cfg, executor="local", plot=False)
    assert summary.n_run == 2 and summary.n_ok == 6


def test_local_killed_sweep_resumes(tmp_path) -> None:
    cfg = toy_config(tmp_path)
    (tmp_path / "STOP").touch()
    with pytest.raises(KeyboardInterrupt):
        run_sweep(cfg, executor="local", plot=False)
    assert len(list((tmp_path / "out" / "trials").glob("*.json"))) == 2  # lr=0.001 x 2 seeds
    assert not list((tmp_path / "out" / "trials").glob(".*"))  # no temporary files left
    (tmp_path / "STOP").unlink()
    summary = run_sweep(cfg, executor="local", plot=False)
    assert (summary.n_skipped, summary.n_run, summary.n_ok) == (2, 4, 6)
    check_results(tmp_path / "out")


def test_local_failures_recorded_then_rerun(tmp_path) -> None:
    cfg = toy_config(tmp_path)
    (tmp_path / "FAIL").touch()
    summary = run_sweep(cfg, executor="local", plot=True)
    assert (summary.n_ok, summary.n_failed) == (4, 2)
    failed = [
        read_record(tmp_path / "out", t) for t in expand_trials(cfg) if t.params["lr"] == 0.03
    ]
    for rec in failed:
        assert rec["status"] == "error"
        assert rec["error"] == "RuntimeError: toy failure at lr=0.03"
        assert "Traceback" in rec["traceback"] and rec["metrics"] is None
    rows = read_csv(tmp_path / "out" / "results.csv")
    assert rows[2]["n_failed"] == "2" and rows[2]["test_acc_mean"] == ""
    assert summary.best["params"] == {"lr": 0.01}
    (tmp_path / "FAIL").unlink()
    before = len(executions(tmp_path / "log"))
    again = run_sweep(cfg, executor="local", plot=False)
    assert (again.n_run, again.n_ok, again.n_failed) == (2, 6, 0)
    assert len(executions(tmp_path / "log")) == before + 2
    check_results(tmp_path / "out")


def test_loso_folds_average(tmp_path) -> None:
    cfg = toy_config(tmp_path, folds="loso", speakers=["ann", "bob", "cy"])
    summary = run_sweep(cfg, executor="local", plot=False)
    assert summary.n_trials == 3 * 3 * 2
    check_results(tmp_path / "out", folds=("ann", "bob", "cy"))
    runs = executions(tmp_path / "log")
    assert sorted({r["loso_speaker"] for r in runs}) == ["ann", "bob", "cy"]


def test_bad_trials_are_recorded(tmp_path) -> None:
    cfg = toy_config(tmp_path, trial="tests.sweep.toy_trial:not_a_dict", grid={"lr": [0.1]})
    summary = run_sweep(cfg, executor="local")
    assert (summary.n_ok, summary.n_failed) == (0, 2)
    rec = read_record(tmp_path / "out", expand_trials(cfg)[0])
    assert "returned list; it must return a dict" in rec["error"]
    assert "plot" not in summary.files
    cfg = toy_config(tmp_path, trial="no_such_module_xyz:run", grid={"lr": [0.1]})
    summary = run_sweep(cfg, executor="local")
    rec = read_record(tmp_path / "out", expand_trials(cfg)[0])
    assert summary.n_failed == 2 and "cannot import module 'no_such_module_xyz'" in rec["error"]


def test_bad_executor(tmp_path) -> None:
    with pytest.raises(SweepError, match="executor must be one of"):
        run_sweep(toy_config(tmp_path), executor="dask")


# ---------------------------------------------------------------------------- Ray executor


@pytest.mark.xdist_group("ray")  # one Ray session under --dist loadgroup
def test_ray_run_matches_local(tmp_path, ray_session) -> None:
    cfg = toy_config(tmp_path, resources={"gpus_per_trial": 1, "cpus_per_trial": 1})
    lines: list[str] = []
    summary = run_sweep(cfg, executor="ray", log=lines.append)
    assert (summary.n_ok, summary.n_run, summary.executor) == (6, 6, "ray")
    assert ray_session.is_initialized()  # the caller's session is left running
    check_results(tmp_path / "out")
    assert any(line.startswith("ray: 2 CPU, 0 GPU; per trial 1 CPU, 0 GPU") for line in lines)
    rec = read_record(tmp_path / "out", expand_trials(cfg)[0])
    assert rec["host"] and rec["elapsed_s"] >= 0


@pytest.mark.xdist_group("ray")  # one Ray session under --dist loadgroup
def test_ray_resume_runs_only_deleted(tmp_path, ray_session) -> None:
    cfg = toy_config(tmp_path)
    run_sweep(cfg, executor="ray", plot=False, max_concurrent=1)
    assert len(executions(tmp_path / "log")) == 6
    victim = expand_trials(cfg)[4]
    record_path(tmp_path / "out", victim.id).unlink()
    summary = run_sweep(cfg, executor="ray", plot=False)
    assert (summary.n_skipped, summary.n_run, summary.n_ok) == (5, 1, 6)
    runs = executions(tmp_path / "log")
    assert len(runs) == 7 and runs.count(victim.config) == 2


@pytest.mark.xdist_group("ray")  # one Ray session under --dist loadgroup
def test_ray_failures_recorded_then_rerun(tmp_path, ray_session) -> None:
    cfg = toy_config(tmp_path)
    (tmp_path / "FAIL").touch()
    summary = run_sweep(cfg, executor="ray", plot=False)
    assert (summary.n_ok, summary.n_failed) == (4, 2)
    (tmp_path / "FAIL").unlink()
    summary = run_sweep(cfg, executor="ray", plot=False)
    assert (summary.n_run, summary.n_ok, summary.n_failed) == (2, 6, 0)
    assert len(executions(tmp_path / "log")) == 8


def test_without_matplotlib_or_ray(tmp_path, monkeypatch) -> None:
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg", "ray"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    lines: list[str] = []
    summary = run_sweep(toy_config(tmp_path), executor="local", log=lines.append)
    assert summary.n_ok == 6 and "plot" not in summary.files
    assert any(line.startswith("plot skipped") for line in lines)
    with pytest.raises(SweepError, match=r"needs Ray: `pip install gpuspike\[sweep\]`"):
        run_sweep(toy_config(tmp_path / "r"), executor="ray")
