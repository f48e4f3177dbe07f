"""SpatialNeuron (multi-compartment cable models) on the device: parity with Brian2's
NumPy runtime in float64, and proof that the engine ran every time step."""

from __future__ import annotations

import numpy as np
from brian2 import (
    Cylinder,
    Network,
    Section,
    Soma,
    SpatialNeuron,
    SpikeMonitor,
    StateMonitor,
    cm,
    defaultclock,
    ms,
    msiemens,
    mV,
    nA,
    ohm,
    uF,
    um,
)
from brian2.codegen.codeobject import CodeObject
from gpuspike.brian2_backend.objects import PER_STEP_TEMPLATES


def both(on_device, fn):
    """(runtime result, gpuspike result, gpuspike device)."""
    ref, _ = on_device("runtime", fn)
    got, dev = on_device("gpuspike", fn)
    return ref, got, dev


def branched_morphology():
    """A soma, an axon with a tapered branch and a second branch, a dendrite: sections of
    1 to 20 compartments, a node with three children."""
    morpho = Soma(diameter=20 * um)
    morpho.axon = Cylinder(diameter=1 * um, length=200 * um, n=20)
    morpho.axon.a = Section(diameter=[1, 0.8, 0.6, 0.5] * um, length=[10, 10, 10] * um, n=3)
    morpho.axon.b = Cylinder(diameter=0.7 * um, length=50 * um, n=5)
    morpho.axon.c = Cylinder(diameter=0.5 * um, length=5 * um, n=1)
    morpho.dend = Cylinder(diameter=2 * um, length=100 * um, n=8)
    return morpho


def passive_branched():
    defaultclock.dt = 0.01 * ms
    eqs = """Im = gL*(EL - v) : amp/meter**2
             I : amp (point current)
             gL : siemens/meter**2"""
    neuron = SpatialNeuron(branched_morphology(), eqs, Cm=1 * uF / cm**2, Ri=150 * ohm * cm,
                           namespace={"EL": -70 * mV})
    neuron.v = "-70*mV + 10*mV*sin(i)"
    neuron.gL = "(1 + 0.1*i) * 1e-4*siemens/cm**2"
    neuron.I[0] = 0.2 * nA
    mon = StateMonitor(neuron, ["v", "Ic"], record=True)
    net = Network(neuron, mon)
    net.run(2 * ms)
    neuron.I = 0 * nA
    neuron.I[30] = -0.05 * nA  # at the axon's tapered branch
    neuron.Cm[10:20] = 2 * uF / cm**2  # read every step: takes effect without a rebuild
    net.run(2 * ms)
    return mon.v_[:].copy(), mon.Ic_[:].copy(), neuron.v_[:].copy()


def test_passive_branched_cable_equals_runtime(on_device):
    ref, got, dev = both(on_device, passive_branched)
    v_ref, ic_ref, end_ref = ref
    v_got, ic_got, end_got = got
    assert v_ref.shape == v_got.shape == (38, 400)
    np.testing.assert_allclose(v_got, v_ref, rtol=0, atol=1e-13)  # V, |v| ~ 0.07
    np.testing.assert_allclose(end_got, end_ref, rtol=0, atol=1e-13)
    scale = np.abs(ic_ref).max()
    np.testing.assert_allclose(ic_got, ic_ref, rtol=0, atol=1e-8 * scale)
    assert np.ptp(v_ref[:, -1]) > 1e-3  # the cable did something
    assert dev.runtime_step_calls == 0
    assert dev.last_run["rebuilt"] is False  # Cm and I changed: state, not model


def ball_and_stick():
    defaultclock.dt = 0.025 * ms
    morpho = Soma(diameter=25 * um)
    morpho.dend = Cylinder(diameter=2 * um, length=400 * um, n=40)
    eqs = """
    Im = gl*(El - v) + gNa*m**3*h*(ENa - v) + gK*n**4*(EK - v) : amp/meter**2
    I : amp (point current)
    dm/dt = alpham*(1 - m) - betam*m : 1
    dn/dt = alphan*(1 - n) - betan*n : 1
    dh/dt = alphah*(1 - h) - betah*h : 1
    alpham = (0.1/mV) * (-v + 25*mV + El)/(exp((-v + 25*mV + El)/(10*mV)) - 1)/ms : Hz
    betam = 4 * exp((El - v)/(18*mV))/ms : Hz
    alphah = 0.07 * exp((El - v)/(20*mV))/ms : Hz
    betah = 1/(exp((-v + 30*mV + El)/(10*mV)) + 1)/ms : Hz
    alphan = (0.01/mV) * (-v + 10*mV + El)/(exp((-v + 10*mV + El)/(10*mV)) - 1)/ms : Hz
    betan = 0.125*exp((El - v)/(80*mV))/ms : Hz
    gNa : siemens/meter**2
    gK : siemens/meter**2
    """
    neuron = SpatialNeuron(morpho, eqs, method="exponential_euler", Cm=1 * uF / cm**2,
                           Ri=100 * ohm * cm, threshold="v > -20*mV",
                           refractory="v > -20*mV", threshold_location=0,
                           namespace={"gl": 0.3 * msiemens / cm**2, "El": -65 * mV,
                                      "ENa": 50 * mV, "EK": -77 * mV})
    neuron.v = -65 * mV
    neuron.m, neuron.n, neuron.h = 0.0529, 0.3177, 0.5961
    neuron.gNa[0] = 120 * msiemens / cm**2  # active soma, passive dendrite
    neuron.gK[0] = 36 * msiemens / cm**2
    neuron.I[0] = 0.4 * nA
    spikes = SpikeMonitor(neuron)
    mon = StateMonitor(neuron, ["v", "Im", "Ic"], record=[0, 20, 40], dt=0.1 * ms)
    net = Network(neuron, spikes, mon)
    net.run(40 * ms)
    return np.array(spikes.t_), np.array(spikes.i), mon.v_[:].copy(), mon.Im_[:].copy()


def test_ball_and_stick_hh_spike_times_equal_runtime(on_device):
    (t_ref, i_ref, v_ref, im_ref), (t_got, i_got, v_got, im_got), dev = both(
        on_device, ball_and_stick)
    assert len(t_ref) >= 3 and set(i_ref) == {0}
    np.testing.assert_array_equal(i_got, i_ref)
    np.testing.assert_array_equal(t_got, t_ref)
    np.testing.assert_allclose(v_got, v_ref, rtol=0, atol=1e-9)  # V
    np.testing.assert_allclose(im_got, im_ref, rtol=0, atol=1e-6 * np.abs(im_ref).max())
    assert dev.runtime_step_calls == 0


def test_no_runtime_code_object_runs_a_time_step(on_device, monkeypatch):
    """Every Brian2 code object call during a SpatialNeuron run is set-up, and the
    engine runs the cable as kernels of its own."""
    calls: list[str] = []
    original = CodeObject.__call__

    def spy(self, **kwds):
        calls.append(self.template_name)
        return original(self, **kwds)

    monkeypatch.setattr(CodeObject, "__call__", spy)

    def model():
        defaultclock.dt = 0.05 * ms
        eqs = """Im = 1e-4*siemens/cm**2*(-70*mV - v) : amp/meter**2
                 I : amp (point current)"""
        neuron = SpatialNeuron(branched_morphology(), eqs)
        neuron.I[0] = 0.1 * nA
        mon = StateMonitor(neuron, "v", record=[0, 37])
        net = Network(neuron, mon)
        net.run(1 * ms)
        return mon.v_[:].copy()

    ref, _ = on_device("runtime", model)
    assert calls.count("spatialstateupdate") == 20  # the spy sees the runtime's steps
    assert "spatialstateupdate" in PER_STEP_TEMPLATES
    calls.clear()
    got, dev = on_device("gpuspike", model)
    assert [c for c in calls if c in PER_STEP_TEMPLATES] == []
    assert dev.runtime_step_calls == 0 and dev.last_run["steps"] == 20
    kernels = [k.name for k in dev._cache[next(iter(dev._cache))].sim.plan.step_kernels]
    assert [k.split("_spatialstateupdater_")[-1] for k in kernels
            if "spatialstateupdater" in k] == ["currents", "sections", "tree", "voltage"]
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-13)

