"""Structure-of-arrays device memory: allocation, size estimates and initial values.

Every array of a :class:`~.kernel_ir.Plan` is one contiguous ``xp`` array (``numpy`` or
``cupy``) of shape ``(batch, size)`` when batched, ``(size,)`` otherwise. Initial values
of variables come from the IR initialisers: constants are filled, expressions of ``i``
(``j`` for synapses), ``N`` and ``rand()``/``randn()`` are printed by the NumPy printer
and evaluated on the array module (so on the GPU with CuPy), explicit arrays are copied.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import numpy as np
import sympy
from gpuspike.bridge import ir
from gpuspike.bridge.errors import GpuMemoryError, ModelError

from . import kernel_ir as k
from . import rng
from .exprprint import NUMPY_NAMESPACE, NumpyExprPrinter

#: Philox step used for random initial values (past the connectivity steps' purposes).
INIT_STEP = rng.CONNECT_STEP_BASE + 0x1000


def dtype_of(decl_dtype: str, precision: str) -> np.dtype:
    if decl_dtype == "float":
        return np.dtype(precision)
    return np.dtype(np.bool_) if decl_dtype == "bool" else np.dtype(decl_dtype)


def plan_bytes(plan: k.Plan) -> int:
    """Bytes all arrays of ``plan`` take on the device."""
    total = 0
    for a in plan.arrays:
        n = a.size * (plan.batch_size if a.batched else 1)
        total += n * dtype_of(a.dtype, plan.precision).itemsize
    return total


def check_fits(xp: ModuleType, needed: int, what: str) -> None:
    """Raise :class:`GpuMemoryError` with the estimate when ``needed`` bytes won't fit."""
    if xp is np:
        return
    free, total = xp.cuda.runtime.memGetInfo()
    if needed > free:
        raise GpuMemoryError(
            f"{what} needs about {needed / 2**30:.2f} GiB of GPU memory but only "
            f"{free / 2**30:.2f} GiB of {total / 2**30:.2f} GiB are free. Reduce the network "
            "(fewer synapses, smaller batch), record less (fewer monitored variables or "
            "indices, a smaller chunk_steps), or use float32."
        )


#: Host arrays start on a cache line, each one further into the 4 KiB page than the one
#: before: a kernel that walks several same-sized arrays in step would otherwise find them
#: all at one page offset, where their loads and stores compete for the same L1 sets and
#: trip 4K-aliasing stalls (measured: CUBA's update kernel ran 1.0-1.8x slower from one
#: process to the next, by where malloc put the arrays).
CACHE_LINE = 64
_STAGGER_LINES = 4096 // CACHE_LINE


def allocate(plan: k.Plan, xp: ModuleType) -> dict[str, Any]:
    """Zero-filled arrays for every declaration of ``plan`` (on the host: views of one
    buffer, staggered across the page; see :data:`CACHE_LINE`)."""
    check_fits(xp, plan_bytes(plan), f"network {plan.name!r}")
    shapes = [(a.name, a.shape(plan.batch_size), dtype_of(a.dtype, plan.precision))
              for a in plan.arrays]
    if xp is not np:
        return {name: xp.zeros(shape, dtype=dt) for name, shape, dt in shapes}
    offsets, at = [], 0
    for n, (_name, shape, dt) in enumerate(shapes):
        at = -(-at // 4096) * 4096 + (n % _STAGGER_LINES) * CACHE_LINE
        offsets.append(at)
        at += int(np.prod(shape)) * dt.itemsize
    pool = np.zeros(at + 4096, dtype=np.uint8)
    base = (-pool.ctypes.data) % 4096  # the pool's first page boundary
    return {name: pool[base + off:base + off + int(np.prod(shape)) * dt.itemsize]
            .view(dt).reshape(shape) for (name, shape, dt), off in zip(shapes, offsets)}


def evaluate_initializer(init: ir.Initializer, *, xp: ModuleType, shape: tuple[int, ...],
                         dtype: np.dtype, index_values: Mapping[str, Any],
                         constants: Mapping[str, float], seed: int, stream_name: str,
                         what: str) -> Any:
    """Values of an initialiser for ``shape`` elements.

    ``index_values`` maps ``i`` (and ``j``) to index arrays of the elements, broadcastable to
    ``shape``; ``constants`` holds ``N``, parameters etc.
    """
    if isinstance(init, ir.Constant):
        return xp.full(shape, init.value, dtype=dtype)
    if isinstance(init, ir.ArrayInit):
        vals = np.asarray(init.values)
        try:
            vals = np.broadcast_to(vals, shape)
        except ValueError:
            raise ModelError(f"{what}: initial values of shape {vals.shape} do not fit "
                             f"{shape}") from None
        return xp.asarray(vals, dtype=dtype)
    if isinstance(init, ir.ExpressionInit):
        expr = init.expr
        stream = zlib.crc32(stream_name.encode()) & 0xFFFFFFFF
        env: dict[str, Any] = {**NUMPY_NAMESPACE, "np": xp}
        index = None
        subs = {}
        n_draw = 0
        for call in sorted(expr.atoms(sympy.Function), key=str):
            kind = type(call).__name__
            if kind not in ("rand", "randn"):
                continue
            if index is None:
                index = xp.arange(int(np.prod(shape)), dtype=xp.uint32).reshape(shape)
            fn = rng.uniform if kind == "rand" else rng.normal
            name = f"_draw{n_draw}"
            env[name] = fn(xp, seed, stream, INIT_STEP, n_draw, index, np.float64)
            subs[call] = sympy.Symbol(name)
            n_draw += 1
        expr = expr.xreplace(subs)
        for sym in expr.free_symbols:
            if sym.name in index_values:
                env[sym.name] = index_values[sym.name]
            elif sym.name in constants:
                env[sym.name] = constants[sym.name]
            elif sym.name not in env:
                raise ModelError(f"{what}: initial value uses unknown symbol {sym.name!r}; "
                                 "it may use i, j, N, parameters, rand() and randn()")
        code = NumpyExprPrinter().doprint(expr)
        val = eval(compile(code, f"<init {what}>", "eval"), env)  # noqa: S307 - printed by us
        return xp.broadcast_to(xp.asarray(val), shape).astype(dtype)
    raise ModelError(f"{what}: unknown initialiser {init!r}")  # pragma: no cover
