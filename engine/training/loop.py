"""Train a :class:`~gpuspike.engine.training.protocol.Trainable` for a number of epochs.

Per batch ``i`` of epoch ``e`` (``g`` counting batches since the start of training):
``optimiser.lr = schedule.lr(base_lr, e, i, len(train), g)``, ``r = model.loss_and_grad(batch)``,
``optimiser.step(model.params, r.grads)``. After each epoch: ``model.after_epoch()``,
validation with ``model.evaluate``, a history record, and a checkpoint from which a killed
run resumes at the next epoch with the same batches (the loader replays epoch ``e`` from
``(seed, e)`` alone).
"""

from __future__ import annotations

import copy
import logging
import math
import resource
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gpuspike.bridge.errors import GpuspikeError, ModelError

from .checkpoint import (
    CheckpointError,
    has_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from .data import BatchLoader
from .guard import Runaway, RunawayGuard
from .history import EpochRecord, History, confusion_matrix, flatten
from .optim import Optimiser, to_host
from .protocol import Batch, Trainable

_log = logging.getLogger("gpuspike")


class TrainingError(GpuspikeError, RuntimeError):
    """Training cannot go on (e.g. the loss became NaN or infinite)."""


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes
    ----------
    history : list of dict
        Every epoch record, including those of a resumed-from run.
    monitor : str
        Metric that chose the best epoch (``val_*`` falls back to ``train_*`` without
        validation data).
    best_epoch, best_value : int or None, float or None
        Epoch with the best finite ``monitor`` value and that value.
    final : dict
        ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc`` of the last epoch, and
        ``test_loss``, ``test_acc`` of the returned parameters when a test loader was given.
    epoch_time_s : float
        Mean training time of the epochs run by this call (NaN if none ran).
    peak_memory_bytes : int
        CuPy: high-water mark of the default memory pool's ``used_bytes``; NumPy: the
        process's peak resident set (``ru_maxrss``).
    memory_source : str
        ``"cupy_pool_used"`` or ``"maxrss"``.
    peak_pool_bytes : int or None
        CuPy: high-water mark of the pool's ``total_bytes`` (held, used or not).
    stopped_early : bool
        Whether early stopping ended the run.
    start_epoch : int
        First epoch this call trained (> 0 after a resume).
    test_confusion : numpy.ndarray or None
        Confusion matrix on the test loader.
    runaways : list of dict
        Every runaway the guard detected (epoch, batch, cause, epoch rolled back to,
        learning rate after), resumed-from runs included.
    """

    history: list[dict[str, Any]]
    monitor: str
    best_epoch: int | None
    best_value: float | None
    final: dict[str, float | None]
    epoch_time_s: float
    peak_memory_bytes: int
    memory_source: str
    peak_pool_bytes: int | None = None
    stopped_early: bool = False
    start_epoch: int = 0
    test_confusion: np.ndarray | None = field(default=None, repr=False)
    runaways: list[dict[str, Any]] = field(default_factory=list)


class _Memory:
    """High-water marks of the CuPy pool, or the process's peak RSS for NumPy."""

    def __init__(self, xp: Any) -> None:
        self.pool = None
        if getattr(xp, "__name__", "") == "cupy":
            self.pool = xp.get_default_memory_pool()
        self.used = 0
        self.total = 0

    def sample(self) -> None:
        if self.pool is not None:
            self.used = max(self.used, int(self.pool.used_bytes()))
            self.total = max(self.total, int(self.pool.total_bytes()))

    def result(self) -> tuple[int, str, int | None]:
        if self.pool is not None:
            self.sample()
            return self.used, "cupy_pool_used", self.total
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(rss if sys.platform == "darwin" else rss * 1024), "maxrss", None


def _better(value: float | None, best: float | None, mode: str) -> bool:
    if value is None or not math.isfinite(value):
        return False
    if best is None:
        return True
    return value > best if mode == "max" else value < best


def evaluate(
    model: Trainable, loader: Iterable[Batch], n_classes: int | None = None
) -> tuple[float, float, np.ndarray]:
    """Loss, accuracy and confusion matrix of ``model`` on every batch of ``loader``.

    ``loss = sum_b n_b L_b / sum_b n_b`` (batch means weighted by batch size),
    ``acc = sum_b correct_b / sum_b n_b``.

    Parameters
    ----------
    model : Trainable
        Evaluated with ``model.evaluate(batch)`` (no gradients, no parameter change).
    loader : iterable of Batch
        Usually a :class:`~gpuspike.engine.training.data.BatchLoader` with ``shuffle=False``.
    n_classes : int, optional
        Size of the confusion matrix (by default the largest label or prediction + 1).

    Returns
    -------
    tuple
        ``(loss, accuracy, confusion)``; ``confusion[i, j]`` counts class ``i`` predicted
        as ``j``.
    """
    loss_sum, correct, n = 0.0, 0, 0
    labels, preds = [], []
    for batch in loader:
        r = model.evaluate(batch)
        loss_sum += float(r.loss) * r.n
        correct += int(r.correct)
        n += int(r.n)
        labels.append(to_host(batch.labels).astype(np.int64))
        preds.append(np.asarray(r.predictions, dtype=np.int64))
    if n == 0:
        raise ModelError("evaluate got no examples; pass a loader with at least one batch")
    cm = confusion_matrix(np.concatenate(labels), np.concatenate(preds), n_classes)
    return loss_sum / n, correct / n, cm


def _n_classes(*loaders: Any) -> int | None:
    ks = [lo.n_classes for lo in loaders if lo is not None and hasattr(lo, "n_classes")]
    return max(ks) if ks else None


def _growth(model: Trainable, optimiser: Optimiser, nb: int) -> dict[str, float]:
    """What grows first before a runaway: each parameter's norm ``||W||_2`` after the epoch
    (``norm.<name>``) and, with AutoClip, the largest gradient norm of the epoch's ``nb``
    batches (``grad_max.<name>``, before clipping)."""
    out = {}
    for name, w in model.params.items():
        out[f"norm.{name}"] = float(np.linalg.norm(to_host(w).astype(np.float64)))
    for name, hist in getattr(getattr(optimiser, "clip", None), "history", {}).items():
        if hist:
            out[f"grad_max.{name}"] = float(max(hist[-nb:]))
    return out


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def fit(
    model: Trainable,
    train: BatchLoader,
    *,
    epochs: int,
    optimiser: Optimiser,
    schedule: Any = None,
    val: BatchLoader | None = None,
    test: BatchLoader | None = None,
    checkpoint_dir: str | None = None,
    resume: bool = False,
    early_stopping_patience: int | None = None,
    monitor: str = "val_acc",
    mode: str | None = None,
    progress: bool = True,
    on_epoch_end: Callable[[dict[str, Any]], bool | None] | None = None,
    config: Mapping[str, Any] | None = None,
    config_keys: Sequence[str] | None = None,
    guard: RunawayGuard | None = None,
    test_every: int | None = None,
) -> FitResult:
    """Train ``model`` on ``train`` for ``epochs`` epochs (0-based ``0 .. epochs - 1``).

    Parameters
    ----------
    model : Trainable
        The network; ``model.params`` is updated in place.
    train : BatchLoader
        Training batches; ``train.set_epoch(e)`` is called before epoch ``e``.
    epochs : int
        Total epochs, counting those of a resumed-from run.
    optimiser : Optimiser
        Its ``lr`` at the start of a fresh run is the base rate of the schedule.
    schedule : Schedule, optional
        ``lr(base_lr, epoch, batch_in_epoch, batches_per_epoch, global_batch)``; one with
        ``observe`` (:class:`~gpuspike.engine.training.schedules.ReduceOnPlateau`) is shown
        the validation loss (the training loss without ``val``) after each epoch.
    val, test : BatchLoader, optional
        Validation after each epoch; test once at the end, on the returned parameters.
    checkpoint_dir : path, optional
        Where ``last``/``best`` checkpoints and ``history.csv``/``history.json`` go after
        every epoch.
    resume : bool, optional
        Continue from the checkpoint in ``checkpoint_dir`` (a fresh start if it has none).
        Without it a ``checkpoint_dir`` that already holds a checkpoint is refused.
    early_stopping_patience : int, optional
        Stop after this many epochs in a row without a better ``monitor`` value, and (in
        any case, when given) end with the parameters of the best epoch.
    monitor : str, optional
        History key that defines "best" (``val_*`` becomes ``train_*`` without ``val``).
    mode : {"max", "min"}, optional
        Default: ``"min"`` if ``"loss"`` is in ``monitor``, else ``"max"``.
    progress : bool, optional
        tqdm bar per epoch (only when stderr is a terminal).
    on_epoch_end : callable, optional
        Called with each epoch's record (after the checkpoint); returning ``True`` stops.
    config : mapping, optional
        Saved in every checkpoint; on resume compared with the saved one.
    config_keys : sequence of str, optional
        Keys (dotted for nested dicts) that must match on resume; all keys when ``None``.
    guard : RunawayGuard, optional
        Detects runaways (:mod:`~gpuspike.engine.training.guard`): the run rolls back to the
        last good epoch with a lower learning rate, and stops with :class:`TrainingError`
        when that no longer helps. Without it a non-finite loss stops the run at once.
    test_every : int, optional
        Also evaluate ``test`` after every ``test_every``-th epoch (and the last), into the
        history's ``test_loss``/``test_acc`` (learning curves; never used to choose epochs).

    Returns
    -------
    FitResult
    """
    if epochs < 0:
        raise ModelError(f"epochs must be >= 0, got {epochs}")
    if resume and checkpoint_dir is None:
        raise ModelError("resume=True needs the checkpoint_dir to resume from")
    if test_every is not None and (test_every < 1 or test is None):
        raise ModelError(f"test_every must be >= 1 and needs a test loader, got {test_every}"
                         f" with {'a' if test is not None else 'no'} test loader")
    if early_stopping_patience is not None and early_stopping_patience < 1:
        raise ModelError(f"early_stopping_patience must be >= 1, got {early_stopping_patience}")
    if monitor.startswith("val_") and val is None:
        monitor = "train_" + monitor[len("val_") :]
    mode = mode or ("min" if "loss" in monitor else "max")
    if mode not in ("max", "min"):
        raise ModelError(f"mode must be 'max' or 'min', got {mode!r}")
    n_classes = _n_classes(train, val, test)
    show = bool(progress) and _stderr_is_tty()
    memory = _Memory(getattr(model, "xp", np))

    history = History()
    runaways: list[dict[str, Any]] = []
    start_epoch, global_batch, base_lr = 0, 0, float(optimiser.lr)
    stopped_early = False
    best_state: dict[str, np.ndarray] | None = None
    if checkpoint_dir is not None and not resume and has_checkpoint(checkpoint_dir):
        raise CheckpointError(
            f"{checkpoint_dir} already holds a checkpoint; pass resume=True to continue it, "
            "or choose an empty checkpoint_dir (or delete the old one) to start afresh"
        )
    if resume:
        ckpt = load_checkpoint(checkpoint_dir, config=config, config_keys=config_keys)
        if ckpt is not None:
            seed = ckpt.extra.get("train_seed")
            if seed != getattr(train, "seed", None):
                raise CheckpointError(
                    f"the checkpoint in {checkpoint_dir} was trained with loader seed {seed}, "
                    f"this train loader has seed {getattr(train, 'seed', None)}; resuming "
                    "would see other batches: pass the saved seed, or start afresh"
                )
            model.load_state_dict(ckpt.model_state)
            optimiser.load_state_dict(ckpt.optimiser_state)
            if schedule is not None and hasattr(schedule, "load_state_dict"):
                schedule.load_state_dict(ckpt.schedule_state)
            history = History(ckpt.history)
            start_epoch = ckpt.epoch + 1
            global_batch = int(ckpt.extra["global_batch"])
            base_lr = float(ckpt.extra["base_lr"])
            stopped_early = bool(ckpt.extra.get("stopped_early", False))
            runaways = list(ckpt.extra.get("runaways", []))
            if guard is not None and ckpt.extra.get("guard"):
                guard.load_state_dict(ckpt.extra["guard"])

    best_epoch, best_value = history.best(monitor, mode)
    since_best = 0
    if len(history):
        last_epoch = int(history[-1]["epoch"])
        since_best = last_epoch - best_epoch if best_epoch is not None else len(history)
    if early_stopping_patience is not None and best_epoch is not None and resume:
        best = load_checkpoint(checkpoint_dir, which="best")
        if best is not None and best.epoch == best_epoch:
            best_state = best.model_state

    times: list[float] = []
    nb = len(train)

    def snapshot(last_epoch: int) -> dict[str, Any]:
        """What a rollback restores: the state after epoch ``last_epoch``."""
        return copy.deepcopy({
            "epoch": last_epoch, "model": model.state_dict(),
            "optimiser": optimiser.state_dict(),
            "schedule": schedule.state_dict()
            if schedule is not None and hasattr(schedule, "state_dict") else None,
            "history": len(history), "global_batch": global_batch,
            "best": (best_epoch, best_value, since_best, best_state),
        })

    good = snapshot(start_epoch - 1) if guard is not None else None
    attempts = 0  # runaways since the last good epoch
    epoch = start_epoch
    while epoch < epochs:
        if stopped_early:
            break
        t0 = time.perf_counter()
        if hasattr(train, "set_epoch"):
            train.set_epoch(epoch)
        if guard is not None:
            guard.start_epoch()
        loss_sum, correct, n = 0.0, 0, 0
        spikes: dict[str, float] = {}
        diagnostics: dict[str, float] = {}
        lr = base_lr
        bar = None
        cause: str | None = None
        failed_batch: int | None = None
        if show:
            from tqdm.auto import tqdm

            bar = tqdm(total=nb, desc=f"epoch {epoch + 1}/{epochs}", leave=False, file=sys.stderr)
        for b, batch in enumerate(train):
            if schedule is not None:
                lr = float(schedule.lr(base_lr, epoch, b, nb, global_batch))
            optimiser.lr = lr
            try:
                r = model.loss_and_grad(batch)
            except TrainingError as err:  # non-finite gradients, named by the model
                if guard is None:
                    raise
                cause, failed_batch = str(err), b
                break
            if guard is not None:
                cause = guard.check_batch(float(r.loss), r.spikes_per_neuron)
                if cause is not None:
                    failed_batch = b
                    break
            elif not math.isfinite(r.loss):
                raise TrainingError(
                    f"the loss is {r.loss} at epoch {epoch}, batch {b}: training diverged; "
                    f"lower the learning rate (now {lr:g}) and resume from the last "
                    "checkpoint or start afresh"
                )
            optimiser.step(model.params, r.grads)
            global_batch += 1
            memory.sample()
            loss_sum += float(r.loss) * r.n
            correct += int(r.correct)
            n += int(r.n)
            for pop, v in r.spikes_per_neuron.items():
                spikes[pop] = spikes.get(pop, 0.0) + float(v) * r.n
            for k, v in r.diagnostics.items():
                diagnostics[k] = diagnostics.get(k, 0.0) + float(v)
            if bar is not None:
                post = {"loss": f"{loss_sum / n:.4f}", "acc": f"{correct / n:.3f}"}
                post.update({f"spk/{p}": f"{s / n:.2f}" for p, s in spikes.items()})
                bar.set_postfix(post, refresh=False)
                bar.update(1)
        if guard is not None and cause is None and n:
            cause = guard.check_epoch(correct / n, n_classes)
        if cause is not None:
            if bar is not None:
                bar.close()
            assert guard is not None and good is not None
            where = f"epoch {epoch}" + (f", batch {failed_batch}" if failed_batch is not None
                                        else "")
            if attempts >= guard.max_recoveries:
                raise TrainingError(
                    f"runaway at {where}: {cause}; {attempts} rollback(s) to the state after "
                    f"epoch {good['epoch']} with the learning rate lowered to {base_lr:g} did not "
                    "stop it. Lower --lr, raise the spike regularisation (--reg), or start "
                    "from smaller recurrent weights"
                )
            attempts += 1
            base_lr *= guard.lr_factor
            event = Runaway(epoch, failed_batch, cause, good["epoch"], base_lr)
            runaways.append(event.as_dict())
            restored = copy.deepcopy(good)
            model.load_state_dict(restored["model"])
            optimiser.load_state_dict(restored["optimiser"])
            if restored["schedule"] is not None:
                schedule.load_state_dict(restored["schedule"])
            history = History(history.records[: restored["history"]])
            global_batch = restored["global_batch"]
            best_epoch, best_value, since_best, best_state = restored["best"]
            back = ("the start" if good["epoch"] < 0 else f"the end of epoch {good['epoch']}")
            msg = (f"runaway at {where}: {cause}; rolled back to {back} and lowered the "
                   f"learning rate to {base_lr:g} "
                   f"(recovery {attempts} of at most {guard.max_recoveries})")
            if show:
                from tqdm.auto import tqdm

                tqdm.write(f"gpuspike: {msg}", file=sys.stderr)
            _log.warning(msg)
            epoch = good["epoch"] + 1
            continue
        if bar is not None:
            bar.close()
        if n == 0:
            raise ModelError("the train loader gave no examples; pass a non-empty loader")
        after = model.after_epoch() or {}
        diagnostics.update({k: float(v) for k, v in after.items()})
        if guard is not None:
            diagnostics["runaways"] = float(sum(1 for e in runaways if e["epoch"] == epoch))
        diagnostics.update(_growth(model, optimiser, nb))
        epoch_time = time.perf_counter() - t0
        times.append(epoch_time)

        val_loss = val_acc = None
        if val is not None:
            val_loss, val_acc, _ = evaluate(model, val, n_classes)
        test_loss = test_acc = None
        if test_every is not None and ((epoch + 1) % test_every == 0 or epoch + 1 == epochs):
            test_loss, test_acc, _ = evaluate(model, test, n_classes)
        if schedule is not None and hasattr(schedule, "observe"):
            schedule.observe(val_loss if val_loss is not None else loss_sum / n)
        rec = history.append(
            EpochRecord(
                epoch=epoch,
                train_loss=loss_sum / n,
                train_acc=correct / n,
                val_loss=val_loss,
                val_acc=val_acc,
                test_loss=test_loss,
                test_acc=test_acc,
                lr=lr,
                epoch_time_s=epoch_time,
                spikes_per_neuron={p: s / n for p, s in spikes.items()},
                diagnostics=diagnostics,
            )
        )
        flat = flatten(rec)
        if monitor not in flat:
            raise ModelError(
                f"monitor={monitor!r} is not in the history record (keys: {sorted(flat)}); "
                "pick one of those"
            )
        value = None if flat[monitor] is None else float(flat[monitor])
        if _better(value, best_value, mode):
            best_epoch, best_value, since_best = epoch, value, 0
            if early_stopping_patience is not None:
                best_state = model.state_dict()
        else:
            since_best += 1
        if early_stopping_patience is not None and since_best >= early_stopping_patience:
            stopped_early = True
        if show:
            from tqdm.auto import tqdm

            val_txt = "" if val_loss is None else f", val loss {val_loss:.4f} acc {val_acc:.3f}"
            if test_acc is not None:
                val_txt += f", test acc {test_acc:.3f}"
            tqdm.write(
                f"epoch {epoch + 1}/{epochs}: loss {rec['train_loss']:.4f} acc "
                f"{rec['train_acc']:.3f}{val_txt}, lr {lr:.3g}, {epoch_time:.1f} s",
                file=sys.stderr,
            )
        if checkpoint_dir is not None:
            save_checkpoint(
                checkpoint_dir,
                epoch,
                model.state_dict(),
                optimiser.state_dict(),
                history.records,
                {
                    "global_batch": global_batch,
                    "base_lr": base_lr,
                    "train_seed": getattr(train, "seed", None),
                    "stopped_early": stopped_early,
                    "runaways": runaways,
                    "guard": guard.state_dict() if guard is not None else None,
                },
                config=config,
                schedule_state=schedule.state_dict()
                if schedule is not None and hasattr(schedule, "state_dict")
                else None,
                monitor=monitor,
                mode=mode,
            )
            history.save(checkpoint_dir)
        if guard is not None:
            acc = correct / n
            if guard.is_good(acc):
                guard.accept_epoch(loss_sum / n, acc, rec["spikes_per_neuron"])
                good, attempts = snapshot(epoch), 0
        epoch += 1
        if on_epoch_end is not None and on_epoch_end(rec) is True:
            break

    if early_stopping_patience is not None and best_state is not None:
        model.load_state_dict(best_state)

    final: dict[str, float | None] = {}
    if len(history):
        last = history[-1]
        final = {k: last.get(k) for k in ("train_loss", "train_acc", "val_loss", "val_acc")}
    test_cm = None
    if test is not None:
        final["test_loss"], final["test_acc"], test_cm = evaluate(model, test, n_classes)
    peak, source, pool = memory.result()
    return FitResult(
        history=history.to_list(),
        monitor=monitor,
        best_epoch=best_epoch,
        best_value=best_value,
        final=final,
        epoch_time_s=float(np.mean(times)) if times else math.nan,
        peak_memory_bytes=peak,
        memory_source=source,
        peak_pool_bytes=pool,
        stopped_early=stopped_early,
        start_epoch=start_epoch,
        test_confusion=test_cm,
        runaways=runaways,
    )
