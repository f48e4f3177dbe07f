"""Tests of gpuspike.engine.connectivity: padded rows built from the IR's connectors."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
from gpuspike.bridge.errors import GpuMemoryError, ModelError
from gpuspike.bridge.ir import (
    AllToAll,
    ConditionConnect,
    FixedNumberPost,
    FixedNumberPre,
    FixedProbability,
    FromList,
    OneToOne,
)
from gpuspike.engine import connectivity
from gpuspike.engine.connectivity import PAD, SparseRows, build, column_map
from scipy import stats

from tests.simulate import host

I, J = sympy.symbols("i j")


def check_format(rows: SparseRows) -> tuple[np.ndarray, np.ndarray]:
    """Structural invariants; returns the (i, j) pairs on the host."""
    length, cols = host(rows.row_length), host(rows.cols)
    assert length.dtype == np.int32 and cols.dtype == np.int32
    assert length.shape == (rows.n_pre,) and cols.shape == (rows.n_pre, rows.max_row)
    assert rows.n_synapses == int(length.sum())
    assert rows.max_row == (int(length.max()) if rows.n_pre else 0)
    mask = host(rows.valid_mask())
    assert (cols[~mask] == PAD).all()
    assert ((cols[mask] >= 0) & (cols[mask] < rows.n_post)).all()
    i, j = (host(a) for a in rows.to_pairs())
    assert i.size == rows.n_synapses
    assert (np.diff(i) >= 0).all()  # row-major
    padded = host(rows.padded_index())
    np.testing.assert_array_equal(padded // max(rows.max_row, 1), i)
    np.testing.assert_array_equal(cols.reshape(-1)[padded], j)
    compact = host(rows.compact_index())
    np.testing.assert_array_equal(compact[padded], np.arange(i.size))
    assert (compact[~mask.reshape(-1)] == PAD).all()
    return i, j


def rows_sorted_distinct(rows: SparseRows) -> bool:
    cols, length = host(rows.cols), host(rows.row_length)
    return all((np.diff(cols[r, : length[r]]) > 0).all() for r in range(rows.n_pre))


# ----------------------------------------------------------------------------- simple
def test_all_to_all_and_one_to_one(xp):
    rows = build(AllToAll(), 3, 4, xp=xp, seed=0, stream=0)
    check_format(rows)
    np.testing.assert_array_equal(host(rows.cols), np.tile(np.arange(4), (3, 1)))
    rows = build(AllToAll(allow_self=False), 4, 4, xp=xp, seed=0, stream=0, same_group=True)
    i, j = check_format(rows)
    assert rows.n_synapses == 12 and not (i == j).any()
    # allow_self only matters within one group.
    assert build(AllToAll(False), 4, 4, xp=xp, seed=0, stream=0).n_synapses == 16
    rows = build(OneToOne(), 5, 5, xp=xp, seed=0, stream=0)
    i, j = check_format(rows)
    np.testing.assert_array_equal(i, j)
    with pytest.raises(ModelError, match="equal sizes"):
        build(OneToOne(), 5, 6, xp=xp, seed=0, stream=0)


# ----------------------------------------------------------------------------- probability
@pytest.mark.parametrize("p", [0.02, 0.1, 0.5, 0.9])
def test_fixed_probability_binomial_rows(xp, p):
    n_pre, n_post = 3000, 400
    rows = build(FixedProbability(p), n_pre, n_post, xp=xp, seed=11, stream=3)
    check_format(rows)
    assert rows_sorted_distinct(rows)
    length = host(rows.row_length).astype(float)
    mean, var = n_post * p, n_post * p * (1 - p)
    assert abs(length.mean() - mean) < 5 * np.sqrt(var / n_pre)
    # sd of the sample variance of a near-normal variable: var * sqrt(2 / n).
    assert abs(length.var() - var) < 6 * var * np.sqrt(2 / n_pre)
    # Pooled chi-square against Binomial(n_post, p).
    lo, hi = int(stats.binom.ppf(0.01, n_post, p)), int(stats.binom.ppf(0.99, n_post, p))
    edges = np.arange(lo, hi + 2)
    observed = np.histogram(length, bins=np.r_[-0.5, edges[1:-1] - 0.5, n_post + 0.5])[0]
    cdf = stats.binom.cdf(np.r_[edges[:-1] - 1, n_post], n_post, p)
    expected = np.diff(np.r_[0.0, cdf[1:]]) * n_pre
    expected[0] = stats.binom.cdf(lo, n_post, p) * n_pre
    expected *= observed.sum() / expected.sum()
    assert stats.chisquare(observed, expected).pvalue > 1e-4
    # Every column equally likely.
    _, j = check_format(rows)
    counts = np.bincount(j, minlength=n_post)
    assert stats.chisquare(counts).pvalue > 1e-4


def test_fixed_probability_no_self_and_edge_cases(xp):
    rows = build(
        FixedProbability(0.3, allow_self=False), 500, 500, xp=xp, seed=1, stream=1, same_group=True
    )
    i, j = check_format(rows)
    assert not (i == j).any()
    assert rows_sorted_distinct(rows)
    # Each row draws from the 499 other neurons.
    assert abs(host(rows.row_length).mean() - 0.3 * 499) < 5 * np.sqrt(499 * 0.21 / 500)
    # Column i of row i is never taken; neighbours are as likely as any other column.
    assert abs((np.abs(i - j) == 1).mean() - 2 / 499) < 0.004
    empty = build(FixedProbability(0.0), 7, 9, xp=xp, seed=1, stream=1)
    check_format(empty)
    assert empty.n_synapses == 0 and empty.max_row == 0
    full = build(
        FixedProbability(1.0, allow_self=False), 6, 6, xp=xp, seed=1, stream=1, same_group=True
    )
    assert full.n_synapses == 30 and host(full.row_length).tolist() == [5] * 6
    with pytest.raises(ModelError, match="outside"):
        build(FixedProbability(1.5), 3, 3, xp=xp, seed=1, stream=1)


def test_fixed_probability_deterministic_and_tile_free(xp):
    kw = {"xp": xp, "seed": 5, "stream": 2}
    a = build(FixedProbability(0.05), 300, 1000, **kw)
    b = build(FixedProbability(0.05), 300, 1000, tile_elements=1000, **kw)
    np.testing.assert_array_equal(host(a.cols), host(b.cols))
    c = build(FixedProbability(0.05), 300, 1000, xp=xp, seed=6, stream=2)
    d = build(FixedProbability(0.05), 300, 1000, xp=xp, seed=5, stream=3)
    assert a.n_synapses != c.n_synapses or not np.array_equal(host(a.cols), host(c.cols))
    assert a.n_synapses != d.n_synapses or not np.array_equal(host(a.cols), host(d.cols))


def test_fixed_probability_long_rows_are_redone_not_truncated(xp, monkeypatch):
    wide = build(FixedProbability(0.3), 50, 200, xp=xp, seed=2, stream=2)
    monkeypatch.setattr(connectivity, "_bernoulli_width", lambda m, p: 4)
    redone = build(FixedProbability(0.3), 50, 200, xp=xp, seed=2, stream=2)
    check_format(redone)
    np.testing.assert_array_equal(host(redone.cols), host(wide.cols))


def test_benchmark_size_builds_quickly_enough():
    # Not a benchmark: just a guard that 1e4 x 1e3 stays vectorised.
    rows = build(FixedProbability(0.1), 10_000, 1_000, xp=np, seed=0, stream=0)
    assert abs(rows.n_synapses - 1e6) < 5 * np.sqrt(1e7 * 0.09)


# ----------------------------------------------------------------------------- fixed number
@pytest.mark.parametrize("n,allow_self", [(1, True), (7, True), (40, False), (199, False)])
def test_fixed_number_post_exact_distinct(xp, n, allow_self):
    rows = build(
        FixedNumberPost(n, allow_self=allow_self),
        200,
        200,
        xp=xp,
        seed=4,
        stream=1,
        same_group=True,
    )
    i, j = check_format(rows)
    assert (host(rows.row_length) == n).all()
    assert rows_sorted_distinct(rows)
    if not allow_self:
        assert not (i == j).any()


def test_fixed_number_post_uniform_over_columns(xp):
    n_pre, n_post, n = 4000, 50, 10  # sparse path
    _, j = check_format(build(FixedNumberPost(n), n_pre, n_post, xp=xp, seed=8, stream=0))
    assert stats.chisquare(np.bincount(j, minlength=n_post)).pvalue > 1e-4
    n = 40  # dense path (excluded columns drawn)
    _, j = check_format(build(FixedNumberPost(n), n_pre, n_post, xp=xp, seed=8, stream=0))
    assert stats.chisquare(np.bincount(j, minlength=n_post)).pvalue > 1e-4


def test_fixed_number_post_with_replacement(xp):
    rows = build(FixedNumberPost(30, with_replacement=True), 100, 10, xp=xp, seed=1, stream=1)
    i, j = check_format(rows)
    assert (host(rows.row_length) == 30).all()
    cols = host(rows.cols)
    assert (np.diff(cols, axis=1) >= 0).all()
    assert any(len(np.unique(r)) < 30 for r in cols)  # repeats happen (30 draws of 10)
    rows = build(
        FixedNumberPost(5, allow_self=False, with_replacement=True),
        30,
        30,
        xp=xp,
        seed=1,
        stream=1,
        same_group=True,
    )
    i, j = check_format(rows)
    assert not (i == j).any()


@pytest.mark.parametrize("n", [3, 90])
def test_fixed_number_pre_exact_columns(xp, n):
    rows = build(
        FixedNumberPre(n, allow_self=False), 100, 100, xp=xp, seed=3, stream=9, same_group=True
    )
    i, j = check_format(rows)
    assert (np.bincount(j, minlength=100) == n).all()
    assert not (i == j).any()
    assert rows_sorted_distinct(rows)
    col_length, _, _ = column_map(rows)
    assert (host(col_length) == n).all()


def test_fixed_number_errors(xp):
    with pytest.raises(ModelError, match=r"FixedNumberPost.*11.*10"):
        build(FixedNumberPost(11), 5, 10, xp=xp, seed=0, stream=0)
    with pytest.raises(ModelError, match="self connections excluded"):
        build(
            FixedNumberPost(10, allow_self=False), 10, 10, xp=xp, seed=0, stream=0, same_group=True
        )
    with pytest.raises(ModelError, match="FixedNumberPre"):
        build(FixedNumberPre(6), 5, 10, xp=xp, seed=0, stream=0)
    assert (
        build(FixedNumberPost(11, with_replacement=True), 5, 10, xp=xp, seed=0, stream=0).n_synapses
        == 55
    )
    assert build(FixedNumberPost(0), 5, 10, xp=xp, seed=0, stream=0).n_synapses == 0


# ----------------------------------------------------------------------------- lists
def test_from_list_round_trip_keeps_order(xp):
    gen = np.random.default_rng(0)
    i = gen.integers(0, 20, 300)
    j = gen.integers(0, 30, 300)
    i[:3], j[:3] = 4, 7  # duplicates are kept
    rows = build(FromList(i, j), 20, 30, xp=xp, seed=0, stream=0)
    ri, rj = check_format(rows)
    order = np.argsort(i, kind="stable")
    np.testing.assert_array_equal(ri, i[order])
    np.testing.assert_array_equal(rj, j[order])
    assert rows.n_synapses == 300
    with pytest.raises(ModelError, match="out of range"):
        build(FromList(np.array([0, 20]), np.array([0, 0])), 20, 30, xp=xp, seed=0, stream=0)
    with pytest.raises(ModelError, match="different lengths"):
        build(FromList(np.array([0, 1]), np.array([0])), 20, 30, xp=xp, seed=0, stream=0)


# ----------------------------------------------------------------------------- conditions
def test_condition_exact_sets(xp):
    n = 50
    rows = build(
        ConditionConnect(sympy.Eq(J, I + 1)),
        n,
        n,
        xp=xp,
        seed=0,
        stream=0,
        condition_evaluator=lambda i, j: j == i + 1,
        tile_elements=64,
    )
    i, j = check_format(rows)
    np.testing.assert_array_equal(i, np.arange(n - 1))
    np.testing.assert_array_equal(j, np.arange(1, n))
    # The SymPy fallback gives the same set.
    fallback = build(ConditionConnect(sympy.Eq(J, I + 1)), n, n, xp=xp, seed=0, stream=0)
    np.testing.assert_array_equal(host(fallback.cols), host(rows.cols))
    near = build(ConditionConnect(sympy.Abs(I - J) < 3), n, n, xp=xp, seed=0, stream=0)
    i, j = check_format(near)
    expected = [(a, b) for a in range(n) for b in range(n) if abs(a - b) < 3]
    assert list(zip(i.tolist(), j.tolist())) == expected


def test_condition_probability_and_multiplicity(xp):
    n = 400
    rows = build(
        ConditionConnect(sympy.Ne(I, J), p=sympy.Float(0.25), n=2), n, n, xp=xp, seed=1, stream=4
    )
    i, j = check_format(rows)
    assert not (i == j).any()
    np.testing.assert_array_equal(i[::2], i[1::2])  # each accepted pair twice in a row
    np.testing.assert_array_equal(j[::2], j[1::2])
    pairs = i.size // 2
    trials = n * (n - 1)
    assert abs(pairs - 0.25 * trials) < 5 * np.sqrt(trials * 0.25 * 0.75)
    # A p that depends on i and j, as a callable.
    rows = build(
        ConditionConnect(),
        100,
        100,
        xp=xp,
        seed=2,
        stream=4,
        p_evaluator=lambda i, j: (j < 50) * 1.0,
    )
    _, j = check_format(rows)
    assert rows.n_synapses == 100 * 50 and (j < 50).all()
    none = build(ConditionConnect(sympy.false), 5, 5, xp=xp, seed=0, stream=0)
    assert none.n_synapses == 0 and none.max_row == 0
    with pytest.raises(ModelError, match="N_pre"):
        build(ConditionConnect(sympy.Symbol("k") > 0), 3, 3, xp=xp, seed=0, stream=0)


# ----------------------------------------------------------------------------- column map
@pytest.mark.parametrize(
    "connector",
    [
        FixedProbability(0.1),
        FixedNumberPost(5),
        FromList(np.array([3, 0, 3, 3]), np.array([1, 1, 1, 0])),
    ],
    ids=["probability", "number", "list"],
)
def test_column_map_covers_every_synapse_once(xp, connector):
    rows = build(connector, 40, 30, xp=xp, seed=7, stream=7)
    col_length, max_col, remap = (
        host(a) if not isinstance(a, int) else a for a in column_map(rows)
    )
    remap = np.asarray(remap)
    assert remap.shape == (30, max_col)
    valid = np.arange(max_col)[None, :] < col_length[:, None]
    assert (remap[~valid] == PAD).all()
    s = remap[valid]
    np.testing.assert_array_equal(np.sort(s), host(rows.padded_index()))
    cols = host(rows.cols).reshape(-1)
    post = np.broadcast_to(np.arange(30)[:, None], remap.shape)[valid]
    np.testing.assert_array_equal(cols[s], post)
    pre = s // rows.max_row
    for c in range(30):
        assert (np.diff(pre[post == c]) >= 0).all()


# ----------------------------------------------------------------------------- memory
def test_memory_limit(xp):
    with pytest.raises(GpuMemoryError, match="GiB"):
        build(FixedProbability(0.5), 10_000, 10_000, xp=xp, seed=0, stream=0, max_bytes=1 << 20)
    with pytest.raises(GpuMemoryError, match="max_bytes"):
        build(AllToAll(), 1000, 1000, xp=xp, seed=0, stream=0, max_bytes=1000)
    rows = build(FixedNumberPost(4), 10, 10, xp=xp, seed=0, stream=0, max_bytes=160)
    assert rows.n_synapses == 40


@pytest.mark.gpu
@pytest.mark.gpu
def test_cupy_matches_numpy():
    import cupy

    for connector in (
        FixedProbability(0.1),
        FixedNumberPost(20),
        FixedNumberPre(30),
        ConditionConnect(I < J, p=sympy.Float(0.3)),
    ):
        a = build(connector, 500, 400, xp=np, seed=3, stream=1)
        b = build(connector, 500, 400, xp=cupy, seed=3, stream=1)
        # log() may round differently: allow a few differing rows for geometric skips.
        same = (
            host(a.cols)[:, : min(a.max_row, b.max_row)]
            == host(b.cols)[:, : min(a.max_row, b.max_row)]
        ).all(axis=1)
        assert same.mean() > 0.99


def test_condition_on_rows_only_selects_rows_with_probability():
    """``connect(condition='i < 30', p=0.2)``: rows >= 30 empty, others Binomial(n, p)."""
    from gpuspike.bridge.expressions import parse_expression
    from gpuspike.bridge.ir import ConditionConnect
    from gpuspike.engine.connectivity import build

    rows = build(ConditionConnect(parse_expression("i < 30"), parse_expression("0.2")),
                 100, 500, xp=np, seed=3, stream=9)
    lengths = np.asarray(rows.row_length)
    assert np.all(lengths[30:] == 0)
    assert abs(lengths[:30].mean() - 100) < 5 * np.sqrt(500 * 0.2 * 0.8 / 30)
    i, j = rows.to_pairs()
    assert np.all(i < 30) and len(set(zip(i.tolist(), j.tolist()))) == len(i)
