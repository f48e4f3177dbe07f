"""Finite differences on the exact loss, with an explicit event-structure check.

The exact loss is smooth in the parameters only while no spike appears or disappears (and
the argmax of a max readout stays on the same piece). Every perturbed evaluation therefore
compares :meth:`ForwardResult.signature` and :attr:`LossTerms.structure` with the
unperturbed run; a parameter whose stencil changes them is reported as unstable (NaN)
instead of loosening the tolerance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .losses import Loss, evaluate_loss
from .reference import Gradients, Network, simulate, with_entry

#: 4-point central stencil, truncation error O(h^4)
_STEPS = (-2, -1, 1, 2)
_COEFS = np.array([1.0, -8.0, 8.0, -1.0]) / 12.0


@dataclass
class FDResult:
    weight: dict[str, np.ndarray]
    delay: dict[str, np.ndarray]
    n_unstable: int
    n_checked: int


def _structure(net: Network, inputs: Sequence[np.ndarray], T: float, loss: Loss):
    fwd = simulate(net, inputs, T)
    terms = evaluate_loss(fwd, loss)
    return terms.value, (fwd.signature(), terms.structure)


def finite_differences(net: Network, inputs: Sequence[np.ndarray], T: float, loss: Loss,
                       h: float = 1e-4, kinds: tuple[str, ...] = ("weight", "delay"),
                       projections: tuple[str, ...] | None = None) -> FDResult:
    """4-point central differences of the exact loss over every weight (and delay) entry."""
    _, base = _structure(net, inputs, T, loss)
    out = {"weight": {}, "delay": {}}
    n_unstable = n_checked = 0
    for proj in net.projections:
        if projections is not None and proj.name not in projections:
            continue
        for kind in kinds:
            arr = getattr(proj, kind)
            if arr is None:
                continue
            fd = np.full(arr.shape, np.nan)
            for idx in np.ndindex(arr.shape):
                x0 = arr[idx]
                if kind == "delay" and x0 < 2 * h:
                    continue        # a delay cannot go negative
                vals = []
                for s in _STEPS:
                    value, struct = _structure(with_entry(net, proj.name, kind, idx, x0 + s * h),
                                               inputs, T, loss)
                    if struct != base:
                        break
                    vals.append(value)
                n_checked += 1
                if len(vals) < len(_STEPS):
                    n_unstable += 1
                    continue
                fd[idx] = float(_COEFS @ np.array(vals)) / h
            out[kind][proj.name] = fd
    return FDResult(out["weight"], out["delay"], n_unstable, n_checked)


def compare(grads: Gradients, fd: FDResult) -> float:
    """Largest relative error over the stable entries: ``|g - fd| / max(|fd|, floor)``.

    ``floor`` is 1e-4 of the projection's largest ``|fd|``, so entries that are tiny by
    structure are judged against the projection's scale rather than against rounding noise.
    """
    worst = 0.0
    for kind in ("weight", "delay"):
        for name, ref in getattr(fd, kind).items():
            got = getattr(grads, kind)[name]
            ok = np.isfinite(ref)
            if not ok.any():
                continue
            floor = 1e-4 * max(np.abs(ref[ok]).max(), 1e-300)
            err = np.abs(got[ok] - ref[ok]) / np.maximum(np.abs(ref[ok]), floor)
            worst = max(worst, float(err.max()))
    return worst
