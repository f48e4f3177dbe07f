"""User functions (FunctionIR) in neuron, reset and synapse code, on every available
engine; the engine that lacks a function's implementation refuses it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from gpuspike.bridge import ir
from gpuspike.bridge.errors import UnsupportedFeature
from gpuspike.bridge.model import neuron_group, synapses
from gpuspike.engine.codegen_cuda import cuda_source
from gpuspike.engine.functions import device_source
from gpuspike.engine.runtime import Simulation

from tests.simulate import simulate

DT = 1e-4
CUBE = ir.FunctionIR(
    "cube",
    numpy=lambda x: x**3,
    cuda="// x cubed\ntemplate <class T> inline T cube(T x) { return x*x*x; }",
)


def network(*functions, cube=CUBE):
    g = neuron_group(
        "g",
        3,
        "dv/dt = 10*cube(2 - v)/second : 1",
        threshold="v > 1",
        reset="v = cube(0.5)",
        init={"v": "0.5*i"},
        functions=("cube",),
        method="euler",
    )
    h = neuron_group("h", 3, "u : 1")
    s = synapses(
        "s",
        "g",
        "h",
        model="w : 1",
        on_pre="u_post += cube(w)",
        connector=ir.OneToOne(),
        init={"w": 0.1},
        post_variables=("u",),
        functions=("cube",),
        dt=DT,
    )
    return ir.NetworkIR(dt=DT, groups=(g, h), synapses=(s,), functions=(cube, *functions))


def reference(steps):
    """Euler steps of dv/dt = 10 (2 - v)^3 with reset to 1/8; u counts spikes times 0.1^3."""
    v, u = 0.5 * np.arange(3.0), np.zeros(3)
    for _ in range(steps):
        v = v + DT * 10 * (2 - v) ** 3
        u += np.where(v > 1, 0.001, 0.0)
        v = np.where(v > 1, 0.125, v)
    return v, u


def test_functions_in_update_reset_and_pathway(engine):
    sim = simulate(network(), engine, steps=3000)
    v, u = reference(3000)
    assert u.min() > 0.002  # every neuron spiked more than twice
    np.testing.assert_allclose(sim.get("g", "v"), v, rtol=1e-12)
    np.testing.assert_allclose(sim.get("h", "u"), u, rtol=1e-12)
    assert [f.name for f in sim.plan.functions] == ["cube"]


def test_unused_functions_stay_out_of_the_plan():
    unused = ir.FunctionIR("only_python", numpy=np.tanh)
    sim = simulate(network(unused), "numpy")
    assert [f.name for f in sim.plan.functions] == ["cube"]
    assert "only_python" not in cuda_source(sim.plan)


def test_an_engine_without_the_implementation_refuses():
    python_only = dataclasses.replace(CUBE, cuda=None)
    plan = Simulation(network(cube=python_only), engine="numpy").plan
    with pytest.raises(UnsupportedFeature, match="needs a C\\+\\+/CUDA implementation"):
        cuda_source(plan)
    cuda_only = dataclasses.replace(CUBE, numpy=None)
    with pytest.raises(UnsupportedFeature, match="no Python implementation"):
        Simulation(network(cube=cuda_only), engine="numpy")
    with pytest.raises(Exception, match="implementation"):
        ir.FunctionIR("nothing")


def test_cpp_functions_become_device_functions():
    src = (
        "#define TWO 2.0\n// helper (\ninline double half(double x) { return x / TWO; }\n"
        "double twice(double);\nstatic const double c = 1.0;\n"
        "template <class T> T same(T x) { return x; }\n"
        "__device__ double ok(double x) { return x; }\n"
        "double twice(double x) { if (x) { return 2*x; } return 0.0; }\n"
    )
    out = device_source(src)
    assert "__device__ inline double half" in out
    assert "__device__ double twice(double);" in out
    assert "template <class T> __device__ T same" in out
    assert "__device__ double twice(double x)" in out
    assert "static const double c" in out and "__device__ static" not in out
    assert out.count("__device__ double ok") == 1 and "__device__ __device__" not in out
