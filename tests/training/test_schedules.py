"""Tests of the learning-rate schedules against their formulas."""

from __future__ import annotations

import math

import pytest
from gpuspike.bridge.errors import ModelError
from gpuspike.engine.training.schedules import (
    Constant,
    Cosine,
    EaseIn,
    ExponentialDecay,
    ReduceOnPlateau,
    Schedule,
    StepDecay,
)


def rates(schedule, base: float, epochs: int, per_epoch: int) -> list[list[float]]:
    out, g = [], 0
    for e in range(epochs):
        row = []
        for b in range(per_epoch):
            row.append(schedule.lr(base, e, b, per_epoch, g))
            g += 1
        out.append(row)
    return out


def test_constant_exponential_step() -> None:
    assert all(r == 0.1 for row in rates(Constant(), 0.1, 3, 4) for r in row)
    exp = rates(ExponentialDecay(0.5), 0.2, 4, 3)
    assert [row[0] for row in exp] == [0.2, 0.1, 0.05, 0.025]
    assert all(len(set(row)) == 1 for row in exp)  # constant within an epoch
    step = [row[-1] for row in rates(StepDecay(2, 0.1), 1.0, 5, 2)]
    assert step == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01])
    for s in (Constant(), ExponentialDecay(0.9), StepDecay(1), Cosine(3), EaseIn()):
        assert isinstance(s, Schedule)


def test_cosine() -> None:
    s = Cosine(total_epochs=4, min_lr=0.01)
    assert s.lr(1.0, 0, 0, 10, 0) == pytest.approx(1.0)
    assert s.lr(1.0, 2, 0, 10, 20) == pytest.approx(0.01 + 0.99 * 0.5)
    assert s.lr(1.0, 1, 5, 10, 15) == pytest.approx(
        0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * 1.5 / 4))
    )
    assert s.lr(1.0, 4, 0, 10, 40) == pytest.approx(0.01)
    assert s.lr(1.0, 9, 3, 10, 93) == pytest.approx(0.01)  # stays at the floor
    per_epoch = Cosine(4, per_batch=False)
    assert per_epoch.lr(1.0, 1, 9, 10, 19) == per_epoch.lr(1.0, 1, 0, 10, 10)
    flat = sum(rates(s, 1.0, 4, 10), [])
    assert all(a >= b for a, b in zip(flat, flat[1:]))


def test_ease_in_reaches_base_then_follows_inner() -> None:
    s = EaseIn()
    assert s.ease_batches() == 142  # ceil(ln 1000 / ln 1.05) = ceil(141.58)
    base = 2e-3
    flat = sum(rates(s, base, 3, 60), [])
    assert flat[0] == pytest.approx(base * 1e-3)
    for g in range(1, 142):
        assert flat[g] == pytest.approx(flat[g - 1] * 1.05)
        assert flat[g] < base
    assert all(r == base for r in flat[142:])
    inner = ExponentialDecay(0.5)
    s2 = EaseIn(inner=inner, start=0.01, factor=2.0)
    # epoch 0 (4 batches): 0.01, 0.02, 0.04, 0.08 of base; epoch 1: inner is 0.5 base,
    # ease would be 0.16, 0.32, 0.64 -> min with inner; from batch 7 (ease_batches) inner.
    got = sum(rates(s2, 1.0, 3, 4), [])
    want = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25]
    assert got == pytest.approx(want)
    with pytest.raises(ModelError):
        EaseIn(factor=1.0)


def test_reduce_on_plateau() -> None:
    s = ReduceOnPlateau(factor=0.5, patience=1)
    seen = []
    for loss in [1.0, 0.9, 0.95, 0.95, 0.8, 0.85, 0.85, 0.85, float("nan"), 0.1]:
        s.observe(loss)
        seen.append(s.lr(1.0, 0, 0, 1, 0))
    # bad epochs: 0.95 (1), 0.95 (2 > patience: halve), 0.85 (1), 0.85 (2: halve),
    # 0.85 (1), nan (2: halve), 0.1 improves
    assert seen == [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125]
    assert s.reductions == 3
    t = ReduceOnPlateau(factor=0.5, patience=1)
    t.load_state_dict(s.state_dict())
    assert t.state_dict() == s.state_dict()
    floor = ReduceOnPlateau(factor=0.1, patience=0, min_lr=0.05)
    for _ in range(3):
        floor.observe(1.0)
    assert floor.lr(1.0, 0, 0, 1, 0) == 0.05
    wrapped = EaseIn(inner=ReduceOnPlateau(patience=0))
    wrapped.observe(1.0)
    wrapped.observe(2.0)
    assert wrapped.lr(1.0, 0, 0, 1, 500) == 0.5
    assert wrapped.state_dict()["scale"] == 0.5


@pytest.mark.parametrize(
    "make",
    [
        lambda: ExponentialDecay(0.0),
        lambda: StepDecay(0),
        lambda: Cosine(0),
        lambda: EaseIn(start=0.0),
        lambda: ReduceOnPlateau(factor=1.0),
    ],
)
def test_bad_parameters_raise(make) -> None:
    with pytest.raises(ModelError):
        make()
