"""Synapses acting on Synapses and user-defined functions on the gpuspike device,
compared with Brian2's NumPy runtime (float64)."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
from brian2 import (
    Function,
    NeuronGroup,
    SpikeGeneratorGroup,
    StateMonitor,
    Synapses,
    check_units,
    implementation,
    ms,
    run,
)
from gpuspike.bridge.errors import UnsupportedFeature
from gpuspike.engine.codegen_cuda import cuda_source

from tests.simulate import compile_ptx

from .test_semantics import same


def _plan(dev):
    return next(iter(dev._cache.values())).sim.plan


def _compiles(plan):
    """The plan's CUDA source compiles (nvcc -ptx, both precisions), where nvcc exists."""
    if shutil.which("nvcc"):
        for precision in ("float64", "float32"):
            compile_ptx(cuda_source(dataclasses.replace(plan, precision=precision)))


def test_synapses_on_synapses_read_write_and_sum(on_device):
    def model():
        src = SpikeGeneratorGroup(4, [0, 1, 2, 3, 0, 2], [0, 0, 1, 2, 3, 5] * ms, period=6 * ms)
        mod = SpikeGeneratorGroup(5, [4, 1, 3, 0], [1, 2, 3.5, 4] * ms)
        tgt = NeuronGroup(3, "v : 1\ny : 1")
        conn = Synapses(src, tgt, "w : 1\nlastw : 1", on_pre="v_post += w\nlastw = w", delay=1 * ms)
        conn.connect(i=[3, 0, 2, 1, 0], j=[0, 2, 1, 1, 0])  # user order not sorted by i
        conn.connect(i=1, j=2)
        conn.w = "0.1 * (i + 1) + 0.01 * j"
        # on_pre into the synapses' variables, reading their i and j
        m = Synapses(
            mod, conn, "c : 1", on_pre="w_post += 0.5\nc += i_post + 10*j_post + lastw_post"
        )
        m.connect(j="(i + 2) % N_post")
        m.connect(i=[0, 4], j=[5, 0])
        # Synapses as the pre side: a summed variable from their weights
        s = Synapses(conn, tgt, "y_post = w_pre * (1 + i_pre) : 1 (summed)")
        s.connect(j="j_pre")
        # a summed variable into the synapses
        s2 = Synapses(src, conn, "q : 1\nlastw_post = q : 1 (summed)")
        s2.connect(j="i % N_post")
        s2.q = "i * 0.25"
        mon = StateMonitor(tgt, ["v", "y"], record=True)
        run(8 * ms)
        return mon.v[:], mon.y[:], conn.w[:], m.c[:], conn.lastw[:]

    _compiles(_plan(same(on_device, model)))


@implementation("cpp", "inline double usersquare(double x) { return x*x; }")
@check_units(x=1, result=1)
def usersquare(x):
    return x * x


def test_user_functions_in_kernels_and_recorded_subexpressions(on_device):
    def model():
        G = NeuronGroup(
            4,
            """dv/dt = (usersquare(v) + 0.5 - v)/(10*ms) : 1
                              f = usersquare(2*v) : 1""",
            threshold="v > 0.8",
            reset="v = usersquare(0.3)",
            method="euler",
        )
        G.v = "0.2*i"
        S = Synapses(G, G, "w : 1", on_pre="v_post += usersquare(w)")
        S.connect(j="(i + 1) % N_post")
        S.w = "0.1*i"
        mon = StateMonitor(G, ["v", "f"], record=True)
        run(20 * ms)
        return mon.v[:], mon.f[:]

    dev = same(on_device, model)
    plan = _plan(dev)
    assert [f.name for f in plan.functions] == ["usersquare"]
    _compiles(plan)


def test_a_python_only_function_needs_cpp_for_cuda(on_device):
    python_only = Function(lambda x: np.tanh(x), arg_units=[1], return_unit=1)
    renamed = Function(lambda x: np.abs(x), arg_units=[1], return_unit=1)
    renamed.implementations.add_implementation("cpp", code=None, name="fabs")

    def model(rhs):
        def run_it():
            G = NeuronGroup(
                3,
                f"dv/dt = ({rhs})/ms : 1",
                method="euler",
                namespace={"pyth": python_only, "absolute": renamed},
            )
            G.v = "i"
            run(1 * ms)
            return (G.v[:],)

        return run_it

    with pytest.raises(UnsupportedFeature, match="'pyth' has only a Python"):
        cuda_source(_plan(same(on_device, model("pyth(v) + absolute(v - 1)"))))
    # a C library function under another name: forwarded to
    plan = _plan(same(on_device, model("absolute(v - 1)")))
    assert "return fabs(a...)" in cuda_source(plan)
    _compiles(plan)
