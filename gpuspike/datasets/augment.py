"""Augmentations of spike events: each draws from a ``numpy.random.Generator`` and returns
new ``(times, units)`` arrays, sorted by time then channel; the inputs are not modified.

Events that a transform moves out of ``[0, n_channels)`` (or, where a ``duration`` is given,
out of ``[0, duration)``) are dropped, not clipped, so that no channel or instant collects
spikes that were never there. With the same generator state every transform returns the same
result.

The transforms follow the SHD augmentations of Cramer et al. (2020) and Nowotny et al.
(2022, "Loss shaping enhances exact gradient learning with EventProp"): global and local
channel shifts, time stretching, blending of same-class samples, delay lines and dropout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from gpuspike.bridge.errors import ModelError
from gpuspike.datasets.events import SpikeDataset

Events = tuple[np.ndarray, np.ndarray]


def _sorted(times: np.ndarray, units: np.ndarray) -> Events:
    order = np.lexsort((units, times))
    return times[order], units[order]


def _keep_channels(times: np.ndarray, units: np.ndarray, n_channels: int) -> Events:
    keep = (units >= 0) & (units < n_channels)
    return _sorted(np.asarray(times)[keep], np.asarray(units)[keep])


def channel_shift(
    times: np.ndarray,
    units: np.ndarray,
    rng: np.random.Generator,
    n_channels: int,
    max_shift: int = 40,
) -> Events:
    """Shift every unit by one integer ``s ~ U{-max_shift, ..., max_shift}``: ``u' = u + s``."""
    s = int(rng.integers(-max_shift, max_shift + 1))
    return _keep_channels(np.array(times), np.asarray(units) + s, n_channels)


def channel_jitter(
    times: np.ndarray,
    units: np.ndarray,
    rng: np.random.Generator,
    n_channels: int,
    max_jitter: int = 1,
) -> Events:
    """Move each event's unit independently: ``u'_k = u_k + j_k``, ``j_k ~ U{-J, ..., J}``."""
    units = np.asarray(units)
    j = rng.integers(-max_jitter, max_jitter + 1, size=len(units))
    return _keep_channels(np.array(times), units + j, n_channels)


def channel_swap(
    times: np.ndarray,
    units: np.ndarray,
    rng: np.random.Generator,
    n_channels: int,
    p: float = 0.5,
) -> Events:
    """Swap neighbouring channels at random: pair ``(o + 2k, o + 2k + 1)`` with a random
    offset ``o`` in {0, 1}; each pair is swapped with probability ``p``. The result is a
    permutation of channels that moves no event by more than one channel."""
    perm = np.arange(n_channels)
    first = np.arange(int(rng.integers(2)), n_channels - 1, 2)
    chosen = first[rng.random(len(first)) < p]
    perm[chosen], perm[chosen + 1] = chosen + 1, chosen
    return _sorted(np.array(times), perm[np.asarray(units)])


def time_scale(
    times: np.ndarray,
    units: np.ndarray,
    rng: np.random.Generator,
    low: float = 0.8,
    high: float = 1.2,
    duration: float | None = None,
) -> Events:
    """Compress or dilate time: ``t' = f t``, ``f ~ U[low, high)``; events with
    ``t' >= duration`` are dropped."""
    if not 0 < low <= high:
        raise ModelError(f"time_scale needs 0 < low <= high, got {low}, {high}")
    t = np.asarray(times) * rng.uniform(low, high)
    units = np.array(units)
    if duration is not None:
        keep = t < duration
        t, units = t[keep], units[keep]
    return _sorted(t.astype(np.asarray(times).dtype), units)


def dropout(
    times: np.ndarray,
    units: np.ndarray,
    rng: np.random.Generator,
    p: float = 0.1,
) -> Events:
    """Drop each event independently with probability ``p``."""
    keep = rng.random(len(times)) >= p
    return np.asarray(times)[keep], np.asarray(units)[keep]


def delay_lines(
    times: np.ndarray,
    units: np.ndarray,
    n_channels: int,
    delays: tuple[float, ...],
    duration: float | None = None,
) -> Events:
    """Copy the input to extra channel blocks with fixed delays (deterministic).

    Block 0 is the input itself; block ``j >= 1`` holds every event at
    ``(t + delays[j - 1], u + j n_channels)``, so the output has
    ``n_channels (1 + len(delays))`` channels.
    """
    times, units = np.asarray(times), np.asarray(units)
    shifts = np.concatenate([[0.0], np.asarray(delays, dtype=np.float64)])
    t = (times[None, :] + shifts[:, None]).astype(times.dtype).ravel()
    u = (units[None, :] + n_channels * np.arange(len(shifts))[:, None]).ravel()
    if duration is not None:
        keep = t < duration
        t, u = t[keep], u[keep]
    return _sorted(t, u)


def blend(
    a: Events,
    b: Events,
    rng: np.random.Generator,
    n_channels: int,
    duration: float | None = None,
    keep: float = 0.5,
) -> Events:
    """Blend two (same-class) samples aligned on their centres of mass.

    With centres ``(t_a, u_a) = (mean times, mean units)`` of each sample and the midpoint
    ``(t_m, u_m) = ((t_a + t_b) / 2, (u_a + u_b) / 2)``, sample ``a`` is moved by
    ``(t_m - t_a, round(u_m - u_a))`` and ``b`` likewise, then each event is kept with
    probability ``keep`` (a random half by default). Events that leave the channel range,
    or ``[0, duration)``, are dropped.
    """
    (ta, ua), (tb, ub) = (np.asarray(a[0]), np.asarray(a[1])), (np.asarray(b[0]), np.asarray(b[1]))
    if len(ta) == 0 or len(tb) == 0:
        return _sorted(
            *((np.array(tb), np.array(ub)) if len(ta) == 0 else (np.array(ta), np.array(ua)))
        )
    tm, um = 0.5 * (ta.mean() + tb.mean()), 0.5 * (ua.mean() + ub.mean())
    parts_t, parts_u = [], []
    for t, u in ((ta, ua), (tb, ub)):
        mask = rng.random(len(t)) < keep
        parts_t.append((t[mask] + (tm - t.mean())).astype(ta.dtype))
        parts_u.append(u[mask] + int(np.rint(um - u.mean())))
    t, u = np.concatenate(parts_t), np.concatenate(parts_u)
    ok = (u >= 0) & (u < n_channels) & (t >= 0)
    if duration is not None:
        ok &= t < duration
    return _sorted(t[ok], u[ok])


def blend_same_class(
    dataset: SpikeDataset,
    n_new: int,
    rng: np.random.Generator,
    duration: float | None = None,
) -> SpikeDataset:
    """``n_new`` blends of random pairs of distinct same-class samples (:func:`blend`).

    Each new sample takes the label and speaker of its first parent; its file is
    ``"blend:<file a>+<file b>"`` when the dataset has files. The class names (``keys``) are
    kept.
    """
    by_class = {c: np.flatnonzero(dataset.labels == c) for c in np.unique(dataset.labels)}
    usable = [c for c, idx in by_class.items() if len(idx) >= 2]
    if not usable:
        raise ModelError("blend_same_class needs a class with at least two samples")
    times, units, labels, speakers, files = [], [], [], [], []
    for c in rng.choice(usable, size=n_new):
        i, j = rng.choice(by_class[c], size=2, replace=False)
        t, u = blend(dataset.sample(i), dataset.sample(j), rng, dataset.n_channels, duration)
        times.append(t)
        units.append(u)
        labels.append(dataset.labels[i])
        speakers.append(dataset.speakers[i])
        if dataset.files:
            files.append(f"blend:{dataset.files[i]}+{dataset.files[j]}")
    return SpikeDataset(
        times,
        units,
        np.array(labels, dtype=np.int64),
        np.array(speakers, dtype=np.int64),
        dataset.n_channels,
        keys=list(dataset.keys),
        files=files,
    )


class Augmentation(Protocol):
    """A per-sample transform ``(times, units, rng) -> (times, units)``."""

    def __call__(
        self, times: np.ndarray, units: np.ndarray, rng: np.random.Generator
    ) -> Events: ...


@dataclass(frozen=True)
class Step:
    """One augmentation bound to its parameters: ``fn(times, units, rng, **kwargs)``.

    ``channel_factor`` multiplies the channel count (delay lines); ``p_apply`` applies the
    step to a sample with that probability.
    """

    fn: Callable[..., Events]
    kwargs: tuple[tuple[str, object], ...] = ()
    channel_factor: int = 1
    p_apply: float = 1.0

    def __call__(self, times: np.ndarray, units: np.ndarray, rng: np.random.Generator) -> Events:
        if self.p_apply < 1.0 and rng.random() >= self.p_apply:
            return np.asarray(times), np.asarray(units)
        return self.fn(times, units, rng, **dict(self.kwargs))


def step(fn: Callable[..., Events], p_apply: float = 1.0, **kwargs: object) -> Step:
    """Bind ``fn``'s parameters: ``step(channel_shift, n_channels=700, max_shift=40)``."""
    return Step(fn, tuple(sorted(kwargs.items())), 1, p_apply)


def delay_step(n_channels: int, delays: tuple[float, ...], duration: float | None = None) -> Step:
    """A :class:`Step` for :func:`delay_lines` (which needs no random numbers)."""

    def fn(times: np.ndarray, units: np.ndarray, rng: np.random.Generator) -> Events:
        return delay_lines(times, units, n_channels, delays, duration)

    return Step(fn, (), 1 + len(delays))


@dataclass(frozen=True)
class Compose:
    """Apply steps in order: ``Compose((s1, s2))(t, u, rng) = s2(*s1(t, u, rng), rng)``."""

    steps: tuple[Augmentation, ...]

    def __call__(self, times: np.ndarray, units: np.ndarray, rng: np.random.Generator) -> Events:
        for s in self.steps:
            times, units = s(times, units, rng)
        return times, units

    def apply(self, dataset: SpikeDataset, rng: np.random.Generator) -> SpikeDataset:
        """Augment every sample of ``dataset`` (labels, speakers, keys and files kept)."""
        factor = 1
        for s in self.steps:
            factor *= getattr(s, "channel_factor", 1)
        times, units = [], []
        for t, u in zip(dataset.times, dataset.units):
            t2, u2 = self(t, u, rng)
            times.append(t2)
            units.append(u2)
        return SpikeDataset(
            times,
            units,
            dataset.labels.copy(),
            dataset.speakers.copy(),
            dataset.n_channels * factor,
            keys=list(dataset.keys),
            files=list(dataset.files),
        )
