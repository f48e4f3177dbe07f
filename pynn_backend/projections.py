"""Projection of ``pyNN.gpuspike``: PyNN's connectors produce the connection lists.

Connections are host arrays in PyNN's order (pre index, post index, and one array per
attribute in PyNN units). :mod:`.translate` splits them by (pre population, post
population) into engine synapse groups with explicit lists; ``set`` after the engine is
built writes the engine's weights directly. Plastic weights are read back from the engine
before they are shown.
"""

from __future__ import annotations

import numpy as np
from gpuspike.bridge.errors import UnsupportedFeature
from pyNN import common, connectors
from pyNN.core import ezip  # noqa: F401  (PyNN's helper, kept for API parity)
from pyNN.space import Space

from . import simulator
from .synapse_models import MULTI_QUANTAL_STATE


def synapse_state_names(synapse_type) -> dict[str, str]:
    """The state variables a synapse type lets ``Projection.initialize`` set and ``get``
    read: PyNN's name -> the engine's."""
    return MULTI_QUANTAL_STATE if type(synapse_type).__name__ == "MultiQuantalSynapse" else {}


class Connection(common.Connection):
    """One connection, a view on the projection's arrays."""

    def __init__(self, projection, index):
        self._projection = projection
        self._index = index

    @property
    def presynaptic_index(self):
        return int(self._projection._pre_idx[self._index])

    @property
    def postsynaptic_index(self):
        return int(self._projection._post_idx[self._index])

    def _get(self, name):
        return float(self._projection._attribute(name)[self._index])

    def _set(self, name, value):
        self._projection._set_values(name, np.array([self._index]), np.array([value]))

    weight = property(lambda self: self._get("weight"), lambda self, v: self._set("weight", v))
    delay = property(lambda self: self._get("delay"), lambda self, v: self._set("delay", v))

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self._get(name)

    def as_tuple(self, *attribute_names):
        return tuple(getattr(self, name) for name in attribute_names)


class Projection(common.Projection):
    __doc__ = common.Projection.__doc__
    _simulator = simulator

    def __init__(self, presynaptic_population, postsynaptic_population, connector,
                 synapse_type=None, source=None, receptor_type=None, space=Space(),
                 label=None):
        common.Projection.__init__(self, presynaptic_population, postsynaptic_population,
                                   connector, synapse_type, source, receptor_type, space,
                                   label)
        state = simulator.state
        self.index = len(state.projections)
        self._chunks: list[tuple] = []
        self._pre_idx = np.zeros(0, np.int64)
        self._post_idx = np.zeros(0, np.int64)
        self._attrs: dict[str, np.ndarray] = {}
        #: synaptic state set with initialize(), PyNN's names (values per connection)
        self._initial_state: dict[str, np.ndarray] = {}
        if (type(connector) is connectors.OneToOneConnector
                and self.pre.size == 1 and self.post.size == 1):
            # PyNN 0.13.0's OneToOneConnector builds its map from `i == j` on scalars, which
            # numpy >= 2.1 rejects for 1x1 projections; all-to-all gives the same connection.
            connector = connectors.AllToAllConnector(safe=connector.safe,
                                                     callback=connector.callback)
        connector.connect(self)
        self._finish()
        state.projections.append(self)
        state.mark_dirty()

    # ------------------------------------------------------------------ building
    def _convergent_connect(self, presynaptic_indices, postsynaptic_index,
                            location_selector=None, **connection_parameters):
        if location_selector is not None:
            raise NotImplementedError("pyNN.gpuspike has no multicompartment neurons")
        pre = np.asarray(presynaptic_indices, dtype=np.int64).reshape(-1)
        n = pre.size
        params = {name: np.broadcast_to(np.asarray(value, dtype=float), (n,)).copy()
                  if np.ndim(value) == 0 or np.size(value) != n
                  else np.asarray(value, dtype=float).reshape(-1)
                  for name, value in connection_parameters.items()}
        self._chunks.append((pre, np.full(n, int(postsynaptic_index), np.int64), params))

    def _add_connections(self, pre: np.ndarray, post: np.ndarray,
                         params: dict[str, np.ndarray]) -> None:
        """Many connections at once (vectorised connectors: :mod:`.connectors`): indices
        into ``pre``/``post`` and one array per native parameter."""
        self._chunks.append((np.asarray(pre, np.int64), np.asarray(post, np.int64),
                             {k: np.asarray(v, dtype=float) for k, v in params.items()}))

    def _finish(self) -> None:
        if not self._chunks:
            names = self.synapse_type.get_native_names() if hasattr(
                self.synapse_type, "get_native_names") else ("weight", "delay")
            self._attrs = {name: np.zeros(0) for name in names}
        else:
            single = len(self._chunks) == 1  # a vectorised connector: no copies
            join = (lambda parts: parts[0]) if single else np.concatenate
            self._pre_idx = join([c[0] for c in self._chunks])
            self._post_idx = join([c[1] for c in self._chunks])
            names = self._chunks[0][2].keys()
            self._attrs = {name: join([c[2][name] for c in self._chunks]) for name in names}
            self._chunks = []
        if self._is_stdp:
            self._stdp_weight = self._attrs["weight"].copy()

    def __len__(self):
        return int(self._pre_idx.size)

    @property
    def connections(self):
        return [Connection(self, k) for k in range(len(self))]

    @staticmethod
    def _static_synapse_class():
        from .standardmodels import StaticSynapse

        return StaticSynapse()

    def __getitem__(self, i):
        if isinstance(i, (int, np.integer)):
            if i < 0:
                i += len(self)
            if not 0 <= i < len(self):
                raise IndexError(i)
            return Connection(self, int(i))
        if isinstance(i, slice):
            return [Connection(self, k) for k in range(*i.indices(len(self)))]
        raise TypeError(f"cannot index a projection with {type(i).__name__}")

    # ------------------------------------------------------------------ attributes
    @property
    def engine_parts(self):
        """Set by :mod:`.translate`: [(synapse group name, connection indices)]."""
        return getattr(self, "_engine_parts", [])

    @property
    def _is_stdp(self) -> bool:
        return type(self.synapse_type).__name__ == "STDPMechanism"

    def _sync_from_engine(self) -> None:
        """Read weights learned on the engine back into the host arrays.

        STDP synapses have two: ``weight``, the weight as of the last pre-synaptic spike
        (what NEST shows and what PyNN reads), and ``_stdp_weight``, which also holds the
        facilitation by post-synaptic spikes since then (NEST applies it at the next pre
        spike); both survive a rebuild or ``reset()``.
        """
        state = simulator.state
        if state.engine is None or not getattr(self.synapse_type, "plastic", False):
            return
        for group, idx in self.engine_parts:
            try:
                w = state.engine.get(group, "weight")
            except KeyError:
                continue
            self._attrs["weight"][idx] = w / self._weight_scale
            if self._is_stdp:
                self._stdp_weight[idx] = state.engine.get(group, "w_stdp") / self._weight_scale

    def _sync_pending(self) -> None:
        """Host STDP weights as NEST shows them now (:meth:`_nest_view`)."""
        view = self._nest_view()
        if view is not None:
            self._attrs["weight"][:], self._stdp_weight[:] = view

    def _nest_view(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(weight, running weight) of an STDP projection with the updates of the
        pre-synaptic spikes still in flight: what NEST shows now (None: nothing pending).

        NEST updates a weight when the pre-synaptic spike is sent, gpuspike when it
        arrives (a delay ``d`` later, with the post spikes the synapse has seen by then:
        the same pairs, see :mod:`.synapse_models`). Every spike sent by now and every
        post spike NEST's synapse has seen by now is already in the engine's rings, and
        nothing sent later arrives within ``round(f d / dt) + 1`` steps (``f``: the
        dendritic delay fraction; a spike-array spike at the current time is emitted in
        the next step). So each synapse's weight that many steps ahead, on a look-ahead
        that is then undone (:meth:`State.peek`), is NEST's weight now.
        """
        state = simulator.state
        if state.engine is None or not self._is_stdp or not len(self) or state.step == 0:
            return None
        key = (id(state.engine), state.step)
        if getattr(self, "_pending_key", None) == key:
            return self._pending_values
        self._sync_from_engine()
        fraction = self._attrs["dendritic_delay_fraction"]
        ahead = np.where(fraction > 0, np.round(
            fraction * np.round(self._attrs["delay"] / state.dt)).astype(np.int64) + 1, 0)
        weight, w_stdp = self._attrs["weight"].copy(), self._stdp_weight.copy()
        parts = [(group, idx, ahead[idx]) for group, idx in self.engine_parts]

        def probe(k: int) -> None:
            for group, idx, steps in parts:
                now = steps == k
                if now.any():
                    scale = self._weight_scale
                    weight[idx[now]] = state.engine.get(group, "weight")[now] / scale
                    w_stdp[idx[now]] = state.engine.get(group, "w_stdp")[now] / scale

        state.peek(int(ahead.max(initial=0)), probe)
        self._pending_key, self._pending_values = key, (weight, w_stdp)
        return weight, w_stdp

    def _set_initial_value_array(self, variable, initial_value):
        """``initialize(variable=...)``: the synapse model's state, per connection."""
        names = synapse_state_names(self.synapse_type)
        if variable not in names:
            raise UnsupportedFeature(
                f"pyNN.gpuspike: Projection.initialize({variable}=...) is not supported for "
                f"{type(self.synapse_type).__name__}; only MultiQuantalSynapse has state "
                "to set (a, u)")
        values = np.broadcast_to(np.asarray(initial_value.evaluate(simplify=True), float),
                                 (len(self),)).copy()
        self._initial_state[variable] = values
        state = simulator.state
        if state.engine is None or state.dirty:
            return
        for group, idx in self.engine_parts:
            state.engine.set(group, names[variable], values[idx])

    def _synapse_state(self, name: str) -> np.ndarray | None:
        """The engine's current value of a state variable (None: not one, or not built)."""
        engine_name = synapse_state_names(self.synapse_type).get(name)
        state = simulator.state
        if engine_name is None:
            return None
        if state.engine is None or state.dirty:
            return self._initial_state.get(name, self._attrs["n" if name == "a" else "U"])
        out = np.zeros(len(self))
        for group, idx in self.engine_parts:
            out[idx] = state.engine.get(group, engine_name)
        return out

    def _attribute(self, name: str) -> np.ndarray:
        current = self._synapse_state(name)
        if current is not None:
            return current
        self._sync_from_engine()
        if name in ("weight", "weights"):
            self._sync_pending()
        if name.endswith("s") and name not in self._attrs and name[:-1] in self._attrs:
            name = name[:-1]
        return self._attrs[name]

    def _get_attributes_as_list(self, names):
        cols = []
        for name in names:
            if name == "presynaptic_index":
                cols.append(self._pre_idx)
            elif name == "postsynaptic_index":
                cols.append(self._post_idx)
            else:
                cols.append(self._attribute(name))
        return [tuple(row) for row in zip(*[c.tolist() for c in cols])] if cols else []

    def _get_attributes_as_arrays(self, names, multiple_synapses="sum"):
        out = []
        for name in names:
            values = np.full((self.pre.size, self.post.size), np.nan)
            data = self._attribute(name)
            if multiple_synapses == "last":
                values[self._pre_idx, self._post_idx] = data
            else:
                op = self.MULTI_SYNAPSE_OPERATIONS[multiple_synapses]
                for i, j, x in zip(self._pre_idx, self._post_idx, data):
                    values[i, j] = x if np.isnan(values[i, j]) else op(values[i, j], x)
            out.append(values)
        return out

    def _set_attributes(self, parameter_space):
        for name, value in parameter_space.items():
            if not hasattr(value, "evaluate"):
                full = np.asarray(value, dtype=float)
            elif getattr(value, "is_homogeneous", False):
                full = np.asarray(value.evaluate(simplify=True), dtype=float)
            else:
                full = np.asarray(value.evaluate(simplify=False), dtype=float)
            if full.ndim == 0:
                new = np.full(len(self), float(full))
            else:
                new = np.broadcast_to(full, (self.pre.size, self.post.size))[
                    self._pre_idx, self._post_idx]
            self._set_values(name, np.arange(len(self)), new)

    def _set_values(self, name: str, idx: np.ndarray, values: np.ndarray) -> None:
        view = self._nest_view() if name == "weight" else None
        self._sync_from_engine()
        self._attrs[name][idx] = values
        if name == "weight" and self._is_stdp:
            # NOTE: drops the facilitation pending since the last pre spike, which NEST
            # would still add at the next one; and the pre spikes in flight (which NEST
            # has already counted) will still update the new weight when they arrive
            self._stdp_weight[idx] = values
            if view is not None:  # read back as set until the next run
                view[0][idx] = values
                view[1][idx] = values
        state = simulator.state
        if state.engine is None or state.dirty:
            return
        from .translate import push_projection_attribute

        if not push_projection_attribute(self, name):
            state.mark_dirty()

    @property
    def _weight_scale(self) -> float:
        return getattr(self, "_weight_factor", 1.0)
