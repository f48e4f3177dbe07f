"""Tests of gpuspike.datasets.binning against a direct loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gpuspike.bridge.errors import ModelError

from gpuspike.datasets.binning import bin_events
from gpuspike.datasets.events import SpikeDataset


def _dataset(seed: int = 0, n: int = 5, channels: int = 13) -> SpikeDataset:
    rng = np.random.default_rng(seed)
    times = [rng.uniform(0, 0.05, int(rng.integers(0, 80))) for _ in range(n)]
    units = [rng.integers(0, channels, len(t)) for t in times]
    return SpikeDataset(times, units, np.zeros(n), np.zeros(n), channels)


def _loop(d: SpikeDataset, dt: float, steps: int) -> np.ndarray:
    out = np.zeros((len(d), steps, d.n_channels), dtype=np.int64)
    for i in range(len(d)):
        for t, u in zip(d.times[i], d.units[i]):
            k = math.floor(t / dt)
            if k < steps:
                out[i, k, u] += 1
    return out


@pytest.mark.parametrize("dt", [1e-3, 7.3e-4, 5e-3])
def test_dense_matches_loop(dt) -> None:
    d = _dataset()
    dense = bin_events(d, dt)
    steps = math.floor(max(t.max() for t in d.times if len(t)) / dt) + 1
    assert dense.shape == (len(d), steps, d.n_channels) and dense.dtype == np.uint8
    np.testing.assert_array_equal(dense, _loop(d, dt, steps))


def test_duration_drops_late_spikes_and_sparse_agrees() -> None:
    d = _dataset(1)
    dense = bin_events(d, 2e-3, duration=0.02)
    assert dense.shape[1] == 10
    np.testing.assert_array_equal(dense, _loop(d, 2e-3, 10))
    sparse = bin_events(d, 2e-3, duration=0.02, dense=False)
    assert sparse.shape == dense.shape
    np.testing.assert_array_equal(sparse.to_dense(), dense)
    for i, (steps, chans) in enumerate(sparse.per_sample()):
        again = np.zeros(dense.shape[1:], dtype=np.int64)
        np.add.at(again, (steps, chans), 1)
        np.testing.assert_array_equal(again, dense[i])
        assert np.all(np.diff(steps) >= 0)


def test_overflow_asks_for_wider_dtype() -> None:
    d = SpikeDataset([np.full(300, 0.5)], [np.zeros(300, dtype=int)], np.zeros(1), np.zeros(1), 2)
    with pytest.raises(ModelError, match="uint16"):
        bin_events(d, 1.0)
    assert bin_events(d, 1.0, dtype=np.uint16)[0, 0, 0] == 300
