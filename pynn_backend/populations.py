"""Population, PopulationView and Assembly of ``pyNN.gpuspike``.

Parameters and initial values live on the host in PyNN units (what ``get`` returns is
exactly what was set); :mod:`.translate` converts them to SI when the engine is built, and
``set``/``initialize`` after that write the engine's arrays directly.
"""

from __future__ import annotations

import numpy as np
from pyNN import common, errors
from pyNN.parameters import LazyArray, ParameterSpace, simplify
from pyNN.standardmodels import StandardCellType

from . import simulator
from .models import UNIT_SCALE
from .recording import Recorder
from .simulator import HOST_SOURCES


class Assembly(common.Assembly):
    _simulator = simulator


def _check_values(celltype, values: dict) -> None:
    """Refuse parameter values the cell type cannot take, as PyNN's NEST backend does:
    a spike source's times must be in non-descending order."""
    if getattr(celltype, "source_kind", None) == "array" and "spike_times" in values:
        for seq in np.atleast_1d(values["spike_times"]):
            times = np.asarray(getattr(seq, "value", seq), dtype=float)
            if np.any(times[1:] < times[:-1]):
                raise errors.InvalidParameterValueError(
                    "Spike times given to SpikeSourceArray must be in increasing order; "
                    f"got {times.tolist()}")


def _scale(celltype, name: str) -> float:
    return UNIT_SCALE.get(celltype.units.get(name, ""), 1.0)


class _ParameterAccess:
    """``_get_parameters`` shared by populations and views (native names = PyNN names)."""

    def _get_parameters(self, *names):
        if isinstance(self.celltype, StandardCellType):
            if any(name in self.celltype.computed_parameters() for name in names):
                native_names = self.celltype.get_native_names()
            else:
                native_names = self.celltype.get_native_names(*names)
            return self.celltype.reverse_translate(self._get_native_parameters(*native_names))
        return self._get_native_parameters(*names)


class PopulationView(_ParameterAccess, common.PopulationView):
    _assembly_class = Assembly
    _simulator = simulator

    def _get_native_parameters(self, *names):
        out = {}
        for name in names:
            value = self.parent._parameters[name]
            if isinstance(value, np.ndarray):
                value = value[self.mask]
            out[name] = simplify(value)
        return ParameterSpace(out, shape=(self.size,))

    def _set_parameters(self, parameter_space):
        parameter_space.evaluate(simplify=False)
        _check_values(self.celltype, dict(parameter_space.items()))
        for name, value in parameter_space.items():
            try:
                self.parent._parameters[name][self.mask] = value
            except ValueError:
                raise errors.InvalidParameterValueError(
                    f"{name} should not be of type {type(value)}") from None
        self.parent._parameters_changed(parameter_space.keys())

    def initialize(self, **initial_values):
        for variable, value in initial_values.items():
            values = LazyArray(value, shape=(self.size,), dtype=float)
            self.parent._store_initial(variable, values.evaluate(simplify=False), self.mask)

    def _set_initial_value_array(self, variable, initial_values):
        self.parent._store_initial(variable, initial_values.evaluate(simplify=False), self.mask)

    def _get_view(self, selector, label=None):
        return PopulationView(self, selector, label)


class Population(_ParameterAccess, common.Population):
    __doc__ = common.Population.__doc__
    _simulator = simulator
    _recorder_class = Recorder
    _assembly_class = Assembly

    def _create_cells(self):
        state = simulator.state
        ids = np.arange(state.id_counter, state.id_counter + self.size)
        self.all_cells = np.array([simulator.ID(i) for i in ids], dtype=simulator.ID)
        self._mask_local = np.ones(self.size, dtype=bool)
        self.first_index_id = int(ids[0]) if self.size else state.id_counter
        if isinstance(self.celltype, StandardCellType):
            parameter_space = self.celltype.native_parameters
        else:
            parameter_space = self.celltype.parameter_space
        parameter_space.shape = (self.size,)
        parameter_space.evaluate(mask=self._mask_local, simplify=False)
        self._parameters = parameter_space.as_dict()
        _check_values(self.celltype, self._parameters)
        self._initial: dict[str, np.ndarray] = {}
        for cell in self.all_cells:
            cell.parent = self
        state.id_counter += self.size
        self.group_name = f"p{len(state.populations)}"
        state.populations.append(self)
        state.mark_dirty()

    # ------------------------------------------------------------------ parameters
    def _get_native_parameters(self, *names):
        return ParameterSpace({name: simplify(self._parameters[name]) for name in names},
                              shape=(self.local_size,))

    def _set_parameters(self, parameter_space):
        parameter_space.evaluate(simplify=False, mask=self._mask_local)
        _check_values(self.celltype, dict(parameter_space.items()))
        for name, value in parameter_space.items():
            self._parameters[name] = value
        self._parameters_changed(parameter_space.keys())

    def _parameters_changed(self, names) -> None:
        """Push changed parameters to the engine, or mark the network for a rebuild."""
        state = simulator.state
        if state.engine is None or state.dirty:
            return
        structural = getattr(self.celltype, "structural_parameters", ())
        if getattr(self.celltype, "source_kind", None) in HOST_SOURCES and state.host_poisson:
            structural = tuple(names)
        if any(n in structural for n in names):
            state.mark_dirty()
            return
        from .translate import parameter_values, state_variable_name

        values = parameter_values(self)
        derived = [n for n in values if n.startswith("peak_")]  # beta receptors' factors
        for n in [state_variable_name(self.celltype, n) for n in names] + derived:
            if n in values:
                state.engine.set(self.group_name, n, values[n])

    # ------------------------------------------------------------------ initial values
    def _set_initial_value_array(self, variable, initial_values):
        self._store_initial(variable, initial_values.evaluate(simplify=False), slice(None))

    def _store_initial(self, variable: str, values: np.ndarray, mask) -> None:
        arr = self._initial.setdefault(variable, np.zeros(self.size))
        arr[mask] = values
        state = simulator.state
        if state.engine is not None and not state.dirty:
            from .translate import state_variable_name

            name = state_variable_name(self.celltype, variable)
            current = state.engine.get(self.group_name, name)
            current = np.array(current, dtype=float)
            current[mask] = values * _scale(self.celltype, variable)
            state.engine.set(self.group_name, name, current)

    def _get_view(self, selector, label=None):
        return PopulationView(self, selector, label)

    def index_of(self, ids) -> np.ndarray:
        """Population indices of global ids."""
        return np.asarray(ids, dtype=np.int64) - self.first_index_id
