"""Brian2's network_operation on the engine: Python called between engine steps, seeing
and changing the engine's state, against Brian2's runtime (same results)."""

from __future__ import annotations

import numpy as np
import pytest
from brian2 import (
    NeuronGroup,
    SpikeMonitor,
    StateMonitor,
    defaultclock,
    ms,
    mV,
    network_operation,
    run,
)
from gpuspike.bridge.errors import UnsupportedFeature

from .test_device import both


def closed_loop():
    """Every step the operation reads the membrane of all neurons and drives them towards
    a target mean (a proportional controller): a closed loop that the engine alone could
    not compute."""
    n = 20
    G = NeuronGroup(n, """dv/dt = (I - v)/(10*ms) : volt
                          I : volt""", threshold="v > 12*mV", reset="v = 0*mV",
                    method="exact")
    G.v = np.linspace(0, 10, n) * mV
    trace = []

    @network_operation
    def control():
        trace.append(float(np.mean(G.v[:] / mV)))
        G.I = (20 - 0.5 * np.mean(G.v[:] / mV)) * mV

    spikes = SpikeMonitor(G)
    v = StateMonitor(G, "v", record=[0, 7])
    run(30 * ms)
    return np.array(trace), np.array(spikes.i[:]), np.array(spikes.t[:] / ms), v.v[:] / mV


def _calls() -> int:
    from brian2.devices.device import all_devices

    return all_devices["gpuspike"].operation_calls


def test_closed_loop_every_step_equals_brian2(on_device):
    before = _calls()
    ref, got, dev = both(on_device, closed_loop)
    assert dev.operation_calls - before == 300
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(got[1], ref[1])
    np.testing.assert_allclose(got[2], ref[2], atol=1e-9)
    np.testing.assert_allclose(got[3], ref[3], rtol=1e-12, atol=1e-12)
    assert len(got[1]) > 10


def slow_clock_with_time_and_monitor():
    """An operation on a 10x slower clock, taking t, reading a SpikeMonitor mid-run, and
    one at when='end' reading the state after the step's reset."""
    G = NeuronGroup(5, "dv/dt = (20*mV - v)/(10*ms) : volt", threshold="v > 15*mV",
                    reset="v = 0*mV", method="exact")
    G.v = np.array([0, 3, 6, 9, 12]) * mV
    spikes = SpikeMonitor(G)
    seen, after = [], []

    @network_operation(dt=1 * ms)
    def count(t):
        seen.append((float(t / ms), int(spikes.num_spikes), spikes.count[:].tolist()))

    @network_operation(when="end")
    def post_step(t):
        after.append((float(t / ms), float(G.v[2] / mV)))

    run(20 * ms)
    run(5 * ms)
    return seen, after


def test_slow_clock_time_argument_monitors_and_end_slot_equal_brian2(on_device):
    before = _calls()
    ref, got, dev = both(on_device, slow_clock_with_time_and_monitor)
    assert got[0] == ref[0] and len(got[0]) == 25
    assert [t for t, _ in got[1]] == [t for t, _ in ref[1]]
    np.testing.assert_allclose([v for _, v in got[1]], [v for _, v in ref[1]], atol=1e-9)
    assert dev.operation_calls - before == 25 + 250


def shared_readout():
    """As Nicola & Clopath's FORCE example (Brian2's examples/frompapers): every step the
    operation computes a readout ``z`` from the neurons' filtered rates and writes it into
    a shared variable that the equations read back."""
    n = 30
    G = NeuronGroup(n, """dv/dt = (-v + 1.2 + E*z)/(10*ms) : 1
                          dr/dt = -r/(20*ms) : 1
                          E : 1 (constant)
                          phi : 1 (constant)
                          z : 1 (shared)""", threshold="v > 1", reset="v = 0; r += 1",
                    method="exact")
    rng = np.random.default_rng(3)
    G.v = rng.uniform(0, 1, n)
    G.E = rng.normal(0, 2, n)
    G.phi = rng.normal(0, 0.3, n)
    zs = []

    @network_operation
    def readout():
        G.z = float(np.dot(G.phi[:], G.r[:]))
        zs.append(float(np.asarray(G.z[:]).reshape(-1)[0]))

    spikes = SpikeMonitor(G)
    run(40 * ms)
    return np.array(zs), np.array(spikes.i[:]), np.array(spikes.t[:] / ms)


def test_an_operation_writing_a_shared_variable_equals_brian2(on_device):
    ref, got, _ = both(on_device, shared_readout)
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-12, atol=1e-12)
    assert np.ptp(got[0]) > 0.1  # the readout moves, and the neurons feel it
    np.testing.assert_array_equal(got[1], ref[1])
    np.testing.assert_allclose(got[2], ref[2], atol=1e-9)


def stopping():
    """Brian2's examples/network_operation_stop.py: an operation calls stop() once a
    monitor has counted enough spikes; the run ends after that step, and a second run
    goes on from there."""
    from brian2 import Network, stop

    G = NeuronGroup(10, "dv/dt = (1.5 - v)/(10*ms) : 1", threshold="v > 1", reset="v = 0",
                    method="exact")
    G.v = np.linspace(0, 0.9, 10)
    mon = SpikeMonitor(G)
    v = StateMonitor(G, "v", record=[3])

    @network_operation(dt=1 * ms)
    def check():
        if mon.num_spikes >= 20:
            stop()

    net = Network(G, mon, v, check)
    net.run(100 * ms)
    t_stop, n_stop, v_stop = float(net.t / ms), int(mon.num_spikes), np.array(G.v[:])
    check.active = False
    net.run(5 * ms)
    return (t_stop, n_stop, v_stop, float(net.t / ms), np.array(mon.t[:] / ms),
            np.array(v.v[0]))


def test_stop_from_an_operation_ends_the_run_as_in_brian2(on_device):
    ref, got, _ = both(on_device, stopping)
    assert ref[0] < 100 and got[0] == pytest.approx(ref[0]) and got[1] == ref[1]
    np.testing.assert_allclose(got[2], ref[2], rtol=1e-12, atol=1e-12)
    assert got[3] == pytest.approx(ref[3]) == pytest.approx(ref[0] + 5)
    np.testing.assert_allclose(got[4], ref[4], atol=1e-9)
    np.testing.assert_allclose(got[5], ref[5], rtol=1e-12, atol=1e-12)


def test_changing_a_compiled_constant_mid_run_is_refused(on_device):
    def model():
        G = NeuronGroup(3, """dv/dt = -v/tau : 1
                              tau : second (constant)""", name="consts")
        G.tau = 10 * ms

        @network_operation(dt=1 * ms)
        def change():
            G.tau = 5 * ms

        run(3 * ms)

    # the engine may keep `tau` as an array (then the change is simply applied) or compile
    # it in (then it must say so, never ignore the write)
    try:
        on_device("gpuspike", model)
    except UnsupportedFeature as err:
        assert "consts.tau" in str(err)


def test_an_unsupported_slot_is_named(on_device):
    def model():
        NeuronGroup(1, "v : 1")

        @network_operation(when="thresholds")
        def op():
            pass

        run(1 * ms)

    with pytest.raises(UnsupportedFeature, match="when='thresholds'"):
        on_device("gpuspike", model)
    defaultclock.dt = 0.1 * ms
