"""Tests of gpuspike.datasets.fsdd: file names, the official split and LOSO folds."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.io import wavfile

from gpuspike.datasets.encode import DIGIT_NAMES
from gpuspike.datasets.errors import DatasetError
from gpuspike.datasets.events import SpikeDataset
from gpuspike.datasets.fsdd import (
    FsddName,
    fsdd_takes,
    labels_speakers_takes,
    list_fsdd,
    load_fsdd_spikes,
    loso_folds,
    official_split,
    parse_fsdd_name,
    recordings_dir,
)


def test_parse_names() -> None:
    assert parse_fsdd_name("7_yweweler_49.wav") == FsddName(7, "yweweler", 49)
    assert parse_fsdd_name("/x/y/0_george_0.wav") == FsddName(0, "george", 0)
    assert parse_fsdd_name("readme.txt") is None
    assert parse_fsdd_name("12_a_1.wav") is None


def test_synthetic_split_and_folds() -> None:
    names = [f"{d}_{s}_{i}.wav" for d in range(10) for s in ("a", "b", "c") for i in range(50)]
    _labels, speakers, takes = labels_speakers_takes(names)
    train, test = official_split(takes)
    assert len(test) == 150 and len(train) == 1350
    assert np.all(takes[test] < 5) and np.all(takes[train] >= 5)
    folds = loso_folds(speakers)
    assert len(folds) == 3
    held = np.concatenate([f[1] for f in folds])
    assert sorted(held.tolist()) == list(range(len(names)))  # the held-out sets partition
    for tr, ho in folds:
        assert len(set(speakers[ho])) == 1 and set(speakers[ho]).isdisjoint(speakers[tr])


def test_missing_folder_and_env(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("GPUSPIKE_FSDD", raising=False)
    with pytest.raises(DatasetError, match="GPUSPIKE_FSDD"):
        recordings_dir()
    with pytest.raises(DatasetError, match="does not exist"):
        recordings_dir(tmp_path / "nope")
    with pytest.raises(DatasetError, match="no files named"):
        list_fsdd(tmp_path)
    (tmp_path / "recordings").mkdir()
    monkeypatch.setenv("GPUSPIKE_FSDD", str(tmp_path))
    assert recordings_dir() == tmp_path / "recordings"


def test_real_fsdd_split(fsdd_dir) -> None:
    files = list_fsdd(fsdd_dir)
    assert len(files) == 3000
    labels, speakers, takes = labels_speakers_takes(files)
    train, test = official_split(takes)
    assert len(test) == 300 and len(train) == 2700
    folds = loso_folds(speakers)
    assert len(folds) == 6 and all(len(ho) == 500 for _, ho in folds)
    assert np.bincount(labels).tolist() == [300] * 10


def test_load_fsdd_spikes_from_a_small_folder(tmp_path) -> None:
    rec = tmp_path / "recordings"
    rec.mkdir()
    t = np.arange(2000) / 8000
    for name, f in [("3_amy_0.wav", 400), ("3_amy_9.wav", 500), ("5_ben_2.wav", 1200)]:
        wavfile.write(rec / name, 8000, (0.3 * np.sin(2 * np.pi * f * t) * 32767).astype(np.int16))
    d = load_fsdd_spikes(tmp_path, channels=16, cache=tmp_path / "cache", workers=1)
    assert len(d) == 3 and d.n_channels == 16
    assert d.labels.tolist() == [3, 3, 5] and d.speakers.tolist() == [0, 0, 1]
    assert fsdd_takes(d).tolist() == [0, 9, 2] and all(len(x) > 0 for x in d.times)
    assert d.files == ["3_amy_0.wav", "3_amy_9.wav", "5_ben_2.wav"]
    assert d.keys == DIGIT_NAMES and d.keys[int(d.labels[2])] == "five"
    assert fsdd_takes(d.subset([2, 0])).tolist() == [2, 0]
    with pytest.raises(DatasetError, match="per-sample file names"):
        fsdd_takes(SpikeDataset(d.times, d.units, d.labels, d.speakers, 16, keys=d.keys))
