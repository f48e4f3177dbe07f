"""BPTT and e-prop gradients of the generated kernels against the forward-mode reference."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from gpuspike.bridge.errors import UnsupportedFeature
from gpuspike.bridge.training_ir import LossSpec, TrainProjection
from gpuspike.engine.eventprop.builders import LayeredConfig, initial_params, layered_ir
from gpuspike.engine.rules.network import make_network
from gpuspike.engine.rules.surrogate import Surrogate
from gpuspike.engine.training.protocol import Batch

from .reference import reference_gradients

INIT = {"in->hidden": (0.5, 0.4), "hidden->hidden": (0.0, 0.3), "hidden->out": (0.3, 0.5)}


def small(loss="avg_ce", recurrent=True, reg=0.0, nu=2.0, steps=40, seed=0, delays=0.0,
          alif=False, t_ref=0.0):
    """A layered network; ``delays`` (s): fixed delays in ``[0, delays]`` on every
    projection (the input's drawn by the builder, the others here)."""
    spec = LossSpec(loss, reg_nu=nu, reg_upper=reg, reg_lower=reg)
    cfg = LayeredConfig(6, 5, 3, recurrent, 1e-3, steps, loss=spec, max_spikes=steps,
                        init=INIT, delay_max=delays, learn_delays=False,
                        tau_a=0.02 if alif else None, beta_a=0.3, t_ref=t_ref)
    ir = layered_ir(cfg)
    params = initial_params(ir, INIT, seed=seed, delay_max=delays)
    if delays:   # every projection delayed, as PyNN's are
        rng = np.random.default_rng(seed + 7)
        D = int(round(delays / 1e-3))
        projs = tuple(TrainProjection(q.pre, q.post, True, D, False) for q in ir.projections)
        ir = dataclasses.replace(ir, projections=projs)
        for q in projs:
            shape = params[q.name + ".w"].shape
            params.setdefault(q.name + ".d", rng.integers(0, D + 1, shape) * 1e-3)
    return ir, params


def batch(n=3, seed=1, n_in=6, steps=40, rate=0.2):
    rng = np.random.default_rng(seed)
    x = rng.poisson(rate, (steps, n, n_in)).astype(float)
    return Batch(x, rng.integers(0, 3, n), np.arange(n))


def host(a):
    return a.get() if hasattr(a, "get") else np.asarray(a)


def _check(rule, ir, params, b, surrogate, engine, eprop_ref, reg=0.0, nu=2.0, online=False):
    net = make_network(rule, ir, params, engine=engine, dtype=np.float64, surrogate=surrogate,
                       online=online)
    xp = net.xp
    res = net.loss_and_grad(Batch(xp.asarray(b.inputs), xp.asarray(b.labels), b.index))
    loss, want, vout = reference_gradients(ir, params, b.inputs, b.labels, surrogate,
                                           eprop=eprop_ref, reg=reg, nu=nu)
    np.testing.assert_allclose(host(net.forward(xp.asarray(b.inputs)).v_out), vout,
                               rtol=1e-12, atol=1e-12)
    if reg == 0:
        assert res.loss == pytest.approx(loss, rel=1e-12)
    for name, g in want.items():
        got = host(res.grads[name + ".w"])
        scale = np.abs(g).max()
        assert scale > 0, f"{name}: the reference has no gradient (a test that cannot fail)"
        np.testing.assert_allclose(got, g, rtol=0, atol=1e-9 * max(scale, 1.0),
                                   err_msg=f"{rule} {name}")
    return res


@pytest.mark.parametrize("loss", ["avg_ce", "per_timestep_ce", "max_ce", "sum_ce"])
@pytest.mark.parametrize("recurrent", [False, True])
def test_bptt_equals_the_unrolled_reference(loss, recurrent, engine):
    ir, params = small(loss, recurrent)
    _check("bptt", ir, params, batch(), Surrogate("fast_sigmoid", 100.0), engine, False)


@pytest.mark.parametrize("rule", ["bptt", "eprop"])
def test_fixed_delays_on_every_projection(rule, engine):
    """PyNN's networks have a delay on every synapse: BPTT and e-prop take fixed ones."""
    ir, params = small("avg_ce", recurrent=True, reg=1e-2, delays=3e-3)
    assert all(q.has_delays and not q.learn_delay for q in ir.projections)
    _check(rule, ir, params, batch(), Surrogate("fast_sigmoid", 100.0), engine,
           rule == "eprop", reg=1e-2)


@pytest.mark.parametrize("rule,recurrent", [("bptt", True), ("eprop", True),
                                            ("eprop", False)])
def test_alif_hidden_neurons(rule, recurrent, engine):
    """ALIF: the adaptive threshold's state in BPTT's adjoint and in e-prop's eps_a trace."""
    ir, params = small("avg_ce", recurrent=recurrent, reg=1e-2, alif=True)
    assert ir.population("hidden").neuron.adaptive
    res = _check(rule, ir, params, batch(rate=0.3), Surrogate("triangle", 0.3), engine,
                 rule == "eprop", reg=1e-2)
    plain = make_network(rule, small("avg_ce", recurrent=recurrent, reg=1e-2)[0], params,
                         engine="numpy", dtype=np.float64).loss_and_grad(batch(rate=0.3))
    assert res.spikes_per_neuron["hidden"] < plain.spikes_per_neuron["hidden"]


@pytest.mark.parametrize("rule,recurrent,alif", [("bptt", True, False), ("bptt", True, True),
                                                  ("eprop", False, False),
                                                  ("eprop", True, True)])
def test_refractory_hidden_neurons(rule, recurrent, alif, engine):
    """A refractory period of 3 steps: the membrane held (its adjoint passes unchanged, no
    drive from the current), no spike and no surrogate while held."""
    ir, params = small("avg_ce", recurrent=recurrent, reg=1e-2, alif=alif, t_ref=3e-3)
    assert ir.population("hidden").neuron.refractory_steps(ir.dt) == 3
    b = batch(rate=0.4)
    res = _check(rule, ir, params, b, Surrogate("fast_sigmoid", 100.0), engine,
                 rule == "eprop", reg=1e-2)
    free = make_network(rule, small("avg_ce", recurrent=recurrent, reg=1e-2, alif=alif)[0],
                        params, engine="numpy", dtype=np.float64).loss_and_grad(b)
    assert res.spikes_per_neuron["hidden"] < free.spikes_per_neuron["hidden"]
    if rule == "eprop" and not recurrent:   # the identity holds with refractoriness too
        g = make_network("bptt", ir, params, engine=engine, dtype=np.float64,
                         surrogate=Surrogate("fast_sigmoid", 100.0)).loss_and_grad(b)
        for key in g.grads:
            np.testing.assert_allclose(host(res.grads[key]), host(g.grads[key]), rtol=0,
                                       atol=1e-9 * np.abs(host(g.grads[key])).max())


def test_eventprop_refuses_refractoriness():
    ir, params = small(t_ref=2e-3)
    with pytest.raises(UnsupportedFeature, match="refractory"):
        make_network("eventprop", ir, params, engine="numpy")
    ir, params = small(t_ref=0.4e-3)   # held for no step: EventProp's model
    make_network("eventprop", ir, params, engine="numpy")


def test_eventprop_refuses_alif():
    ir, params = small(alif=True)
    with pytest.raises(UnsupportedFeature, match="rule='bptt' or rule='eprop'"):
        make_network("eventprop", ir, params, engine="numpy")


def test_bptt_with_the_triangle_and_the_regulariser(engine):
    ir, params = small("avg_ce", True, reg=1e-2, nu=2.0)
    _check("bptt", ir, params, batch(), Surrogate("triangle", 0.3), engine, False,
           reg=1e-2, nu=2.0)


@pytest.mark.parametrize("loss", ["avg_ce", "per_timestep_ce", "max_ce"])
def test_eprop_equals_bptt_without_recurrence(loss, engine):
    """The known identity: no recurrence, same pseudo-derivative and detached reset."""
    ir, params = small(loss, recurrent=False, reg=1e-2)
    sur = Surrogate("triangle", 0.3)
    b = batch()
    e = _check("eprop", ir, params, b, sur, engine, False, reg=1e-2)
    g = make_network("bptt", ir, params, engine=engine, dtype=np.float64,
                     surrogate=sur).loss_and_grad(b)
    for k in g.grads:
        np.testing.assert_allclose(host(e.grads[k]), host(g.grads[k]), rtol=0,
                                   atol=1e-9 * np.abs(host(g.grads[k])).max())


def test_eprop_with_recurrence_is_its_approximation(engine):
    """With recurrence e-prop drops the recurrent spikes' dependence on the weights: equal
    to the reference with that tangent dropped, and different from BPTT."""
    ir, params = small("avg_ce", recurrent=True, reg=1e-2)
    sur = Surrogate("fast_sigmoid", 100.0)
    b = batch(seed=4)
    e = _check("eprop", ir, params, b, sur, engine, True, reg=1e-2)
    g = make_network("bptt", ir, params, engine="numpy", dtype=np.float64,
                     surrogate=sur).loss_and_grad(b)
    diff = np.abs(host(e.grads["in->hidden.w"]) - g.grads["in->hidden.w"]).max()
    assert diff > 1e-6 * np.abs(g.grads["in->hidden.w"]).max()


@pytest.mark.parametrize("case", ["lif", "alif_refractory", "delays", "max_ce"])
def test_eprop_online_and_in_reverse_time_agree(case, engine):
    """The forward-time traces (``online=True``) and the reverse-time pass (the default)
    are two computations of one gradient: each equals the forward-mode reference (e-prop's
    tangent), and they agree with each other, on recurrent networks."""
    kw = {"lif": {}, "alif_refractory": {"alif": True, "t_ref": 3e-3},
          "delays": {"delays": 3e-3}, "max_ce": {}}[case]
    ir, params = small("max_ce" if case == "max_ce" else "avg_ce", recurrent=True,
                       reg=1e-2, **kw)
    sur = Surrogate("triangle", 0.3)
    b = batch(seed=5, rate=0.3)
    got = [_check("eprop", ir, params, b, sur, engine, True, reg=1e-2, online=online)
           for online in (False, True)]
    for key, g in got[1].grads.items():
        g = host(g)
        np.testing.assert_allclose(host(got[0].grads[key]), g, rtol=0,
                                   atol=1e-9 * max(np.abs(g).max(), 1.0), err_msg=key)
    assert got[0].loss == pytest.approx(got[1].loss, rel=1e-12)


def test_only_eprop_runs_online():
    ir, params = small()
    with pytest.raises(UnsupportedFeature, match="online eligibility traces are e-prop's"):
        make_network("bptt", ir, params, engine="numpy", online=True)


def test_rules_refuse_what_they_cannot_train():
    ir, params = small("ttfs_ce", recurrent=False)
    with pytest.raises(UnsupportedFeature, match="eventprop"):
        make_network("bptt", ir, params, engine="numpy")
    cfg = LayeredConfig(4, 3, 2, False, 1e-3, 20, delay_max=3e-3)
    ir = layered_ir(cfg)
    with pytest.raises(UnsupportedFeature, match="learns weights only"):
        make_network("eprop", ir, initial_params(ir, cfg.init, delay_max=3e-3), engine="numpy")
    with pytest.raises(UnsupportedFeature, match="unknown training rule"):
        make_network("rtrl", ir, {}, engine="numpy")
