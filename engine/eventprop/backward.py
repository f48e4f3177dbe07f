"""The EventProp backward pass: adjoint dynamics in reverse time with jumps at taped spikes.

For ``n = N..0`` (lambda holds ``lambda(t_n^+)``; EVENTPROP.md §1.3-1.5 and §1.7)::

    max readout:   lambda_V,out -= c / tau_m at its argmax step
    arrivals at n of spikes of i emitted at n - d (pre-jump lambda of the post population):
        G_w[j, i]  -= tau_s g_j sum_b s_b,i lambda_I,j
        G_d[j, i]  -= g_j w_ji sum_b s_b,i (lambda_I,j - lambda_V,j)
        feedback_i += g_j w_ji (lambda_V,j - lambda_I,j)
    spikes at n:   lambda_V += [(theta - v_reset) lambda_V + feedback + dl_p/dt] / (J - u)
                   (skipped and counted when J - u <= grazing_eps), then the regulariser kick
    propagate over (t_{n-1}, t_n] with the loss source s = dl_V/dv of step n (outputs only):
        lambda_V <- alpha lambda_V - s (1 - alpha)
        lambda_I <- beta lambda_I + K lambda_V - s (1 - beta - K)

Delayed arrivals read the post population's lambda of step ``n + d`` from a ring of the
last ``D + 1`` steps (zeros past the trial). The work per step is two dense products per
projection without delays and a gather over the spiking presynaptic neurons with delays.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

from gpuspike.bridge.training_ir import EventPropIR

from .forward import ForwardTape
from .losses import LossTerms


@dataclass
class Gradients:
    """``weight[name]`` and ``delay[name]`` gradients of the mean loss; grazing spikes skipped."""

    weight: dict[str, Any]
    delay: dict[str, Any]
    skipped: int


def backward(xp: ModuleType, ir: EventPropIR, weights: dict[str, Any], delays: dict[str, Any],
             inputs: Any, tape: ForwardTape, terms: LossTerms,
             reg_kick: dict[str, Any] | None = None) -> Gradients:
    """Gradients of the loss whose ``terms`` were computed from ``tape``."""
    n_steps, batch = ir.n_steps, int(inputs.shape[1])
    dtype = inputs.dtype
    pops = {p.name: p for p in ir.populations if not p.is_input}
    prop = {name: p.neuron.propagators(ir.dt) for name, p in pops.items()}
    lam_v = {name: xp.zeros((batch, p.size), dtype=dtype) for name, p in pops.items()}
    lam_i = {name: xp.zeros((batch, p.size), dtype=dtype) for name, p in pops.items()}
    ptr = {name: ring.reader(xp) for name, ring in tape.rings.items()}
    hist = {q.name: (xp.zeros((q.max_delay_steps + 1, batch, pops[q.post].size), dtype=dtype),
                     xp.zeros((q.max_delay_steps + 1, batch, pops[q.post].size), dtype=dtype))
            for q in ir.projections if q.has_delays}
    gw = {q.name: xp.zeros_like(weights[q.name]) for q in ir.projections}
    gd = {q.name: xp.zeros_like(weights[q.name]) for q in ir.projections if q.learn_delay}
    out = ir.output
    skipped = xp.zeros((), dtype=xp.int64)
    # Undelayed input projections: lambda_I of the post population at every input step,
    # reduced against the whole input in one product after the loop.
    lam_i_hist = {q.name: xp.zeros((n_steps, batch, pops[q.post].size), dtype=dtype)
                  for q in ir.projections if q.pre == ir.input.name and not q.has_delays}
    for n in range(n_steps, -1, -1):
        if terms.impulse_step is not None:
            lam_v[out] -= xp.where(terms.impulse_step == n, terms.impulse_coef, 0.0)
        spikes = {ir.input.name: inputs[n]} if n < n_steps else {}
        imv = {}
        for name, ring in tape.rings.items():
            s, imv[name] = ring.spikes_at(xp, ptr[name], n)
            spikes[name] = s
        feedback = {name: xp.zeros_like(lam_v[name]) for name in tape.rings}
        for q in ir.projections:
            post = pops[q.post].neuron
            if q.has_delays:
                hv, hi = hist[q.name]
                slot = n % hv.shape[0]
                hv[slot] = lam_v[q.post] if n < n_steps else 0.0
                hi[slot] = lam_i[q.post] if n < n_steps else 0.0
            if q.name in lam_i_hist:
                if n < n_steps:
                    lam_i_hist[q.name][n] = lam_i[q.post]
                continue
            s = spikes.get(q.pre)
            if s is None:
                continue
            s = s.astype(dtype)
            if not q.has_delays:
                gw[q.name] -= post.tau_s * post.gain * (lam_i[q.post].T @ s)
                if q.pre in feedback:
                    diff = lam_v[q.post] - lam_i[q.post]
                    feedback[q.pre] += post.gain * (diff @ weights[q.name])
                continue
            _delayed_arrivals(xp, q.name, feedback.get(q.pre), post, s, n, weights[q.name],
                              delays[q.name], hist[q.name], gw, gd)
        for name, s in spikes.items():
            if name not in tape.rings:
                continue
            neuron = pops[name].neuron
            jump = (neuron.theta - neuron.v_reset) * lam_v[name] + feedback[name]
            if name == out and terms.time_grad is not None:
                jump = jump + xp.where(tape.first_step == n, terms.time_grad, 0.0)
            ok = s & (imv[name] > max(ir.grazing_eps, 0.0))
            skipped += (s & ~ok).sum()
            safe = xp.where(ok, imv[name], 1.0)
            lam_v[name] = lam_v[name] + xp.where(ok, jump / safe, 0.0)
            if reg_kick and name in reg_kick:
                lam_v[name] = lam_v[name] - xp.where(s, reg_kick[name][None, :], 0.0)
        if n == 0:
            break
        for name, p in prop.items():
            lv, li = lam_v[name], lam_i[name]
            lam_v[name], lam_i[name] = p.alpha * lv, p.beta * li + p.k_iv * lv
        if terms.source is not None:
            p, src = prop[out], terms.source[n]
            lam_v[out] -= src * (1.0 - p.alpha)
            lam_i[out] -= src * (1.0 - p.beta - p.k_iv)
    for q in ir.projections:
        if q.name in lam_i_hist:
            post = pops[q.post].neuron
            flat_in = inputs.reshape(-1, inputs.shape[2])
            flat_lam = lam_i_hist[q.name].reshape(-1, pops[q.post].size)
            gw[q.name] -= post.tau_s * post.gain * (flat_lam.T @ flat_in)
    return Gradients(gw, gd, int(skipped))


def _delayed_arrivals(xp: ModuleType, name: str, feedback: Any | None, post: Any, s: Any, n: int,
                      weight: Any, delay: Any, hist: tuple[Any, Any], gw: dict,
                      gd: dict) -> None:
    """Arrivals at ``n + d[j, i]`` of the spikes ``s`` emitted at ``n`` (delayed projection)."""
    hv, hi = hist
    pre_idx = xp.nonzero(s.any(axis=0))[0]
    if pre_idx.size == 0:
        return
    slots = (n + delay[:, pre_idx]) % hv.shape[0]                  # (n_post, k)
    j = xp.arange(weight.shape[0])[:, None]
    li = hi[slots, :, j]                                           # (n_post, k, B)
    lv = hv[slots, :, j]
    sk = s[:, pre_idx].T[None]                                     # (1, k, B)
    w = weight[:, pre_idx]
    gw[name][:, pre_idx] -= post.tau_s * post.gain * (li * sk).sum(axis=2)
    if name in gd:
        gd[name][:, pre_idx] -= post.gain * w * ((li - lv) * sk).sum(axis=2)
    if feedback is not None:
        feedback[:, pre_idx] += post.gain * (w[:, :, None] * (lv - li)).sum(axis=0).T
