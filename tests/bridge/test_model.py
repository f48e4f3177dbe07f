"""The model builder: equations -> IR groups."""

from __future__ import annotations

import numpy as np
import pytest
from gpuspike.bridge import ir
from gpuspike.bridge.errors import ModelError
from gpuspike.bridge.model import neuron_group, synapses


def test_neuron_group_events_parameters_refractoriness():
    g = neuron_group("g", 3, "dv/dt = (1.2 - v)/tau : 1 (unless refractory)",
                     threshold="v > 1", reset="v = 0", refractory="2*ms",
                     namespace={"tau": 0.01, "unused": 3.0})
    assert g.events[0].name == "spike" and float(g.events[0].refractory) == pytest.approx(2e-3)
    assert {p.name for p in g.parameters} >= {"tau"}
    assert isinstance(g.update[-1], ir.Conditional)  # frozen while refractory


def test_initial_values_forms():
    g = neuron_group("g", 3, "a : 1\nb : 1\nc : 1",
                     init={"a": 2.0, "b": "i*2", "c": np.array([1.0, 2.0, 3.0])})
    kinds = {v.name: type(v.init) for v in g.variables}
    assert kinds == {"a": ir.Constant, "b": ir.ExpressionInit, "c": ir.ArrayInit}
    with pytest.raises(ModelError, match="do not define"):
        neuron_group("g", 3, "a : 1", init={"zz": 1.0})


def test_reset_without_threshold_is_an_error():
    with pytest.raises(ModelError, match="threshold"):
        neuron_group("g", 1, "v : 1", reset="v = 0")


def test_synapses_delays_summed_and_event_driven():
    s = synapses("s", "a", "b", model="""
        w : 1
        d : second
        dapre/dt = -apre/(5*ms) : 1 (event-driven)
        I_post = w*v_pre : 1 (summed)
        """, on_pre="x_post += w + apre", connector=ir.FixedProbability(0.1), delay="d",
        max_delay=2e-3, dt=1e-4, pre_variables=("v",), post_variables=("x", "I"))
    pw = s.pathways[0]
    assert pw.delay == ir.HeterogeneousDelay("d_steps", 20)
    assert s.summed[0].target == "I" and s.summed[0].side == "post"
    assert pw.statements[-1] == ir.Accumulate("x", pw.statements[-1].expr, "post")
    assert any(v.name == "lastupdate" for v in s.variables)
    with pytest.raises(ModelError, match="max_delay"):
        synapses("s", "a", "b", model="d : second", delay="d", dt=1e-4)


def test_units_checked_when_parameters_carry_units():
    from gpuspike.bridge.errors import UnitError

    ok = neuron_group("g", 2, "dv/dt = (El - v)/tau : volt", namespace={"El": "-65*mV",
                                                                       "tau": "10*ms"})
    assert {p.name: p.value for p in ok.parameters} == pytest.approx({"El": -0.065,
                                                                      "tau": 0.01})
    with pytest.raises(UnitError, match="dv/dt"):
        neuron_group("g", 2, "dv/dt = (El - v) : volt", namespace={"El": "-65*mV"})
    with pytest.raises(UnitError, match="adding"):
        neuron_group("g", 2, "dv/dt = (I - v)/tau : volt\nI : amp",
                     namespace={"tau": "10*ms"})
    # bare numbers have no unit to check: accepted as SI values
    neuron_group("g", 2, "dv/dt = (El - v) : volt", namespace={"El": -0.065})
