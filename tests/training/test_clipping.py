"""Tests of AutoClip: thresholds from numpy's percentile of the norm history, resume, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gpuspike.bridge.errors import ModelError
from gpuspike.engine.training.clipping import AutoClip
from gpuspike.engine.training.optim import SGD, Adam, to_host


def _norm(a) -> float:
    return float(np.linalg.norm(to_host(a)))


def test_clips_to_the_percentile_of_earlier_norms(xp) -> None:
    rng = np.random.default_rng(1)
    clip = AutoClip(75.0, warmup=5)
    norms = []
    for step in range(40):
        scale = 1000.0 if step in (12, 30) else rng.uniform(0.5, 2.0)
        g = rng.normal(size=(3, 4))
        g *= scale / np.linalg.norm(g)
        out = clip({"w": xp.asarray(g)})["w"]
        if step < 5:
            assert _norm(out) == pytest.approx(scale, rel=1e-12)
        else:
            limit = np.percentile(norms, 75.0)
            assert _norm(out) == pytest.approx(min(scale, limit), rel=1e-9)
            # the direction is kept
            np.testing.assert_allclose(to_host(out) / _norm(out), g / scale, rtol=1e-9)
        norms.append(scale)
    # the surges were cut to the usual size
    assert clip.clipped >= 2


def test_each_tensor_has_its_own_history(xp) -> None:
    clip = AutoClip(50.0, warmup=2)
    for _ in range(3):
        clip({"a": xp.asarray([1.0]), "b": xp.asarray([100.0])})
    out = clip({"a": xp.asarray([50.0]), "b": xp.asarray([100.0])})
    assert _norm(out["a"]) == pytest.approx(1.0)
    assert _norm(out["b"]) == pytest.approx(100.0)


def test_p100_never_clips_and_non_finite_norms_stay_out_of_the_history(xp) -> None:
    clip = AutoClip(100.0, warmup=1)
    for v in (1.0, 2.0, 3.0):
        clip({"w": xp.asarray([v])})
    assert _norm(clip({"w": xp.asarray([3.0])})["w"]) == pytest.approx(3.0)
    clip({"w": xp.asarray([np.nan])})
    assert clip.history["w"] == [1.0, 2.0, 3.0, 3.0]


def test_window_keeps_the_last_norms() -> None:
    clip = AutoClip(50.0, warmup=1, window=3)
    for v in range(1, 7):
        clip({"w": np.array([float(v)])})
    assert clip.history["w"] == [4.0, 5.0, 6.0]


@pytest.mark.parametrize("make", [lambda c: Adam(0.01, clip=c),
                                  lambda c: SGD(0.01, momentum=0.5, clip=c)])
def test_optimiser_state_carries_the_history(make) -> None:
    rng = np.random.default_rng(2)
    grads = [rng.normal(size=5) * (50.0 if k == 9 else 1.0) for k in range(14)]
    ref = {"p": np.zeros(5)}
    opt = make(AutoClip(60.0, warmup=3))
    for g in grads:
        opt.step(ref, {"p": g})
    # same run, interrupted after 7 steps; the state goes through JSON like a checkpoint's
    run = {"p": np.zeros(5)}
    first = make(AutoClip(60.0, warmup=3))
    for g in grads[:7]:
        first.step(run, {"p": g})
    state = first.state_dict()
    clip_state = json.loads(json.dumps(state.pop("clip")))
    second = make(AutoClip(60.0, warmup=3))
    second.load_state_dict({**state, "clip": clip_state})
    for g in grads[7:]:
        second.step(run, {"p": g})
    np.testing.assert_allclose(run["p"], ref["p"], rtol=1e-12)
    assert second.clip.clipped == opt.clip.clipped >= 1


def test_clipping_changes_the_update_only_on_surges() -> None:
    plain, clipped = {"p": np.zeros(2)}, {"p": np.zeros(2)}
    a, b = SGD(0.1), SGD(0.1, clip=AutoClip(90.0, warmup=4))
    for k in range(6):
        g = np.array([3.0, 4.0]) * (100.0 if k == 5 else 1.0)
        a.step(plain, {"p": g})
        b.step(clipped, {"p": g})
    # five steps of norm 5, then a surge cut to norm 5: 6 x 0.1 x (3, 4)
    np.testing.assert_allclose(clipped["p"], -0.6 * np.array([3.0, 4.0]))
    np.testing.assert_allclose(plain["p"], -0.1 * np.array([3.0, 4.0]) * 105)


@pytest.mark.parametrize("kwargs", [dict(percentile=0.0), dict(percentile=101.0),
                                    dict(percentile=50.0, warmup=0),
                                    dict(percentile=50.0, window=-1)])
def test_bad_settings_are_refused(kwargs) -> None:
    with pytest.raises(ModelError):
        AutoClip(**kwargs)
