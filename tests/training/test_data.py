"""Tests of BatchLoader: dense counts against a direct loop, coverage, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gpuspike.bridge.errors import ModelError
from gpuspike.engine.training.data import BatchLoader, channel_factor, dense_counts
from gpuspike.engine.training.optim import to_host

from gpuspike.datasets import augment as A
from gpuspike.datasets.events import SpikeDataset
from tests.training.fakes import DT, N_CHANNELS, N_STEPS, make_dataset


def direct_counts(ds: SpikeDataset, index, dt: float, n_steps: int, n_channels: int):
    """One spike at a time: ``out[floor(t / dt), b, u] += 1`` inside the window."""
    out = np.zeros((n_steps, len(index), n_channels))
    for b, i in enumerate(index):
        for t, u in zip(ds.times[i], ds.units[i]):
            s = math.floor(float(t) / dt)
            if 0 <= s < n_steps:
                out[s, b, u] += 1
    return out


def test_dense_counts_match_a_direct_loop(xp) -> None:
    ds = make_dataset(20)
    loader = BatchLoader(ds, batch_size=7, dt=DT, n_steps=N_STEPS, xp=xp, seed=3)
    seen = []
    for batch in loader:
        assert type(batch.inputs).__module__.split(".")[0] == xp.__name__
        assert batch.inputs.shape == (N_STEPS, batch.size, N_CHANNELS)
        assert batch.inputs.dtype == np.float32
        want = direct_counts(ds, batch.index, DT, N_STEPS, N_CHANNELS)
        np.testing.assert_array_equal(to_host(batch.inputs), want)
        np.testing.assert_array_equal(to_host(batch.labels), ds.labels[batch.index])
        seen.extend(batch.index.tolist())
    assert sorted(seen) == list(range(20))  # every example exactly once


def test_window_edges_and_repeated_bins() -> None:
    dt, n_steps = 0.5, 4  # exact binary fractions: no rounding at the edges
    times = [np.array([-0.25, 0.0, 0.49, 0.5, 0.5, 1.999, 2.0, 3.0])]
    units = [np.array([0, 1, 1, 0, 0, 2, 2, 2])]
    out = dense_counts(times, units, dt=dt, n_steps=n_steps, n_channels=3)
    want = np.zeros((4, 1, 3))
    want[0, 0, 1] = 2  # t = 0 and 0.49
    want[1, 0, 0] = 2  # two spikes at 0.5 in one bin
    want[3, 0, 2] = 1  # 1.999; t = 2.0 = n_steps dt and later dropped, t < 0 dropped
    np.testing.assert_array_equal(out, want)


def test_empty_batch_and_errors() -> None:
    out = dense_counts([np.zeros(0)], [np.zeros(0, int)], dt=1e-3, n_steps=3, n_channels=2)
    assert out.shape == (3, 1, 2) and not out.any()
    with pytest.raises(ModelError, match="outside"):
        dense_counts([np.array([0.0])], [np.array([5])], dt=1e-3, n_steps=3, n_channels=2)
    with pytest.raises(ModelError, match="wider dtype"):
        dense_counts(
            [np.zeros(300)], [np.zeros(300, int)], dt=1.0, n_steps=1, n_channels=1, dtype=np.uint8
        )
    ds = make_dataset(5)
    for bad in ({"batch_size": 0}, {"dt": 0.0}, {"n_steps": 0}, {"seed": -1}):
        kw = {"batch_size": 2, "dt": DT, "n_steps": N_STEPS, **bad}
        with pytest.raises(ModelError):
            BatchLoader(ds, **kw)


@pytest.mark.parametrize(("n", "bs", "drop", "want"), [(10, 3, False, 4), (10, 3, True, 3)])
def test_len_and_last_batch(n, bs, drop, want) -> None:
    loader = BatchLoader(make_dataset(n), batch_size=bs, dt=DT, n_steps=5, drop_last=drop)
    batches = list(loader)
    assert len(loader) == len(batches) == want
    sizes = [b.size for b in batches]
    assert sizes == ([3, 3, 3] if drop else [3, 3, 3, 1])


def _epoch(loader: BatchLoader, epoch: int):
    loader.set_epoch(epoch)
    return [(b.index.copy(), to_host(b.inputs)) for b in loader]


def test_set_epoch_replays_order_and_augmentation() -> None:
    ds = make_dataset(24)
    aug = A.Compose((A.step(A.channel_jitter, n_channels=N_CHANNELS, max_jitter=1),))
    mk = lambda seed: BatchLoader(  # noqa: E731
        ds, batch_size=5, dt=DT, n_steps=N_STEPS, seed=seed, augment=aug
    )
    a, b = mk(11), mk(11)
    first = _epoch(a, 0)
    other = _epoch(a, 1)
    again = _epoch(a, 0)  # back to epoch 0 on the same loader
    fresh = _epoch(b, 0)  # a new loader (as after a resume)
    for x, y, z in zip(first, again, fresh):
        np.testing.assert_array_equal(x[0], y[0])
        np.testing.assert_array_equal(x[1], y[1])
        np.testing.assert_array_equal(x[0], z[0])
        np.testing.assert_array_equal(x[1], z[1])
    assert not all(np.array_equal(x[0], y[0]) for x, y in zip(first, other))
    assert not all(np.array_equal(x[0], y[0]) for x, y in zip(first, _epoch(mk(12), 0)))
    # the augmentation really changed the counts relative to the raw data
    raw = [direct_counts(ds, idx, DT, N_STEPS, N_CHANNELS) for idx, _ in first]
    assert not all(np.array_equal(r, x[1]) for r, x in zip(raw, first))


def test_no_shuffle_is_in_order() -> None:
    loader = BatchLoader(make_dataset(7), batch_size=3, dt=DT, n_steps=5, shuffle=False)
    loader.set_epoch(4)
    np.testing.assert_array_equal(np.concatenate([b.index for b in loader]), np.arange(7))


def test_delay_lines_multiply_channels() -> None:
    ds = make_dataset(6)
    delays = A.delay_step(N_CHANNELS, (0.002, 0.005))
    assert channel_factor(delays) == 3
    comp = A.Compose((A.step(A.dropout, p=0.0), delays, A.Compose((delays,))))
    assert channel_factor(comp) == 9 and channel_factor(None) == 1
    loader = BatchLoader(ds, batch_size=4, dt=DT, n_steps=N_STEPS, augment=delays, shuffle=False)
    assert loader.n_channels == 3 * N_CHANNELS
    batch = next(iter(loader))
    x = to_host(batch.inputs)
    assert x.shape == (N_STEPS, 4, 3 * N_CHANNELS)
    # block 1 is block 0 delayed by 2 steps (the window cuts the tail)
    np.testing.assert_array_equal(x[2:, :, N_CHANNELS : 2 * N_CHANNELS], x[:-2, :, :N_CHANNELS])
