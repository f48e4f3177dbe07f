# ruff: noqa: E501  (model equations read best one per line, however long)
"""PyNN's ``PointNeuron``: a neuron component plus named post-synaptic receptors, as one
:class:`~.models.CellModel`.

``sim.PointNeuron(sim.AdExp(...), AMPA=sim.AlphaPSR(...), GABAA=sim.AlphaPSR(...))`` is
the membrane equation of the neuron component with ``i_syn``, the sum of the receptors'
currents, added to its input. Every receptor ``R`` brings its own state and parameters,
named ``<name>_R`` in the IR (``gsyn_AMPA``, ``tau_syn_AMPA``) and ``R.<name>`` in PyNN
(``AMPA.gsyn``, ``AMPA.tau_syn``); an event on receptor ``R`` increments the variable the
receptor names (:data:`PSR_KINDS`). The maths, in SI units:

Neurons
    ``LIF``:   ``C dv/dt = C (v_rest - v)/tau_m + i_syn + i_offset + i_inj`` (clamped while
    refractory), spike at ``v >= v_thresh``, ``v <- v_reset``.
    ``AdExp``: ``C dv/dt = C ((v_rest - v) + delta_T exp((v - v_thresh)/delta_T))/tau_m
    + i_syn - w + i_offset + i_inj``, ``tau_w dw/dt = a (v - v_rest) - w``, spike at
    ``v >= v_spike``, ``v <- v_reset``, ``w <- w + b`` (Brette & Gerstner 2005; NEST's
    ``aeif_cond_*_multisynapse``).

Receptors (event of weight ``w``; current into the membrane)
    ``CurrExp``:  ``d isyn/dt = -isyn/tau_syn``, ``isyn += w``; current ``isyn``.
    ``CondExp``:  ``d gsyn/dt = -gsyn/tau_syn``, ``gsyn += w``; current
    ``gsyn (e_syn - v)``.
    ``CondAlpha``: ``d gsyn/dt = (y - gsyn)/tau_syn``, ``dy/dt = -y/tau_syn``,
    ``y += e w``: ``gsyn`` peaks at ``w`` one ``tau_syn`` after the event.
    ``CondBeta``: ``d gsyn/dt = -gsyn/tau_decay + k y``, ``dy/dt = -y/tau_rise``,
    ``y += w`` with ``k`` chosen so that ``gsyn`` peaks at ``w`` (NEST's normalisation):
    ``k = 1/(tau_peak_factor (exp(-t_p/tau_decay) - exp(-t_p/tau_rise)))``,
    ``t_p = tau_rise tau_decay ln(tau_decay/tau_rise)/(tau_decay - tau_rise)``,
    ``tau_peak_factor = tau_rise tau_decay/(tau_decay - tau_rise)``.

A current-based LIF is linear and solved exactly (NEST's ``iaf_psc_exp_multisynapse``);
everything else uses the split update of :func:`.models.neuron_template` (receptor states
exactly, the membrane with RK4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

from .models import CellModel

E = math.e


@dataclass(frozen=True)
class PSRKind:
    """How one receptor type enters the equations (``{R}`` is the receptor's name)."""

    #: equations of the receptor's state and parameter declarations
    equations: str
    #: its contribution to ``i_syn``
    current: str
    #: variable an event increments, and the factor from PyNN's weight unit to SI
    target: str
    factor: float
    #: variables integrated exactly in the split update
    fast: tuple[str, ...]
    #: PyNN parameter -> its unit (PyNN's receptor classes list only state units)
    parameter_units: tuple[tuple[str, str], ...]
    conductance_based: bool


PSR_KINDS: dict[str, PSRKind] = {
    "CurrExpPostSynapticResponse": PSRKind(
        "disyn_{R}/dt = -isyn_{R}/tau_syn_{R} : amp\ntau_syn_{R} : second (constant)",
        "isyn_{R}", "isyn_{R}", 1e-9, ("isyn_{R}",), (("tau_syn", "ms"),), False),
    "CondExpPostSynapticResponse": PSRKind(
        "dgsyn_{R}/dt = -gsyn_{R}/tau_syn_{R} : siemens\ntau_syn_{R} : second (constant)\n"
        "e_syn_{R} : volt (constant)",
        "gsyn_{R}*(e_syn_{R} - v)", "gsyn_{R}", 1e-6, ("gsyn_{R}",),
        (("tau_syn", "ms"), ("e_syn", "mV")), True),
    "CondAlphaPostSynapticResponse": PSRKind(
        "dgsyn_{R}/dt = (y_{R} - gsyn_{R})/tau_syn_{R} : siemens\n"
        "dy_{R}/dt = -y_{R}/tau_syn_{R} : siemens\ntau_syn_{R} : second (constant)\n"
        "e_syn_{R} : volt (constant)",
        "gsyn_{R}*(e_syn_{R} - v)", "y_{R}", 1e-6 * E, ("gsyn_{R}", "y_{R}"),
        (("tau_syn", "ms"), ("e_syn", "mV")), True),
    "CondBetaPostSynapticResponse": PSRKind(
        "dgsyn_{R}/dt = -gsyn_{R}/tau_decay_{R} + peak_{R}*y_{R} : siemens\n"
        "dy_{R}/dt = -y_{R}/tau_rise_{R} : siemens\n"
        "tau_rise_{R} : second (constant)\ntau_decay_{R} : second (constant)\n"
        "peak_{R} : 1/second (constant)\ne_syn_{R} : volt (constant)",
        "gsyn_{R}*(e_syn_{R} - v)", "y_{R}", 1e-6, ("gsyn_{R}", "y_{R}"),
        (("tau_rise", "ms"), ("tau_decay", "ms"), ("e_syn", "mV")), True),
}

_LIF = """
dv/dt = (v_rest - v)/tau_m + (i_syn + i_offset + i_inj)/cm : volt (unless refractory)
v_rest : volt (constant)
cm : farad (constant)
tau_m : second (constant)
tau_refrac : second (constant)
v_reset : volt (constant)
v_thresh : volt (constant)
i_offset : amp (constant)
i_inj : amp
"""
_ADEX = """
dv/dt = ((v_rest - v) + delta_T*exp((minimum(v, v_spike) - v_thresh)/delta_T))/tau_m + (i_syn - w + i_offset + i_inj)/cm : volt (unless refractory)
dw/dt = (a*(v - v_rest) - w)/tau_w : amp
v_rest : volt (constant)
cm : farad (constant)
tau_m : second (constant)
tau_refrac : second (constant)
v_reset : volt (constant)
v_thresh : volt (constant)
v_spike : volt (constant)
a : siemens (constant)
b : amp (constant)
delta_T : volt (constant)
tau_w : second (constant)
i_offset : amp (constant)
i_inj : amp
"""
#: neuron component -> (equations, threshold, reset)
NEURON_KINDS: dict[str, tuple[str, str, str]] = {
    "LIF": (_LIF, "v >= v_thresh", "v = v_reset"),
    "AdExp": (_ADEX, "v >= v_spike", "v = v_reset\nw = w + b"),
}


@cache
def composed_model(neuron: str, receptors: tuple[tuple[str, str], ...]) -> CellModel:
    """The :class:`CellModel` of neuron component ``neuron`` with ``receptors``
    (``(name, PSR class name)`` pairs); one object per combination, so that the SymPy
    integration of :func:`.models.neuron_template` runs once for it."""
    if neuron not in NEURON_KINDS:
        raise NotImplementedError(
            f"pyNN.gpuspike composes PointNeuron from {sorted(NEURON_KINDS)}, not {neuron}")
    eqs, threshold, reset = NEURON_KINDS[neuron]
    lines = [eqs.strip()]
    currents, table, fast, renames = [], {}, [], {}
    for name, kind_name in receptors:
        if not name.isidentifier():
            raise ValueError(f"receptor name {name!r} must be a Python identifier")
        if kind_name not in PSR_KINDS:
            raise NotImplementedError(
                f"pyNN.gpuspike has no post-synaptic response {kind_name}; use one of "
                f"{sorted(PSR_KINDS)}")
        kind = PSR_KINDS[kind_name]
        lines.append(kind.equations.format(R=name))
        currents.append(kind.current.format(R=name))
        table[name] = (kind.target.format(R=name), kind.factor)
        fast += [f.format(R=name) for f in kind.fast]
        for pynn_param, _ in kind.parameter_units:
            renames[f"{name}.{pynn_param}"] = f"{pynn_param}_{name}"
        for var in kind.fast:
            plain = var.split("_{R}")[0]
            renames[f"{name}.{'ysyn' if plain == 'y' else plain}"] = var.format(R=name)
    lines.append(f"i_syn = {' + '.join(currents) if currents else '0*amp'} : amp")
    linear = neuron == "LIF" and not any(PSR_KINDS[k].conductance_based
                                         for _, k in receptors)
    return CellModel("\n".join(lines), threshold=threshold, reset=reset,
                     refractory="tau_refrac + dt", method="exact" if linear else "split",
                     receptors=table, renames=renames, fast=tuple(fast))


def beta_peak(tau_rise, tau_decay):
    """``peak`` of a beta receptor (1/s) from its time constants (s), as arrays: the factor
    on ``y`` that makes ``gsyn`` peak at the weight. Equal time constants give the alpha
    function's ``e/tau``."""
    import numpy as np

    tr = np.asarray(tau_rise, dtype=float)
    td = np.asarray(tau_decay, dtype=float)
    same = np.isclose(tr, td, rtol=1e-9)
    td_ = np.where(same, td * (1 + 1e-6), td)
    scale = tr * td_ / (td_ - tr)
    t_peak = scale * np.log(td_ / tr)
    return np.where(same, E / td, 1.0 / (scale * (np.exp(-t_peak / td_)
                                                  - np.exp(-t_peak / tr))))
