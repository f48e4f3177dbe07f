"""Shared (scalar) variables written by ``run_regularly``: Brian2 runs the scalar code once
per call, before the per-element code; a random draw there is one draw for the group."""

from __future__ import annotations

import numpy as np
from brian2 import NeuronGroup, SpikeMonitor, StateMonitor, ms, run, seed

from .test_device import both


def shared_direction(random: bool):
    """Each neuron is driven by how close the group's shared ``direction`` is to its own
    preferred one (Brian2's Kremer et al. 2011 barrel cortex example, deterministic
    threshold): ``direction`` from ``rand()``, or from an expression of ``t``."""
    seed(11)
    n = 16
    G = NeuronGroup(n, """dv/dt = (drive - v)/(5*ms) : volt
                          drive = 30*mV*clip(cos(direction - pref), 0, inf) : volt
                          pref : 1
                          direction : 1 (shared)
                          stim_start : second (shared)""",
                    threshold="v > 10*mV", reset="v = 0*mV", method="exact")
    G.pref = "i*2*pi/n"
    code = ("direction = rand()*2*pi" if random else "direction = (t/ms % 7)*0.9") + \
        "\nstim_start = t\nv = v*0.5"
    G.run_regularly(code, dt=4 * ms, when="start")
    spikes = SpikeMonitor(G)
    state = StateMonitor(G, ["direction", "stim_start"], record=[0])
    run(60 * ms)
    return (np.array(spikes.i[:]), np.array(spikes.t[:] / ms), np.array(state.direction[0]),
            np.array(state.stim_start[0] / ms))


def _equal(ref, got):
    for r, g in zip(ref, got):
        np.testing.assert_allclose(g, r, rtol=0, atol=1e-12)


def test_shared_from_expression_identical(on_device):
    ref, got, dev = both(on_device, lambda: shared_direction(random=False))
    _equal(ref, got)
    assert len(ref[0]) > 20 and dev.runtime_step_calls == 0


def test_shared_from_rand_one_draw_per_call(on_device):
    """The draw runs on the host with Brian2's own code (NumPy's stream, seeded), so the
    directions and spike trains equal the runtime's."""
    from brian2.devices.device import all_devices

    before = all_devices["gpuspike"].operation_calls
    ref, got, dev = both(on_device, lambda: shared_direction(random=True))
    _equal(ref, got)
    assert len(ref[0]) > 20 and len(np.unique(ref[2])) == 15
    # the scalar code as a host operation once per call; the rest on the engine
    assert dev.operation_calls - before == 15 and dev.runtime_step_calls == 0
