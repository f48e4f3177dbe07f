"""EventPropNetwork: batching, masks, lifting, ring overflow, IR validation, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
from gpuspike.bridge.adjoint import CanonicalLIF
from gpuspike.bridge.errors import ModelError, RingBufferOverflow, UnsupportedFeature
from gpuspike.bridge.training_ir import EventPropIR, LossSpec, TrainPopulation, TrainProjection
from gpuspike.engine.eventprop.builders import LayeredConfig, initial_params, layered_ir
from gpuspike.engine.eventprop.network import EventPropNetwork
from gpuspike.engine.training.protocol import Batch


def small(loss="avg_ce", recurrent=True, delay_max=0.0, max_spikes=50, seed=0):
    cfg = LayeredConfig(12, 8, 3, recurrent, 1e-3, 40, loss=LossSpec(loss),
                        max_spikes=max_spikes, delay_max=delay_max,
                        init={"in->hidden": (0.5, 0.3), "hidden->hidden": (0.0, 0.2),
                              "hidden->out": (0.3, 0.5)})
    ir = layered_ir(cfg)
    return ir, initial_params(ir, cfg.init, seed=seed, delay_max=delay_max)


def batch(n, seed=1, n_in=12, steps=40, rate=0.15):
    rng = np.random.default_rng(seed)
    x = (rng.random((steps, n, n_in)) < rate).astype(float)
    return Batch(x, rng.integers(0, 3, n), np.arange(n))


@pytest.mark.parametrize("loss,delay_max", [("avg_ce", 0.0), ("max_ce", 0.0),
                                            ("ttfs_ce", 0.0), ("exp_avg_ce", 5e-3)])
def test_batch_gradient_is_the_mean_of_per_example_gradients(loss, delay_max, engine):
    ir, params = small(loss, delay_max=delay_max)
    net = EventPropNetwork(ir, params, engine=engine, dtype=np.float64)
    xp = net.xp
    b = batch(4)
    full = net.loss_and_grad(Batch(xp.asarray(b.inputs), xp.asarray(b.labels), b.index))
    singles = [net.loss_and_grad(Batch(xp.asarray(b.inputs[:, i:i + 1]),
                                       xp.asarray(b.labels[i:i + 1]), b.index[i:i + 1]))
               for i in range(4)]
    assert full.loss == pytest.approx(np.mean([s.loss for s in singles]), rel=1e-12)
    for k, g in full.grads.items():
        mean = sum(np.asarray(s.grads[k].get() if hasattr(s.grads[k], "get") else s.grads[k])
                   for s in singles) / 4
        got = g.get() if hasattr(g, "get") else g
        np.testing.assert_allclose(got, mean, rtol=1e-9, atol=1e-14)
        assert np.abs(got).max() > 0, f"{k}: no gradient at all"


def test_float32_gradients_agree_with_float64():
    ir, params = small()
    b = batch(8)
    g64 = EventPropNetwork(ir, params, engine="numpy", dtype=np.float64).loss_and_grad(b)
    g32 = EventPropNetwork(ir, params, engine="numpy", dtype=np.float32).loss_and_grad(b)
    for k in g64.grads:
        scale = np.abs(g64.grads[k]).max()
        np.testing.assert_allclose(g32.grads[k], g64.grads[k], atol=1e-4 * scale)


def test_masked_synapses_stay_absent_and_get_no_gradient():
    ir, params = small(recurrent=False)
    mask = np.random.default_rng(3).random((8, 12)) < 0.5
    net = EventPropNetwork(ir, params, engine="numpy", dtype=np.float64,
                           masks={"in->hidden": mask})
    assert (net.params["in->hidden.w"][~mask] == 0).all()
    r = net.loss_and_grad(batch(4))
    assert (r.grads["in->hidden.w"][~mask] == 0).all()
    assert np.abs(r.grads["in->hidden.w"][mask]).max() > 0


def test_silent_hidden_neurons_get_their_input_weights_lifted():
    ir, params = small(recurrent=False)
    params["in->hidden.w"][2] = -1.0            # neuron 2 can never fire
    net = EventPropNetwork(ir, params, engine="numpy", dtype=np.float64, lift=0.01)
    before = net.params["in->hidden.w"].copy()
    net.loss_and_grad(batch(4))
    stats = net.after_epoch()
    delta = net.params["in->hidden.w"] - before
    assert stats["lifted"] >= 1
    np.testing.assert_allclose(delta[2], 0.01)
    fired = np.flatnonzero((delta == 0).all(axis=1))
    assert len(fired) >= 1


def test_ring_overflow_raises_with_the_fix():
    ir, params = small(max_spikes=2)
    params["in->hidden.w"][:] = 5.0
    net = EventPropNetwork(ir, params, engine="numpy")
    with pytest.raises(RingBufferOverflow, match="max_spikes=2"):
        net.loss_and_grad(batch(2, rate=0.5))


@pytest.mark.parametrize("initial", [1, 3])
def test_small_rings_grow_and_give_the_full_rings_gradients(initial, engine):
    # a neuron fires up to ~20 times in 40 steps: rings of 1 or 3 slots overflow, grow and
    # rerun; the gradients must equal those of rings sized max_spikes from the start
    ir, params = small(max_spikes=40)
    params["in->hidden.w"] += 0.4
    b = batch(3, rate=0.3)
    ref = EventPropNetwork(ir, params, engine=engine, dtype=np.float64)
    xp = ref.xp
    xb = Batch(xp.asarray(b.inputs), xp.asarray(b.labels), b.index)
    ref.ring_capacity = {k: 40 for k in ref.ring_capacity}
    want = ref.loss_and_grad(xb)
    net = EventPropNetwork(ir, params, engine=engine, dtype=np.float64)
    net.ring_capacity = {k: initial for k in net.ring_capacity}
    got = net.loss_and_grad(xb)
    assert net.ring_reruns >= 1 and ref.ring_reruns == 0
    tape = ref.forward(xp.asarray(b.inputs))
    most = int(tape.counts["hidden"].max())
    assert most > 3 and net.ring_capacity["hidden"] >= most
    assert got.loss == want.loss
    for k in want.grads:
        np.testing.assert_array_equal(np.asarray(got.grads[k].get() if hasattr(
            got.grads[k], "get") else got.grads[k]), np.asarray(
            want.grads[k].get() if hasattr(want.grads[k], "get") else want.grads[k]))


def test_state_dict_round_trip_and_wrong_shapes():
    ir, params = small()
    net = EventPropNetwork(ir, params, engine="numpy", dtype=np.float64)
    state = net.state_dict()
    net.params["in->hidden.w"] += 1.0
    net.load_state_dict(state)
    np.testing.assert_array_equal(net.params["in->hidden.w"], params["in->hidden.w"])
    bad = dict(params, **{"in->hidden.w": np.zeros((3, 3))})
    with pytest.raises(ModelError, match="expected"):
        EventPropNetwork(ir, bad, engine="numpy")
    with pytest.raises(ModelError, match="expects"):
        net.loss_and_grad(batch(2, n_in=5))


def test_ir_rejects_what_eventprop_cannot_train():
    lif = CanonicalLIF(0.02, 0.005, 1.0, 0.0)
    li = CanonicalLIF(0.02, 0.005, None, None)
    pops = (TrainPopulation("in", 3), TrainPopulation("h", 4, lif), TrainPopulation("o", 2, li))
    projs = (TrainProjection("in", "h"), TrainProjection("h", "o"))
    with pytest.raises(UnsupportedFeature, match="needs output spikes"):
        EventPropIR(pops, projs, "o", LossSpec("ttfs_ce"))
    spiking_out = pops[:2] + (TrainPopulation("o", 2, lif),)
    with pytest.raises(UnsupportedFeature, match="leaky"):
        EventPropIR(spiking_out, projs, "o", LossSpec("avg_ce"))
    with pytest.raises(UnsupportedFeature, match="exactly one input"):
        EventPropIR(pops + (TrainPopulation("in2", 3),), projs, "o")
    with pytest.raises(ModelError, match="unknown loss"):
        EventPropIR(pops, projs, "o", LossSpec("hinge"))
    with pytest.raises(ModelError, match="max_delay_steps"):
        EventPropIR(pops, (TrainProjection("in", "h", learn_delay=True), projs[1]), "o")


def test_non_finite_gradients_stop_with_the_arrays_they_hit(engine):
    from gpuspike.engine.training.loop import TrainingError

    ir, params = small()
    net = EventPropNetwork(ir, params, engine=engine, dtype=np.float64)
    net.params["hidden->out.w"][0, 0] = np.inf   # readout feedback becomes non-finite
    with pytest.raises(TrainingError, match="non-finite gradients of .*hidden"):
        net.loss_and_grad(batch(2))
