"""Per-epoch training records, written to CSV and JSON, and the confusion matrix.

A record is a dict with ``epoch``, ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``
(``None`` without validation), ``test_loss``, ``test_acc`` (``None`` except at the epochs
where ``fit(test_every=N)`` evaluated the test set), ``lr`` (rate of the epoch's last
batch), ``epoch_time_s``,
``spikes_per_neuron`` (population -> mean spikes per neuron and example) and
``diagnostics`` (name -> counter). The CSV flattens the two dicts into columns
``spikes_per_neuron.<population>`` and ``diagnostics.<name>``.
"""

from __future__ import annotations

import copy
import csv
import io
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gpuspike.bridge.errors import ModelError

from .checkpoint import atomic_write_bytes, to_json_bytes

#: Columns that lead every CSV, in this order.
BASE_COLUMNS = (
    "epoch",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "test_loss",
    "test_acc",
    "lr",
    "epoch_time_s",
)


@dataclass
class EpochRecord:
    """What one epoch of training reports (see the module docstring for the fields)."""

    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float | None = None
    val_acc: float | None = None
    lr: float = math.nan
    epoch_time_s: float = math.nan
    spikes_per_neuron: dict[str, float] = field(default_factory=dict)
    diagnostics: dict[str, float] = field(default_factory=dict)
    test_loss: float | None = None
    test_acc: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The record as a plain (JSON-serialisable) dict."""
        return asdict(self)


def flatten(record: Mapping[str, Any]) -> dict[str, Any]:
    """One level of nested dicts flattened: ``{"a": {"b": 1}} -> {"a.b": 1}``."""
    out: dict[str, Any] = {}
    for k, v in record.items():
        if isinstance(v, Mapping):
            for k2, v2 in v.items():
                out[f"{k}.{k2}"] = v2
        else:
            out[k] = v
    return out


def infer_mode(monitor: str) -> str:
    """``"min"`` for a metric whose name contains ``loss``, ``"max"`` otherwise."""
    return "min" if "loss" in monitor else "max"


class History:
    """An ordered list of epoch records.

    Parameters
    ----------
    records : iterable of dict or EpochRecord, optional
        Records to start from (e.g. from a checkpoint).
    """

    def __init__(self, records: Iterable[Mapping[str, Any] | EpochRecord] = ()) -> None:
        self.records: list[dict[str, Any]] = []
        for r in records:
            self.append(r)

    def append(self, record: Mapping[str, Any] | EpochRecord) -> dict[str, Any]:
        """Add a record (copied) and return it as a dict."""
        rec = record.as_dict() if isinstance(record, EpochRecord) else copy.deepcopy(dict(record))
        if "epoch" not in rec:
            raise ModelError("a history record needs an 'epoch' entry")
        self.records.append(rec)
        return rec

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.records[i]

    def to_list(self) -> list[dict[str, Any]]:
        """Deep copies of the records."""
        return copy.deepcopy(self.records)

    def column(self, name: str) -> np.ndarray:
        """Float array of one (flattened) column; NaN where a record lacks it or has None."""
        out = []
        for r in self.records:
            v = flatten(r).get(name)
            out.append(math.nan if v is None else float(v))
        return np.array(out, dtype=np.float64)

    def best(self, monitor: str, mode: str | None = None) -> tuple[int | None, float | None]:
        """``(epoch, value)`` of the best finite ``monitor`` value (first one on ties).

        ``mode`` defaults to :func:`infer_mode`; ``(None, None)`` if no value is finite.
        """
        mode = mode or infer_mode(monitor)
        values = self.column(monitor)
        ok = np.isfinite(values)
        if not ok.any():
            return None, None
        scored = np.where(ok, values if mode == "max" else -values, -np.inf)
        i = int(np.argmax(scored))
        return int(self.records[i]["epoch"]), float(values[i])

    def columns(self) -> list[str]:
        """CSV header: :data:`BASE_COLUMNS`, then other keys in order of first appearance."""
        cols = list(BASE_COLUMNS)
        for r in self.records:
            for k in flatten(r):
                if k not in cols:
                    cols.append(k)
        return cols

    def to_csv(self) -> str:
        """The records as CSV text (``None`` and missing values are empty cells)."""
        cols = self.columns()
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        for r in self.records:
            flat = flatten(r)
            w.writerow(["" if flat.get(c) is None else flat[c] for c in cols])
        return buf.getvalue()

    def save(self, directory: str | os.PathLike, stem: str = "history") -> tuple[Path, Path]:
        """Write ``<stem>.csv`` and ``<stem>.json`` atomically into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        csv_path = atomic_write_bytes(directory / f"{stem}.csv", self.to_csv().encode())
        json_path = atomic_write_bytes(directory / f"{stem}.json", to_json_bytes(self.records))
        return csv_path, json_path


def confusion_matrix(
    labels: np.ndarray, predictions: np.ndarray, n_classes: int | None = None
) -> np.ndarray:
    """Count matrix ``C[i, j]`` = number of examples of true class ``i`` predicted as ``j``.

    Computed as ``bincount(i * K + j, minlength=K^2).reshape(K, K)``; ``K`` defaults to
    ``max(labels, predictions) + 1``.

    Parameters
    ----------
    labels, predictions : numpy.ndarray
        Integer classes, same length.
    n_classes : int, optional
        ``K``.

    Returns
    -------
    numpy.ndarray
        ``(K, K)`` int64 array; row sums are the class counts, the trace the correct ones.
    """
    y = np.asarray(labels, dtype=np.int64).ravel()
    p = np.asarray(predictions, dtype=np.int64).ravel()
    if y.shape != p.shape:
        raise ModelError(
            f"confusion_matrix got {len(y)} labels but {len(p)} predictions; pass one "
            "prediction per example"
        )
    top = int(max(y.max(initial=-1), p.max(initial=-1))) + 1
    k = top if n_classes is None else int(n_classes)
    if top > k or (len(y) and min(y.min(), p.min()) < 0):
        raise ModelError(
            f"classes must lie in [0, {k}) but labels/predictions reach {top - 1} (or are "
            "negative); pass a larger n_classes"
        )
    return np.bincount(y * k + p, minlength=k * k).reshape(k, k)
