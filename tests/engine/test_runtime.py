"""Runtime: CuPy against NumPy on the same network, chunking, state access."""

from __future__ import annotations

import numpy as np
import pytest
from gpuspike.bridge import ir
from gpuspike.bridge.model import neuron_group, synapses

from tests.simulate import simulate

DT = 1e-4


def balanced_network(precision="float64", n=800, seed=11):
    """A small CUBA-like network driven by Poisson input: chaotic enough to expose any
    difference between engines, small enough for CI."""
    ms, mV = 1e-3, 1e-3
    g = neuron_group("P", n, """
        dv/dt = (ge + gi - (v - El))/taum : volt (unless refractory)
        dge/dt = -ge/taue : volt
        dgi/dt = -gi/taui : volt
        """, threshold="v > Vt", reset="v = Vr", refractory="5*ms",
        namespace=dict(taum=20 * ms, taue=5 * ms, taui=10 * ms, Vt=-50 * mV, Vr=-60 * mV,
                       El=-49 * mV), init={"v": "Vr + rand()*(Vt - Vr)"})
    drive = ir.PoissonSourceIR("drive", 200, ir.Constant(20.0))
    exc = synapses("exc", "P", "P", on_pre="ge_post += 1.62*mV",
                   connector=ir.FixedProbability(0.02), dt=DT, post_variables=("ge",))
    inh = synapses("inh", "P", "P", on_pre="gi_post -= 9*mV",
                   connector=ir.FixedProbability(0.005), dt=DT, post_variables=("gi",),
                   delay=1e-3)
    inp = synapses("inp", "drive", "P", on_pre="ge_post += 0.5*mV",
                   connector=ir.FixedProbability(0.1), dt=DT, post_variables=("ge",))
    return ir.NetworkIR(dt=DT, groups=(g,), sources=(drive,), synapses=(exc, inh, inp),
                        monitors=(ir.SpikeMonitorIR("sm", "P"),), seed=seed,
                        precision=precision)


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_cupy_matches_numpy(precision):
    """Same seed: same connectivity, same random draws, so the same spikes up to float
    rounding (atomic accumulation order); float64 trains agree for a long stretch."""
    net = balanced_network(precision)
    a = simulate(net, "numpy", 2000)
    b = simulate(net, "cupy", 2000)
    for name in ("exc", "inh", "inp"):
        ia, ja = a.connectivity(name)
        ib, jb = b.connectivity(name)
        np.testing.assert_array_equal(ia, ib)
        np.testing.assert_array_equal(ja, jb)
    sa, sb = a.spikes("sm"), b.spikes("sm")
    assert len(sa.i) > 100
    ka = set(zip(sa.i.tolist(), np.round(sa.t / DT).astype(int).tolist()))
    kb = set(zip(sb.i.tolist(), np.round(sb.t / DT).astype(int).tolist()))
    mismatch = len(ka ^ kb) / max(len(ka), 1)
    assert mismatch < (1e-3 if precision == "float64" else 0.05), mismatch
    early = [(i, s) for i, s in ka if s < 500]
    assert set(early) == {(i, s) for i, s in kb if s < 500}


def test_network_runs_and_fires_plausibly(engine):
    sim = simulate(balanced_network(n=400), engine, 1000)
    rate = len(sim.spikes("sm").i) / 400 / (1000 * DT)
    assert 1.0 < rate < 100.0


def test_chunk_length_does_not_change_results(engine):
    a = simulate(balanced_network(n=300), engine, 700, chunk_steps=1000).spikes("sm")
    b = simulate(balanced_network(n=300), engine, 700, chunk_steps=33).spikes("sm")
    np.testing.assert_array_equal(a.i, b.i)
    np.testing.assert_array_equal(a.t, b.t)


def test_get_shapes_with_batches(engine):
    g = neuron_group("g", 4, "v : 1\nw : 1 (constant)", init={"v": "i * 1.0"})
    sim = simulate(ir.NetworkIR(dt=DT, groups=(g,), batch_size=3), engine)
    v = sim.get("g", "v")
    assert v.shape == (3, 4)
    np.testing.assert_array_equal(v, np.tile(np.arange(4.0), (3, 1)))
    sim.set("g", "v", np.arange(12.0).reshape(3, 4))
    np.testing.assert_array_equal(sim.get("g", "v")[2], [8, 9, 10, 11])
    with pytest.raises(KeyError, match="no variable"):
        sim.get("g", "nope")


def test_take_returns_and_clears(engine):
    g = neuron_group("g", 3, "dv/dt = 2000/second : 1", threshold="v > 1", reset="v = 0")
    sim = simulate(ir.NetworkIR(dt=DT, groups=(g,), monitors=(ir.SpikeMonitorIR("m", "g"),)),
                   engine, 20)
    first = sim.take("m")
    assert len(first.i) == 3 * 3  # spikes at steps 5, 11, 17
    assert len(sim.spikes("m").i) == 0
    sim.run(6)
    assert len(sim.take("m").i) == 3
