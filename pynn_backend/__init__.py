"""pyNN.gpuspike: PyNN scripts on the gpuspike engine (``import pyNN.gpuspike as sim``).

The backend follows the contract of ``pyNN.mock``: :mod:`.simulator` (state, ids, engine
glue), :mod:`.control`, :mod:`.populations`, :mod:`.projections`, :mod:`.recording`, the
standard models (:mod:`.standardmodels`, equations in :mod:`.models`, synapse types in
:mod:`.synapse_models`) and the translation to the engine's IR (:mod:`.translate`).
"""

from pyNN import errors, random, space  # noqa: F401
from pyNN.connectors import *  # noqa: F403, F401
from pyNN.network import Network  # noqa: F401
from pyNN.random import GSLRNG, NumpyRNG, RandomDistribution  # noqa: F401
from pyNN.recording import *  # noqa: F403, F401
from pyNN.space import Space  # noqa: F401
from gpuspike.bridge.errors import UnsupportedFeature
from pyNN.standardmodels import StandardCellType

from .connectors import FixedTotalNumberConnector  # noqa: F401  (vectorised)
from .native_rng import NativeRNG  # noqa: F401  (the engine's Philox generator)
from .control import (  # noqa: F401
    end,
    get_current_time,
    get_max_delay,
    get_min_delay,
    get_time_step,
    initialize,
    num_processes,
    rank,
    reset,
    run,
    run_for,
    run_until,
    setup,
)
from .populations import Assembly, Population, PopulationView  # noqa: F401
from .procedural_api import connect, create, record, record_gsyn, record_v  # noqa: F401
from .projections import Projection  # noqa: F401
from .standardmodels import *  # noqa: F403, F401
from .training_models import ALIF_curr_exp, LeakyIntegratorReadout  # noqa: F401


def list_standard_models():
    """The standard cell types available in this backend."""
    return [obj.__name__ for obj in globals().values()
            if isinstance(obj, type) and issubclass(obj, StandardCellType)
            and obj is not StandardCellType]


class UnsupportedModel(UnsupportedFeature, AttributeError):
    """A PyNN name this backend does not provide (``hasattr(sim, name)`` stays False)."""


#: PyNN names that other backends have and this one does not, with the way out.
NOT_PROVIDED = {
    "GIF_cond_exp": "the generalised integrate-and-fire cell (stochastic threshold) is not "
                    "implemented; use sim.PointNeuron(sim.AdExp(...), ...) or "
                    "EIF_cond_exp_isfa_ista for adaptation",
    "SpikeSourceInhGamma": "inhomogeneous gamma sources are not implemented; use "
                           "SpikeSourceGamma per rate segment or SpikeSourceArray",
    "IF_facets_hardware1": "the FACETS hardware cell is specific to that hardware; use "
                           "IF_cond_exp with its parameters",
    "MultiCompartmentNeuron": "multi-compartment cells are not in the PyNN backend; the "
                              "Brian2 device runs SpatialNeuron",
    "ElectricalSynapse": "gap junctions are not in the PyNN backend; the Brian2 device runs "
                         "them as summed variables",
    "StochasticTsodyksMarkramSynapse": "not implemented (NEST needs an extension module for "
                                       "it too); use TsodyksMarkramSynapse (deterministic) or "
                                       "MultiQuantalSynapse (stochastic release)",
    "Vogels2011Rule": "inhibitory STDP is not implemented; STDPMechanism with "
                      "SpikePairRule and the weight dependences listed in the README runs",
    "native_cell_type": "native cell types belong to NEST; use a standard cell or "
                        "sim.PointNeuron",
    "native_synapse_type": "native synapse types belong to NEST; use a standard synapse type",
    "native_electrode_type": "native electrodes belong to NEST; use DCSource, StepCurrentSource, "
                             "ACSource or NoisyCurrentSource",
}


def __getattr__(name: str):
    if name in NOT_PROVIDED:
        raise UnsupportedModel(f"pyNN.gpuspike has no {name}: {NOT_PROVIDED[name]}")
    raise AttributeError(f"module 'pyNN.gpuspike' has no attribute {name!r}")
