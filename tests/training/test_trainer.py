"""The frontends' shared trainer: fit wiring with the network's bounds, write-back,
evaluation and one example's pass (checked against the network's own passes)."""

from __future__ import annotations

import numpy as np
import pytest
from gpuspike.bridge.errors import ModelError
from gpuspike.engine.eventprop.builders import LayeredConfig, initial_params, layered_ir
from gpuspike.engine.eventprop.network import EventPropNetwork
from gpuspike.engine.training.data import BatchLoader
from gpuspike.engine.training.trainer import Trainer, trial_steps

from .fakes import DT, N_CHANNELS, N_CLASSES, N_STEPS, make_dataset


class ArrayTrainer(Trainer):
    """A frontend whose 'objects' are a dict of arrays."""

    def __init__(self, engine: str) -> None:
        cfg = LayeredConfig(N_CHANNELS, 10, N_CLASSES, True, DT, N_STEPS,
                            init={"in->hidden": (2.0, 0.5), "hidden->hidden": (0.0, 0.1),
                                  "hidden->out": (0.2, 0.4)})
        ir = layered_ir(cfg)
        self.user = initial_params(ir, cfg.init, seed=2)
        # the recurrent weights must stay excitatory (a per-synapse lower bound of 0)
        self.model = EventPropNetwork(ir, self.user, engine=engine, dtype=np.float64,
                                      bounds={"hidden->hidden.w": (np.zeros((10, 10)), None)})
        self.written = 0

    def loader(self, dataset, batch_size=256, *, shuffle=False, seed=0, augment=None):
        return BatchLoader(dataset, batch_size=batch_size, dt=DT, n_steps=N_STEPS,
                           xp=self.model.xp, dtype=self.model.dtype, shuffle=shuffle,
                           seed=seed, augment=augment)

    def write_back(self) -> None:
        self.user = self.model.state_dict()
        self.written += 1


def test_trial_steps_accepts_multiples_of_dt_only():
    assert trial_steps(20.0, 0.1, "ms") == 200
    assert trial_steps(0.02, 1e-3, "s") == 20
    with pytest.raises(ModelError, match="not a multiple of dt"):
        trial_steps(20.05, 0.1, "ms")
    with pytest.raises(ModelError, match="positive"):
        trial_steps(0.0, 0.1, "ms")


def test_fit_keeps_bounds_writes_back_and_evaluates(engine):
    trainer = ArrayTrainer(engine)
    assert (trainer.model.params["hidden->hidden.w"] >= 0).all()   # clamped when made
    train, test = make_dataset(48, 0), make_dataset(24, 1)
    loss0, _ = trainer.score(test)
    result = trainer.fit(train, 4, 16, 5e-2, val=test, lr_decay=0.9, progress=False)
    assert trainer.written == 1 and len(result.history) == 4
    assert result.history[1]["lr"] == pytest.approx(5e-2 * 0.9)
    np.testing.assert_array_equal(trainer.user["hidden->hidden.w"],
                                  trainer.model.params["hidden->hidden.w"])
    assert (trainer.user["hidden->hidden.w"] >= 0).all()
    loss, acc = trainer.score(test)
    assert loss < loss0 and acc == trainer.evaluate(test)
    preds = trainer.predict(test, batch_size=7)
    assert preds.shape == (24,) and acc == pytest.approx(np.mean(preds == test.labels))
    with pytest.raises(ModelError, match="not both"):
        trainer.fit(train, 1, lr_decay=0.9, schedule=object(), progress=False)


def test_fit_weight_decay_shrinks_the_weights_not_the_bounds(engine):
    """Decoupled decay of 5 per unit lr (25 % per step at lr 0.05) caps every input weight
    near ``1 / lambda`` (Adam moves a weight by at most about lr per step), far below the
    undecayed run's (initial mean 2.0); the recurrent bound still holds."""
    train = make_dataset(48, 0)
    plain, decayed = ArrayTrainer(engine), ArrayTrainer(engine)
    plain.fit(train, 4, 16, 5e-2, progress=False, guard=False)
    decayed.fit(train, 4, 16, 5e-2, progress=False, guard=False, weight_decay=5.0)
    w0, w1 = (np.abs(t.user["in->hidden.w"]).max() for t in (plain, decayed))
    assert w1 < 0.4 < 1.0 < w0
    assert (decayed.user["hidden->hidden.w"] >= 0).all()
    with pytest.raises(ModelError, match="weight_decay or an optimiser"):
        plain.fit(train, 1, optimiser=object(), weight_decay=1.0, progress=False)


def test_forward_example_is_the_networks_pass_of_that_example(engine):
    trainer = ArrayTrainer(engine)
    test = make_dataset(6, 3)
    ex = trainer.forward_example(test, 4)
    batch = trainer.loader(test.subset([4]), 1).batch(0)
    raster = trainer.model.raster(batch, 0)["hidden"]
    steps = np.concatenate([np.full(len(i), n) for n, i in raster])
    neurons = np.concatenate([i for _, i in raster])
    np.testing.assert_array_equal(ex.spikes["hidden"][0], steps)
    np.testing.assert_array_equal(ex.spikes["hidden"][1], neurons)
    assert ex.counts["hidden"].sum() == len(steps) > 0
    assert ex.v.shape == (N_STEPS + 1, N_CLASSES)
    assert ex.prediction == trainer.predict(test)[4]


def test_calibrate_inputs_writes_the_scaled_weights_back(engine):
    trainer = ArrayTrainer(engine)
    data = make_dataset(48, 0)
    before = trainer.user["in->hidden.w"].copy()
    (c,) = trainer.calibrate_inputs(data, rate=2.0, batch_size=48)
    assert c["population"] == "hidden" and abs(c["spikes_after"] - 2.0) <= 0.2
    assert trainer.written == 1
    np.testing.assert_allclose(trainer.user["in->hidden.w"], before * c["scale"], rtol=1e-12)
    # the whole set fires near the target too (the batch was the whole set here)
    assert abs(trainer.model.evaluate(trainer.loader(data, 48).batch(0))
               .spikes_per_neuron["hidden"] - 2.0) <= 0.2
