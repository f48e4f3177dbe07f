"""Cell types for training with :mod:`pyNN.gpuspike.training`: a leaky-integrator readout.

``LeakyIntegratorReadout`` is ``IF_curr_exp`` without threshold, reset and refractory
period: the non-spiking output layer of EventProp's voltage losses (``avg_ce``, ...). It is
a standard cell type of ``pyNN.gpuspike`` (it simulates with ``sim.run`` and records ``v``),
with IF_curr_exp's parameter names and units::

    cm dv/dt = cm (v_rest - v)/tau_m + isyn_exc + isyn_inh + i_offset
    disyn_exc/dt = -isyn_exc/tau_syn_E ,   disyn_inh/dt = -isyn_inh/tau_syn_I

and a spike arriving through a synapse of weight ``w`` (nA) adds ``w`` to ``isyn_exc`` or
``isyn_inh`` (by ``receptor_type``). Other PyNN simulators have no such cell; there the
same readout is an ``IF_curr_exp`` whose ``v_thresh`` is never reached (e.g. ``1e9`` mV).
"""

from __future__ import annotations

from pyNN.standardmodels import StandardCellType

from .models import IF_CURR_EXP, CellModel
from .standardmodels import _cell

__all__ = ["LI_READOUT", "LeakyIntegratorReadout"]

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
