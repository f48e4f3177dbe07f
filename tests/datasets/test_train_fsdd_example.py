"""``examples/datasets/train_fsdd.py`` end to end on a small slice of the real recordings."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "datasets" / "train_fsdd.py"


def _example():
    spec = importlib.util.spec_from_file_location("train_fsdd_example", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("loso", [None, 3])
def test_example_runs_end_to_end(fsdd_dir, tmp_path, monkeypatch, capsys, loso):
    # takes 0-7 of digits 0-3 of every speaker: the official split tests takes 0-4
    rec = tmp_path / "recordings"
    rec.mkdir()
    for wav in sorted(fsdd_dir.glob("*.wav")):
        digit, _, take = wav.stem.split("_")
        if int(digit) < 4 and int(take) < 8:
            (rec / wav.name).symlink_to(wav)
    args = [str(EXAMPLE), "--recordings", str(rec), "--work", str(tmp_path / "work"),
            "--channels", "40", "--pool", "2", "--epochs", "1", "--hidden", "16",
            "--dt", "0.01", "--blend", "8", "--shift", "2", "--engine", "numpy"]
    if loso is not None:
        args += ["--loso-speaker", str(loso), "--align-onset", "0.05", "--time-scale", "0.1",
                 "--rule", "eprop"]
    monkeypatch.setattr(sys, "argv", args)
    _example().main()
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["split"] == ("official" if loso is None else f"loso:{loso}")
    assert result["epochs"] == 1
    cfg = result["config"]
    assert (cfg["augment_blend"], cfg["augment_shift"]) == (8, 2)
    if loso is not None:
        assert (cfg["align_onset"], cfg["augment_time_scale"]) == (0.05, 0.1)
    assert result["rule"] == cfg["rule"] == ("eventprop" if loso is None else "eprop")
    assert 0.0 <= result["test_acc"] <= 1.0
    assert result["config"]["pool_channels"] == 2
    assert (tmp_path / "work" / "fsdd_40.h5").is_file()
    assert (tmp_path / "work" / "checkpoint" / "last.json").is_file()
