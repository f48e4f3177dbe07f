"""Bin spike events onto the simulation's time grid, dense or sparse, for any dt.

Spike ``k`` of a sample lands in step ``floor(times[k] / dt)`` on channel ``units[k]``; the
count of a bin is the number of spikes that land in it. Spikes at or after ``duration`` are
dropped.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from gpuspike.bridge.errors import ModelError
from gpuspike.datasets.events import SpikeDataset


@dataclass(frozen=True)
class BinnedEvents:
    """Sparse binned spikes in coordinate (COO) form, sorted by (sample, step, channel).

    ``count[k]`` spikes fell in bin ``(sample[k], step[k], channel[k])``; bins not listed
    hold 0. ``shape`` is ``(samples, steps, channels)`` of the dense equivalent.
    """

    sample: np.ndarray
    step: np.ndarray
    channel: np.ndarray
    count: np.ndarray
    shape: tuple[int, int, int]

    def to_dense(self, dtype: np.dtype | type = np.uint8) -> np.ndarray:
        """The dense ``(samples, steps, channels)`` count array."""
        _check_fits(int(self.count.max(initial=0)), dtype)
        out = np.zeros(self.shape, dtype=dtype)
        out[self.sample, self.step, self.channel] = self.count
        return out

    def per_sample(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per-sample ``(step, channel)`` arrays, a bin repeated once per spike in it.

        This is the engine's spike-source input: at step ``s`` channels ``channel[step == s]``
        fire (a channel listed twice in a step delivers twice).
        """
        bounds = np.searchsorted(self.sample, np.arange(self.shape[0] + 1))
        out = []
        for a, b in itertools.pairwise(bounds):
            c = self.count[a:b]
            out.append((np.repeat(self.step[a:b], c), np.repeat(self.channel[a:b], c)))
        return out


def _check_fits(top: int, dtype: np.dtype | type) -> None:
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer) and top > np.iinfo(dtype).max:
        raise ModelError(
            f"a bin holds {top} spikes, more than {np.dtype(dtype).name} can count; pass a "
            "wider dtype (e.g. dtype=np.uint16) or a smaller dt"
        )


def n_steps_for(dataset: SpikeDataset, dt: float, duration: float | None = None) -> int:
    """Number of steps: ``ceil(duration / dt)``, or enough for the latest spike."""
    if dt <= 0:
        raise ModelError(f"dt must be positive, got {dt}")
    if duration is not None:
        if duration <= 0:
            raise ModelError(f"duration must be positive, got {duration}")
        return max(1, math.ceil(duration / dt - 1e-9))
    last = max((float(np.max(t)) for t in dataset.times if len(t)), default=0.0)
    return math.floor(last / dt) + 1


def _flat_bins(
    times: np.ndarray, units: np.ndarray, dt: float, n_steps: int, n_channels: int
) -> np.ndarray:
    step = np.floor(np.asarray(times, dtype=np.float64) / dt).astype(np.int64)
    keep = (step >= 0) & (step < n_steps)
    return step[keep] * n_channels + np.asarray(units, dtype=np.int64)[keep]


def bin_events(
    dataset: SpikeDataset,
    dt: float,
    duration: float | None = None,
    dense: bool = True,
    dtype: np.dtype | type = np.uint8,
) -> np.ndarray | BinnedEvents:
    """Count spikes per ``(sample, step, channel)`` bin of width ``dt``.

    Parameters
    ----------
    dataset : SpikeDataset
        The events; times in seconds.
    dt : float
        Bin width in seconds (any value, e.g. the simulation's dt).
    duration : float, optional
        Length of the binned window; steps ``= ceil(duration / dt)``. By default enough
        steps for the latest spike of the dataset.
    dense : bool, optional
        ``True``: a dense ``(samples, steps, channels)`` array; ``False``: a
        :class:`BinnedEvents` (COO) holding only the non-empty bins.
    dtype : numpy dtype, optional
        Count dtype of the dense array (uint8 by default; a bin that overflows it raises).

    Returns
    -------
    numpy.ndarray or BinnedEvents
    """
    n_steps = n_steps_for(dataset, dt, duration)
    n_ch = dataset.n_channels
    if dense:
        out = np.zeros((len(dataset), n_steps, n_ch), dtype=dtype)
        for i, (t, u) in enumerate(zip(dataset.times, dataset.units)):
            flat = _flat_bins(t, u, dt, n_steps, n_ch)
            if len(flat) == 0:
                continue
            idx, cnt = np.unique(flat, return_counts=True)
            _check_fits(int(cnt.max()), dtype)
            out[i].reshape(-1)[idx] = cnt
        return out
    parts_s, parts_i, parts_c = [], [], []
    for i, (t, u) in enumerate(zip(dataset.times, dataset.units)):
        idx, cnt = np.unique(_flat_bins(t, u, dt, n_steps, n_ch), return_counts=True)
        parts_s.append(np.full(len(idx), i, dtype=np.int64))
        parts_i.append(idx)
        parts_c.append(cnt)
    flat = np.concatenate(parts_i) if parts_i else np.zeros(0, np.int64)
    return BinnedEvents(
        sample=np.concatenate(parts_s) if parts_s else np.zeros(0, np.int64),
        step=flat // n_ch,
        channel=flat % n_ch,
        count=np.concatenate(parts_c) if parts_c else np.zeros(0, np.int64),
        shape=(len(dataset), n_steps, n_ch),
    )
