"""Current sources of ``pyNN.gpuspike``: DC, AC, step and noisy currents.

A source keeps its parameters on the host in PyNN units (what ``get`` returns is what was
set), the cells it is injected into, and the history of its parameters. Its current is
one expression (:attr:`_CurrentSource.expression`) of the time ``t`` at the start of a
step, ``dt`` and the values of :meth:`_CurrentSource.engine_values`: :mod:`.translate` adds
it to the ``i_inj`` of every target group (SI values as per-neuron constants), and the host
evaluates the same expression in PyNN's units for the recorded current, over the parameters
in force at each step. A parameter changed between runs is written to the engine (no
rebuild; a step source's new table rebuilds the network). A step source's current comes
from a table on the grid, a noisy source's noise is a state variable of its target cells
drawn on the engine (and recorded there).

Conventions (PyNN's, as its NEST backend presents them): the value recorded at ``t`` is the
current applied from ``t`` to ``t + dt``. A source is on from ``start`` to ``stop`` (both
rounded to the grid): it shows its value at ``start``, first moves ``v`` at ``start + dt``
and is off again at ``stop``. An AC source has its ``phase`` at ``start``. A step source's
``times`` are rounded to the grid (the last amplitude wins where two land on one step);
its current is zero before the first. A noisy source draws ``mean + stdev * randn()`` per
target cell every ``dt`` (of the source) from ``start`` on; the recorded noise is that of
its first target cell.
"""

from __future__ import annotations

import re
from functools import cache

import numpy as np
import sympy
from pyNN.parameters import ParameterSpace
from pyNN.standardmodels import build_translations, electrodes

from .simulator import state

_WINDOW = "where(t > t_on, 1, 0)*where(t < t_off, 1, 0)"


def _identity(base) -> dict:
    return build_translations(*((name, name) for name in base.default_parameters))


def _plain(value):
    """An evaluated parameter as a float, or a float array for a sequence."""
    if isinstance(value, np.ndarray) and value.dtype == object:
        value = value.reshape(-1)[0]
    if hasattr(value, "value"):  # pyNN.parameters.Sequence
        return np.asarray(value.value, dtype=float).reshape(-1)
    return float(np.asarray(value, dtype=float).reshape(-1)[0])


@cache
def _host_function(expression: str):
    """The engine expression as a NumPy function of its names (sorted), for the host."""
    from gpuspike.bridge.expressions import parse_expression

    expr = parse_expression(expression, allowed=_names(expression))
    names = sorted(str(s) for s in expr.free_symbols)
    return names, sympy.lambdify([sympy.Symbol(n) for n in names], expr, modules="numpy")


def _names(expression: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_]\w*", expression)) - {"where", "sin", "floor", "randn"}


class _CurrentSource:
    """Host side of a current source (see the module docstring)."""

    #: the injected current from ``t`` to ``t + dt``
    expression = "0"
    #: a state variable of the target cells the expression reads (drawn on the engine)
    state_variable: str | None = None
    #: the engine reads the current from a table on the grid instead (:meth:`table`)
    tabulated = False

    def __init__(self, **parameters):
        object.__setattr__(self, "_values", {})
        object.__setattr__(self, "cell_list", [])
        object.__setattr__(self, "_recording", False)
        object.__setattr__(self, "_history", [])
        object.__setattr__(self, "_engine_groups", [])
        object.__setattr__(self, "_chunks", [])
        object.__setattr__(self, "index", len(state.current_sources))
        ps = ParameterSpace(self.default_parameters, self.get_schema(), shape=(1,))
        if parameters:
            ps.update(**parameters)
        self.set_native_parameters(self.translate(ps))
        state.current_sources.append(self)

    # ------------------------------------------------------------------ PyNN interface
    def inject_into(self, cells):
        for cell in cells:
            if not cell.celltype.injectable:
                raise TypeError("Can't inject current into a spike source.")
        object.__setattr__(self, "cell_list", list(self.cell_list) + list(cells))
        state.mark_dirty()

    def set_native_parameters(self, parameters):
        parameters.evaluate(simplify=True)
        values = dict(self._values)
        values.update({name: _plain(value) for name, value in parameters.items()})
        values = self._checked(values)
        object.__setattr__(self, "_values", values)
        # the new values hold from now on; the recorded past keeps the old ones
        history = [(s, v) for s, v in self._history if s < state.step]
        object.__setattr__(self, "_history", history + [(state.step, values)])
        self._push()

    def get_native_parameters(self):
        return ParameterSpace(dict(self._values))

    def record(self):
        object.__setattr__(self, "_recording", True)
        if self.state_variable:  # drawn on the engine: it needs a monitor
            state.mark_dirty()

    def _get_data(self):
        """Recorded current (nA) at every step from 0 to now: the value at ``t`` is the
        current applied from ``t`` to ``t + dt``."""
        n = state.step + 1
        steps = np.arange(n)
        noise = self._recorded_noise(n) if self.state_variable else None
        out = np.zeros(n)
        bounds = [s for s, _ in self._history[1:]] + [n]
        for (first, values), last in zip(self._history, bounds):
            sel = slice(first, last)
            out[sel] = self.current_at(steps[sel] * state.dt, values,
                                       None if noise is None else noise[sel])
        return steps * state.dt, out

    # ------------------------------------------------------------------ engine side
    def _checked(self, values: dict) -> dict:
        """Validated values (as the source will use them)."""
        return values

    def engine_values(self, values: dict | None = None, si: bool = True) -> dict[str, float]:
        """Values of the names in :attr:`expression` (besides ``t`` and ``dt``): SI, or
        in PyNN's units (nA, ms) for the host."""
        values = self._values if values is None else values
        dt, ms = state.dt, 1e-3 if si else 1.0
        out = {}
        if "start" in values:
            out["t_on"] = (np.rint(values["start"] / dt) - 0.5) * dt * ms
            out["t_off"] = (np.rint(values["stop"] / dt) - 0.5) * dt * ms
        return out

    def current_at(self, t_ms: np.ndarray, values: dict, noise=None) -> np.ndarray:
        """The current (nA) applied from ``t_ms`` to ``t_ms + dt``, with ``values``."""
        names, fn = _host_function(self.expression)
        scope = {"t": np.asarray(t_ms, float), "dt": state.dt,
                 **self.engine_values(values, si=False)}
        if self.state_variable:
            scope[self.state_variable] = noise
        out = fn(*(scope[n] for n in names))
        return np.broadcast_to(np.asarray(out, dtype=float), np.shape(t_ms)).copy()

    def _push(self) -> None:
        """Write the new values to a built engine (a rebuild if they cannot be)."""
        if state.engine is None or state.dirty or not self._engine_groups:
            return
        for group in self._engine_groups:
            for name, value in self.engine_values().items():
                state.engine.set(group, f"cs{self.index}_{name}", value)

    def _reset(self):
        object.__setattr__(self, "_history", [(0, self._values)])
        object.__setattr__(self, "_chunks", [])

    @property
    def recorded_cell(self):
        """(population, index) of the cell whose noise is recorded."""
        cell = self.cell_list[0]
        return cell.parent, int(cell) - cell.parent.first_index_id

    def _drain(self, sim) -> None:
        from .simulator import take_monitor

        name = f"cs{self.index}_recorded"
        if self.state_variable and name in sim._recorders:
            rec = take_monitor(sim, name)
            var = f"cs{self.index}_{self.state_variable}"
            self._chunks.append((np.round(rec.t / sim.net.dt).astype(np.int64),
                                 rec.values[var][0][:, 0] * 1e9))  # A -> nA

    def _recorded_noise(self, n: int) -> np.ndarray:
        """The recorded cell's noise (nA) in steps 0 to ``n - 1``."""
        out = np.zeros(n)
        for steps, values in self._chunks:
            keep = steps < n
            out[steps[keep]] = values[keep]
        if state.engine is not None and self.cell_list and state.running:
            pop, i = self.recorded_cell
            try:  # the value drawn for the step that starts now
                out[n - 1] = state.engine.get(pop.group_name,
                                              f"cs{self.index}_{self.state_variable}")[i] * 1e9
            except KeyError:
                pass
        return out


class DCSource(_CurrentSource, electrodes.DCSource):
    __doc__ = electrodes.DCSource.__doc__
    translations = _identity(electrodes.DCSource)
    expression = f"{_WINDOW}*amplitude"

    def engine_values(self, values=None, si=True):
        values = self._values if values is None else values
        na = 1e-9 if si else 1.0
        return {**super().engine_values(values, si), "amplitude": values["amplitude"] * na}


class ACSource(_CurrentSource, electrodes.ACSource):
    __doc__ = electrodes.ACSource.__doc__
    translations = _identity(electrodes.ACSource)
    expression = f"{_WINDOW}*(offset + amplitude*sin(omega*(t - start) + phase))"

    def engine_values(self, values=None, si=True):
        values = self._values if values is None else values
        na, ms = (1e-9, 1e-3) if si else (1.0, 1.0)
        return {**super().engine_values(values, si), "amplitude": values["amplitude"] * na,
                "offset": values["offset"] * na, "start": values["start"] * ms,
                "omega": 2 * np.pi * values["frequency"] * (1.0 if si else 1e-3),  # per s/ms
                "phase": float(np.deg2rad(values["phase"]))}


class NoisyCurrentSource(_CurrentSource, electrodes.NoisyCurrentSource):
    __doc__ = electrodes.NoisyCurrentSource.__doc__
    translations = _identity(electrodes.NoisyCurrentSource)
    expression = f"{_WINDOW}*noise"
    state_variable = "noise"
    #: drawn at the end of a step for the next one (so the value of the step that starts
    #: now is known when a run ends): every ``every`` steps counted from ``first``
    draw = "where((floor(t/dt + 0.5) + 1 - first) % every == 0, mean + stdev*randn(), noise)"

    def _checked(self, values):
        if values["dt"] <= 0:
            raise ValueError(f"NoisyCurrentSource dt must be positive, not {values['dt']}")
        return values

    def engine_values(self, values=None, si=True):
        values = self._values if values is None else values
        dt, na = state.dt, 1e-9 if si else 1.0
        return {**super().engine_values(values, si), "mean": values["mean"] * na,
                "stdev": values["stdev"] * na,
                "first": float(np.rint(values["start"] / dt)),
                "every": float(max(1, int(np.rint(values["dt"] / dt))))}


class StepCurrentSource(_CurrentSource, electrodes.StepCurrentSource):
    __doc__ = electrodes.StepCurrentSource.__doc__
    translations = _identity(electrodes.StepCurrentSource)
    tabulated = True

    def _checked(self, values):
        times = np.asarray(values["times"], dtype=float).reshape(-1)
        amplitudes = np.asarray(values["amplitudes"], dtype=float).reshape(-1)
        if times.size != amplitudes.size:
            raise ValueError(f"StepCurrentSource needs one amplitude per time; got "
                             f"{times.size} times and {amplitudes.size} amplitudes")
        if times.size and times.min() < 0:
            raise ValueError("Step current cannot accept negative timestamps.")
        if times.size > 1 and np.min(np.diff(times)) <= 0:
            raise ValueError("Step current timestamps should be monotonically increasing.")
        times = self._round_timestamp(times, state.dt)
        # the last amplitude given for a step wins
        times, index = np.unique(times[::-1], return_index=True)
        return {**values, "times": times, "amplitudes": amplitudes[::-1][index]}

    def current_at(self, t_ms, values, noise=None):
        times, amplitudes = values["times"], values["amplitudes"]
        t_ms = np.asarray(t_ms, dtype=float)
        k = np.searchsorted(times, t_ms + 1e-6 * state.dt, side="right") - 1
        return np.where(k >= 0, amplitudes[np.maximum(k, 0)] if times.size else 0.0, 0.0)

    def engine_values(self, values=None, si=True):
        return {}

    def table(self) -> np.ndarray:
        """The current (A) from step ``n`` to ``n + 1``, for ``n`` up to the last change."""
        last = int(np.rint(self._values["times"][-1] / state.dt)) if len(
            self._values["times"]) else 0
        return self.current_at(np.arange(last + 1) * state.dt, self._values) * 1e-9

    def _push(self):
        if state.engine is not None and not state.dirty and self._engine_groups:
            state.mark_dirty()  # NOTE: a new table needs a rebuild (issue 4)
