"""Ready-made EventProp networks: input -> LIF hidden (optionally recurrent) -> LI/LIF output.

Defaults follow mlGeNN's examples (EVENTPROP.md §2.5): tau_m = 20 ms, tau_s = 5 ms,
theta = 1, v_reset = 0, no refractory period (``t_ref``: BPTT and e-prop), weights drawn
from normal distributions ``N(mean, std)`` per projection.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from gpuspike.bridge.adjoint import CanonicalLIF
from gpuspike.bridge.training_ir import (
    SPIKE_LOSSES,
    EventPropIR,
    LossSpec,
    TrainPopulation,
    TrainProjection,
)


@dataclass(frozen=True)
class LayeredConfig:
    """A layered network: sizes, time constants, grid, loss and weight initialisation.

    ``init`` maps ``"in->hidden"``, ``"hidden->hidden"``, ``"hidden->out"`` to the (mean,
    std) of the normal distribution of initial weights; ``delay_max`` (seconds, 0: none)
    adds learnable input delays drawn uniformly from ``[0, delay_max]``.
    """

    n_in: int
    n_hidden: int
    n_out: int
    recurrent: bool = False
    dt: float = 1e-3
    n_steps: int = 20
    tau_m: float = 20e-3
    tau_s: float = 5e-3
    theta: float = 1.0
    loss: LossSpec = field(default_factory=LossSpec)
    max_spikes: int = 500
    init: Mapping[str, tuple[float, float]] = field(default_factory=lambda: {
        "in->hidden": (0.078, 0.045), "hidden->hidden": (0.0, 0.02),
        "hidden->out": (0.2, 0.37)})
    delay_max: float = 0.0
    learn_delays: bool = True
    #: ALIF hidden neurons (adaptive threshold ``theta + beta_a a``; BPTT and e-prop):
    #: ``tau_a`` in seconds, ``None`` for LIF
    tau_a: float | None = None
    beta_a: float = 0.0
    #: refractory period of the hidden neurons in seconds (BPTT and e-prop; 0: none)
    t_ref: float = 0.0


def layered_ir(cfg: LayeredConfig) -> EventPropIR:
    """The :class:`EventPropIR` of a layered network."""
    lif = CanonicalLIF(cfg.tau_m, cfg.tau_s, cfg.theta, 0.0)
    hidden = CanonicalLIF(cfg.tau_m, cfg.tau_s, cfg.theta, 0.0, tau_a=cfg.tau_a,
                          beta_a=cfg.beta_a if cfg.tau_a is not None else 0.0,
                          t_ref=cfg.t_ref)
    spiking_out = cfg.loss.kind in SPIKE_LOSSES
    out = lif if spiking_out else CanonicalLIF(cfg.tau_m, cfg.tau_s, None, None)
    pops = (TrainPopulation("in", cfg.n_in), TrainPopulation("hidden", cfg.n_hidden, hidden),
            TrainPopulation("out", cfg.n_out, out))
    max_d = int(np.ceil(cfg.delay_max / cfg.dt)) if cfg.delay_max > 0 else 0
    projs = [TrainProjection("in", "hidden", True, max_d, max_d > 0 and cfg.learn_delays)]
    if cfg.recurrent:
        projs.append(TrainProjection("hidden", "hidden"))
    projs.append(TrainProjection("hidden", "out"))
    return EventPropIR(pops, tuple(projs), "out", cfg.loss, cfg.dt, cfg.n_steps, cfg.max_spikes)


def initial_params(ir: EventPropIR, init: Mapping[str, tuple[float, float]], seed: int = 0,
                   delay_max: float = 0.0) -> dict[str, np.ndarray]:
    """Normal initial weights per projection (and uniform delays in ``[0, delay_max]``)."""
    rng = np.random.default_rng(seed)
    params = {}
    for q in ir.projections:
        shape = (ir.population(q.post).size, ir.population(q.pre).size)
        mean, std = init.get(q.name, (0.0, 1.0 / np.sqrt(shape[1])))
        params[q.name + ".w"] = rng.normal(mean, std, shape)
        if q.has_delays:
            params[q.name + ".d"] = rng.uniform(0.0, delay_max, shape)
    return params
