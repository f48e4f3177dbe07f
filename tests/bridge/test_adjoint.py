"""SymPy recognition of EventProp-trainable neurons and the exact step propagators."""

from __future__ import annotations

import numpy as np
import pytest
from gpuspike.bridge.adjoint import lif_from_equations, step_propagators
from gpuspike.bridge.errors import ModelError, UnsupportedFeature
from scipy.linalg import expm

EQS = "dv/dt = (I - v)/tau_m : 1\ndI/dt = -I/tau_s : 1"


@pytest.mark.parametrize("tau_m,tau_s,dt", [(20.0, 5.0, 1.0), (20.0, 20.0, 1.0),
                                             (20.0, 20.0 * (1 + 1e-9), 0.5),
                                             (0.02, 0.005, 1e-3), (5.0, 20.0, 2.0)])
def test_propagators_match_the_matrix_exponential(tau_m, tau_s, dt):
    m = np.array([[-1 / tau_m, 1 / tau_m], [0.0, -1 / tau_s]])
    fwd, adj = expm(m * dt), expm(m.T * dt)
    p = step_propagators(tau_m, tau_s, dt)
    assert p.alpha == pytest.approx(fwd[0, 0], rel=1e-12)
    assert p.beta == pytest.approx(fwd[1, 1], rel=1e-12)
    assert p.p_vi == pytest.approx(fwd[0, 1], rel=1e-9)
    # lambda_V = -mu_V/tau_m, lambda_I = -mu_I/tau_s  =>  K = (tau_m/tau_s) exp(M^T dt)[I, V]
    assert p.k_iv == pytest.approx(adj[1, 0] * tau_m / tau_s, rel=1e-9)


def test_canonical_form_of_a_model_with_units_rest_and_resistance():
    eqs = ("dv/dt = (v_rest - v + R*I)/tau_m : volt\n"
           "dI/dt = -I/tau_s : amp")
    ns = dict(v_rest=-0.065, R=1e8, tau_m=0.02, tau_s=0.005, vt=-0.05, vr=-0.07)
    m = lif_from_equations(eqs, ns, threshold="v > vt", reset="v = vr", initial_v=-0.06)
    assert (m.voltage, m.current) == ("v", "I")
    assert m.tau_m == pytest.approx(0.02) and m.tau_s == pytest.approx(0.005)
    assert m.v_rest == pytest.approx(-0.065) and m.gain == pytest.approx(1e8)
    assert m.theta == pytest.approx(0.015) and m.v_reset == pytest.approx(-0.005)
    assert m.u0 == pytest.approx(0.005)


def test_leaky_integrator_readout_and_literal_units():
    m = lif_from_equations("dv/dt = (I - v)/(20*ms) : 1\ndI/dt = -I/(5*ms) : 1",
                           threshold=None, reset=None)
    assert not m.spiking
    assert m.tau_m == pytest.approx(0.02) and m.tau_s == pytest.approx(0.005)


@pytest.mark.parametrize("eqs,threshold,reset,match", [
    ("dv/dt = (I - v*v)/tau_m : 1\ndI/dt = -I/tau_s : 1", "v > 1", "v = 0", "not linear"),
    (EQS + "\ndw/dt = -w/tau_m : 1", "v > 1", "v = 0", "exactly two state"),
    ("dv/dt = (I - v)/tau_m : 1\ndI/dt = -I/tau_s + v/tau_m : 1", "v > 1", "v = 0",
     "cannot tell"),
    ("dv/dt = (I - v)/tau_m : 1\ndI/dt = (1 - I)/tau_s : 1", "v > 1", "v = 0",
     "constant drive"),
    (EQS, "v > 1", "v -= 1", "relative"),
    (EQS, "I > 1", "v = 0", "membrane"),
    (EQS, "v > 1", None, "threshold without a reset"),
    ("dv/dt = (I - v)/tau_m + t/tau_m**2 : 1\ndI/dt = -I/tau_s : 1", "v > 1", "v = 0",
     "time, noise"),
])
def test_models_eventprop_cannot_train_are_rejected_with_the_reason(eqs, threshold, reset,
                                                                    match):
    with pytest.raises(UnsupportedFeature, match=match):
        lif_from_equations(eqs, dict(tau_m=0.02, tau_s=0.005), threshold=threshold,
                           reset=reset)


def test_refractoriness_and_reset_above_threshold_are_errors():
    ns = dict(tau_m=0.02, tau_s=0.005)
    with pytest.raises(UnsupportedFeature, match="refractory"):
        lif_from_equations(EQS, ns, threshold="v > 1", reset="v = 0", refractory=2e-3)
    with pytest.raises(ModelError, match="below the threshold"):
        lif_from_equations(EQS, ns, threshold="v > 1", reset="v = 2")


def test_alif_is_recognised_and_its_mistakes_named():
    from gpuspike.bridge.errors import UnsupportedFeature

    eqs = EQS + "\nda/dt = -a/(200*ms) : 1"
    ns = dict(tau_m=0.02, tau_s=0.005)
    m = lif_from_equations(eqs, ns, threshold="v > 0.6 + 0.5*a", reset="v = 0; a += 2")
    assert (m.tau_a, m.beta_a, m.theta, m.adaptation) == (pytest.approx(0.2), 1.0, 0.6, "a")
    assert m.adaptive and not lif_from_equations(EQS, ns, threshold="v > 1",
                                                 reset="v = 0").adaptive
    with pytest.raises(UnsupportedFeature, match="must add a step"):
        lif_from_equations(eqs, ns, threshold="v > 0.6 + 0.5*a", reset="v = 0")
    with pytest.raises(UnsupportedFeature, match="adaptive threshold"):
        lif_from_equations(EQS + "\nda/dt = a/(200*ms) : 1", ns, threshold="v > 0.6 + a",
                           reset="v = 0; a += 1")
    with pytest.raises(UnsupportedFeature, match="exactly two state"):
        lif_from_equations(eqs, ns, threshold="v > 0.6", reset="v = 0; a += 1")
