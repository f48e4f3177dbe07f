"""Surrogate derivatives of the spike function ``s = H(u - theta)`` (a choice, not a law).

In scale-free form, with ``x = (u - theta) / (theta - v_reset)`` (the distance to threshold
in units of the reset jump; ``x = u - 1`` for the canonical ``theta = 1``, ``v_reset = 0``)::

    fast_sigmoid  ds/du = 1 / ((beta |x| + 1)^2 (theta - v_reset))         Zenke & Ganguli
                  2018, SpyTorch's SHD tutorial (beta = 100)
    triangle      ds/du = gamma max(0, 1 - |x|) / (theta - v_reset)        Bellec et al. 2020,
                  e-prop's pseudo-derivative (gamma = 0.3)

Both rules use either (``rule_options``); the defaults are the papers'.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy
from gpuspike.bridge.errors import ModelError

KINDS = ("fast_sigmoid", "triangle")


@dataclass(frozen=True)
class Surrogate:
    """``kind`` (one of :data:`KINDS`) and its ``scale`` (beta for the fast sigmoid, gamma
    for the triangle)."""

    kind: str = "fast_sigmoid"
    scale: float = 100.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ModelError(f"unknown surrogate {self.kind!r}; choose from {KINDS}")
        if not self.scale > 0:
            raise ModelError(f"the surrogate's scale must be positive, got {self.scale}")

    def expr(self, u: sympy.Expr, theta: float, v_reset: float) -> sympy.Expr:
        """``ds/du`` at the voltage ``u`` (module docstring) as a SymPy expression."""
        jump = float(theta - v_reset)
        if not jump > 0:
            raise ModelError(f"a surrogate gradient needs theta > v_reset (theta {theta}, "
                             f"v_reset {v_reset})")
        x = (u - float(theta)) / jump
        if self.kind == "fast_sigmoid":
            d = float(self.scale) * sympy.Abs(x) + 1
            return 1 / (d * d * jump)
        tri = 1 - sympy.Abs(x)
        return sympy.Piecewise((float(self.scale) * tri / jump, sympy.Gt(tri, 0)), (0.0, True))

    def __call__(self, u, theta: float, v_reset: float):
        """The same derivative on arrays (NumPy), for references and checks."""
        import numpy as np

        jump = float(theta - v_reset)
        x = (np.asarray(u) - theta) / jump
        if self.kind == "fast_sigmoid":
            return 1.0 / ((self.scale * np.abs(x) + 1.0) ** 2 * jump)
        return self.scale * np.maximum(0.0, 1.0 - np.abs(x)) / jump


#: Each rule's surrogate by default (the papers': SpyTorch for BPTT, Bellec et al. for e-prop)
DEFAULT = {"bptt": Surrogate("fast_sigmoid", 100.0), "eprop": Surrogate("triangle", 0.3)}
