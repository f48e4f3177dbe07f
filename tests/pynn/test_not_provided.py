"""PyNN names other backends have and pyNN.gpuspike does not: a typed error naming the way
out, not a bare AttributeError (found by running PyNN's examples: gif_neuron,
stochastic_tsodyksmarkram)."""

from __future__ import annotations

import inspect

import pyNN.gpuspike as sim
import pyNN.standardmodels as sm
import pytest
from gpuspike.bridge.errors import UnsupportedFeature
from pyNN.standardmodels import cells, electrodes, synapses


def pynn_standard_models() -> set[str]:
    return {n for mod in (cells, synapses, electrodes) for n, o in vars(mod).items()
            if inspect.isclass(o) and issubclass(o, sm.StandardModelType)
            and o.__module__ == mod.__name__}


def test_every_standard_model_is_provided_or_refused_by_name():
    missing = {n for n in pynn_standard_models() if n not in vars(sim)}
    assert missing <= set(sim.NOT_PROVIDED), missing - set(sim.NOT_PROVIDED)
    assert not set(sim.NOT_PROVIDED) & set(vars(sim))  # nothing refused that exists


@pytest.mark.parametrize("name", sorted(sim.NOT_PROVIDED))
def test_refusal_is_typed_and_hasattr_stays_false(name):
    assert not hasattr(sim, name)
    with pytest.raises(UnsupportedFeature, match=f"pyNN.gpuspike has no {name}: .*(use|run)"):
        getattr(sim, name)


def test_other_names_are_plain_attribute_errors():
    with pytest.raises(AttributeError) as err:
        sim.NoSuchThing  # noqa: B018
    assert not isinstance(err.value, UnsupportedFeature)
