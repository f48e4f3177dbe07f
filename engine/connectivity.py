"""Build synaptic connectivity on the device as padded rows (GeNN's sparse format).

Format
------
A projection from ``n_pre`` to ``n_post`` neurons is a :class:`SparseRows`: row ``i``
holds the post-synaptic columns of pre-synaptic neuron ``i`` in ``cols[i, :row_length[i]]``
(the rest is ``PAD = -1``). The synapse at row ``i``, position ``k`` has the *padded
synapse index* ``s = i * max_row + k``; per-synapse variables are stored in that order.
:func:`column_map` gives the column-major view that post-synaptic learning needs.

Randomness
----------
Every random number comes from :mod:`gpuspike.engine.rng` with ``step =
CONNECT_STEP_BASE + purpose``, ``index`` = the row (or the pre index ``i``) and ``draw`` =
the position in the row (or the post index ``j``), so a seed gives the same connectivity on
NumPy and CuPy (up to float rounding in ``log``), whatever the tiling.

Algorithms (all vectorised over tiles of rows)
----------------------------------------------
- ``FixedProbability(p)``: geometric skipping. Gaps between successive columns of a
  Bernoulli(p) row are ``G = floor(log(1 - u) / log(1 - p)) + 1``; the columns are
  ``cumsum(G) - 1`` while ``< m``. A row needs (length + 1) draws; the width is sized from
  the binomial upper tail, ``m p + 10 sqrt(m p (1 - p)) + 10``, and rows that reach the
  width without passing ``m`` are redone twice as wide (never truncated).
- ``FixedNumberPost(n)`` without replacement: draw integers ``floor(u m)`` and keep the
  first ``n`` distinct ones in draw order (sequential sampling without replacement, i.e. a
  uniform ``n``-subset); when ``n > m / 2`` the ``m - n`` *excluded* columns are drawn
  that way instead. With replacement: ``n`` independent integers.
  ``FixedNumberPre(n)``: the same per post column, then transposed.
- Self connections (``same_group`` and not ``allow_self``): draw among ``m = n_post - 1``
  columns and map ``c -> c + (c >= i)``, which keeps the exact distribution over ``j != i``.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import sympy

from ..bridge.errors import GpuMemoryError, ModelError
from ..bridge.ir import (
    AllToAll,
    ConditionConnect,
    Connector,
    FixedNumberPost,
    FixedNumberPre,
    FixedProbability,
    FromList,
    OneToOne,
)
from .rng import CONNECT_STEP_BASE, geometric_gaps, uniform

__all__ = ["PAD", "SparseRows", "build", "column_map"]

#: Value of ``cols`` beyond a row's length (and of index maps for padding).
PAD = -1

# Purposes of random draws (added to CONNECT_STEP_BASE to form the Philox step).
_DRAW_FIXED_PROBABILITY = 0
_DRAW_FIXED_NUMBER = 1
_DRAW_CONDITION_P = 2

#: Elements per tile of rows (bounds temporary memory: ~10 arrays of 8 bytes each).
TILE_ELEMENTS = {"numpy": 1 << 21, "cupy": 1 << 24}

PairEvaluator = Callable[[Any, Any], Any]


def _array_module(a: Any) -> ModuleType:
    if isinstance(a, np.ndarray):
        return np
    return importlib.import_module(type(a).__module__.split(".")[0])


@dataclass(frozen=True, eq=False)
class SparseRows:
    """Padded-row connectivity of ``n_pre`` x ``n_post`` neurons (arrays in ``xp``).

    Attributes
    ----------
    n_pre, n_post : int
        Population sizes.
    row_length : int32 array (n_pre,)
        Number of synapses of each pre-synaptic neuron.
    max_row : int
        Width of ``cols`` (the longest row).
    cols : int32 array (n_pre, max_row)
        Post-synaptic indices; ``PAD`` beyond ``row_length``.
    n_synapses : int
        Total number of synapses.
    """

    n_pre: int
    n_post: int
    row_length: Any
    max_row: int
    cols: Any
    n_synapses: int

    @property
    def xp(self) -> ModuleType:
        return _array_module(self.cols)

    def valid_mask(self) -> Any:
        """Boolean ``(n_pre, max_row)``: which slots hold a synapse."""
        xp = self.xp
        return xp.arange(self.max_row)[None, :] < self.row_length[:, None]

    def to_pairs(self) -> tuple[Any, Any]:
        """``(i, j)`` of every synapse in row-major (padded index) order, int32."""
        xp = self.xp
        mask = self.valid_mask()
        rows = xp.broadcast_to(xp.arange(self.n_pre, dtype=xp.int32)[:, None], mask.shape)
        return rows[mask], self.cols[mask]

    def padded_index(self) -> Any:
        """int64 ``(n_synapses,)``: padded synapse index of each synapse in dense order."""
        return self.xp.flatnonzero(self.valid_mask().reshape(-1))

    def compact_index(self) -> Any:
        """int64 ``(n_pre * max_row,)``: dense index of each padded slot (``PAD`` if empty)."""
        xp = self.xp
        mask = self.valid_mask().reshape(-1)
        dense = xp.cumsum(mask, dtype=xp.int64) - 1
        return xp.where(mask, dense, xp.int64(PAD))


def column_map(rows: SparseRows) -> tuple[Any, int, Any]:
    """GeNN's column-major map of a :class:`SparseRows`, for post-synaptic learning.

    Returns
    -------
    col_length : int32 array (n_post,)
        Number of synapses onto each post-synaptic neuron.
    max_col : int
        Longest column.
    remap : int64 array (n_post, max_col)
        Padded synapse indices of the synapses onto each post neuron, by increasing
        pre-synaptic index (then row position); ``PAD`` beyond ``col_length``.
    """
    xp = rows.xp
    mask = rows.valid_mask()
    s = xp.flatnonzero(mask.reshape(-1))
    c = rows.cols[mask].astype(xp.int64)  # same (row-major) order as s
    col_length = xp.bincount(c, minlength=rows.n_post).astype(xp.int32)
    max_col = int(col_length.max()) if rows.n_post and s.size else 0
    remap = xp.full((rows.n_post, max_col), PAD, dtype=xp.int64)
    if s.size:
        order = xp.argsort(c, kind="stable")  # keeps row-major order within a column
        c_sorted = c[order]
        start = xp.cumsum(col_length, dtype=xp.int64) - col_length
        k = xp.arange(s.size, dtype=xp.int64) - start[c_sorted]
        remap[c_sorted, k] = s[order]
    return col_length, max_col, remap


# ----------------------------------------------------------------------------- helpers
def _check_memory(n_rows: int, width: int, max_bytes: int | None, what: str) -> None:
    need = 4 * int(n_rows) * int(width)
    if max_bytes is not None and need > max_bytes:
        raise GpuMemoryError(
            f"{what}: the column indices need about {need / 2**30:.3f} GiB "
            f"({n_rows} rows x {width} int32), above max_bytes = {max_bytes / 2**30:.3f} GiB; "
            "use a sparser connector or smaller populations, split the projection, "
            "or raise max_bytes on a GPU with more memory"
        )


def _tile_rows(xp: ModuleType, width: int, tile_elements: int | None) -> int:
    per_tile = tile_elements or TILE_ELEMENTS.get(xp.__name__, TILE_ELEMENTS["cupy"])
    return max(1, per_tile // max(1, width))


def _finish(xp: ModuleType, n_pre: int, n_post: int, row_length: Any, cols: Any) -> SparseRows:
    row_length = row_length.astype(xp.int32, copy=False)
    return SparseRows(
        n_pre=n_pre,
        n_post=n_post,
        row_length=row_length,
        max_row=int(cols.shape[1]),
        cols=cols.astype(xp.int32, copy=False),
        n_synapses=int(row_length.sum()),
    )


def _rows_from_pairs(
    xp: ModuleType, n_pre: int, n_post: int, i: Any, j: Any, max_bytes: int | None, what: str
) -> SparseRows:
    """Group pairs by row (stable: list order kept within a row)."""
    i = xp.asarray(i, dtype=xp.int64).reshape(-1)
    j = xp.asarray(j, dtype=xp.int64).reshape(-1)
    row_length = xp.bincount(i, minlength=n_pre) if i.size else xp.zeros(n_pre, xp.int64)
    max_row = int(row_length.max()) if n_pre and i.size else 0
    _check_memory(n_pre, max_row, max_bytes, what)
    cols = xp.full((n_pre, max_row), PAD, dtype=xp.int32)
    if i.size:
        order = xp.argsort(i, kind="stable")
        i_sorted = i[order]
        start = xp.cumsum(row_length) - row_length
        k = xp.arange(i.size, dtype=xp.int64) - start[i_sorted]
        cols[i_sorted, k] = j[order].astype(xp.int32)
    return _finish(xp, n_pre, n_post, row_length, cols)


# TODO(perf): on CuPy, one ElementwiseKernel over rng.CUDA_SOURCE would replace the ~150
# element-wise launches per tile that the vectorised Philox makes (set-up time only).
def _uniform_block(
    xp: ModuleType, seed: int, stream: int, purpose: int, rows: Any, width: int
) -> Any:
    draws = xp.arange(width, dtype=xp.uint32)[None, :]
    return uniform(xp, seed, stream, CONNECT_STEP_BASE + purpose, draws, rows[:, None])


def _skip_self(xp: ModuleType, c: Any, rows: Any) -> Any:
    """Map columns drawn among ``m = n - 1`` onto ``[0, n) \\ {row}``."""
    return c + (c >= rows[:, None])


# ----------------------------------------------------------------------------- connectors
def _all_to_all(
    xp: ModuleType, n_pre: int, n_post: int, skip_self: bool, max_bytes: int | None, what: str
) -> SparseRows:
    m = n_post - 1 if skip_self else n_post
    _check_memory(n_pre, m, max_bytes, what)
    cols = xp.broadcast_to(xp.arange(m, dtype=xp.int64)[None, :], (n_pre, m))
    if skip_self:
        cols = _skip_self(xp, cols, xp.arange(n_pre, dtype=xp.int64))
    return _finish(xp, n_pre, n_post, xp.full(n_pre, m, dtype=xp.int32), cols.astype(xp.int32))


def _bernoulli_width(m: int, p: float) -> int:
    """Initial row width for Bernoulli(p) rows of m columns: 10 sigma above the mean."""
    return min(m, math.ceil(m * p + 10.0 * math.sqrt(m * p * (1.0 - p)) + 10.0))


def _bernoulli_tile(
    xp: ModuleType, rows: Any, m: int, p: float, width: int, seed: int, stream: int
) -> tuple[Any, Any]:
    """Columns (< m valid, sorted; garbage >= m after) and lengths of Bernoulli(p) rows."""
    u = _uniform_block(xp, seed, stream, _DRAW_FIXED_PROBABILITY, rows, width)
    c = xp.cumsum(geometric_gaps(xp, u, p, m + 1), axis=1) - 1
    if width < m:
        unfinished = xp.flatnonzero(c[:, -1] < m)
        if unfinished.size:
            # Same draws at the same positions: the wider redo extends these rows.
            wider = min(m, 2 * width)
            c_more, _ = _bernoulli_tile(xp, rows[unfinished], m, p, wider, seed, stream)
            grown = xp.full((c.shape[0], c_more.shape[1]), m, dtype=xp.int64)
            grown[:, :width] = c
            grown[unfinished] = c_more
            c = grown
    return c, (c < m).sum(axis=1)


def _fixed_probability(
    xp: ModuleType,
    conn: FixedProbability,
    n_pre: int,
    n_post: int,
    skip_self: bool,
    seed: int,
    stream: int,
    max_bytes: int | None,
    tile_elements: int | None,
    what: str,
) -> SparseRows:
    p = float(conn.p)
    if not 0.0 <= p <= 1.0:
        raise ModelError(f"{what}: probability p = {p} is outside [0, 1]")
    m = n_post - 1 if skip_self else n_post
    if p == 1.0:
        return _all_to_all(xp, n_pre, n_post, skip_self, max_bytes, what)
    if p == 0.0 or m <= 0:
        return _finish(xp, n_pre, n_post, xp.zeros(n_pre, xp.int32), xp.zeros((n_pre, 0)))
    width = _bernoulli_width(m, p)
    _check_memory(n_pre, width, max_bytes, what)
    tile = _tile_rows(xp, width, tile_elements)
    pieces, lengths = [], []
    for lo in range(0, n_pre, tile):
        rows = xp.arange(lo, min(n_pre, lo + tile), dtype=xp.int64)
        c, length = _bernoulli_tile(xp, rows, m, p, width, seed, stream)
        if skip_self:
            c = _skip_self(xp, c, rows)
        pieces.append(c)
        lengths.append(length)
    row_length = xp.concatenate(lengths) if lengths else xp.zeros(0, xp.int64)
    max_row = int(row_length.max()) if n_pre else 0
    _check_memory(n_pre, max_row, max_bytes, what)
    cols = xp.full((n_pre, max_row), PAD, dtype=xp.int32)
    k = xp.arange(max_row)[None, :]
    lo = 0
    for c, length in zip(pieces, lengths):
        hi = lo + c.shape[0]
        w = min(max_row, c.shape[1])
        cols[lo:hi, :w] = xp.where(k[:, :w] < length[:, None], c[:, :w], PAD)
        lo = hi
    return _finish(xp, n_pre, n_post, row_length, cols)


def _distinct_tile(
    xp: ModuleType, rows: Any, m: int, n: int, width: int, seed: int, stream: int
) -> Any:
    """The first ``n`` distinct values of ``floor(u m)`` in draw order, per row: (rows, n)."""
    u = _uniform_block(xp, seed, stream, _DRAW_FIXED_NUMBER, rows, width)
    c = xp.floor(u * m).astype(xp.int64)  # one rounded product: same on CPU and GPU
    key = xp.sort(c * width + xp.arange(width, dtype=xp.int64)[None, :], axis=1)
    c_sorted, pos = key // width, key % width
    first = xp.ones(key.shape, dtype=bool)
    first[:, 1:] = c_sorted[:, 1:] != c_sorted[:, :-1]
    keep = xp.zeros(key.shape, dtype=bool)
    keep[xp.arange(key.shape[0])[:, None], pos] = first
    taken = keep & (xp.cumsum(keep, axis=1) <= n)
    done = taken.sum(axis=1) == n
    if not bool(done.all()):
        # Rare (width has a 10-sigma margin): redo the short rows with more draws.
        short = xp.flatnonzero(~done)
        redo = _distinct_tile(xp, rows[short], m, n, 2 * width, seed, stream)
        out = xp.zeros((rows.shape[0], n), dtype=xp.int64)
        good = xp.flatnonzero(done)
        out[good] = c[good][taken[good]].reshape(-1, n)
        out[short] = redo
        return out
    return c[taken].reshape(-1, n)


def _sample_rows(
    xp: ModuleType,
    n_rows: int,
    m: int,
    n: int,
    with_replacement: bool,
    skip_self: bool,
    seed: int,
    stream: int,
    tile_elements: int | None,
) -> Any:
    """``(n_rows, n)`` sorted columns: ``n`` of ``m`` per row (row ``r`` skips ``r``)."""
    if n == 0:
        return xp.zeros((n_rows, 0), dtype=xp.int64)
    exclude = not with_replacement and n > m // 2
    k = m - n if exclude else n
    width = k if with_replacement else math.ceil(1.4 * k + 10.0 * math.sqrt(k) + 10.0)
    tile = _tile_rows(xp, max(width, m if exclude else 0), tile_elements)
    out = []
    for lo in range(0, n_rows, tile):
        rows = xp.arange(lo, min(n_rows, lo + tile), dtype=xp.int64)
        if with_replacement:
            u = _uniform_block(xp, seed, stream, _DRAW_FIXED_NUMBER, rows, n)
            c = xp.sort(xp.floor(u * m).astype(xp.int64), axis=1)
        elif exclude:
            keep = xp.ones((rows.shape[0], m), dtype=bool)
            if k:
                gone = _distinct_tile(xp, rows, m, k, width, seed, stream)
                keep[xp.arange(rows.shape[0])[:, None], gone] = False
            cand = xp.broadcast_to(xp.arange(m, dtype=xp.int64)[None, :], keep.shape)
            c = cand[keep].reshape(-1, n)
        else:
            c = xp.sort(_distinct_tile(xp, rows, m, n, width, seed, stream), axis=1)
        out.append(_skip_self(xp, c, rows) if skip_self else c)
    return xp.concatenate(out) if out else xp.zeros((0, n), dtype=xp.int64)


def _fixed_number(
    xp: ModuleType,
    conn: FixedNumberPost | FixedNumberPre,
    n_pre: int,
    n_post: int,
    skip_self: bool,
    seed: int,
    stream: int,
    max_bytes: int | None,
    tile_elements: int | None,
    what: str,
) -> SparseRows:
    post = isinstance(conn, FixedNumberPost)
    n_pool = n_post if post else n_pre
    m = n_pool - 1 if skip_self else n_pool
    n = int(conn.n)
    if n < 0:
        raise ModelError(f"{what}: n = {n} must be >= 0")
    if n > 0 and (m <= 0 or (not conn.with_replacement and n > m)):
        side = "pre" if post else "post"
        pool = "post" if post else "pre"
        raise ModelError(
            f"{what}: each {side}-synaptic neuron needs {n} distinct {pool}-synaptic "
            f"partners but only {m} are available ({n_pre} pre x {n_post} post"
            f"{', self connections excluded' if skip_self else ''}); lower n or set "
            "with_replacement=True"
        )
    if post:
        _check_memory(n_pre, n, max_bytes, what)
        c = _sample_rows(
            xp, n_pre, m, n, conn.with_replacement, skip_self, seed, stream, tile_elements
        )
        return _finish(xp, n_pre, n_post, xp.full(n_pre, n, dtype=xp.int32), c)
    c = _sample_rows(
        xp, n_post, m, n, conn.with_replacement, skip_self, seed, stream, tile_elements
    )
    # Pairs in post-major order: the stable grouping by pre keeps each row sorted by post.
    j = xp.repeat(xp.arange(n_post, dtype=xp.int64), n)
    return _rows_from_pairs(xp, n_pre, n_post, c.reshape(-1), j, max_bytes, what)


def _lambdify(expr: sympy.Basic, n_pre: int, n_post: int, what: str) -> PairEvaluator:
    """Fallback evaluator of a SymPy expression of i, j, N_pre, N_post (NumPy printer;
    CuPy arrays dispatch through ``__array_ufunc__``)."""
    known = {"i", "j", "N_pre", "N_post"}
    symbols = sorted(expr.free_symbols, key=lambda s: s.name)
    unknown = [s.name for s in symbols if s.name not in known]
    if unknown:
        raise ModelError(
            f"{what}: symbols {unknown} in {expr} are not i, j, N_pre or N_post; pass a "
            "condition_evaluator / p_evaluator that knows them"
        )
    func = sympy.lambdify(symbols, expr, modules="numpy")

    def evaluate(i: Any, j: Any) -> Any:
        values = {"i": i, "j": j, "N_pre": n_pre, "N_post": n_post}
        return func(*(values[s.name] for s in symbols))

    return evaluate


def _condition(
    xp: ModuleType,
    conn: ConditionConnect,
    n_pre: int,
    n_post: int,
    seed: int,
    stream: int,
    condition_evaluator: PairEvaluator | None,
    p_evaluator: PairEvaluator | float | None,
    max_bytes: int | None,
    tile_elements: int | None,
    what: str,
) -> SparseRows:
    if conn.n < 0:
        raise ModelError(f"{what}: n = {conn.n} must be >= 0")
    row_only = _row_condition(conn) if condition_evaluator is None else None
    if condition_evaluator is None:
        condition = sympy.sympify(conn.condition)
        if condition != sympy.true:
            condition_evaluator = _lambdify(condition, n_pre, n_post, what)
    if p_evaluator is None:
        p_expr = sympy.sympify(conn.p)
        p_evaluator = float(p_expr) if p_expr.is_number else _lambdify(p_expr, n_pre, n_post, what)
    if isinstance(p_evaluator, (int, float)) and not 0.0 <= float(p_evaluator) <= 1.0:
        raise ModelError(f"{what}: probability p = {p_evaluator} is outside [0, 1]")
    if row_only is not None and isinstance(p_evaluator, (int, float)) and conn.n == 1:
        # A condition on i alone selects rows: geometric skipping on those rows only
        # (O(synapses) instead of O(n_pre * n_post) condition evaluations).
        base = _fixed_probability(xp, FixedProbability(float(p_evaluator)), n_pre, n_post,
                                  False, seed, stream, max_bytes, tile_elements, what)
        rows = xp.arange(n_pre, dtype=xp.int64)
        evaluate = _lambdify(row_only, n_pre, n_post, what)
        keep = xp.broadcast_to(xp.asarray(evaluate(rows, xp.zeros_like(rows)), dtype=bool),
                               (n_pre,))
        length = xp.where(keep, base.row_length, 0).astype(xp.int32)
        width = int(length.max()) if n_pre else 0
        cols = base.cols[:, :width]
        cols = xp.where(xp.arange(width)[None, :] < length[:, None], cols, PAD)
        return _finish(xp, n_pre, n_post, length, cols.astype(xp.int32))
    tile = _tile_rows(xp, n_post, tile_elements)
    j_line = xp.arange(n_post, dtype=xp.int64)[None, :]
    found_i, found_j = [], []
    for lo in range(0, n_pre, tile):
        rows = xp.arange(lo, min(n_pre, lo + tile), dtype=xp.int64)
        shape = (rows.shape[0], n_post)
        i2, j2 = xp.broadcast_to(rows[:, None], shape), xp.broadcast_to(j_line, shape)
        if condition_evaluator is None:
            ok = xp.ones(shape, dtype=bool)
        else:
            ok = xp.broadcast_to(xp.asarray(condition_evaluator(i2, j2), dtype=bool), shape)
        if not (isinstance(p_evaluator, (int, float)) and float(p_evaluator) >= 1.0):
            p = p_evaluator(i2, j2) if callable(p_evaluator) else p_evaluator
            u = _uniform_block(xp, seed, stream, _DRAW_CONDITION_P, rows, n_post)
            ok = ok & (u < p)
        ii, jj = xp.nonzero(ok)  # row-major: j ascending within a row
        found_i.append(ii + lo)
        found_j.append(jj)
    i = xp.concatenate(found_i) if found_i else xp.zeros(0, xp.int64)
    j = xp.concatenate(found_j) if found_j else xp.zeros(0, xp.int64)
    if conn.n != 1:
        i, j = xp.repeat(i, conn.n), xp.repeat(j, conn.n)
    return _rows_from_pairs(xp, n_pre, n_post, i, j, max_bytes, what)


def _row_condition(conn: ConditionConnect) -> sympy.Basic | None:
    """The condition when it depends on ``i`` (and the sizes) alone, else None."""
    condition = sympy.sympify(conn.condition)
    if condition == sympy.true:
        return None
    names = {s.name for s in condition.free_symbols}
    if not names <= {"i", "N_pre", "N_post"} or condition.atoms(sympy.Function):
        return None
    return condition


def _from_list(
    xp: ModuleType, conn: FromList, n_pre: int, n_post: int, max_bytes: int | None, what: str
) -> SparseRows:
    i = np.asarray(conn.i).reshape(-1)
    j = np.asarray(conn.j).reshape(-1)
    if i.shape != j.shape:
        raise ModelError(f"{what}: i and j have different lengths ({i.size} and {j.size})")
    if i.size and (i.min() < 0 or i.max() >= n_pre or j.min() < 0 or j.max() >= n_post):
        raise ModelError(
            f"{what}: indices out of range (i in [{i.min()}, {i.max()}] for {n_pre} pre, "
            f"j in [{j.min()}, {j.max()}] for {n_post} post)"
        )
    return _rows_from_pairs(xp, n_pre, n_post, xp.asarray(i), xp.asarray(j), max_bytes, what)


# ----------------------------------------------------------------------------- entry point
def build(
    connector: Connector,
    n_pre: int,
    n_post: int,
    *,
    xp: ModuleType,
    seed: int,
    stream: int,
    same_group: bool = False,
    condition_evaluator: PairEvaluator | None = None,
    p_evaluator: PairEvaluator | float | None = None,
    max_bytes: int | None = None,
    tile_elements: int | None = None,
    name: str | None = None,
) -> SparseRows:
    """Build the connectivity of ``connector`` between ``n_pre`` and ``n_post`` neurons.

    Parameters
    ----------
    connector : Connector
        One of the connector dataclasses of :mod:`gpuspike.bridge.ir`.
    n_pre, n_post : int
        Population sizes.
    xp : module
        ``numpy`` or ``cupy``: where the arrays are built and live.
    seed, stream : int
        Network seed and the projection's RNG stream id.
    same_group : bool
        Pre and post are the same population (then ``allow_self=False`` removes i == j).
    condition_evaluator : callable, optional
        ``f(i, j) -> bool array`` for :class:`ConditionConnect` (``i``, ``j`` int64 arrays
        of one shape); default: ``sympy.lambdify`` of the condition.
    p_evaluator : callable or float, optional
        The probability of :class:`ConditionConnect`, ``f(i, j) -> float array`` or a
        number; default: the connector's ``p``.
    max_bytes : int, optional
        Limit on the bytes of ``cols``; above it :class:`GpuMemoryError` is raised.
    tile_elements : int, optional
        Elements per tile of rows (temporary memory); default per array module.
    name : str, optional
        The synapse group's name, for error messages.

    Returns
    -------
    SparseRows
    """
    what = f"{type(connector).__name__}" + (f" of {name!r}" if name else "")
    if n_pre < 0 or n_post < 0:
        raise ModelError(f"{what}: population sizes must be >= 0, got {n_pre} x {n_post}")
    allow_self = getattr(connector, "allow_self", True)
    if same_group and n_pre != n_post:
        raise ModelError(f"{what}: same_group but n_pre = {n_pre} != n_post = {n_post}")
    skip_self = same_group and not allow_self
    if isinstance(connector, AllToAll):
        return _all_to_all(xp, n_pre, n_post, skip_self, max_bytes, what)
    if isinstance(connector, OneToOne):
        if n_pre != n_post:
            raise ModelError(
                f"{what}: one-to-one needs equal sizes, got {n_pre} pre and {n_post} post"
            )
        _check_memory(n_pre, 1, max_bytes, what)
        cols = xp.arange(n_pre, dtype=xp.int32)[:, None]
        return _finish(xp, n_pre, n_post, xp.ones(n_pre, dtype=xp.int32), cols)
    if isinstance(connector, FixedProbability):
        return _fixed_probability(
            xp,
            connector,
            n_pre,
            n_post,
            skip_self,
            seed,
            stream,
            max_bytes,
            tile_elements,
            what,
        )
    if isinstance(connector, (FixedNumberPost, FixedNumberPre)):
        return _fixed_number(
            xp,
            connector,
            n_pre,
            n_post,
            skip_self,
            seed,
            stream,
            max_bytes,
            tile_elements,
            what,
        )
    if isinstance(connector, FromList):
        return _from_list(xp, connector, n_pre, n_post, max_bytes, what)
    if isinstance(connector, ConditionConnect):
        return _condition(
            xp,
            connector,
            n_pre,
            n_post,
            seed,
            stream,
            condition_evaluator,
            p_evaluator,
            max_bytes,
            tile_elements,
            what,
        )
    raise ModelError(f"unknown connector {connector!r}")
