"""Tests of gpuspike.datasets.baseline: the ridge classifier on binned counts."""

from __future__ import annotations

import numpy as np

from gpuspike.datasets.baseline import (
    choose_lambda,
    count_features,
    fit_ridge,
    loso_accuracy,
    ridge_accuracy,
    ridge_baseline,
)
from gpuspike.datasets.events import SpikeDataset


def _separable(n_per_class: int = 20, seed: int = 0) -> SpikeDataset:
    """Class c fires on channels [10 c, 10 c + 10) early and channel 39 - c late."""
    rng = np.random.default_rng(seed)
    times, units, labels, speakers = [], [], [], []
    for c in range(3):
        for i in range(n_per_class):
            k = 30
            t = np.concatenate([rng.uniform(0, 0.4, k), rng.uniform(0.6, 1.0, 5)])
            u = np.concatenate([rng.integers(10 * c, 10 * c + 10, k), np.full(5, 39 - c)])
            o = np.argsort(t)
            times.append(t[o])
            units.append(u[o])
            labels.append(c)
            speakers.append(i % 4)
    return SpikeDataset(times, units, np.array(labels), np.array(speakers), 40)


def test_count_features_count_every_spike() -> None:
    d = _separable()
    x = count_features(d, time_bins=4, channel_groups=8, log=False)
    assert x.shape == (len(d), 32)
    np.testing.assert_array_equal(x.sum(axis=1), d.spike_counts)
    x_abs = count_features(d, time_bins=4, channel_groups=8, relative_time=False, log=False)
    np.testing.assert_array_equal(x_abs.sum(axis=1), d.spike_counts)


def test_ridge_separates_separable_classes() -> None:
    d = _separable()
    x = count_features(d, time_bins=4, channel_groups=8)
    idx = np.arange(len(d))
    train, test = idx[idx % 2 == 0], idx[idx % 2 == 1]
    assert ridge_accuracy(x, d.labels, train, test, lam=1.0) == 1.0
    mean, per = loso_accuracy(x, d.labels, d.speakers, lam=1.0)
    assert mean == 1.0 and len(per) == 4


def test_ridge_closed_form() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4))
    y = rng.integers(0, 3, 50)
    m = fit_ridge(x, y, lam=2.0)
    z = np.hstack([(x - x.mean(0)) / x.std(0), np.ones((50, 1))])
    w = np.linalg.inv(z.T @ z + 2.0 * np.eye(5)) @ z.T @ np.eye(3)[y]
    np.testing.assert_allclose(m.weights, w, atol=1e-10)


def test_lambda_chosen_without_test_samples() -> None:
    d = _separable()
    x = count_features(d, time_bins=4, channel_groups=8)
    lam = choose_lambda(x, d.labels, d.speakers, lams=(0.1, 1.0))
    assert lam in (0.1, 1.0)
    idx = np.arange(len(d))
    report = ridge_baseline(
        x, d.labels, d.speakers, idx[idx % 2 == 0], idx[idx % 2 == 1], lams=(0.1, 1.0)
    )
    assert report["official_split_accuracy"] == 1.0 and report["loso_mean_accuracy"] == 1.0
    assert len(report["loso_per_speaker"]) == 4


def test_relative_time_ignores_leading_silence() -> None:
    d = _separable(n_per_class=2)
    late = SpikeDataset([t + 0.3 for t in d.times], d.units, d.labels, d.speakers, 40)
    np.testing.assert_array_equal(count_features(d), count_features(late))
