"""Learning-rate schedules: the rate of each batch from the base rate and the position.

A schedule maps ``(base_lr, epoch, batch_in_epoch, batches_per_epoch, global_batch)`` to the
learning rate of that batch (all counters start at 0; ``global_batch`` counts batches since
the start of training). The frozen dataclasses are pure functions of these arguments, so a
resumed run gets the same rates; :class:`ReduceOnPlateau` also depends on the validation
losses it was shown and carries them in ``state_dict``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from gpuspike.bridge.errors import ModelError


@runtime_checkable
class Schedule(Protocol):
    """Anything with the :meth:`lr` method below."""

    def lr(
        self,
        base_lr: float,
        epoch: int,
        batch_in_epoch: int,
        batches_per_epoch: int,
        global_batch: int,
    ) -> float: ...


@dataclass(frozen=True)
class Constant:
    """``lr = base_lr`` throughout."""

    def lr(
        self,
        base_lr: float,
        epoch: int,
        batch_in_epoch: int,
        batches_per_epoch: int,
        global_batch: int,
    ) -> float:
        return float(base_lr)


@dataclass(frozen=True)
class ExponentialDecay:
    """``lr = base_lr * gamma ** epoch`` (constant within an epoch).

    Parameters
    ----------
    gamma : float
        Factor per epoch, in ``(0, 1]``.
    """

    gamma: float

    def __post_init__(self) -> None:
        if not 0 < self.gamma <= 1:
            raise ModelError(f"ExponentialDecay needs 0 < gamma <= 1, got {self.gamma}")

    def lr(
        self,
        base_lr: float,
        epoch: int,
        batch_in_epoch: int,
        batches_per_epoch: int,
        global_batch: int,
    ) -> float:
        return float(base_lr) * self.gamma**epoch


@dataclass(frozen=True)
class StepDecay:
    """``lr = base_lr * gamma ** floor(epoch / step_epochs)``.

    Parameters
    ----------
    step_epochs : int
        Epochs between two decays.
    gamma : float, optional
        Factor per decay, in ``(0, 1]``.
    """

    step_epochs: int
    gamma: float = 0.1

    def __post_init__(self) -> None:
        if self.step_epochs < 1:
            raise ModelError(f"StepDecay needs step_epochs >= 1, got {self.step_epochs}")
        if not 0 < self.gamma <= 1:
            raise ModelError(f"StepDecay needs 0 < gamma <= 1, got {self.gamma}")

    def lr(
        self,
        base_lr: float,
        epoch: int,
        batch_in_epoch: int,
        batches_per_epoch: int,
        global_batch: int,
    ) -> float:
        return float(base_lr) * self.gamma ** (epoch // self.step_epochs)


@dataclass(frozen=True)
class Cosine:
    """Cosine annealing from ``base_lr`` to ``min_lr`` over ``total_epochs``.

    With progress ``x = min(1, (epoch + batch_in_epoch / batches_per_epoch) / total_epochs)``
    (or ``x = min(1, epoch / total_epochs)`` when ``per_batch=False``):
    ``lr = min_lr + (base_lr - min_lr) (1 + cos(pi x)) / 2``.

    Parameters
    ----------
    total_epochs : int
        Epochs to reach ``min_lr``; the rate stays there afterwards.
    min_lr : float, optional
        Final rate.
    per_batch : bool, optional
        Anneal within epochs too (else the rate changes once per epoch).
    """

    total_epochs: int
    min_lr: float = 0.0
    per_batch: bool = True

    def __post_init__(self) -> None:
        if self.total_epochs < 1:
            raise ModelError(f"Cosine needs total_epochs >= 1, got {self.total_epochs}")
        if self.min_lr < 0:
            raise ModelError(f"Cosine needs min_lr >= 0, got {self.min_lr}")

    def lr(
        self,
        base_lr: float,
        epoch: int,
        batch_in_epoch: int,
        batches_per_epoch: int,
        global_batch: int,
    ) -> float:
        pos = float(epoch)
        if self.per_batch and batches_per_epoch > 0:
            pos += batch_in_epoch / batches_per_epoch
        x = min(1.0, pos / self.total_epochs)
        return self.min_lr + (float(base_lr) - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * x))


@dataclass(frozen=True)
class EaseIn:
    """Start small and grow geometrically per batch, then follow ``inner`` (as mlGeNN does).

    With ``e(g) = base_lr * start * factor ** g`` (``g`` = global batch):
    ``lr = min(e(g), inner(...))`` while ``e(g) < base_lr``, then ``lr = inner(...)``.
    With the defaults the rate climbs from ``1e-3 base_lr`` by 5 % per batch and reaches
    ``base_lr`` after ``ceil(ln(1000) / ln(1.05)) = 142`` batches.

    Parameters
    ----------
    inner : Schedule, optional
        Schedule handed over to (constant by default).
    start : float, optional
        First rate as a fraction of ``base_lr``, in ``(0, 1]``.
    factor : float, optional
        Growth per batch, ``> 1``.
    """

    inner: Any = field(default_factory=Constant)
    start: float = 1e-3
    factor: float = 1.05

    def __post_init__(self) -> None:
        if not 0 < self.start <= 1:
            raise ModelError(f"EaseIn needs 0 < start <= 1, got {self.start}")
        if not self.factor > 1:
            raise ModelError(f"EaseIn needs factor > 1, got {self.factor}")

    def ease_batches(self) -> int:
        """Batches until the ease-in reaches ``base_lr``: ``ceil(-ln(start) / ln(factor))``."""
        return max(0, math.ceil(-math.log(self.start) / math.log(self.factor) - 1e-12))

    def lr(
        self,
        base_lr: float,
        epoch: int,
        batch_in_epoch: int,
        batches_per_epoch: int,
        global_batch: int,
    ) -> float:
        inner = self.inner.lr(base_lr, epoch, batch_in_epoch, batches_per_epoch, global_batch)
        if global_batch >= self.ease_batches():
            return inner
        return min(float(base_lr) * self.start * self.factor**global_batch, inner)

    def observe(self, value: float) -> None:
        """Pass a validation loss on to a stateful inner schedule."""
        if hasattr(self.inner, "observe"):
            self.inner.observe(value)

    def state_dict(self) -> dict[str, Any]:
        """The inner schedule's state (empty when it has none)."""
        return self.inner.state_dict() if hasattr(self.inner, "state_dict") else {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the inner schedule's state."""
        if hasattr(self.inner, "load_state_dict"):
            self.inner.load_state_dict(state)


class ReduceOnPlateau:
    """Multiply the rate by ``factor`` when the validation loss stops improving.

    ``lr = max(min_lr, scale * inner(...))``, ``scale`` starting at 1. After each epoch
    :meth:`observe` gets the loss ``L``: it is an improvement when
    ``L < best - threshold * |best|`` (NaN never is); after more than ``patience`` epochs in a
    row without one, ``scale <- scale * factor`` and the count restarts (``best`` is kept),
    as in PyTorch's ``ReduceLROnPlateau``.

    Parameters
    ----------
    factor : float, optional
        Multiplier per reduction, in ``(0, 1)`` (halving by default).
    patience : int, optional
        Epochs without improvement tolerated; the next one reduces the rate.
    threshold : float, optional
        Relative improvement that counts.
    min_lr : float, optional
        Floor of the rate.
    inner : Schedule, optional
        Schedule scaled (constant by default).
    """

    def __init__(
        self,
        factor: float = 0.5,
        patience: int = 5,
        threshold: float = 1e-4,
        min_lr: float = 0.0,
        inner: Any = None,
    ) -> None:
        if not 0 < factor < 1:
            raise ModelError(f"ReduceOnPlateau needs 0 < factor < 1, got {factor}")
        if patience < 0:
            raise ModelError(f"ReduceOnPlateau needs patience >= 0, got {patience}")
        self.factor = float(factor)
        self.patience = int(patience)
        self.threshold = float(threshold)
        self.min_lr = float(min_lr)
        self.inner = Constant() if inner is None else inner
        self.scale = 1.0
        self.best = math.inf
        self.bad_epochs = 0
        self.reductions = 0

    def lr(
        self,
        base_lr: float,
        epoch: int,
        batch_in_epoch: int,
        batches_per_epoch: int,
        global_batch: int,
    ) -> float:
        inner = self.inner.lr(base_lr, epoch, batch_in_epoch, batches_per_epoch, global_batch)
        return max(self.min_lr, self.scale * inner)

    def observe(self, value: float) -> None:
        """Record one epoch's validation loss (NaN counts as no improvement)."""
        value = float(value)
        margin = self.threshold * abs(self.best) if math.isfinite(self.best) else 0.0
        if value < self.best - margin:
            self.best = value
            self.bad_epochs = 0
            return
        self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            self.scale *= self.factor
            self.reductions += 1
            self.bad_epochs = 0

    def state_dict(self) -> dict[str, Any]:
        """``scale``, ``best``, ``bad_epochs``, ``reductions`` (and the inner state)."""
        state: dict[str, Any] = {
            "scale": self.scale,
            "best": self.best,
            "bad_epochs": self.bad_epochs,
            "reductions": self.reductions,
        }
        if hasattr(self.inner, "state_dict"):
            state["inner"] = self.inner.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.scale = float(state["scale"])
        self.best = float(state["best"])
        self.bad_epochs = int(state["bad_epochs"])
        self.reductions = int(state["reductions"])
        if "inner" in state and hasattr(self.inner, "load_state_dict"):
            self.inner.load_state_dict(state["inner"])
