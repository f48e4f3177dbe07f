"""The IR of a trainable network: populations, projections and the loss, validated.

A network is an input population (spike source, one channel per neuron), any number of
spiking LIF populations (feed-forward or recurrent) and one output population: leaky
integrators (``CanonicalLIF.theta is None``) for voltage losses, LIF for first-spike losses.
Projections are dense weight matrices ``w[post, pre]`` with optional integer delays
``d[post, pre]`` in steps (a spike emitted in step n arrives in step n + d).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .adjoint import CanonicalLIF
from .errors import ModelError, UnsupportedFeature

#: Losses on the output voltage (LI outputs) and on output first-spike times (LIF outputs).
VOLTAGE_LOSSES = ("avg_ce", "sum_ce", "exp_avg_ce", "max_ce", "per_timestep_ce", "mse")
SPIKE_LOSSES = ("ttfs_ce", "ttfs_dmse")


@dataclass(frozen=True)
class TrainPopulation:
    """A population; ``neuron`` is ``None`` for the input spike source."""

    name: str
    size: int
    neuron: CanonicalLIF | None = None

    @property
    def is_input(self) -> bool:
        return self.neuron is None


@dataclass(frozen=True)
class TrainProjection:
    """Dense synapses ``pre -> post``; which of weight and delay are learnt.

    ``max_delay_steps`` bounds the delays (0: no delays). Learnt delays are floats in steps,
    rounded to the nearest step when used and clamped to ``[0, max_delay_steps]``.
    """

    pre: str
    post: str
    learn_weight: bool = True
    max_delay_steps: int = 0
    learn_delay: bool = False

    @property
    def name(self) -> str:
        return f"{self.pre}->{self.post}"

    @property
    def has_delays(self) -> bool:
        return self.max_delay_steps > 0


@dataclass(frozen=True)
class LossSpec:
    """The loss (EVENTPROP.md §1.6) and the spike-count regulariser.

    ``kind``: one of VOLTAGE_LOSSES or SPIKE_LOSSES. ``tau_w``: weighting time of
    ``exp_avg_ce`` (default the trial length). ``tau0, tau1, alpha``: TTFS cross-entropy
    constants; ``delta``: the ΔMSE margin. ``reg_nu``: target spikes per hidden neuron and
    trial; ``reg_upper``/``reg_lower``: strengths above and below it (0 disables).
    """

    kind: str = "avg_ce"
    tau_w: float | None = None
    tau0: float = 0.5e-3
    tau1: float = 6.4e-3
    alpha: float = 3e-3
    delta: float = 1e-3
    reg_nu: float = 14.0
    reg_upper: float = 0.0
    reg_lower: float = 0.0


@dataclass(frozen=True)
class EventPropIR:
    """A validated trainable network on a grid of ``n_steps`` steps of ``dt``."""

    populations: tuple[TrainPopulation, ...]
    projections: tuple[TrainProjection, ...]
    output: str
    loss: LossSpec = field(default_factory=LossSpec)
    dt: float = 1e-3
    n_steps: int = 1000
    max_spikes: int = 500
    grazing_eps: float = 0.0
    #: how the jump's ``tau_m du/dt`` at a crossing is taken: ``"interpolated"`` (the
    #: crossing inside the step, exact propagator) or ``"sample"`` (``J - u`` on the grid
    #: after it, as mlGeNN). See :mod:`gpuspike.engine.eventprop.crossing`.
    crossing: str = "interpolated"

    def population(self, name: str) -> TrainPopulation:
        for p in self.populations:
            if p.name == name:
                return p
        raise ModelError(f"no population {name!r}; have {[p.name for p in self.populations]}")

    @property
    def input(self) -> TrainPopulation:
        return next(p for p in self.populations if p.is_input)

    def __post_init__(self) -> None:
        names = [p.name for p in self.populations]
        if len(set(names)) != len(names):
            raise ModelError(f"population names must be unique: {names}")
        inputs = [p for p in self.populations if p.is_input]
        if len(inputs) != 1:
            raise UnsupportedFeature(
                f"EventProp training needs exactly one input spike source, got {len(inputs)}; "
                "merge input groups into one")
        out = self.population(self.output)
        if out.is_input:
            raise ModelError("the output population cannot be the input")
        kind = self.loss.kind
        if kind not in VOLTAGE_LOSSES + SPIKE_LOSSES:
            raise ModelError(f"unknown loss {kind!r}; choose from {VOLTAGE_LOSSES + SPIKE_LOSSES}")
        if kind in VOLTAGE_LOSSES and out.neuron.spiking:
            raise UnsupportedFeature(
                f"loss {kind!r} reads the output voltage: make {self.output!r} a leaky "
                "integrator (no threshold/reset), or use a first-spike loss (ttfs_ce)")
        if kind in SPIKE_LOSSES and not out.neuron.spiking:
            raise UnsupportedFeature(
                f"loss {kind!r} needs output spikes: give {self.output!r} a threshold and "
                "reset, or use a voltage loss (avg_ce, exp_avg_ce, ...)")
        for p in self.populations:
            if not p.is_input and p.name != self.output and not p.neuron.spiking:
                raise UnsupportedFeature(
                    f"hidden population {p.name!r} does not spike; only the output may be a "
                    "leaky integrator")
        for q in self.projections:
            pre, post = self.population(q.pre), self.population(q.post)
            if post.is_input:
                raise ModelError(f"projection {q.name} targets the input source")
            if q.pre == self.output and not pre.neuron.spiking:
                raise ModelError(f"projection {q.name} starts at a non-spiking readout")
            if q.learn_delay and not q.has_delays:
                raise ModelError(f"projection {q.name} learns delays but max_delay_steps = 0")
        if self.crossing not in ("interpolated", "sample"):
            raise ModelError(f"crossing must be 'interpolated' or 'sample', not "
                             f"{self.crossing!r}")
        if self.n_steps < 1 or self.dt <= 0 or self.max_spikes < 1:
            raise ModelError("n_steps, dt and max_spikes must be positive")
