"""Tests of ``gpuspike sweep CONFIG``: summary line, exit codes, overrides, dry run."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpuspike.cli import main

TOML = """
name = "cli_toy"
trial = "tests.sweep.toy_trial:quadratic"
output = "{out}"
seeds = 2

[base]
fail_flag = "{flag}"
fail_lr = 0.03

[grid]
lr = [0.001, 0.03]
"""


def write_config(tmp_path) -> str:
    path = tmp_path / "s.toml"
    path.write_text(TOML.format(out=tmp_path / "default_out", flag=tmp_path / "FAIL"))
    return str(path)


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def test_cli_local_run_and_dry_run(tmp_path, capsys) -> None:
    cfg = write_config(tmp_path)
    out = tmp_path / "out"
    assert main(["sweep", cfg, "--dry-run", "--output", str(out)]) == 0
    listing = last_json(capsys.readouterr().out)
    assert (listing["trials"], listing["done"]) == (4, 0)
    code = main(["sweep", cfg, "--executor", "local", "--output", str(out), "--no-plot"])
    captured = capsys.readouterr()
    assert code == 0
    summary = last_json(captured.out)
    assert (summary["trials"], summary["ok"], summary["ran"]) == (4, 4, 4)
    assert summary["output"] == str(out) and "plot" not in summary["files"]
    assert "[4/4]" in captured.err
    assert (out / "results.csv").exists() and not (tmp_path / "default_out").exists()
    assert main(["sweep", cfg, "--dry-run", "--output", str(out)]) == 0
    assert last_json(capsys.readouterr().out)["done"] == 4


def test_cli_failures_exit_1(tmp_path, capsys) -> None:
    cfg = write_config(tmp_path)
    (tmp_path / "FAIL").touch()
    assert main(["sweep", cfg, "--executor", "local", "--quiet"]) == 1
    captured = capsys.readouterr()
    assert captured.err == ""
    assert last_json(captured.out)["failed"] == 2


def test_cli_config_error_exit_2(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[grid]\nlr = 0.1\n")
    assert main(["sweep", str(bad), "--executor", "local"]) == 2
    captured = capsys.readouterr()
    assert "grid.lr must be a non-empty list" in captured.err
    assert "error" in last_json(captured.out)


@pytest.mark.xdist_group("ray")  # one Ray session under --dist loadgroup
def test_cli_ray(tmp_path, capsys, ray_session) -> None:
    cfg = write_config(tmp_path)
    code = main(["sweep", cfg, "--output", str(tmp_path / "r"), "--max-concurrent", "2"])
    assert code == 0
    summary = last_json(capsys.readouterr().out)
    assert (summary["executor"], summary["ok"]) == ("ray", 4)
    if importlib.util.find_spec("matplotlib") is not None:
        assert summary["files"]["plot"].endswith("plot.png")


@pytest.mark.xdist_group("ray")  # one Ray session under --dist loadgroup
def test_cli_starts_and_stops_its_own_ray(tmp_path) -> None:
    """A fresh ``gpuspike sweep`` process starts a local Ray itself, runs, shuts it down."""
    pytest.importorskip("ray")
    repo = Path(__file__).resolve().parents[2]
    cfg = write_config(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(repo), "RAY_ADDRESS": ""}
    args = [sys.executable, "-m", "gpuspike.cli", "sweep", cfg, "--no-plot"]
    args += ["--output", str(tmp_path / "own")]
    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = last_json(done.stdout)
    assert (summary["executor"], summary["ok"], summary["ran"]) == ("ray", 4, 4)
    assert "ray: " in done.stderr and "[4/4]" in done.stderr
