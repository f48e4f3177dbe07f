"""The forward pass with tape: all populations stepped together, batched, on numpy or cupy.

Grid ``t_n = n dt``, ``n = 0..N``; every population is in the canonical form of
:mod:`gpuspike.bridge.adjoint`. Step 0 delivers the input spikes of bin 0; then for
``n = 1..N``::

    u <- alpha u + P J ;  J <- beta J                 (exact propagator, all populations)
    v_out[n] = u_out + v_rest                         (the readout trace)
    n < N:  s = u >= theta  ->  ring (n, state at step start) ;  u[s] <- v_reset
            (spiking populations; the ring turns the state into the crossing slope)
            deliver: J_post += g_post W s_pre, at step n + d for delayed projections
                     (input bin n is the input population's s)

A spike emitted in step n thus changes the postsynaptic current before the propagation to
step n + 1 (n + d + 1 with a delay of d steps): the same convention as the exact reference's
discrete twin, to which the engine's gradients are compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from gpuspike.bridge.training_ir import EventPropIR

from .rings import SpikeRing


@dataclass
class ForwardTape:
    """What the backward pass and the loss need, and per-neuron spike counts."""

    rings: dict[str, SpikeRing]
    v_out: Any                                   # (N + 1, B, n_out) user-unit voltage
    first_step: Any | None                       # (B, n_out) for spiking outputs, -1 silent
    counts: dict[str, Any]                       # (B, N) spikes per neuron and example
    raster: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)


def _scatter_add(xp: ModuleType, target: Any, index: tuple, values: Any) -> None:
    if xp.__name__ == "numpy":
        xp.add.at(target, index, values)
    else:  # pragma: no cover - GPU only
        import cupyx

        cupyx.scatter_add(target, index, values)


def schedule_delayed(xp: ModuleType, queue: Any, spikes: Any, weight: Any, delay: Any,
                     step: int) -> None:
    """Add ``weight[j, i] * spikes[b, i]`` to ``queue[(step + delay[j, i]) % D, b, j]``."""
    b, i = xp.nonzero(spikes)
    if b.size == 0:
        return
    slots = (step + delay[:, i].T) % queue.shape[0]             # (spikes, n_post)
    j = xp.arange(weight.shape[0])[None, :]
    values = weight[:, i].T * spikes[b, i][:, None]
    _scatter_add(xp, queue, (slots, b[:, None], j), values)


def ring_limit(ir: EventPropIR) -> int:
    """The most spikes a ring may hold per neuron: ``max_spikes``, and never more than
    one per step."""
    return max(1, min(ir.max_spikes, ir.n_steps))


def forward(xp: ModuleType, ir: EventPropIR, weights: dict[str, Any], delays: dict[str, Any],
            inputs: Any, *, raster_example: int | None = None,
            capacity: dict[str, int] | None = None) -> ForwardTape:
    """Run the forward pass of ``ir`` on ``inputs`` (``(N, B, n_in)`` counts per step).

    ``weights[name]`` are the user-unit weights ``w[post, pre]`` of each projection,
    ``delays[name]`` integer delays in steps (only for projections with delays).
    ``capacity[name]`` sizes a population's spike ring (default :func:`ring_limit`); a
    neuron spiking more often raises :class:`RingBufferOverflow` whose ``most`` is the
    largest count, so a caller can rerun with a larger ring.
    """
    n_steps, batch = ir.n_steps, int(inputs.shape[1])
    dtype = inputs.dtype
    pops = {p.name: p for p in ir.populations if not p.is_input}
    prop = {name: p.neuron.propagators(ir.dt) for name, p in pops.items()}
    u = {name: xp.full((batch, p.size), p.neuron.u0, dtype=dtype) for name, p in pops.items()}
    cur = {name: xp.zeros((batch, p.size), dtype=dtype) for name, p in pops.items()}
    limit = ring_limit(ir)
    rings = {name: SpikeRing.empty(xp, batch, p.size,
                                   min((capacity or {}).get(name, limit), limit), dtype, name)
             for name, p in pops.items() if p.neuron.spiking}
    queues = {q.name: xp.zeros((q.max_delay_steps + 1, batch, pops[q.post].size), dtype=dtype)
              for q in ir.projections if q.has_delays}
    eff = {q.name: weights[q.name] * pops[q.post].neuron.gain for q in ir.projections}
    out = pops[ir.output]
    v_out = xp.zeros((n_steps + 1, batch, out.size), dtype=dtype)
    v_out[0] = u[ir.output] + out.neuron.v_rest
    first = xp.full((batch, out.size), -1, dtype=xp.int32) if out.neuron.spiking else None
    raster: dict[str, list] = {name: [] for name in rings}

    # Undelayed input projections: the drive of every step in one product (the input is
    # known in advance), instead of one small product per step.
    drive = {q.name: (inputs.reshape(-1, inputs.shape[2]) @ eff[q.name].T).reshape(
        inputs.shape[0], batch, -1) for q in ir.projections
        if q.pre == ir.input.name and not q.has_delays}

    def deliver(step: int, spikes: dict[str, Any]) -> None:
        for q in ir.projections:
            if q.name in drive:
                cur[q.post] += drive[q.name][step]
                continue
            s = spikes.get(q.pre)
            if s is None:
                continue
            if q.has_delays:
                schedule_delayed(xp, queues[q.name], s, eff[q.name], delays[q.name], step)
            else:
                cur[q.post] += s @ eff[q.name].T
        for q in ir.projections:
            if q.has_delays:
                slot = queues[q.name][step % queues[q.name].shape[0]]
                cur[q.post] += slot
                slot[...] = 0

    deliver(0, {ir.input.name: inputs[0]})
    for n in range(1, n_steps + 1):
        before = {name: (u[name], cur[name]) for name in rings}
        for name, p in prop.items():
            u[name] = p.alpha * u[name] + p.p_vi * cur[name]
            cur[name] = p.beta * cur[name]
        v_out[n] = u[ir.output] + out.neuron.v_rest
        if n == n_steps:
            break
        spikes = {ir.input.name: inputs[n]}
        for name, ring in rings.items():
            neuron = pops[name].neuron
            s = u[name] >= neuron.theta
            ring.push(xp, s, n, *before[name])
            u[name] = xp.where(s, neuron.v_reset, u[name])
            spikes[name] = s.astype(dtype)
            if name == ir.output:
                first[...] = xp.where((first < 0) & s, n, first)
            if raster_example is not None:
                raster[name].append((n, xp.nonzero(s[raster_example])[0]))
        deliver(n, spikes)
    for name, ring in rings.items():
        ring.check()
        ring.finish(xp, pops[name].neuron, ir.dt, ir.crossing)
    counts = {name: ring.count for name, ring in rings.items()}
    return ForwardTape(rings, v_out, first, counts, raster)
