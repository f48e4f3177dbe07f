"""The engine's EventProp gradients: equal to the discrete twin, converging to the exact ones.

Input spike times are put on a 0.03 ms grid (and delays too), which every dt below divides,
so that the engine's binning (input bin rint(t/dt), delay rint(d/dt) steps) and the twin's
arrival rule (rint((t + d)/dt)) agree exactly.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from .cases import T, tiny_case
from .discrete import loss_and_grad_discrete
from .engine_adapter import engine_gradients
from .reference import loss_and_grad
from .test_discrete import CASES, flat

GRID = 0.03   # ms


def on_grid(kwargs):
    net, inputs = tiny_case(**kwargs)
    inputs = [np.rint(np.asarray(t) / GRID) * GRID for t in inputs]
    projs = tuple(replace(q, delay=np.rint(q.delay / GRID) * GRID) if q.delay is not None
                  else q for q in net.projections)
    return replace(net, projections=projs), inputs


@pytest.mark.parametrize("name", list(CASES))
def test_engine_equals_discrete_twin(name, engine):
    _twin_case(name, engine)


@pytest.mark.parametrize("name", ["sum_ce", "ttfs_ce", "delays", "equal_tau"])
def test_numpy_with_input_events_equals_discrete_twin(name, monkeypatch):
    """The NumPy engine computes undelayed input projections as whole-batch products; the
    compiled targets take input spikes as events. The event form, on NumPy, too."""
    from gpuspike.engine.eventprop import passes

    monkeypatch.setattr(passes, "input_products", lambda backend: False)
    _twin_case(name, "numpy")


def _twin_case(name, engine):
    kwargs, loss = CASES[name]
    net, inputs = on_grid(kwargs)
    value, grads, fwd = loss_and_grad_discrete(net, inputs, T, 0.01, loss)
    e_value, e_grads, counts = engine_gradients(net, inputs, loss, T, 0.01, engine=engine,
                                                crossing="sample")
    assert (counts == fwd.spike_counts()).all()
    assert e_value == pytest.approx(value, rel=1e-12)
    np.testing.assert_allclose(flat(e_grads), flat(grads), rtol=1e-9,
                               atol=1e-12 * np.abs(flat(grads)).max())


@pytest.mark.parametrize("crossing", ["interpolated"])
@pytest.mark.parametrize("name", list(CASES))
def test_engine_converges_to_exact_gradients(name, crossing, engine):
    kwargs, loss = CASES[name]
    net, inputs = on_grid(kwargs)
    _, exact, fwd = loss_and_grad(net, inputs, T, loss)
    counts = np.bincount([s.neuron for s in fwd.spikes], minlength=net.n_neurons)
    errors = []
    for dt in (0.01, 0.001):
        _, grads, e_counts = engine_gradients(net, inputs, loss, T, dt, crossing=crossing,
                                              engine=engine)
        assert (e_counts == counts).all(), f"dt={dt}: spike counts differ from the exact ones"
        errors.append(float(np.linalg.norm(flat(grads) - flat(exact))
                            / np.linalg.norm(flat(exact))))
    print(f"{name} ({crossing}): relative error at dt=0.01, 0.001 ms: "
          f"{errors[0]:.2e}, {errors[1]:.2e}")
    assert errors[1] < errors[0] / 5, "no O(dt) convergence over a 10x smaller dt"
    assert errors[1] <= 1e-3
