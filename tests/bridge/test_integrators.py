"""Tests of gpuspike.bridge.integrators: every method against analytic solutions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import sympy
from gpuspike.bridge.errors import ModelError
from gpuspike.bridge.integrators import (
    AUTO_ORDER,
    INTEGRATORS,
    IntegrationError,
    choose_method,
    integrate,
)
from gpuspike.bridge.ir import Assign

x, y, v, I, m, tau, tau_m, tau_s, E = sympy.symbols("x y v I m tau tau_m tau_s E")
alpha, beta, mu, sigma, xi, w0, zeta = sympy.symbols("alpha beta mu sigma xi omega zeta")


def normal_symbols(k: int) -> sympy.Symbol:
    """Noise draws as plain symbols, so that tests can feed numpy arrays."""
    return sympy.Symbol(f"N{k}")


def run(statements, values: dict, dt: float, steps: int, rng=None) -> dict:
    """Execute ``statements`` ``steps`` times on numbers or numpy arrays."""
    compiled = []
    for stmt in statements:
        assert isinstance(stmt, Assign)
        args = sorted(s.name for s in stmt.expr.free_symbols)
        compiled.append((stmt.target, args, sympy.lambdify(args, stmt.expr, "numpy")))
    env = {**values, "dt": dt}
    shape = np.shape(next(iter(values.values())))
    for n in range(steps):
        env["t"] = n * dt
        if rng is not None:
            for k in range(4):
                env[f"N{k}"] = rng.standard_normal(shape)
        for target, args, fn in compiled:
            env[target] = fn(*(env[a] for a in args))
    return env


def order(errors: list[float]) -> float:
    return math.log2(errors[0] / errors[1])


# ----------------------------------------------------------------------------- decay
DECAY = {"x": -x / tau}
ORDERS = {"euler": 1, "euler_maruyama": 1, "rk2": 2, "heun": 2, "rk4": 4}


def decay_error(method: str, steps: int) -> float:
    T, tau0 = 0.05, 0.01
    out = run(integrate(DECAY, method), {"x": 1.0, "tau": tau0}, T / steps, steps)
    return abs(out["x"] - math.exp(-T / tau0))


@pytest.mark.parametrize("method", sorted(ORDERS))
def test_decay_convergence_order(method):
    errors = [decay_error(method, n) for n in (64, 128)]
    assert order(errors) == pytest.approx(ORDERS[method], abs=0.3)


@pytest.mark.parametrize("method", ["exact", "exponential_euler"])
def test_decay_exact_methods(method):
    assert decay_error(method, 7) < 1e-12
    (stmt,) = integrate(DECAY, method)
    assert stmt == Assign("x", x * sympy.exp(-sympy.Symbol("dt") / tau))


# ----------------------------------------------------------------------------- LIF + synapse
LIF_SYN = {"v": (I - v) / tau_m, "I": -I / tau_s}
LIF_VALUES = {"v": 0.2, "I": 1.5, "tau_m": 0.02, "tau_s": 0.005}


def lif_syn_analytic(T: float, p: dict) -> tuple[float, float]:
    tm, ts, v0, i0 = p["tau_m"], p["tau_s"], p["v"], p["I"]
    if tm == ts:
        v_t = (v0 + i0 * T / tm) * math.exp(-T / tm)
    else:
        v_t = v0 * math.exp(-T / tm) + i0 * ts / (ts - tm) * (math.exp(-T / ts)
                                                                 - math.exp(-T / tm))
    return v_t, i0 * math.exp(-T / ts)


def lif_error(method: str, steps: int, odes=LIF_SYN, values=LIF_VALUES) -> float:
    T = 0.03
    out = run(integrate(odes, method), dict(values), T / steps, steps)
    v_t, i_t = lif_syn_analytic(T, values)
    return max(abs(out["v"] - v_t), abs(out["I"] - i_t))


@pytest.mark.parametrize("method", ["euler", "rk2", "heun", "rk4"])
def test_lif_synapse_convergence_order(method):
    errors = [lif_error(method, n) for n in (100, 200)]
    assert order(errors) == pytest.approx(ORDERS[method], abs=0.3)


def test_lif_synapse_exact():
    assert choose_method(LIF_SYN) == "exact"
    assert lif_error("exact", 13) < 1e-12
    statements = integrate(LIF_SYN, "exact")
    # new values go through temporaries, so v's update sees the old I
    assert [s.target for s in statements] == ["_v_new", "_I_new", "v", "I"]
    assert statements[1].expr == I * sympy.exp(-sympy.Symbol("dt") / tau_s)


def test_lif_synapse_exact_equal_time_constants():
    # one symbol for both: Jordan form
    same = {"v": (I - v) / tau_m, "I": -I / tau_m}
    values = {**LIF_VALUES, "tau_s": LIF_VALUES["tau_m"]}
    assert lif_error("exact", 9, same, values) < 1e-12
    # numerically equal after baking the parameters
    baked = {k: e.subs({tau_m: 0.02, tau_s: 0.02}) for k, e in LIF_SYN.items()}
    assert lif_error("exact", 9, baked, values) < 1e-12


def test_lif_synapse_exponential_euler_is_first_order():
    errors = [lif_error("exponential_euler", n) for n in (100, 200)]
    assert order(errors) == pytest.approx(1, abs=0.3)


def test_exact_with_constant_input_and_singular_matrix():
    odes = {"v": (E - v + I) / tau_m, "I": -I / tau_s, "q": I}  # q integrates I: A singular
    values = {"v": 0.1, "I": 2.0, "q": 0.0, "E": -0.07, "tau_m": 0.02, "tau_s": 0.005}
    T = 0.02
    out = run(integrate(odes, "exact"), dict(values), T / 5, 5)
    A = np.array([[-1 / 0.02, 1 / 0.02, 0], [0, -1 / 0.005, 0], [0, 1, 0]])
    b = np.array([-0.07 / 0.02, 0, 0])
    M = np.zeros((4, 4))
    M[:3, :3], M[:3, 3] = A, b
    ref = scipy.linalg.expm(M * T) @ np.array([0.1, 2.0, 0.0, 1.0])
    np.testing.assert_allclose([out["v"], out["I"], out["q"]], ref[:3], rtol=1e-11)


# ----------------------------------------------------------------------------- oscillator
OSC = {"x": y, "y": -w0**2 * x - 2 * zeta * w0 * y}
OSC_VALUES = {"x": 1.0, "y": 0.0, "omega": 2 * math.pi * 10, "zeta": 0.1}


def oscillator_error(method: str, steps: int) -> float:
    T = 0.1
    out = run(integrate(OSC, method), dict(OSC_VALUES), T / steps, steps)
    w, z = OSC_VALUES["omega"], OSC_VALUES["zeta"]
    ref = scipy.linalg.expm(np.array([[0, 1], [-w * w, -2 * z * w]]) * T) @ [1.0, 0.0]
    return float(np.max(np.abs([out["x"] - ref[0], out["y"] - ref[1]])))


@pytest.mark.parametrize("method", ["euler", "rk2", "heun", "rk4"])
def test_damped_oscillator_convergence_order(method):
    errors = [oscillator_error(method, n) for n in (400, 800)]
    assert order(errors) == pytest.approx(ORDERS[method], abs=0.3)


def test_oscillator_not_exact_and_auto_uses_exponential_euler():
    assert not INTEGRATORS["exact"].can_integrate(OSC)
    with pytest.raises(IntegrationError, match="cycle"):
        integrate(OSC, "exact")
    assert choose_method(OSC) == "exponential_euler"
    assert oscillator_error("exponential_euler", 4000) < 0.05


# ----------------------------------------------------------------------------- gating
GATE = {"m": alpha * (1 - m) - beta * m}


def test_gating_exponential_euler_exact_for_constant_rates():
    a, b, m0, T = 400.0, 100.0, 0.05, 0.01
    out = run(integrate(GATE, "exponential_euler"), {"m": m0, "alpha": a, "beta": b},
              T / 3, 3)
    m_inf = a / (a + b)
    assert out["m"] == pytest.approx(m_inf + (m0 - m_inf) * math.exp(-(a + b) * T),
                                     abs=1e-13)


def test_hh_like_system_is_conditionally_linear():
    g, C = sympy.symbols("g C")
    rate = 0.1 * (v + 40) / (1 - sympy.exp(-(v + 40) / 10))
    odes = {"v": g * m**3 * (E - v) / C, "m": rate * (1 - m) - 4 * sympy.exp(-v / 18) * m}
    assert not INTEGRATORS["exact"].can_integrate(odes)
    assert choose_method(odes) == "exponential_euler"
    statements = integrate(odes)
    assert all(s.expr.has(sympy.exp) for s in statements[:2])


def test_exponential_euler_zero_coefficient_is_euler():
    (stmt,) = integrate({"x": tau}, "exponential_euler")
    assert stmt.expr == x + tau * sympy.Symbol("dt")


def test_exponential_euler_rejects_nonlinear():
    with pytest.raises(IntegrationError, match="independent of v"):
        integrate({"v": -(v**2)}, "exponential_euler")


# ----------------------------------------------------------------------------- noise
def test_euler_maruyama_ornstein_uhlenbeck_stationary_statistics():
    tau0, mu0, sigma0, n = 0.01, -0.06, 0.004, 40_000
    odes = {"x": (mu - x) / tau + sigma * sympy.sqrt(2 / tau) * xi}
    assert choose_method(odes) == "euler"
    statements = integrate(odes, normal=normal_symbols)
    dt = tau0 / 50
    values = {"x": np.full(n, mu0), "mu": mu0, "tau": tau0, "sigma": sigma0}
    out = run(statements, values, dt, 500, rng=np.random.default_rng(1))
    a = dt / tau0
    expected_var = sigma0**2 / (1 - a / 2)  # stationary variance of the discrete scheme
    assert np.mean(out["x"]) == pytest.approx(mu0, abs=4 * sigma0 / math.sqrt(n))
    assert np.var(out["x"]) == pytest.approx(expected_var, rel=4 * math.sqrt(2 / n))
    assert np.var(out["x"]) == pytest.approx(sigma0**2, rel=0.03)


@pytest.mark.parametrize(("method", "drift"), [("heun", 0.5), ("euler_maruyama", 0.0)])
def test_multiplicative_noise_stratonovich_vs_ito(method, drift):
    # dx = s x dW: E[x(T)] = exp(s^2 T / 2) (Stratonovich) or 1 (Ito)
    s, n, T = 0.5, 40_000, 1.0
    odes = {"x": s * x * xi}
    out = run(integrate(odes, method, normal=normal_symbols), {"x": np.ones(n)}, T / 200,
              200, rng=np.random.default_rng(2))
    assert np.mean(out["x"]) == pytest.approx(math.exp(drift * s * s * T), rel=0.03)


def test_noise_draws_once_per_symbol():
    xi_a = sympy.Symbol("xi_a")
    odes = {"x": -x / tau + xi, "y": -y / tau + xi + xi_a}
    statements = integrate(odes, "euler")
    draws = [s for s in statements if s.expr.func.__name__ == "randn"]
    assert [(s.target, s.expr.args) for s in draws] == [
        ("_noise_xi", (sympy.Integer(0),)), ("_noise_xi_a", (sympy.Integer(1),))
    ]


def test_multiplicative_noise_auto_and_euler_rejects():
    odes = {"x": -x / tau + x * xi}
    assert choose_method(odes) == "heun"
    with pytest.raises(IntegrationError, match="multiplicative"):
        integrate(odes, "euler")


@pytest.mark.parametrize("method", ["exact", "exponential_euler", "rk2", "rk4"])
def test_deterministic_methods_reject_noise(method):
    with pytest.raises(IntegrationError, match="stochastic"):
        integrate({"x": -x / tau + xi}, method)


def test_nonlinear_noise_rejected():
    with pytest.raises(IntegrationError, match="linearly"):
        integrate({"x": xi**2}, "euler")


# ----------------------------------------------------------------------------- choice
def test_exact_rejects_nonlinear_and_time_dependent():
    with pytest.raises(IntegrationError, match="linear"):
        integrate({"v": -(v**3)}, "exact")
    with pytest.raises(IntegrationError, match="linear"):
        integrate({"v": (sympy.sin(sympy.Symbol("t")) - v) / tau}, "exact")
    stim = sympy.Function("stimulus")(sympy.Symbol("t"))
    assert choose_method({"v": (stim - v) / tau}) == "exponential_euler"


@pytest.mark.parametrize(
    ("odes", "method"),
    [
        (DECAY, "exact"),
        (GATE, "exact"),
        ({"v": -(v**3) + I}, "rk4"),
        ({"v": (I - v) / tau, "I": -I * v}, "exponential_euler"),
        ({"x": -x / tau + sigma * xi}, "euler"),
        ({"x": -x / tau + sigma * x * xi}, "heun"),
    ],
)
def test_auto_choice(odes, method):
    assert choose_method(odes) == method
    assert integrate(odes) == integrate(odes, method)


def test_unknown_method_lists_known_ones():
    with pytest.raises(ModelError, match="unknown integration method 'rk45'.*'rk4'"):
        integrate(DECAY, "rk45")
    assert set(AUTO_ORDER) <= set(INTEGRATORS)
