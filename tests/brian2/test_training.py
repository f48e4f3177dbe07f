"""EventProp training of plain Brian2 networks (gpuspike.brian2_backend.training).

The key check runs the trained network with Brian2's own NumPy runtime (float64, method
'exact') on test examples and compares it with the engine's forward pass: hidden spike
trains identical, output voltage traces equal to rounding, same predicted class.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
from brian2 import (
    Mohm,
    Network,
    NeuronGroup,
    SpikeGeneratorGroup,
    SpikeMonitor,
    StateMonitor,
    Synapses,
    amp,
    defaultclock,
    ms,
    mV,
    nA,
    seed,
)
from gpuspike.brian2_backend.training import EventPropTrainer
from gpuspike.bridge.errors import ModelError, UnsupportedFeature

from gpuspike.datasets.events import SpikeDataset

N_IN, N_CLASSES = 24, 3
EQS = """dv/dt = (I - v)/tau_m : 1
         dI/dt = -I/tau_s : 1"""
tau_m = 20 * ms
tau_s = 5 * ms


def dataset(n_per_class: int, seed_: int) -> SpikeDataset:
    """Class c: channels of block c fire early (1-5 ms), the others at random (30 %)."""
    rng = np.random.default_rng(seed_)
    times, units, labels = [], [], []
    block = N_IN // N_CLASSES
    ch = np.arange(N_IN)
    for c in range(N_CLASSES):
        for _ in range(n_per_class):
            mine = (ch // block) == c
            fire = mine | (rng.random(N_IN) < 0.3)
            t = np.where(mine, rng.uniform(1e-3, 5e-3, N_IN), rng.uniform(1e-3, 15e-3, N_IN))
            times.append(t[fire])
            units.append(ch[fire])
            labels.append(c)
    n = len(labels)
    return SpikeDataset(times, units, np.array(labels), np.full(n, -1), N_IN)


def network(recurrent: bool = False):
    seed(3)
    inp = SpikeGeneratorGroup(N_IN, [], [] * ms)
    hid = NeuronGroup(16, EQS, threshold="v > 1", reset="v = 0", method="exact")
    out = NeuronGroup(N_CLASSES, EQS, method="exact")
    s1 = Synapses(inp, hid, "w : 1", on_pre="I_post += w")
    s1.connect()
    s1.w = "0.5 + 0.4*randn()"
    s2 = Synapses(hid, out, "w : 1", on_pre="I_post += w")
    s2.connect()
    s2.w = "0.5*randn()"
    objs = [inp, hid, out, s1, s2]
    if recurrent:
        s3 = Synapses(hid, hid, "w : 1", on_pre="I_post += w")
        s3.connect(condition="i != j", p=0.5)
        s3.w = "0.2*randn()"
        s3.delay = "(i % 3)*ms"
        objs.append(s3)
    return Network(*objs), objs


def brian2_run(trainer, net, example, hid, out):
    """Run ``example`` in Brian2 from the stored initial state: (spike t, i, v trace)."""
    net.restore("initial")
    trainer.set_input(*example)
    sm = SpikeMonitor(hid)
    vm = StateMonitor(out, "v", record=True, when="end")
    net.add(sm, vm)
    net.run(trainer.n_steps * defaultclock.dt)
    res = np.asarray(sm.t_[:]), np.asarray(sm.i[:]), np.asarray(vm.v_[:]).T
    net.remove(sm, vm)
    return res


def assert_same_as_engine(trainer, net, example, hid, out, atol=1e-9):
    bt, bi, bv = brian2_run(trainer, net, example, hid, out)
    ex = trainer.run_example(*example)
    et, ei = ex.spikes[hid.name]
    # Brian2's last step (engine step N) checks a threshold the engine does not.
    last = (trainer.n_steps - 1) * trainer.dt - 1e-12
    keep = bt < last
    b_pairs = sorted(zip(np.rint(bt[keep] / trainer.dt).astype(int), bi[keep]))
    e_pairs = sorted(zip(np.rint(et / trainer.dt).astype(int), ei))
    assert b_pairs == e_pairs
    assert bv.shape == ex.v[1:].shape
    np.testing.assert_allclose(bv, ex.v[1:], rtol=0, atol=atol)
    assert int(np.argmax(bv.mean(axis=0))) == ex.prediction
    return len(e_pairs), float(np.abs(bv - ex.v[1:]).max())


# ----------------------------------------------------------------------------- (a), (b), (c)
def test_trains_above_chance_and_writes_back_and_matches_brian2():
    defaultclock.dt = 1 * ms
    net, (inp, hid, out, s1, s2) = network()
    w2_before = np.array(s2.w[:])
    t0 = time.perf_counter()
    trainer = EventPropTrainer(
        net,
        input=inp,
        output=out,
        learn=["s1.w", s2.w],
        dt=1 * ms,
        duration=20 * ms,
        engine="numpy",
        dtype=np.float64,
    )
    train, test = dataset(20, 0), dataset(10, 1)
    loss0, acc0 = trainer.score(test)
    result = trainer.fit(train, epochs=8, batch_size=10, lr=1e-2, val=test, progress=False)
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0] - 0.1
    acc = trainer.evaluate(test)
    assert acc >= 0.8 > 1 / N_CLASSES + 0.2 and acc > acc0
    assert time.perf_counter() - t0 < 30

    # (b) the Synapses now hold the engine's parameters, in their own (i, j) order
    state = trainer.model.state_dict()
    w1 = state[f"{inp.name}->{hid.name}.w"]
    w2 = state[f"{hid.name}->{out.name}.w"]
    np.testing.assert_array_equal(s1.w[:], w1[s1.j[:], s1.i[:]])
    np.testing.assert_array_equal(s2.w[:], w2[s2.j[:], s2.i[:]])
    assert not np.array_equal(s2.w[:], w2_before)

    # (c) Brian2's runtime simulates the trained network exactly like the engine
    net.store("initial")
    preds = trainer.predict(test)
    spikes = 0
    for k in range(0, len(test), 6):
        n, err = assert_same_as_engine(trainer, net, test.sample(k), hid, out)
        spikes += n
    assert spikes > 20  # the comparison saw hidden activity
    ex = trainer.run_example(*test.sample(0))
    assert ex.prediction == preds[0]


def test_recurrent_delayed_network_matches_brian2_spike_for_spike():
    defaultclock.dt = 1 * ms
    net, (inp, hid, out, s1, s2, s3) = network(recurrent=True)
    trainer = EventPropTrainer(
        net, output=out, dt=1 * ms, duration=25 * ms, engine="numpy", dtype=np.float64
    )
    proj = {q.name: q for q in trainer.ir.projections}
    assert proj[f"{hid.name}->{hid.name}"].max_delay_steps == 2
    assert f"{hid.name}->{hid.name}" in trainer.model.masks
    net.store("initial")
    spikes = 0
    for k in (0, 25, 45):
        n, _ = assert_same_as_engine(trainer, net, dataset(20, 0).sample(k), hid, out)
        spikes += n
    assert spikes > 20


def test_without_the_one_step_input_shift_brian2_and_engine_differ():
    """Documents the offset the trainer's loader removes: Brian2 lets an input spike of
    step k act from step k + 1; the engine's own convention would act at step k."""
    defaultclock.dt = 1 * ms
    inp = SpikeGeneratorGroup(1, [0], [3] * ms)
    out = NeuronGroup(1, EQS, method="exact")
    s = Synapses(inp, out, "w : 1", on_pre="I_post += w")
    s.connect()
    s.w = 1.0
    net = Network(inp, out, s)
    trainer = EventPropTrainer(net, dt=1 * ms, duration=10 * ms, engine="numpy", dtype=np.float64)
    vm = StateMonitor(out, "v", record=0, when="end")
    net.add(vm)
    net.run(10 * ms)
    ex = trainer.run_example([3e-3], [0])
    brian = np.asarray(vm.v_[0])
    assert np.flatnonzero(brian)[0] == 4  # state after update 5 = engine v[5]
    assert np.flatnonzero(ex.v[:, 0])[0] == 5
    np.testing.assert_allclose(brian, ex.v[1:, 0], atol=1e-15)


def test_learnt_delays_are_written_back_on_the_step_grid():
    defaultclock.dt = 1 * ms
    net, (inp, hid, out, s1, s2) = network()
    s1.delay = "(i % 4)*ms"
    trainer = EventPropTrainer(
        net, learn_delays=[s1.delay], max_delay=6 * ms, dt=1 * ms, duration=20 * ms, engine="numpy"
    )
    trainer.fit(dataset(5, 0), epochs=2, batch_size=5, lr=0.5e-3, progress=False)
    d = np.asarray(s1.delay_[:])
    np.testing.assert_allclose(d / 1e-3, np.rint(d / 1e-3), atol=1e-9)
    assert d.min() >= 0 and d.max() <= 6e-3 + 1e-12
    state = trainer.model.state_dict()[f"{inp.name}->{hid.name}.d"]
    np.testing.assert_allclose(d, np.clip(np.rint(state / 1e-3), 0, 6)[s1.j[:], s1.i[:]] * 1e-3)


def test_pull_rereads_brian2_weights_and_dt_mismatch_warns():
    net, (inp, hid, out, s1, s2) = network()  # defaultclock.dt stays 0.1 ms
    trainer = EventPropTrainer(net, dt=1 * ms, duration=20 * ms, engine="numpy")
    s2.w = 0.25
    trainer.pull()
    key = f"{hid.name}->{out.name}.w"
    np.testing.assert_allclose(trainer.model.params[key], 0.25)
    with pytest.warns(UserWarning, match="defaultclock.dt"):
        trainer.push()


# ----------------------------------------------------------------------------- (e) units
def test_weights_with_units_train_and_match_brian2():
    defaultclock.dt = 1 * ms
    R = 20 * Mohm
    v_rest = -65 * mV
    eqs = """dv/dt = (R*I - v + v_rest)/tau_m : volt
             dI/dt = -I/tau_s : amp"""
    seed(5)
    inp = SpikeGeneratorGroup(N_IN, [], [] * ms)
    consts = {"R": R, "v_rest": v_rest}  # group namespaces (Brian2's run sees them too)
    hid = NeuronGroup(
        16, eqs, threshold="v > -55*mV", reset="v = v_rest", method="exact", namespace=consts
    )
    out = NeuronGroup(N_CLASSES, eqs, method="exact", namespace=consts)
    hid.v = v_rest
    out.v = v_rest
    s1 = Synapses(inp, hid, "w : amp", on_pre="I_post += w")
    s1.connect()
    s1.w = "(0.5 + 0.4*randn()) * 10*mV/R"
    s2 = Synapses(hid, out, "w : amp", on_pre="I_post += w")
    s2.connect()
    s2.w = "0.5*randn() * 10*mV/R"
    net = Network(inp, hid, out, s1, s2)
    trainer = EventPropTrainer(
        net, input=inp, output=out, dt=1 * ms, duration=20 * ms, engine="numpy", dtype=np.float64
    )
    lif = trainer.ir.population(hid.name).neuron
    assert lif.gain == pytest.approx(20e6) and lif.v_rest == pytest.approx(-65e-3)
    assert lif.theta == pytest.approx(10e-3) and lif.u0 == pytest.approx(0.0)
    train = dataset(10, 0)
    trainer.fit(train, epochs=3, batch_size=10, lr=1e-2 * 10e-3 / 20e6, progress=False)
    assert s1.w[:].dim == amp.dim
    np.testing.assert_allclose(
        np.asarray(s1.w_[:]) / 1e-9,
        trainer.model.state_dict()[f"{inp.name}->{hid.name}.w"][s1.j[:], s1.i[:]] / 1e-9,
    )
    assert abs(float(np.asarray(s1.w[:] / nA).mean())) > 0.1  # nA-scale currents
    net.store("initial")
    spikes = 0
    for k in (0, 12, 25):
        n, _ = assert_same_as_engine(trainer, net, train.sample(k), hid, out, atol=1e-12)
        spikes += n
    assert spikes > 10


# ----------------------------------------------------------------------------- (d) errors
def _simple(neuron_kwargs=None, on_pre="I_post += w", model="w : 1", eqs=EQS, extra=()):
    inp = SpikeGeneratorGroup(4, [], [] * ms)
    hid = NeuronGroup(
        3,
        eqs,
        method="exact",
        name="hid",
        **(neuron_kwargs or {"threshold": "v > 1", "reset": "v = 0"}),
    )
    out = NeuronGroup(2, EQS, method="exact", name="out")
    s1 = Synapses(inp, hid, model, on_pre=on_pre, name="s_in")
    s1.connect()
    s2 = Synapses(hid, out, "w : 1", on_pre="I_post += w", name="s_out")
    s2.connect()
    return Network(inp, hid, out, s1, s2, *extra), out


HELD = """dv/dt = (I - v)/tau_m : 1 (unless refractory)
          dI/dt = -I/tau_s : 1"""


@pytest.mark.parametrize(
    "refractory, eqs, rule, match",
    [
        (2 * ms, EQS, "bptt", r"'hid'.*holds the membrane.*'dv/dt = \.\.\. \(unless refractory\)'"),
        ("v > 0.5", HELD, "bptt", r"'hid'.*expression or condition.*refractory=5\*ms"),
        (3 * ms, HELD, "eventprop", r"without a refractory period; \['hid'\].*rule='bptt'"),
    ],
    ids=["membrane-not-held", "condition", "eventprop"],
)
def test_refractory_periods_that_cannot_train(refractory, eqs, rule, match):
    net, out = _simple({"threshold": "v > 1", "reset": "v = 0", "refractory": refractory},
                       eqs=eqs)
    with pytest.raises(UnsupportedFeature, match=match):
        EventPropTrainer(net, output=out, dt=1 * ms, duration=10 * ms, engine="numpy",
                         rule=rule)


def test_a_refractory_period_of_one_step_is_eventprops_model():
    """Brian2's refractory=dt holds the membrane for no step after the spike's."""
    net, out = _simple({"threshold": "v > 1", "reset": "v = 0", "refractory": 1 * ms},
                       eqs=HELD)
    tr = EventPropTrainer(net, output=out, dt=1 * ms, duration=10 * ms, engine="numpy")
    assert tr.ir.population("hid").neuron.refractory_steps(tr.dt) == 0


@pytest.mark.parametrize(
    "kwargs, eqs, match",
    [
        ({"threshold": "v > 1", "reset": "v -= 1"}, EQS, r"'hid'.*relative.*absolute reset"),
        (
            {"threshold": "v > 1", "reset": "v = 0"},
            EQS + "\n dg/dt = -g/tau_s : 1",
            r"'hid'.*3 differential equations.*exactly two",
        ),
        ({"threshold": "v > 1"}, EQS, r"'hid'.*threshold without a reset"),
    ],
    ids=["relative-reset", "third-state-variable", "no-reset"],
)
def test_unsupported_neuron_models_name_the_group_and_the_fix(kwargs, eqs, match):
    net, out = _simple(kwargs, eqs=eqs)
    with pytest.raises(UnsupportedFeature, match=match) as err:
        EventPropTrainer(net, output=out, dt=1 * ms, duration=10 * ms, engine="numpy")
    assert "EventProp" in str(err.value)


@pytest.mark.parametrize(
    "on_pre, model",
    [
        ("I_post += 2*w", "w : 1"),
        ("v_post += w", "w : 1"),
        ("I_post += w; w += 0.1", "w : 1"),
        ("I_post = w", "w : 1"),
        ("I_post += w", "w : 1 (shared)"),
        ("I_post += w", "dw/dt = -w/tau_s : 1 (clock-driven)"),
    ],
)
def test_unsupported_synapses_name_the_object_and_the_fix(on_pre, model):
    net, out = _simple(on_pre=on_pre, model=model)
    with pytest.raises(UnsupportedFeature, match=r"Synapses 's_in'.*I_post \+= w"):
        EventPropTrainer(net, output=out, dt=1 * ms, duration=10 * ms, engine="numpy")


def test_on_post_is_refused():
    inp = SpikeGeneratorGroup(4, [], [] * ms)
    hid = NeuronGroup(2, EQS, threshold="v > 1", reset="v = 0", method="exact")
    out = NeuronGroup(2, EQS, method="exact")
    s = Synapses(inp, hid, "w : 1", on_pre="I_post += w", on_post="w += 0.01", name="stdp")
    s.connect()
    s2 = Synapses(hid, out, "w : 1", on_pre="I_post += w")
    s2.connect()
    with pytest.raises(UnsupportedFeature, match=r"'stdp'.*no on_post"):
        EventPropTrainer(Network(inp, hid, out, s, s2), dt=1 * ms, duration=10 * ms, engine="numpy")


def test_two_input_groups_are_refused_with_the_merge_fix():
    second = SpikeGeneratorGroup(2, [], [] * ms, name="inp_b")
    net, out = _simple()
    net.add(second)
    with pytest.raises(UnsupportedFeature, match=r"exactly one SpikeGeneratorGroup.*inp_b.*merge"):
        EventPropTrainer(net, output=out, dt=1 * ms, duration=10 * ms, engine="numpy")


def test_multapses_subgroups_and_nonuniform_parameters_are_refused():
    inp = SpikeGeneratorGroup(4, [], [] * ms)
    out = NeuronGroup(2, EQS, method="exact")
    s = Synapses(inp, out, "w : 1", on_pre="I_post += w", name="multi")
    s.connect(n=2)
    with pytest.raises(UnsupportedFeature, match=r"'multi'.*multapses.*n=1"):
        EventPropTrainer(Network(inp, out, s), dt=1 * ms, duration=10 * ms, engine="numpy")

    s2 = Synapses(inp, out[:1], "w : 1", on_pre="I_post += w", name="sub")
    s2.connect()
    with pytest.raises(UnsupportedFeature, match=r"'sub'.*subgroups"):
        EventPropTrainer(Network(inp, out, s2), dt=1 * ms, duration=10 * ms, engine="numpy")

    g = NeuronGroup(
        2,
        """dv/dt = (I - v)/tm : 1
                          dI/dt = -I/tau_s : 1
                          tm : second (constant)""",
        method="exact",
        name="het",
    )
    g.tm = [10, 20] * ms
    s3 = Synapses(inp, g, "w : 1", on_pre="I_post += w")
    s3.connect()
    with pytest.raises(UnsupportedFeature, match=r"'het'.*'tm' differs"):
        EventPropTrainer(Network(inp, g, s3), dt=1 * ms, duration=10 * ms, engine="numpy")
    s4 = Synapses(inp, out, "w : 1", on_pre="I_post += w", delay=2 * ms, name="shared_d")
    s4.connect()
    tr = EventPropTrainer(Network(inp, out, s4), dt=1 * ms, duration=10 * ms, engine="numpy")
    assert tr.ir.projections[0].max_delay_steps == 2
    np.testing.assert_allclose(tr.model.frozen[tr.ir.projections[0].name + ".d"], 2e-3)
    with pytest.raises(UnsupportedFeature, match=r"'shared_d'.*shared value"):
        EventPropTrainer(
            Network(inp, out, s4), learn_delays=[s4], dt=1 * ms, duration=10 * ms, engine="numpy"
        )

    g.tm = 15 * ms  # uniform: substituted
    tr = EventPropTrainer(Network(inp, g, s3), dt=1 * ms, duration=10 * ms, engine="numpy")
    assert tr.ir.population("het").neuron.tau_m == pytest.approx(15e-3)


def test_unknown_constant_and_bad_learn_entries():
    inp = SpikeGeneratorGroup(4, [], [] * ms)
    out = NeuronGroup(2, "dv/dt = (I - v)/tau_x : 1\n dI/dt = -I/tau_s : 1", method="exact")
    s = Synapses(inp, out, "w : 1", on_pre="I_post += w")
    s.connect()
    net = Network(inp, out, s)
    with pytest.raises(ModelError, match="tau_x"):
        EventPropTrainer(net, dt=1 * ms, duration=10 * ms, engine="numpy")
    tr = EventPropTrainer(
        net, dt=1 * ms, duration=10 * ms, engine="numpy", namespace={"tau_x": 7 * ms}
    )
    assert tr.ir.population(out.name).neuron.tau_m == pytest.approx(7e-3)
    with pytest.raises(ModelError, match="not a Synapses"):
        EventPropTrainer(
            net,
            learn=["nothing.w"],
            dt=1 * ms,
            duration=10 * ms,
            namespace={"tau_x": 7 * ms},
            engine="numpy",
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frozen = EventPropTrainer(
            net, learn=[], dt=1 * ms, duration=10 * ms, namespace={"tau_x": 7 * ms}, engine="numpy"
        )
    assert frozen.model.params == {}


@pytest.mark.parametrize("rule", ["bptt", "eprop"])
def test_bptt_and_eprop_train_and_brian2_runs_the_result(rule):
    """rule= trains the same Brian2 network; Brian2's runtime then simulates the trained
    network exactly like the engine (the rules change the gradient, not the model)."""
    defaultclock.dt = 1 * ms
    net, (inp, hid, out, s1, s2) = network()
    trainer = EventPropTrainer(net, input=inp, output=out, dt=1 * ms, duration=20 * ms,
                               engine="numpy", dtype=np.float64, rule=rule)
    train, test = dataset(20, 0), dataset(10, 1)
    acc0 = trainer.evaluate(test)
    result = trainer.fit(train, epochs=8, batch_size=10, lr=1e-2, progress=False)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"] - 0.1
    acc = trainer.evaluate(test)
    assert acc >= 0.8 and acc > acc0 + 0.2, (acc0, acc)
    net.store("initial")
    spikes = sum(assert_same_as_engine(trainer, net, test.sample(k), hid, out)[0]
                 for k in range(0, len(test), 6))
    assert spikes > 20


def test_eprop_online_option_gives_the_same_gradient():
    """eprop_online=True (forward-time traces) and the default (reverse time) compute one
    gradient from the same Brian2 network."""
    defaultclock.dt = 1 * ms
    net, (inp, hid, out, s1, s2) = network()
    trainers = [EventPropTrainer(net, input=inp, output=out, dt=1 * ms, duration=20 * ms,
                                 engine="numpy", dtype=np.float64, rule="eprop",
                                 eprop_online=online) for online in (False, True)]
    b = trainers[0].loader(dataset(10, 1), 10).batch(0)
    fast, online = (t.model.loss_and_grad(b) for t in trainers)
    assert fast.loss == pytest.approx(online.loss, rel=1e-12)
    for key, g in online.grads.items():
        assert np.abs(g).max() > 0, key
        np.testing.assert_allclose(fast.grads[key], g, rtol=0, atol=1e-9 * np.abs(g).max())


def _train_one_hidden_layer(rule, eqs, w_in, **hidden):
    """input -> 16 hidden (``eqs``, ``hidden``: threshold, reset, refractory) -> readout,
    trained 8 epochs on the toy data by ``rule``; asserts it learnt and that Brian2's runtime
    reproduces the engine spike for spike. Returns (trainer, net, hid, test, hidden spike
    trains of the compared examples)."""
    defaultclock.dt = 1 * ms
    seed(3)
    inp = SpikeGeneratorGroup(N_IN, [], [] * ms)
    hid = NeuronGroup(16, eqs, method="exact", **hidden)
    out = NeuronGroup(N_CLASSES, EQS, method="exact")
    s1 = Synapses(inp, hid, "w : 1", on_pre="I_post += w")
    s1.connect()
    s1.w = f"{w_in} + 0.4*randn()"
    s2 = Synapses(hid, out, "w : 1", on_pre="I_post += w")
    s2.connect()
    s2.w = "0.5*randn()"
    net = Network(inp, hid, out, s1, s2)
    trainer = EventPropTrainer(net, input=inp, output=out, dt=1 * ms, duration=20 * ms,
                               engine="numpy", dtype=np.float64, rule=rule)
    train, test = dataset(20, 0), dataset(10, 1)
    acc0 = trainer.evaluate(test)
    trainer.fit(train, epochs=8, batch_size=10, lr=1e-2, progress=False)
    acc = trainer.evaluate(test)
    assert acc >= 0.8 and acc > acc0 + 0.2, (acc0, acc)
    net.store("initial")
    trains = []
    for k in range(0, len(test), 6):
        assert_same_as_engine(trainer, net, test.sample(k), hid, out)
        t, i = trainer.run_example(*test.sample(k)).spikes[hid.name]
        trains += [np.sort(t[i == n]) for n in set(i.tolist())]
    return trainer, net, (inp, hid, out), trains


@pytest.mark.parametrize("rule", ["bptt", "eprop"])
def test_refractory_hidden_layer_trains_and_brian2_runs_it(rule):
    """refractory=4*ms with '(unless refractory)' on the membrane: trained by BPTT and e-prop
    (the membrane held for 3 steps after a spike's) and simulated by Brian2's runtime
    spike for spike like the engine."""
    trainer, _, (_, hid, _), trains = _train_one_hidden_layer(
        rule, HELD, 1.0, threshold="v > 0.3", reset="v = 0", refractory=4 * ms)
    assert trainer.ir.population(hid.name).neuron.refractory_steps(trainer.dt) == 3
    gaps = np.rint(np.concatenate([np.diff(t) for t in trains]) / trainer.dt)
    assert 4 <= gaps.min() <= 6   # bursts just above the period: it shapes them


def test_alif_hidden_layer_trains_with_eprop_and_brian2_runs_it():
    """An adaptive threshold written as Brian2 equations (ALIF) is recognised, trained by
    e-prop and simulated by Brian2's runtime exactly like the engine."""
    alif = EQS + "\n         da/dt = -a/(30*ms) : 1"
    trainer, net, (inp, hid, out), trains = _train_one_hidden_layer(
        "eprop", alif, 0.7, threshold="v > 1 + 0.4*a", reset="v = 0; a += 0.5")
    neuron = trainer.ir.population(hid.name).neuron
    assert (neuron.tau_a, neuron.beta_a) == (pytest.approx(0.03), pytest.approx(0.2))
    assert sum(len(t) for t in trains) > 20
    net.restore("initial")
    with pytest.raises(UnsupportedFeature, match="EventProp's exact adjoint"):
        EventPropTrainer(net, input=inp, output=out, dt=1 * ms, duration=20 * ms,
                         engine="numpy")
