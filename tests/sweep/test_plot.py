"""Tests of gpuspike.sweep.plot: metric vs a swept key with error bars, saved as PNG."""

from __future__ import annotations

import pytest

from gpuspike.sweep.errors import SweepError
from gpuspike.sweep.plot import auto_logx, plot_groups

pytest.importorskip("matplotlib")

PNG = b"\x89PNG\r\n\x1a\n"


def group(mean: float, std: float = 0.01, n: int = 3, **params) -> dict:
    return {
        "params": params,
        "n_trials": n,
        "n_ok": n,
        "n_failed": 0,
        "metrics": {"test_acc": {"mean": mean, "std": std, "n": n}},
    }


def test_numeric_x_with_lines(tmp_path) -> None:
    groups = [
        group(0.5 + 0.1 * i + 0.05 * h, lr=lr, hidden=h)
        for i, lr in enumerate([1e-4, 1e-3, 1e-2])
        for h in (1, 2)
    ]
    path = plot_groups(groups, tmp_path / "sub" / "p.png", metric="test_acc", title="t")
    assert path.read_bytes()[:8] == PNG
    path = plot_groups(groups, tmp_path / "h.png", metric="test_acc", x="hidden", logx=False)
    assert path.read_bytes()[:8] == PNG


def test_categorical_and_no_grid(tmp_path) -> None:
    groups = [group(0.7, opt="adam"), group(0.6, opt="sgd")]
    assert plot_groups(groups, tmp_path / "c.png", metric="test_acc").read_bytes()[:8] == PNG
    assert plot_groups([group(0.8)], tmp_path / "one.png", "test_acc").read_bytes()[:8] == PNG


def test_missing_metric_or_bad_x(tmp_path) -> None:
    groups = [group(0.7, lr=0.1)]
    with pytest.raises(SweepError, match="no finished trial reported metric 'loss'"):
        plot_groups(groups, tmp_path / "x.png", metric="loss")
    with pytest.raises(SweepError, match="x = 'hidden' is not a grid key"):
        plot_groups(groups, tmp_path / "x.png", metric="test_acc", x="hidden")
    failed = [{**group(0.0, lr=0.1), "metrics": {}}]
    with pytest.raises(SweepError, match="no finished trial"):
        plot_groups(failed, tmp_path / "x.png", metric="test_acc")


def test_auto_logx() -> None:
    assert auto_logx([1e-4, 1e-3, 1e-2])
    assert not auto_logx([1, 2, 50])
    assert not auto_logx([0, 1, 1000])
    assert not auto_logx([])
