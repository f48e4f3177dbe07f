"""Losses on the exact reference's output, with their EventProp source terms (§1.2, §1.6).

A loss ``L = F(readouts) + l_p(first spike times)`` enters the adjoint pass through

* ``sources``: continuous ``dL/dV_k(t)`` on LI outputs (``F'(z) dz/dV``), integrated in closed
  form (:class:`ExpSource`, ``c_k e^{-t/tau_w}``) or by Gauss-Legendre quadrature on the
  pieces where ``V_out`` is smooth (:class:`QuadratureSource`, per-timestep losses);
* ``impulses``: ``L`` depends on ``c V_k(t*)`` (max readout, a jump ``lambda_V -= c/tau_m``);
* ``spike_time_grads``: ``dl_p/dt_k`` for first spikes (inserted in the jump);
* ``arrival_time_grads``: ``dL/dt_a`` when a maximum sits on the kink made by an arrival
  (``V`` is not stationary there, so ``dz/dt_a = dV/dt^-``; EVENTPROP.md omits this case).

Spike-count regularisation is not here: a spike count is piecewise constant in the parameters,
so its exact gradient is zero and the §1.6 term is a heuristic, not a derivative of a loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .kernels import (
    adjoint_kernel_terms,
    integrate_terms,
    propagate_state,
    segment_peak,
    voltage_terms,
)
from .reference import ForwardResult

VOLTAGE_LOSSES = ("sum_ce", "avg_ce", "exp_avg_ce", "max_ce", "integral_mse", "per_timestep_ce")
SPIKE_LOSSES = ("ttfs_ce", "ttfs_dmse")
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(24)


@dataclass(frozen=True)
class Loss:
    """One loss: ``kind`` in VOLTAGE_LOSSES (LI outputs) or SPIKE_LOSSES (LIF outputs).

    ``label`` for cross-entropies and ΔMSE, ``target`` (one value per output) for
    ``integral_mse`` (``L = 1/2 sum_k (1/T int V_k dt - target_k)^2``); ``tau_w`` is the
    weighting constant of ``exp_avg_ce`` (default T); ``tau0, tau1, alpha`` the TTFS
    constants, ``delta`` the ΔMSE margin.
    """

    kind: str
    label: int = 0
    target: tuple[float, ...] = ()
    tau_w: float | None = None
    tau0: float = 0.5
    tau1: float = 6.4
    alpha: float = 3e-3
    delta: float = 1.0


@dataclass(frozen=True)
class Impulse:
    t: float
    position: float      # ordering key among events at the same time (see reference.backward)
    neuron: int          # output index
    coef: float


@dataclass
class LossTerms:
    value: float
    sources: list = field(default_factory=list)
    impulses: list[Impulse] = field(default_factory=list)
    spike_time_grads: dict[int, float] = field(default_factory=dict)
    arrival_time_grads: dict[int, float] = field(default_factory=dict)
    structure: tuple = ()    # discrete choices (e.g. argmax location) that FD must keep


@dataclass(frozen=True)
class ExpSource:
    """``dl_V/dV_k (t) = coef_k exp(-t/tau_w)`` (tau_w = inf: constant)."""

    coef: np.ndarray
    tau_w: float = math.inf

    def integrals(self, k: int, t0: float, t1: float, tau_m: float, tau_s: float):
        """``(int_0^D e^{-u/tau_m} s(t0+u) du, int_0^D K(u) s(t0+u) du)``, D = t1 - t0."""
        r = 0.0 if math.isinf(self.tau_w) else 1.0 / self.tau_w
        c = self.coef[k] * math.exp(-t0 * r)
        d = t1 - t0
        return (c * integrate_terms([(1.0, 0, 1.0 / tau_m)], d, r),
                c * integrate_terms(adjoint_kernel_terms(tau_m, tau_s), d, r))


@dataclass(frozen=True)
class QuadratureSource:
    """``dl_V/dV_k(t) = fn(t)[:, k]``, smooth between ``breaks``; Gauss-Legendre per piece."""

    fn: object
    breaks: np.ndarray
    max_piece: float = 1.0

    def integrals(self, k: int, t0: float, t1: float, tau_m: float, tau_s: float):
        if t1 <= t0:
            return 0.0, 0.0
        u, w = _quadrature_nodes(t0, t1, self.breaks, self.max_piece)
        s = self.fn(u)[:, k]
        lag = u - t0
        kern = sum(c * lag ** q * np.exp(-r * lag)
                   for c, q, r in adjoint_kernel_terms(tau_m, tau_s))
        return float(np.sum(w * np.exp(-lag / tau_m) * s)), float(np.sum(w * kern * s))


def _quadrature_nodes(t0: float, t1: float, breaks: np.ndarray, max_piece: float):
    inner = breaks[(breaks > t0) & (breaks < t1)]
    edges = np.concatenate([[t0], inner, [t1]])
    nodes, weights = [], []
    for a, b in zip(edges[:-1], edges[1:]):
        m = max(1, math.ceil((b - a) / max_piece))
        for s in range(m):
            lo, hi = a + (b - a) * s / m, a + (b - a) * (s + 1) / m
            nodes.append(0.5 * (hi - lo) * _GL_NODES + 0.5 * (hi + lo))
            weights.append(0.5 * (hi - lo) * _GL_WEIGHTS)
    return np.concatenate(nodes), np.concatenate(weights)


def output_segments(fwd: ForwardResult, k: int):
    """Yield ``(t_start, t_end, v0, i0)`` of output ``k``'s smooth pieces on ``[0, T]``."""
    t, v, i = 0.0, 0.0, 0.0
    for b in fwd.out_breaks[k]:
        yield t, b.t, v, i
        t, v, i = b.t, b.v, b.i_after
    yield t, fwd.T, v, i


def output_voltages(fwd: ForwardResult, times: np.ndarray) -> np.ndarray:
    """``V_out`` at ``times`` (shape ``(len(times), n_out)``), from the closed form."""
    p = fwd.net.params
    out = np.zeros((len(times), len(fwd.out_breaks)))
    for k in range(len(fwd.out_breaks)):
        for t0, t1, v0, i0 in output_segments(fwd, k):
            sel = (times >= t0) & (times <= t1)
            out[sel, k] = propagate_state(v0, i0, times[sel] - t0, p.tau_m, p.tau_s)[0]
    return out


def voltage_integral(fwd: ForwardResult, k: int, tau_w: float = math.inf) -> float:
    """``int_0^T exp(-t/tau_w) V_k(t) dt`` in closed form."""
    p = fwd.net.params
    r = 0.0 if math.isinf(tau_w) else 1.0 / tau_w
    return sum(math.exp(-t0 * r) * integrate_terms(voltage_terms(v0, i0, p.tau_m, p.tau_s),
                                                   t1 - t0, r)
               for t0, t1, v0, i0 in output_segments(fwd, k))


def voltage_max(fwd: ForwardResult, k: int):
    """``(value, t*, where, break index)``; where: interior | kink | end | start."""
    p = fwd.net.params
    breaks = fwd.out_breaks[k]
    best = (0.0, 0.0, "start", -1)
    for s, (t0, t1, v0, i0) in enumerate(output_segments(fwd, k)):
        u, v = segment_peak(v0, i0, t1 - t0, p.tau_m, p.tau_s)
        if v <= best[0]:
            continue
        if 0.0 < u < t1 - t0:
            best = (v, t0 + u, "interior", s)
        elif u > 0.0:
            best = (v, t1, "end", -1) if s == len(breaks) else (v, t1, "kink", s)
    return best


def _softmax_ce(z: np.ndarray, label: int) -> tuple[float, np.ndarray]:
    """``-log softmax(z)_label`` and its gradient ``softmax(z) - onehot``."""
    zmax = z.max()
    e = np.exp(z - zmax)
    lse = zmax + math.log(e.sum())
    g = e / e.sum()
    g[label] -= 1.0
    return float(lse - z[label]), g


def evaluate_loss(fwd: ForwardResult, loss: Loss) -> LossTerms:
    """Loss value and its adjoint source terms for the forward result ``fwd``."""
    if loss.kind in SPIKE_LOSSES:
        return _spike_loss(fwd, loss)
    if loss.kind not in VOLTAGE_LOSSES:
        raise ValueError(f"unknown loss {loss.kind!r}; use one of {VOLTAGE_LOSSES + SPIKE_LOSSES}")
    n_out, T = len(fwd.out_breaks), fwd.T
    if loss.kind == "per_timestep_ce":
        return _per_timestep_ce(fwd, loss)
    if loss.kind == "max_ce":
        peaks = [voltage_max(fwd, k) for k in range(n_out)]
        value, dz = _softmax_ce(np.array([pk[0] for pk in peaks]), loss.label)
        terms = LossTerms(value, structure=tuple((pk[2], pk[3]) for pk in peaks))
        for k, (_, t_star, where, s) in enumerate(peaks):
            if where in ("interior", "end"):
                terms.impulses.append(Impulse(t_star, math.inf, k, dz[k]))
            elif where == "kink":
                b = fwd.out_breaks[k][s]
                p = fwd.net.params
                terms.impulses.append(Impulse(b.t, b.position - 0.5, k, dz[k]))
                arrival = fwd.order[b.position][1]
                vdot = (b.i_before - b.v) / p.tau_m
                terms.arrival_time_grads[arrival] = (
                    terms.arrival_time_grads.get(arrival, 0.0) + dz[k] * vdot)
        return terms
    tau_w = (loss.tau_w or T) if loss.kind == "exp_avg_ce" else math.inf
    z = np.array([voltage_integral(fwd, k, tau_w) for k in range(n_out)])
    scale = 1.0 if loss.kind == "sum_ce" else 1.0 / T
    z = z * scale
    if loss.kind == "integral_mse":
        diff = z - np.asarray(loss.target, float)
        value, dz = 0.5 * float(diff @ diff), diff
    else:
        value, dz = _softmax_ce(z, loss.label)
    return LossTerms(value, sources=[ExpSource(dz * scale, tau_w)])


def _per_timestep_ce(fwd: ForwardResult, loss: Loss) -> LossTerms:
    """``L = -(1/T) int_0^T log softmax(V(t))_y dt``; source ``(p_k(t) - delta_ky)/T``."""
    T = fwd.T
    breaks = np.unique([b.t for bs in fwd.out_breaks for b in bs])

    def log_softmax(t: np.ndarray) -> np.ndarray:
        v = output_voltages(fwd, t)
        m = v.max(axis=1, keepdims=True)
        return v - (m + np.log(np.exp(v - m).sum(axis=1, keepdims=True)))

    def source(t: np.ndarray) -> np.ndarray:
        g = np.exp(log_softmax(t))
        g[:, loss.label] -= 1.0
        return g / T

    u, w = _quadrature_nodes(0.0, T, breaks, 1.0)
    value = -float(np.sum(w * log_softmax(u)[:, loss.label])) / T
    return LossTerms(value, sources=[QuadratureSource(source, breaks)])


def _spike_loss_from_times(t: np.ndarray, loss: Loss) -> tuple[float, np.ndarray]:
    """First-spike loss value and ``dl_p/dt_k`` from the first spike times ``t``."""
    y = loss.label
    if loss.kind == "ttfs_ce":
        # -log softmax(-t/tau0)_y + alpha (e^{t_y/tau1} - 1)
        value, dz = _softmax_ce(-t / loss.tau0, y)
        value += loss.alpha * math.expm1(t[y] / loss.tau1)
        dt = -dz / loss.tau0
        dt[y] += loss.alpha / loss.tau1 * math.exp(t[y] / loss.tau1)
        return value, dt
    # 1/2 sum_{i != y} (t_i - t_y - delta)^2
    r = t - t[y] - loss.delta
    r[y] = 0.0
    dt = r.copy()
    dt[y] = -r.sum()
    return 0.5 * float(r @ r), dt


def _spike_loss(fwd: ForwardResult, loss: Loss) -> LossTerms:
    """First-spike losses; a silent output counts as firing at T, with no gradient."""
    ids = fwd.first_spike_ids(fwd.net.output)
    t = np.array([fwd.spikes[i].t if i is not None else fwd.T for i in ids])
    value, dt = _spike_loss_from_times(t, loss)
    grads = {i: float(dt[k]) for k, i in enumerate(ids) if i is not None}
    return LossTerms(value, spike_time_grads=grads)
