"""Runaway detection and recovery (engine/training/guard.py and its use in fit).

The model here is a one-parameter caricature of a recurrent layer: ``w`` is pulled towards
1 by the loss ``(w - 1)^2 + c`` and the layer fires ``10 max(1, |w|)`` spikes per neuron,
so an optimiser step that overshoots far past 1 is a burst of firing. With Adam the first
step moves ``w`` by about ``lr`` whatever the gradient, so the learning rate alone decides
whether the run "runs away", which makes the expected rollbacks countable by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from gpuspike.engine.training.data import BatchLoader
from gpuspike.engine.training.guard import RunawayGuard, default_guard
from gpuspike.engine.training.loop import TrainingError, fit
from gpuspike.engine.training.optim import Adam, to_host
from gpuspike.engine.training.protocol import StepResult

from tests.training.fakes import DT, N_CHANNELS, N_STEPS, make_dataset


class Burst:
    """``w`` pulled to 1; spikes ``10 max(1, |w|)``; NaN loss beyond ``nan_above``."""

    def __init__(self, w0: float = 0.5, nan_above: float = math.inf) -> None:
        self.xp = np
        self.params = {"w": np.array([w0])}
        self.nan_above = nan_above
        self.n_inputs, self.n_steps, self.dt = N_CHANNELS, N_STEPS, DT

    def _result(self, batch, grads):
        w = float(self.params["w"][0])
        loss = (w - 1.0) ** 2 + 0.1
        if abs(w) > self.nan_above:
            loss = math.nan
        n = batch.size
        labels = to_host(batch.labels)
        good = abs(w - 1.0) < 0.5
        pred = labels if good else (labels + 1) % 3
        return StepResult(loss, int(good) * n, n, pred, grads,
                          {"hidden": 10.0 * max(1.0, abs(w))})

    def loss_and_grad(self, batch):
        w = self.params["w"]
        return self._result(batch, {"w": 2.0 * (w - 1.0)})

    def evaluate(self, batch):
        return self._result(batch, None)

    def after_epoch(self):
        return {}

    def state_dict(self):
        return {"w": self.params["w"].copy()}

    def load_state_dict(self, state):
        self.params["w"][...] = state["w"]


def train_loader():
    return BatchLoader(make_dataset(48, seed=0), batch_size=4, dt=DT, n_steps=N_STEPS, seed=3)


def test_batch_checks_name_the_cause() -> None:
    g = RunawayGuard(window=3, targets={"hidden": 10.0})
    for _ in range(3):
        assert g.check_batch(1.0, {"hidden": 12.0}) is None
    cause = None
    for _ in range(3):
        cause = cause or g.check_batch(1.0, {"hidden": 40.0})
    # reference: the first batch (12) beats the target (10)
    assert cause is not None and "'hidden'" in cause and "3.3x its reference 12.0" in cause
    # loss: twice the reference and 0.5 above it, over the window
    g = RunawayGuard(window=2)
    g.accept_epoch(0.4, 0.8, {"hidden": 5.0})
    assert g.check_batch(0.85, {"hidden": 5.0}) is None
    assert g.check_batch(0.85, {"hidden": 5.0}) is None   # 2.1x but only +0.45
    assert g.check_batch(1.2, {"hidden": 5.0}) is not None
    assert "not finite" not in (RunawayGuard().check_batch(math.inf, {}) or "")
    assert RunawayGuard().check_batch(math.nan, {}) == "the loss is nan"


def test_spike_reference_is_the_larger_of_target_and_good_epoch() -> None:
    # a network that fires more than the target without running away is not flagged
    g = RunawayGuard(window=2, targets={"hidden": 5.0})
    g.accept_epoch(1.0, 0.5, {"hidden": 30.0})
    assert g.check_batch(1.0, {"hidden": 80.0}) is None
    assert g.check_batch(1.0, {"hidden": 80.0}) is None      # 2.7x of 30
    assert g.check_batch(1.0, {"hidden": 120.0}) is not None  # 3.3x over the window


def test_a_nearly_silent_start_is_no_reference_for_a_runaway() -> None:
    """A layer that starts (almost) silent without a regulariser learns to fire: below the
    floor nothing is a runaway; far above it still is."""
    g = RunawayGuard(window=2, floor=2.0)
    assert g.check_batch(1.0, {"hidden": 0.0}) is None   # the first batch: the reference
    assert g.check_batch(1.0, {"hidden": 5.0}) is None
    assert g.check_batch(1.0, {"hidden": 5.0}) is None     # 2.5x the floor
    assert "its reference 2.0" in g.check_batch(1.0, {"hidden": 9.0})


def test_accuracy_collapse_after_an_epoch() -> None:
    g = RunawayGuard()
    g.accept_epoch(1.0, 0.8, {})
    assert g.check_epoch(0.5, 10) is None
    assert "0.300" in g.check_epoch(0.3, 10)
    assert not g.is_good(0.7) and g.is_good(0.75)


def test_fit_rolls_back_and_lowers_the_rate(tmp_path) -> None:
    # Adam's first step moves w by ~lr: lr 8 -> w ~8.5 (85 spikes, 8.5x), 4 -> ~4.5 (4.5x),
    # 2 -> ~2.5 (2.5x: not a runaway), so two rollbacks to the start, then training goes on
    m = Burst()
    res = fit(m, train_loader(), epochs=3, optimiser=Adam(8.0), progress=False,
              guard=RunawayGuard(window=1, targets={"hidden": 10.0}, loss_factor=1e3),
              checkpoint_dir=str(tmp_path / "ck"))
    assert [(e["epoch"], e["rolled_back_to"]) for e in res.runaways] == [(0, -1), (0, -1)]
    assert [e["lr_after"] for e in res.runaways] == [4.0, 2.0]
    assert all("'hidden' fires" in e["cause"] for e in res.runaways)
    assert [r["epoch"] for r in res.history] == [0, 1, 2]
    assert res.history[0]["diagnostics"]["runaways"] == 2.0
    assert res.history[0]["lr"] == 2.0
    # the lowered rate and the events survive a resume
    m2 = Burst()
    res2 = fit(m2, train_loader(), epochs=4, optimiser=Adam(8.0), progress=False,
               guard=RunawayGuard(window=1, targets={"hidden": 10.0}, loss_factor=1e3),
               checkpoint_dir=str(tmp_path / "ck"), resume=True)
    assert res2.start_epoch == 3 and len(res2.runaways) == 2
    assert res2.history[-1]["lr"] == 2.0


def test_fit_without_recovery_left_stops_with_the_cause() -> None:
    with pytest.raises(TrainingError, match=r"runaway at epoch 0, batch \d+: 'hidden' fires"):
        fit(Burst(), train_loader(), epochs=2, optimiser=Adam(8.0), progress=False,
            guard=RunawayGuard(window=1, targets={"hidden": 10.0}, loss_factor=1e3,
                               max_recoveries=1))


def test_non_finite_loss_is_a_runaway_with_the_guard() -> None:
    m = Burst(nan_above=3.0)
    res = fit(m, train_loader(), epochs=2, optimiser=Adam(8.0), progress=False,
              guard=RunawayGuard(window=2, spike_factor=1e3, loss_factor=1e3))
    assert [e["cause"] for e in res.runaways] == ["the loss is nan", "the loss is nan"]
    assert abs(float(m.params["w"][0]) - 1.0) < 1.5


def test_loss_rise_is_a_runaway() -> None:
    # lr 8: the loss goes from 0.35 to ~56 at once; lr 4: ~12; lr 2: ~2.35 (6.7x, +2):
    # each a runaway; lr 1: ~0.35 again
    res = fit(Burst(), train_loader(), epochs=1, optimiser=Adam(8.0), progress=False,
              guard=RunawayGuard(window=1, spike_factor=1e3))
    assert [e["lr_after"] for e in res.runaways] == [4.0, 2.0, 1.0]
    assert all(e["cause"].startswith("the loss rose to") for e in res.runaways)


def test_default_guard_targets_the_regulariser() -> None:
    from gpuspike.bridge.training_ir import LossSpec
    from gpuspike.engine.eventprop.builders import LayeredConfig, layered_ir

    class M:
        pass

    m = M()
    m.ir = layered_ir(LayeredConfig(4, 6, 2, True, loss=LossSpec("avg_ce", reg_nu=7.0,
                                                                 reg_upper=1e-4)))
    assert default_guard(m).targets == {"hidden": 7.0}
    m.ir = layered_ir(LayeredConfig(4, 6, 2, True))
    assert default_guard(m).targets == {}
    assert default_guard(m).floor == 1.0    # 20 steps
    m.ir = layered_ir(LayeredConfig(4, 6, 2, True, n_steps=300))
    assert default_guard(m).floor == 15.0
