"""Tests of gpuspike.datasets.augment: seeded determinism and what each transform promises."""

from __future__ import annotations

import numpy as np
import pytest

from gpuspike.datasets import augment as A
from gpuspike.datasets.events import SpikeDataset

C = 50


def _sample(seed: int = 0, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, 1.0, n)).astype(np.float32)
    return t, rng.integers(0, C, n)


RANDOM_STEPS = {
    "shift": A.step(A.channel_shift, n_channels=C, max_shift=5),
    "jitter": A.step(A.channel_jitter, n_channels=C, max_jitter=2),
    "swap": A.step(A.channel_swap, n_channels=C, p=0.5),
    "scale": A.step(A.time_scale, low=0.7, high=1.3, duration=1.0),
    "dropout": A.step(A.dropout, p=0.3),
}


@pytest.mark.parametrize("name", sorted(RANDOM_STEPS))
def test_seeded_determinism_and_no_mutation(name) -> None:
    t, u = _sample()
    t0, u0 = t.copy(), u.copy()
    fn = RANDOM_STEPS[name]
    a = fn(t, u, np.random.default_rng(7))
    b = fn(t, u, np.random.default_rng(7))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(t, t0)
    np.testing.assert_array_equal(u, u0)
    assert np.all((a[1] >= 0) & (a[1] < C)) and np.all(np.diff(a[0]) >= 0)
    # another seed gives another result
    c = fn(t, u, np.random.default_rng(8))
    assert len(c[0]) != len(a[0]) or not (np.array_equal(c[0], a[0]) and np.array_equal(c[1], a[1]))


def test_channel_shift_moves_all_units_by_one_integer() -> None:
    t, u = _sample()
    for seed in range(10):
        t2, u2 = A.channel_shift(t, u, np.random.default_rng(seed), C, max_shift=5)
        rng = np.random.default_rng(seed)
        s = int(rng.integers(-5, 6))
        keep = (u + s >= 0) & (u + s < C)
        assert sorted(zip(t2.tolist(), u2.tolist())) == sorted(
            zip(t[keep].tolist(), (u[keep] + s).tolist())
        )


def test_channel_jitter_is_local() -> None:
    t = np.arange(200, dtype=float)  # distinct times identify each event
    u = np.full(200, 25)
    t2, u2 = A.channel_jitter(t, u, np.random.default_rng(0), C, max_jitter=2)
    assert len(t2) == 200 and set(np.abs(u2 - 25)) <= {0, 1, 2}
    assert len(set(u2.tolist())) > 1


def test_channel_swap_is_neighbour_permutation() -> None:
    t = np.arange(C, dtype=float)
    u = np.arange(C)
    t2, u2 = A.channel_swap(t, u, np.random.default_rng(3), C, p=0.5)
    assert sorted(u2.tolist()) == list(range(C))  # a permutation: nothing lost or merged
    moved = u2[np.argsort(t2)] - u
    assert set(np.abs(moved)) <= {0, 1} and np.any(moved != 0)


def test_time_scale_scales_by_one_factor() -> None:
    t, u = _sample()
    t2, _u2 = A.time_scale(t, u, np.random.default_rng(5), 0.5, 0.9)
    f = np.random.default_rng(5).uniform(0.5, 0.9)
    np.testing.assert_allclose(t2, t * f, rtol=1e-6)
    t3, _ = A.time_scale(t, u, np.random.default_rng(5), 1.5, 2.0, duration=1.0)
    assert t3.max() < 1.0 and len(t3) < len(t)


def test_dropout_rate() -> None:
    t, u = np.zeros(20000), np.zeros(20000, dtype=int)
    t2, _ = A.dropout(t, u, np.random.default_rng(0), p=0.25)
    assert abs(len(t2) / 20000 - 0.75) < 0.02


def test_delay_lines_copy_blocks() -> None:
    t, u = _sample(n=30)
    t2, u2 = A.delay_lines(t, u, C, delays=(0.01, 0.05))
    assert len(t2) == 90 and u2.max() < 3 * C
    for j, d in enumerate((0.0, 0.01, 0.05)):
        block = (u2 >= j * C) & (u2 < (j + 1) * C)
        tb, ub = t2[block].astype(float) - d, u2[block] - j * C
        o, o_ref = np.lexsort((tb, ub)), np.lexsort((t, u))
        np.testing.assert_array_equal(ub[o], u[o_ref])
        np.testing.assert_allclose(tb[o], t[o_ref], atol=1e-6)
    t3, _ = A.delay_lines(t, u, C, delays=(0.5,), duration=1.0)
    assert t3.max() < 1.0


def test_blend_aligns_centres_and_keeps_half() -> None:
    rng = np.random.default_rng(0)
    a = (rng.uniform(0.1, 0.3, 2000), rng.integers(5, 15, 2000))
    b = (rng.uniform(0.5, 0.7, 2000), rng.integers(25, 35, 2000))
    t, u = A.blend(a, b, np.random.default_rng(1), C)
    assert abs(len(t) - 2000) < 150  # about half of each
    # both clouds now sit on the common centre (0.4 s, channel 19.5)
    assert abs(t.mean() - 0.4) < 0.01 and abs(u.mean() - 19.5) < 1.0
    again = A.blend(a, b, np.random.default_rng(1), C)
    np.testing.assert_array_equal(again[0], t)
    np.testing.assert_array_equal(again[1], u)


def test_blend_same_class_and_compose() -> None:
    rng = np.random.default_rng(0)
    samples = [_sample(s, 100) for s in range(6)]
    d = SpikeDataset(
        [s[0] for s in samples],
        [s[1] for s in samples],
        np.array([0, 0, 0, 1, 1, 1]),
        np.arange(6),
        C,
        keys=["low", "high"],
        files=[f"{i}.wav" for i in range(6)],
    )
    new = A.blend_same_class(d, 5, rng)
    assert len(new) == 5 and set(new.labels.tolist()) <= {0, 1}
    assert new.keys == ["low", "high"]
    for f, c in zip(new.files, new.labels):
        a, b = f.removeprefix("blend:").split("+")
        assert f.startswith("blend:") and a != b
        assert {int(d.labels[int(a[0])]), int(d.labels[int(b[0])])} == {int(c)}
    pipe = A.Compose((RANDOM_STEPS["shift"], A.step(A.dropout, p=0.1), A.delay_step(C, (0.01,))))
    out = pipe.apply(d, np.random.default_rng(4))
    assert out.n_channels == 2 * C and len(out) == 6
    assert out.keys == d.keys and out.files == d.files
    out2 = pipe.apply(d, np.random.default_rng(4))
    assert all(np.array_equal(x, y) for x, y in zip(out.times, out2.times))
    never = A.step(A.dropout, p_apply=0.0, p=1.0)
    assert len(never(*samples[0], rng)[0]) == 100


def test_blend_keeps_class_names_when_samples_equal_classes() -> None:
    """As many samples as class names, no files: blends keep the names and get no files."""
    samples = [_sample(s, 50) for s in range(4)]
    names = ["cat", "dog", "emu", "fox"]
    d = SpikeDataset(
        [s[0] for s in samples],
        [s[1] for s in samples],
        np.array([0, 0, 1, 1]),
        np.full(4, -1),
        C,
        keys=names,
    )
    new = A.blend_same_class(d, 3, np.random.default_rng(2))
    assert new.keys == names and new.files == []
    out = A.Compose((A.step(A.dropout, p=0.1),)).apply(d, np.random.default_rng(0))
    assert out.keys == names and out.files == []
