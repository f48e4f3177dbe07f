"""Simulator state of ``pyNN.gpuspike``: the network registry, its engine and the clock.

PyNN objects keep their data on the host (parameters and initial values in PyNN units,
connections as arrays); :meth:`State.prepare` turns them into one
:class:`~gpuspike.bridge.ir.NetworkIR` (:mod:`.translate`) and an engine
:class:`~gpuspike.engine.runtime.Simulation`, and rebuilds it only when the network's
structure changed (new populations, projections, recorded variables, injected current
sources, a step source's times, spike times). Parameter, current-source and weight changes
go straight to the engine (``Simulation.set``), so many short ``run()`` calls cost no
rebuild.

On a rebuild in the middle of a simulation the state variables are carried over and the
clock continues; spikes in flight in the delay rings are lost (NOTE: needs an engine
feature to carry the rings, issue 4).
"""

from __future__ import annotations

import logging

import numpy as np
from pyNN import common

name = "gpuspike"
HOST_SOURCES = ("poisson", "poisson_refractory", "gamma")
logger = logging.getLogger("PyNN")


class ID(int, common.IDMixin):
    """A neuron's global id (an int that knows its population)."""

    def __init__(self, n):
        int.__init__(n)
        common.IDMixin.__init__(self)


class State(common.control.BaseState):
    """The simulator: registry of PyNN objects, the engine and the time."""

    def __init__(self) -> None:
        common.control.BaseState.__init__(self)
        self.mpi_rank = 0
        self.num_processes = 1
        self.dt = 0.1
        self.min_delay: float | str = "auto"
        self.max_delay: float | str = "auto"
        self.spike_precision = "on_grid"
        self.engine_name = "auto"
        self.chunk_steps = 250
        self.seed = 0
        self.id_counter = 0
        self.segment_counter = -1
        self.clear()

    # ------------------------------------------------------------------ PyNN interface
    @property
    def t(self) -> float:
        """Current time in ms."""
        return self.step * self.dt

    @property
    def min_delay(self) -> float:
        """The minimum delay (ms): as set, or with ``'auto'`` the shortest delay of any
        projection (``dt`` while there is none), as NEST computes it."""
        if self._min_delay != "auto":
            return self._min_delay
        delays = self._projection_delays()
        return min(float(d.min()) for d in delays) if delays else self.dt

    @min_delay.setter
    def min_delay(self, value: float | str) -> None:
        self._min_delay = value

    @property
    def max_delay(self) -> float:
        """The maximum delay (ms): as set, or with ``'auto'`` the longest delay of any
        projection (``dt`` while there is none)."""
        if self._max_delay != "auto":
            return self._max_delay
        delays = self._projection_delays()
        return max(float(d.max()) for d in delays) if delays else self.dt

    @max_delay.setter
    def max_delay(self, value: float | str) -> None:
        self._max_delay = value

    def _projection_delays(self) -> list[np.ndarray]:
        return [prj._attrs["delay"] for prj in self.projections
                if len(prj) and "delay" in getattr(prj, "_attrs", {})]

    def run(self, simtime: float) -> None:
        self.run_until(self.t + simtime)

    def run_until(self, tstop: float) -> None:
        steps = int(round((tstop - self.t) / self.dt))
        self.running = True
        if steps <= 0:
            return
        self.prepare(steps)
        self.engine.run(steps)
        self.step += steps
        self._drain()

    def clear(self) -> None:
        """Forget the network (``setup()`` again)."""
        self.populations: list = []
        self.projections: list = []
        self.current_sources: list = []
        self.recorders = set()
        self.write_on_end = []
        self.engine = None
        self.network = None
        self.dirty = True
        self.id_counter = 0
        self.segment_counter = -1
        self.reset()

    def reset(self) -> None:
        """Back to t = 0 with the initial values; the network structure stays."""
        for prj in self.projections:  # learnt weights outlive a reset, as in NEST (with
            prj._sync_from_engine()  # the updates of the spikes in flight, as NEST shows)
            prj._sync_pending()
        self.running = False
        self.step = 0
        self.horizon = 0
        self.t_start = 0
        for rec in self.recorders:
            rec._clear_simulator(new_segment=True)
        self.segment_counter += 1
        self.engine = None  # rebuilt from the initial values at the next run
        for src in self.current_sources:
            src._reset()

    # ------------------------------------------------------------------ engine
    def mark_dirty(self) -> None:
        """The network's structure changed: the next run rebuilds the engine."""
        self.dirty = True

    @property
    def host_poisson(self) -> bool:
        """Poisson sources as host-drawn schedules (the NumPy engine; see translate)."""
        from gpuspike.engine.backend import select_backend

        return select_backend(self.engine_name).name == "numpy"

    def prepare(self, steps: int = 0) -> None:
        """Build or rebuild the engine when needed (state carried over mid-run)."""
        if self.host_poisson and self.step + steps > self.horizon and any(
                getattr(p.celltype, "source_kind", None) in HOST_SOURCES
                for p in self.populations):
            self.dirty = True
            self.horizon = self.step + max(steps, 20000)
        if self.engine is not None and not self.dirty:
            return
        from gpuspike.engine.runtime import Simulation

        from .translate import build_network

        snapshot = self._snapshot() if self.engine is not None else None
        for prj in self.projections:  # the rings are lost: keep the STDP updates of the
            prj._sync_from_engine()  # spikes in flight (as NEST has them)
            prj._sync_pending()
        net = build_network(self)
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            sim = Simulation(net, engine=self.engine_name, chunk_steps=self.chunk_steps,
                             threads=getattr(self, "threads", None))
        sim.step = self.step
        sim.arrays["__step"][...] = self.step
        self.network = net
        self.engine = sim
        self.dirty = False
        if snapshot is not None:
            self._restore(snapshot)

    def _snapshot(self) -> dict:
        """State (non-constant) variables of every group, to carry over a rebuild."""
        out = {}
        sim = self.engine
        for g in (*self.network.groups, *self.network.synapses):
            for v in g.variables:
                if v.read_only or v.linked is not None:
                    continue
                try:
                    out[(g.name, v.name)] = sim.get(g.name, v.name)
                except KeyError:
                    pass
            for extra in ("lastspike", "not_refractory"):
                try:
                    out[(g.name, extra)] = sim.get(g.name, extra)
                except (KeyError, Exception):
                    pass
        return out

    def _restore(self, snapshot: dict) -> None:
        sim = self.engine
        for (owner, var), values in snapshot.items():
            # weights: the projections' host arrays (synced before the rebuild) are newer
            if var in ("i_inj", "w_syn", "weight", "w_stdp"):
                continue
            try:
                current = sim.get(owner, var)
            except (KeyError, Exception):
                continue
            if np.shape(current) == np.shape(values):
                sim.set(owner, var, values)

    def peek(self, steps: int, probe) -> None:
        """Run the engine ``steps`` more steps on its current state, calling ``probe(k)``
        after step ``k`` (1, ..., ``steps``), then put every array, the clock and the
        monitors back as they were: a look at the near future that changes nothing."""
        sim = self.engine
        if sim is None or steps <= 0:
            return
        fixed = {a.name for a in sim.plan.arrays if a.role in ("connectivity", "input")}
        saved = {n: a.copy() for n, a in sim.arrays.items() if n not in fixed}
        step, timings = sim.step, dict(sim.timings)
        lengths = {n: (len(r.chunks), len(r.times)) for n, r in sim._recorders.items()}
        try:
            for k in range(1, steps + 1):
                sim.run(1)
                probe(k)
        finally:
            for n, a in saved.items():
                sim.arrays[n][...] = a
            sim.step, sim.timings = step, timings
            for n, (chunks, times) in lengths.items():
                del sim._recorders[n].chunks[chunks:]
                del sim._recorders[n].times[times:]

    def _drain(self) -> None:
        """Move what the engine's monitors recorded into the PyNN recorders."""
        for rec in list(self.recorders):
            rec._drain(self.engine)
        for src in self.current_sources:
            src._drain(self.engine)


def take_monitor(sim, name: str):
    """Everything monitor ``name`` recorded since the last call (then forgotten).

    NOTE: reaches into the engine's recorder list; the engine should offer
    ``Simulation.take(monitor)`` (issue 4).
    """
    from gpuspike.bridge import ir

    rec = sim._recorders[name]
    if isinstance(rec.monitor, ir.StateMonitorIR):
        out = sim.states(name)
    else:
        out = sim.spikes(name)
    rec.chunks.clear()
    rec.times.clear()
    return out


state = State()
