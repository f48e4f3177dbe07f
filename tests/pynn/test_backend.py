"""pyNN.gpuspike against NEST (same dt, NEST's on-grid exact models) and its own contract.

Deterministic cells must give NEST's spike times and ``v`` within 0.05 mV; a small random
network's rate must lie within NEST's own seed-to-seed spread.
"""

from __future__ import annotations

import importlib

import numpy as np
import pyNN.gpuspike as gs
import pytest
from pyNN.parameters import Sequence


def _nest():
    try:
        return importlib.import_module("pyNN.nest")
    except Exception:  # pragma: no cover - NEST is in the test extra
        pytest.skip("pyNN.nest not available")


def _drive(sim, celltype: str, **setup):
    """Three cells with offsets, a DC pulse, a step current, an AC current, and spike-array
    input through excitatory (delay 1 ms) and inhibitory (delay 2 ms) synapses."""
    sim.setup(timestep=0.1, min_delay=0.1, **setup)
    p = sim.Population(3, getattr(sim, celltype)(i_offset=[0.0, 0.6, 1.2], tau_refrac=2.0))
    src = sim.Population(1, sim.SpikeSourceArray(spike_times=[5.0, 12.3, 20.0, 20.1, 50.0]))
    sim.DCSource(amplitude=0.3, start=30.0, stop=60.0).inject_into(p[0:2])
    sim.StepCurrentSource(times=[65.0, 70.0], amplitudes=[0.8, -0.2]).inject_into(p)
    sim.ACSource(amplitude=0.4, offset=0.1, frequency=70.0, phase=30.0, start=40.0,
                 stop=80.0).inject_into(p[1:3])  # phase 30 degrees at start, as in NEST
    cond = "cond" in celltype
    sim.Projection(src, p, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.5, delay=1.0),
                   receptor_type="excitatory")
    sim.Projection(src, p[2:3], sim.AllToAllConnector(),
                   sim.StaticSynapse(weight=0.5 if cond else -0.5, delay=2.0),
                   receptor_type="inhibitory")
    p.record(["spikes", "v"])
    sim.run(100.0)
    seg = p.get_data().segments[0]
    sim.end()
    v = next(a for a in seg.analogsignals if a.name == "v")
    return [np.asarray(s) for s in seg.spiketrains], np.asarray(v)


@pytest.mark.parametrize("celltype,tol", [("IF_curr_exp", 1e-9), ("IF_curr_alpha", 1e-9),
                                          ("IF_cond_exp", 0.05), ("IF_cond_alpha", 0.05)])
def test_deterministic_cells_match_nest(celltype, tol):
    nest = _nest()
    ref_spikes, ref_v = _drive(nest, celltype, spike_precision="on_grid")
    spikes, v = _drive(gs, celltype)
    for a, b in zip(ref_spikes, spikes):
        np.testing.assert_allclose(b, a, atol=1e-9)
    assert v.shape == ref_v.shape
    assert np.abs(v - ref_v).max() < tol


def _balanced(sim, seed: int, **setup) -> float:
    sim.setup(timestep=0.1, min_delay=0.5, **setup)
    rng = sim.NumpyRNG(seed=seed)
    cell = sim.IF_curr_exp(tau_m=20.0, v_thresh=-50.0, v_reset=-60.0, tau_refrac=2.0,
                           i_offset=0.8)
    exc = sim.Population(160, cell)
    inh = sim.Population(40, cell)
    exc.initialize(v=sim.RandomDistribution("uniform", (-60.0, -50.0), rng=rng))
    inh.initialize(v=sim.RandomDistribution("uniform", (-60.0, -50.0), rng=rng))
    conn = sim.FixedProbabilityConnector(0.1, rng=rng)
    for pre, w, rec in ((exc, 0.12, "excitatory"), (inh, -0.6, "inhibitory")):
        for post in (exc, inh):
            sim.Projection(pre, post, conn, sim.StaticSynapse(weight=w, delay=1.5),
                           receptor_type=rec)
    exc.record("spikes")
    sim.run(500.0)
    n = sum(len(s) for s in exc.get_data().segments[0].spiketrains)
    sim.end()
    return n / 160 / 0.5


def test_balanced_network_rate_within_nest_spread():
    nest = _nest()
    ref = np.array([_balanced(nest, s, spike_precision="on_grid") for s in (1, 2, 3)])
    ours = _balanced(gs, 1)
    spread = max(ref.std(), 0.05 * ref.mean())
    assert abs(ours - ref.mean()) <= 3 * spread, (ours, ref)


def test_units_are_si_in_the_engine():
    gs.setup(timestep=0.1)
    p = gs.Population(2, gs.IF_cond_exp(tau_m=15.0, cm=0.5, v_thresh=-52.0, i_offset=0.2))
    gs.run(0.1)
    eng = gs.simulator.state.engine
    assert eng.get(p.group_name, "tau_m")[0] == pytest.approx(15e-3)
    assert eng.get(p.group_name, "cm")[0] == pytest.approx(0.5e-9)
    assert eng.get(p.group_name, "v_thresh")[0] == pytest.approx(-52e-3)
    assert eng.get(p.group_name, "i_offset")[0] == pytest.approx(0.2e-9)
    assert p.get("tau_m") == 15.0  # PyNN units, exactly as set


def test_neo_output_structure_and_sampling_interval():
    gs.setup(timestep=0.1)
    p = gs.Population(4, gs.IF_cond_exp(i_offset=1.0))
    p.record("spikes")
    p.record(["v", "gsyn_exc"], sampling_interval=1.0)
    gs.run(50.0)
    block = p.get_data()
    seg = block.segments[0]
    assert len(seg.spiketrains) == 4 and all(len(s) > 0 for s in seg.spiketrains)
    v = next(a for a in seg.analogsignals if a.name == "v")
    assert v.shape == (51, 4) and str(v.units.dimensionality) == "mV"
    assert float(v.sampling_period.rescale("ms")) == 1.0
    g = next(a for a in seg.analogsignals if a.name == "gsyn_exc")
    assert str(g.units.dimensionality) == "uS"


def test_reset_repeats_the_run():
    gs.setup(timestep=0.1)
    p = gs.Population(1, gs.IF_curr_exp(i_offset=1.0))
    p.record(["v", "spikes"])
    gs.run(30.0)
    gs.reset()
    gs.run(30.0)
    segs = p.get_data().segments
    assert len(segs) == 2
    np.testing.assert_array_equal(np.asarray(segs[0].analogsignals[0]),
                                  np.asarray(segs[1].analogsignals[0]))
    np.testing.assert_array_equal(segs[0].spiketrains[0], segs[1].spiketrains[0])


def _split_runs(sim, t1: float, t2: float, clear: bool, **setup):
    """Spike trains of two spike arrays (spikes at the end of the first run, t1), of a
    DC-driven cell whose first spike is at t1 and of a cell they drive, read after each of
    two runs."""
    sim.setup(timestep=0.1, min_delay=0.1, **setup)
    src = sim.Population(2, sim.SpikeSourceArray(spike_times=[[5.0, t1, t1 + 2.0],
                                                              [t1 - 0.1, t1]]))
    cell = sim.Population(2, sim.IF_curr_exp(i_offset=[1.0, 0.0]))
    sim.Projection(src, cell[1:2], sim.AllToAllConnector(),
                   sim.StaticSynapse(weight=3.0, delay=1.0))
    src.record("spikes")
    cell.record("spikes")
    out = []
    for t in (t1, t2):
        sim.run(t)
        out.append([[np.asarray(s).tolist() for s in p.get_data(clear=clear).segments[0]
                     .spiketrains] for p in (src, cell)])
    sim.end()
    return out


def test_spike_at_the_end_of_a_run_belongs_to_that_run():
    """A spike at exactly the end of a run is in that run's data, as with NEST: a spike
    array's spike at t_stop (gpuspike emits it in the next run's first step, where NEST's
    spike_generator emits it, in the step that ends at t_stop) and a cell's threshold
    crossing in the last step; the engine's copy is not reported again."""
    nest = _nest()
    t1 = 27.8  # the first spike of IF_curr_exp with i_offset = 1 nA
    ours = _split_runs(gs, t1, 5.0, clear=True)
    ref = _split_runs(nest, t1, 5.0, clear=True, spike_precision="on_grid")
    assert ours == ref
    assert t1 in ours[0][0][0] and t1 in ours[0][0][1] and ours[0][1][0] == [t1]
    assert ours[1][1][1]  # the driven cell fires in the second run
    whole = _split_runs(gs, t1, 5.0, clear=False)[1]  # no duplicates in the whole run
    assert whole == [[[5.0, t1, t1 + 2.0], [t1 - 0.1, t1]], whole[1]]
    gs.setup(timestep=0.1)  # after reset() the spike is recorded again
    src = gs.Population(1, gs.SpikeSourceArray(spike_times=[2.0]))
    src.record("spikes")
    gs.run(2.0)
    gs.reset()
    gs.run(3.0)
    assert [np.asarray(s.spiketrains[0]).tolist() for s in src.get_data().segments] == [
        [2.0], [2.0]]


def test_setup_twice_forgets_the_network():
    gs.setup(timestep=0.1)
    gs.Population(3, gs.IF_curr_exp())
    gs.run(5.0)
    gs.setup(timestep=0.2)
    p = gs.Population(2, gs.IF_curr_exp(i_offset=1.0))
    p.record("v")
    gs.run(10.0)
    assert len(gs.simulator.state.populations) == 1
    assert p.get_data().segments[0].analogsignals[0].shape == (51, 2)


def test_many_short_runs_do_not_rebuild_and_set_between_runs():
    gs.setup(timestep=0.1)
    p = gs.Population(5, gs.IF_curr_exp(i_offset=0.0))
    src = gs.Population(1, gs.SpikeSourceArray(spike_times=[1.0]))
    prj = gs.Projection(src, p, gs.AllToAllConnector(), gs.StaticSynapse(weight=0.1))
    p.record("v")
    gs.run(1.0)
    engine = gs.simulator.state.engine
    for k in range(50):
        if k == 10:
            p.set(i_offset=2.0)
            prj.set(weight=0.2)
        gs.run(0.5)
    assert gs.simulator.state.engine is engine  # no rebuild
    assert np.allclose(engine.get(prj._engine_parts[0][0], "weight"), 0.2e-9)
    v = np.asarray(p.get_data().segments[0].analogsignals[0])
    assert v.shape == (261, 5) and v[100:, 0].max() > -55.0  # the new offset drives v


def test_one_to_one_between_single_cells():
    """PyNN 0.13.0's OneToOneConnector fails on 1x1 projections with numpy >= 2.1; the
    backend connects them itself."""
    gs.setup()
    a = gs.Population(1, gs.SpikeSourceArray(spike_times=[1.0]))
    b = gs.Population(1, gs.IF_curr_exp())
    prj = gs.Projection(a, b, gs.OneToOneConnector(), gs.StaticSynapse(weight=0.5))
    assert prj.get("weight", format="list") == [(0, 0, 0.5)]


def test_heterogeneous_delays_are_exact():
    gs.setup(timestep=0.1, min_delay=0.1)
    src = gs.Population(1, gs.SpikeSourceArray(spike_times=[2.0]))
    p = gs.Population(3, gs.IF_curr_delta(tau_refrac=0.1))
    gs.Projection(src, p, gs.FromListConnector([(0, j, 1.0, d) for j, d in
                                                enumerate((0.1, 1.3, 2.7))],
                                               column_names=["weight", "delay"]),
                  gs.StaticSynapse())
    p.record("v")
    gs.run(6.0)
    v = np.asarray(p.get_data().segments[0].analogsignals[0])
    jumps = [int(np.flatnonzero(np.diff(v[:, j]) > 0.5)[0]) + 1 for j in range(3)]
    assert jumps == [21, 33, 47]  # 2.0 ms + delay, on the 0.1 ms grid


def _membrane(current: np.ndarray, dt: float = 0.1, tau: float = 20.0, cm: float = 1.0,
              v_rest: float = -65.0) -> np.ndarray:
    """IF_curr_exp's exact ``v`` (no synaptic input) under ``current[n]`` nA from step n."""
    a = np.exp(-dt / tau)
    v = np.empty(len(current))
    v[0] = v_rest
    for n in range(len(current) - 1):
        v[n + 1] = v_rest + (v[n] - v_rest) * a + tau / cm * current[n] * (1 - a)
    return v


def test_recorded_current_is_the_current_applied():
    """The value recorded at t is the current applied from t to t + dt, through parameter
    changes between runs and a rebuild of the network (noise included)."""
    gs.setup(timestep=0.1)
    p = gs.Population(4, gs.IF_curr_exp(v_thresh=0.0))
    sources = [gs.NoisyCurrentSource(mean=0.5, stdev=0.2, start=2.0, stop=6.0, dt=0.3),
               gs.ACSource(amplitude=0.5, offset=0.2, frequency=150.0, phase=45.0, start=1.0,
                           stop=7.3),
               gs.StepCurrentSource(times=[0.0, 3.3, 5.0], amplitudes=[0.1, 0.7, -0.2]),
               gs.DCSource(amplitude=0.8, start=0.0, stop=4.4)]
    for k, src in enumerate(sources):
        src.inject_into(p[k:k + 1])
        src.record()
    p.record("v")
    gs.run(3.0)
    gs.Population(1, gs.IF_curr_exp())  # a new population: the network is rebuilt
    gs.run(1.0)
    sources[0].stdev = 1.0
    sources[1].phase = 90.0
    sources[2].set_parameters(times=[4.5, 6.0], amplitudes=[0.4, 0.9])
    sources[3].amplitude = -0.3
    gs.run(4.0)
    v = np.asarray(p.get_data().segments[0].analogsignals[0])
    for k, src in enumerate(sources):
        current = np.asarray(src.get_data()).ravel()
        assert current.shape == (81,)
        np.testing.assert_allclose(v[:, k], _membrane(current), atol=1e-9)
    noise = np.asarray(sources[0].get_data()).ravel()
    assert np.all(noise[:20] == 0) and np.all(noise[60:] == 0)
    assert len(set(noise[20:23])) == 1 and noise[22] != noise[23]  # a new value every 0.3 ms
    step = np.asarray(sources[2].get_data()).ravel()
    # from 4 ms the new table: zero until its first time
    assert step[39] == 0.7 and step[40] == 0 and step[45] == 0.4 and step[60] == 0.9


def test_current_source_onset_and_changes_without_rebuild():
    """A DC source on from start shows its value at start, moves v from start + dt, is
    off from stop; changing its parameters between runs writes the engine directly."""
    gs.setup(timestep=0.1)
    p = gs.Population(1, gs.IF_curr_exp())
    dc = gs.DCSource(amplitude=0.5, start=5.0, stop=8.0)
    dc.inject_into(p)
    dc.record()
    p.record("v")
    gs.run(10.0)
    engine = gs.simulator.state.engine
    dc.amplitude += 0.25
    dc.set_parameters(start=12.0, stop=15.0)
    gs.run(10.0)
    assert gs.simulator.state.engine is engine
    assert dc.amplitude == 0.75 and dc.start == 12.0
    i = np.asarray(dc.get_data()).ravel()
    v = np.asarray(p.get_data().segments[0].analogsignals[0]).ravel()
    assert i[49] == 0 and i[50] == 0.5 and i[79] == 0.5 and i[80] == 0
    assert i[119] == 0 and i[120] == 0.75 and i[149] == 0.75 and i[150] == 0
    assert v[50] == -65.0 and v[51] > -65.0


def test_current_source_parameters_are_checked():
    gs.setup(timestep=0.1)
    with pytest.raises(ValueError):
        gs.StepCurrentSource(times=[0.4, -0.6, 0.8], amplitudes=[0.5, -0.5, 0.5])
    with pytest.raises(ValueError):
        gs.StepCurrentSource(times=[0.4, 0.2, 0.8], amplitudes=[0.5, -0.5, 0.5])
    with pytest.raises(ValueError):
        gs.StepCurrentSource(times=[0.4, 0.8], amplitudes=[0.5])
    step = gs.StepCurrentSource(times=[0.41, 0.42, 0.86], amplitudes=[0.5, -0.5, 0.5])
    # on the grid; the last amplitude given for a step wins
    np.testing.assert_allclose(step.times.evaluate(), [0.4, 0.9])
    np.testing.assert_array_equal(step.amplitudes.evaluate(), [-0.5, 0.5])


def test_spike_array_times_are_checked_and_rounded_up_to_the_grid():
    """As NEST: unordered times raise; an on-grid run records (and delivers) a time at the
    end of the step that holds it; 'off_grid' records the times exactly."""
    gs.setup()
    with pytest.raises(gs.errors.InvalidParameterValueError):
        gs.Population(2, gs.SpikeSourceArray(spike_times=[[1.0, 2.0], [3.0, 2.5]]))
    src = gs.Population(1, gs.SpikeSourceArray(spike_times=[1.0]))
    with pytest.raises(gs.errors.InvalidParameterValueError):
        src.set(spike_times=Sequence([3.0, 2.0]))
    for precision, expected in (("on_grid", [0.1, 10.05, 12.35]),
                                ("off_grid", [0.075, 10.025, 12.34])):
        gs.setup(timestep=0.05, spike_precision=precision)
        src = gs.Population(1, gs.SpikeSourceArray(spike_times=[0.075, 10.025, 12.34]))
        src.record("spikes")
        gs.run(20.0)
        times = src.get_data().segments[0].spiketrains[0].magnitude
        np.testing.assert_allclose(times, expected, rtol=1e-15)


def test_min_delay_auto_is_the_shortest_delay():
    gs.setup(timestep=0.1, min_delay="auto")
    assert gs.get_min_delay() == 0.1
    a = gs.Population(2, gs.IF_curr_exp())
    gs.Projection(a, a, gs.AllToAllConnector(), gs.StaticSynapse(delay=1.5))
    gs.Projection(a, a, gs.AllToAllConnector(), gs.StaticSynapse(delay=0.5))
    gs.run(1.0)
    assert gs.get_min_delay() == 0.5 and gs.get_max_delay() == 1.5
    gs.setup(timestep=0.1, min_delay=0.2, max_delay=4.0)
    assert gs.get_min_delay() == 0.2 and gs.get_max_delay() == 4.0


@pytest.mark.nvcc
def test_current_sources_compile_for_cuda():
    import dataclasses

    from gpuspike.engine.codegen_cuda import cuda_source

    from tests.simulate import compile_ptx

    gs.setup(timestep=0.1, engine="numpy")
    p = gs.Population(4, gs.IF_cond_exp())
    gs.DCSource(amplitude=0.5, start=1.0).inject_into(p[0:1])
    gs.ACSource(amplitude=0.5, frequency=20.0, phase=10.0).inject_into(p[1:2])
    gs.StepCurrentSource(times=[1.0, 2.0], amplitudes=[0.2, 0.4]).inject_into(p[2:3])
    noise = gs.NoisyCurrentSource(mean=0.1, stdev=0.3, dt=0.5)
    noise.inject_into(p[3:4])
    noise.record()
    gs.run(1.0)
    plan = gs.simulator.state.engine.plan
    gs.end()
    for precision in ("float64", "float32"):
        compile_ptx(cuda_source(dataclasses.replace(plan, precision=precision)))


def _poisson_array(sim, times: np.ndarray, **setup):
    """A SpikeSourceArray whose train comes from exponential intervals (a Poisson train
    written as an array: some pairs fall into one 0.1 ms step) into two cells."""
    sim.setup(timestep=0.1, min_delay=0.1, **setup)
    p = sim.Population(2, sim.IF_curr_exp(tau_refrac=2.0, i_offset=[0.0, 0.3]))
    src = sim.Population(1, sim.SpikeSourceArray(spike_times=Sequence(times)))
    sim.Projection(src, p, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.9, delay=1.0),
                   receptor_type="excitatory")
    src.record("spikes")
    p.record(["spikes", "v"])
    sim.run(float(np.ceil(times.max())) + 20.0)
    seg, sseg = p.get_data().segments[0], src.get_data().segments[0]
    sim.end()
    v = next(a for a in seg.analogsignals if a.name == "v")
    return ([np.asarray(s) for s in seg.spiketrains], np.asarray(v),
            np.sort(np.asarray(sseg.spiketrains[0])))


def test_spike_array_with_two_spikes_in_a_step_matches_nest(engine):
    """NEST delivers two spikes of one source in one step with multiplicity 2 (it used to
    stop gpuspike with 'spikes twice in step'): same input spikes, output spikes, v."""
    nest = _nest()
    rng = np.random.default_rng(3)
    times = np.round(np.cumsum(rng.exponential(1.5, 400)) + 1.0, 2)  # ms, 0.01 ms grid
    on_grid = np.round(times / 0.1)
    assert (np.diff(on_grid) == 0).sum() >= 5  # several pairs share a step
    ref = _poisson_array(nest, times, spike_precision="on_grid")
    ours = _poisson_array(gs, times, engine=engine)
    np.testing.assert_allclose(np.round(ours[2] / 0.1), np.round(ref[2] / 0.1))
    for a, b in zip(ref[0], ours[0]):
        np.testing.assert_allclose(b, a, atol=1e-9)
    assert ours[1].shape == ref[1].shape and np.abs(ours[1] - ref[1]).max() < 1e-9
