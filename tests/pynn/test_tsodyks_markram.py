"""Tsodyks-Markram synapses against NEST's tsodyks_synapse (what pyNN.nest runs), step by
step: facilitating, depressing and mixed parameter sets, excitatory and inhibitory, with
the post-synaptic current's time constant shorter and longer than tau_rec."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

#: (U, tau_rec, tau_facil) in ms
PARAMS = {
    "facilitating": (0.03, 100.0, 1000.0),
    "depressing": (0.5, 800.0, 0.0),
    "mixed": (0.2, 200.0, 300.0),
}


def _run(sim, U: float, tau_rec: float, tau_facil: float, tau_syn: float,
         receptor: str, **setup) -> np.ndarray:
    """One non-spiking cell driven through one TM synapse by a burst, a pause and a second
    burst; its membrane potential."""
    sim.setup(timestep=0.1, min_delay=0.1, **setup)
    cell = sim.Population(1, sim.IF_curr_exp(v_thresh=1000.0, tau_syn_E=tau_syn,
                                             tau_syn_I=tau_syn, tau_m=10.0))
    times = np.concatenate([np.arange(10.0, 210.0, 20.0), np.arange(400.0, 460.0, 5.0)])
    src = sim.Population(1, sim.SpikeSourceArray(spike_times=times))
    sign = 1.0 if receptor == "excitatory" else -1.0
    sim.Projection(src, cell, sim.AllToAllConnector(),
                   sim.TsodyksMarkramSynapse(weight=sign * 2.0, delay=1.0, U=U, tau_rec=tau_rec,
                                             tau_facil=tau_facil), receptor_type=receptor)
    cell.record("v")
    sim.run(500.0)
    v = np.asarray(cell.get_data().segments[0].analogsignals[0]).ravel()
    sim.end()
    return v


def _nest():
    try:
        return importlib.import_module("pyNN.nest")
    except Exception:  # pragma: no cover - NEST is in the test extra
        pytest.skip("pyNN.nest not available")


@pytest.mark.parametrize("tau_syn", [5.0, 150.0])
@pytest.mark.parametrize("receptor", ["excitatory", "inhibitory"])
@pytest.mark.parametrize("kind", list(PARAMS))
def test_tsodyks_markram_membrane_equals_nest(kind, receptor, tau_syn, engine):
    import pyNN.gpuspike as gs

    U, tau_rec, tau_facil = PARAMS[kind]
    want = _run(_nest(), U, tau_rec, tau_facil, tau_syn, receptor)
    got = _run(gs, U, tau_rec, tau_facil, tau_syn, receptor, engine=engine)
    rest = -65.0
    scale = np.abs(want - rest).max()
    assert scale > 0.5, "the synapse hardly moved the membrane: the test would prove nothing"
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9 * scale + 1e-12)
