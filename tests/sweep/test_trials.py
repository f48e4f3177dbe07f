"""Tests of gpuspike.sweep.trials: expansion into trials and their stable ids."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

from gpuspike.sweep.config import parse_sweep_config
from gpuspike.sweep.trials import ID_LENGTH, canonical_json, expand_trials, trial_id

TOY = "tests.sweep.toy_trial:quadratic"


def test_expand_grid_folds_seeds() -> None:
    cfg = parse_sweep_config(
        {
            "trial": TOY,
            "base": {"epochs": 3},
            "grid": {"lr": [0.1, 0.2], "hidden": [8, 16, 32]},
            "seeds": [0, 1],
            "folds": "loso",
            "speakers": ["ann", "bob"],
        }
    )
    trials = expand_trials(cfg)
    assert len(trials) == 2 * 3 * 2 * 2
    assert len({t.id for t in trials}) == len(trials)
    first = trials[0]
    assert first.config == {"epochs": 3, "lr": 0.1, "hidden": 8, "loso_speaker": "ann", "seed": 0}
    assert first.params == {"lr": 0.1, "hidden": 8}
    assert (first.seed, first.fold, first.trial) == (0, "ann", TOY)
    # nesting: grid (as written) > speakers > seeds
    assert [(t.fold, t.seed) for t in trials[:4]] == [
        ("ann", 0),
        ("ann", 1),
        ("bob", 0),
        ("bob", 1),
    ]
    assert trials[4].params == {"lr": 0.1, "hidden": 16}
    # one group per grid point, averaged over folds and seeds
    groups = {t.group for t in trials}
    assert len(groups) == 6
    assert trials[0].group == trials[3].group != trials[4].group


def test_no_grid_is_one_trial() -> None:
    trials = expand_trials(parse_sweep_config({"base": {"lr": 0.1}}))
    assert len(trials) == 1
    assert trials[0].config == {"lr": 0.1}
    assert trials[0].params == {} and trials[0].seed is None and trials[0].fold is None


def test_id_is_hash_of_canonical_json() -> None:
    config = {"b": [1, 2], "a": 0.001}
    text = canonical_json({"trial": TOY, "config": config})
    assert text == '{"config":{"a":0.001,"b":[1,2]},"trial":"tests.sweep.toy_trial:quadratic"}'
    assert trial_id(TOY, config) == hashlib.sha256(text.encode()).hexdigest()[:ID_LENGTH]
    assert trial_id(TOY, {"a": 0.001, "b": [1, 2]}) == trial_id(TOY, config)  # key order
    assert trial_id(TOY, {"a": 1}) != trial_id(TOY, {"a": 1.0})
    assert trial_id(TOY, config) != trial_id("other:fn", config)


def test_id_stable_across_processes() -> None:
    config = {"lr": 0.01, "seed": 3, "loso_speaker": "theo"}
    code = (
        "import json, sys; from gpuspike.sweep.trials import trial_id; "
        f"print(trial_id({TOY!r}, json.loads(sys.argv[1])))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(config)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
    )
    assert out.stdout.strip() == trial_id(TOY, config)


def test_reexpansion_gives_same_ids() -> None:
    data = {"trial": TOY, "grid": {"lr": [0.1, 0.2]}, "seeds": 2}
    assert [t.id for t in expand_trials(parse_sweep_config(data))] == [
        t.id for t in expand_trials(parse_sweep_config(json.loads(json.dumps(data))))
    ]
