"""CUDA C code generation from the kernel IR: one deterministic RawModule source per network.

Per step the runtime launches, in order, one ``__global__`` kernel per IR kernel and then
``gs_advance`` (step counter + 1, clear the next ring slot), all reading the step from
device memory so that a chunk of steps can be captured once as a CUDA graph and replayed.

Thread mapping per domain (grid-stride loops, grids sized for the worst case):

- elements: one thread per (batch, element);
- events of this step: ``blockIdx.y`` = batch, threads stride over the event list;
- synapses: one thread per padded synapse slot (skipped beyond the row length);
- pathways: ``blockIdx.y`` = batch, blocks stride over the events of the delayed slot, the
  threads of a block over the synapses of that event's row (or column-map entry);
- spike lists: ``blockIdx.y`` = batch, threads over the spikes scheduled this step;
- single: one thread per batch entry;
- cable solve: one thread per (batch, section) for the Thomas sweeps, one block per batch
  entry for the tree of sections (:mod:`.cable`).

Each IR statement's source is printed as a comment above its line.
"""

from __future__ import annotations

from . import kernel_ir as k
from .codegen_c import INTEGER_LOCALS, CFamilyPrinter, c_type, kernel_arrays
from .exprprint import CUDA_PREAMBLE
from .functions import cuda_definitions
from .rng import CUDA_SOURCE as RNG_SOURCE
from .rng_discrete import CUDA_SOURCE as DISCRETE_SOURCE

__all__ = ["BLOCK", "INTEGER_LOCALS", "CudaTarget", "c_type", "cuda_source", "kernel_arrays",
           "launch_config"]

BLOCK = 256


def launch_config(kern: k.Kernel, batch: int, sm_blocks: int = 1024
                  ) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(grid, block) for a kernel: worst case, capped, the kernels loop inside."""
    dom = kern.domain
    if isinstance(dom, k.ElementDomain):
        n = max(1, batch * dom.size)
        return (min(sm_blocks * 4, -(-n // BLOCK)), 1, 1), (BLOCK, 1, 1)
    if isinstance(dom, k.SynapseDomain):
        n = max(1, batch * dom.n_pre * dom.max_row)
        return (min(sm_blocks * 4, -(-n // BLOCK)), 1, 1), (BLOCK, 1, 1)
    if isinstance(dom, k.EventDomain):
        return (min(sm_blocks, max(1, -(-dom.size // BLOCK))), batch, 1), (BLOCK, 1, 1)
    if isinstance(dom, k.PathwayDomain):
        n_src = dom.n_pre if dom.source == "pre" else dom.n_post
        row = dom.max_row if dom.source == "pre" else dom.max_col
        threads = min(BLOCK, max(32, 32 * (-(-row // 32))))
        return (min(sm_blocks, max(1, n_src)), batch, 1), (threads, 1, 1)
    if isinstance(dom, k.SpikeListDomain):
        return (1, batch, 1), (BLOCK, 1, 1)
    if isinstance(dom, k.CableDomain) and dom.stage == "sections":
        n = max(1, batch * dom.sections)
        return (min(sm_blocks * 4, -(-n // BLOCK)), 1, 1), (BLOCK, 1, 1)
    if isinstance(dom, k.CableDomain):  # the tree: one block per batch entry
        return (batch, 1, 1), (min(BLOCK, 32 * (-(-dom.widest // 32))), 1, 1)
    return (1, 1, 1), (max(1, batch), 1, 1)


class CudaTarget(CFamilyPrinter):
    """The CUDA hooks: grid-stride loops, ``atomicAdd``/``atomicOr``, ``gs_advance``."""

    target = "CUDA"

    def preamble(self) -> list[str]:
        lines = [RNG_SOURCE, DISCRETE_SOURCE, CUDA_PREAMBLE, ""]
        if self.plan.functions:
            lines += [cuda_definitions(self.plan.functions), ""]
        return lines

    def signature(self, kern: k.Kernel, params: str) -> str:
        return f'extern "C" __global__ void k_{kern.name}({params})'

    def loop(self, var: str, ctype: str, lo: str, hi: str, level: str) -> list[str]:
        wide = ctype == "long long"
        if level == "grid":
            first = ("blockIdx.x * (long long)blockDim.x + threadIdx.x" if wide
                     else "blockIdx.x * blockDim.x + threadIdx.x")
            stride = "(long long)gridDim.x * blockDim.x" if wide else "gridDim.x * blockDim.x"
        elif level == "block":
            first, stride = "blockIdx.x", "gridDim.x"
        else:
            first, stride = "threadIdx.x", "blockDim.x"
        if lo != "0":
            first = f"{lo} + {first}"
        return [f"for ({ctype} {var} = {first}; {var} < {hi}; {var} += {stride}) {{"]

    def batch_head(self, dom: k.Domain) -> list[str]:
        if isinstance(dom, k.SingleDomain):
            return ["const int _b_ = threadIdx.x;", f"if (_b_ >= {self.B}) return;"]
        if isinstance(dom, k.CableDomain):  # one block per batch entry (uniform barriers)
            return ["const int _b_ = blockIdx.x;", f"if (_b_ >= {self.B}) return;"]
        return ["const int _b_ = blockIdx.y;"]

    def batch_tail(self) -> list[str]:
        return []

    def atomic_add(self, target: str, value: str) -> str:
        return f"atomicAdd(&{target}, {value});"

    def atomic_inc(self, target: str) -> str:
        return f"atomicAdd(&{target}, 1)"

    def atomic_or(self, target: str, value: str) -> str:
        return f"atomicOr(&{target}, {value});"

    def epilogue(self) -> list[str]:
        out = ['extern "C" __global__ void gs_advance(long long* __restrict__ __step'
               + "".join(f", int* __restrict__ {r}_count" for r, _ in self.plan.ring_depths)
               + ") {",
               "    // one step done: clear the next slot of every ring, advance the counter",
               "    const long long s = __step[0] + 1;",
               f"    const long long ks = {self.plan.kernel_step('s')};  // the next step",
               f"    for (int b = threadIdx.x; b < {self.B}; b += blockDim.x) {{"]
        for r, depth in self.plan.ring_depths:
            out.append(f"        {r}_count[(((ks % {depth}) + {depth}) % {depth}) * {self.B} "
                       "+ b] = 0;")
        out += ["    }", "    __syncthreads();", "    if (threadIdx.x == 0) __step[0] = s;",
                "}"]
        return out


#: The name this printer had before the C-family split (kept for callers).
CudaKernelPrinter = CudaTarget


def cuda_source(plan: k.Plan) -> str:
    """The whole CUDA source of a plan (deterministic)."""
    return CudaTarget(plan).source()
