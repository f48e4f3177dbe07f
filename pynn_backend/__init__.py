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
from .training_models import LeakyIntegratorReadout  # noqa: F401


def list_standard_models():
    """The standard cell types available in this backend."""
    return [obj.__name__ for obj in globals().values()
            if isinstance(obj, type) and issubclass(obj, StandardCellType)
            and obj is not StandardCellType]
