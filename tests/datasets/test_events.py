"""Tests of gpuspike.datasets.events: the SpikeDataset record and tonic-style arrays."""

from __future__ import annotations

import numpy as np
import pytest
from gpuspike.bridge.errors import ModelError

from gpuspike.datasets.events import (
    TONIC_AUDIO_DTYPE,
    SpikeDataset,
    from_structured,
    to_structured,
)


def _dataset() -> SpikeDataset:
    return SpikeDataset(
        times=[np.array([0.0015, 0.2, 0.2]), np.array([], dtype=float)],
        units=[np.array([3, 0, 9]), np.array([], dtype=np.int64)],
        labels=np.array([1, 2]),
        speakers=np.array([0, 1]),
        n_channels=10,
        keys=["zero", "one", "two"],
        files=["a.wav", "b.wav"],
    )


def test_structured_fields_follow_tonic() -> None:
    ev = to_structured(_dataset().sample(0))
    assert ev.dtype == TONIC_AUDIO_DTYPE
    assert ev["t"].tolist() == [1500, 200000, 200000]  # microseconds
    assert ev["x"].tolist() == [3, 0, 9]
    assert ev["p"].tolist() == [0, 0, 0]
    t, u = from_structured(ev)
    np.testing.assert_allclose(t, [0.0015, 0.2, 0.2])
    assert u.tolist() == [3, 0, 9]


def test_structured_rejects_unequal_lengths() -> None:
    with pytest.raises(ModelError, match="equal length"):
        to_structured((np.zeros(3), np.zeros(2, dtype=int)))


def test_dataset_checks_lengths_and_subsets() -> None:
    d = _dataset()
    assert len(d) == 2 and d.spike_counts.tolist() == [3, 0]
    assert d.durations().tolist() == [0.2, 0.0]
    sub = d.subset([1])
    assert sub.files == ["b.wav"] and sub.labels.tolist() == [2]
    assert sub.keys == ["zero", "one", "two"]  # class names are not per-sample
    with pytest.raises(ModelError, match="times"):
        SpikeDataset([np.zeros(2)], [np.zeros(1, dtype=int)], np.zeros(1), np.zeros(1), 4)
    with pytest.raises(ModelError, match="1 files for 2 samples"):
        SpikeDataset(d.times, d.units, d.labels, d.speakers, 10, files=["a.wav"])
    assert SpikeDataset(d.times, d.units, d.labels, d.speakers, 10).files == []


def test_subset_keeps_class_names_when_samples_equal_classes() -> None:
    """Ten samples, ten classes (one per class): keys are class names, not per-sample."""
    names = [str(c) for c in range(10)]
    d = SpikeDataset(
        [np.array([0.01 * c]) for c in range(10)],
        [np.array([c]) for c in range(10)],
        np.arange(10),
        np.full(10, -1),
        10,
        keys=names,
    )
    sub = d.subset([7, 2])
    assert sub.keys == names and sub.files == [] and sub.labels.tolist() == [7, 2]
    assert sub.keys[int(sub.labels[0])] == "7"


@pytest.mark.parametrize("k", [1, 3, 4, 10])
def test_pool_channels_sums_neighbouring_channels(k) -> None:
    from gpuspike.datasets.binning import bin_events

    rng = np.random.default_rng(3)
    times = [np.sort(rng.uniform(0, 0.1, 200)) for _ in range(3)]
    units = [rng.integers(0, 10, 200) for _ in range(3)]
    ds = SpikeDataset(times, units, np.array([0, 1, 2]), np.array([0, 0, 1]), 10,
                      ["a", "b", "c"], ["x", "y", "z"])
    pooled = ds.pool_channels(k)
    n_out = -(-10 // k)
    assert pooled.n_channels == n_out
    fine = bin_events(ds, 0.01, 0.1).astype(np.int64)         # (samples, steps, 10)
    coarse = bin_events(pooled, 0.01, 0.1).astype(np.int64)
    want = np.zeros(fine.shape[:2] + (n_out,), dtype=np.int64)
    for c in range(10):
        want[..., c // k] += fine[..., c]
    np.testing.assert_array_equal(coarse, want)
    assert pooled.keys == ds.keys and pooled.files == ds.files
    np.testing.assert_array_equal(pooled.labels, ds.labels)


def test_pool_channels_refuses_zero() -> None:
    with pytest.raises(ValueError, match=">= 1"):
        _dataset().pool_channels(0)


def test_align_onset_moves_each_sample_to_its_quantile():
    from gpuspike.datasets.events import SpikeDataset

    t1 = np.array([0.100, 0.110, 0.120, 0.130, 0.500], np.float32)
    t2 = np.array([0.020, 0.300, 0.310], np.float64)
    ds = SpikeDataset([t1, t2, np.zeros(0, np.float32)],
                      [np.arange(5), np.array([3, 1, 2]), np.zeros(0, np.int64)],
                      np.array([0, 1, 2]), np.array([0, 0, 1]), 8)
    first = ds.align_onset(0.0, margin=0.01)
    np.testing.assert_allclose(first.times[0], t1 - 0.100 + 0.01, atol=1e-7)
    np.testing.assert_allclose(first.times[1], t2 - 0.020 + 0.01)
    assert first.times[0].dtype == np.float32 and len(first.times[2]) == 0
    # quantile 0.5 of t2 is 0.300: the spike at 0.020 would land at -0.27 and is dropped
    half = ds.align_onset(0.5, margin=0.01)
    np.testing.assert_allclose(half.times[1], [0.010, 0.020])
    assert half.units[1].tolist() == [1, 2]
    # median of t1 is 0.120: 0.100 -> -0.010 (dropped), the rest move by -0.110
    np.testing.assert_allclose(half.times[0], [0.0, 0.010, 0.020, 0.390], atol=1e-7)
    assert half.units[0].tolist() == [1, 2, 3, 4]
    assert half.labels.tolist() == [0, 1, 2] and half.n_channels == 8
    with pytest.raises(ValueError, match="quantile"):
        ds.align_onset(1.0)
    with pytest.raises(ValueError, match="margin"):
        ds.align_onset(0.1, margin=-1)


def test_normalise_span_maps_each_core_onto_the_same_span():
    from gpuspike.datasets.events import SpikeDataset

    fast = np.array([0.10, 0.11, 0.12, 0.13, 0.14, 0.15], np.float32)   # 50 ms core
    slow = np.array([0.05, 0.15, 0.25, 0.35, 0.45], np.float64)          # 400 ms core
    ds = SpikeDataset([fast, slow, np.zeros(0, np.float32)],
                      [np.arange(6), np.arange(5), np.zeros(0, np.int64)],
                      np.array([0, 1, 2]), np.array([0, 1, 1]), 8)
    out = ds.normalise_span(0.2, quantile=0.0, margin=0.01)
    np.testing.assert_allclose(out.times[0], 0.01 + (fast - 0.10) * 4.0, atol=1e-6)
    np.testing.assert_allclose(out.times[1], 0.01 + (slow - 0.05) * 0.5)
    assert out.times[0].dtype == np.float32 and len(out.times[2]) == 0
    assert out.units[0].tolist() == list(range(6)) and out.n_channels == 8
    # quantile 0.25 of slow: 0.15 -> margin; 0.75: 0.35 -> margin + span; 0.05 is dropped
    q = ds.normalise_span(0.2, quantile=0.25, margin=0.0)
    np.testing.assert_allclose(q.times[1], [0.0, 0.1, 0.2, 0.3])
    assert q.units[1].tolist() == [1, 2, 3, 4]
    # a sample whose core has no length is only moved
    one = SpikeDataset([np.array([0.3, 0.3])], [np.array([0, 1])], np.array([0]),
                       np.array([0]), 2).normalise_span(0.5, quantile=0.0, margin=0.01)
    np.testing.assert_allclose(one.times[0], [0.01, 0.01])
    for bad in (dict(span=0.0), dict(span=0.1, quantile=0.5), dict(span=0.1, margin=-1)):
        with pytest.raises(ValueError):
            ds.normalise_span(**bad)
