"""What every frontend's trainer shares: fit, score, evaluate, predict, one example's pass.

A frontend (the Brian2 and PyNN ``EventPropTrainer``\\ s) turns its objects into an
:class:`~gpuspike.engine.eventprop.network.EventPropNetwork` (``self.model``) and answers a
few questions: how a dataset becomes batches on its time grid (:meth:`Trainer.loader`),
whether a dataset fits the network (:meth:`Trainer.check_dataset`), what goes into a
checkpoint's configuration (:meth:`Trainer.config`), what to do before training
(:meth:`Trainer.before_fit`: re-read the user's weights) and after it
(:meth:`Trainer.write_back`: put the trained ones back into the user's objects). The rest
(the loop's wiring with the network's parameter bounds, learning-rate decay, validation,
test, checkpoints, early stopping; accuracy and predictions; one example's spikes and
readout) lives here once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from gpuspike.bridge.errors import ModelError

from . import loop
from .calibrate import calibrate_input_weights
from .guard import RunawayGuard, default_guard
from .optim import Adam, Optimiser, to_host
from .schedules import ExponentialDecay


def trial_steps(duration: float, dt: float, unit: str) -> int:
    """Steps of a trial of ``duration`` on a grid of ``dt`` (both in ``unit``); a duration
    that is not a whole number of steps (to 1e-6 of a step) is an error."""
    if duration is None or not duration > 0:
        raise ModelError(f"duration must be a positive trial length in {unit}, got {duration}")
    n = round(float(duration) / float(dt))
    if n < 1 or abs(n * dt - duration) > 1e-6 * dt:
        raise ModelError(f"duration {duration} {unit} is not a multiple of dt = {dt} {unit}; "
                         f"use e.g. {max(n, 1) * dt:g} {unit}")
    return int(n)


@dataclass
class ExampleForward:
    """One example's forward pass on the engine, in engine terms (a frontend converts units).

    ``spikes[pop] = (steps, neurons)``: engine step and neuron of every spike of each spiking
    population, in step order; ``counts[pop]``: spikes per neuron; ``v``: ``(N + 1, n_out)``
    output voltage at steps ``0..N`` (the user's unit); ``prediction``: the class.
    """

    spikes: dict[str, tuple[np.ndarray, np.ndarray]]
    counts: dict[str, np.ndarray]
    v: np.ndarray
    prediction: int


class Trainer:
    """Base of the frontends' trainers (module docstring). Subclasses set :attr:`model`
    and implement :meth:`loader` and :meth:`write_back`."""

    model: Any
    #: epochs of :meth:`fit` when the caller gives none
    default_epochs: int = 10
    #: the batch size of evaluation and prediction passes when the caller gives none
    eval_batch_size: int = 256

    # -- what a frontend answers -------------------------------------------------------------
    def loader(self, dataset: Any, batch_size: int = 256, *, shuffle: bool = False,
               seed: int = 0, augment: Any = None) -> Any:
        """Batches of ``dataset`` on the network's grid (a BatchLoader)."""
        raise NotImplementedError

    def check_dataset(self, dataset: Any, what: str) -> None:
        """Raise :class:`ModelError` when ``dataset`` does not fit the network."""

    def config(self) -> dict[str, Any]:
        """What a checkpoint records of the network (a resume must find the same)."""
        return {}

    def before_fit(self) -> None:
        """Runs before training (e.g. re-read weights the user changed)."""

    def write_back(self) -> None:
        """Put the model's parameters into the frontend's objects."""
        raise NotImplementedError

    # -- training ----------------------------------------------------------------------------
    def fit(self, train: Any, epochs: int | None = None, batch_size: int = 32,
            lr: float = 1e-2, *, val: Any = None, test: Any = None, lr_decay: float = 1.0,
            schedule: Any = None, optimiser: Optimiser | None = None,
            checkpoint_dir: str | None = None, resume: bool = False, shuffle: bool = True,
            seed: int = 0, early_stopping_patience: int | None = None,
            monitor: str = "val_acc", augment: Any = None, progress: bool = True,
            guard: RunawayGuard | bool = True, test_every: int | None = None,
            weight_decay: float = 0.0) -> loop.FitResult:
        """Train with Adam (``lr``; ``optimiser`` replaces it) for ``epochs`` epochs, then
        write the result into the frontend's objects (also when a resume has no epoch left).

        ``val`` is evaluated after every epoch, ``test`` once at the end; ``lr_decay``
        multiplies the learning rate each epoch (or pass a ``schedule``);
        ``checkpoint_dir`` / ``resume`` / ``early_stopping_patience`` / ``monitor`` are those
        of :func:`gpuspike.engine.training.loop.fit`, whose :class:`FitResult` this returns.
        The network's parameter bounds (delay ranges, PyNN's signs) hold after every update.
        ``guard``: runaway detection and rollback (:mod:`gpuspike.engine.training.guard`;
        ``True``: :func:`~gpuspike.engine.training.guard.default_guard`, ``False``: off);
        ``test_every``: the test accuracy every N epochs, into the history;
        ``weight_decay``: Adam's decoupled weight decay (AdamW; an ``optimiser`` has its own).
        """
        self.check_dataset(train, "training")
        for d, what in ((val, "validation"), (test, "test")):
            if d is not None:
                self.check_dataset(d, what)
        if schedule is not None and lr_decay != 1.0:
            raise ModelError("pass lr_decay or a schedule, not both")
        if optimiser is not None and weight_decay:
            raise ModelError("pass weight_decay or an optimiser, not both: give the optimiser "
                             "its own weight_decay")
        if schedule is None and lr_decay != 1.0:
            schedule = ExponentialDecay(float(lr_decay))
        self.before_fit()
        opt = optimiser if optimiser is not None else Adam(
            float(lr), bounds=dict(self.model.bounds), weight_decay=float(weight_decay))
        evals = {k: None if d is None else self.loader(d, max(batch_size,
                                                               self.eval_batch_size))
                 for k, d in (("val", val), ("test", test))}
        result = loop.fit(
            self.model,
            self.loader(train, batch_size, shuffle=shuffle, seed=seed, augment=augment),
            epochs=self.default_epochs if epochs is None else int(epochs),
            optimiser=opt, schedule=schedule, val=evals["val"], test=evals["test"],
            checkpoint_dir=checkpoint_dir, resume=resume,
            early_stopping_patience=early_stopping_patience, monitor=monitor,
            progress=progress, config=self.config(),
            guard=default_guard(self.model) if guard is True else guard or None,
            test_every=test_every)
        self.model.clamp()
        self.result = result
        self.write_back()
        return result

    def calibrate_inputs(self, dataset: Any, rate: float | None = None, *,
                         batch_size: int = 128, seed: int = 0) -> list[dict[str, Any]]:
        """The data-driven start (:mod:`gpuspike.engine.training.calibrate`): scale the
        input weights of every hidden population so that, on one shuffled batch of
        ``dataset``, it fires ``rate`` spikes per neuron and trial (default: the
        regulariser's ``nu``), and write them into the frontend's objects. Returns what it
        did per population (factor, rates before and after)."""
        self.check_dataset(dataset, "calibration")
        self.before_fit()
        ir = self.model.ir
        nu = float(ir.loss.reg_nu) if rate is None else float(rate)
        targets = {p.name: nu for p in ir.populations
                   if not p.is_input and p.name != ir.output}
        loader = self.loader(dataset, min(batch_size, len(dataset)), shuffle=True, seed=seed)
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(0)
        out = [c.as_dict() for c in calibrate_input_weights(self.model, loader.batch(0),
                                                            targets)]
        self.model.clamp()
        self.write_back()
        return out

    # -- evaluation --------------------------------------------------------------------------
    def score(self, dataset: Any, batch_size: int | None = None) -> tuple[float, float]:
        """``(mean loss, accuracy)`` of the network on ``dataset``."""
        self.check_dataset(dataset, "evaluation")
        loss, acc, _ = loop.evaluate(self.model, self.loader(
            dataset, batch_size or self.eval_batch_size))
        return float(loss), float(acc)

    def evaluate(self, dataset: Any, batch_size: int | None = None) -> float:
        """Accuracy on ``dataset`` (the loss too: :meth:`score`)."""
        return self.score(dataset, batch_size)[1]

    def predict(self, dataset: Any, batch_size: int | None = None) -> np.ndarray:
        """Predicted class of every example of ``dataset``, in order."""
        self.check_dataset(dataset, "prediction")
        return np.concatenate([
            np.asarray(to_host(self.model.evaluate(b).predictions), dtype=np.int64)
            for b in self.loader(dataset, batch_size or self.eval_batch_size)])

    def forward_example(self, dataset: Any, index: int) -> ExampleForward:
        """Example ``index`` of ``dataset`` through the network, as the loader feeds it."""
        self.check_dataset(dataset, "example")
        batch = self.loader(dataset.subset([int(index)]), 1).batch(0)
        tape, terms = self.model.trace(batch, 0)
        spikes = {}
        for name, steps in tape.raster.items():
            idx = [to_host(i).astype(np.int64) for _, i in steps]
            n = np.concatenate([np.full(len(i), s, dtype=np.int64)
                                for (s, _), i in zip(steps, idx)] or [np.zeros(0, np.int64)])
            spikes[name] = (n, np.concatenate(idx or [np.zeros(0, np.int64)]))
        return ExampleForward(
            spikes, {k: to_host(c)[0] for k, c in tape.counts.items()},
            to_host(tape.v_out)[:, 0, :].astype(np.float64),
            int(to_host(terms.predictions)[0]))
