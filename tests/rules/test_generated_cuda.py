"""BPTT's and e-prop's generated CUDA: the whole modules run on the host (real grids and
blocks, racing atomics; :mod:`tests.cuda_host`) give the NumPy engine's gradients, and
compile with nvcc."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from gpuspike.engine.codegen_cuda import cuda_source
from gpuspike.engine.eventprop import passes
from gpuspike.engine.rules.kernels import bptt_plans, eprop_plans
from gpuspike.engine.rules.network import make_network
from gpuspike.engine.rules.surrogate import DEFAULT

from .. import cuda_host
from ..eventprop.test_generated_cuda import HostCudaProgram
from ..simulate import compile_ptx
from .test_gradients import batch, small

pytestmark = pytest.mark.skipif(not cuda_host.available(), reason="g++ is not on PATH")


@pytest.mark.parametrize("rule", ["bptt", "eprop", "eprop_online"])
@pytest.mark.parametrize("loss,delays,alif,t_ref", [
    ("avg_ce", 0.0, False, 0.0), ("max_ce", 0.0, False, 0.0), ("avg_ce", 3e-3, False, 0.0),
    ("avg_ce", 0.0, True, 0.0), ("avg_ce", 0.0, True, 3e-3)])
def test_cuda_module_on_host_gives_the_numpy_gradients(rule, loss, delays, alif, t_ref,
                                                       monkeypatch):
    ir, params = small(loss, recurrent=True, reg=1e-2, delays=delays, alif=alif, t_ref=t_ref)
    b = batch(3, rate=0.4 if t_ref else 0.2)
    online = rule == "eprop_online"
    rule = rule.removesuffix("_online")
    want = make_network(rule, ir, params, engine="numpy", dtype=np.float64,
                        online=online).loss_and_grad(b)
    monkeypatch.setattr(passes, "make_program",
                        lambda backend, plan, arrays, threads=None:
                        HostCudaProgram(plan, arrays, plan.reverse_steps > 0))
    monkeypatch.setattr(passes, "input_products", lambda backend: False)   # as on cupy
    got = make_network(rule, ir, params, engine="numpy", dtype=np.float64,
                       online=online).loss_and_grad(b)
    assert got.loss == pytest.approx(want.loss, rel=1e-12)
    for key, g in want.grads.items():
        assert np.abs(g).max() > 0, key
        np.testing.assert_allclose(got.grads[key], g, rtol=1e-9, atol=1e-12 * np.abs(g).max(),
                                   err_msg=key)


@pytest.mark.nvcc
@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not on PATH")
@pytest.mark.parametrize("precision", ["float32", "float64"])
@pytest.mark.parametrize("rule", ["bptt", "eprop", "eprop_online"])
def test_rule_modules_compile_with_nvcc(rule, precision):
    ir, _ = small("avg_ce", recurrent=True, delays=3e-3, alif=True, t_ref=2e-3)
    caps = {p.name: 8 for p in ir.populations if not p.is_input and p.neuron.spiking}
    if rule == "eprop_online":
        plans = eprop_plans(ir, 4, caps, precision, DEFAULT["eprop"], 100)
    else:
        plans = bptt_plans(ir, 4, caps, precision, DEFAULT[rule], 100, rule=rule)
    for plan in (*plans[:2], *plans[3:]):   # e-prop: the readout filter's plan too
        compile_ptx(cuda_source(plan))
