"""Toy trial functions of the sweep tests: closed-form metrics, executions logged to files."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np

SPEAKERS = ("ann", "bob", "cy")


def expected_acc(lr: float, seed: int | None = None, fold: Any = None) -> float:
    """The test accuracy :func:`quadratic` reports: a parabola in lr plus seed/fold offsets."""
    acc = 0.9 - 100.0 * (lr - 0.01) ** 2
    if seed is not None:
        acc += 0.01 * seed
    if fold is not None:
        acc -= 0.02 * (SPEAKERS.index(fold) if isinstance(fold, str) else fold)
    return acc


def _log(config: dict[str, Any]) -> None:
    log_dir = config.get("log_dir")
    if log_dir:
        path = Path(log_dir) / f"{uuid.uuid4().hex}.json"
        path.write_text(json.dumps(config))


def executions(log_dir: Path) -> list[dict[str, Any]]:
    """Configs of every call the toy trials logged to ``log_dir``."""
    return [json.loads(p.read_text()) for p in sorted(Path(log_dir).glob("*.json"))]


def quadratic(config: dict[str, Any]) -> dict[str, Any]:
    """Metrics from ``lr``, ``seed`` and ``loso_speaker``.

    Raises RuntimeError at ``lr == fail_lr`` while the file ``fail_flag`` exists, and
    KeyboardInterrupt at ``lr == stop_lr`` while ``stop_flag`` exists.
    """
    _log(config)
    stop = config.get("stop_flag")
    if stop and Path(stop).exists() and config.get("lr") == config.get("stop_lr"):
        raise KeyboardInterrupt  # as if the sweep were killed during this trial
    flag = config.get("fail_flag")
    if flag and Path(flag).exists() and config.get("lr") == config.get("fail_lr"):
        raise RuntimeError(f"toy failure at lr={config['lr']}")
    acc = expected_acc(config["lr"], config.get("seed"), config.get("loso_speaker"))
    return {
        "test_acc": np.float64(acc),
        "train_acc": acc + 0.05,
        "epochs": np.int64(config.get("epochs", 1)),
        "curve": np.linspace(0.0, acc, 3),
        "note": "toy",
    }


def not_a_dict(config: dict[str, Any]) -> list[float]:
    """A broken trial: returns a list instead of a dict."""
    return [1.0]
