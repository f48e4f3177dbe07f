"""EventProp training from PyNN (``pyNN.gpuspike.training``).

(a) a tiny problem trains far above chance; (b) the weights (and learnt delays) written back
into the Projections are the engine's; (c) the independent check: the trained network run by
``sim.run`` (the ordinary pyNN.gpuspike simulator) and by NEST (pyNN.nest, on-grid) gives
the engine's forward pass -- the same hidden spike times and the same output membrane at
every step, with no offset; (d) typed errors for what EventProp cannot train.
"""

from __future__ import annotations

import importlib

import numpy as np
import pyNN.gpuspike as sim
import pytest
from gpuspike.bridge.errors import ModelError, UnsupportedFeature
from gpuspike.engine.training.checkpoint import CheckpointError
from pyNN.gpuspike.training import EventPropTrainer, LeakyIntegratorReadout
from pyNN.parameters import Sequence

from gpuspike.datasets.events import SpikeDataset

N_IN, N_HID, N_CLASSES, DURATION = 24, 16, 3, 20.0
LIF = dict(
    tau_m=20.0,
    cm=1.0,
    v_rest=-65.0,
    v_thresh=-50.0,
    v_reset=-65.0,
    tau_refrac=0.0,
    tau_syn_E=5.0,
    tau_syn_I=5.0,
    i_offset=0.0,
)
READOUT = dict(tau_m=20.0, cm=1.0, v_rest=-65.0, tau_syn_E=5.0, tau_syn_I=5.0)


def toy_dataset(n: int, seed: int) -> SpikeDataset:
    """Class c: channels of group c fire early (2-6 ms), the others late (10-17 ms); off-grid
    times, so that the binning floor(t/dt) matters."""
    rng = np.random.default_rng(seed)
    times, units, labels = [], [], []
    group = np.arange(N_IN) * N_CLASSES // N_IN
    for k in range(n):
        c = k % N_CLASSES
        t = np.where(group == c, rng.uniform(2e-3, 6e-3, N_IN), rng.uniform(10e-3, 17e-3, N_IN))
        keep = rng.random(N_IN) < 0.8
        order = np.argsort(t[keep])
        times.append(t[keep][order])
        units.append(np.arange(N_IN)[keep][order])
        labels.append(c)
    return SpikeDataset(times, units, np.array(labels), np.full(n, -1), N_IN)


TRAIN, VAL = toy_dataset(150, 0), toy_dataset(60, 1)


def _split(w):
    return np.maximum(w, 0.0), np.minimum(w, 0.0)


def build(*, recurrent=False, delays=False, readout="li", hidden=None, seed=0, pairs=True):
    """input -> hidden (-> hidden) -> output on pyNN.gpuspike; returns (pops, projections).

    ``pairs``: every layer as an excitatory and an inhibitory projection (signed weights
    within PyNN's sign convention); otherwise excitatory projections only.
    """
    sim.setup(timestep=1.0, min_delay=1.0)
    rng = np.random.default_rng(seed)
    inp = sim.Population(N_IN, sim.SpikeSourceArray(spike_times=[]), label="in")
    hid = sim.Population(N_HID, sim.IF_curr_exp(**(hidden or LIF)), label="hid")
    if readout == "li":
        out = sim.Population(N_CLASSES, LeakyIntegratorReadout(**READOUT), label="out")
    elif readout == "lif_high":
        out = sim.Population(N_CLASSES, sim.IF_curr_exp(**dict(LIF, v_thresh=1e9)), label="out")
    else:
        out = sim.Population(N_CLASSES, sim.IF_curr_exp(**LIF), label="out")
    for p in (hid, out):
        p.initialize(v=-65.0)
    layers = [(inp, hid, rng.normal(0.3, 0.15, (N_IN, N_HID)), 2.0)]
    if recurrent:
        layers.append((hid, hid, rng.normal(0.0, 0.05, (N_HID, N_HID)), 1.0))
    layers.append((hid, out, rng.normal(0.05, 0.15, (N_HID, N_CLASSES)), 1.0))
    prjs = []
    for pre, post, w, d in layers:
        if delays:
            d = rng.integers(1, 4, w.shape).astype(float)
        exc, inh = _split(w) if pairs else (np.abs(w), None)
        prjs.append(
            sim.Projection(
                pre,
                post,
                sim.AllToAllConnector(),
                sim.StaticSynapse(weight=exc, delay=d),
                receptor_type="excitatory",
            )
        )
        if inh is not None:
            prjs.append(
                sim.Projection(
                    pre,
                    post,
                    sim.AllToAllConnector(),
                    sim.StaticSynapse(weight=inh, delay=d),
                    receptor_type="inhibitory",
                )
            )
    return (inp, hid, out), prjs


def run_example(trainer, pops, index, ds=VAL):
    """sim.run of one example; hidden (and output) spikes and the output membrane."""
    inp, hid, out = pops
    sim.reset()
    trainer.load_example(ds, index)
    hid.record("spikes")
    out.record(["spikes", "v"] if out.celltype.recordable.count("spikes") else "v")
    sim.run(DURATION)
    return _collect(hid, out)


def _collect(hid, out):
    seg_h, seg_o = hid.get_data().segments[-1], out.get_data().segments[-1]
    v = np.asarray(next(a for a in seg_o.analogsignals if a.name == "v"))
    spikes = {"hid": [np.asarray(s, float) for s in seg_h.spiketrains]}
    if seg_o.spiketrains:
        spikes["out"] = [np.asarray(s, float) for s in seg_o.spiketrains]
    return spikes, v


def assert_same(trace, spikes, v, vtol):
    for name, trains in spikes.items():
        if name not in trace.spikes:  # a readout: never fires in the engine, nor here
            assert not any(len(a) for a in trains)
            continue
        for i, (a, b) in enumerate(zip(trains, trace.spikes[name])):
            a = a[a < DURATION - 1e-9]  # the engine's trial ends at DURATION: no spike there
            np.testing.assert_array_equal(a, b, err_msg=f"{name}[{i}] spike times")
    assert v.shape == trace.v.shape
    assert np.abs(v - trace.v).max() < vtol


# ----------------------------------------------------------------------------- (a)
def test_trains_above_chance_and_sim_run_agrees():
    pops, prjs = build()
    tr = EventPropTrainer(
        input=pops[0],
        output=pops[2],
        projections=prjs,
        duration=DURATION,
        engine="numpy",
        max_spikes=20,
    )
    before = tr.evaluate(VAL)
    res = tr.fit(TRAIN, epochs=8, batch_size=16, lr=2e-2, val=VAL, progress=False)
    assert len(res.history) == 8
    acc = tr.evaluate(VAL)
    assert acc >= 0.9 > before + 0.2, (before, acc)
    # the trained network classifies the same under sim.run (argmax of the mean membrane)
    preds = tr.predict(VAL)
    for i in range(6):
        _, v = run_example(tr, pops, i)
        assert int(np.argmax(v[1:].mean(axis=0))) == preds[i] == tr.trace(VAL, i).prediction


# ----------------------------------------------------------------------------- (b)
def test_weights_written_back_are_the_engines():
    pops, prjs = build(recurrent=True)
    tr = EventPropTrainer(
        input=pops[0], output=pops[2], projections=prjs, duration=DURATION, engine="numpy"
    )
    before = [p.get("weight", format="array").copy() for p in prjs]
    tr.fit(TRAIN, epochs=2, batch_size=16, lr=2e-2, progress=False)
    eng = tr.engine_weights()
    assert set(eng) == {"in->hid", "hid->hid", "hid->out"}
    for exc, inh in zip(prjs[0::2], prjs[1::2]):
        name = f"{exc.pre.label}->{exc.post.label}"
        we, wi = exc.get("weight", format="array"), inh.get("weight", format="array")
        assert (we >= 0).all() and (wi <= 0).all()  # PyNN's sign convention holds
        np.testing.assert_allclose(we + wi, eng[name].T, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(np.minimum(we, -wi), 0.0)  # one of the two is 0
    assert any(
        np.abs(p.get("weight", format="array") - b).max() > 1e-3 for p, b in zip(prjs, before)
    )
    # the engine state of sim.run got the new weights too (pushed, not only stored)
    sim.run(1.0)
    group, idx = prjs[0].engine_parts[0]
    got = np.asarray(sim.simulator.state.engine.get(group, "weight")) * 1e9
    np.testing.assert_allclose(got, prjs[0]._attrs["weight"][idx], rtol=1e-12)


def test_single_sign_projections_keep_pynn_signs_unless_free():
    pops, prjs = build(pairs=False)
    tr = EventPropTrainer(
        input=pops[0], output=pops[2], projections=prjs, duration=DURATION, engine="numpy"
    )
    tr.fit(TRAIN, epochs=2, batch_size=16, lr=5e-2, progress=False)
    assert all((p.get("weight", format="array") >= 0).all() for p in prjs)
    assert any((w == 0).any() for w in tr.engine_weights().values())  # clamped at 0
    pops, prjs = build(pairs=False)
    tr = EventPropTrainer(
        input=pops[0],
        output=pops[2],
        projections=prjs,
        duration=DURATION,
        engine="numpy",
        signs="free",
    )
    tr.fit(TRAIN, epochs=2, batch_size=16, lr=5e-2, progress=False)
    w = prjs[-1].get("weight", format="array")
    assert (w < 0).any()
    np.testing.assert_allclose(w, tr.engine_weights()["hid->out"].T, atol=1e-6)


def test_sparse_connectivity_and_learnt_delays_written_back():
    sim.setup(timestep=1.0, min_delay=1.0)
    rng = sim.NumpyRNG(seed=3)
    inp = sim.Population(N_IN, sim.SpikeSourceArray(spike_times=[]), label="in")
    hid = sim.Population(N_HID, sim.IF_curr_exp(**LIF), label="hid")
    out = sim.Population(N_CLASSES, LeakyIntegratorReadout(**READOUT), label="out")
    hid.initialize(v=-65.0)
    out.initialize(v=-65.0)
    p1 = sim.Projection(
        inp,
        hid,
        sim.FixedProbabilityConnector(0.5, rng=rng),
        sim.StaticSynapse(weight=0.5, delay=2.0),
    )
    p2 = sim.Projection(
        hid, out, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.05, delay=1.0)
    )
    absent = np.isnan(p1.get("weight", format="array"))
    assert absent.any()
    tr = EventPropTrainer(
        input=inp,
        output=out,
        projections=[p1, p2],
        duration=DURATION,
        engine="numpy",
        learn={p1: ("weight", "delay"), p2: ("weight",)},
        max_delay=6.0,
    )
    tr.fit(TRAIN, epochs=3, batch_size=16, lr=5e-2, progress=False)
    w = p1.get("weight", format="array")
    np.testing.assert_array_equal(np.isnan(w), absent)  # no synapse was created
    eng = tr.engine_weights()["in->hid"].T
    np.testing.assert_allclose(w[~absent], eng[~absent], atol=1e-6)
    assert (eng[absent] == 0).all()
    d = p1.get("delay", format="array")[~absent]
    steps = tr.network.delay_steps()["in->hid"].T[~absent]
    np.testing.assert_array_equal(d, np.clip(steps, 1, 6) * 1.0)
    assert len(np.unique(d)) > 1 and d.min() >= 1.0 and d.max() <= 6.0
    assert (p2.get("delay", format="array") == 1.0).all()
    # and the learnt delays simulate as the engine's
    for i in range(4):
        spikes, v = run_example(tr, (inp, hid, out), i)
        assert_same(tr.trace(VAL, i), spikes, v, vtol=1e-4)


# ----------------------------------------------------------------------------- (c)
@pytest.mark.parametrize(
    "recurrent,delays,readout",
    [(False, False, "li"), (True, True, "li"), (False, True, "lif_high"), (True, False, "lif")],
)
def test_sim_run_equals_engine_forward(recurrent, delays, readout):
    """Same hidden spike times (to the step) and output v (float64: < 1e-9 mV), no offset:
    engine step n = PyNN time n dt; a PyNN delay D = round(D/dt) engine steps."""
    pops, prjs = build(recurrent=recurrent, delays=delays, readout=readout)
    loss = "ttfs_ce" if readout == "lif" else "avg_ce"
    tr = EventPropTrainer(
        input=pops[0],
        output=pops[2],
        projections=prjs,
        duration=DURATION,
        engine="numpy",
        dtype="float64",
        loss=loss,
    )
    tr.fit(TRAIN, epochs=2, batch_size=16, lr=2e-2, progress=False)
    n_spikes = 0
    for i in range(5):
        spikes, v = run_example(tr, pops, i)
        trace = tr.trace(VAL, i)
        assert_same(trace, spikes, v, vtol=1e-9)
        n_spikes += sum(len(s) for s in trace.spikes["hid"])
    assert n_spikes > 20  # the comparison saw hidden activity


def _nest():
    try:
        return importlib.import_module("pyNN.nest")
    except Exception:  # pragma: no cover - NEST is in the test extra
        pytest.skip("pyNN.nest not available")


@pytest.mark.parametrize("rule,tau_refrac", [("eventprop", 0.0), ("bptt", 0.0), ("eprop", 0.0),
                                             ("bptt", 3.0), ("eprop", 3.0)])
def test_nest_runs_the_trained_network_as_the_engine(rule, tau_refrac):
    """The trained weights and delays, copied into pyNN.nest (IF_curr_exp, the readout as an
    IF_curr_exp that never fires), give the engine's spikes and membrane, whatever rule
    trained them; with a refractory period (BPTT, e-prop) sim.run and NEST hold the
    membrane as the engine does."""
    lif = dict(LIF, tau_refrac=tau_refrac, v_thresh=-60.0 if tau_refrac else -50.0)
    pops, prjs = build(recurrent=True, delays=True, hidden=lif)
    tr = EventPropTrainer(
        input=pops[0],
        output=pops[2],
        projections=prjs,
        duration=DURATION,
        engine="numpy",
        dtype="float64",
        rule=rule,
    )
    tr.fit(TRAIN, epochs=2, batch_size=16, lr=2e-2, progress=False)
    net = [
        (
            p.pre.label,
            p.post.label,
            p.receptor_type,
            p.get("weight", format="array"),
            p.get("delay", format="array"),
        )
        for p in prjs
    ]
    traces = [tr.trace(VAL, i) for i in range(4)]
    for i in range(4):
        spikes, v = run_example(tr, pops, i)
        assert_same(traces[i], spikes, v, vtol=1e-9)
    if tau_refrac:   # bursts: intervals just above the period, so that it shapes them
        gaps = np.concatenate([np.diff(s) for t in traces for s in t.spikes["hid"]])
        assert tau_refrac + 1.0 <= gaps.min() <= tau_refrac + 3.0
    ns = _nest()
    for trace in traces:
        ns.setup(timestep=1.0, min_delay=1.0, spike_precision="on_grid")
        inp = ns.Population(
            N_IN, ns.SpikeSourceArray(spike_times=[Sequence(t) for t in trace.input_spikes])
        )
        hid = ns.Population(N_HID, ns.IF_curr_exp(**lif))
        out = ns.Population(N_CLASSES, ns.IF_curr_exp(**dict(LIF, v_thresh=1e9)))
        for p in (hid, out):
            p.initialize(v=-65.0)
        pops = {"in": inp, "hid": hid, "out": out}
        for pre, post, receptor, w, d in net:
            conns = [(a, b, w[a, b], d[a, b]) for a, b in zip(*np.nonzero(~np.isnan(w)))]
            ns.Projection(
                pops[pre],
                pops[post],
                ns.FromListConnector(conns, column_names=["weight", "delay"]),
                ns.StaticSynapse(),
                receptor_type=receptor,
            )
        hid.record("spikes")
        out.record("v")
        ns.run(DURATION)
        spikes, v = _collect(hid, out)
        assert_same(trace, spikes, v, vtol=1e-9)
        assert sum(len(s) for s in trace.spikes["hid"]) > 0


def test_float32_engine_matches_sim_run():
    pops, prjs = build()
    tr = EventPropTrainer(
        input=pops[0], output=pops[2], projections=prjs, duration=DURATION, engine="numpy"
    )
    tr.fit(TRAIN, epochs=2, batch_size=16, lr=2e-2, progress=False)
    for i in range(4):
        spikes, v = run_example(tr, pops, i)
        assert_same(tr.trace(VAL, i), spikes, v, vtol=1e-4)


def test_binning_and_input_delay_convention():
    """A spike at t (s) is bin floor(t/dt); with a 1 ms delay its current jumps at
    (bin + 1) dt, so the membrane first moves at (bin + 2) dt -- in the engine and in
    sim.run."""
    sim.setup(timestep=1.0, min_delay=1.0)
    inp = sim.Population(1, sim.SpikeSourceArray(spike_times=[]), label="in")
    out = sim.Population(1, LeakyIntegratorReadout(**READOUT), label="out")
    out.initialize(v=-65.0)
    prj = sim.Projection(
        inp, out, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.5, delay=1.0)
    )
    ds = SpikeDataset([np.array([3.7e-3])], [np.array([0])], np.array([0]), np.array([-1]), 1)
    tr = EventPropTrainer(
        input=inp, output=out, projections=[prj], duration=10.0, engine="numpy", dtype="float64"
    )
    trace = tr.trace(ds, 0)
    np.testing.assert_array_equal(trace.input_spikes[0], [3.0])
    moved = np.flatnonzero(trace.v[:, 0] != -65.0)
    assert moved[0] == 5
    tr.load_example(ds, 0)
    out.record("v")
    sim.run(10.0)
    v = np.asarray(out.get_data().segments[0].analogsignals[0])[:, 0]
    np.testing.assert_allclose(v, trace.v[:, 0], rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- (d)
def _trainer(pops, prjs, **kw):
    kw.setdefault("duration", DURATION)
    kw.setdefault("engine", "numpy")
    return EventPropTrainer(input=pops[0], output=pops[2], projections=prjs, **kw)


@pytest.mark.parametrize(
    "change,match",
    [
        (dict(tau_refrac=2.0), r"without a refractory period; \['hid'\].*rule='bptt'"),
        (dict(tau_syn_I=10.0), r"'hid': tau_syn_E = 5 ms but tau_syn_I = 10 ms.*tau_syn_E == "),
        (dict(i_offset=0.2), r"'hid': i_offset = 0\.2 nA.*i_offset=0"),
    ],
)
def test_unsupported_neuron_parameters(change, match):
    pops, prjs = build(hidden=dict(LIF, **change))
    with pytest.raises(UnsupportedFeature, match=match):
        _trainer(pops, prjs)


@pytest.mark.parametrize("dt,refused", [(1.0, False), (0.1, True)])
def test_pynn_default_if_curr_exp(dt, refused):
    """PyNN's default tau_refrac (0.1 ms) holds the membrane for no step at dt = 1 ms
    (EventProp trains it) and for one at 0.1 ms (EventProp names the way out)."""
    sim.setup(timestep=dt)
    inp = sim.Population(4, sim.SpikeSourceArray(spike_times=[]), label="in")
    hid = sim.Population(3, sim.IF_curr_exp(), label="hid")
    out = sim.Population(2, LeakyIntegratorReadout(), label="out")
    prjs = [
        sim.Projection(inp, hid, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.1)),
        sim.Projection(hid, out, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.1)),
    ]
    if refused:
        with pytest.raises(UnsupportedFeature, match="rule='bptt' or rule='eprop', or set "
                           "the refractory period to 0"):
            _trainer((inp, hid, out), prjs)
    else:
        assert _trainer((inp, hid, out), prjs).ir.population("hid").neuron.t_ref == 0.1


def test_heterogeneous_parameters_are_refused():
    pops, prjs = build()
    pops[1][0:4].set(tau_m=10.0)
    with pytest.raises(UnsupportedFeature, match="'hid': tau_m varies across its neurons"):
        _trainer(pops, prjs)


@pytest.mark.parametrize(
    "celltype,match",
    [
        ("IF_cond_exp", "'hid' is IF_cond_exp; EventProp trains IF_curr_exp"),
        ("IF_curr_alpha", "IF_curr_alpha .its alpha synapse"),
    ],
)
def test_unsupported_cell_types(celltype, match):
    sim.setup(timestep=1.0)
    inp = sim.Population(4, sim.SpikeSourceArray(spike_times=[]), label="in")
    hid = sim.Population(3, getattr(sim, celltype)(tau_refrac=0.0), label="hid")
    out = sim.Population(2, LeakyIntegratorReadout(), label="out")
    prjs = [
        sim.Projection(inp, hid, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.1)),
        sim.Projection(hid, out, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.1)),
    ]
    with pytest.raises(UnsupportedFeature, match=match):
        _trainer((inp, hid, out), prjs)


def test_two_input_populations_are_refused():
    pops, prjs = build()
    extra = sim.Population(5, sim.SpikeSourceArray(spike_times=[]), label="in2")
    prjs.append(
        sim.Projection(extra, pops[1], sim.AllToAllConnector(), sim.StaticSynapse(weight=0.1))
    )
    with pytest.raises(UnsupportedFeature, match="exactly one input .'in'.: merge the inputs"):
        _trainer(pops, prjs)
    with pytest.raises(UnsupportedFeature, match="2 input populations given"):
        EventPropTrainer(
            input=[pops[0], extra], output=pops[2], projections=prjs, duration=DURATION
        )


def test_input_must_be_a_spike_source_array():
    pops, prjs = build()
    with pytest.raises(UnsupportedFeature, match="must be a SpikeSourceArray"):
        EventPropTrainer(input=pops[1], output=pops[2], projections=prjs[2:], duration=DURATION)


def test_readout_and_loss_must_agree():
    pops, prjs = build(readout="lif")
    with pytest.raises(UnsupportedFeature, match="use LeakyIntegratorReadout"):
        _trainer(pops, prjs, loss="avg_ce")
    pops, prjs = build(readout="li")
    with pytest.raises(UnsupportedFeature, match="needs output spikes.*make it IF_curr_exp"):
        _trainer(pops, prjs, loss="ttfs_ce")


def test_other_structural_errors():
    pops, prjs = build(pairs=False)
    dup = sim.Projection(
        pops[1],
        pops[2],
        sim.AllToAllConnector(),
        sim.StaticSynapse(weight=0.1),
        receptor_type="excitatory",
    )
    with pytest.raises(UnsupportedFeature, match="merge them into one projection"):
        _trainer(pops, prjs + [dup])
    pops, prjs = build()
    with pytest.raises(ModelError, match="not a multiple of dt"):
        _trainer(pops, prjs, duration=20.5)
    with pytest.raises(ModelError, match="differs from the simulator's time step"):
        _trainer(pops, prjs, dt=0.5)
    with pytest.raises(UnsupportedFeature, match="PopulationView"):
        _trainer(
            pops,
            [
                sim.Projection(
                    pops[0], pops[1][0:3], sim.AllToAllConnector(), sim.StaticSynapse(weight=0.1)
                )
            ]
            + prjs[2:],
        )
    tr = _trainer(pops, prjs)
    bad = SpikeDataset([np.array([1e-3])], [np.array([0])], np.array([0]), np.array([-1]), 5)
    with pytest.raises(ModelError, match="5 channels but the input 'in' has 24"):
        tr.fit(bad, epochs=1)


def test_checkpoint_resume_continues_and_writes_back(tmp_path):
    pops, prjs = build()
    tr = _trainer(pops, prjs)
    tr.fit(TRAIN, epochs=1, batch_size=16, lr=2e-2, checkpoint_dir=str(tmp_path), progress=False)
    after_one = prjs[0].get("weight", format="array").copy()
    pops, prjs = build()  # a fresh script: initial weights again
    tr = _trainer(pops, prjs)
    res = tr.fit(
        TRAIN,
        epochs=2,
        batch_size=16,
        lr=2e-2,
        checkpoint_dir=str(tmp_path),
        resume=True,
        progress=False,
    )
    assert res.start_epoch == 1 and len(res.history) == 2
    assert np.abs(prjs[0].get("weight", format="array") - after_one).max() > 0
    pops, prjs = build(recurrent=True)  # another network refuses the checkpoint
    with pytest.raises(CheckpointError):
        _trainer(pops, prjs).fit(
            TRAIN, epochs=3, checkpoint_dir=str(tmp_path), resume=True, progress=False
        )


@pytest.mark.parametrize("rule", ["bptt", "eprop"])
def test_bptt_and_eprop_train_and_sim_run_agrees(rule):
    pops, prjs = build(recurrent=True)
    tr = EventPropTrainer(input=pops[0], output=pops[2], projections=prjs, duration=DURATION,
                          engine="numpy", dtype="float64", max_spikes=20, rule=rule)
    before = tr.evaluate(VAL)
    tr.fit(TRAIN, epochs=8, batch_size=16, lr=2e-2, progress=False)
    acc = tr.evaluate(VAL)
    assert acc >= 0.9 > before + 0.2, (before, acc)
    for i in range(4):
        spikes, v = run_example(tr, pops, i)
        assert_same(tr.trace(VAL, i), spikes, v, vtol=1e-9)


def test_eprop_online_option_gives_the_same_gradient():
    """eprop_online=True (forward-time traces) and the default (reverse time) compute one
    gradient from the same PyNN network."""
    pops, prjs = build(recurrent=True)
    trainers = [EventPropTrainer(input=pops[0], output=pops[2], projections=prjs,
                                 duration=DURATION, engine="numpy", dtype="float64",
                                 max_spikes=20, rule="eprop", eprop_online=online)
                for online in (False, True)]
    b = trainers[0].loader(VAL.subset(range(8)), 8).batch(0)
    fast, online = (t.model.loss_and_grad(b) for t in trainers)
    assert fast.loss == pytest.approx(online.loss, rel=1e-12)
    assert np.abs(online.grads["in->hid.w"]).max() > 0   # a test that can fail
    for key, g in online.grads.items():
        np.testing.assert_allclose(fast.grads[key], g, rtol=0,
                                   atol=1e-9 * max(np.abs(g).max(), 1e-12), err_msg=key)


def test_bptt_gradients_of_a_pynn_network_equal_the_reference():
    """PyNN's units (mV, nA, ms; gains != 1, theta = 15 mV above rest) through the BPTT
    kernels: the forward-mode reference on the same IR gives the same gradients."""
    from tests.rules.reference import reference_gradients

    pops, prjs = build(recurrent=True, pairs=False)
    tr = EventPropTrainer(input=pops[0], output=pops[2], projections=prjs, duration=DURATION,
                          engine="numpy", dtype="float64", max_spikes=20, rule="bptt",
                          signs="free")
    b = tr.loader(VAL.subset(range(4)), 4).batch(0)
    res = tr.model.loss_and_grad(b)
    _, want, _ = reference_gradients(tr.model.ir, tr.model.state_dict(), np.asarray(b.inputs),
                                     np.asarray(b.labels), tr.model.surrogate)
    assert np.abs(want["in->hid"]).max() > 0 and np.abs(want["hid->out"]).max() > 0
    for name, g in want.items():
        np.testing.assert_allclose(res.grads[name + ".w"], g, rtol=0,
                                   atol=1e-9 * max(np.abs(g).max(), 1e-12), err_msg=name)


def test_alif_hidden_population_trains_with_eprop_and_sim_run_agrees():
    """ALIF_curr_exp (adaptive threshold) as the hidden layer: e-prop trains it; sim.run
    simulates the trained network (threshold adaptation included) as the engine does."""
    from pyNN.gpuspike.training import ALIF_curr_exp

    sim.setup(timestep=1.0, min_delay=1.0)
    rng = np.random.default_rng(0)
    inp = sim.Population(N_IN, sim.SpikeSourceArray(spike_times=[]), label="in")
    alif = {k: v for k, v in LIF.items()}
    hid = sim.Population(N_HID, ALIF_curr_exp(tau_a=30.0, beta_a=4.0, **alif), label="hid")
    out = sim.Population(N_CLASSES, LeakyIntegratorReadout(**READOUT), label="out")
    for p in (hid, out):
        p.initialize(v=-65.0)
    prjs = [sim.Projection(pre, post, sim.AllToAllConnector(),
                           sim.StaticSynapse(weight=w, delay=1.0), receptor_type="excitatory")
            for pre, post, w in ((inp, hid, np.abs(rng.normal(0.4, 0.15, (N_IN, N_HID)))),
                                 (hid, out, np.abs(rng.normal(0.05, 0.15, (N_HID, N_CLASSES)))))]
    tr = EventPropTrainer(input=inp, output=out, projections=prjs, duration=DURATION,
                          engine="numpy", dtype="float64", rule="eprop", signs="free")
    nrn = tr.ir.population("hid").neuron
    assert (nrn.tau_a, nrn.beta_a) == (30.0, 4.0)
    before = tr.evaluate(VAL)
    tr.fit(TRAIN, epochs=8, batch_size=16, lr=2e-2, progress=False)
    acc = tr.evaluate(VAL)
    assert acc >= 0.9 > before + 0.2, (before, acc)
    n_spikes = 0
    for i in range(4):
        spikes, v = run_example(tr, (inp, hid, out), i)
        trace = tr.trace(VAL, i)
        assert_same(trace, spikes, v, vtol=1e-9)
        n_spikes += sum(len(s) for s in trace.spikes["hid"])
    assert n_spikes > 20
    with pytest.raises(UnsupportedFeature, match="adaptive threshold"):
        EventPropTrainer(input=inp, output=out, projections=prjs, duration=DURATION,
                         engine="numpy", signs="free")
