"""Cut a :class:`~gpuspike.datasets.events.SpikeDataset` into dense mini-batches of counts.

Spike ``k`` of example ``b`` (time ``t_k`` seconds, channel ``u_k``) adds one to
``inputs[s_k, b, u_k]`` with ``s_k = floor(t_k / dt)``, the binning of
:mod:`gpuspike.datasets.binning`; spikes with ``s_k < 0`` or ``s_k >= n_steps`` (times before
0 or at/after ``n_steps * dt``) are dropped. Shuffling and augmentation draw from generators
seeded by ``(seed, epoch)`` only, so any epoch can be replayed exactly (e.g. after a resume).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import numpy as np
from gpuspike.bridge.errors import ModelError

from gpuspike.datasets.events import SpikeDataset

from .protocol import Batch

#: An augmentation: ``(times, units, rng) -> (times, units)`` (see ``datasets.augment``).
Augment = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]

# Tags that keep the shuffling and augmentation streams of one (seed, epoch) apart.
_SHUFFLE, _AUGMENT = 0, 1


def channel_factor(augment: Any) -> int:
    """How many times an augmentation multiplies the channel count.

    ``Compose``-like objects (with a ``steps`` attribute) give the product of their steps'
    factors, as ``Compose.apply`` does; anything else gives ``augment.channel_factor`` or 1.

    Parameters
    ----------
    augment : callable or None
        The augmentation.

    Returns
    -------
    int
        ``prod_j channel_factor(step_j)`` for a composition, else ``channel_factor`` or 1.
    """
    if augment is None:
        return 1
    steps = getattr(augment, "steps", None)
    if steps is not None:
        factor = 1
        for s in steps:
            factor *= channel_factor(s)
        return factor
    return int(getattr(augment, "channel_factor", 1))


def dense_counts(
    times: list[np.ndarray],
    units: list[np.ndarray],
    *,
    dt: float,
    n_steps: int,
    n_channels: int,
    xp: ModuleType = np,
    dtype: Any = np.float32,
    bins: list | None = None,
) -> Any:
    """Bin the spikes of a batch into a dense ``(n_steps, batch, n_channels)`` count array.

    With ``s_k = floor(t_k / dt)`` (computed in float64) each spike of example ``b`` in
    ``0 <= s_k < n_steps`` adds one to ``out[s_k, b, u_k]``. The flat bin indices
    ``(s_k * batch + b) * n_channels + u_k`` are counted on the host (``numpy.unique``) and only
    the non-empty bins are written into an ``xp.zeros`` array, so that a GPU batch never
    exists densely on the host.

    Parameters
    ----------
    times, units : list of numpy.ndarray
        Per-example spike times (seconds) and channels.
    dt : float
        Step width in seconds.
    n_steps : int
        Number of steps; spikes at or after ``n_steps * dt`` are dropped.
    n_channels : int
        Channel count; every unit must lie in ``[0, n_channels)``.
    xp : module
        Array module of the result (numpy or cupy).
    dtype : dtype
        dtype of the result.
    bins : list, optional
        Receives ``(flat bin indices, counts)`` of the non-empty bins (host arrays,
        increasing indices): :attr:`Batch.spikes`.

    Returns
    -------
    array
        ``xp`` array of shape ``(n_steps, len(times), n_channels)``.
    """
    batch = len(times)
    lengths = np.fromiter((len(t) for t in times), dtype=np.int64, count=batch)
    shape = (n_steps, batch, n_channels)
    out = xp.zeros(shape, dtype=dtype)
    if lengths.sum() == 0:
        if bins is not None:
            bins += [np.zeros(0, np.int64), np.zeros(0, np.int64)]
        return out
    t = np.concatenate([np.asarray(a, dtype=np.float64) for a in times])
    u = np.concatenate([np.asarray(a, dtype=np.int64) for a in units])
    b = np.repeat(np.arange(batch, dtype=np.int64), lengths)
    if u.min() < 0 or u.max() >= n_channels:
        bad = int(u[(u < 0) | (u >= n_channels)][0])
        raise ModelError(
            f"a spike on channel {bad} lies outside [0, {n_channels}); drop out-of-range "
            "events in the augmentation, or give the loader the dataset's true channel count "
            "(an augmentation that adds channels needs a channel_factor attribute)"
        )
    s = np.floor(t / dt).astype(np.int64)
    keep = (s >= 0) & (s < n_steps)
    flat = (s[keep] * batch + b[keep]) * n_channels + u[keep]
    idx, cnt = np.unique(flat, return_counts=True)
    if len(cnt) and np.issubdtype(np.dtype(dtype), np.integer):
        top = np.iinfo(np.dtype(dtype)).max
        if cnt.max() > top:
            raise ModelError(
                f"a bin holds {int(cnt.max())} spikes, more than {np.dtype(dtype).name} can "
                "count; pass a wider dtype or a smaller dt"
            )
    out.reshape(-1)[xp.asarray(idx)] = xp.asarray(cnt, dtype=dtype)
    if bins is not None:
        bins += [idx, cnt]
    return out


class BatchLoader:
    """Iterate a dataset as :class:`~gpuspike.engine.training.protocol.Batch` objects.

    Epoch ``e`` (chosen with :meth:`set_epoch`, 0 by default) visits the examples in the order
    ``permutation(rng(seed, e, 0))`` (or ``0, 1, ...`` with ``shuffle=False``) in batches of
    ``batch_size``; batch ``i`` is augmented with its own generator ``rng(seed, e, 1, i)``, so
    a batch depends only on ``(seed, e, i)``. Iterating does not advance the epoch: call
    :meth:`set_epoch` before each epoch (the training loop does).

    Parameters
    ----------
    dataset : SpikeDataset
        The examples (times in seconds).
    batch_size : int
        Examples per batch; the last batch is smaller unless ``drop_last``.
    dt : float
        Step width in seconds.
    n_steps : int
        Steps per example; spikes at or after ``n_steps * dt`` are dropped.
    xp : module, optional
        Array module of ``Batch.inputs`` and ``Batch.labels`` (numpy or cupy).
    dtype : dtype, optional
        dtype of ``Batch.inputs`` (the model's float type).
    shuffle : bool, optional
        Visit the examples in a new random order each epoch.
    seed : int, optional
        Non-negative seed of the shuffling and augmentation streams.
    augment : callable, optional
        ``(times, units, rng) -> (times, units)`` applied to every example of every batch.
    drop_last : bool, optional
        Skip a last batch smaller than ``batch_size``.
    """

    def __init__(
        self,
        dataset: SpikeDataset,
        *,
        batch_size: int,
        dt: float,
        n_steps: int,
        xp: ModuleType = np,
        dtype: Any = np.float32,
        shuffle: bool = True,
        seed: int = 0,
        augment: Augment | None = None,
        drop_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ModelError(f"batch_size must be at least 1, got {batch_size}")
        if not dt > 0:
            raise ModelError(f"dt must be positive seconds, got {dt}")
        if n_steps < 1:
            raise ModelError(f"n_steps must be at least 1, got {n_steps}")
        if int(seed) != seed or seed < 0:
            raise ModelError(f"seed must be a non-negative integer, got {seed!r}")
        if len(dataset) == 0:
            raise ModelError("the dataset is empty; pass a dataset with at least one example")
        if drop_last and len(dataset) < batch_size:
            raise ModelError(
                f"drop_last with batch_size={batch_size} leaves no batch of the "
                f"{len(dataset)} examples; lower batch_size or pass drop_last=False"
            )
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.dt = float(dt)
        self.n_steps = int(n_steps)
        self.xp = xp
        self.dtype = dtype
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.augment = augment
        self.drop_last = bool(drop_last)
        self.epoch = 0
        self._order = self._make_order()

    @property
    def n_channels(self) -> int:
        """Input channels of a batch: ``dataset.n_channels * channel_factor(augment)``."""
        return self.dataset.n_channels * channel_factor(self.augment)

    @property
    def n_classes(self) -> int:
        """``max(labels) + 1`` of the dataset."""
        return int(np.max(self.dataset.labels)) + 1

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order and augmentation the next iteration replays."""
        if int(epoch) != epoch or epoch < 0:
            raise ModelError(f"epoch must be a non-negative integer, got {epoch!r}")
        self.epoch = int(epoch)
        self._order = self._make_order()

    def _make_order(self) -> np.ndarray:
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n, dtype=np.int64)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, _SHUFFLE]))
        return rng.permutation(n).astype(np.int64)

    def __len__(self) -> int:
        """Number of batches: ``floor(n / B)`` with ``drop_last``, else ``ceil(n / B)``."""
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def indices(self, i: int) -> np.ndarray:
        """Dataset positions of the examples of batch ``i`` of the current epoch."""
        if not 0 <= i < len(self):
            raise ModelError(f"batch {i} does not exist; this loader has {len(self)} batches")
        return self._order[i * self.batch_size : (i + 1) * self.batch_size]

    def batch(self, i: int) -> Batch:
        """Build batch ``i`` of the current epoch (the same every time it is asked for)."""
        index = self.indices(i)
        times = [self.dataset.times[j] for j in index]
        units = [self.dataset.units[j] for j in index]
        if self.augment is not None:
            rng = np.random.default_rng(
                np.random.SeedSequence([self.seed, self.epoch, _AUGMENT, i])
            )
            pairs = [self.augment(t, u, rng) for t, u in zip(times, units)]
            times = [p[0] for p in pairs]
            units = [p[1] for p in pairs]
        bins: list = []
        inputs = dense_counts(
            times,
            units,
            dt=self.dt,
            n_steps=self.n_steps,
            n_channels=self.n_channels,
            xp=self.xp,
            dtype=self.dtype,
            bins=bins,
        )
        labels = self.xp.asarray(np.asarray(self.dataset.labels)[index].astype(np.int64))
        return Batch(inputs=inputs, labels=labels, index=index.copy(), spikes=tuple(bins))

    def __iter__(self) -> Iterator[Batch]:
        for i in range(len(self)):
            yield self.batch(i)
