"""CUDA printer: deterministic, readable source (golden checks need no GPU)."""

from __future__ import annotations

import dataclasses

from gpuspike.bridge import ir
from gpuspike.bridge.model import neuron_group, synapses
from gpuspike.engine.codegen_cuda import cuda_source, launch_config
from gpuspike.engine.runtime import Simulation

DT = 1e-4


def _plan():
    g = neuron_group("exc", 10, "dv/dt = (2 - v)/tau : 1", threshold="v > 1",
                     reset="v = 0", namespace={"tau": 0.01})
    s = synapses("rec", "exc", "exc", model="w : 1", on_pre="v_post += w",
                 connector=ir.FixedProbability(0.5), dt=DT, post_variables=("v",),
                 init={"w": 0.1})
    net = ir.NetworkIR(dt=DT, groups=(g,), synapses=(s,), seed=5,
                       monitors=(ir.SpikeMonitorIR("spikes", "exc"),))
    return Simulation(net, engine="numpy").plan


def test_source_is_deterministic():
    assert cuda_source(_plan()) == cuda_source(_plan())


def test_one_named_kernel_per_phase_with_ir_comments():
    src = cuda_source(_plan())
    for name in ("k_exc_update", "k_exc_spike_reset", "k_rec_pre",
                 "k_spikes_record", "gs_advance"):
        assert f"void {name}(" in src
    assert "state update and events of exc" in src  # threshold fused into the update
    assert "// v_post += w" in src
    assert "atomicAdd(&exc__v[" in src


def test_float32_source_uses_float_math():
    plan = dataclasses.replace(_plan(), precision="float32")
    src = cuda_source(plan)
    assert "float* __restrict__ exc__v" in src
    assert "_rng_uniform_f32" in src or "rand" not in src


def test_launch_configs_cover_batches():
    plan = dataclasses.replace(_plan(), batch_size=4)
    for kern in plan.step_kernels:
        grid, block = launch_config(kern, 4)
        assert all(x >= 1 for x in (*grid, *block))
        if kern.name == "rec_pre":
            assert grid[1] == 4
