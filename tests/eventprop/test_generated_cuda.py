"""EventProp's generated CUDA: the whole forward and backward modules run on the host (real
grids and blocks, blocks in sequence and backwards, racing atomics as GCC atomics; see
:mod:`tests.cuda_host`) give the NumPy engine's loss and gradients, and compile with nvcc.

A GPU was never lent when this was written: this is the check that the text the GPU will
run computes EventProp (atomics of the gradient sums in any order: equal to rounding).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from gpuspike.engine.codegen_cuda import cuda_source
from gpuspike.engine.eventprop import passes
from gpuspike.engine.eventprop.kernels import training_plans
from gpuspike.engine.eventprop.network import EventPropNetwork

from .. import cuda_host
from ..simulate import compile_ptx
from .test_network import batch, small

pytestmark = pytest.mark.skipif(not cuda_host.available(), reason="g++ is not on PATH")


class HostCudaProgram:
    """A program face (run, sync, array_written) over :class:`tests.cuda_host.CudaOnHost`."""

    def __init__(self, plan, arrays, reverse: bool) -> None:
        self.plan, self.arrays, self.reverse = plan, arrays, reverse
        self.module = cuda_host.CudaOnHost(plan)

    def run(self, n: int) -> None:
        self.module.run(self.arrays, n, reverse=self.reverse)

    def sync(self) -> None:
        pass

    def array_written(self, name: str) -> None:
        pass


@pytest.mark.parametrize("reverse", [False, True], ids=["launch-order", "backwards"])
@pytest.mark.parametrize("loss,delay_max,recurrent", [
    ("avg_ce", 0.0, True), ("exp_avg_ce", 5e-3, True), ("max_ce", 0.0, False),
    ("ttfs_ce", 0.0, True)])
def test_cuda_module_on_host_gives_the_numpy_gradients(loss, delay_max, recurrent, reverse,
                                                        monkeypatch):
    ir, params = small(loss, recurrent=recurrent, delay_max=delay_max)
    b = batch(3)
    want = EventPropNetwork(ir, params, engine="numpy", dtype=np.float64).loss_and_grad(b)
    monkeypatch.setattr(passes, "make_program",
                        lambda backend, plan, arrays, threads=None:
                        HostCudaProgram(plan, arrays, reverse))
    monkeypatch.setattr(passes, "input_products", lambda backend: False)   # as on cupy
    got = EventPropNetwork(ir, params, engine="numpy", dtype=np.float64).loss_and_grad(b)
    assert got.loss == pytest.approx(want.loss, rel=1e-12)
    assert got.spikes_per_neuron == want.spikes_per_neuron
    assert got.diagnostics == want.diagnostics
    for key, g in want.grads.items():
        assert np.abs(g).max() > 0, key
        np.testing.assert_allclose(got.grads[key], g, rtol=1e-9, atol=1e-12 * np.abs(g).max(),
                                   err_msg=key)


@pytest.mark.nvcc
@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not on PATH")
@pytest.mark.parametrize("precision", ["float32", "float64"])
@pytest.mark.parametrize("loss,delay_max", [("exp_avg_ce", 5e-3), ("ttfs_ce", 0.0),
                                            ("max_ce", 0.0)])
def test_training_modules_compile_with_nvcc(loss, delay_max, precision):
    ir, _ = small(loss, delay_max=delay_max)
    caps = {p.name: 8 for p in ir.populations if not p.is_input and p.neuron.spiking}
    for plan in training_plans(ir, 4, caps, precision, 100)[:2]:
        compile_ptx(cuda_source(plan))
