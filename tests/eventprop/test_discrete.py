"""The discrete-time twin converges to the exact EventProp gradients as dt shrinks.

This is the comparison the engine's own gradients will later go through: relative error of
all gradients together (weights and delays), ``|g_dt - g_exact| / |g_exact|``.
"""

from __future__ import annotations

import numpy as np
import pytest

from .cases import T, tiny_case
from .discrete import backward_discrete, discrete_loss, loss_and_grad_discrete, simulate_discrete
from .kernels import current_to_voltage
from .losses import Loss
from .reference import (
    Gradients,
    Network,
    NeuronParams,
    Population,
    Projection,
    loss_and_grad,
)
from .test_reference import touching_weight

DTS = (0.03, 0.01, 0.003, 0.001)     # ms


def flat(g: Gradients) -> np.ndarray:
    return np.concatenate([g.weight[k].ravel() for k in sorted(g.weight)]
                          + [g.delay[k].ravel() for k in sorted(g.delay)])


def relative_errors(net: Network, inputs, loss: Loss) -> list[float]:
    _, exact, fwd = loss_and_grad(net, inputs, T, loss)
    counts = np.bincount([s.neuron for s in fwd.spikes], minlength=net.n_neurons)
    errors = []
    for dt in DTS:
        _, grads, dfwd = loss_and_grad_discrete(net, inputs, T, dt, loss)
        assert (dfwd.spike_counts() == counts).all(), f"dt={dt}: spike counts differ"
        errors.append(float(np.linalg.norm(flat(grads) - flat(exact))
                            / np.linalg.norm(flat(exact))))
    return errors


LI = dict(seed=3, recurrent=True, out_scale=0.1)
CASES = {
    "sum_ce": (LI, Loss("sum_ce", label=1)),
    "avg_ce": (LI, Loss("avg_ce", label=1)),
    "exp_avg_ce": (LI, Loss("exp_avg_ce", label=1)),
    "max_ce": (LI, Loss("max_ce", label=1)),
    "integral_mse": (LI, Loss("integral_mse", target=(0.3, -0.2))),
    "per_timestep_ce": (LI, Loss("per_timestep_ce", label=1)),
    "ttfs_ce": (dict(seed=1, output_spiking=True), Loss("ttfs_ce", label=1, tau0=2.0)),
    "ttfs_dmse": (dict(seed=4, output_spiking=True), Loss("ttfs_dmse", label=0)),
    "delays": (dict(seed=2, recurrent=True, delays=True, out_scale=0.1),
               Loss("avg_ce", label=1)),
    "equal_tau": (dict(seed=4, recurrent=True, out_scale=0.1, params=NeuronParams(tau_s=20.0)),
                  Loss("avg_ce", label=1)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_discrete_gradients_converge_to_exact(name):
    kwargs, loss = CASES[name]
    net, inputs = tiny_case(**kwargs)
    errors = relative_errors(net, inputs, loss)
    print(f"{name}: relative gradient error at dt={DTS} ms: "
          + ", ".join(f"{e:.2e}" for e in errors))
    assert errors[-1] < errors[0] / 8, "no O(dt) convergence over a 30x smaller dt"
    assert errors[-1] <= 1e-3


def test_discrete_guard_skips_and_counts_overshoot_spikes():
    """On a coarse grid a crossing can first be seen after the peak, where I - V < 0.

    With dt = 2 ms the PSP is sampled at lags 8 and 10 ms around its 9.24 ms peak; a weight
    that just reaches theta at lag 10 is detected there, past the peak.
    """
    p = NeuronParams()
    w = p.theta / float(current_to_voltage(10.0, p.tau_m, p.tau_s)) * (1 + 1e-6)
    assert w > touching_weight()
    proj = Projection("in", "out", np.array([[w]]))
    net = Network(1, (Population("out", 1, True),), (proj,), p)
    fwd = simulate_discrete(net, [np.array([2.0])], T, dt=2.0)
    ((_, i_minus_v, _),) = [s for spikes in fwd.spikes_at.values() for s in spikes]
    assert i_minus_v < 0.0
    terms = discrete_loss(fwd, Loss("ttfs_dmse", label=0, delta=0.0))
    grads, n_skipped = backward_discrete(fwd, terms)
    assert n_skipped == 1
    assert np.isfinite(grads.weight["in->out"]).all()
