"""Lowering: phase order, ring depths and the typed errors of malformed synapse code."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
from gpuspike.bridge import ir
from gpuspike.bridge.errors import ModelError
from gpuspike.bridge.expressions import parse_expression, parse_statements
from gpuspike.bridge.model import neuron_group, synapses
from gpuspike.engine.lower import ConnShape, lower, ring_depths
from gpuspike.engine.runtime import Simulation

DT = 1e-4


def _net(**kw):
    a = neuron_group("a", 3, "v : 1", threshold="v > 1", reset="v = 0")
    b = neuron_group("b", 2, "v : 1\nw : 1")
    return a, b, ir.NetworkIR(dt=DT, groups=(a, b), **kw)


def test_ring_depth_is_longest_delay_plus_one():
    a, b, _ = _net()
    s1 = synapses("s1", "a", "b", on_pre="v_post += 1", delay=3 * DT, dt=DT,
                  post_variables=("v",))
    s2 = synapses("s2", "a", "b", on_pre="v_post += 1", delay=7 * DT, dt=DT,
                  post_variables=("v",))
    net = ir.NetworkIR(dt=DT, groups=(a, b), synapses=(s1, s2))
    assert ring_depths(net)[("a", "spike")] == 8
    assert ("b", "spike") not in ring_depths(net)  # b has no threshold: no ring


def test_phase_order_follows_schedule():
    a, b, _ = _net()
    s = synapses("s", "a", "b", on_pre="v_post += 1", dt=DT, delay=DT, post_variables=("v",))
    shapes = {"s": ConnShape(3, 2, 2, 1)}
    for schedule in (ir.SCHEDULE_BRIAN2, ir.SCHEDULE_GENN):
        net = ir.NetworkIR(dt=DT, groups=(a, b), synapses=(s,), schedule=schedule)
        phases = [k.phase for k in lower(net, shapes).step_kernels]
        seen = [p for n, p in enumerate(phases) if p not in phases[:n]]
        assert seen == [p for p in schedule if p in phases]


def test_cross_element_assignment_is_rejected():
    a, b, _ = _net()
    s = ir.SynapseGroupIR("s", "a", "b", ir.AllToAll(), (ir.Variable("w", batched=False),),
                          pathways=(ir.PathwayIR("pre", parse_statements("v_post = w")),))
    net = ir.NetworkIR(dt=DT, groups=(a, b), synapses=(s,))
    with pytest.raises(ModelError, match=r"v_post \+= "):
        Simulation(net, engine="numpy")


def test_accumulate_in_neuron_code_is_rejected():
    g = ir.NeuronGroupIR("g", 2, (ir.Variable("v"),),
                         update=(ir.Accumulate("v", sympy.Integer(1), "post"),))
    with pytest.raises(ModelError):
        Simulation(ir.NetworkIR(dt=DT, groups=(g,)), engine="numpy")


def test_unknown_symbol_names_group_and_symbol():
    g = ir.NeuronGroupIR("g", 2, (ir.Variable("v"),),
                         update=(ir.Assign("v", parse_expression("v + tau_m")),))
    with pytest.raises(ModelError, match="tau_m"):
        Simulation(ir.NetworkIR(dt=DT, groups=(g,)), engine="numpy")


def test_heterogeneous_delay_must_be_integer_steps():
    a, b, _ = _net()
    s = ir.SynapseGroupIR("s", "a", "b", ir.AllToAll(), (ir.Variable("d", batched=False),),
                          pathways=(ir.PathwayIR("pre", parse_statements("v_post += 1"),
                                                 delay=ir.HeterogeneousDelay("d", 4)),))
    with pytest.raises(ModelError, match="delay"):
        Simulation(ir.NetworkIR(dt=DT, groups=(a, b), synapses=(s,)), engine="numpy")


def test_shared_synapse_write_with_batches_is_rejected():
    a, b, _ = _net()
    s = synapses("s", "a", "b", model="w : 1", on_pre="w = w + 1", dt=DT)
    net = ir.NetworkIR(dt=DT, groups=(a, b), synapses=(s,), batch_size=2)
    with pytest.raises(ModelError, match="batch"):
        Simulation(net, engine="numpy")


def test_spike_source_double_spike_in_a_step_becomes_one_event_of_two():
    """As NEST: two spikes of one element in one step are one event of multiplicity 2
    (counts already given are added)."""
    src = ir.SpikeArraySourceIR("S", 2, np.array([0.0, 0.00001, 0.0, 0.0002]),
                                np.array([1, 1, 0, 1]), counts=np.array([1, 2, 1, 1]))
    sim = Simulation(ir.NetworkIR(dt=DT, sources=(src,)), engine="numpy")
    (merged,) = sim.net.sources
    order = np.lexsort((merged.indices, np.round(merged.times / DT)))
    np.testing.assert_array_equal(merged.indices[order], [0, 1, 1])
    np.testing.assert_array_equal(merged.counts[order], [1, 3, 1])


def test_threshold_fuses_with_update_only_when_adjacent():
    a, b, _ = _net()
    g = neuron_group("g", 3, "dv/dt = 1/tau : 1", threshold="v > 1", reset="v = 0",
                     namespace={"tau": 0.01})
    fused = lower(ir.NetworkIR(dt=DT, groups=(g,)), {})
    apart = lower(ir.NetworkIR(dt=DT, groups=(g,), schedule=(
        "start", "groups", "synapses", "thresholds", "resets", "end")), {})
    assert [k.name for k in fused.step_kernels] == ["g_update", "g_spike_reset"]
    assert [k.name for k in apart.step_kernels] == ["g_update", "g_threshold",
                                                    "g_spike_reset"]


def test_zero_delay_before_thresholds_is_an_error():
    a, b, _ = _net()
    s = synapses("s", "a", "b", on_pre="v_post += 1", dt=DT, post_variables=("v",))
    net = ir.NetworkIR(dt=DT, groups=(a, b), synapses=(s,), schedule=ir.SCHEDULE_GENN)
    with pytest.raises(ModelError, match="at least one step"):
        lower(net, {"s": ConnShape(3, 2, 2, 1)})
