"""Discrete-time twin of the exact reference, for comparison with the engine (EVENTPROP.md §1.7).

Grid ``t_n = n dt``, ``n = 0..N`` with ``N = round(T/dt)``. Forward, per step ``n = 1..N``::

    V <- alpha V + P(dt) I ;  I <- beta I             (exact propagator, §1.1)
    s = V >= theta (n < N) ;  store (n, I - V) ;  V[s] <- v_reset
    I_post += w for every arrival at step n           (input t -> step rint(t/dt);
                                                       spike at n -> step n + rint(d/dt))

Readouts use the grid voltages: ``int V dt ~ sum_{n=1..N} V_n dt``, ``max_t V ~ max_n V_n``,
first spike time = ``t_n`` of the first spike step.

Backward, per step ``n = N..1`` (lambda holds ``lambda(t_n^+)``)::

    arrivals at n:  G_w -= tau_s lambda_I,post ;  G_d -= w (lambda_I - lambda_V)_post
                    feedback[spike] += w (lambda_V - lambda_I)_post
    spikes at n:    lambda_V += ((theta - v_reset) lambda_V + feedback + dl_p/dt) / (I - V)
                    (all with the pre-jump lambda; skipped and counted if I - V < grazing_eps)
    max readout:    lambda_V,k -= c_k / tau_m at the argmax step
    propagate over (t_{n-1}, t_n] with the source s = dl_V/dV held at its t_n value:
        lambda_V <- alpha lambda_V - s (1 - alpha)
        lambda_I <- beta lambda_I + K lambda_V - s (1 - beta - K)    (§1.3 with D = -s)

Errors against the exact reference are O(dt): spikes are detected up to one step late and
inputs are rounded to the grid.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .kernels import adjoint_v_to_i, current_to_voltage
from .losses import SPIKE_LOSSES, Loss, _softmax_ce
from .reference import INPUT, Gradients, Network


@dataclass
class DiscreteForward:
    net: Network
    T: float
    dt: float
    n_steps: int
    v_out: np.ndarray                      # (N + 1, n_out) output voltage on the grid
    spikes_at: dict[int, list[tuple[int, float, int]]] = field(default_factory=dict)
    arrivals_at: dict[int, list[tuple[int, np.ndarray, int, int]]] = field(default_factory=dict)
    spike_steps: list[tuple[int, int]] = field(default_factory=list)   # (step, neuron) per id

    def spike_counts(self) -> np.ndarray:
        return np.bincount([g for _, g in self.spike_steps], minlength=self.net.n_neurons)


def simulate_discrete(net: Network, inputs: Sequence[np.ndarray], T: float,
                      dt: float) -> DiscreteForward:
    """Time-stepped forward pass of ``net`` (see the module docstring)."""
    p = net.params
    n_steps = int(round(T / dt))
    alpha, beta = math.exp(-dt / p.tau_m), math.exp(-dt / p.tau_s)
    pv = float(current_to_voltage(dt, p.tau_m, p.tau_s))
    spiking = np.concatenate([np.full(q.size, q.spiking) for q in net.populations])
    pop_name = np.concatenate([[q.name] * q.size for q in net.populations])
    out0, n_out = net.offset(net.output), net.population(net.output).size
    v, cur = np.zeros(net.n_neurons), np.zeros(net.n_neurons)
    arrivals: dict[int, list] = defaultdict(list)
    fwd = DiscreteForward(net, T, dt, n_steps, np.zeros((n_steps + 1, n_out)),
                          defaultdict(list), arrivals)

    def schedule(pre_pop: str, i: int, t: float, step: int, spike: int) -> None:
        for k, proj in enumerate(net.projections):
            if proj.pre != pre_pop:
                continue
            if proj.delay is None:
                steps = np.full(proj.weight.shape[0], step)
            else:
                steps = np.rint((t + proj.delay[:, i]) / dt).astype(int)
            for s in np.unique(steps):
                if s < n_steps:
                    arrivals[int(s)].append((k, np.flatnonzero(steps == s), i, spike))

    def deliver(step: int) -> None:
        for k, posts, i, _ in arrivals.get(step, ()):
            proj = net.projections[k]
            cur[net.offset(proj.post) + posts] += proj.weight[posts, i]

    for c, times in enumerate(inputs):
        for t in np.asarray(times, float):
            schedule(INPUT, c, t, int(np.rint(t / dt)), -1)
    deliver(0)
    for n in range(1, n_steps + 1):
        v, cur = alpha * v + pv * cur, beta * cur
        fwd.v_out[n] = v[out0:out0 + n_out]
        if n == n_steps:
            break
        for g in np.flatnonzero(spiking & (v >= p.theta)):
            sid = len(fwd.spike_steps)
            fwd.spike_steps.append((n, int(g)))
            fwd.spikes_at[n].append((int(g), float(cur[g] - v[g]), sid))
            v[g] = p.v_reset
            name = pop_name[g]
            schedule(name, int(g) - net.offset(name), n * dt, n, sid)
        deliver(n)
    return fwd


@dataclass
class DiscreteLossTerms:
    value: float
    source: np.ndarray                     # (N + 1, n_out): dl_V/dV held over (t_{n-1}, t_n]
    impulses: list[tuple[int, int, float]] = field(default_factory=list)   # (step, k, coef)
    spike_time_grads: dict[int, float] = field(default_factory=dict)


def discrete_loss(fwd: DiscreteForward, loss: Loss) -> DiscreteLossTerms:
    """The losses of :mod:`losses` on the grid readouts."""
    n_out = fwd.v_out.shape[1]
    t = np.arange(fwd.n_steps + 1) * fwd.dt
    source = np.zeros_like(fwd.v_out)
    if loss.kind in SPIKE_LOSSES:
        return _discrete_spike_loss(fwd, loss, source)
    vs = fwd.v_out[1:]
    if loss.kind == "max_ce":
        steps = 1 + np.argmax(vs, axis=0)
        value, dz = _softmax_ce(vs[steps - 1, np.arange(n_out)], loss.label)
        return DiscreteLossTerms(value, source, [(int(s), k, dz[k]) for k, s in enumerate(steps)])
    if loss.kind == "per_timestep_ce":
        m = vs.max(axis=1, keepdims=True)
        logp = vs - (m + np.log(np.exp(vs - m).sum(axis=1, keepdims=True)))
        g = np.exp(logp)
        g[:, loss.label] -= 1.0
        source[1:] = g / fwd.T
        return DiscreteLossTerms(-float(logp[:, loss.label].sum()) * fwd.dt / fwd.T, source)
    tau_w = (loss.tau_w or fwd.T) if loss.kind == "exp_avg_ce" else math.inf
    weight = np.exp(-t / tau_w)[:, None]
    scale = 1.0 if loss.kind == "sum_ce" else 1.0 / fwd.T
    z = scale * fwd.dt * (weight[1:] * vs).sum(axis=0)
    if loss.kind == "integral_mse":
        diff = z - np.asarray(loss.target, float)
        value, dz = 0.5 * float(diff @ diff), diff
    else:
        value, dz = _softmax_ce(z, loss.label)
    source[1:] = scale * weight[1:] * dz
    return DiscreteLossTerms(value, source)


def _discrete_spike_loss(fwd: DiscreteForward, loss: Loss, source: np.ndarray):
    from .losses import _spike_loss_from_times

    off, n_out = fwd.net.offset(fwd.net.output), fwd.v_out.shape[1]
    ids: list[int | None] = [None] * n_out
    for sid, (_, g) in enumerate(fwd.spike_steps):
        if off <= g < off + n_out and ids[g - off] is None:
            ids[g - off] = sid
    times = np.array([fwd.spike_steps[i][0] * fwd.dt if i is not None else fwd.T for i in ids])
    value, dt_grad = _spike_loss_from_times(times, loss)
    grads = {i: float(dt_grad[k]) for k, i in enumerate(ids) if i is not None}
    return DiscreteLossTerms(value, source, spike_time_grads=grads)


def backward_discrete(fwd: DiscreteForward, terms: DiscreteLossTerms,
                      grazing_eps: float = 0.0) -> tuple[Gradients, int]:
    """The §1.7 backward pass; returns the gradients and the number of skipped spikes."""
    net, p, dt = fwd.net, fwd.net.params, fwd.dt
    alpha, beta = math.exp(-dt / p.tau_m), math.exp(-dt / p.tau_s)
    kk = float(adjoint_v_to_i(dt, p.tau_m, p.tau_s))
    out0, n_out = net.offset(net.output), fwd.v_out.shape[1]
    lam_v, lam_i = np.zeros(net.n_neurons), np.zeros(net.n_neurons)
    feedback = np.zeros(len(fwd.spike_steps))
    time_grad = np.zeros(len(fwd.spike_steps))
    for sid, g in terms.spike_time_grads.items():
        time_grad[sid] = g
    impulses = defaultdict(list)
    for step, k, c in terms.impulses:
        impulses[step].append((k, c))
    gw = {q.name: np.zeros_like(q.weight) for q in net.projections}
    gd = {q.name: np.zeros_like(q.weight) for q in net.projections if q.delay is not None}
    n_skipped = 0
    outs = slice(out0, out0 + n_out)
    for n in range(fwd.n_steps, -1, -1):
        for k, c in impulses.get(n, ()):
            lam_v[out0 + k] -= c / p.tau_m
        for k, posts, i, sid in fwd.arrivals_at.get(n, ()):
            proj = net.projections[k]
            g = net.offset(proj.post) + posts
            w = proj.weight[posts, i]
            gw[proj.name][posts, i] -= p.tau_s * lam_i[g]
            if proj.delay is not None:
                gd[proj.name][posts, i] -= w * (lam_i[g] - lam_v[g])
            if sid >= 0:
                feedback[sid] += float(w @ (lam_v[g] - lam_i[g]))
        jumps = []
        for g, i_minus_v, sid in fwd.spikes_at.get(n, ()):
            if i_minus_v < grazing_eps or i_minus_v <= 0.0:
                n_skipped += 1
                continue
            jumps.append((g, ((p.theta - p.v_reset) * lam_v[g] + feedback[sid]
                              + time_grad[sid]) / i_minus_v))
        for g, jump in jumps:
            lam_v[g] += jump
        if n == 0:
            break
        s = terms.source[n]
        lam_v, lam_i = alpha * lam_v, beta * lam_i + kk * lam_v
        lam_v[outs] -= s * (1.0 - alpha)
        lam_i[outs] -= s * (1.0 - beta - kk)
    return Gradients(gw, gd), n_skipped


def loss_and_grad_discrete(net: Network, inputs: Sequence[np.ndarray], T: float, dt: float,
                           loss: Loss) -> tuple[float, Gradients, DiscreteForward]:
    """Discrete forward, loss and backward in one call."""
    fwd = simulate_discrete(net, inputs, T, dt)
    terms = discrete_loss(fwd, loss)
    grads, _ = backward_discrete(fwd, terms)
    return terms.value, grads, fwd
