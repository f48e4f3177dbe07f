"""Runtime targets as objects: one compiled program per network and engine.

Every program has the same face (:class:`~.program_base.Program`): it is compiled when
made, ``run(n)`` advances the network by ``n`` steps (the kernels of a step in order, then
the ring bookkeeping), ``sync()`` waits for the device, ``pull(name)`` / ``push(name)``
move one array between host and device (no-ops where the arrays already live on the host),
``array_written(name)`` is told of host writes. :func:`make_program` picks the class from
the backend once.

- :class:`~.codegen_numpy.NumpyProgram`: generated NumPy functions, one call per kernel.
- :class:`CppProgram`: generated C++ (the CUDA bodies), the whole step loop in one native
  call, OpenMP threads.
- :class:`CudaProgram`: generated CUDA through CuPy's RawModule, chunks of steps captured
  once as CUDA graphs and replayed.
"""

from __future__ import annotations

import ctypes
import logging
import time
from typing import Any

from . import kernel_ir as k
from .backend import Backend
from .codegen_cpp import CppTarget, structural_key
from .codegen_cuda import CudaTarget, kernel_arrays, launch_config
from .codegen_numpy import NumpyProgram
from .cpp_build import build, default_min_work, default_threads, load
from .program_base import Program

logger = logging.getLogger("gpuspike")


class CppProgram(Program):
    """A plan compiled to native code (see :mod:`.codegen_cpp`); arrays stay on the host.

    Parameters
    ----------
    plan, arrays
        The plan and its NumPy arrays (the program reads and writes them in place).
    threads
        OpenMP threads; ``None``: ``$GPUSPIKE_THREADS`` or every core.
    min_work
        Estimated operations below which a kernel runs on one thread (``None``:
        ``$GPUSPIKE_PARALLEL_MIN_WORK`` or :data:`.codegen_cpp.PARALLEL_MIN_WORK`; 0 splits
        every kernel that can be split, as the thread-independence tests do).
    """

    def __init__(self, plan: k.Plan, arrays: dict[str, Any], threads: int | None = None,
                 min_work: int | None = None) -> None:
        self.plan = plan
        self.arrays = arrays
        self.threads = int(threads) if threads else default_threads()
        self.min_work = default_min_work() if min_work is None else int(min_work)
        if self.threads < 1:
            raise ValueError(f"threads={threads!r}: need at least 1")
        target = CppTarget(plan)
        self.table = target.table
        self.source = target.source()
        t0 = time.perf_counter()
        parts = target.parts_for(default_threads())
        self.library_path, self.cached = build(
            self.source, plan.name, structural_key(plan, self.source),
            units=target.units(parts) if parts > 1 else None)
        self.lib = load(self.library_path)
        self.compile_s = time.perf_counter() - t0
        if self.lib.gs_table_size() != len(self.table):  # pragma: no cover - cache clash
            raise RuntimeError(f"{self.library_path} does not match network {plan.name!r}")

    def _pointers(self) -> ctypes.Array:
        """The array table for ``gs_run`` (kept while the arrays are the same objects: a
        run of one step, as between network operations, costs the call, not the table)."""
        ident = tuple(id(self.arrays[name]) for name in self.table)
        if getattr(self, "_ptr_ident", None) == ident:
            return self._ptrs
        ptrs = (ctypes.c_void_p * len(self.table))()
        for n, name in enumerate(self.table):
            a = self.arrays[name]
            if not a.flags.c_contiguous:  # pragma: no cover - allocate() makes them so
                raise RuntimeError(f"array {name!r} is not contiguous")
            ptrs[n] = a.ctypes.data
        # the arrays are held with the table, so that no id can be reused while cached
        self._ptrs, self._ptr_ident = ptrs, ident
        self._ptr_arrays = [self.arrays[name] for name in self.table]
        return ptrs

    def run(self, n: int) -> None:
        if n <= 0:
            return
        rc = self.lib.gs_run(self._pointers(), int(n), self.threads, self.min_work)
        if rc != 0:  # pragma: no cover - gs_run has no failing path yet
            raise RuntimeError(f"gs_run returned {rc}")



class CudaProgram(Program):
    """A plan compiled by NVRTC; chunks of ``n`` steps replayed as CUDA graphs."""

    def __init__(self, plan: k.Plan, arrays: dict[str, Any], cupy: Any,
                 use_graphs: bool = True) -> None:
        self.plan = plan
        self.arrays = arrays
        self.cp = cupy
        self.use_graphs = use_graphs
        self.source = CudaTarget(plan).source()
        self.module = cupy.RawModule(code=self.source, options=("--std=c++17",))
        self.launches = []
        B = plan.batch_size
        for kern in plan.step_kernels:
            fn = self.module.get_function(f"k_{kern.name}")
            args = tuple(arrays[n] for n in kernel_arrays(kern)) + (
                arrays["__step"], arrays["__origin"])
            grid, block = launch_config(kern, B)
            self.launches.append((fn, grid, block, args))
        adv = self.module.get_function("gs_advance")
        adv_args = (arrays["__step"],) + tuple(arrays[f"{r}_count"]
                                                for r, _ in plan.ring_depths)
        self.launches.append((adv, (1, 1, 1), (min(B, 1024), 1, 1), adv_args))
        self.stream = cupy.cuda.Stream(non_blocking=True)
        self.graphs: dict[int, Any] = {}

    def run(self, n: int) -> None:
        cp = self.cp
        cp.cuda.get_current_stream().synchronize()
        with self.stream:
            if not self.use_graphs:
                for _ in range(n):
                    for fn, grid, block, args in self.launches:
                        fn(grid, block, args)
                return
            graph = self.graphs.get(n)
            if graph is None:
                self.stream.begin_capture()
                for _ in range(n):
                    for fn, grid, block, args in self.launches:
                        fn(grid, block, args)
                graph = self.stream.end_capture()
                self.graphs[n] = graph
            graph.launch(self.stream)

    def sync(self) -> None:
        self.stream.synchronize()

    def pull(self, name: str) -> None:
        self.sync()


def make_program(backend: Backend, plan: k.Plan, arrays: dict[str, Any], *,
                 threads: int | None = None, use_graphs: bool = True):
    """The program of ``plan`` for ``backend`` (compiled now)."""
    if backend.name == "cupy":
        return CudaProgram(plan, arrays, backend.xp, use_graphs)
    if backend.name == "cpp":
        return CppProgram(plan, arrays, threads)
    return NumpyProgram(plan, arrays)


__all__ = ["CppProgram", "CudaProgram", "NumpyProgram", "make_program"]
