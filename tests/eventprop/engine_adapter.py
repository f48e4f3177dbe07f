"""Run the reference's tiny networks on the engine: Network + inputs -> EventPropIR + Batch."""

from __future__ import annotations

import numpy as np
from gpuspike.bridge.adjoint import CanonicalLIF
from gpuspike.bridge.training_ir import EventPropIR, LossSpec, TrainPopulation, TrainProjection
from gpuspike.engine.eventprop.network import EventPropNetwork
from gpuspike.engine.training.protocol import Batch

from .losses import Loss
from .reference import INPUT, Gradients, Network

_KINDS = {"integral_mse": "mse"}


def engine_network(net: Network, loss: Loss, T: float, dt: float, *, engine="numpy",
                   max_spikes: int = 500, crossing: str = "interpolated"
                   ) -> tuple[EventPropNetwork, int]:
    """The engine's model of ``net`` on a grid of ``dt`` (float64) and its step count."""
    p = net.params
    n_steps = int(round(T / dt))
    pops = [TrainPopulation(INPUT, net.n_in)]
    for q in net.populations:
        neuron = CanonicalLIF(p.tau_m, p.tau_s, p.theta if q.spiking else None,
                              p.v_reset if q.spiking else None)
        pops.append(TrainPopulation(q.name, q.size, neuron))
    projs, params = [], {}
    for q in net.projections:
        max_d = 0 if q.delay is None else int(np.rint(q.delay.max() / dt)) + 1
        projs.append(TrainProjection(q.pre, q.post, True, max_d, q.delay is not None))
        params[q.name + ".w"] = q.weight
        if q.delay is not None:
            params[q.name + ".d"] = q.delay
    spec = LossSpec(_KINDS.get(loss.kind, loss.kind), tau_w=loss.tau_w, tau0=loss.tau0,
                    tau1=loss.tau1, alpha=loss.alpha, delta=loss.delta)
    ir = EventPropIR(tuple(pops), tuple(projs), net.output, spec, dt, n_steps, max_spikes,
                     crossing=crossing)
    return EventPropNetwork(ir, params, engine=engine, dtype=np.float64), n_steps


def engine_batch(inputs, loss: Loss, n_in: int, n_steps: int, dt: float, xp=np) -> Batch:
    """One example: input spike k of channel c at step rint(t/dt)."""
    x = np.zeros((n_steps, 1, n_in))
    for c, times in enumerate(inputs):
        steps = np.rint(np.asarray(times, float) / dt).astype(int)
        np.add.at(x, (steps[steps < n_steps], 0, c), 1.0)
    if loss.kind == "integral_mse":
        labels = np.asarray([loss.target], float)
    else:
        labels = np.array([loss.label])
    return Batch(xp.asarray(x), xp.asarray(labels), np.arange(1))


def engine_gradients(net: Network, inputs, loss: Loss, T: float, dt: float, engine="numpy",
                     crossing: str = "interpolated") -> tuple[float, Gradients, np.ndarray]:
    """Loss, gradients (reference layout) and per-neuron spike counts from the engine."""
    model, n_steps = engine_network(net, loss, T, dt, engine=engine, crossing=crossing)
    batch = engine_batch(inputs, loss, net.n_in, n_steps, dt, model.xp)
    terms, g, tape = model.gradients(batch)
    host = lambda a: a.get() if hasattr(a, "get") else np.asarray(a)  # noqa: E731
    weight = {k: host(v) for k, v in g.weight.items()}
    delay = {k: host(v) for k, v in g.delay.items()}
    counts = np.concatenate([host(tape.counts[q.name][0]) if q.spiking
                             else np.zeros(q.size, int) for q in net.populations])
    return float(host(terms.values)[0]), Gradients(weight, delay), counts
