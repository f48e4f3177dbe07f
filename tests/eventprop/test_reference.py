"""The exact reference checks itself: EventProp gradients against finite differences.

Finite differences use a 4-point stencil (h = 1e-4) on the exact loss; parameters whose
stencil changes the event structure are skipped and counted, never loosened (fdcheck.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from .cases import T, tiny_case
from .fdcheck import compare, finite_differences
from .kernels import segment_peak
from .losses import Loss, evaluate_loss
from .reference import (
    Network,
    NeuronParams,
    Population,
    Projection,
    loss_and_grad,
    simulate,
    with_entry,
)

RTOL = 1e-5


def check_against_fd(net: Network, inputs, loss: Loss, *, min_checked: int = 1) -> float:
    value, grads, fwd = loss_and_grad(net, inputs, T, loss)
    assert np.isfinite(value)
    assert len(fwd.spikes) > 0, "the case must spike to test anything"
    fd = finite_differences(net, inputs, T, loss)
    assert fd.n_unstable <= 0.1 * fd.n_checked, "event structure too fragile for this seed"
    assert fd.n_checked - fd.n_unstable >= min_checked
    err = compare(grads, fd)
    print(f"{loss.kind}: {fd.n_checked - fd.n_unstable}/{fd.n_checked} entries stable, "
          f"{len(fwd.spikes)} spikes, max relative error {err:.2e}")
    assert err <= RTOL, f"max relative error {err:.2e}"
    return err


@pytest.mark.parametrize("kind", ["sum_ce", "avg_ce", "exp_avg_ce", "max_ce", "integral_mse",
                                  "per_timestep_ce"])
def test_voltage_losses_li_outputs(kind):
    scale = 0.1 if kind == "sum_ce" else 1 / 3      # keep the sum readout out of saturation
    net, inputs = tiny_case(0, out_scale=scale)
    check_against_fd(net, inputs, Loss(kind, label=1, target=(0.3, -0.2)))


def test_max_readout_on_an_arrival_kink():
    """A maximum on the kink made by an inhibitory arrival needs dL/dt_a = c dV/dt^-."""
    net, inputs = tiny_case(1, recurrent=True, out_scale=0.1)
    loss = Loss("max_ce", label=1)
    terms = evaluate_loss(simulate(net, inputs, T), loss)
    assert "kink" in [where for where, _ in terms.structure]
    check_against_fd(net, inputs, loss)


@pytest.mark.parametrize("kind", ["ttfs_ce", "ttfs_dmse"])
def test_first_spike_losses_lif_outputs(kind):
    net, inputs = tiny_case(1, output_spiking=True)
    fwd = simulate(net, inputs, T)
    assert all(len(t) > 0 for t in fwd.spike_times("out"))
    check_against_fd(net, inputs, Loss(kind, label=1, tau0=2.0, alpha=3e-3))


def test_recurrent_hidden_layer():
    net, inputs = tiny_case(2, recurrent=True, out_scale=1 / 3)
    check_against_fd(net, inputs, Loss("avg_ce", label=1))


def test_weight_and_delay_gradients():
    net, inputs = tiny_case(2, recurrent=True, delays=True, out_scale=1 / 3, n_in=2, n_hid=3)
    _, grads, _ = loss_and_grad(net, inputs, T, Loss("avg_ce", label=1))
    assert set(grads.delay) == {"in->hid", "hid->hid", "hid->out"}
    check_against_fd(net, inputs, Loss("avg_ce", label=1))


def test_equal_time_constants():
    """tau_s = tau_m uses the limit forms of the propagator, kernels and integrals."""
    net, inputs = tiny_case(1, out_scale=1 / 3, params=NeuronParams(tau_s=20.0))
    check_against_fd(net, inputs, Loss("exp_avg_ce", label=0))


@pytest.mark.parametrize("v_reset", [-0.3, 0.4])
def test_nonzero_reset_uses_theta_minus_reset(v_reset):
    """The jump's (theta - v_reset) factor (EVENTPROP.md checked only v_reset = 0)."""
    net, inputs = tiny_case(1, recurrent=True, out_scale=1 / 3,
                            params=NeuronParams(v_reset=v_reset))
    check_against_fd(net, inputs, Loss("avg_ce", label=0))


def single_neuron(weight: float) -> Network:
    proj = Projection("in", "out", np.array([[weight]]))
    return Network(1, (Population("out", 1, True),), (proj,), NeuronParams())


def touching_weight() -> float:
    """The weight whose single PSP peaks exactly at theta."""
    p = NeuronParams()
    _, peak = segment_peak(0.0, 1.0, 1e3, p.tau_m, p.tau_s)
    return p.theta / peak


@pytest.mark.parametrize("factor", [1 - 1e-9, 1.0, 1 + 1e-14])
def test_touching_threshold_is_not_a_spike(factor):
    fwd = simulate(single_neuron(touching_weight() * factor), [np.array([2.0])], T)
    assert fwd.spikes == []


def test_near_grazing_crossing_is_found_and_counted():
    """V crosses theta between two events (no event sees V >= theta) and is found."""
    fwd = simulate(single_neuron(touching_weight() * (1 + 1e-8)), [np.array([2.0])], T)
    assert len(fwd.spikes) == 1 and fwd.n_near_grazing == 1
    spike = fwd.spikes[0]
    assert 0 < spike.i_minus - 1.0 < 1e-3          # tau_m dV/dt^- tiny but positive
    assert abs(spike.t - (2.0 + 9.2419624)) < 1e-2  # near the PSP peak, mid-interval


def test_arrival_overtaking_a_spike_is_a_structure_change():
    """An arrival crossing its target's spike time kinks the loss without changing any
    spike count; the signature must see it, or finite differences would straddle a kink."""
    net, inputs = tiny_case(2, recurrent=True, out_scale=1 / 3,
                            params=NeuronParams(v_reset=0.4))
    w = net.projection("hid->hid").weight[1, 3]
    before = simulate(net, inputs, T)
    after = simulate(with_entry(net, "hid->hid", "weight", (1, 3), w + 2e-4), inputs, T)
    counts = [len(t) for t in before.spike_times("hid")]
    assert counts == [len(t) for t in after.spike_times("hid")]
    assert before.signature() != after.signature()


def test_two_hidden_layers_with_delays_between_them():
    rng = np.random.default_rng(3)
    inputs = [np.sort(rng.uniform(0.0, 20.0, 4)) for _ in range(3)]
    net = Network(3, (Population("h1", 3, True), Population("h2", 3, True),
                      Population("out", 2, False)),
                  (Projection("in", "h1", rng.normal(3.0, 1.5, (3, 3))),
                   Projection("h1", "h2", rng.normal(4.0, 1.5, (3, 3)),
                              rng.uniform(0.5, 3.0, (3, 3))),
                   Projection("h2", "out", rng.normal(0.5, 0.5, (2, 3)))))
    check_against_fd(net, inputs, Loss("exp_avg_ce", label=0))
