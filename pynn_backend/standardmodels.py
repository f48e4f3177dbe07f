"""Standard cell and synapse types of ``pyNN.gpuspike`` (current sources: :mod:`.electrodes`).

Native parameter names are PyNN's own, in PyNN units (identity translations): the
conversion to SI happens once, in :mod:`.translate`, with the factors of
:data:`.models.UNIT_SCALE`. Each cell type names its :class:`~.models.CellModel` (or the
kind of spike source it is).
"""

from __future__ import annotations

from pyNN.standardmodels import build_translations, cells, synapses

from . import models
from .electrodes import ACSource, DCSource, NoisyCurrentSource, StepCurrentSource  # noqa: F401
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
        return state.min_delay


class TsodyksMarkramSynapse(synapses.TsodyksMarkramSynapse):
    __doc__ = synapses.TsodyksMarkramSynapse.__doc__
    translations = _identity(synapses.TsodyksMarkramSynapse)
    plastic = False

    def _get_minimum_delay(self):
        return state.min_delay


class SimpleStochasticSynapse(synapses.SimpleStochasticSynapse):
    __doc__ = synapses.SimpleStochasticSynapse.__doc__
    translations = _identity(synapses.SimpleStochasticSynapse)
    plastic = False

    def _get_minimum_delay(self):
        return state.min_delay


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
        return state.min_delay
