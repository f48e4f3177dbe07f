"""Standard cell, synapse and current-source types of ``pyNN.gpuspike``.

Native parameter names are PyNN's own, in PyNN units (identity translations): the
conversion to SI happens once, in :mod:`.translate`, with the factors of
:data:`.models.UNIT_SCALE`. Each cell type names its :class:`~.models.CellModel` (or the
kind of spike source it is).
"""

from __future__ import annotations

import numpy as np
from pyNN.parameters import ParameterSpace
from pyNN.standardmodels import build_translations, cells, electrodes, synapses

from . import models
from .simulator import state


def _identity(base) -> dict:
    return build_translations(*((name, name) for name in base.default_parameters))


def _cell(base, model=None, *, source=None, structural=(), offset=1):
    attrs = {"__doc__": base.__doc__, "translations": _identity(base), "model": model,
             "source_kind": source, "structural_parameters": tuple(structural),
             "spike_time_offset_steps": offset}
    return type(base.__name__, (base,), attrs)


IF_curr_exp = _cell(cells.IF_curr_exp, models.IF_CURR_EXP)
IF_curr_alpha = _cell(cells.IF_curr_alpha, models.IF_CURR_ALPHA)
IF_curr_delta = _cell(cells.IF_curr_delta, models.IF_CURR_DELTA)
IF_cond_exp = _cell(cells.IF_cond_exp, models.IF_COND_EXP)
IF_cond_alpha = _cell(cells.IF_cond_alpha, models.IF_COND_ALPHA)
IF_cond_exp_gsfa_grr = _cell(cells.IF_cond_exp_gsfa_grr, models.IF_COND_EXP_GSFA_GRR)
EIF_cond_exp_isfa_ista = _cell(cells.EIF_cond_exp_isfa_ista, models.EIF_COND_EXP_ISFA_ISTA)
EIF_cond_alpha_isfa_ista = _cell(cells.EIF_cond_alpha_isfa_ista,
                                 models.EIF_COND_ALPHA_ISFA_ISTA)
Izhikevich = _cell(cells.Izhikevich, models.IZHIKEVICH)
HH_cond_exp = _cell(cells.HH_cond_exp, models.HH_COND_EXP)
SpikeSourcePoisson = _cell(cells.SpikeSourcePoisson, source="poisson")
SpikeSourcePoissonRefractory = _cell(cells.SpikeSourcePoissonRefractory,
                                     source="poisson_refractory")
SpikeSourceGamma = _cell(cells.SpikeSourceGamma, source="gamma")
# a spike-array spike at t is delivered as NEST's spike_generator does: it arrives at
# t + delay, so its events need one step less than a neuron's (``offset=0``).
SpikeSourceArray = _cell(cells.SpikeSourceArray, source="array", structural=("spike_times",),
                         offset=0)


# ----------------------------------------------------------------------------- synapses
class StaticSynapse(synapses.StaticSynapse):
    __doc__ = synapses.StaticSynapse.__doc__
    translations = _identity(synapses.StaticSynapse)
    plastic = False

    def _get_minimum_delay(self):
        d = state.min_delay
        return state.dt if d == "auto" else d


class TsodyksMarkramSynapse(synapses.TsodyksMarkramSynapse):
    __doc__ = synapses.TsodyksMarkramSynapse.__doc__
    translations = _identity(synapses.TsodyksMarkramSynapse)
    plastic = False

    def _get_minimum_delay(self):
        d = state.min_delay
        return state.dt if d == "auto" else d


class SimpleStochasticSynapse(synapses.SimpleStochasticSynapse):
    __doc__ = synapses.SimpleStochasticSynapse.__doc__
    translations = _identity(synapses.SimpleStochasticSynapse)
    plastic = False

    def _get_minimum_delay(self):
        d = state.min_delay
        return state.dt if d == "auto" else d


# STDP components: the rule itself is in :mod:`.synapse_models` (NEST's stdp_synapse)
def _stdp_component(base):
    return type(base.__name__, (base,), {"__doc__": base.__doc__,
                                         "translations": _identity(base),
                                         "possible_models": {"stdp_synapse"}})


AdditiveWeightDependence = _stdp_component(synapses.AdditiveWeightDependence)
MultiplicativeWeightDependence = _stdp_component(synapses.MultiplicativeWeightDependence)
AdditivePotentiationMultiplicativeDepression = _stdp_component(
    synapses.AdditivePotentiationMultiplicativeDepression)
GutigWeightDependence = _stdp_component(synapses.GutigWeightDependence)
SpikePairRule = _stdp_component(synapses.SpikePairRule)


class STDPMechanism(synapses.STDPMechanism):
    __doc__ = synapses.STDPMechanism.__doc__
    base_translations = {"weight": {"forward_transform": "weight", "reverse_transform":
                                    "weight", "translated_name": "weight"},
                         "delay": {"forward_transform": "delay", "reverse_transform":
                                   "delay", "translated_name": "delay"},
                         "dendritic_delay_fraction": {
                             "forward_transform": "dendritic_delay_fraction",
                             "reverse_transform": "dendritic_delay_fraction",
                             "translated_name": "dendritic_delay_fraction"}}
    plastic = True

    def _build_translations(self):
        # PyNN updates the class's dict in place, so one mechanism's parameters would leak
        # into the next; each instance gets its own copy
        self.translations = dict(self.base_translations)
        for component in (self.timing_dependence, self.weight_dependence,
                          self.voltage_dependence):
            if component:
                self.translations.update(component.translations)

    def _get_minimum_delay(self):
        d = state.min_delay
        return state.dt if d == "auto" else d


# ----------------------------------------------------------------------------- electrodes
class _CurrentSource:
    """Host-side current source: parameters in PyNN units, cells it is injected into.

    :mod:`.translate` turns it into the ``i_inj`` term of each target group; changing a
    parameter after the engine is built marks the network for a rebuild.
    """

    def __init__(self, **parameters):
        object.__setattr__(self, "cell_list", [])
        object.__setattr__(self, "_recording", False)
        ps = ParameterSpace(self.default_parameters, self.get_schema(), shape=(1,))
        if parameters:
            ps.update(**parameters)
        ps.evaluate(simplify=True)
        object.__setattr__(self, "parameter_space", ps)
        object.__setattr__(self, "index", len(state.current_sources))
        state.current_sources.append(self)

    def inject_into(self, cells):
        for cell in cells:
            if not cell.celltype.injectable:
                raise TypeError("Can't inject current into a spike source.")
        object.__setattr__(self, "cell_list", list(self.cell_list) + [c for c in cells])
        state.mark_dirty()

    def set_native_parameters(self, parameters):
        parameters.evaluate(simplify=True)
        self.parameter_space.update(**dict(parameters.items()))
        self.parameter_space.evaluate(simplify=True)
        state.mark_dirty()

    def get_native_parameters(self):
        return ParameterSpace(dict(self.parameter_space.items()), self.get_schema(), (1,))

    def _reset(self):
        pass

    def value(self, name):
        v = self.parameter_space[name]
        return v.value if hasattr(v, "value") else v

    def record(self):
        object.__setattr__(self, "_recording", True)

    def _get_data(self):
        """Injected current (nA) on the time grid up to now, as PyNN's NEST backend shows
        it: the value applied to the cell in the step that ends at each sample."""
        dt = state.dt
        n = state.step + 1
        t = np.arange(n) * dt
        return t, self.current_at(t)


class DCSource(_CurrentSource, electrodes.DCSource):
    __doc__ = electrodes.DCSource.__doc__
    translations = _identity(electrodes.DCSource)

    def current_at(self, t):
        a, start, stop = (self.value(n) for n in ("amplitude", "start", "stop"))
        on = (t > start + 1e-9) & (t <= stop + 1e-9)
        return np.where(on, a, 0.0)


class ACSource(_CurrentSource, electrodes.ACSource):
    __doc__ = electrodes.ACSource.__doc__
    translations = _identity(electrodes.ACSource)

    def current_at(self, t):
        a, start, stop, f, off, ph = (self.value(n) for n in (
            "amplitude", "start", "stop", "frequency", "offset", "phase"))
        on = (t > start + 1e-9) & (t <= stop + 1e-9)
        tt = t - state.dt
        return np.where(on, off + a * np.sin(2 * np.pi * f * tt * 1e-3 + np.deg2rad(ph)), 0.0)


class StepCurrentSource(_CurrentSource, electrodes.StepCurrentSource):
    __doc__ = electrodes.StepCurrentSource.__doc__
    translations = _identity(electrodes.StepCurrentSource)

    def current_at(self, t):
        times = np.asarray(self.value("times").value if hasattr(self.value("times"), "value")
                           else self.value("times"), float)
        amps = np.asarray(self.value("amplitudes").value
                          if hasattr(self.value("amplitudes"), "value")
                          else self.value("amplitudes"), float)
        out = np.zeros_like(t)
        if times.size:
            k = np.searchsorted(times, t - state.dt + 1e-9, side="right") - 1
            out = np.where(k >= 0, amps[np.maximum(k, 0)], 0.0)
        return out


class NoisyCurrentSource(_CurrentSource, electrodes.NoisyCurrentSource):
    __doc__ = electrodes.NoisyCurrentSource.__doc__
    translations = _identity(electrodes.NoisyCurrentSource)

    def current_at(self, t):
        mean, start, stop = (self.value(n) for n in ("mean", "start", "stop"))
        on = (t > start + 1e-9) & (t <= stop + 1e-9)
        return np.where(on, mean, 0.0)  # NOTE: the noise itself is not recorded (issue 4)
