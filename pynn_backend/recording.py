"""Recorder of ``pyNN.gpuspike``: engine monitors drained into host arrays after each run.

Each recorded population gets one spike monitor and one state monitor (all its neurons, the
recorded variables, every ``sampling_interval``); ids are filtered when the data is read.
Times follow NEST's conventions: a neuron that crosses threshold in the step from ``t`` to
``t + dt`` spikes at ``t + dt``; a spike array's spike is recorded at its time rounded up
to the grid (exactly as given with ``spike_precision='off_grid'``); a state sample at
``t`` is the value after the update that ends at ``t`` and after the events arriving at
``t`` (so ``gsyn`` shows the jump at ``t``).
The sample at the current time, not yet taken by the engine, is read when data is asked for.
Likewise a spike array's spikes at the current time: the engine emits such a spike in the
first step of the next run (it delivers it as NEST does), but NEST's spike generator emits
it in the step that ends at its time, so it belongs to the run that ends there. At the end
of a run they are recorded from the schedule ("announced") and the engine's copies are
dropped when the next run records them.
"""

from __future__ import annotations

import numpy as np
from pyNN import recording

from . import simulator
from .models import UNIT_SCALE


class Recorder(recording.Recorder):
    _simulator = simulator

    def __init__(self, population, file=None):
        super().__init__(population, file)
        self._spike_chunks: list[tuple[np.ndarray, np.ndarray]] = []
        self._signal_chunks: list[tuple[np.ndarray, dict]] = []
        #: (step, indices) of spike-array spikes recorded ahead of the engine
        self._announced: tuple[int, np.ndarray] | None = None

    # ------------------------------------------------------------------ engine side
    @property
    def monitor_names(self) -> tuple[str, str]:
        g = self.population.group_name
        return f"{g}_spikes", f"{g}_state"

    def recorded_variables(self) -> tuple[bool, tuple[str, ...]]:
        """(spikes recorded?, the other recorded variables in a stable order)."""
        names = sorted({v.name for v, ids in self.recorded.items() if ids})
        return "spikes" in names, tuple(n for n in names if n != "spikes")

    def sampling_steps(self) -> int:
        return max(1, int(round(self.sampling_interval / self._simulator.state.dt)))

    def _record(self, variable, new_ids, sampling_interval=None):
        if sampling_interval is not None and sampling_interval != self.sampling_interval:
            self.sampling_interval = sampling_interval
            self._simulator.state.mark_dirty()
        if getattr(self, "_engine_variables", None) != self.recorded_variables():
            self._simulator.state.mark_dirty()

    def _drain(self, sim) -> None:
        state = self._simulator.state
        spikes_name, states_name = self.monitor_names
        if spikes_name in sim._recorders:
            rec = simulator.take_monitor(sim, spikes_name)
            offset = self.population.celltype.spike_time_offset_steps * state.dt
            ii, tt = rec.i.astype(np.int64), rec.t * 1e3 + offset
            schedule = getattr(self.population, "_spike_schedule", None)
            steps = np.round(rec.t / sim.net.dt).astype(np.int64)
            if state.spike_precision == "off_grid" and schedule is not None and ii.size:
                # a spike array's spikes keep the exact times they were given
                keys = steps * self.population.size + ii
                tt = schedule[1][np.searchsorted(schedule[0], keys)]
            if self._announced is not None:
                step, announced = self._announced
                keep = ~((steps == step) & np.isin(ii, announced))
                ii, tt = ii[keep], tt[keep]
                self._announced = None
            self._spike_chunks.append((ii, tt))
            if schedule is not None:
                self._announce(schedule, state.step)
        if states_name in sim._recorders:
            rec = simulator.take_monitor(sim, states_name)
            self._signal_chunks.append((rec.t * 1e3, {k: v[0] for k, v in rec.values.items()}))

    def _announce(self, schedule: tuple[np.ndarray, np.ndarray], step: int) -> None:
        """Record a spike array's spikes of ``step`` (the next run's first) now: their
        times are at most the current time (see the module docstring)."""
        size = self.population.size
        keys, times = schedule
        lo, hi = np.searchsorted(keys, [step * size, (step + 1) * size])
        if hi == lo:
            return
        ii = keys[lo:hi] - step * size
        if self._simulator.state.spike_precision == "off_grid":
            tt = times[lo:hi]
        else:
            offset = self.population.celltype.spike_time_offset_steps
            tt = np.full(ii.size, (step + offset) * self._simulator.state.dt)
        self._spike_chunks.append((ii, tt))
        self._announced = (step, ii)

    # ------------------------------------------------------------------ PyNN side
    def _spike_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if not self._spike_chunks:
            return np.zeros(0, np.int64), np.zeros(0)
        ii = np.concatenate([c[0] for c in self._spike_chunks])
        tt = np.concatenate([c[1] for c in self._spike_chunks])
        return ii, tt

    def _get_spiketimes(self, ids, clear=False):
        ii, tt = self._spike_arrays()
        pop = self.population
        index = pop.index_of(np.asarray(ids, dtype=np.int64)) if len(ids) else np.zeros(0, int)
        keep = np.isin(ii, index)
        ii, tt = ii[keep], tt[keep]
        order = np.lexsort((tt, ii))
        return (ii[order] + pop.first_index_id).astype(int), np.round(tt[order], 10)

    def _get_all_signals(self, variable, ids, clear=False):
        from .translate import state_variable_name

        state = self._simulator.state
        pop = self.population
        name = state_variable_name(pop.celltype, variable.name)
        scale = UNIT_SCALE.get(pop.celltype.units.get(variable.name, ""), 1.0)
        index = pop.index_of(np.asarray(ids, dtype=np.int64))
        parts = [vals[name] for _, vals in self._signal_chunks if name in vals]
        every = self.sampling_steps()
        if state.engine is not None and state.step % every == 0 and state.running:
            parts.append(np.asarray(state.engine.get(pop.group_name, name),
                                    dtype=float).reshape(1, -1))
        if not parts:
            return np.zeros((0, len(ids))), None
        data = np.concatenate(parts, axis=0)[:, index] / scale
        return data, None

    def _local_count(self, variable, filter_ids=None):
        ii, _ = self._spike_arrays()
        counts = np.bincount(ii, minlength=self.population.size)
        pop = self.population
        return {int(i): int(counts[pop.index_of([i])[0]])
                for i in self.filter_recorded(variable, filter_ids)}

    def _clear_simulator(self, new_segment: bool = False):
        self._spike_chunks = []
        self._signal_chunks = []
        if new_segment:  # back to t = 0: nothing announced will be recorded twice
            self._announced = None

    def _reset(self):
        self._clear_simulator()
        self._simulator.state.mark_dirty()
