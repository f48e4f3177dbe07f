"""Event datasets in memory: per-sample spike times and channels, labels and speakers.

A sample is a pair of equally long arrays ``(times, units)``: spike ``k`` happened at
``times[k]`` seconds on input channel ``units[k]`` (``0 <= units[k] < n_channels``). This is
the layout of the Spiking Heidelberg Digits (SHD) files and of what the audio encoder writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from gpuspike.bridge.errors import ModelError

#: dtype of tonic's audio events (``tonic.datasets.SHD``): time in microseconds, channel,
#: polarity (always 0 for audio).
TONIC_AUDIO_DTYPE = np.dtype([("t", np.int64), ("x", np.int64), ("p", np.int64)])


@dataclass(frozen=True)
class SpikeDataset:
    """A labelled set of spike trains, one ``(times, units)`` pair per sample.

    Parameters
    ----------
    times : list of numpy.ndarray
        Per-sample spike times in seconds (float, any width).
    units : list of numpy.ndarray
        Per-sample channel indices (integer), same lengths as ``times``.
    labels : numpy.ndarray
        Class of each sample, shape ``(samples,)``.
    speakers : numpy.ndarray
        Speaker id of each sample, shape ``(samples,)``; ``-1`` where unknown.
    n_channels : int
        Number of input channels; every unit lies in ``[0, n_channels)``.
    keys : list of str
        Class names: label ``i`` is named ``keys[i]`` (what SHD's ``extra/keys`` holds);
        empty when unknown. Not per-sample: subsets and augmentations keep it whole.
    files : list of str
        Source name of each sample (e.g. the WAV file it was encoded from, what
        ``extra/files`` holds); empty when unknown, else one per sample.
    """

    times: list[np.ndarray]
    units: list[np.ndarray]
    labels: np.ndarray
    speakers: np.ndarray
    n_channels: int
    keys: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.times)
        if len(self.units) != n or len(self.labels) != n or len(self.speakers) != n:
            raise ModelError(
                f"SpikeDataset needs one entry per sample in times ({n}), units "
                f"({len(self.units)}), labels ({len(self.labels)}) and speakers "
                f"({len(self.speakers)}); pass arrays of equal length"
            )
        if self.files and len(self.files) != n:
            raise ModelError(
                f"SpikeDataset has {len(self.files)} files for {n} samples; pass one source "
                "name per sample, or none"
            )
        for i, (t, u) in enumerate(zip(self.times, self.units)):
            if len(t) != len(u):
                raise ModelError(
                    f"sample {i} has {len(t)} times but {len(u)} units; each spike needs "
                    "both a time and a channel"
                )

    def __len__(self) -> int:
        return len(self.times)

    def sample(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(times, units)`` of sample ``i``."""
        return self.times[i], self.units[i]

    def subset(self, index: np.ndarray | list[int]) -> SpikeDataset:
        """Return the samples at ``index`` (an index array, e.g. from a split helper).

        ``files`` is indexed with the samples; ``keys`` (the class names) is kept whole.
        """
        idx = np.asarray(index, dtype=np.int64)
        return SpikeDataset(
            times=[self.times[i] for i in idx],
            units=[self.units[i] for i in idx],
            labels=self.labels[idx],
            speakers=self.speakers[idx],
            n_channels=self.n_channels,
            keys=list(self.keys),
            files=[self.files[i] for i in idx] if self.files else [],
        )

    def pool_channels(self, k: int) -> SpikeDataset:
        """Merge each run of ``k`` neighbouring channels into one: channel ``u`` becomes
        ``floor(u / k)`` (``ceil(n_channels / k)`` channels; spike times unchanged).

        A coarser cochlea: SHD's 700 channels overlap strongly, and pooling them by 5 keeps
        what a classifier of binned counts uses while the input layer shrinks k times.
        """
        if k < 1:
            raise ValueError(f"the pooling factor must be >= 1, got {k}")
        if k == 1:
            return self
        return SpikeDataset(
            times=list(self.times),
            units=[(np.asarray(u) // k).astype(np.asarray(u).dtype) for u in self.units],
            labels=self.labels, speakers=self.speakers,
            n_channels=-(-self.n_channels // k), keys=list(self.keys), files=list(self.files))

    def align_onset(self, quantile: float = 0.05, margin: float = 0.01) -> SpikeDataset:
        """Move each sample in time so that its onset lies at ``margin`` seconds.

        The onset ``t_q`` of a sample is the ``quantile`` of its spike times (robust to a
        stray early spike; 0 takes the first spike); every spike moves to
        ``t - t_q + margin`` and spikes that would fall before 0 are dropped. A voice-activity
        trigger: leading silence differs between speakers (FSDD: 11 ms to 116 ms on average),
        which networks reading absolute time otherwise learn as if it were speech. Empty
        samples are kept as they are.
        """
        if not 0 <= quantile < 1:
            raise ValueError(f"quantile must lie in [0, 1), got {quantile}")
        if margin < 0:
            raise ValueError(f"margin must be >= 0 seconds, got {margin}")
        return self._warp(lambda t: t - np.quantile(t, quantile) + margin)

    def normalise_span(self, span: float, quantile: float = 0.05,
                       margin: float = 0.01) -> SpikeDataset:
        """Stretch each sample in time so that its core lasts ``span`` seconds.

        The core of a sample runs from ``t_lo``, the ``quantile`` of its spike times, to
        ``t_hi``, their ``1 - quantile``; every spike moves to
        ``margin + (t - t_lo) * span / (t_hi - t_lo)`` (a linear time warp), and spikes
        that would fall before 0 are dropped. Each utterance then starts at ``margin`` and
        its bulk ends at ``margin + span``, whatever the speaker's rate: the per-sample
        relative time of :func:`gpuspike.datasets.baseline.count_features`, for a network.
        Spike rates change by ``(t_hi - t_lo) / span``. Samples with no spikes or a core of
        zero length are only moved (as :meth:`align_onset`).
        """
        if not span > 0:
            raise ValueError(f"span must be > 0 seconds, got {span}")
        if not 0 <= quantile < 0.5:
            raise ValueError(f"quantile must lie in [0, 0.5), got {quantile}")
        if margin < 0:
            raise ValueError(f"margin must be >= 0 seconds, got {margin}")

        def warp(t: np.ndarray) -> np.ndarray:
            lo, hi = np.quantile(t, [quantile, 1.0 - quantile])
            return margin + (t - lo) * (span / (hi - lo) if hi > lo else 1.0)

        return self._warp(warp)

    def _warp(self, f: Callable[[np.ndarray], np.ndarray]) -> SpikeDataset:
        """Each non-empty sample's times through ``f`` (float64 in, float64 out), spikes
        mapped before 0 dropped, the times' dtype kept; empty samples as they are."""
        times, units = [], []
        for t, u in zip(self.times, self.units):
            t, u = np.asarray(t), np.asarray(u)
            if len(t) == 0:
                times.append(t)
                units.append(u)
                continue
            moved = f(t.astype(np.float64))
            keep = moved >= 0
            times.append(moved[keep].astype(t.dtype))
            units.append(u[keep])
        return SpikeDataset(times=times, units=units, labels=self.labels,
                            speakers=self.speakers, n_channels=self.n_channels,
                            keys=list(self.keys), files=list(self.files))

    @property
    def spike_counts(self) -> np.ndarray:
        """Number of spikes of each sample, shape ``(samples,)``."""
        return np.array([len(t) for t in self.times], dtype=np.int64)

    def durations(self) -> np.ndarray:
        """Time of the last spike of each sample in seconds (0 for an empty sample)."""
        return np.array([float(t.max()) if len(t) else 0.0 for t in self.times])


def to_structured(sample: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Convert one ``(times, units)`` sample to tonic's structured event array.

    The fields are ``t`` (time in integer microseconds, ``round(times * 1e6)``, as
    ``tonic.datasets.SHD`` does), ``x`` (channel) and ``p`` (polarity, always 0).

    Parameters
    ----------
    sample : tuple of numpy.ndarray
        Spike times in seconds and channel indices of equal length.

    Returns
    -------
    numpy.ndarray
        Structured array of dtype :data:`TONIC_AUDIO_DTYPE`.
    """
    times, units = sample
    times = np.asarray(times, dtype=np.float64)
    units = np.asarray(units)
    if times.shape != units.shape or times.ndim != 1:
        raise ModelError(
            f"to_structured needs two 1-D arrays of equal length, got shapes {times.shape} "
            f"and {units.shape}"
        )
    events = np.zeros(len(times), dtype=TONIC_AUDIO_DTYPE)
    events["t"] = np.rint(times * 1e6).astype(np.int64)
    events["x"] = units
    return events


def from_structured(events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`to_structured`: ``(t * 1e-6, x)`` as float64 seconds and int64."""
    return events["t"].astype(np.float64) * 1e-6, events["x"].astype(np.int64)
