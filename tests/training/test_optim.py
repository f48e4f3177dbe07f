"""Tests of the optimisers: hand-derived and closed-form updates, convergence, state."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gpuspike.bridge.errors import ModelError
from gpuspike.engine.training.optim import SGD, Adam, to_host


def test_adam_two_steps_by_hand(xp) -> None:
    # p0 = 1, g1 = 0.5, g2 = -1, lr = 0.1, beta1 = 0.9, beta2 = 0.999, eps = 1e-8.
    # step 1: m = 0.05, v = 0.00025, m_hat = 0.5, v_hat = 0.25
    #         p1 = 1 - 0.1 * 0.5 / (0.5 + 1e-8)
    # step 2: m = 0.045 - 0.1 = -0.055, v = 0.00024975 + 0.001 = 0.00124975
    #         m_hat = -0.055 / 0.19, v_hat = 0.00124975 / 0.001999
    p1 = 1 - 0.1 * 0.5 / (0.5 + 1e-8)
    p2 = p1 - 0.1 * (-0.055 / 0.19) / (math.sqrt(0.00124975 / 0.001999) + 1e-8)
    params = {"p": xp.asarray([1.0])}
    opt = Adam(lr=0.1)
    opt.step(params, {"p": xp.asarray([0.5])})
    assert to_host(params["p"])[0] == pytest.approx(p1, rel=1e-12)
    opt.step(params, {"p": xp.asarray([-1.0])})
    assert to_host(params["p"])[0] == pytest.approx(p2, rel=1e-12)
    assert p2 == pytest.approx(0.9 + 0.1 * 0.3661, abs=1e-4)  # sanity of the literals


def test_adam_matches_the_closed_form(xp) -> None:
    # m_t = (1 - b1) sum_k b1^(t-k) g_k, v_t = (1 - b2) sum_k b2^(t-k) g_k^2 and
    # p_t = p_{t-1} - lr m_t / (1 - b1^t) / (sqrt(v_t / (1 - b2^t)) + eps)
    rng = np.random.default_rng(0)
    g = rng.normal(size=(6, 4))
    lr, b1, b2, eps = 0.03, 0.8, 0.99, 1e-6
    opt = Adam(lr, b1, b2, eps)
    params = {"p": xp.asarray(np.ones(4))}
    want = np.ones(4)
    for t in range(1, 7):
        opt.step(params, {"p": xp.asarray(g[t - 1])})
        w1 = b1 ** (t - np.arange(1, t + 1))[:, None]
        w2 = b2 ** (t - np.arange(1, t + 1))[:, None]
        m = (1 - b1) * (w1 * g[:t]).sum(0)
        v = (1 - b2) * (w2 * g[:t] ** 2).sum(0)
        want = want - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        np.testing.assert_allclose(to_host(params["p"]), want, rtol=1e-12)
    # a constant gradient makes every bias-corrected step lr * g / (|g| + eps)
    opt = Adam(0.1)
    params = {"p": xp.asarray([0.0, 0.0])}
    for _ in range(5):
        opt.step(params, {"p": xp.asarray([2.0, -0.5])})
    np.testing.assert_allclose(
        to_host(params["p"]), [-0.5 * 2 / (2 + 1e-8), 0.5 * 0.5 / (0.5 + 1e-8)], rtol=1e-12
    )


def test_sgd_plain_and_momentum(xp) -> None:
    params = {"p": xp.asarray([1.0, 2.0])}
    SGD(0.5).step(params, {"p": xp.asarray([2.0, -2.0])})
    np.testing.assert_allclose(to_host(params["p"]), [0.0, 3.0])
    # v_t = sum_k mu^(t-k) g_k, p_t = p_0 - lr sum_t v_t
    g = [1.0, -2.0, 0.5]
    mu, lr = 0.9, 0.1
    opt = SGD(lr, momentum=mu)
    params = {"p": xp.asarray([0.0])}
    total = 0.0
    for t in range(1, 4):
        opt.step(params, {"p": xp.asarray([g[t - 1]])})
        total += sum(mu ** (t - k) * g[k - 1] for k in range(1, t + 1))
    assert to_host(params["p"])[0] == pytest.approx(-lr * total, rel=1e-12)


@pytest.mark.parametrize(
    "make", [lambda: SGD(0.1), lambda: SGD(0.05, momentum=0.9), lambda: Adam(0.05)]
)
def test_minimises_a_quadratic(xp, make) -> None:
    # f(p) = 1/2 sum_i a_i (p_i - c_i)^2, grad = a (p - c), minimum at c
    a = np.array([1.0, 4.0, 0.5])
    c = np.array([1.0, -2.0, 3.0])
    params = {"p": xp.zeros(3)}
    opt = make()
    for _ in range(2000):
        p = to_host(params["p"])
        opt.step(params, {"p": xp.asarray(a * (p - c))})
    np.testing.assert_allclose(to_host(params["p"]), c, atol=1e-3)


def test_bounds_clamp_and_missing_grads(xp) -> None:
    params = {"d": xp.asarray([0.01, 0.5, 0.9]), "w": xp.asarray([1.0])}
    opt = SGD(1.0, bounds={"d": (0.0, 0.6)})
    opt.step(params, {"d": xp.asarray([0.5, 0.0, -0.5])})  # no gradient for w: unchanged
    np.testing.assert_allclose(to_host(params["d"]), [0.0, 0.5, 0.6])
    np.testing.assert_allclose(to_host(params["w"]), [1.0])
    opt = Adam(1.0, bounds={"w": (None, 0.5)})
    opt.step(params, {"w": xp.asarray([-1.0])})
    np.testing.assert_allclose(to_host(params["w"]), [0.5])


def test_params_updated_in_place(xp) -> None:
    w = xp.asarray(np.ones((2, 2), dtype=np.float32))
    params = {"w": w}
    Adam(0.1).step(params, {"w": xp.ones((2, 2), dtype=xp.float32)})
    assert params["w"] is w and w.dtype == np.float32
    np.testing.assert_allclose(to_host(w), 0.9, rtol=1e-6)


@pytest.mark.parametrize("make", [lambda: SGD(0.1, momentum=0.5), lambda: Adam(0.1)])
def test_state_dict_round_trip(xp, make) -> None:
    rng = np.random.default_rng(1)
    grads = [rng.normal(size=3) for _ in range(5)]
    a, b = make(), make()
    pa = {"p": xp.zeros(3)}
    for g in grads:
        a.step(pa, {"p": xp.asarray(g)})
    pb = {"p": xp.zeros(3)}
    for g in grads[:3]:
        b.step(pb, {"p": xp.asarray(g)})
    state = b.state_dict()
    assert all(
        isinstance(v, np.ndarray)
        for bufs in state.values()
        if isinstance(bufs, dict)
        for v in bufs.values()
    )
    c = make()
    c.load_state_dict(state)
    for g in grads[3:]:
        c.step(pb, {"p": xp.asarray(g)})
    np.testing.assert_array_equal(to_host(pa["p"]), to_host(pb["p"]))
    with pytest.raises(ModelError, match="optimiser"):
        (SGD(0.1) if isinstance(c, Adam) else Adam()).load_state_dict(state)


def test_errors_name_the_problem() -> None:
    params = {"w": np.zeros(2)}
    with pytest.raises(ModelError, match="grads=None"):
        SGD(0.1).step(params, None)
    with pytest.raises(ModelError, match="no parameter"):
        SGD(0.1).step(params, {"v": np.zeros(2)})
    with pytest.raises(ModelError, match="shape"):
        SGD(0.1).step(params, {"w": np.zeros(3)})
    with pytest.raises(ModelError):
        Adam(beta1=1.0)
    with pytest.raises(ModelError):
        SGD(-1.0)
    with pytest.raises(ModelError, match="swap"):
        SGD(0.1, bounds={"w": (1.0, 0.0)})


def test_lr_is_mutable() -> None:
    opt = SGD(1.0)
    opt.lr = 0.25
    params = {"w": np.ones(1)}
    opt.step(params, {"w": np.ones(1)})
    assert params["w"][0] == 0.75


def test_adamw_matches_torch(xp) -> None:
    """Decoupled weight decay: torch.optim.AdamW's trajectory (float64); only weights
    (``.w``) decay, a delay (``.d``) follows plain Adam."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    g = rng.normal(size=(8, 5))
    p0 = rng.normal(size=5)
    lr, wd = 0.05, 0.3
    ref = torch.tensor(p0, dtype=torch.float64, requires_grad=True)
    topt = torch.optim.AdamW([ref], lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=wd)
    plain = Adam(lr)
    opt = Adam(lr, weight_decay=wd)
    params = {"a->b.w": xp.asarray(p0.copy()), "a->b.d": xp.asarray(p0.copy())}
    undecayed = {"a->b.d": xp.asarray(p0.copy())}
    for t in range(8):
        ref.grad = torch.tensor(g[t], dtype=torch.float64)
        topt.step()
        opt.step(params, {"a->b.w": xp.asarray(g[t]), "a->b.d": xp.asarray(g[t])})
        plain.step(undecayed, {"a->b.d": xp.asarray(g[t])})
        np.testing.assert_allclose(to_host(params["a->b.w"]), ref.detach().numpy(),
                                   rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(to_host(params["a->b.d"]), to_host(undecayed["a->b.d"]))


def test_sgd_weight_decay_is_an_l2_penalty(xp) -> None:
    """For SGD, decoupled decay = the gradient of ``lambda/2 |w|^2`` added to the loss's;
    with no gradient, Adam shrinks by ``(1 - lr lambda)`` per step."""
    rng = np.random.default_rng(3)
    g, p0, lr, wd = rng.normal(size=(4, 3)), rng.normal(size=3), 0.1, 0.5
    params, want = {"x.w": xp.asarray(p0.copy())}, p0.copy()
    opt = SGD(lr, weight_decay=wd)
    for t in range(4):
        opt.step(params, {"x.w": xp.asarray(g[t])})
        want = want - lr * (g[t] + wd * want)
        np.testing.assert_allclose(to_host(params["x.w"]), want, rtol=1e-13)
    params = {"x.w": xp.asarray(p0.copy())}
    opt = Adam(lr, weight_decay=wd)
    for _ in range(5):
        opt.step(params, {"x.w": xp.zeros(3)})
    np.testing.assert_allclose(to_host(params["x.w"]), p0 * (1 - lr * wd) ** 5, rtol=1e-13)


def test_weight_decay_state_and_errors() -> None:
    state = Adam(0.1, weight_decay=0.2).state_dict()
    assert state["weight_decay"] == 0.2
    opt = Adam(0.1)
    opt.load_state_dict(state)
    assert opt.weight_decay == 0.2
    with pytest.raises(ModelError, match="weight_decay"):
        Adam(0.1, weight_decay=-1e-3)
