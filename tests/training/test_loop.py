"""Tests of fit/evaluate: learning, resume equality, early stopping, checkpoint refusal."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gpuspike.engine.training.checkpoint import CheckpointError, load_checkpoint
from gpuspike.engine.training.data import BatchLoader
from gpuspike.engine.training.loop import TrainingError, evaluate, fit
from gpuspike.engine.training.optim import SGD, Adam, to_host
from gpuspike.engine.training.protocol import StepResult
from gpuspike.engine.training.schedules import EaseIn, ExponentialDecay, ReduceOnPlateau

from gpuspike.datasets import augment as A
from tests.training.fakes import DT, N_CHANNELS, N_STEPS, LogReg, make_dataset

AUG = A.Compose((A.step(A.channel_jitter, n_channels=N_CHANNELS, max_jitter=1),))


def loaders(xp, seed: int = 5):
    train = BatchLoader(
        make_dataset(48, seed=0),
        batch_size=8,
        dt=DT,
        n_steps=N_STEPS,
        xp=xp,
        seed=seed,
        augment=AUG,
    )
    val = BatchLoader(
        make_dataset(24, seed=1), batch_size=10, dt=DT, n_steps=N_STEPS, xp=xp, shuffle=False
    )
    return train, val


def without_times(history):
    return [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in history]


def test_fit_learns_and_reports(xp, tmp_path) -> None:
    train, val = loaders(xp)
    model = LogReg(xp)
    res = fit(
        model,
        train,
        epochs=6,
        optimiser=Adam(0.05),
        val=val,
        test=val,
        progress=False,
        checkpoint_dir=tmp_path,
    )
    h = res.history
    assert [r["epoch"] for r in h] == list(range(6))
    assert h[-1]["train_loss"] < h[0]["train_loss"]
    assert res.final["val_acc"] > 0.8 and res.final["test_acc"] == res.final["val_acc"]
    assert res.test_confusion.sum() == 24 and res.test_confusion.shape == (3, 3)
    assert [r["diagnostics"]["after_epoch_calls"] for r in h] == [1, 2, 3, 4, 5, 6]
    assert all(r["diagnostics"]["batches"] == len(train) for r in h)  # summed over batches
    assert all(r["spikes_per_neuron"]["out"] > 0 for r in h)
    assert res.epoch_time_s > 0 and res.peak_memory_bytes > 0
    assert res.memory_source == ("maxrss" if xp.__name__ == "numpy" else "cupy_pool_used")
    assert res.best_epoch == int(np.nanargmax([r["val_acc"] for r in h]))
    saved = json.loads((tmp_path / "history.json").read_text())
    assert without_times(saved) == without_times(h)
    assert (tmp_path / "history.csv").read_text().count("\n") == 7


def test_evaluate_weights_batches_by_size(xp) -> None:
    _, val = loaders(xp)
    model = LogReg(xp, seed=3)
    loss, acc, cm = evaluate(model, val)  # batches of 10, 10, 4
    whole = BatchLoader(val.dataset, batch_size=24, dt=DT, n_steps=N_STEPS, xp=xp, shuffle=False)
    r = model.evaluate(next(iter(whole)))
    assert loss == pytest.approx(r.loss, rel=1e-12)
    assert acc == r.correct / 24 == np.trace(cm) / 24
    np.testing.assert_array_equal(cm.sum(axis=1), np.bincount(val.dataset.labels))


class Crash(Exception):
    pass


class CrashingLogReg(LogReg):
    """Dies in the middle of the ``at``-th batch it trains on (a killed process)."""

    def __init__(self, xp, at: int) -> None:
        super().__init__(xp)
        self.calls, self.at = 0, at

    def loss_and_grad(self, batch):
        self.calls += 1
        if self.calls == self.at:
            raise Crash
        return super().loss_and_grad(batch)


def test_resume_after_a_crash_is_identical(xp, tmp_path) -> None:
    cfg = {"n_hidden": 0, "dataset": "toy", "epochs": 4}

    def run(model, epochs, resume, d, **kw):
        train, val = loaders(xp)
        sched = EaseIn(inner=ExponentialDecay(0.8), start=0.1, factor=1.5)
        return fit(
            model,
            train,
            epochs=epochs,
            optimiser=Adam(0.05),
            schedule=sched,
            val=val,
            checkpoint_dir=d,
            resume=resume,
            progress=False,
            config=cfg,
            **kw,
        )

    straight_model = LogReg(xp)
    straight = run(straight_model, 4, False, tmp_path / "a")

    # first run: killed in the middle of epoch 2 (6 batches per epoch)
    with pytest.raises(Crash):
        run(CrashingLogReg(xp, at=2 * 6 + 3), 4, False, tmp_path / "b")
    assert load_checkpoint(tmp_path / "b").epoch == 1
    resumed_model = LogReg(xp, seed=99)  # other initial weights: all must come from the file
    resumed = run(resumed_model, 4, True, tmp_path / "b")
    assert resumed.start_epoch == 2
    for k in straight_model.params:
        np.testing.assert_array_equal(
            to_host(resumed_model.params[k]), to_host(straight_model.params[k])
        )
    assert without_times(resumed.history) == without_times(straight.history)
    assert resumed_model.epochs_seen == 4

    # 2 epochs, then resume for 2 more
    m2 = LogReg(xp)
    run(m2, 2, False, tmp_path / "c")
    m3 = LogReg(xp, seed=7)
    res3 = run(m3, 4, True, tmp_path / "c")
    np.testing.assert_array_equal(to_host(m3.params["w"]), to_host(straight_model.params["w"]))
    assert without_times(res3.history) == without_times(straight.history)


def test_resume_refusals(xp, tmp_path) -> None:
    train, _ = loaders(xp)
    fit(
        LogReg(xp),
        train,
        epochs=1,
        optimiser=SGD(0.1),
        checkpoint_dir=tmp_path,
        progress=False,
        config={"n_hidden": 8, "dataset": "toy"},
    )
    with pytest.raises(CheckpointError, match="resume=True"):
        fit(
            LogReg(xp), train, epochs=2, optimiser=SGD(0.1), checkpoint_dir=tmp_path, progress=False
        )
    with pytest.raises(CheckpointError, match="n_hidden: saved 8, now 16"):
        fit(
            LogReg(xp),
            train,
            epochs=2,
            optimiser=SGD(0.1),
            checkpoint_dir=tmp_path,
            resume=True,
            progress=False,
            config={"n_hidden": 16, "dataset": "toy"},
            config_keys=["n_hidden"],
        )
    other, _ = loaders(xp, seed=6)
    with pytest.raises(CheckpointError, match="seed"):
        fit(
            LogReg(xp),
            other,
            epochs=2,
            optimiser=SGD(0.1),
            checkpoint_dir=tmp_path,
            resume=True,
            progress=False,
        )
    # resuming a finished run trains nothing
    res = fit(
        LogReg(xp),
        train,
        epochs=1,
        optimiser=SGD(0.1),
        checkpoint_dir=tmp_path,
        resume=True,
        progress=False,
    )
    assert res.start_epoch == 1 and len(res.history) == 1 and np.isnan(res.epoch_time_s)


class Scripted:
    """One parameter ``p`` that grows by ``lr`` per batch; val accuracy follows a script
    indexed by the number of epochs trained."""

    def __init__(self, script, xp=np) -> None:
        self.xp = xp
        self.params = {"p": np.zeros(1)}
        self.script = script
        self.epochs = 0
        self.n_inputs, self.n_steps, self.dt = N_CHANNELS, N_STEPS, DT

    def loss_and_grad(self, batch):
        n = batch.size
        return StepResult(1.0, 0, n, np.zeros(n, int), grads={"p": -np.ones(1)})

    def evaluate(self, batch):
        n = batch.size
        acc = self.script[self.epochs - 1]
        k = int(round(acc * n))
        labels = to_host(batch.labels)
        pred = np.where(np.arange(n) < k, labels, (labels + 1) % 3)
        return StepResult(1.0 - acc, k, n, pred)

    def after_epoch(self):
        self.epochs += 1
        return {}

    def state_dict(self):
        return {"p": self.params["p"].copy(), "epochs": np.array(self.epochs)}

    def load_state_dict(self, state):
        self.params["p"][...] = state["p"]
        self.epochs = int(state["epochs"])


def test_early_stopping_restores_the_best(tmp_path) -> None:
    train = BatchLoader(make_dataset(12), batch_size=4, dt=DT, n_steps=N_STEPS)
    val = BatchLoader(make_dataset(10), batch_size=10, dt=DT, n_steps=N_STEPS, shuffle=False)
    script = [0.2, 0.5, 0.4, 0.5, 0.3, 0.9, 0.9]
    model = Scripted(script)
    seen = []
    res = fit(
        model,
        train,
        epochs=7,
        optimiser=SGD(1.0),
        val=val,
        early_stopping_patience=2,
        progress=False,
        on_epoch_end=seen.append,
    )
    # best 0.5 at epoch 1; epochs 2, 3 bring nothing better (a tie is not better): stop
    assert res.stopped_early and res.best_epoch == 1 and res.best_value == 0.5
    assert len(res.history) == len(seen) == 4
    assert model.params["p"][0] == 2 * 3  # 3 batches per epoch, lr 1: p after epoch 1
    # the same with a checkpoint and a resume in between keeps the best from the file
    m1 = Scripted(script)
    fit(
        m1,
        train,
        epochs=3,
        optimiser=SGD(1.0),
        val=val,
        early_stopping_patience=2,
        progress=False,
        checkpoint_dir=tmp_path,
    )
    m2 = Scripted(script)
    res2 = fit(
        m2,
        train,
        epochs=7,
        optimiser=SGD(1.0),
        val=val,
        early_stopping_patience=2,
        progress=False,
        checkpoint_dir=tmp_path,
        resume=True,
    )
    assert res2.stopped_early and res2.best_epoch == 1 and m2.params["p"][0] == 6
    assert without_times(res2.history) == without_times(res.history)
    # a callback can stop the run
    m3 = Scripted(script)
    res3 = fit(
        m3,
        train,
        epochs=7,
        optimiser=SGD(1.0),
        val=val,
        progress=False,
        on_epoch_end=lambda rec: rec["epoch"] == 0,
    )
    assert len(res3.history) == 1 and not res3.stopped_early


def test_schedule_drives_the_optimiser() -> None:
    train = BatchLoader(make_dataset(12), batch_size=4, dt=DT, n_steps=N_STEPS)
    model = Scripted([0.5] * 3)
    sched = ExponentialDecay(0.5)
    res = fit(model, train, epochs=3, optimiser=SGD(1.0), schedule=sched, progress=False)
    assert res.monitor == "train_acc"  # no val loader
    assert [r["lr"] for r in res.history] == [1.0, 0.5, 0.25]
    assert model.params["p"][0] == pytest.approx(3 * (1.0 + 0.5 + 0.25))  # sum of the rates
    plateau = ReduceOnPlateau(factor=0.5, patience=0)
    m = Scripted([0.5] * 3)  # constant loss: every epoch after the first halves the rate
    res = fit(m, train, epochs=3, optimiser=SGD(1.0), schedule=plateau, progress=False)
    assert [r["lr"] for r in res.history] == [1.0, 1.0, 0.5]


def test_nan_loss_stops_with_a_typed_error(xp) -> None:
    class NaNModel(LogReg):
        def loss_and_grad(self, batch):
            r = super().loss_and_grad(batch)
            r.loss = float("nan")
            return r

    train, _ = loaders(xp)
    with pytest.raises(TrainingError, match="learning rate"):
        fit(NaNModel(xp), train, epochs=1, optimiser=SGD(0.1), progress=False)


def test_progress_bar_and_summary_on_a_terminal(monkeypatch, capsys) -> None:
    from gpuspike.engine.training import loop

    monkeypatch.setattr(loop, "_stderr_is_tty", lambda: True)
    train, val = loaders(np)
    fit(LogReg(np), train, epochs=1, optimiser=SGD(0.1), val=val)
    err = capsys.readouterr().err
    assert "epoch 1/1: loss" in err and "val loss" in err
    monkeypatch.setattr(loop, "_stderr_is_tty", lambda: False)
    fit(LogReg(np), train, epochs=1, optimiser=SGD(0.1), val=val)
    assert capsys.readouterr().err == ""


def test_history_records_parameter_norms_and_gradient_peaks(xp) -> None:
    from gpuspike.engine.training.clipping import AutoClip

    train, _ = loaders(xp)
    m = LogReg(xp)
    opt = Adam(0.05, clip=AutoClip(90.0, warmup=2))
    res = fit(m, train, epochs=2, optimiser=opt, progress=False)
    last = res.history[-1]["diagnostics"]
    for name, w in m.params.items():
        assert last[f"norm.{name}"] == pytest.approx(np.linalg.norm(to_host(w)), rel=1e-12)
        assert last[f"grad_max.{name}"] == pytest.approx(max(opt.clip.history[name][-6:]))
