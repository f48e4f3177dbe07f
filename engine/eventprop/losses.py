"""Losses on the output readouts and their EventProp source terms, batched (EVENTPROP.md §1.6).

The forward pass keeps the output voltage on the grid, ``v[n, b, k]`` for ``n = 1..N``
(``t_n = n dt``, ``T = N dt``), and the first spike step of spiking outputs. With
``p = softmax(z)`` and ``y`` the label, the losses (each averaged over the batch, so every
source below carries ``1/B``) are::

    avg_ce        z = (1/T) sum_n v_n dt            source_n = (p - y)/T
    sum_ce        z = sum_n v_n dt                  source_n = (p - y)
    exp_avg_ce    z = (1/T) sum_n e^{-t_n/tau_w} v_n dt        source_n = e^{-t_n/tau_w}(p - y)/T
    max_ce        z = max_n v_n                     impulse lambda_V -= (p - y)/tau_m at argmax
    per_timestep_ce  L = -(dt/T) sum_n log softmax(v_n)_y    source_n = (softmax(v_n) - y)/T
    mse           L = 1/2 sum_k (z_k - target_k)^2, z as avg_ce    source_n = (z - target)/T
    ttfs_ce       L = -log softmax(-t/tau0)_y + alpha (e^{t_y/tau1} - 1)
                  dl/dt_k = (p_k - y_k)(-1/tau0) + y_k (alpha/tau1) e^{t_y/tau1}
    ttfs_dmse     L = 1/2 sum_{i != y} (t_i - t_y - delta)^2

A silent output counts as firing at ``T`` with no gradient. ``source_n`` is ``dl_V/dv`` held
over ``(t_{n-1}, t_n]`` in the backward pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

from gpuspike.bridge.training_ir import SPIKE_LOSSES, LossSpec


@dataclass
class LossTerms:
    """Per-example loss values, predictions and the backward pass's inputs.

    ``source``: ``(N + 1, B, n_out)`` or None; ``impulse_step``/``impulse_coef``: the max
    readout's jumps; ``time_grad``: ``dL/dt`` of each output's first spike (``(B, n_out)``).
    """

    values: Any
    predictions: Any
    source: Any = None
    impulse_step: Any = None
    impulse_coef: Any = None
    time_grad: Any = None


def _softmax_ce(xp: ModuleType, z: Any, labels: Any) -> tuple[Any, Any]:
    """Per-row ``-log softmax(z)_y`` and ``softmax(z) - onehot(y)``."""
    zmax = z.max(axis=-1, keepdims=True)
    e = xp.exp(z - zmax)
    s = e.sum(axis=-1, keepdims=True)
    lse = (zmax + xp.log(s))[..., 0]
    rows = xp.arange(z.shape[0])
    values = lse - z[rows, labels]
    g = e / s
    g[rows, labels] -= 1.0
    return values, g


def voltage_loss(xp: ModuleType, spec: LossSpec, v: Any, labels: Any, dt: float,
                 tau_m: float) -> LossTerms:
    """Loss terms of a voltage loss from the output trace ``v`` (``(N + 1, B, n_out)``)."""
    n_steps, batch = v.shape[0] - 1, v.shape[1]
    T = n_steps * dt
    vs = v[1:]
    source = xp.zeros_like(v)
    if spec.kind == "max_ce":
        steps = 1 + xp.argmax(vs, axis=0)
        z = xp.take_along_axis(vs, (steps - 1)[None], axis=0)[0]
        values, dz = _softmax_ce(xp, z, labels)
        return LossTerms(values, xp.argmax(z, axis=1), None, steps, dz / (batch * tau_m))
    if spec.kind == "per_timestep_ce":
        m = vs.max(axis=2, keepdims=True)
        logp = vs - (m + xp.log(xp.exp(vs - m).sum(axis=2, keepdims=True)))
        g = xp.exp(logp)
        rows = xp.arange(batch)
        g[:, rows, labels] -= 1.0
        source[1:] = g / (T * batch)
        values = -logp[:, rows, labels].sum(axis=0) * dt / T
        return LossTerms(values, xp.argmax(vs.sum(axis=0), axis=1), source)
    t = xp.arange(1, n_steps + 1, dtype=v.dtype) * dt
    if spec.kind == "exp_avg_ce":
        weight = xp.exp(-t / (spec.tau_w or T))[:, None, None]
    else:
        weight = xp.ones((n_steps, 1, 1), dtype=v.dtype)
    scale = 1.0 if spec.kind == "sum_ce" else 1.0 / T
    z = scale * dt * (weight * vs).sum(axis=0)
    if spec.kind == "mse":
        diff = z - labels
        values, dz = 0.5 * (diff * diff).sum(axis=1), diff
    else:
        values, dz = _softmax_ce(xp, z, labels)
    source[1:] = (scale / batch) * weight * dz[None]
    return LossTerms(values, xp.argmax(z, axis=1), source)


def spike_loss(xp: ModuleType, spec: LossSpec, first_step: Any, labels: Any, dt: float,
               n_steps: int) -> LossTerms:
    """Loss terms of a first-spike loss; ``first_step[b, k]`` is -1 for a silent output."""
    assert spec.kind in SPIKE_LOSSES
    batch = first_step.shape[0]
    T = n_steps * dt
    fired = first_step >= 0
    t = xp.where(fired, first_step * dt, T)
    rows = xp.arange(batch)
    ty = t[rows, labels]
    if spec.kind == "ttfs_ce":
        values, dz = _softmax_ce(xp, -t / spec.tau0, labels)
        values = values + spec.alpha * xp.expm1(ty / spec.tau1)
        dt_grad = -dz / spec.tau0
        dt_grad[rows, labels] += spec.alpha / spec.tau1 * xp.exp(ty / spec.tau1)
    else:
        r = t - ty[:, None] - spec.delta
        r[rows, labels] = 0.0
        values = 0.5 * (r * r).sum(axis=1)
        dt_grad = r.copy()
        dt_grad[rows, labels] = -r.sum(axis=1)
    dt_grad = xp.where(fired, dt_grad, 0.0) / batch
    return LossTerms(values, xp.argmin(t, axis=1), time_grad=dt_grad)


def spike_count_reg(counts: Any, spec: LossSpec, batch: int) -> Any | None:
    """The §1.6 regulariser's kick per hidden neuron (a heuristic, not a gradient).

    ``counts[b, i]`` spikes in the trial; the kick ``lambda_reg (nbar_i - nu)/B`` (nbar: mean
    over the batch; lambda_reg = upper above nu, lower below) is subtracted from lambda_V at
    each of neuron i's spikes in the backward pass.
    """
    if spec.reg_upper == 0.0 and spec.reg_lower == 0.0:
        return None
    excess = counts.mean(axis=0) - spec.reg_nu
    strength = excess * 0 + spec.reg_lower
    strength = strength + (excess > 0) * (spec.reg_upper - spec.reg_lower)
    return strength * excess / batch
