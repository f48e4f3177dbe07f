"""Smoke tests of the PNG figures (curves, confusion matrix, raster)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from gpuspike.bridge.errors import ModelError  # noqa: E402
from gpuspike.engine.training.plots import (  # noqa: E402
    plot_confusion,
    plot_raster,
    plot_training_curves,
)

PNG = b"\x89PNG\r\n\x1a\n"


def test_figures_are_pngs(tmp_path) -> None:
    history = [
        {"epoch": e, "train_loss": 1 / (e + 1), "train_acc": 0.5 + 0.1 * e, "val_loss": None}
        for e in range(3)
    ]
    rng = np.random.default_rng(0)
    paths = [
        plot_training_curves(history, tmp_path / "curves.png", title="run"),
        plot_confusion(rng.integers(0, 9, (4, 4)), tmp_path / "sub" / "cm.png"),
        plot_raster(
            {"hidden": (rng.integers(0, 100, 50), rng.integers(0, 16, 50)), "out": ([], [])},
            tmp_path / "raster.png",
            dt=1e-3,
            sizes={"out": 3},
        ),
    ]
    for p in paths:
        assert p.read_bytes()[:8] == PNG


def test_bad_inputs() -> None:
    with pytest.raises(ModelError):
        plot_training_curves([], "x.png")
    with pytest.raises(ModelError, match="square"):
        plot_confusion(np.zeros((2, 3)), "x.png")
    with pytest.raises(ModelError):
        plot_raster({}, "x.png")
