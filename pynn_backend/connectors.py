"""Vectorised connectors of ``pyNN.gpuspike`` (PyNN's own loop over connections in Python).

PyNN's ``FixedTotalNumberConnector`` draws one connection per Python iteration, which
takes minutes for the 3e8 synapses of the cortical microcircuit. This one draws the same
law at once: ``n`` independent (pre, post) pairs, uniform over the projection, i.e. a
multinomial number of connections per pre-synaptic neuron and uniform targets, grouped by
pre-synaptic neuron (the engine's row order, so that building its rows needs no sort).
Synaptic parameters given as numbers or as a ``RandomDistribution`` are drawn for all
connections in one call; anything else (arrays, functions of distance) falls back to
PyNN's per-connection evaluation.
"""

from __future__ import annotations

import numpy as np
from pyNN import connectors
from pyNN.random import NumpyRNG, RandomDistribution

__all__ = ["FixedTotalNumberConnector"]


class FixedTotalNumberConnector(connectors.FixedTotalNumberConnector):
    __doc__ = connectors.FixedTotalNumberConnector.__doc__

    def connect(self, projection):
        if (not self.with_replacement or not isinstance(self.n, (int, np.integer))
                or self.allow_self_connections == "NoMutual"
                or not hasattr(projection, "_add_connections")):
            return super().connect(projection)
        n_pre, n_post = projection.pre.size, projection.post.size
        n = int(self.n)
        if n and (n_pre == 0 or n_post == 0):
            raise ValueError("FixedTotalNumberConnector: cannot connect empty populations")
        # one seed from the connector's rng keeps runs reproducible under PyNN's seeding;
        # numpy's Generator then draws the 3e8 numbers of a full-scale network in seconds
        seed = int(self.rng.next(1, "uniform_int", {"low": 0, "high": 2**31 - 1})[0])
        gen = np.random.default_rng(seed)
        counts = gen.multinomial(n, np.full(n_pre, 1.0 / n_pre)) if n_pre else np.zeros(0)
        pre = np.repeat(np.arange(n_pre, dtype=np.int64), counts)
        post = gen.integers(0, n_post, size=n, dtype=np.int64)
        if not self.allow_self_connections and projection.pre == projection.post:
            bad = np.flatnonzero(pre == post)
            while bad.size:  # redraw the target of an autapse (with n_post > 1)
                post[bad] = gen.integers(0, n_post, size=bad.size)
                bad = bad[pre[bad] == post[bad]]
        projection._add_connections(pre, post, connection_values(self, projection, pre, post))


#: distributions drawn with numpy's Generator (PyNN's NumpyRNG uses the legacy
#: RandomState, 4x slower for normals): same law, another stream seeded from the rng
_FAST = {"normal": ("mu", "sigma"), "normal_clipped": ("mu", "sigma", "low", "high"),
         "uniform": ("low", "high")}


def draw(dist: RandomDistribution, n: int) -> np.ndarray:
    """``n`` values of ``dist`` (PyNN's ``normal_clipped`` redraws values outside
    ``[low, high]``, and so does this)."""
    if type(dist.rng) is not NumpyRNG or dist.name not in _FAST:
        return np.asarray(dist.next(n), dtype=float).reshape(-1)
    p = dist.parameters
    gen = np.random.default_rng(
        int(dist.rng.next(1, "uniform_int", {"low": 0, "high": 2**31 - 1})[0]))
    if dist.name == "uniform":
        return gen.uniform(p["low"], p["high"], size=n)
    values = gen.normal(p["mu"], p["sigma"], size=n)
    if dist.name == "normal_clipped":
        low, high = p.get("low", -np.inf), p.get("high", np.inf)
        bad = np.flatnonzero((values < low) | (values > high))
        for _ in range(1000):
            if not bad.size:
                break
            values[bad] = gen.normal(p["mu"], p["sigma"], size=bad.size)
            bad = bad[(values[bad] < low) | (values[bad] > high)]
        else:
            raise ValueError(f"{dist}: too many redraws; check low and high")
    return values


def connection_values(connector, projection, pre: np.ndarray,
                      post: np.ndarray) -> dict[str, np.ndarray]:
    """Every synaptic parameter of the connections ``(pre, post)`` (native names and
    units), drawn for all connections at once where the value is a number or a
    distribution, and checked as PyNN's connectors check them."""
    space = connector._parameters_from_synapse_type(projection)
    n = pre.size
    out = {}
    for name, value in space.items():
        base = value.base_value
        if value.is_homogeneous:
            out[name] = np.full(n, float(value.evaluate(simplify=True)))
        elif isinstance(base, RandomDistribution) and not value.operations:
            out[name] = draw(base, n)
        else:
            full = np.asarray(value.evaluate(simplify=False), dtype=float)
            out[name] = np.broadcast_to(full, (projection.pre.size,
                                               projection.post.size))[pre, post].copy()
    syn = projection.synapse_type
    if connector.safe and hasattr(syn, "parameter_checks"):
        for parameter, check in syn.parameter_checks.items():
            native = syn.translations[parameter]["translated_name"]
            if native in out and n:
                check(out[native], projection)
    return out
