"""Synapse groups whose pre or post side is another synapse group (engine.endpoints), on
every available engine; expected values worked out by hand from the schedule."""

from __future__ import annotations

import numpy as np
import pytest
from gpuspike.bridge import ir
from gpuspike.bridge.errors import ModelError
from gpuspike.bridge.model import neuron_group, synapses
from gpuspike.engine.runtime import Simulation

from tests.simulate import simulate

DT = 1e-4


def spikes(name, n, steps, indices):
    return ir.SpikeArraySourceIR(name, n, np.asarray(steps, float) * DT, np.asarray(indices, int))


def network(*extra):
    """src (3) -> tgt (3) through ``conn`` (user order unsorted by i); ``mod`` (2)
    adds 10 to the weight of some synapses of ``conn`` (its post side)."""
    src = spikes("src", 3, [0, 0, 0, 20, 20, 20, 40, 40, 40], [0, 1, 2] * 3)
    mod = spikes("mod", 2, [10, 30], [0, 1])
    tgt = neuron_group("tgt", 3, "v : 1\ny : 1")
    conn = synapses(
        "conn",
        "src",
        "tgt",
        model="w : 1\nz : 1",
        on_pre="v_post += w",
        connector=ir.FromList(np.array([2, 0, 1, 0]), np.array([0, 1, 2, 0])),
        init={"w": [1.0, 2.0, 3.0, 4.0]},
        post_variables=("v",),
        dt=DT,
    )
    modc = synapses(
        "modc",
        "mod",
        "conn",
        model="n : 1",
        on_pre="w_post += 10",
        connector=ir.FromList(np.array([0, 1, 1]), np.array([3, 0, 3])),
        init={"n": "N_post"},
        post_variables=("w",),
        dt=DT,
    )
    return ir.NetworkIR(dt=DT, groups=(tgt,), sources=(src, mod), synapses=(*extra, conn, modc))


def test_pathway_accumulates_into_synapse_variables(engine):
    sim = simulate(network(), engine, steps=50)
    np.testing.assert_array_equal(sim.get("conn", "w"), [11.0, 2.0, 3.0, 24.0])
    # tgt 0 gets synapses 0 (w 1, 1, 11) and 3 (w 4, 14, 24); tgt 1 and 2 three times
    np.testing.assert_array_equal(sim.get("tgt", "v"), [55.0, 6.0, 9.0])
    np.testing.assert_array_equal(sim.get("modc", "n"), [4.0, 4.0, 4.0])  # N_post
    np.testing.assert_array_equal(sim.connectivity("modc")[1], [3, 0, 3])


def test_summed_variables_into_and_out_of_synapses(engine):
    sumc = synapses(
        "sumc",
        "tgt",
        "conn",
        model="x : 1\nz_post = x : 1 (summed)",
        connector=ir.FromList(np.array([0, 1, 2, 2]), np.array([0, 0, 3, 1])),
        init={"x": [1.0, 2.0, 3.0, 4.0]},
        post_variables=("z",),
        dt=DT,
    )
    # a synapse group as the pre side: w_pre, and i_pre / j_pre of its synapses
    readc = synapses(
        "readc",
        "conn",
        "tgt",
        model="y_post = w_pre + 100*i_pre + 1000*j_pre : 1 (summed)",
        connector=ir.FromList(np.array([0, 1, 2, 3]), np.array([0, 0, 1, 2])),
        pre_variables=("w", "i", "j"),
        dt=DT,
    )
    sim = simulate(network(readc, sumc), engine, steps=50)
    np.testing.assert_array_equal(sim.get("conn", "z"), [3.0, 4.0, 0.0, 3.0])
    np.testing.assert_array_equal(
        sim.get("tgt", "y"), [(11 + 200) + (2 + 1000), 3 + 100 + 2000, 24.0]
    )


def test_synapses_emit_no_events_and_cannot_connect_in_a_cycle():
    bad = synapses(
        "bad",
        "conn",
        "tgt",
        on_pre="v_post += 1",
        post_variables=("v",),
        connector=ir.AllToAll(),
        dt=DT,
    )
    with pytest.raises(ModelError, match="no event 'spike'"):
        Simulation(network(bad), engine="numpy")
    a = ir.SynapseGroupIR("a", "b", "tgt", ir.AllToAll())
    b = ir.SynapseGroupIR("b", "a", "tgt", ir.AllToAll())
    with pytest.raises(ModelError, match="cycle"):
        Simulation(network(a, b), engine="numpy")
    with pytest.raises(ModelError, match="its own"):
        Simulation(network(ir.SynapseGroupIR("s", "s", "tgt", ir.AllToAll())), engine="numpy")
