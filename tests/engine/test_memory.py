"""Host allocation of a plan's arrays (:func:`gpuspike.engine.memory.allocate`)."""

from __future__ import annotations

import numpy as np
from gpuspike.engine import kernel_ir as k
from gpuspike.engine.memory import CACHE_LINE, allocate


def _plan(sizes: list[int], batch: int = 2) -> k.Plan:
    arrays = tuple(k.ArrayDecl(f"a{n}", dt, size, batched=n % 2 == 0)
                   for n, (size, dt) in enumerate(zip(sizes, ["float", "int32", "bool",
                                                             "int64", "float", "uint32"])))
    return k.Plan("p", "float64", batch, 1e-4, 0, arrays, ())


def test_arrays_are_zero_contiguous_disjoint_and_staggered():
    plan = _plan([4000, 4000, 17, 1, 4096, 3])
    A = allocate(plan, np)
    spans = []
    for decl in plan.arrays:
        a = A[decl.name]
        assert a.shape == decl.shape(plan.batch_size) and a.flags.c_contiguous
        assert a.flags.writeable and not a.any()
        assert a.ctypes.data % CACHE_LINE == 0
        spans.append((a.ctypes.data, a.ctypes.data + a.nbytes))
    spans.sort()
    assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:]))
    page_offsets = {start % 4096 for start, _ in spans}
    assert len(page_offsets) == len(spans)  # no two arrays at one page offset
    A["a0"][...] = 1.5  # writes stay in their array
    assert not A["a4"].any() and not A["a1"].any()
