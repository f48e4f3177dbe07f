"""The data-driven start (engine/training/calibrate.py) on a real EventProp network."""

from __future__ import annotations

import numpy as np
import pytest
from gpuspike.bridge.errors import ModelError
from gpuspike.bridge.training_ir import LossSpec
from gpuspike.engine.eventprop.builders import LayeredConfig, initial_params, layered_ir
from gpuspike.engine.eventprop.network import EventPropNetwork
from gpuspike.engine.training.calibrate import calibrate_input_weights, input_params
from gpuspike.engine.training.protocol import Batch

N_IN, N_HID, N_OUT, STEPS, DT = 30, 20, 3, 100, 1e-3


def network(init_in=(0.02, 0.01)):
    cfg = LayeredConfig(N_IN, N_HID, N_OUT, True, DT, STEPS, loss=LossSpec("avg_ce"),
                        max_spikes=STEPS)
    ir = layered_ir(cfg)
    init = {"in->hidden": init_in, "hidden->hidden": (0.0, 0.02), "hidden->out": (0.0, 0.3)}
    return EventPropNetwork(ir, initial_params(ir, init, seed=1), engine="numpy",
                            dtype=np.float64)


def poisson_batch(rate_hz: float, n: int = 16, seed: int = 0) -> Batch:
    rng = np.random.default_rng(seed)
    x = (rng.random((STEPS, n, N_IN)) < rate_hz * DT).astype(np.float64)
    return Batch(x, np.arange(n) % N_OUT, np.arange(n))


@pytest.mark.parametrize("rate_hz", [20.0, 100.0])
def test_hidden_layer_starts_at_the_target(rate_hz):
    m = network()
    before = {k: v.copy() for k, v in m.params.items()}
    batch = poisson_batch(rate_hz)
    (c,) = calibrate_input_weights(m, batch, {"hidden": 5.0})
    got = m.evaluate(batch).spikes_per_neuron["hidden"]
    assert abs(got - 5.0) <= 0.5 and abs(c.rate_after - got) < 1e-12
    assert c.params == ("in->hidden.w",) == input_params(m.ir, "hidden")
    # one common factor on the input weights, nothing else touched
    ratio = m.params["in->hidden.w"] / before["in->hidden.w"]
    np.testing.assert_allclose(ratio, c.scale, rtol=1e-12)
    for k in ("hidden->hidden.w", "hidden->out.w"):
        np.testing.assert_array_equal(m.params[k], before[k])
    # five times the input rate needs a smaller factor (the reason for calibrating)
    if rate_hz == 100.0:
        (c20,) = calibrate_input_weights(network(), poisson_batch(20.0), {"hidden": 5.0})
        assert c.scale < c20.scale


def test_silent_inputs_are_an_error_and_leave_the_weights():
    m = network()
    before = m.params["in->hidden.w"].copy()
    with pytest.raises(ModelError, match="cannot bring 'hidden' to 5 spikes"):
        calibrate_input_weights(m, poisson_batch(0.0), {"hidden": 5.0})
    np.testing.assert_array_equal(m.params["in->hidden.w"], before)
    with pytest.raises(ModelError, match="no input projection into 'out'"):
        calibrate_input_weights(m, poisson_batch(20.0), {"out": 5.0})
