"""Tests of gpuspike.sweep.config: reading TOML/JSON sweep configs and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gpuspike.bridge.errors import GpuspikeError

from gpuspike.sweep.config import (
    DEFAULT_TRIAL,
    PlotSpec,
    Resources,
    load_sweep_config,
    parse_sweep_config,
)
from gpuspike.sweep.errors import SweepError
from gpuspike.sweep.trials import expand_trials

REPO = Path(__file__).resolve().parents[2]

FULL_TOML = """
name = "toy"
trial = "tests.sweep.toy_trial:quadratic"
output = "out/toy"
address = "auto"
metric = "test_acc"
mode = "min"
max_concurrent = 3
seeds = [0, 1]
folds = "loso"
speakers = ["ann", "bob"]

[base]
epochs = 2

[grid]
lr = [0.001, 0.01]
hidden = [8, 16]

[resources]
gpus_per_trial = 0.5
cpus_per_trial = 2

[plot]
x = "lr"
logx = false

[runtime_env]
env_vars = {A = "1"}
"""


def test_full_toml(tmp_path) -> None:
    path = tmp_path / "toy.toml"
    path.write_text(FULL_TOML)
    cfg = load_sweep_config(path)
    assert cfg.name == "toy"
    assert cfg.trial == "tests.sweep.toy_trial:quadratic"
    assert cfg.base == {"epochs": 2}
    assert cfg.grid == {"lr": (0.001, 0.01), "hidden": (8, 16)}
    assert cfg.seeds == (0, 1)
    assert cfg.folds == "loso" and cfg.speakers == ("ann", "bob")
    assert cfg.resources == Resources(gpus_per_trial=0.5, cpus_per_trial=2.0)
    assert cfg.address == "auto"
    assert cfg.output == Path("out/toy")
    assert (cfg.metric, cfg.mode, cfg.max_concurrent) == ("test_acc", "min", 3)
    assert cfg.plot == PlotSpec(x="lr", metric=None, logx=False)
    assert cfg.runtime_env == {"env_vars": {"A": "1"}}
    assert cfg.source == path
    assert json.loads(json.dumps(cfg.to_dict()))["grid"] == {"lr": [0.001, 0.01], "hidden": [8, 16]}
    with pytest.raises(AttributeError):
        cfg.name = "other"  # frozen


def test_json_and_defaults(tmp_path) -> None:
    path = tmp_path / "mini.json"
    path.write_text(json.dumps({"grid": {"lr": [0.1]}}))
    cfg = load_sweep_config(path)
    assert cfg.name == "mini"
    assert cfg.trial == DEFAULT_TRIAL
    assert cfg.output == Path("sweeps/mini")
    assert cfg.seeds is None and cfg.folds is None and cfg.speakers is None
    assert cfg.resources == Resources(1.0, 1.0)
    assert cfg.address is None and cfg.max_concurrent is None
    assert cfg.metric == "test_acc" and cfg.mode == "max"


def test_counts_expand() -> None:
    cfg = parse_sweep_config({"seeds": 3, "folds": "loso", "speakers": 4, "base": {"lr": 1}})
    assert cfg.seeds == (0, 1, 2)
    assert cfg.speakers == (0, 1, 2, 3)
    assert cfg.name == "sweep"


def test_example_loso_fsdd_config() -> None:
    cfg = load_sweep_config(REPO / "examples" / "sweeps" / "loso_fsdd.toml")
    assert cfg.trial == DEFAULT_TRIAL
    assert cfg.folds == "loso"
    assert cfg.speakers == (0, 1, 2, 3, 4, 5)  # ids of the sorted FSDD speaker names
    assert cfg.base["dataset"] == "shd" and cfg.base["progress"] is False
    n_grid = 1
    for values in cfg.grid.values():
        n_grid *= len(values)
    trials = expand_trials(cfg)
    assert len(trials) == n_grid * 6 * len(cfg.seeds or (None,))
    assert all(t.config["loso_speaker"] in cfg.speakers for t in trials)


def test_error_type() -> None:
    assert issubclass(SweepError, GpuspikeError) and issubclass(SweepError, ValueError)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"gird": {"lr": [1]}}, r"unknown key 'gird'; did you mean 'grid'"),
        ({"grid": {"lr": 0.1}}, r"grid\.lr must be a non-empty list"),
        ({"grid": {"lr": []}}, r"grid\.lr must be a non-empty list"),
        ({"grid": {"lr": [1, 1]}}, r"grid\.lr lists a value twice"),
        ({"base": {"lr": 1}, "grid": {"lr": [1, 2]}}, r"'lr' is both in base and in grid"),
        ({"base": {"seed": 1}, "seeds": [0, 1]}, r"'seed'.*drop"),
        ({"seeds": []}, r"seeds must be a non-empty list"),
        ({"seeds": [0, 0]}, r"seeds lists a seed twice"),
        ({"seeds": [0.5]}, r"seeds must be integers"),
        ({"seeds": 0}, r"seeds = 0 must be >= 1"),
        ({"folds": "loso"}, r"needs speakers"),
        ({"speakers": ["a", "b"]}, r"speakers is used only with folds = 'loso'"),
        ({"folds": "kfold", "speakers": 3}, r"folds must be one of"),
        ({"folds": "loso", "speakers": ["a"]}, r"at least 2"),
        ({"folds": "loso", "speakers": ["a", "a"]}, r"lists a speaker twice"),
        ({"folds": "loso", "speakers": 1}, r"at least 2 speakers"),
        (
            {"folds": "loso", "speakers": 3, "base": {"loso_speaker": 0}},
            r"'loso_speaker'",
        ),
        ({"trial": "nomodule"}, r"trial must be 'module:function'"),
        ({"trial": "m:not-an-id"}, r"trial must be 'module:function'"),
        (
            {"resources": {"gpus_per_trail": 1}},
            r"unknown key resources\.gpus_per_trail; did you mean 'gpus_per_trial'",
        ),
        ({"resources": {"gpus_per_trial": -1}}, r"resources\.gpus_per_trial must be a number"),
        ({"resources": {"gpus_per_trial": 1.5}}, r"above 1 must be whole"),
        ({"mode": "best"}, r"mode must be 'max' or 'min'"),
        ({"max_concurrent": 0}, r"max_concurrent must be a positive integer"),
        ({"base": [1]}, r"base must be a table"),
        ({"base": {"x": float("nan")}}, r"base\.x = nan is not plain data"),
        ({"grid": {"lr": [1]}, "plot": {"x": "hidden"}}, r"plot\.x = 'hidden' is not a grid key"),
        ({"plot": {"logx": "yes"}}, r"plot\.logx must be true or false"),
        ({"plot": {"y": "acc"}}, r"unknown key plot\.y"),
        ({"address": 5}, r"address must be a string"),
        ({"runtime_env": "x"}, r"runtime_env must be a table"),
    ],
)
def test_config_errors(data, match) -> None:
    with pytest.raises(SweepError, match=match):
        parse_sweep_config(data, source="bad.toml")


def test_file_errors(tmp_path) -> None:
    with pytest.raises(SweepError, match="does not exist"):
        load_sweep_config(tmp_path / "missing.toml")
    yaml = tmp_path / "s.yaml"
    yaml.write_text("grid: {}")
    with pytest.raises(SweepError, match=r"write it as \.toml or \.json"):
        load_sweep_config(yaml)
    broken = tmp_path / "s.toml"
    broken.write_text("grid = [")
    with pytest.raises(SweepError, match="is not valid TOML"):
        load_sweep_config(broken)
    broken_json = tmp_path / "s.json"
    broken_json.write_text("[1, 2]")
    with pytest.raises(SweepError, match="must hold a table"):
        load_sweep_config(broken_json)
    dated = tmp_path / "d.toml"
    dated.write_text("[base]\nwhen = 1979-05-27\n")
    with pytest.raises(SweepError, match=r"base\.when .* is not plain data"):
        load_sweep_config(dated)
