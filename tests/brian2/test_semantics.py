"""Brian2 semantics the device once got wrong, each compared with Brian2's NumPy runtime
(float64): monitors after resets, conditional writes from synapses, refractoriness in
its several forms, the schedule order within a slot, shared and linked variables
(written, linked to subexpressions), pre/post assignments in synaptic code, several
clocks, inactive objects, summed variables (pre and post, subgroups), pathway order."""

from __future__ import annotations

import numpy as np
import pytest
from brian2 import (
    EventMonitor,
    Hz,
    NeuronGroup,
    PoissonInput,
    SpikeGeneratorGroup,
    SpikeMonitor,
    StateMonitor,
    Synapses,
    defaultclock,
    linked_var,
    ms,
    prefs,
    run,
)
from gpuspike.bridge.errors import UnsupportedFeature


def same(on_device, fn, rtol=1e-12):
    """Run ``fn`` on both devices; assert equal results; return the gpuspike device."""
    ref, _ = on_device("runtime", fn)
    got, dev = on_device("gpuspike", fn)
    assert len(ref) == len(got)
    for a, b in zip(ref, got):
        np.testing.assert_allclose(np.asarray(b, dtype=float), np.asarray(a, dtype=float),
                                   rtol=rtol, atol=1e-15)
    assert dev.runtime_step_calls == 0
    return dev


def test_spike_monitor_after_resets_and_without_record(on_device):
    def model():
        G = NeuronGroup(3, """dv/dt = rate : 1
                              rate : Hz
                              prev : integer""",
                        threshold="v > 1", reset="v = 0; prev += 1",
                        events={"ev": "v > 0.5"}, method="euler")
        G.rate = [101, 0, 1001] * Hz
        m_thr = SpikeMonitor(G, variables="prev")
        m_after = SpikeMonitor(G, variables=["prev", "v"], when="after_resets")
        m_count = SpikeMonitor(G, record=False)
        m_ev = EventMonitor(G, "ev", variables="v", record=False)
        run(10 * ms)
        return (m_thr.prev[:], m_after.prev[:], m_after.v[:], m_count.count[:],
                [m_count.num_spikes], m_ev.count[:], [m_ev.num_events], m_ev.v[:])

    same(on_device, model)


def test_conditional_write_from_synapses_and_refractory_forms(on_device):
    def model():
        src = NeuronGroup(4, "", threshold="True")
        tgt = NeuronGroup(4, """dv/dt = 0/ms : 1 (unless refractory)
                                dw/dt = 0/ms : 1
                                ref : second""",
                          threshold="i >= 2 and t < 0.35*ms", refractory="ref")
        tgt.ref = "i * 0.1*ms"
        S = Synapses(src, tgt, on_pre="v += 1\nw += 1")
        S.connect(j="i")
        cond = NeuronGroup(2, "dx/dt = 10/ms : 1 (unless refractory)", threshold="x > 1",
                           reset="x = 0", refractory="x > -1 and t < 1*ms")
        mon = StateMonitor(tgt, ["v", "w"], record=True, when="end")
        mon_c = StateMonitor(cond, "x", record=True)
        run(2 * ms)
        return mon.v[:], mon.w[:], mon_c.x[:]

    same(on_device, model)


def test_legacy_refractory_timing(on_device):
    def model():
        prefs.legacy.refractory_timing = True
        try:
            G = NeuronGroup(1, "", threshold="True", refractory=10 * defaultclock.dt)
            mon = SpikeMonitor(G)
            run(300 * defaultclock.dt)
        finally:
            prefs.legacy.refractory_timing = False
        return (mon.t[:],)

    same(on_device, model)


def test_schedule_order_within_a_slot_and_reserved_names(on_device):
    """A StateMonitor named before a run_regularly records first (Brian2 breaks ties by
    name); a variable called ``A`` does not clash with the engine's own names."""
    def model():
        G = NeuronGroup(4, "dA/dt = -A/(1*ms) : 1\nx : 1\nnp : 1", threshold="A > 0.9",
                        reset="A = 0; np += 1", method="exact")
        G.A = "0.3 * i"
        S = Synapses(G, G, "w : 1", on_pre="A_post += 0.5")
        S.connect(j="(i + 1) % 4")
        S.run_regularly("w += 1")
        G.run_regularly("x += A + np", name="zz_after_monitor")
        ms_ = StateMonitor(S, "w", record=[0, 1])
        mg = StateMonitor(G, ["A", "x"], record=True)
        run(1 * ms)
        return ms_.w[:], mg.A[:], mg.x[:]

    same(on_device, model)


def test_shared_variables_written_during_the_run(on_device):
    def model():
        G = NeuronGroup(3, """x : 1
                              s : 1 (shared)
                              k : integer (shared)""")
        G.run_regularly("s = s + 0.5\nk = k + 1\nx = s * i + k")
        run(1 * ms)
        return [G.s[:]], [G.k[:]], G.x[:]

    same(on_device, model)


def test_linked_variables_read_and_recorded(on_device):
    def model():
        G1 = NeuronGroup(2, "dv/dt = 100*Hz : 1", threshold="v > 1", reset="v = 0",
                         method="euler")
        G1.v = [0, 0.5]
        G2 = NeuronGroup(6, """x : 1 (linked)
                               dy/dt = (x - y)/(2*ms) : 1
                               I = 2*x : 1""", method="exact")
        G2.x = linked_var(G1.v, index=np.array([0, 1]).repeat(3))
        G3 = NeuronGroup(2, "z : 1 (linked)")
        G3.z = linked_var(G1, "v")
        mon = StateMonitor(G2, ["x", "y", "I"], record=True)
        mon3 = StateMonitor(G3, "z", record=True)
        run(5 * ms)
        return mon.x[:], mon.y[:], mon.I[:], mon3.z[:]

    same(on_device, model)


def test_uniform_post_assignment_from_synapses(on_device):
    def model():
        src = NeuronGroup(5, "v : 1", threshold="v > 1")
        tgt = NeuronGroup(5, "x : 1\ny : 1")
        S = Synapses(src, tgt, "w : 1", on_pre="v_pre += w\nx_post = y_post")
        S.connect()
        S.w = 1
        src.v["i < 3"] = 2
        tgt.y = "i"
        run(0.3 * ms)
        return src.v[:], tgt.x[:]

    same(on_device, model)


def test_order_dependent_post_assignment_is_refused(on_device):
    def model():
        src = NeuronGroup(2, "", threshold="True")
        tgt = NeuronGroup(2, "x : 1\ny : 1")
        S = Synapses(src, tgt, on_pre="y_post += 1\nx_post = y_post")
        S.connect()
        run(0.2 * ms)

    with pytest.raises(UnsupportedFeature, match="order of the synapses"):
        on_device("gpuspike", model)


def test_objects_on_slower_clocks(on_device):
    def model():
        inp = SpikeGeneratorGroup(2, [0, 1, 0], [0, 1, 2.2] * ms, dt=0.5 * ms)
        slow = NeuronGroup(2, "dv/dt = (1 - v)/(3*ms) : 1", threshold="v > 0.8",
                           reset="v = 0", refractory=0.7 * ms, dt=0.2 * ms, method="exact")
        fast = NeuronGroup(2, "u : 1")
        S = Synapses(inp, fast, on_pre="u += 1", delay=0.5 * ms)
        S.connect(j="i")
        mon = StateMonitor(fast, "u", record=True, when="end")
        mon_slow = StateMonitor(slow, "v", record=[1], dt=0.4 * ms)
        sm = SpikeMonitor(slow)
        run(6 * ms)
        return mon.u[:], mon_slow.v[:], mon_slow.t[:], sm.t[:], sm.i[:]

    same(on_device, model)


def test_inactive_group_emits_nothing_and_poisson_input_runs(on_device):
    def model():
        G = NeuronGroup(1, "", threshold="True", reset="")
        mon = SpikeMonitor(G)
        H = NeuronGroup(50, "v : 1")
        PoissonInput(H, "v", 100, 50 * Hz, weight=1)
        run(defaultclock.dt)
        G.active = False
        run(20 * ms)
        return mon.t[:], [np.mean(H.v[:]) > 0]

    same(on_device, model)


def test_summed_variables_of_one_name_into_pre_and_post(on_device):
    def model():
        G = NeuronGroup(2, "tot : 1")
        H = NeuronGroup(3, "tot : 1")
        S = Synapses(G, H, """w : 1
                              tot_pre = w : 1 (summed)
                              tot_post = 2*w : 1 (summed)""")
        S.connect()
        S.w = "i + 10*j"
        run(0.1 * ms)
        return G.tot[:], H.tot[:]

    same(on_device, model)


def test_summed_variables_into_subgroups_that_cover_the_group(on_device):
    """The subgroup that starts at 0 is summed last in Brian2's order (its Synapses'
    name sorts last): the device runs it first (engine issue, see .synaptic)."""
    def model():
        source = NeuronGroup(2, "")
        target = NeuronGroup(10, "v : 1\nu : 1")
        target.u = 7
        zz = Synapses(source, target[:6], "v_post = 1 : 1 (summed)", name="zz")
        zz.connect(n=2)
        aa = Synapses(source, target[6:], "v_post = i + 2 : 1 (summed)", name="aa")
        aa.connect()
        bb = Synapses(source, target[3:7], "u_post = 1 : 1 (summed)", name="bb")
        bb.connect()
        run(0.2 * ms)
        return target.v[:], target.u[:]

    same(on_device, model)


def test_summed_variable_into_a_subgroup_at_0_alone_is_refused(on_device):
    def model():
        source = NeuronGroup(1, "")
        target = NeuronGroup(5, "v : 1")
        target.v = 3
        S = Synapses(source, target[:2], "v_post = 1 : 1 (summed)")
        S.connect()
        run(0.1 * ms)

    with pytest.raises(UnsupportedFeature, match="starts at element 0"):
        on_device("gpuspike", model)


@pytest.mark.parametrize("size", [1, 3])
def test_linked_variables_written_in_reset(on_device, size):
    def model():
        G1 = NeuronGroup(size, "x : 1")
        G2 = NeuronGroup(size, """x_linked : 1 (linked)
                                 y : 1""", threshold="y > 1", reset="y = 0; x_linked += 1")
        G2.x_linked = linked_var(G1, "x")
        G2.y = "1.1 * (i + 1) % 2.2"
        run(0.3 * ms)
        return G1.x[:], G2.y[:]

    same(on_device, model)


def test_linked_subexpressions_with_and_without_index(on_device):
    def model():
        # explicit names: Brian2 orders objects of one slot by name, and automatic names
        # (neurongroup_9, neurongroup_10, ...) would sort differently in the two runs
        G = NeuronGroup(2, """dv/dt = 100*Hz : 1
                              I = clip(v, 0, inf) + k : 1
                              k : 1 (constant)""", threshold="v > 1", reset="v = 0",
                        method="euler", name="g_source")
        G.v = [0, 0.5]
        G.k = [1, 2]
        H = NeuronGroup(2, "I_l : 1 (linked)", name="h_linked")
        H.I_l = linked_var(G.I)
        K = NeuronGroup(6, """I_l : 1 (linked)
                              dy/dt = I_l/ms : 1""", method="euler", name="k_linked")
        K.I_l = linked_var(G.I, index=np.array([0, 1]).repeat(3))
        mon_h = StateMonitor(H, "I_l", record=True)
        mon_k = StateMonitor(K, ["I_l", "y"], record=True)
        run(3 * ms)
        return mon_h.I_l[:], mon_k.I_l[:], mon_k.y[:]

    same(on_device, model)


def test_pathway_order_pre_and_post_of_one_synapses_apart(on_device):
    """Brian2 runs pre pathways at order -1 and post pathways at +1 (ties broken by
    name): the pre pathway of another Synapses runs between S1's two."""
    def model():
        G = NeuronGroup(1, "", threshold="True")
        H = NeuronGroup(1, "a : 1\nb : 1", threshold="True")
        S1 = Synapses(G, H, on_pre="a_post += 1", on_post="a_post += 10")
        S1.connect()
        S2 = Synapses(G, H, on_pre="b_post = a_post", name="zz")
        S2.connect()
        mon = StateMonitor(H, ["a", "b"], record=True, when="end")
        run(0.4 * ms)
        return mon.a[:], mon.b[:]

    same(on_device, model)
