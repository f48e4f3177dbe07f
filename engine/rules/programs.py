"""Running BPTT's and e-prop's plans (:mod:`.kernels`): the arrays around the kernels.

The forward pass is EventProp's (:class:`~gpuspike.engine.eventprop.passes.TrainingPrograms`:
input spikes, weights, the overflow check, the tape of spike steps); these classes add the
rule's gradient pass: its arrays zeroed, the loss's ``dL/dv`` per step (``dldv``), the
regulariser's kick, the run, and the gradients in ``(post, pre)`` layout.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gpuspike.bridge.training_ir import EventPropIR

from ..backend import Backend
from ..eventprop import passes
from ..eventprop.passes import ForwardTape, Gradients, TrainingPrograms
from .kernels import bptt_plans, eprop_plans
from .surrogate import Surrogate


def loss_derivative(xp, terms: Any, n_steps: int, dt: float, tau_m: float) -> Any:
    """``dL/dv_n`` of the readout for ``n = 0..N`` (``(N + 1, B, n_out)``) from the loss
    terms: ``source_n dt`` (the losses' ``source`` is a density over time), and the max
    readout's ``impulse_coef tau_m`` at its step."""
    if terms.source is not None:
        return terms.source * dt
    coef = terms.impulse_coef
    out = xp.zeros((n_steps + 1,) + tuple(coef.shape), dtype=coef.dtype)
    b, kk = xp.meshgrid(xp.arange(coef.shape[0]), xp.arange(coef.shape[1]), indexing="ij")
    out[terms.impulse_step, b, kk] = coef * tau_m
    return out


class _RulePrograms(TrainingPrograms):
    """EventProp's programs with another gradient pass (``make_plans``, ``backward``)."""

    def __init__(self, ir: EventPropIR, backend: Backend, batch: int,
                 capacity: dict[str, int], dtype: np.dtype, threads: int | None = None,
                 input_capacity: int = 1, surrogate: Surrogate | None = None) -> None:
        self.surrogate = surrogate
        super().__init__(ir, backend, batch, capacity, dtype, threads, input_capacity)

    def _common(self, terms: Any, kick: dict[str, Any] | None) -> None:
        ir, A = self.ir, self.arrays
        out = ir.population(ir.output)
        d = loss_derivative(self.xp, terms, ir.n_steps, ir.dt, out.neuron.tau_m).reshape(-1)
        A["dldv"][:d.size] = d
        A["dldv"][d.size:] = 0   # after the trial (delayed readouts read ahead)
        for p in ir.populations:
            if p.is_input or not p.neuron.spiking:
                continue
            names = self.layout.pops[p.name]
            if names.kick in A:
                A[names.kick][...] = 0 if not kick or p.name not in kick else kick[p.name]

    def _zero(self, *suffixes: str) -> None:
        for name, a in self.arrays.items():
            if name.endswith(suffixes):
                a[...] = 0

    def _dense_grads(self, suffix: str, summed: bool) -> dict[str, Any]:
        ir, A, gw = self.ir, self.arrays, {}
        for q in ir.projections:
            if self.layout.product(ir, q):
                continue
            shape = (ir.population(q.post).size, ir.population(q.pre).size)
            g = self.layout.projs[q.name]
            if g + suffix not in A:
                gw[q.name] = self.xp.zeros(shape, dtype=self.dtype)
                continue
            a = A[g + suffix]
            if summed:
                a = a.reshape(self.batch, -1).sum(axis=0)
            gw[q.name] = a.reshape(shape[1], shape[0]).T.copy()
        return gw


class BPTTPrograms(_RulePrograms):
    """Surrogate-gradient BPTT (:class:`~.kernels.BPTTBuilder`)."""

    rule = "bptt"

    def make_plans(self, input_capacity: int):
        return bptt_plans(self.ir, self.batch, self.capacity, self.dtype.name, self.surrogate,
                          input_capacity, self.input_products, self.rule)

    def _build(self, input_capacity: int) -> None:
        super()._build(input_capacity)
        xp = self.xp
        for q in self.ir.projections:   # the feedback's transposed rows: full
            g = f"{self.layout.projs.get(q.name, '')}t"
            if g + "__rowlen" in self.arrays:
                n_pre, n_post = (self.ir.population(q.pre).size,
                                 self.ir.population(q.post).size)
                self.arrays[g + "__rowlen"][...] = n_pre
                self.arrays[g + "__cols"][...] = xp.tile(xp.arange(n_pre, dtype=np.int32),
                                                         n_post)

    def _set_parameters(self, weights: dict[str, Any], delays: dict[str, Any]) -> None:
        super()._set_parameters(weights, delays)
        xp = self.xp
        for q in self.ir.projections:
            g = f"{self.layout.projs.get(q.name, '')}t"
            if g + "_w" not in self.arrays:
                continue
            self.arrays[g + "_w"][...] = xp.ascontiguousarray(weights[q.name]).reshape(-1)
            if q.has_delays:
                self.arrays[g + "_d"][...] = xp.ascontiguousarray(
                    delays[q.name]).reshape(-1).astype(np.int32)
                self.forward_program.array_written(g + "_d")
                self.backward_program.array_written(g + "_d")

    def backward(self, weights: dict[str, Any], tape: ForwardTape, terms: Any,
                 kick: dict[str, Any] | None = None) -> Gradients:
        ir, A, lay = self.ir, self.arrays, self.layout
        self._common(terms, kick)
        self._zero("_au", "_aJ", "_aa", "_fb", "_gw", "_spk", "_ha")
        for p in ir.populations:
            if not p.is_input and p.neuron.spiking:
                names = lay.pops[p.name]
                A[names.ptr][...] = A[names.count] - 1
        self._start(self.backward_program)
        self.backward_program.run(ir.n_steps + 1)
        self.backward_program.sync()
        gw = self._dense_grads("_gw", False)
        N, B = ir.n_steps, self.batch
        for q in ir.projections:
            if lay.product(ir, q):   # sum_n a_J[n]^T x[n] in one product
                lam = A[lay.lih[q.post]].reshape(N + 1, B, -1)[:N].reshape(N * B, -1)
                gain = ir.population(q.post).neuron.gain
                gw[q.name] = gain * (lam.T @ tape.inputs.reshape(N * B, -1))
        return Gradients(gw, {}, 0)


class EpropReversePrograms(BPTTPrograms):
    """e-prop's gradient in reverse time: BPTT's passes with the feedback through the
    readout only (:mod:`.kernels`, *e-prop in reverse time*)."""

    rule = "eprop"


class EpropPrograms(_RulePrograms):
    """Online e-prop (:class:`~.kernels.EpropBuilder`): the eligibility pass after the
    forward."""

    def make_plans(self, input_capacity: int):
        self.input_products = False   # the traces take the input spikes step by step
        fwd, elig, lay, self.filter_plan = eprop_plans(
            self.ir, self.batch, self.capacity, self.dtype.name, self.surrogate,
            input_capacity)
        return fwd, elig, lay

    def _build(self, input_capacity: int) -> None:
        super()._build(input_capacity)
        self.filter_program = passes.make_program(self.backend, self.filter_plan,
                                                  self.arrays, threads=self.threads)

    def backward(self, weights: dict[str, Any], tape: ForwardTape, terms: Any,
                 kick: dict[str, Any] | None = None) -> Gradients:
        ir, A = self.ir, self.arrays
        self._common(terms, kick)
        self._zero("_pj", "_xu", "_eu", "_ea", "_gb", "_ls", "_ej", "_sh", "_lu", "_lJ")
        # rows 0..N are the filter's every batch; the rows after the trial stay zero
        A["dlf"][(ir.n_steps + 1) * self.batch * ir.population(ir.output).size:] = 0
        self._start(self.filter_program)   # the learning signal's future, in reverse time
        self.filter_program.run(ir.n_steps + 1)
        self.filter_program.sync()
        self._initial_states()   # the forward pass again, from the start
        self._start(self.backward_program)
        self.backward_program.run(ir.n_steps + 1)
        self.backward_program.sync()
        return Gradients(self._dense_grads("_gb", True), {}, 0)
