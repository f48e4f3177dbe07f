"""Standard cell and synapse types of ``pyNN.gpuspike`` (current sources: :mod:`.electrodes`).

Native parameter names are PyNN's own, in PyNN units (identity translations): the
conversion to SI happens once, in :mod:`.translate`, with the factors of
:data:`.models.UNIT_SCALE`. Each cell type names its :class:`~.models.CellModel` (or the
kind of spike source it is).
"""

from __future__ import annotations

from pyNN.parameters import ParameterSpace
from pyNN.standardmodels import build_translations, cells, receptors, synapses

from . import composition, models
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


class MultiQuantalSynapse(synapses.MultiQuantalSynapse):
    """Multi-quantal release with short-term plasticity, NEST's ``quantal_stp_synapse``.

    ``n`` release sites, each releasing with a facilitating probability and recovering
    with ``tau_rec`` (equations: :func:`.synapse_models._multi_quantal`); its state ``a``
    and ``u`` is set with ``Projection.initialize(a=..., u=...)`` and read with ``get``.
    """

    # the state too, so that ``get("a")`` / ``get("u")`` read it
    translations = {**_identity(synapses.MultiQuantalSynapse),
                    **build_translations(("a", "a"), ("u", "u"))}
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


# ----------------------------------------------------------------------------- composition
# PointNeuron(neuron, **receptors) (equations: :mod:`.composition`)
def _component(base):
    return type(base.__name__, (base,), {"__doc__": base.__doc__,
                                         "translations": _identity(base)})


LIF = _component(cells.LIF)
AdExp = _component(cells.AdExp)
CurrExpPostSynapticResponse = _component(receptors.CurrExpPostSynapticResponse)
CondExpPostSynapticResponse = _component(receptors.CondExpPostSynapticResponse)
CondAlphaPostSynapticResponse = _component(receptors.CondAlphaPostSynapticResponse)
CondBetaPostSynapticResponse = _component(receptors.CondBetaPostSynapticResponse)
for _psr in (CurrExpPostSynapticResponse, CondExpPostSynapticResponse,
             CondAlphaPostSynapticResponse, CondBetaPostSynapticResponse):
    _kind = composition.PSR_KINDS[_psr.__name__]
    _psr.recordable = ["isyn"] if not _kind.conductance_based else (
        ["gsyn", "ysyn"] if _psr is not CondExpPostSynapticResponse else ["gsyn"])
ExpPSR = CondExpPostSynapticResponse
AlphaPSR = CondAlphaPostSynapticResponse
BetaPSR = CondBetaPostSynapticResponse


def _pass_through(name: str):
    """Identity transform of a dotted name (PyNN's string transforms would read
    ``AMPA.tau_syn`` as an attribute)."""
    return lambda **p: p[name]


class PointNeuron(cells.PointNeuron):
    """A neuron component (``LIF``, ``AdExp``) with named post-synaptic receptors.

    Receptor parameters are flat ``"<receptor>.<parameter>"`` names (``"AMPA.tau_syn"``)
    for ``get``/``set``, and receptor state is recorded as ``"<receptor>.<variable>"``
    (``"AMPA.gsyn"``), as in PyNN's other backends; ``locations`` (multicompartment only)
    is ignored.
    """

    source_kind = None
    structural_parameters = ()
    spike_time_offset_steps = 1

    def __init__(self, neuron, **post_synaptic_receptors):
        super().__init__(neuron, **post_synaptic_receptors)
        self.model = composition.composed_model(
            type(neuron).__name__,
            tuple((name, type(psr).__name__) for name, psr in
                  sorted(post_synaptic_receptors.items())))
        names = list(self._flat_defaults())
        self.translations = build_translations(
            *((n, n, _pass_through(n), _pass_through(n)) if "." in n else (n, n)
              for n in names))
        self.injectable = neuron.injectable

    def _flat_defaults(self) -> dict:
        out = dict(self.neuron.default_parameters)
        for name, psr in self.post_synaptic_receptors.items():
            out.update({f"{name}.{p}": v for p, v in psr.default_parameters.items()
                        if p != "locations"})
        return out

    def get_schema(self):
        return {name: float for name in self._flat_defaults()}

    @property
    def default_parameters(self):
        return self._flat_defaults()

    @property
    def native_parameters(self):
        values = {}
        for name, value in self.neuron.parameter_space.items():
            values[name] = value
        for rname, psr in self.post_synaptic_receptors.items():
            for name, value in psr.parameter_space.items():
                if name != "locations":
                    values[f"{rname}.{name}"] = value
        return ParameterSpace(values, schema=None, shape=self.neuron.parameter_space.shape)

    @property
    def units(self):
        out = dict(super().units)
        for rname, psr in self.post_synaptic_receptors.items():
            kind = composition.PSR_KINDS[type(psr).__name__]
            out.update({f"{rname}.{p}": u for p, u in kind.parameter_units})
            if kind.conductance_based:
                out[f"{rname}.ysyn"] = "uS"
        return out

    def simple_parameters(self):
        return list(self._flat_defaults())

    def scaled_parameters(self):
        return []

    def computed_parameters(self):
        return []

    def computed_parameters_include(self, parameter_names):
        return False

    def get_native_names(self, *names):
        return list(names) if names else list(self._flat_defaults())

    def reverse_translate(self, native_parameters):
        return ParameterSpace({name: native_parameters[name]
                               for name in native_parameters.keys()},
                              schema=self.get_schema(), shape=native_parameters.shape)
