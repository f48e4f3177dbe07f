"""The Brian2 device: parity with Brian2's NumPy runtime (float64) and proof that the
engine, not Brian2, runs the time steps."""

from __future__ import annotations

import numpy as np
import pytest
from brian2 import (
    Network,
    NeuronGroup,
    PopulationRateMonitor,
    SpikeGeneratorGroup,
    SpikeMonitor,
    StateMonitor,
    Synapses,
    cm,
    ms,
    msiemens,
    mV,
    run,
    uF,
    umetre,
)
from brian2.codegen.codeobject import CodeObject
from gpuspike.brian2_backend.objects import PER_STEP_TEMPLATES
from gpuspike.bridge.errors import UnsupportedFeature


def both(on_device, fn):
    """(runtime result, gpuspike result, gpuspike device)."""
    ref, _ = on_device("runtime", fn)
    got, dev = on_device("gpuspike", fn)
    return ref, got, dev


# ----------------------------------------------------------------------------- parity
def lif_fi():
    n = 50
    G = NeuronGroup(n, """dv/dt = (v0 - v)/(10*ms) : volt (unless refractory)
                          v0 : volt""", threshold="v > 10*mV", reset="v = 0*mV",
                    refractory=5 * ms, method="exact")
    G.v0 = np.linspace(0, 20, n) * mV
    mon = SpikeMonitor(G)
    run(300 * ms)
    return np.array(mon.count[:])


def test_lif_fi_curve_identical(on_device):
    ref, got, dev = both(on_device, lif_fi)
    np.testing.assert_array_equal(got, ref)
    assert ref.sum() > 100
    assert dev.runtime_step_calls == 0 and dev.last_run["steps"] == 3000


def hh_fi():
    # Brian2's examples/frompapers... HH f-I curve (Hodgkin-Huxley, Traub & Miles rates)
    num_neurons = 40
    area = 20000 * umetre**2
    Cm = 1 * uF * cm**-2 * area
    gl = 5e-5 * msiemens * cm**-2 * area
    El, EK, ENa = -65 * mV, -90 * mV, 50 * mV
    g_na = 100 * msiemens * cm**-2 * area
    g_kd = 30 * msiemens * cm**-2 * area
    VT = -63 * mV
    eqs = """
    dv/dt = (gl*(El-v) - g_na*(m*m*m)*h*(v-ENa) - g_kd*(n*n*n*n)*(v-EK) + I)/Cm : volt
    dm/dt = 0.32*(mV**-1)*4*mV/exprel((13.*mV-v+VT)/(4*mV))/ms*(1-m)
            -0.28*(mV**-1)*5*mV/exprel((v-VT-40.*mV)/(5*mV))/ms*m : 1
    dn/dt = 0.032*(mV**-1)*5*mV/exprel((15.*mV-v+VT)/(5*mV))/ms*(1.-n)
            -.5*exp((10.*mV-v+VT)/(40.*mV))/ms*n : 1
    dh/dt = 0.128*exp((17.*mV-v+VT)/(18.*mV))/ms*(1.-h)-4./(1+exp((40.*mV-v+VT)/(5.*mV)))/ms*h : 1
    I : amp
    """
    group = NeuronGroup(num_neurons, eqs, threshold="v > -40*mV", refractory="v > -40*mV",
                        method="exponential_euler",
                        namespace=dict(area=area, Cm=Cm, gl=gl, El=El, EK=EK, ENa=ENa,
                                       g_na=g_na, g_kd=g_kd, VT=VT))
    group.v = El
    group.I = "0.7*nA * i / num_neurons"
    group.namespace["num_neurons"] = num_neurons
    mon = SpikeMonitor(group)
    run(200 * ms)
    return np.array(mon.count[:])


def test_hh_fi_curve_within_one_percent(on_device):
    ref, got, dev = both(on_device, hh_fi)
    assert ref.sum() > 50
    assert abs(int(got.sum()) - int(ref.sum())) <= 0.01 * ref.sum()
    assert np.abs(got - ref).max() <= 1
    assert dev.runtime_step_calls == 0


def gap_junctions():
    n = 10
    neuron_eqs = """dv/dt = v0/tau + Igap/tau - v/tau : 1
                    v0 : 1
                    Igap : 1"""
    neurons = NeuronGroup(n, neuron_eqs, threshold="v > 1", reset="v = 0", method="exact",
                          namespace={"tau": 10 * ms})
    neurons.v = "i * 1.0 / (n - 1)"
    neurons.namespace["n"] = n
    neurons.v0 = np.linspace(1.01, 3, n)
    S = Synapses(neurons, neurons, """w : 1
                 Igap_post = w * (v_pre - v_post) : 1 (summed)""")
    S.connect()
    S.w = 0.02
    trace = StateMonitor(neurons, ["v", "Igap"], record=[0, 5])
    spikes = SpikeMonitor(neurons)
    run(200 * ms)
    return np.array(spikes.count[:]), np.array(trace.Igap[:]), np.array(trace.v[:])


def test_gap_junctions_summed_variable(on_device):
    (c0, ig0, v0), (c1, ig1, v1), dev = both(on_device, gap_junctions)
    np.testing.assert_array_equal(c1, c0)
    np.testing.assert_allclose(ig1, ig0, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(v1, v0, rtol=1e-9, atol=1e-12)
    assert dev.runtime_step_calls == 0


def stdp():
    inp = SpikeGeneratorGroup(5, np.arange(5).repeat(4),
                              np.tile([3, 11, 24, 40], 5) * ms + np.arange(20) * 0.3 * ms)
    post = NeuronGroup(2, "dv/dt = -v/(10*ms) : 1", threshold="v > 0.5", reset="v = 0",
                       method="exact")
    S = Synapses(inp, post, """w : 1
                 dapre/dt = -apre/(20*ms) : 1 (event-driven)
                 dapost/dt = -apost/(20*ms) : 1 (event-driven)""",
                 on_pre="""v_post += w
                           apre += 0.01
                           w = clip(w + apost, 0, 1)""",
                 on_post="""apost -= 0.012
                            w = clip(w + apre, 0, 1)""")
    S.connect()
    S.w = "0.2 + 0.05*i"
    sm = SpikeMonitor(post)
    run(60 * ms)
    return np.array(S.w[:]), np.array(sm.t[:] / ms), np.array(sm.i[:])


def test_stdp_on_pre_on_post(on_device):
    (w0, t0, i0), (w1, t1, i1), dev = both(on_device, stdp)
    np.testing.assert_allclose(w1, w0, rtol=1e-12)
    np.testing.assert_allclose(t1, t0)
    np.testing.assert_array_equal(i1, i0)
    assert not np.allclose(w0, np.repeat(0.2 + 0.05 * np.arange(5), 2))  # learning happened


@pytest.mark.parametrize("heterogeneous", [False, True])
def test_delays(on_device, heterogeneous):
    def model():
        inp = SpikeGeneratorGroup(2, [0, 1, 0], [1, 2, 7] * ms)
        post = NeuronGroup(4, "v : 1", threshold="False")
        S = Synapses(inp, post, "w : 1", on_pre="v_post += w",
                     delay=None if heterogeneous else 2 * ms)
        S.connect()
        S.w = "1 + i + 10*j"
        if heterogeneous:
            S.delay = "(i + 2*j) * 0.7*ms"
        mon = StateMonitor(post, "v", record=True)
        run(15 * ms)
        return np.array(mon.v[:])

    ref, got, dev = both(on_device, model)
    np.testing.assert_array_equal(got, ref)
    assert dev.runtime_step_calls == 0


def test_monitors_variables_when_and_rates(on_device):
    def model():
        G = NeuronGroup(20, "dv/dt = (1.5 + 0.05*i - v)/(10*ms) : 1", threshold="v > 1",
                        reset="v = 0", method="exact")
        sm = SpikeMonitor(G, variables=["v"])
        st_start = StateMonitor(G, "v", record=[0, 3])
        st_end = StateMonitor(G, "v", record=[0, 3], when="end")
        st_slow = StateMonitor(G[5:10], "v", record=[1], dt=0.5 * ms)
        rm = PopulationRateMonitor(G)
        rm_sub = PopulationRateMonitor(G[:10])
        run(40 * ms)
        return (np.array(sm.i[:]), np.array(sm.t[:]), np.array(sm.v[:]),
                np.array(st_start.v[:]), np.array(st_end.v[:]), np.array(st_slow.v[:]),
                np.array(st_slow.t[:]), np.array(rm.rate[:]), np.array(rm_sub.rate[:]))

    ref, got, dev = both(on_device, model)
    for a, b in zip(ref, got):
        np.testing.assert_allclose(b, a, rtol=1e-12)
    assert dev.runtime_step_calls == 0


def test_objects_added_between_runs_and_set_between_runs(on_device):
    def model():
        G = NeuronGroup(5, "dv/dt = (2 - v)/(10*ms) : 1", threshold="v > 1", reset="v = 0",
                        method="exact")
        m1 = SpikeMonitor(G)
        net = Network(G, m1)
        net.run(20 * ms)
        G.v = "0.1 * i"  # set between runs
        H = NeuronGroup(5, "dx/dt = -x/(5*ms) : 1", method="exact")
        S = Synapses(G, H, on_pre="x_post += 1")
        S.connect(j="i")
        m2 = StateMonitor(H, "x", record=True)
        net.add(H, S, m2)
        net.run(20 * ms)
        return np.array(m1.t[:]), np.array(m1.i[:]), np.array(m2.x[:]), float(net.t / ms)

    ref, got, dev = both(on_device, model)
    for a, b in zip(ref, got):
        np.testing.assert_allclose(b, a, rtol=1e-12)
    assert dev.builds >= 2 and dev.last_run["rebuilt"]


def test_store_restore(on_device):
    def model():
        G = NeuronGroup(3, "dv/dt = (1.5 - v)/(10*ms) : 1", threshold="v > 1",
                        reset="v = 0", method="exact")
        inp = SpikeGeneratorGroup(1, [0], [2] * ms)
        S = Synapses(inp, G, on_pre="v_post += 0.3", delay=4 * ms)
        S.connect()
        mon = SpikeMonitor(G)
        net = Network(G, inp, S, mon)
        net.run(3 * ms)  # the input spike is in flight
        net.store()
        net.run(20 * ms)
        first = (np.array(mon.t[:]), np.array(G.v[:]))
        net.restore()
        net.run(20 * ms)
        return first, (np.array(mon.t[:]), np.array(G.v[:]))

    (ref_a, ref_b), (got_a, got_b), dev = both(on_device, model)
    for a, b in zip((*ref_a, *ref_b), (*got_a, *got_b)):
        np.testing.assert_allclose(b, a, rtol=1e-12)
    np.testing.assert_allclose(got_a[1], got_b[1], rtol=1e-12)  # same after restore


def test_unsupported_feature_names_the_object(on_device):
    from brian2 import linked_var

    def model():
        G1 = NeuronGroup(3, "x : 1")
        G2 = NeuronGroup(3, "x_linked : 1 (linked)\ny : 1", threshold="y > 1",
                         reset="x_linked += 1", name="writes_linked")
        G2.x_linked = linked_var(G1, "x", index=np.array([2, 1, 0]))  # written: refused
        run(1 * ms)

    with pytest.raises(NotImplementedError, match="writes_linked.*linked variable") as err:
        on_device("gpuspike", model)
    assert isinstance(err.value, UnsupportedFeature)


def test_no_runtime_code_object_runs_a_time_step(on_device, monkeypatch):
    """Count every Brian2 code object call during the runs: only set-up templates run."""
    calls: list[str] = []
    original = CodeObject.__call__

    def spy(self, **kwds):
        calls.append(self.template_name)
        return original(self, **kwds)

    monkeypatch.setattr(CodeObject, "__call__", spy)

    def model():
        G = NeuronGroup(10, "dv/dt = (1.2 - v)/(10*ms) : 1 (unless refractory)",
                        threshold="v > 1", reset="v = 0", refractory=1 * ms, method="exact")
        S = Synapses(G, G, "w : 1", on_pre="v_post += w", delay=1 * ms)
        S.connect(p=0.5)
        S.w = 0.01
        M = StateMonitor(G, "v", record=[0])
        sm = SpikeMonitor(G)
        run(10 * ms)
        run(10 * ms)
        return len(sm.i), len(M.t)

    (n_ref, _), _ = on_device("runtime", model)
    per_step_runtime = [c for c in calls if c in PER_STEP_TEMPLATES]
    assert len(per_step_runtime) >= 200  # the spy sees the runtime's steps
    calls.clear()
    (n_got, n_t), dev = on_device("gpuspike", model)
    assert n_got == n_ref and n_t == 200
    assert [c for c in calls if c in PER_STEP_TEMPLATES] == []
    assert dev.runtime_step_calls == 0
    assert dev.last_run["steps"] == 100 and dev.last_run["kernels_per_step"] > 0
