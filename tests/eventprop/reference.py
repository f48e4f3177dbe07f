"""Exact event-driven LIF network with exact EventProp gradients: the test reference.

Model (EVENTPROP.md §1.1), every neuron of every population::

    tau_m dV/dt = -V + I,    tau_s dI/dt = -I
    spike when V crosses theta upwards (spiking populations only), then V <- v_reset
    a spike of presynaptic i at t_k does I_j <- I_j + w_ji at t_k + d_ji

Forward (:func:`simulate`): per-neuron lazy state, closed-form propagation between events, a
heap of pending arrivals, and for each spiking neuron the predicted crossing time from its
current state. ``V`` has at most one maximum between inputs (:func:`kernels.segment_peak`), so
the crossing is bracketed on ``[0, u_peak]`` and found with ``brentq`` to machine precision;
crossings in the middle of an interval are never missed, and a maximum that only *touches*
theta (within ``touch_tol``) is not a spike.

Backward (:func:`backward`), the adjoint of §1.3-1.5 (lambda = -costate/tau), processed in
reverse event order with per-neuron lazy closed-form propagation::

    tau_m lambda_V' = -lambda_V - dl_V/dV,     tau_s lambda_I' = -lambda_I + lambda_V
    arrival of spike k of i at j (t_a = t_k + d_ji):
        dL/dw_ji += -tau_s lambda_I,j(t_a)
        dL/dd_ji += -w_ji (lambda_I,j - lambda_V,j)(t_a) + dL/dt_a|explicit
        feedback_k += w_ji (lambda_V,j - lambda_I,j)(t_a)
    spike k of n:  lambda_V,n += [(theta - v_reset) lambda_V,n + feedback_k + dL/dt_k]
                                / (I_n^- - theta)              (I^- - theta = tau_m dV/dt^-)
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.optimize import brentq

from .kernels import adjoint_v_to_i, propagate_scalar, segment_peak

INPUT = "in"


@dataclass(frozen=True)
class NeuronParams:
    """Shared neuron constants (any consistent time unit; the tests use ms).

    ``touch_tol``: a maximum ``V_peak <= theta + touch_tol`` is a touch, not a spike.
    ``grazing_tol``: spikes with ``I^- - theta < grazing_tol`` are counted as near-grazing.
    """

    tau_m: float = 20.0
    tau_s: float = 5.0
    theta: float = 1.0
    v_reset: float = 0.0
    touch_tol: float = 1e-12
    grazing_tol: float = 1e-3


@dataclass(frozen=True)
class Population:
    name: str
    size: int
    spiking: bool


@dataclass(frozen=True)
class Projection:
    """Dense synapses ``pre -> post``: ``weight[j, i]``, optional ``delay[j, i] >= 0``."""

    pre: str
    post: str
    weight: np.ndarray
    delay: np.ndarray | None = None

    @property
    def name(self) -> str:
        return f"{self.pre}->{self.post}"


@dataclass(frozen=True)
class Network:
    """Populations (in update order; the readout is ``output``) and projections."""

    n_in: int
    populations: tuple[Population, ...]
    projections: tuple[Projection, ...]
    params: NeuronParams = NeuronParams()
    output: str = "out"

    def offset(self, name: str) -> int:
        off = 0
        for pop in self.populations:
            if pop.name == name:
                return off
            off += pop.size
        raise KeyError(name)

    def population(self, name: str) -> Population:
        return next(p for p in self.populations if p.name == name)

    @property
    def n_neurons(self) -> int:
        return sum(p.size for p in self.populations)

    def projection(self, name: str) -> Projection:
        return next(p for p in self.projections if p.name == name)


def layered_network(w_in: np.ndarray, w_out: np.ndarray, w_rec: np.ndarray | None = None, *,
                    d_in: np.ndarray | None = None, d_rec: np.ndarray | None = None,
                    d_out: np.ndarray | None = None, output_spiking: bool = False,
                    params: NeuronParams = NeuronParams()) -> Network:
    """``in -> hid (-> hid) -> out``; LI outputs, or LIF outputs if ``output_spiking``."""
    n_hid, n_in = w_in.shape
    projs = [Projection(INPUT, "hid", np.asarray(w_in, float), d_in)]
    if w_rec is not None:
        projs.append(Projection("hid", "hid", np.asarray(w_rec, float), d_rec))
    projs.append(Projection("hid", "out", np.asarray(w_out, float), d_out))
    pops = (Population("hid", n_hid, True), Population("out", w_out.shape[0], output_spiking))
    return Network(n_in, pops, tuple(projs), params)


def with_entry(net: Network, proj_name: str, kind: str, index: tuple[int, int],
               value: float) -> Network:
    """Copy of ``net`` with ``weight`` or ``delay`` entry ``index`` of a projection set."""
    projs = []
    for p in net.projections:
        if p.name == proj_name:
            arr = np.array(getattr(p, kind), dtype=float)
            arr[index] = value
            p = replace(p, **{kind: arr})
        projs.append(p)
    return replace(net, projections=tuple(projs))


@dataclass(frozen=True)
class Spike:
    t: float
    neuron: int          # global index
    i_minus: float       # I at the crossing; tau_m dV/dt^- = i_minus - theta


@dataclass(frozen=True)
class Arrival:
    t: float
    proj: int            # index into net.projections
    post: int            # local index in the post population
    pre: int             # local index in the pre population (input channel for inputs)
    spike: int           # id of the causing spike, -1 for input spikes


@dataclass(frozen=True)
class OutputBreak:
    """An arrival at an output neuron: state just after it, and I just before it."""

    t: float
    v: float
    i_before: float
    i_after: float
    position: int        # position of the arrival in ForwardResult.order


@dataclass
class ForwardResult:
    """Everything the losses and the backward pass need, in forward processing order."""

    net: Network
    T: float
    spikes: list[Spike] = field(default_factory=list)
    arrivals: list[Arrival] = field(default_factory=list)
    order: list[tuple[str, int]] = field(default_factory=list)   # ("spike"|"arrival", id)
    out_breaks: list[list[OutputBreak]] = field(default_factory=list)
    n_near_grazing: int = 0

    def spike_times(self, pop: str) -> list[np.ndarray]:
        """Spike times of each neuron of population ``pop``."""
        off, size = self.net.offset(pop), self.net.population(pop).size
        return [np.array([s.t for s in self.spikes if s.neuron == off + n]) for n in range(size)]

    def first_spike_ids(self, pop: str) -> list[int | None]:
        off, size = self.net.offset(pop), self.net.population(pop).size
        first: list[int | None] = [None] * size
        for sid, s in enumerate(self.spikes):
            n = s.neuron - off
            if 0 <= n < size and first[n] is None:
                first[n] = sid
        return first

    def signature(self) -> tuple:
        """Discrete event structure on which the loss is smooth.

        Per spiking neuron, the number of incoming arrivals before its first spike, between
        consecutive spikes and after the last one (an arrival that overtakes a spike of its
        target makes a kink in the loss without changing any spike count), plus the total
        number of arrivals (an arrival can leave ``[0, T)``).
        """
        runs: list[list[int]] = [[0] for _ in range(self.net.n_neurons)]
        for kind, i in self.order:
            if kind == "spike":
                runs[self.spikes[i].neuron].append(0)
            else:
                a = self.arrivals[i]
                runs[self.net.offset(self.net.projections[a.proj].post) + a.post][-1] += 1
        return tuple(tuple(r) for r in runs) + (len(self.arrivals),)


def _next_crossing(v: float, i: float, horizon: float, p: NeuronParams) -> float:
    """Lag of the first upward crossing of theta within ``horizon``, or inf."""
    u_pk, v_pk = segment_peak(v, i, horizon, p.tau_m, p.tau_s)
    if v_pk <= p.theta + p.touch_tol:
        return math.inf
    if v >= p.theta:
        return 0.0

    def f(u: float) -> float:
        return propagate_scalar(v, i, u, p.tau_m, p.tau_s)[0] - p.theta

    return brentq(f, 0.0, u_pk, xtol=1e-15, rtol=8.9e-16, maxiter=200)


def simulate(net: Network, inputs: Sequence[np.ndarray], T: float) -> ForwardResult:
    """Exact event-driven simulation on ``[0, T)``; ``inputs[c]`` are channel c's spike times."""
    p = net.params
    n = net.n_neurons
    spiking = np.concatenate([np.full(q.size, q.spiking) for q in net.populations])
    pop_of = np.concatenate([[k] * q.size for k, q in enumerate(net.populations)]).astype(int)
    out_li = not net.population(net.output).spiking
    v, cur, t_last = np.zeros(n), np.zeros(n), np.zeros(n)
    pred = np.full(n, math.inf)
    res = ForwardResult(net, T, out_breaks=[[] for _ in range(net.population(net.output).size)])
    heap: list[tuple[float, int, int, int, int, int]] = []
    seq = 0

    def push_arrivals(pre_pop: str, i: int, t: float, spike: int) -> None:
        nonlocal seq
        for k, proj in enumerate(net.projections):
            if proj.pre != pre_pop:
                continue
            for j in range(proj.weight.shape[0]):
                ta = t + (proj.delay[j, i] if proj.delay is not None else 0.0)
                if ta < T:
                    heapq.heappush(heap, (ta, seq, k, j, i, spike))
                    seq += 1

    def advance(g: int, t: float) -> None:
        v[g], cur[g] = propagate_scalar(float(v[g]), float(cur[g]), t - t_last[g], p.tau_m,
                                        p.tau_s)
        t_last[g] = t

    def predict(g: int) -> None:
        if spiking[g]:
            pred[g] = t_last[g] + _next_crossing(v[g], cur[g], T - t_last[g], p)

    for c, times in enumerate(inputs):
        for t in np.sort(np.asarray(times, float)):
            push_arrivals(INPUT, c, float(t), -1)
    while True:
        g = int(np.argmin(pred))
        t_sp = pred[g]
        t_arr = heap[0][0] if heap else math.inf
        if t_sp <= t_arr and t_sp < T:
            advance(g, t_sp)
            res.spikes.append(Spike(t_sp, g, float(cur[g])))
            res.order.append(("spike", len(res.spikes) - 1))
            res.n_near_grazing += int(cur[g] - p.theta < p.grazing_tol)
            v[g] = p.v_reset
            pop = net.populations[pop_of[g]]
            push_arrivals(pop.name, g - net.offset(pop.name), t_sp, len(res.spikes) - 1)
            predict(g)
        elif t_arr < T:
            ta, _, k, j, i, spike = heapq.heappop(heap)
            proj = net.projections[k]
            g = net.offset(proj.post) + j
            advance(g, ta)
            i_before = float(cur[g])
            cur[g] += proj.weight[j, i]
            res.arrivals.append(Arrival(ta, k, j, i, spike))
            res.order.append(("arrival", len(res.arrivals) - 1))
            if out_li and proj.post == net.output:
                res.out_breaks[j].append(OutputBreak(ta, float(v[g]), i_before, float(cur[g]),
                                                     len(res.order) - 1))
            predict(g)
        else:
            return res


@dataclass
class Gradients:
    """``dL/d weight`` and ``dL/d delay`` per projection name (delays only where present)."""

    weight: dict[str, np.ndarray]
    delay: dict[str, np.ndarray]


def backward(fwd: ForwardResult, terms) -> Gradients:
    """Exact EventProp adjoint pass for the loss terms ``terms`` (a :class:`losses.LossTerms`)."""
    net, p = fwd.net, fwd.net.params
    n = net.n_neurons
    out_off = net.offset(net.output)
    n_out = net.population(net.output).size
    lam_v, lam_i, lam_t = np.zeros(n), np.zeros(n), np.full(n, fwd.T)
    feedback = np.zeros(len(fwd.spikes))
    time_grad = np.zeros(len(fwd.spikes))
    for sid, g in terms.spike_time_grads.items():
        time_grad[sid] += g
    gw = {q.name: np.zeros_like(q.weight) for q in net.projections}
    gd = {q.name: np.zeros_like(q.weight) for q in net.projections if q.delay is not None}

    def bring(g: int, t: float) -> None:
        u = lam_t[g] - t
        if u <= 0.0:
            return
        lv, li = lam_v[g], lam_i[g]
        lam_v[g] = math.exp(-u / p.tau_m) * lv
        lam_i[g] = math.exp(-u / p.tau_s) * li + float(adjoint_v_to_i(u, p.tau_m, p.tau_s)) * lv
        k = g - out_off
        if 0 <= k < n_out:
            for src in terms.sources:
                jv, ji = src.integrals(k, t, lam_t[g], p.tau_m, p.tau_s)
                lam_v[g] -= jv / p.tau_m
                lam_i[g] -= ji / p.tau_m
        lam_t[g] = t

    # reverse processing list: (time, position, kind, payload); ties resolved by position
    items: list[tuple[float, float, str, object]] = [
        (fwd.spikes[i].t if kind == "spike" else fwd.arrivals[i].t, float(pos), kind, i)
        for pos, (kind, i) in enumerate(fwd.order)]
    for imp in terms.impulses:
        items.append((imp.t, imp.position, "impulse", imp))
    items.sort(key=lambda it: (it[0], it[1]), reverse=True)
    for t, _, kind, payload in items:
        if kind == "impulse":
            g = out_off + payload.neuron
            bring(g, t)
            lam_v[g] -= payload.coef / p.tau_m
        elif kind == "arrival":
            a = fwd.arrivals[payload]
            proj = net.projections[a.proj]
            g = net.offset(proj.post) + a.post
            bring(g, t)
            w = proj.weight[a.post, a.pre]
            gw[proj.name][a.post, a.pre] -= p.tau_s * lam_i[g]
            t_grad = terms.arrival_time_grads.get(payload, 0.0)
            if proj.delay is not None:
                gd[proj.name][a.post, a.pre] += -w * (lam_i[g] - lam_v[g]) + t_grad
            if a.spike >= 0:
                feedback[a.spike] += w * (lam_v[g] - lam_i[g])
                time_grad[a.spike] += t_grad
        else:
            s = fwd.spikes[payload]
            bring(s.neuron, t)
            lam_v[s.neuron] += ((p.theta - p.v_reset) * lam_v[s.neuron] + feedback[payload]
                                + time_grad[payload]) / (s.i_minus - p.theta)
    return Gradients(gw, gd)


def loss_and_grad(net: Network, inputs: Sequence[np.ndarray], T: float,
                  loss) -> tuple[float, Gradients, ForwardResult]:
    """Simulate, evaluate ``loss`` (a :class:`losses.Loss`), run the adjoint pass."""
    from .losses import evaluate_loss

    fwd = simulate(net, inputs, T)
    terms = evaluate_loss(fwd, loss)
    return terms.value, backward(fwd, terms), fwd
