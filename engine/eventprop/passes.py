"""Running the EventProp plans (:mod:`.kernels`): arrays, programs and the array-level parts.

:class:`TrainingPrograms` holds the forward and backward programs of one network for one
batch size and one set of tape capacities (compiled on the chosen engine: generated NumPy,
native C++ or CUDA), and their arrays. What is genuinely array-level stays array code on
the engine's array module: losses, the regulariser's kick, the overflow check (once per
batch), the layout changes of weights and gradients.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
from gpuspike.bridge.errors import ModelError, RingBufferOverflow
from gpuspike.bridge.training_ir import EventPropIR

from .. import memory
from ..backend import Backend
from ..programs import make_program
from .kernels import Layout, training_plans


@dataclass
class ForwardTape:
    """What the loss and the backward pass need, and per-neuron spike counts."""

    v_out: Any                                   # (N + 1, B, n_out) user-unit voltage
    first_step: Any | None                       # (B, n_out) for spiking outputs, -1 silent
    counts: dict[str, Any]                       # (B, n) spikes per neuron and example
    inputs: Any = None                           # (N, B, n_in) the batch
    raster: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)


@dataclass
class Gradients:
    """``weight[name]`` and ``delay[name]`` gradients (``(post, pre)``) of the mean loss;
    grazing spikes skipped."""

    weight: dict[str, Any]
    delay: dict[str, Any]
    skipped: int


def input_products(backend: Backend) -> bool:
    """Whether undelayed input projections are whole-batch products (kernels.py): on the
    NumPy engine, which pays per kernel call in Python; the compiled targets take every
    input spike as an event."""
    return backend.name == "numpy"


def ring_limit(ir: EventPropIR) -> int:
    """The most spikes a tape may hold per neuron: ``max_spikes``, and never more than
    one per step."""
    return max(1, min(ir.max_spikes, ir.n_steps))


class TrainingPrograms:
    """The compiled passes of ``ir`` for batches of ``batch`` and tapes of ``capacity``."""

    def __init__(self, ir: EventPropIR, backend: Backend, batch: int,
                 capacity: dict[str, int], dtype: np.dtype, threads: int | None = None,
                 input_capacity: int = 1) -> None:
        self.ir, self.backend, self.xp = ir, backend, backend.xp
        self.batch, self.dtype, self.threads = batch, np.dtype(dtype), threads
        self.capacity = dict(capacity)
        self.input_products = input_products(backend)
        self.layout: Layout | None = None
        self.builds = 0
        if input_capacity > 1:
            self._build(input_capacity)

    def _build(self, input_capacity: int) -> None:
        """Plans, arrays and programs for room for ``input_capacity`` input spike entries
        (compiled code does not depend on it: a larger batch of input spikes rebuilds the
        arrays and rebinds the programs, the C++ and CUDA builds come from their caches)."""
        ir, batch = self.ir, self.batch
        self.builds += 1
        fwd, bwd, self.layout = self.make_plans(input_capacity)
        decls = {a.name: a for a in fwd.arrays}
        decls.update({a.name: a for a in bwd.arrays})
        union = type(fwd)(fwd.name, fwd.precision, batch, ir.dt, 0, tuple(decls.values()),
                          (), ())
        self.arrays = memory.allocate(union, self.xp)
        for name, cap in self.layout.capacity.items():
            self.arrays[self.layout.pops[name].cap][...] = cap
        for q in ir.projections:
            if self.layout.product(ir, q):
                continue
            g = self.layout.projs[q.name]
            n_pre, n_post = ir.population(q.pre).size, ir.population(q.post).size
            self.arrays[f"{g}__rowlen"][...] = n_post
            self.arrays[f"{g}__cols"][...] = self.xp.tile(
                self.xp.arange(n_post, dtype=np.int32), n_pre)
            if f"{g}__valid" in self.arrays:   # every slot of the full rows is a synapse
                self.arrays[f"{g}__valid"][...] = self.xp.arange(n_pre * n_post,
                                                                 dtype=np.int32)
        self.forward_program = make_program(self.backend, fwd, self.arrays, threads=self.threads)
        self.backward_program = make_program(self.backend, bwd, self.arrays,
                                             threads=self.threads)
        self.plans = (fwd, bwd)

    def make_plans(self, input_capacity: int):
        """The forward plan, the gradient pass's plan and their layout (EventProp's)."""
        return training_plans(self.ir, self.batch, self.capacity, self.dtype.name,
                              input_capacity, self.input_products)

    def _set_inputs(self, inputs: Any, spikes: tuple | None = None) -> None:
        """The batch's input spikes as spike lists per (step, example): CSR in step-major,
        then example, then channel order; a channel's count in a step is one entry.
        ``spikes``: :attr:`Batch.spikes` (flat bins and counts), else read from ``inputs``."""
        xp, N, B = self.xp, self.ir.n_steps, self.batch
        n_in = self.ir.input.size
        if spikes is not None:
            flat, values = xp.asarray(spikes[0]), xp.asarray(spikes[1])
        else:
            flat = xp.flatnonzero(inputs)
            values = inputs.reshape(-1)[flat]
        if self.layout is None or flat.size > self.layout.input_capacity:
            self._build(int(flat.size * 1.25) + 1)
        A = self.arrays
        if "inp__offsets" not in A:
            return   # every input projection is a product (_set_drive)
        row = flat // n_in                       # step * B + example
        counts = xp.bincount(row, minlength=N * B)
        A["inp__offsets"][0] = 0
        xp.cumsum(counts, out=A["inp__offsets"][1:])
        A["inp__indices"][:flat.size] = flat - row * n_in
        counts_in = xp.rint(values)
        if bool((counts_in != values).any()) or bool((values < 0).any()):
            raise ModelError(
                "batch inputs must be spike counts per step (non-negative integers); bin "
                "spike times with the network's dt (gpuspike.engine.training.data."
                "dense_counts) rather than passing rates or analog values")
        A["inp__counts"][:flat.size] = counts_in

    # -- helpers ---------------------------------------------------------------------------
    def _start(self, program) -> None:
        self.arrays["__step"][...] = 0
        for name, _ in program.plan.ring_depths:
            self.arrays[f"{name}_count"][...] = 0

    def _set_parameters(self, weights: dict[str, Any], delays: dict[str, Any]) -> None:
        xp = self.xp
        for q in self.ir.projections:
            if self.layout.product(self.ir, q):
                continue
            g = self.layout.projs[q.name]
            self.arrays[f"{g}_w"][...] = xp.ascontiguousarray(weights[q.name].T).reshape(-1)
            if q.has_delays:
                self.arrays[f"{g}_d"][...] = xp.ascontiguousarray(
                    delays[q.name].T).reshape(-1).astype(np.int32)
                self.forward_program.array_written(f"{g}_d")
                self.backward_program.array_written(f"{g}_d")

    # -- forward ---------------------------------------------------------------------------
    def forward(self, weights: dict[str, Any], delays: dict[str, Any], inputs: Any,
                raster_example: int | None = None, spikes: tuple | None = None
                ) -> ForwardTape:
        """The forward pass on ``inputs`` (``(N, B, n_in)`` spike counts per step; or their
        sparse form ``spikes``, :attr:`Batch.spikes`); raises :class:`RingBufferOverflow`
        (``population``, ``most`` set) when a tape overflowed."""
        ir, N, B = self.ir, self.ir.n_steps, self.batch
        self._set_inputs(inputs, spikes)
        A, lay = self.arrays, self.layout
        self._set_parameters(weights, delays)
        for post, name in lay.drive.items():   # the input products of every step
            drive = A[name].reshape(N + 1, B, -1)
            gain = ir.population(post).neuron.gain
            total = 0
            for q in ir.projections:
                if lay.product(ir, q) and q.post == post:
                    total = total + inputs.reshape(N * B, -1) @ (gain * weights[q.name]).T
            drive[0] = 0   # row n + 1: the current that input step n adds
            drive[1:] = total.reshape(N, B, -1)
        self._initial_states()
        out = ir.population(ir.output)
        vout = A["vout"].reshape(N + 1, B, out.size)
        if out.neuron.spiking:
            A["first"][...] = -1
        self._start(self.forward_program)
        self.forward_program.run(N + 1)
        self.forward_program.sync()
        counts = {p.name: A[lay.pops[p.name].count] for p in ir.populations
                  if not p.is_input and p.neuron.spiking}
        for name, c in counts.items():
            cap = lay.capacity[name]
            most = int(c.max()) if c.size else 0
            if most > cap:
                err = RingBufferOverflow(
                    f"population {name!r}: a neuron spiked {most} times in one trial, more "
                    f"than its spike tape holds ({cap} slots; max_spikes={ir.max_spikes}); "
                    f"pass a larger max_spikes (e.g. {2 * most}), a shorter trial, or "
                    "regularise the firing rate")
                err.population, err.most = name, most
                raise err
        raster = {}
        if raster_example is not None:
            raster = {name: self._raster(name, raster_example) for name in counts}
        first = A["first"].copy() if out.neuron.spiking else None
        return ForwardTape(vout.copy(), first, {n: c.copy() for n, c in counts.items()},
                           inputs, raster)

    def _initial_states(self) -> None:
        """Every population at the trial's start: ``u = u0``, no current, adaptation or
        refractoriness, an empty spike count."""
        A = self.arrays
        for p in self.ir.populations:
            if p.is_input:
                continue
            names = self.layout.pops[p.name]
            A[names.u][...] = p.neuron.u0
            for v in (names.J, names.count, names.a, names.rc):
                if v in A:
                    A[v][...] = 0

    def _raster(self, name: str, b: int) -> list[tuple[int, Any]]:
        """Spike steps and neuron indices of example ``b``, from the tape."""
        xp, lay = self.xp, self.layout
        cap, names = lay.capacity[name], lay.pops[name]
        count = self.arrays[names.count][b]
        steps = self.arrays[names.tstep].reshape(self.batch, -1, cap)[b]
        used = xp.arange(cap)[None, :] < count[:, None]
        neuron = xp.nonzero(used)[0]
        when = steps[used]
        out = []
        for n in sorted(set(int(s) for s in (when.get() if hasattr(when, "get") else when))):
            out.append((n, neuron[when == n]))
        return out

    # -- backward --------------------------------------------------------------------------
    def backward(self, weights: dict[str, Any], tape: ForwardTape, terms: Any,
                 kick: dict[str, Any] | None = None) -> Gradients:
        """Gradients of the loss whose ``terms`` were computed from ``tape`` (the last
        forward pass of these programs)."""
        ir, xp, A, lay = self.ir, self.xp, self.arrays, self.layout
        for p in ir.populations:
            if p.is_input:
                continue
            names = lay.pops[p.name]
            A[names.lv][...] = 0
            A[names.li][...] = 0
            if p.neuron.spiking:
                A[names.ptr][...] = A[names.count] - 1
                A[names.fb][...] = 0
                A[names.kick][...] = 0 if not kick or p.name not in kick else kick[p.name]
        for q in ir.projections:
            if lay.product(ir, q):
                continue
            g = lay.projs[q.name]
            for suffix in ("_gw", "_gd", "_hv", "_hi"):
                if g + suffix in A:
                    A[g + suffix][...] = 0
        if "skipped" in A:
            A["skipped"][...] = 0
        if "src" in A:
            src = A["src"].reshape(ir.n_steps + 2, self.batch, -1)
            src[:ir.n_steps + 1] = terms.source
            src[ir.n_steps + 1] = 0
        if "istep" in A:
            A["istep"][...] = terms.impulse_step
            A["icoef"][...] = terms.impulse_coef
        if "tgrad" in A:
            A["tgrad"][...] = terms.time_grad
        self._start(self.backward_program)
        self.backward_program.run(ir.n_steps + 1)
        self.backward_program.sync()
        gw, gd = {}, {}
        N, B = ir.n_steps, self.batch
        for q in ir.projections:
            shape = (ir.population(q.post).size, ir.population(q.pre).size)
            if lay.product(ir, q):   # one product over all steps
                post = ir.population(q.post).neuron
                lam = A[lay.lih[q.post]].reshape(N + 1, B, -1)[:N].reshape(N * B, -1)
                gw[q.name] = -post.tau_s * post.gain * (lam.T @ tape.inputs.reshape(N * B, -1))
                continue
            g = lay.projs[q.name]
            gw[q.name] = (A[f"{g}_gw"].reshape(shape[1], shape[0]).T.copy()
                          if f"{g}_gw" in A else xp.zeros(shape, dtype=self.dtype))
            if q.learn_delay:
                gd[q.name] = A[f"{g}_gd"].reshape(shape[1], shape[0]).T.copy()
        skipped = int(A["skipped"][0]) if "skipped" in A else 0
        return Gradients(gw, gd, skipped)


def host(xp: ModuleType, a: Any) -> np.ndarray:
    return a.get() if hasattr(a, "get") and xp is not np else np.asarray(a)


__all__ = ["ForwardTape", "Gradients", "Layout", "TrainingPrograms", "ring_limit"]
