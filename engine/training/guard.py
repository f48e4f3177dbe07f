"""Runaway detection during training, and what the loop does about it.

A recurrent spiking layer can tip into runaway excitation within an epoch: its firing
feeds itself, the loss jumps and the accuracy falls to chance, and the run does not come
back by itself (measured on spoken digits, see issue notes in benchmarks/RESULTS.md). The
guard watches every batch and flags a runaway when, over the last ``window`` batches,

- a population's mean spike count per neuron and trial exceeds ``spike_factor`` times its
  reference ``max(target, s_good, floor)``, where ``target`` is the regulariser's rate
  (when the loss has one), ``s_good`` the population's mean over the last good epoch (the
  first batch of the run, before any update, while no epoch has ended) and ``floor`` the
  least count that can run away (:func:`default_guard`: a spike on 5 % of the trial's
  steps, at least 1: a layer that starts nearly silent may learn to fire); or
- the mean loss exceeds ``loss_factor`` times the reference loss ``L_good`` (the last good
  epoch's training loss, the first batch's before that) and ``L_good + loss_margin``; or
- the loss or a gradient is not finite (one batch is enough);

and after an epoch when its training accuracy fell below ``acc_drop`` times the best one
so far (once that best is at least ``2 / n_classes``).

An epoch is *good* when none of these fired and its accuracy is at least
``keep_fraction`` of the best; the loop keeps the state (parameters, optimiser, schedule)
of the last good epoch. On a runaway the loop restores that state, multiplies the learning
rate by ``lr_factor`` (for the rest of the run) and trains the epoch after it again. After
``max_recoveries`` recoveries, a further runaway ends the run with a
:class:`~gpuspike.engine.training.loop.TrainingError` that names the cause.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gpuspike.bridge.errors import ModelError


@dataclass(frozen=True)
class Runaway:
    """One detected runaway: where, why and what the loop did."""

    epoch: int
    batch: int | None
    cause: str
    rolled_back_to: int = -1
    lr_after: float = math.nan

    def as_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "batch": self.batch, "cause": self.cause,
                "rolled_back_to": self.rolled_back_to, "lr_after": self.lr_after}


@dataclass
class RunawayGuard:
    """Thresholds of the runaway test (module docstring); ``targets`` maps population ->
    target spikes per neuron and trial (the regulariser's ``nu``)."""

    spike_factor: float = 3.0
    loss_factor: float = 2.0
    loss_margin: float = 0.5
    acc_drop: float = 0.5
    keep_fraction: float = 0.9
    window: int = 5
    lr_factor: float = 0.5
    max_recoveries: int = 4
    targets: Mapping[str, float] = field(default_factory=dict)
    #: the least spike reference (spikes per neuron and trial)
    floor: float = 1.0

    def __post_init__(self) -> None:
        if self.spike_factor <= 1 or self.loss_factor <= 1:
            raise ModelError(f"spike_factor and loss_factor must exceed 1, got "
                             f"{self.spike_factor}, {self.loss_factor}")
        if not 0 < self.lr_factor < 1 or not 0 < self.acc_drop < 1:
            raise ModelError(f"lr_factor and acc_drop must lie in (0, 1), got "
                             f"{self.lr_factor}, {self.acc_drop}")
        if self.window < 1 or self.max_recoveries < 0:
            raise ModelError(f"window must be >= 1 and max_recoveries >= 0, got "
                             f"{self.window}, {self.max_recoveries}")
        self.good_spikes: dict[str, float] = {}
        self.good_loss: float | None = None
        self.first_spikes: dict[str, float] = {}
        self.first_loss: float | None = None
        self.best_acc = 0.0
        self.start_epoch()

    # -- per batch -------------------------------------------------------------------
    def start_epoch(self) -> None:
        """Forget the rolling windows (called before each epoch and after a rollback)."""
        self._loss: deque[float] = deque(maxlen=self.window)
        self._spikes: dict[str, deque[float]] = {}

    def _spike_reference(self, pop: str) -> float | None:
        ref = self.good_spikes.get(pop, self.first_spikes.get(pop))
        if ref is None:
            return None
        return max(ref, float(self.targets.get(pop, 0.0)), self.floor)

    def check_batch(self, loss: float, spikes: Mapping[str, float]) -> str | None:
        """The cause, when this batch completes a runaway; ``None`` otherwise."""
        if not math.isfinite(loss):
            return f"the loss is {loss}"
        self._loss.append(loss)
        if self.first_loss is None:
            self.first_loss = loss
        for pop, s in spikes.items():
            self._spikes.setdefault(pop, deque(maxlen=self.window)).append(float(s))
            self.first_spikes.setdefault(pop, float(s))
        for pop, q in self._spikes.items():
            ref = self._spike_reference(pop)
            if ref is None or len(q) < self.window:
                continue
            mean = sum(q) / len(q)
            if mean > self.spike_factor * ref:
                return (f"'{pop}' fires {mean:.1f} spikes per neuron and trial over the last "
                        f"{len(q)} batches, {mean / ref:.1f}x its reference {ref:.1f}")
        ref_loss = self.good_loss if self.good_loss is not None else self.first_loss
        if ref_loss is not None and len(self._loss) >= self.window:
            mean = sum(self._loss) / len(self._loss)
            if mean > self.loss_factor * ref_loss and mean > ref_loss + self.loss_margin:
                return (f"the loss rose to {mean:.3f} over the last {len(self._loss)} batches "
                        f"from {ref_loss:.3f}")
        return None

    # -- per epoch -------------------------------------------------------------------
    def check_epoch(self, acc: float, n_classes: int | None) -> str | None:
        """The cause, when the epoch's accuracy collapsed; ``None`` otherwise."""
        floor = 2.0 / n_classes if n_classes else 0.0
        if self.best_acc >= floor and self.best_acc > 0 and acc < self.acc_drop * self.best_acc:
            return (f"the training accuracy fell to {acc:.3f} from its best {self.best_acc:.3f}")
        return None

    def is_good(self, acc: float) -> bool:
        """Whether an epoch that passed the checks becomes the one to roll back to."""
        return acc >= self.keep_fraction * self.best_acc

    def accept_epoch(self, loss: float, acc: float, spikes: Mapping[str, float]) -> None:
        """A good epoch: its figures become the references."""
        self.good_loss = float(loss)
        self.good_spikes = {p: float(s) for p, s in spikes.items()}
        self.best_acc = max(self.best_acc, float(acc))

    def state_dict(self) -> dict[str, Any]:
        return {"good_loss": self.good_loss, "good_spikes": dict(self.good_spikes),
                "best_acc": self.best_acc, "first_loss": self.first_loss,
                "first_spikes": dict(self.first_spikes)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.good_loss = state.get("good_loss")
        self.good_spikes = {p: float(s) for p, s in state.get("good_spikes", {}).items()}
        self.best_acc = float(state.get("best_acc", 0.0))
        self.first_loss = state.get("first_loss")
        self.first_spikes = {p: float(s) for p, s in state.get("first_spikes", {}).items()}


def default_guard(model: Any, **overrides: Any) -> RunawayGuard:
    """A guard whose spike targets are the model's regulariser rate ``nu`` for every
    hidden population (when the loss regularises spike counts), else none, and whose
    floor is a spike on 5 % of the trial's steps (at least 1)."""
    ir = getattr(model, "ir", None)
    targets: dict[str, float] = {}
    loss = getattr(ir, "loss", None)
    if loss is not None and (loss.reg_upper > 0 or loss.reg_lower > 0):
        targets = {p.name: float(loss.reg_nu) for p in ir.populations
                   if not p.is_input and p.name != ir.output}
    n_steps = getattr(ir, "n_steps", 0) or 0
    overrides.setdefault("floor", max(1.0, 0.05 * n_steps))
    return RunawayGuard(targets=overrides.pop("targets", targets), **overrides)
