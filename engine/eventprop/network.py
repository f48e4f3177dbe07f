"""A trainable EventProp network on any engine (the training loop's model).

Holds the learnable arrays (``"<pre>-><post>.w"``: weights ``w[post, pre]``;
``"<pre>-><post>.d"``: delays in the time unit of ``dt`` (seconds from the CLI and Brian2,
ms from PyNN), rounded to steps when used), runs forward, loss and
backward on a :class:`~gpuspike.engine.training.protocol.Batch`, and keeps the per-neuron
spike counts of the epoch for weight lifting: after each epoch, every incoming learnt weight
of a hidden neuron that never fired is raised by ``lift`` (Nowotny et al. 2025's remedy for
silent neurons, which exact gradients cannot revive).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

import numpy as np
from gpuspike.bridge.errors import ModelError, RingBufferOverflow, UnsupportedFeature
from gpuspike.bridge.training_ir import SPIKE_LOSSES, EventPropIR
from gpuspike.engine.backend import Backend, select_backend
from gpuspike.engine.training.protocol import Batch, StepResult

from .losses import LossTerms, spike_count_reg, spike_loss, voltage_loss
from .passes import ForwardTape, Gradients, TrainingPrograms, ring_limit

#: Spike-ring slots per neuron at first; a ring that overflows is grown (to twice its size,
#: or 1.25 x the largest count) and the batch's forward pass rerun, up to ``max_spikes``.
#: Neurons fire ~10-20 times per trial while a trial has 100-1000 steps, so sizing rings
#: by the largest count seen instead of by ``max_spikes`` cuts the tape's memory ~10-30x.
INITIAL_RING = 32


def _backend(engine: str | ModuleType) -> Backend:
    """The engine's backend; an array module (``numpy``/``cupy``) names its engine."""
    if isinstance(engine, ModuleType):
        engine = "cupy" if engine.__name__ == "cupy" else "numpy"
    return select_backend(engine)


class EventPropNetwork:
    """The :class:`~gpuspike.engine.training.protocol.Trainable` EventProp model.

    (:mod:`gpuspike.engine.rules` derives the BPTT and e-prop models from it.)

    Parameters
    ----------
    ir : EventPropIR
        The validated network.
    params : mapping
        Initial host arrays: ``"<proj>.w"`` for every projection, ``"<proj>.d"`` (same time
        unit as ``ir.dt``) for every projection with delays.
    engine : str or module
        ``"auto"``, ``"numpy"``, ``"cpp"``, ``"cupy"`` or an array module (``numpy`` or
        ``cupy``, naming that engine). The passes are the generated kernels of
        :mod:`.kernels` on that engine.
    threads : int, optional
        CPU threads of the ``cpp`` engine (default: ``$GPUSPIKE_THREADS`` or every core).
    bounds : mapping, optional
        Parameter name -> ``(low, high)``: scalars, or arrays of the parameter's shape (e.g.
        PyNN's sign per synapse), ``None`` for no bound. Kept by :meth:`clamp`, which runs
        at construction and after each epoch's weight lift; optimisers get them as their
        ``bounds`` (a projected update).
    dtype : numpy dtype
        Float type of states and parameters (float32 for speed, float64 for checks).
    lift : float
        Added after each epoch to the learnt input weights of hidden neurons that never
        fired during it (0 disables).
    masks : mapping, optional
        Projection name -> boolean ``(post, pre)`` array of the synapses that exist (sparse
        connectivity); absent synapses keep weight 0 and get no gradient.
    """

    #: the gradient rule (subclasses: ``"bptt"``, ``"eprop"``)
    rule = "eventprop"

    def __init__(self, ir: EventPropIR, params: Mapping[str, np.ndarray], *,
                 engine: str | ModuleType = "auto", dtype: Any = np.float32,
                 lift: float = 0.0, masks: Mapping[str, np.ndarray] | None = None,
                 threads: int | None = None,
                 bounds: Mapping[str, tuple[Any, Any]] | None = None) -> None:
        if self.rule == "eventprop":
            adaptive = [p.name for p in ir.populations if not p.is_input and p.neuron.adaptive]
            if adaptive:
                raise UnsupportedFeature(
                    f"EventProp's exact adjoint covers LIF neurons; {adaptive} have an adaptive "
                    "threshold (ALIF): train them with rule='bptt' or rule='eprop'")
            held = [p.name for p in ir.populations if not p.is_input and p.neuron.spiking
                    and p.neuron.refractory_steps(ir.dt)]
            if held:
                raise UnsupportedFeature(
                    f"EventProp's exact adjoint covers LIF neurons without a refractory "
                    f"period; {held} are refractory for at least one step: train them with "
                    "rule='bptt' or rule='eprop', or set the refractory period to 0 "
                    "(PyNN tau_refrac=0; Brian2: no refractory=)")
        self.ir = ir
        self.backend = _backend(engine)
        self.xp = self.backend.xp
        self.threads = threads
        self._programs: dict[tuple, TrainingPrograms] = {}
        self.dtype = np.dtype(dtype)
        self.lift = lift
        self.n_inputs = ir.input.size
        self.n_steps = ir.n_steps
        self.dt = ir.dt
        self.params: dict[str, Any] = {}
        self.frozen: dict[str, Any] = {}
        for q in ir.projections:
            shape = (ir.population(q.post).size, ir.population(q.pre).size)
            for suffix, learnt, needed in ((".w", q.learn_weight, True),
                                           (".d", q.learn_delay, q.has_delays)):
                if not needed:
                    continue
                key = q.name + suffix
                if key not in params:
                    raise ModelError(f"missing initial values for {key!r}")
                value = np.asarray(params[key], dtype=self.dtype)
                if value.shape != shape:
                    raise ModelError(f"{key!r} has shape {value.shape}, expected {shape} "
                                     "(post, pre)")
                (self.params if learnt else self.frozen)[key] = self.xp.asarray(value)
        self.masks = {}
        for name, mask in (masks or {}).items():
            mask = np.asarray(mask, dtype=bool)
            if name + ".w" not in self.params and name + ".w" not in self.frozen:
                raise ModelError(f"mask for unknown projection {name!r}")
            self.masks[name] = self.xp.asarray(mask.astype(self.dtype))
            self._get(name + ".w")[...] *= self.masks[name]
        self._epoch_counts: dict[str, Any] = {}
        self.last_tape: ForwardTape | None = None
        limit = ring_limit(ir)
        self.ring_capacity = {p.name: min(INITIAL_RING, limit) for p in ir.populations
                              if not p.is_input and p.neuron.spiking}
        self.ring_reruns = 0
        self.bounds: dict[str, tuple[Any, Any]] = {}
        for key, (lo, hi) in (bounds or {}).items():
            if key not in self.params:
                raise ModelError(f"bounds for {key!r}, which is not a learnt parameter "
                                 f"({sorted(self.params)})")
            self.bounds[key] = tuple(None if b is None else self.xp.asarray(b, dtype=self.dtype)
                                     for b in (lo, hi))
        self.clamp()

    def clamp(self) -> None:
        """Keep every bounded parameter within its :attr:`bounds`."""
        xp = self.xp
        for key, (lo, hi) in self.bounds.items():
            p = self.params[key]
            if lo is not None:
                xp.maximum(p, lo, out=p)
            if hi is not None:
                xp.minimum(p, hi, out=p)

    # -- parameters ------------------------------------------------------------------------
    def _get(self, key: str) -> Any:
        return self.params[key] if key in self.params else self.frozen[key]

    def weights(self) -> dict[str, Any]:
        return {q.name: self._get(q.name + ".w") for q in self.ir.projections}

    def delay_steps(self) -> dict[str, Any]:
        """Delays rounded to steps and clamped to ``[0, max_delay_steps]``."""
        xp = self.xp
        return {q.name: xp.clip(xp.rint(self._get(q.name + ".d") / self.dt), 0,
                                q.max_delay_steps).astype(xp.int64)
                for q in self.ir.projections if q.has_delays}

    # -- passes ----------------------------------------------------------------------------
    def _forward_loss(self, batch: Batch, raster_example: int | None = None
                      ) -> tuple[ForwardTape, LossTerms, Any]:
        xp = self.xp
        inputs = xp.asarray(batch.inputs, dtype=self.dtype)
        if inputs.shape[0] != self.n_steps or inputs.shape[2] != self.n_inputs:
            raise ModelError(
                f"batch inputs have shape {tuple(inputs.shape)}, the network expects "
                f"({self.n_steps}, batch, {self.n_inputs}); bin the data with the network's "
                "dt and n_steps")
        tape = self._taped_forward(inputs, raster_example, batch.spikes)
        spec, out = self.ir.loss, self.ir.population(self.ir.output).neuron
        labels = xp.asarray(batch.labels)
        if spec.kind in SPIKE_LOSSES:
            terms = spike_loss(xp, spec, tape.first_step, labels, self.dt, self.n_steps)
        else:
            terms = voltage_loss(xp, spec, tape.v_out, labels, self.dt, out.tau_m)
        return tape, terms, inputs

    def programs(self, batch: int) -> TrainingPrograms:
        """The compiled passes for batches of ``batch`` at the current tape capacities
        (compiled once per batch size and capacities; the C++ and CUDA builds are cached
        on disk as well)."""
        key = (batch, tuple(sorted(self.ring_capacity.items())))
        progs = self._programs.get(key)
        if progs is None:
            self._programs = {k: v for k, v in self._programs.items() if k[1] == key[1]}
            progs = self.make_programs(batch)
            self._programs[key] = progs
        return progs

    def make_programs(self, batch: int) -> TrainingPrograms:
        """New passes for batches of ``batch`` (a training rule's subclass makes its own)."""
        return TrainingPrograms(self.ir, self.backend, batch, self.ring_capacity, self.dtype,
                                self.threads)

    def forward(self, inputs: Any, raster_example: int | None = None) -> ForwardTape:
        """The forward pass on ``inputs`` (``(N, B, n_in)`` counts on the engine's array
        module): output trace, first spikes, spike counts and, for ``raster_example``, the
        spike raster of that example (from the tape)."""
        return self._taped_forward(self.xp.asarray(inputs, dtype=self.dtype), raster_example)

    def _taped_forward(self, inputs: Any, raster_example: int | None,
                       spikes: tuple | None = None) -> ForwardTape:
        """The forward pass with tapes sized by :attr:`ring_capacity`, grown and rerun on
        overflow (the pass is deterministic, so the rerun's tape is the one a tape of the
        full size would have given)."""
        limit = ring_limit(self.ir)
        while True:
            try:
                return self.programs(int(inputs.shape[1])).forward(
                    self.weights(), self.delay_steps(), inputs, raster_example, spikes)
            except RingBufferOverflow as err:
                name, most = getattr(err, "population", None), getattr(err, "most", None)
                cap = self.ring_capacity.get(name, limit)
                if most is None or cap >= limit:
                    raise
                if most > limit:
                    raise RingBufferOverflow(
                        f"population {name!r}: a neuron spiked {most} times in one trial, "
                        f"more than max_spikes={self.ir.max_spikes} allows; pass a larger "
                        f"max_spikes (e.g. {2 * most}), a shorter trial, or regularise the "
                        "firing rate") from err
                self.ring_capacity[name] = min(limit, max(2 * cap, -(-5 * most // 4)))
                self.ring_reruns += 1

    def gradients(self, batch: Batch) -> tuple[LossTerms, Gradients, ForwardTape]:
        """Loss terms and exact gradients of the mean loss over ``batch``."""
        tape, terms, inputs = self._forward_loss(batch)
        kick = None
        spec = self.ir.loss
        if spec.reg_upper or spec.reg_lower:
            kick = {name: spike_count_reg(c, spec, c.shape[0]) for name, c in tape.counts.items()
                    if name != self.ir.output}
        grads = self.programs(int(inputs.shape[1])).backward(self.weights(), tape, terms, kick)
        return terms, grads, tape

    def _result(self, batch: Batch, terms: LossTerms, tape: ForwardTape,
                grads: dict[str, Any] | None, skipped: int = 0) -> StepResult:
        xp = self.xp
        pred = _host(xp, terms.predictions)
        labels = _host(xp, xp.asarray(batch.labels))
        correct = int((pred == labels).sum()) if labels.ndim == 1 else 0
        spn = {name: float(c.mean()) for name, c in tape.counts.items()}
        return StepResult(float(terms.values.mean()), correct, batch.size, pred, grads, spn,
                          {"grazing_skipped": float(skipped)})

    def loss_and_grad(self, batch: Batch) -> StepResult:
        terms, g, tape = self.gradients(batch)
        self._check_finite(g)
        for name, c in tape.counts.items():
            total = c.sum(axis=0)
            self._epoch_counts[name] = self._epoch_counts.get(name, 0) + total
        grads = {}
        for q in self.ir.projections:
            mask = self.masks.get(q.name, 1.0)
            if q.name + ".w" in self.params:
                grads[q.name + ".w"] = g.weight[q.name] * mask
            if q.name + ".d" in self.params:
                grads[q.name + ".d"] = g.delay[q.name] * mask
        return self._result(batch, terms, tape, grads, g.skipped)

    def _check_finite(self, g: Gradients) -> None:
        """One reduction per gradient array, once per batch: a non-finite gradient stops
        training with the arrays it hit, instead of silently poisoning the weights."""
        xp = self.xp
        bad = [f"{name}.{kind}" for kind, grads in (("w", g.weight), ("d", g.delay))
               for name, a in grads.items() if not bool(xp.isfinite(a.sum()))]
        if bad:
            from gpuspike.engine.training.loop import TrainingError

            raise TrainingError(
                f"non-finite gradients of {bad}: the adjoint diverged (a surge at grazing "
                "threshold crossings or runaway recurrent firing); lower the learning rate, "
                "clip gradients (--clip), regularise the spike count (--reg) or use float64, "
                "and resume from the last checkpoint")

    def evaluate(self, batch: Batch) -> StepResult:
        tape, terms, _ = self._forward_loss(batch)
        return self._result(batch, terms, tape, None)

    def raster(self, batch: Batch, example: int = 0) -> dict[str, list[tuple[int, Any]]]:
        """Spike steps and neuron indices of one example, per spiking population."""
        tape, _, _ = self._forward_loss(batch, raster_example=example)
        return {k: [(n, _host(self.xp, idx)) for n, idx in v] for k, v in tape.raster.items()}

    def trace(self, batch: Batch, example: int = 0) -> tuple[ForwardTape, LossTerms]:
        """The forward pass of ``batch`` with the raster of ``example``, and its loss terms
        (predictions included): what a frontend shows of one example."""
        tape, terms, _ = self._forward_loss(batch, raster_example=example)
        return tape, terms

    def after_epoch(self) -> dict[str, float]:
        lifted = 0
        if self.lift:
            for q in self.ir.projections:
                key = q.name + ".w"
                counts = self._epoch_counts.get(q.post)
                if key not in self.params or counts is None or q.post == self.ir.output:
                    continue
                silent = counts == 0
                lifted += int(silent.sum())
                lift = self.lift * silent[:, None].astype(self.dtype)
                self.params[key] += lift * self.masks.get(q.name, 1.0)
        self.clamp()  # the lift raises weights: keep bounded ones (e.g. inhibitory) in range
        silent_total = sum(int((c == 0).sum()) for name, c in self._epoch_counts.items()
                           if name != self.ir.output)
        self._epoch_counts = {}
        return {"silent_neurons": float(silent_total), "lifted": float(lifted)}

    # -- checkpoints -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        return {k: _host(self.xp, v) for k, v in {**self.params, **self.frozen}.items()}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        for k, v in state.items():
            target = self.params if k in self.params else self.frozen
            if k not in target:
                raise ModelError(f"checkpoint holds {k!r}, which this network does not have")
            target[k][...] = self.xp.asarray(v, dtype=self.dtype)


def _host(xp: ModuleType, a: Any) -> np.ndarray:
    return a.get() if hasattr(a, "get") and xp is not np else np.asarray(a)
