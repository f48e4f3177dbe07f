"""Simulation control of ``pyNN.gpuspike``: setup, run, reset, end and state queries."""

from __future__ import annotations

from pyNN import common
from pyNN.common.control import DEFAULT_MAX_DELAY, DEFAULT_MIN_DELAY, DEFAULT_TIMESTEP
from pyNN.recording import get_io

from . import simulator


def setup(timestep=DEFAULT_TIMESTEP, min_delay=DEFAULT_MIN_DELAY, **extra_params):
    """Start a new simulation (any earlier network is discarded).

    ``min_delay`` and ``max_delay`` (ms) may be ``'auto'``: the shortest and longest delay of
    the projections made so far, as NEST computes them (``dt`` while there are none).

    Extra parameters: ``engine`` ('auto', 'numpy', 'cpp' or 'cupy'), ``threads`` (OpenMP
    threads of the 'cpp' engine; default ``$GPUSPIKE_THREADS`` or every core),
    ``chunk_steps`` (steps per engine chunk / CUDA graph), ``seed`` (the engine's random seed), ``max_delay`` (ms),
    ``spike_precision`` ('on_grid', the default, or 'off_grid': spike-array sources then
    record their spike times exactly; every spike is still delivered on the time grid and
    the neurons stay on-grid models).
    """
    max_delay = extra_params.get("max_delay", DEFAULT_MAX_DELAY)
    precision = extra_params.get("spike_precision", "on_grid")
    if precision not in ("on_grid", "off_grid"):
        raise ValueError(f"spike_precision must be 'on_grid' or 'off_grid', not {precision!r}")
    common.setup(timestep, min_delay, **extra_params)
    state = simulator.state
    state.clear()
    state.dt = float(timestep)
    state.min_delay = "auto" if min_delay == "auto" else float(min_delay)
    state.max_delay = "auto" if max_delay == "auto" else float(max_delay)
    state.spike_precision = precision
    state.engine_name = extra_params.get("engine", "auto")
    state.threads = extra_params.get("threads") or extra_params.get("threads_per_process")
    state.chunk_steps = int(extra_params.get("chunk_steps", 250))
    state.seed = int(extra_params.get("seed", extra_params.get("rng_seed", 0)) or 0)
    state.mpi_rank = 0
    state.num_processes = 1
    return rank()


def end(compatible_output=True):
    """Write the files asked for with ``record(..., filename)`` and finish."""
    state = simulator.state
    for population, variables, filename in state.write_on_end:
        io = get_io(filename)
        population.write_data(io, variables)
    state.write_on_end = []


run, run_until = common.build_run(simulator)
run_for = run
reset = common.build_reset(simulator)
initialize = common.initialize
get_current_time, get_time_step, get_min_delay, get_max_delay, num_processes, rank = (
    common.build_state_queries(simulator))
