"""Test harness: a network's complete generated CUDA module, run on the CPU.

The CUDA printer's hooks (grid-stride loops over ``threadIdx``/``blockIdx``, ``atomicAdd``
and ``atomicOr``, ``__syncthreads`` barriers, the per-block loops of the cable tree and of
``gs_advance``) are code that only a GPU would otherwise execute. :class:`CudaOnHost`
takes ``cuda_source(plan)`` *unchanged*, puts a small shim header before it and C++
launchers after it, compiles the whole module with the host compiler and runs it the way
the CuPy runtime (:class:`gpuspike.engine.programs.CudaProgram`) does: per step every
kernel with :func:`~gpuspike.engine.codegen_cuda.launch_config`'s grid and block, then
``gs_advance`` with grid (1, 1, 1) and block (min(B, 1024), 1, 1).

The execution model of the shim:

- the blocks of a grid run one after the other (CUDA guarantees no order between blocks,
  so any order is a legal schedule; ``reverse=True`` runs them, and the threads of a
  block, backwards, which a kernel that depends on the order fails);
- a kernel whose text has no ``__syncthreads`` runs the threads of a block one after the
  other in a loop (also a legal schedule: without barriers nothing may depend on threads
  running together);
- a kernel with ``__syncthreads`` runs each block as an OpenMP team of ``blockDim``
  threads, each with its own (``thread_local``) ``threadIdx``/``blockIdx``/``blockDim``/
  ``gridDim``; ``__syncthreads()`` is ``#pragma omp barrier`` and ``__shared__`` memory is a
  static (one block runs at a time); ``teams="all"`` runs every kernel so;
- ``atomicAdd``/``atomicOr`` are GCC ``__atomic`` builtins (a compare-and-swap loop for
  ``float``/``double``), with CUDA's overload set only, so that an atomic on a type CUDA
  lacks fails here as it would in NVRTC.

The arrays are the caller's NumPy arrays, changed in place; their dtypes are checked
against the kernels' parameter types.
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from gpuspike.engine import kernel_ir as k
from gpuspike.engine.codegen_c import c_type
from gpuspike.engine.codegen_cpp import CUDA_HOST_SHIMS
from gpuspike.engine.codegen_cuda import cuda_source, kernel_arrays, launch_config

__all__ = ["HOST_FLAGS", "RUNNER", "SHIM", "CudaOnHost", "advance_config", "available",
           "kernel_text"]

#: Flags of the host build. No FMA contraction: the comparison with NumPy is to rounding.
HOST_FLAGS = ("-O1", "-std=c++17", "-fopenmp", "-shared", "-fPIC", "-ffp-contract=off",
              "-Wno-unknown-pragmas")

#: What comes before the CUDA source (after the engine's own host shims).
SHIM = CUDA_HOST_SHIMS + r"""
#include <omp.h>
// ---- tests/cuda_host.py: the CUDA execution model on the host
#define __global__
#define __shared__ static  // one block runs at a time: its team shares the static
static thread_local gs_dim3 threadIdx, blockIdx, blockDim, gridDim;
static inline void gs_syncthreads() {
#pragma omp barrier
}
#define __syncthreads() gs_syncthreads()
// CUDA's overloads only (an atomic on another type must fail here as in NVRTC)
static inline int atomicAdd(int* p, int v) {
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
static inline unsigned int atomicAdd(unsigned int* p, unsigned int v) {
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
static inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
template <class T> static inline T gs_atomic_add_real(T* p, T v) {
    T old, next;
    __atomic_load(p, &old, __ATOMIC_RELAXED);
    do {
        next = old + v;
    } while (!__atomic_compare_exchange(p, &old, &next, false, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED));
    return old;
}
static inline float atomicAdd(float* p, float v) { return gs_atomic_add_real(p, v); }
static inline double atomicAdd(double* p, double v) { return gs_atomic_add_real(p, v); }
static inline int atomicOr(int* p, int v) { return __atomic_fetch_or(p, v, __ATOMIC_RELAXED); }
static inline unsigned int atomicOr(unsigned int* p, unsigned int v) {
    return __atomic_fetch_or(p, v, __ATOMIC_RELAXED);
}
static inline unsigned long long atomicOr(unsigned long long* p, unsigned long long v) {
    return __atomic_fetch_or(p, v, __ATOMIC_RELAXED);
}
// ---- the generated CUDA module, unchanged
"""

#: The grid runner the launchers call (appended after the CUDA source).
RUNNER = r"""
// ---- tests/cuda_host.py: launchers
typedef void (*gs_wrapper)(void* const*);

// Runs a grid: blocks in sequence; a block's threads in a loop, or as an OpenMP team of
// blockDim threads (team != 0). Returns 1 where OpenMP gave a team of another size.
static int gs_grid(gs_wrapper fn, void* const* P, const unsigned int* g,
                   const unsigned int* t, int team, int rev) {
    const gs_dim3 grid = {g[0], g[1], g[2]}, block = {t[0], t[1], t[2]};
    const long long nb = (long long)grid.x * grid.y * grid.z;
    const int nt = (int)(block.x * block.y * block.z);
    for (long long q = 0; q < nb; ++q) {
        const long long r = rev ? nb - 1 - q : q;
        const gs_dim3 bi = {(unsigned int)(r % grid.x), (unsigned int)(r / grid.x % grid.y),
                            (unsigned int)(r / ((long long)grid.x * grid.y))};
        if (team) {
            int wrong = 0;
#pragma omp parallel num_threads(nt)
            {
                if (omp_get_num_threads() != nt) {
#pragma omp atomic write
                    wrong = 1;
                } else {
                    int u = omp_get_thread_num();
                    if (rev) u = nt - 1 - u;
                    threadIdx = {u % block.x, u / block.x % block.y, u / (block.x * block.y)};
                    blockIdx = bi; blockDim = block; gridDim = grid;
                    fn(P);
                }
            }
            if (wrong) return 1;
        } else {
            blockIdx = bi; blockDim = block; gridDim = grid;
            for (int v = 0; v < nt; ++v) {
                const int u = rev ? nt - 1 - v : v;
                threadIdx = {u % block.x, u / block.x % block.y, u / (block.x * block.y)};
                fn(P);
            }
        }
    }
    return 0;
}
"""


def available() -> bool:
    """Whether the host compiler the harness needs (g++ with OpenMP) is on PATH."""
    return shutil.which("g++") is not None


def advance_config(batch: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """``gs_advance``'s launch, as :class:`~gpuspike.engine.programs.CudaProgram` makes it."""
    return (1, 1, 1), (min(batch, 1024), 1, 1)


_C_TO_NUMPY = {"double": np.float64, "float": np.float32, "int": np.int32,
               "long long": np.int64, "unsigned int": np.uint32, "bool": np.bool_}
_libraries: dict[str, ctypes.CDLL] = {}
_tmp: tempfile.TemporaryDirectory | None = None


def _build_dir() -> Path:
    global _tmp
    if _tmp is None:
        _tmp = tempfile.TemporaryDirectory(prefix="gs_cuda_host_")
        atexit.register(_tmp.cleanup)
    return Path(_tmp.name)


def kernel_text(source: str, function: str) -> str:
    """The text of ``__global__`` function ``function`` in a CUDA module source."""
    m = re.search(rf'extern "C" __global__ void {re.escape(function)}\(', source)
    if m is None:
        raise KeyError(f"no __global__ function {function!r} in the CUDA source")
    end = source.index("\n}\n", m.start())
    return source[m.start():end + 3]


class CudaOnHost:
    """The CUDA module of ``plan``, compiled for the CPU (see the module docstring).

    Parameters
    ----------
    plan
        The plan; its CUDA source is ``cuda_source(plan)``, unchanged.
    teams
        ``'barriers'``: OpenMP teams only for kernels with ``__syncthreads``; ``'all'``:
        for every kernel (atomics then really race; slow for big grids).
    """

    def __init__(self, plan: k.Plan, teams: str = "barriers") -> None:
        if teams not in ("barriers", "all"):
            raise ValueError(f"teams={teams!r}: 'barriers' or 'all'")
        self.plan = plan
        self.cuda = cuda_source(plan)
        B = plan.batch_size
        decls = {a.name: a for a in plan.arrays}
        #: per launch: (function name, parameter arrays, grid, block, team)
        self.launches: list[tuple[str, list[str], tuple, tuple, bool]] = []
        wrappers, cases = [], []
        for kern in plan.step_kernels:
            names = [*kernel_arrays(kern), "__step", "__origin"]
            grid, block = launch_config(kern, B)
            self._add(f"k_{kern.name}", names, grid, block, teams, wrappers, cases, decls)
        names = ["__step", *(f"{r}_count" for r, _ in plan.ring_depths)]
        self._add("gs_advance", names, *advance_config(B), teams, wrappers, cases, decls)
        self.source = "\n".join([
            SHIM, self.cuda, RUNNER, *wrappers, "",
            'extern "C" int gs_launch(int which, void* const* P, const unsigned int* grid, '
            "const unsigned int* block, int team, int rev) {",
            "    switch (which) {", *cases, "    }", "    return 2;", "}", ""])
        self.lib = self._compile(self.source)
        self.lib.gs_launch.argtypes = (
            ctypes.c_int, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_uint),
            ctypes.POINTER(ctypes.c_uint), ctypes.c_int, ctypes.c_int)
        self.lib.gs_launch.restype = ctypes.c_int

    def _add(self, fn: str, names: list[str], grid, block, teams: str, wrappers: list[str],
             cases: list[str], decls: dict[str, k.ArrayDecl]) -> None:
        n = len(self.launches)
        ctypes_ = []
        for p, name in enumerate(names):
            ct = c_type(decls[name].dtype, self.plan.precision)
            const = "const " if name == "__origin" else ""
            ctypes_.append(f"({const}{ct}*)P[{p}]")
        wrappers.append(f"static void gs_w{n}(void* const* P) {{ {fn}({', '.join(ctypes_)}); }}")
        cases.append(f"    case {n}: return gs_grid(gs_w{n}, P, grid, block, team, rev);")
        team = teams == "all" or "__syncthreads" in kernel_text(self.cuda, fn)
        self.launches.append((fn, names, tuple(grid), tuple(block), team))

    @staticmethod
    def _compile(source: str) -> ctypes.CDLL:
        key = hashlib.sha256(source.encode()).hexdigest()[:24]
        lib = _libraries.get(key)
        if lib is not None:
            return lib
        root = _build_dir()
        src, out = root / f"{key}.cpp", root / f"{key}.so"
        src.write_text(source)
        proc = subprocess.run(["g++", *HOST_FLAGS, str(src), "-o", str(out)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            numbered = "\n".join(f"{n + 1:5d} {line}"
                                 for n, line in enumerate(source.splitlines()))
            raise AssertionError(f"the CUDA module does not compile on the host:\n"
                                 f"{proc.stderr[-6000:]}\n--- source ---\n{numbered}")
        lib = _libraries[key] = ctypes.CDLL(str(out))
        return lib

    def _pointers(self, arrays: dict[str, np.ndarray], names: list[str]) -> ctypes.Array:
        ptrs = (ctypes.c_void_p * len(names))()
        for p, name in enumerate(names):
            a = arrays[name]
            want = _C_TO_NUMPY[c_type(self.plan.array(name).dtype, self.plan.precision)]
            if not isinstance(a, np.ndarray) or a.dtype != want or not a.flags.c_contiguous:
                raise TypeError(f"array {name!r}: need a C-contiguous {np.dtype(want)} NumPy "
                                f"array, got {getattr(a, 'dtype', type(a))}")
            if a.size < self.plan.array(name).size * (
                    self.plan.batch_size if self.plan.array(name).batched else 1):
                raise ValueError(f"array {name!r} is smaller than its declaration")
            ptrs[p] = a.ctypes.data
        return ptrs

    def run(self, arrays: dict[str, np.ndarray], n_steps: int, *, reverse: bool = False
            ) -> None:
        """``n_steps`` steps on ``arrays`` (in place): every kernel's grid, then
        ``gs_advance``'s, as the CuPy runtime launches them. ``__origin`` and the monitor
        buffers are the caller's (as ``Simulation._run_chunk`` sets them per chunk)."""
        dim3 = ctypes.c_uint * 3
        calls = [(n, self._pointers(arrays, names), dim3(*grid), dim3(*block), int(team))
                 for n, (_, names, grid, block, team) in enumerate(self.launches)]
        for _ in range(n_steps):
            for n, ptrs, grid, block, team in calls:
                rc = self.lib.gs_launch(n, ptrs, grid, block, team, int(reverse))
                if rc != 0:
                    why = ("OpenMP gave a team of another size than blockDim" if rc == 1
                           else "no such launcher")
                    raise RuntimeError(f"{self.launches[n][0]}: launch failed ({why})")
