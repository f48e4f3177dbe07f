"""Cell types for training with :mod:`pyNN.gpuspike.training`: a leaky-integrator readout and
an adaptive-threshold LIF (ALIF).

``LeakyIntegratorReadout`` is ``IF_curr_exp`` without threshold, reset and refractory
period: the non-spiking output layer of EventProp's voltage losses (``avg_ce``, ...). It is
a standard cell type of ``pyNN.gpuspike`` (it simulates with ``sim.run`` and records ``v``),
with IF_curr_exp's parameter names and units::

    cm dv/dt = cm (v_rest - v)/tau_m + isyn_exc + isyn_inh + i_offset
    disyn_exc/dt = -isyn_exc/tau_syn_E ,   disyn_inh/dt = -isyn_inh/tau_syn_I

and a spike arriving through a synapse of weight ``w`` (nA) adds ``w`` to ``isyn_exc`` or
``isyn_inh`` (by ``receptor_type``). Other PyNN simulators have no such cell; there the
same readout is an ``IF_curr_exp`` whose ``v_thresh`` is never reached (e.g. ``1e9`` mV).

``ALIF_curr_exp`` is ``IF_curr_exp`` with an adaptive threshold (Bellec et al. 2020; the
hidden neurons of e-prop's ALIF networks): the threshold is ``v_thresh + theta_a``, where
``tau_a dtheta_a/dt = -theta_a`` and every spike adds ``beta_a`` (mV) to ``theta_a``. BPTT
and e-prop train it (``EventPropTrainer(..., rule="eprop")``); EventProp's exact adjoint
covers LIF only.
"""

from __future__ import annotations

from pyNN.standardmodels import StandardCellType

from .models import IF_CURR_EXP, CellModel
from .standardmodels import _cell

__all__ = ["ALIF_CURR_EXP", "ALIF_curr_exp", "LI_READOUT", "LeakyIntegratorReadout"]

# IF_curr_exp's equations and parameters without v_thresh, v_reset and tau_refrac.
_LI_EQUATIONS = "\n".join(
    line.replace(" (unless refractory)", "")
    for line in IF_CURR_EXP.equations.splitlines()
    if not line.strip().startswith(("tau_refrac", "v_reset", "v_thresh"))
)

#: The readout's equations (SI units, as every :class:`~.models.CellModel`).
LI_READOUT = CellModel(
    _LI_EQUATIONS,
    threshold=None,
    reset=None,
    refractory=None,
    method="exact",
    receptors=dict(IF_CURR_EXP.receptors),
)


class _LeakyIntegratorReadout(StandardCellType):
    """Leaky integrator with exponential current synapses and no threshold: a readout.

    The membrane of IF_curr_exp without spikes, reset or refractoriness; use it as the
    output population of EventProp training with a voltage loss (``avg_ce`` ...).
    """

    default_parameters = {
        "v_rest": -65.0,  # resting membrane potential, mV
        "cm": 1.0,  # membrane capacitance, nF
        "tau_m": 20.0,  # membrane time constant, ms
        "tau_syn_E": 5.0,  # decay time of the excitatory synaptic current, ms
        "tau_syn_I": 5.0,  # decay time of the inhibitory synaptic current, ms
        "i_offset": 0.0,  # offset current, nA
    }
    recordable = ["v"]
    conductance_based = False
    default_initial_values = {"v": -65.0, "isyn_exc": 0.0, "isyn_inh": 0.0}
    units = {
        "v": "mV",
        "isyn_exc": "nA",
        "isyn_inh": "nA",
        "v_rest": "mV",
        "cm": "nF",
        "tau_m": "ms",
        "tau_syn_E": "ms",
        "tau_syn_I": "ms",
        "i_offset": "nA",
    }


_LeakyIntegratorReadout.__name__ = "LeakyIntegratorReadout"
_LeakyIntegratorReadout.__qualname__ = "LeakyIntegratorReadout"

#: The ``pyNN.gpuspike`` cell type (``sim.Population(10, LeakyIntegratorReadout(...))``).
LeakyIntegratorReadout = _cell(_LeakyIntegratorReadout, LI_READOUT)
LeakyIntegratorReadout.__module__ = __name__


#: IF_curr_exp with the adaptive threshold ``v_thresh + theta_a`` (SI units).
ALIF_CURR_EXP = CellModel(
    IF_CURR_EXP.equations + """
    dtheta_a/dt = -theta_a/tau_a : volt
    tau_a : second (constant)
    beta_a : volt (constant)
    """,
    threshold="v >= v_thresh + theta_a",
    reset="v = v_reset; theta_a += beta_a",
    refractory="tau_refrac + dt",
    method="exact",
    receptors=dict(IF_CURR_EXP.receptors),
)


class _ALIF_curr_exp(StandardCellType):
    """Leaky integrate-and-fire with exponential current synapses and an adaptive threshold.

    IF_curr_exp's membrane and synapses; the threshold ``v_thresh + theta_a`` rises by
    ``beta_a`` at every spike and relaxes to ``v_thresh`` with time constant ``tau_a``.
    """

    default_parameters = {
        "v_rest": -65.0,  # resting membrane potential, mV
        "cm": 1.0,  # membrane capacitance, nF
        "tau_m": 20.0,  # membrane time constant, ms
        "tau_refrac": 0.0,  # refractory period, ms (mlGeNN's e-prop SHD recipe: 5)
        "tau_syn_E": 5.0,  # decay time of the excitatory synaptic current, ms
        "tau_syn_I": 5.0,  # decay time of the inhibitory synaptic current, ms
        "v_thresh": -50.0,  # threshold at rest, mV
        "v_reset": -65.0,  # reset potential, mV
        "i_offset": 0.0,  # offset current, nA
        "tau_a": 2000.0,  # decay time of the threshold's adaptation, ms
        "beta_a": 1.0,  # threshold increase per spike, mV
    }
    recordable = ["spikes", "v", "theta_a"]
    conductance_based = False
    default_initial_values = {"v": -65.0, "isyn_exc": 0.0, "isyn_inh": 0.0, "theta_a": 0.0}
    units = {
        "v": "mV",
        "isyn_exc": "nA",
        "isyn_inh": "nA",
        "theta_a": "mV",
        "v_rest": "mV",
        "cm": "nF",
        "tau_m": "ms",
        "tau_refrac": "ms",
        "tau_syn_E": "ms",
        "tau_syn_I": "ms",
        "v_thresh": "mV",
        "v_reset": "mV",
        "i_offset": "nA",
        "tau_a": "ms",
        "beta_a": "mV",
    }


_ALIF_curr_exp.__name__ = "ALIF_curr_exp"
_ALIF_curr_exp.__qualname__ = "ALIF_curr_exp"

#: The ``pyNN.gpuspike`` cell type (``sim.Population(256, ALIF_curr_exp(tau_a=2000.0))``).
ALIF_curr_exp = _cell(_ALIF_curr_exp, ALIF_CURR_EXP)
ALIF_curr_exp.__module__ = __name__
