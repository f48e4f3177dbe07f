"""Gradient clipping against adjoint surges: AutoClip per parameter tensor.

EventProp's adjoints grow multiplicatively at every spike of a recurrent network (each
spike scales ``lambda_V`` by ``1 + (theta - v_reset)/(J - u)`` and feeds it back through
the recurrent weights), so a single example can return a gradient 10^3-10^5 times the
usual one. Adam's step after such a surge is ~3 lr in the surge's direction for every
entry it touches, and a few surges in a row drive the recurrent weights into runaway
excitation (measured on FSDD: hidden gradients 1e-4 -> 14 within 20 batches, then
firing doubled and accuracy collapsed).

AutoClip (Seetharaman et al. 2020, "AutoClip: adaptive gradient clipping for source
separation networks") clips to a percentile of the gradient norms seen so far. Here each
tensor ``k`` keeps its own history ``H_k`` of (unclipped) norms and, from the
``warmup``-th step on::

    c_k = percentile(H_k, p),      g_k <- g_k * min(1, c_k / ||g_k||_2)

``p = 100`` never clips; ``p = 90`` clips the top tenth of steps to the 90th percentile.
The history is part of the optimiser state, so a resumed run clips as the original would.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import numpy as np
from gpuspike.bridge.errors import ModelError


def _array_module(a: Any) -> Any:
    if type(a).__module__.split(".")[0] == "cupy":
        return importlib.import_module("cupy")
    return np


class AutoClip:
    """Per-tensor percentile clipping of gradients (see the module docstring).

    Parameters
    ----------
    percentile : float
        ``p`` in ``(0, 100]``.
    warmup : int, optional
        Steps whose norms only enter the history (nothing is clipped before).
    window : int, optional
        Keep only the last ``window`` norms of each tensor (0: all of them).
    """

    def __init__(self, percentile: float, warmup: int = 20, window: int = 0) -> None:
        if not 0 < percentile <= 100:
            raise ModelError(f"the clipping percentile must lie in (0, 100], got {percentile}")
        if warmup < 1 or window < 0:
            raise ModelError(f"warmup must be >= 1 and window >= 0, got {warmup}, {window}")
        self.percentile = float(percentile)
        self.warmup = int(warmup)
        self.window = int(window)
        self.history: dict[str, list[float]] = {}
        self.clipped = 0

    def __call__(self, grads: Mapping[str, Any]) -> dict[str, Any]:
        """``grads`` with each tensor scaled down to its clip threshold where it exceeds it."""
        out = dict(grads)
        for name, g in grads.items():
            if g is None:
                continue
            xp = _array_module(g)
            norm = float(xp.sqrt(xp.sum(g.astype(xp.float64) ** 2)))
            hist = self.history.setdefault(name, [])
            if len(hist) >= self.warmup and np.isfinite(norm):
                limit = float(np.percentile(hist, self.percentile))
                if norm > limit > 0:
                    out[name] = g * (limit / norm)
                    self.clipped += 1
            if np.isfinite(norm):
                hist.append(norm)
                if self.window and len(hist) > self.window:
                    del hist[: len(hist) - self.window]
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"percentile": self.percentile, "warmup": self.warmup, "window": self.window,
                "clipped": self.clipped,
                "history": {n: list(h) for n, h in self.history.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.clipped = int(state.get("clipped", 0))
        self.history = {n: [float(x) for x in h] for n, h in state.get("history", {}).items()}
