"""An independent reference for the surrogate rules: the unrolled network in forward mode.

Plain NumPy, float64, one loop over steps: the network's discrete map (that of
:mod:`gpuspike.engine.rules.kernels`, written here from its equations, not from the kernels)
carried together with its tangents with respect to every weight at once (forward-mode
differentiation: a different algorithm from the kernels' reverse pass). Where a spike is
taken, its tangent is ``sigma(u') du'`` (the surrogate's derivative); the reset is
detached (``du = (1 - s) du'``). A refractory neuron's membrane is held (not propagated)
for ``R`` steps after a spike's, where it cannot spike (no surrogate either). The losses
are written here from their definitions.

``eprop=True`` drops the tangent of hidden spikes where they enter a hidden population
(recurrence): e-prop's approximation, which keeps every neuron's own state and the
readout's dependence on the spikes exact.
"""

from __future__ import annotations

import numpy as np


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def reference_gradients(ir, params, x, labels, surrogate, *, eprop=False, reg=0.0, nu=0.0):
    """``(loss, {proj: dL/dw (post, pre)}, vout)`` of the batch ``x`` (``(N, B, n_in)``
    counts); the loss is ``ir.loss.kind`` (avg_ce, per_timestep_ce, max_ce, sum_ce) plus
    ``reg/2 sum_j (mean_b count_j - nu)^2`` over hidden neurons."""
    N, B = x.shape[0], x.shape[1]
    pops = [p for p in ir.populations if not p.is_input]
    sizes = {q.name: (ir.population(q.post).size, ir.population(q.pre).size)
             for q in ir.projections}
    offsets, n_par = {}, 0
    for q in ir.projections:
        offsets[q.name] = n_par
        n_par += sizes[q.name][0] * sizes[q.name][1]
    u = {p.name: np.full((B, p.size), p.neuron.u0) for p in pops}
    # steps left of each neuron's refractory period (the membrane held at the reset)
    rc = {p.name: np.zeros((B, p.size), dtype=int) for p in pops}
    ad = {p.name: np.zeros((B, p.size)) for p in pops}               # ALIF adaptation
    dad = {p.name: np.zeros((n_par, B, p.size)) for p in pops}
    J = {p.name: np.zeros((B, p.size)) for p in pops}
    du = {p.name: np.zeros((n_par, B, p.size)) for p in pops}
    dJ = {p.name: np.zeros((n_par, B, p.size)) for p in pops}
    counts = {p.name: np.zeros((B, p.size)) for p in pops if p.neuron.spiking}
    dcounts = {p.name: np.zeros((n_par, B, p.size)) for p in pops if p.neuron.spiking}
    hist: dict[str, list] = {p.name: [] for p in ir.populations}   # (m, dm) per step
    delays = {q.name: np.clip(np.rint(params[q.name + ".d"] / ir.dt), 0,
                              q.max_delay_steps).astype(int)
              for q in ir.projections if q.has_delays}
    out = ir.population(ir.output)
    vout, dvout = np.zeros((N + 1, B, out.size)), np.zeros((N + 1, n_par, B, out.size))
    for n in range(N + 1):
        spikes, dspikes = {}, {}
        for p in pops:
            nrn = p.neuron
            held = (rc[p.name] > 0) & (n >= 1)
            if n >= 1:
                a = np.exp(-ir.dt / nrn.tau_m)
                pr = nrn.propagators(ir.dt)
                assert abs(pr.alpha - a) < 1e-15
                u[p.name] = np.where(held, u[p.name], pr.alpha * u[p.name] + pr.p_vi * J[p.name])
                du[p.name] = np.where(held, du[p.name],
                                      pr.alpha * du[p.name] + pr.p_vi * dJ[p.name])
                rc[p.name] = rc[p.name] - held
                J[p.name] = pr.beta * J[p.name]
                dJ[p.name] = pr.beta * dJ[p.name]
                if nrn.spiking and nrn.adaptive:
                    rho = np.exp(-ir.dt / nrn.tau_a)
                    ad[p.name], dad[p.name] = rho * ad[p.name], rho * dad[p.name]
            if p.name == ir.output:
                vout[n] = u[p.name] + nrn.v_rest
                dvout[n] = du[p.name]
            if nrn.spiking:
                on = (1 <= n <= N - 1) & ~held
                beta_a = nrn.beta_a if nrn.adaptive else 0.0
                s = (u[p.name] >= nrn.theta + beta_a * ad[p.name]) & on
                sig = surrogate(u[p.name] - beta_a * ad[p.name], nrn.theta, nrn.v_reset) * on
                ds = sig * (du[p.name] - beta_a * dad[p.name])
                ad[p.name] = ad[p.name] + s
                dad[p.name] = dad[p.name] + ds
                spikes[p.name], dspikes[p.name] = s.astype(float), ds
                counts[p.name] += s
                dcounts[p.name] += ds
                rc[p.name] = np.where(s, nrn.refractory_steps(ir.dt), rc[p.name])
                u[p.name] = np.where(s, nrn.v_reset, u[p.name])
                du[p.name] = np.where(s, 0.0, du[p.name])
        hist[ir.input.name].append((x[n] if n < N else np.zeros_like(x[0]), None))
        for name in spikes:
            hist[name].append((spikes[name], dspikes[name]))
        for q in ir.projections:
            post = ir.population(q.post).neuron
            W = params[q.name + ".w"]
            n_post, n_pre = W.shape
            d = delays.get(q.name, np.zeros(W.shape, dtype=int))
            # arrivals at step n through (a, c): the pre's spikes of step n - d[a, c]
            arr = np.zeros((B, n_post, n_pre))
            darr = np.zeros((n_par, B, n_post, n_pre))
            for a in range(n_post):
                for c in range(n_pre):
                    if n - d[a, c] < 0:
                        continue
                    m, dm = hist[q.pre][n - d[a, c]]
                    arr[:, a, c] = m[:, c]
                    if dm is not None and not (eprop and q.post != ir.output):
                        darr[:, :, a, c] = dm[:, :, c]
            J[q.post] = J[q.post] + post.gain * (arr * W[None]).sum(axis=2)
            tang = (darr * W[None, None]).sum(axis=3)
            # d/dW[a, c]: the arrivals through (a, c)
            o = offsets[q.name]
            for a in range(n_post):
                for c in range(n_pre):
                    tang[o + a * n_pre + c, :, a] += arr[:, a, c]
            dJ[q.post] = dJ[q.post] + post.gain * tang
    # the loss and its tangent
    y = np.eye(out.size)[labels]
    T = N * ir.dt
    kind = ir.loss.kind
    if kind in ("avg_ce", "sum_ce"):
        scale = ir.dt / T if kind == "avg_ce" else ir.dt
        z, dz = scale * vout[1:].sum(axis=0), scale * dvout[1:].sum(axis=0)
        p = _softmax(z)
        loss = -np.log((p * y).sum(axis=1)).mean()
        dloss = ((p - y)[None] * dz).sum(axis=(1, 2)) / B
    elif kind == "max_ce":
        idx = 1 + vout[1:].argmax(axis=0)
        b, kk = np.meshgrid(np.arange(B), np.arange(out.size), indexing="ij")
        z, dz = vout[idx, b, kk], dvout[idx, :, b, kk].transpose(2, 0, 1)
        p = _softmax(z)
        loss = -np.log((p * y).sum(axis=1)).mean()
        dloss = ((p - y)[None] * dz).sum(axis=(1, 2)) / B
    elif kind == "per_timestep_ce":
        p = _softmax(vout[1:])
        loss = -(np.log((p * y[None]).sum(axis=2))).sum(axis=0).mean() * ir.dt / T
        dloss = ((p - y[None])[:, None] * dvout[1:]).sum(axis=(0, 2, 3)) * ir.dt / T / B
    else:
        raise ValueError(kind)
    for name, c in counts.items():
        if name == ir.output or reg == 0:
            continue
        excess = c.mean(axis=0) - nu
        loss += 0.5 * reg * (excess ** 2).sum()
        dloss = dloss + reg * (excess[None] * dcounts[name].mean(axis=1)).sum(axis=1)
    grads = {q.name: dloss[offsets[q.name]:offsets[q.name] + np.prod(sizes[q.name])]
             .reshape(sizes[q.name]) for q in ir.projections}
    return loss, grads, vout
