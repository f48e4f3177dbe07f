"""Tests of the history records, their CSV/JSON files and the confusion matrix."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from gpuspike.bridge.errors import ModelError
from gpuspike.engine.training.history import (
    BASE_COLUMNS,
    EpochRecord,
    History,
    confusion_matrix,
    flatten,
    infer_mode,
)


def _history() -> History:
    h = History()
    h.append(EpochRecord(0, 1.5, 0.3, 1.4, 0.35, 1e-3, 2.0, {"hidden": 3.25}, {"grazing": 2.0}))
    h.append(EpochRecord(1, 1.0, 0.6, None, None, 5e-4, 1.9, {"hidden": 4.0}, {"lifted": 7.0}))
    h.append({"epoch": 2, "train_loss": 0.9, "train_acc": 0.6, "val_acc": 0.6})
    return h


def test_csv_and_json_files(tmp_path) -> None:
    h = _history()
    csv_path, json_path = h.save(tmp_path)
    rows = list(csv.DictReader(csv_path.open()))
    header = next(csv.reader(csv_path.open()))
    assert tuple(header[: len(BASE_COLUMNS)]) == BASE_COLUMNS
    assert header[len(BASE_COLUMNS) :] == [
        "spikes_per_neuron.hidden",
        "diagnostics.grazing",
        "diagnostics.lifted",
    ]
    assert len(rows) == 3
    assert float(rows[0]["train_loss"]) == 1.5 and float(rows[1]["lr"]) == 5e-4
    assert rows[1]["val_loss"] == "" and rows[1]["diagnostics.grazing"] == ""
    assert float(rows[0]["spikes_per_neuron.hidden"]) == 3.25
    assert json.loads(json_path.read_text()) == h.records
    assert History(json.loads(json_path.read_text())).records == h.records


def test_columns_best_and_modes() -> None:
    h = _history()
    np.testing.assert_array_equal(h.column("val_acc"), [0.35, np.nan, 0.6])
    np.testing.assert_array_equal(h.column("spikes_per_neuron.hidden"), [3.25, 4.0, np.nan])
    assert h.best("val_acc") == (2, 0.6)
    assert h.best("train_loss") == (2, 0.9)
    assert h.best("train_acc") == (1, 0.6)  # first on ties
    assert h.best("missing") == (None, None)
    assert infer_mode("val_loss") == "min" and infer_mode("val_acc") == "max"
    assert flatten({"a": 1, "b": {"c": 2}}) == {"a": 1, "b.c": 2}
    copy = h.to_list()
    copy[0]["spikes_per_neuron"]["hidden"] = -1
    assert h[0]["spikes_per_neuron"]["hidden"] == 3.25
    with pytest.raises(ModelError, match="epoch"):
        h.append({"train_loss": 1.0})


def test_confusion_matrix_against_a_loop() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 200)
    p = np.where(rng.random(200) < 0.6, y, rng.integers(0, 5, 200))
    want = np.zeros((5, 5), dtype=np.int64)
    for a, b in zip(y, p):
        want[a, b] += 1
    got = confusion_matrix(y, p)
    np.testing.assert_array_equal(got, want)
    assert got.trace() == (y == p).sum()
    assert confusion_matrix(y, p, n_classes=7).shape == (7, 7)
    assert confusion_matrix(np.zeros(0, int), np.zeros(0, int), 3).sum() == 0
    with pytest.raises(ModelError, match="n_classes"):
        confusion_matrix(y, p, n_classes=3)
    with pytest.raises(ModelError, match="one prediction per example"):
        confusion_matrix(y, p[:-1])
