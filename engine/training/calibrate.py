"""A data-driven start: scale the input weights so that hidden layers begin at a target rate.

The firing of a hidden layer at initialisation is set by its fan-in times the input rate
times the mean input weight; between two encodings of the same speech those differ by 5x
and more, so a constant initial weight that starts one dataset at 14 spikes per neuron
starts another silent or saturated. From one batch of the user's data, for each hidden
population ``h`` (in the order the network lists them) with a target ``nu_h`` (spikes per
neuron and trial, the regulariser's ``nu``), every weight array from an input population
into ``h`` is multiplied by one factor ``s_h > 0`` chosen so that

    f_h(s_h) = mean spikes per neuron of h on the batch  ~=  nu_h   (within ``rtol``)

``f_h`` grows with ``s_h``; the search brackets the root by doubling or halving ``s`` from
1 and then bisects in ``log s``. Mean and spread of the initial weights scale together, so
the shape of the initial distribution is kept. Recurrent and output weights are untouched.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gpuspike.bridge.errors import ModelError

_log = logging.getLogger("gpuspike")


@dataclass(frozen=True)
class Calibration:
    """The outcome for one population: the factor, and the rates before and after."""

    population: str
    params: tuple[str, ...]
    scale: float
    rate_before: float
    rate_after: float
    target: float
    evaluations: int

    def as_dict(self) -> dict[str, Any]:
        return {"population": self.population, "params": list(self.params),
                "scale": self.scale, "spikes_before": self.rate_before,
                "spikes_after": self.rate_after, "target": self.target,
                "evaluations": self.evaluations}


def input_params(ir: Any, population: str) -> tuple[str, ...]:
    """Names of the weight arrays from input populations into ``population``."""
    return tuple(q.name + ".w" for q in ir.projections
                 if q.post == population and ir.population(q.pre).is_input)


def _array(model: Any, name: str) -> Any:
    """A learnt or a frozen weight array of the model."""
    return model.params[name] if name in model.params else model.frozen[name]


def _rate(model: Any, batch: Any, population: str, base: Mapping[str, Any],
          scale: float) -> float:
    """``f_h(scale)``: the population's spikes per neuron on ``batch``."""
    for p, w in base.items():
        _array(model, p)[...] = w * scale
    return float(model.evaluate(batch).spikes_per_neuron[population])


def calibrate_input_weights(model: Any, batch: Any, targets: Mapping[str, float], *,
                            rtol: float = 0.1, max_evaluations: int = 16,
                            scale_range: tuple[float, float] = (1e-3, 1e3)
                            ) -> list[Calibration]:
    """Scale ``model``'s input weights in place (module docstring); returns what it did.

    Parameters
    ----------
    model : EventPropNetwork
        Needs ``ir``, ``params`` and ``evaluate(batch)`` with ``spikes_per_neuron``.
    batch : Batch
        One batch of training data.
    targets : mapping
        Population -> target spikes per neuron and trial (populations fed by inputs).
    rtol : float, optional
        Relative tolerance on the rate.
    max_evaluations : int, optional
        Forward passes per population at most.
    scale_range : (float, float), optional
        Factors outside it mean the network cannot reach the target from these inputs.
    """
    out = []
    for name, target in targets.items():
        if target <= 0:
            raise ModelError(f"the target rate of {name!r} must be > 0, got {target}")
        names = input_params(model.ir, name)
        if not names:
            raise ModelError(f"no input projection into {name!r} to calibrate; populations "
                             "fed by inputs: " + ", ".join(sorted(
                                 {q.post for q in model.ir.projections
                                  if model.ir.population(q.pre).is_input})))
        base = {p: _array(model, p).copy() for p in names}
        evals = 1
        r0 = _rate(model, batch, name, base, 1.0)
        lo = hi = None  # (scale, rate) below / above the target
        s, r = 1.0, r0
        while evals < max_evaluations and abs(r - target) > rtol * target:
            if r < target:
                lo = (s, r)
            else:
                hi = (s, r)
            if lo is not None and hi is not None:
                s = math.sqrt(lo[0] * hi[0])
            else:
                s = s * 2.0 if r < target else s / 2.0
            if not scale_range[0] <= s <= scale_range[1]:
                break
            r = _rate(model, batch, name, base, s)
            evals += 1
        if abs(r - target) > rtol * target and (lo is None or hi is None):
            for p in names:
                _array(model, p)[...] = base[p]
            raise ModelError(
                f"cannot bring {name!r} to {target:g} spikes per neuron and trial by scaling "
                f"its input weights (x{s:g} gives {r:.3g}, x1 gives {r0:.3g}): the inputs are "
                "too sparse or too dense for this network; check the data's time unit and "
                "duration, or set the initial weights yourself (init_in)")
        out.append(Calibration(name, names, s, r0, r, float(target), evals))
        _log.info("initial input weights into %s scaled by %.3g: %.3g -> %.3g spikes per "
                  "neuron and trial (target %.3g)", name, s, r0, r, target)
    return out
