"""``sim.NativeRNG``: random numbers from the engine's own generator.

PyNN scripts pass ``sim.NativeRNG(seed)`` to random distributions and connectors to mean
"the simulator's generator". Here that is the engine's counter-based Philox4x32-10, the
generator behind ``rand()``/``randn()`` in every kernel (:mod:`gpuspike.engine.rng`): call
``k`` of a NativeRNG draws element ``i`` as ``Philox(key(seed, stream), counter(k, draw,
i))``, so the numbers are the same on every engine and machine, do not depend on how many
processes draw (parallel safe: element ``i`` is the same number whoever draws it) and need
no state beyond the call count. ``seed=None`` takes the simulator's seed
(``sim.setup(seed=...)``) at the first draw.

Distributions (PyNN's names and parameters): ``uniform``, ``uniform_int``, ``normal``,
``normal_clipped``, ``normal_clipped_to_boundary``, ``exponential``, ``lognormal``,
``binomial``, ``poisson``; the others (``gamma``, ``vonmises``, ...) raise a
``NotImplementedError`` that names ``NumpyRNG`` as the way out. Clipped normals redraw
out-of-range values (PyNN's rule) from later counters of the same call.
"""

from __future__ import annotations

import numpy as np
from gpuspike.engine import rng as philox
from gpuspike.engine import rng_discrete
from pyNN import random as pynn_random

__all__ = ["NativeRNG"]

#: The Philox stream of NativeRNG draws (kernel streams are the network's objects).
NATIVE_STREAM = 0x4E415456  # "NATV"
#: Counter words per call: the first draw of a call, its redraws after it.
_MAX_REDRAWS = 1000

_SUPPORTED = ("uniform", "uniform_int", "normal", "normal_clipped",
              "normal_clipped_to_boundary", "exponential", "lognormal", "binomial", "poisson")


class NativeRNG(pynn_random.NativeRNG, pynn_random.WrappedRNG):
    """PyNN's ``NativeRNG`` for ``pyNN.gpuspike`` (module docstring)."""

    def __init__(self, seed: int | None = None, parallel_safe: bool = True) -> None:
        pynn_random.WrappedRNG.__init__(self, seed, parallel_safe)
        self.calls = 0

    def _key(self) -> int:
        if self.seed is None:
            from . import simulator

            self.seed = int(simulator.state.seed)
        return int(self.seed)

    def _uniform(self, n: int, draw: int = 0) -> np.ndarray:
        return philox.uniform(np, self._key(), NATIVE_STREAM, self.calls, draw,
                              np.arange(n, dtype=np.uint32), np.float64)

    def _normal(self, n: int, draw: int = 0) -> np.ndarray:
        return philox.normal(np, self._key(), NATIVE_STREAM, self.calls, draw,
                             np.arange(n, dtype=np.uint32), np.float64)

    def _next(self, distribution: str, n: int, parameters: dict) -> np.ndarray:
        if distribution not in _SUPPORTED:
            raise NotImplementedError(
                f"NativeRNG of pyNN.gpuspike draws {', '.join(_SUPPORTED)}, not "
                f"{distribution!r}; use NumpyRNG(seed) for that distribution")
        p = dict(parameters or {})
        try:
            return self._draw(distribution, int(n), p)
        finally:
            self.calls += 1

    def _draw(self, name: str, n: int, p: dict) -> np.ndarray:
        idx = np.arange(n, dtype=np.uint32)
        key, call = self._key(), self.calls
        if name == "uniform":
            return p["low"] + (p["high"] - p["low"]) * self._uniform(n)
        if name == "uniform_int":  # PyNN: integers in [low, high)
            low, high = int(p["low"]), int(p["high"])
            return np.minimum(low + np.floor(self._uniform(n) * (high - low)),
                              high - 1).astype(np.int64)
        if name == "exponential":  # PyNN's beta is the mean
            return -p["beta"] * np.log1p(-self._uniform(n))
        if name == "lognormal":
            return np.exp(p["mu"] + p["sigma"] * self._normal(n))
        if name == "binomial":
            return rng_discrete.binomial(np, key, NATIVE_STREAM, call, 0, idx, p["n"], p["p"])
        if name == "poisson":
            return rng_discrete.poisson(np, key, NATIVE_STREAM, call, 0, idx, p["lambda_"])
        values = p["mu"] + p["sigma"] * self._normal(n)
        if name == "normal":
            return values
        low, high = p.get("low", -np.inf), p.get("high", np.inf)
        if name == "normal_clipped_to_boundary":
            return np.clip(values, low, high)
        bad = np.flatnonzero((values < low) | (values > high))
        for draw in range(1, _MAX_REDRAWS + 1):
            if not bad.size:
                return values
            values[bad] = p["mu"] + p["sigma"] * self._normal(n, draw)[bad]
            bad = bad[(values[bad] < low) | (values[bad] > high)]
        raise ValueError(f"normal_clipped({p}): more than {_MAX_REDRAWS} redraws; check low "
                         "and high against mu and sigma")

    def permutation(self, arr: np.ndarray) -> np.ndarray:
        """``arr`` in a random order (sorting uniform keys of one call)."""
        arr = np.asarray(arr)
        keys = self._uniform(len(arr))
        self.calls += 1
        return arr[np.argsort(keys, kind="stable")]

    def choice(self, a, size=None, replace: bool = True) -> np.ndarray:
        """``size`` elements of ``a`` (an array, or ``range(a)`` for an int)."""
        arr = np.arange(a) if np.isscalar(a) else np.asarray(a)
        n = 1 if size is None else int(np.prod(size))
        if replace:
            picks = arr[np.minimum((self._uniform(n) * len(arr)).astype(np.int64),
                                   len(arr) - 1)]
            self.calls += 1
        else:
            if n > len(arr):
                raise ValueError("cannot take a larger sample than the population without "
                                 "replacement")
            picks = self.permutation(arr)[:n]
        return picks[0] if size is None else picks.reshape(size)
