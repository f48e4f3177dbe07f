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

import sympy

from . import cable
from . import kernel_ir as k
from .exprprint import CUDA_PREAMBLE, CudaExprPrinter
from .functions import cuda_definitions
from .rng import CUDA_SOURCE as RNG_SOURCE
from .rng_discrete import CUDA_SOURCE as DISCRETE_SOURCE

C_TYPES = {"float64": "double", "float32": "float", "int32": "int", "int64": "long long",
           "uint32": "unsigned int", "bool": "bool"}
BLOCK = 256
#: Printer-provided integer locals (divisions by them must stay true divisions).
INTEGER_LOCALS = ("_i_", "_j_", "_s_", "_b_", "_step_", "_rec_i", "_count", "_mult_")


def c_type(dtype: str, precision: str) -> str:
    return C_TYPES[precision if dtype == "float" else dtype]


def kernel_arrays(kern: k.Kernel) -> list[str]:
    """Arrays a kernel touches, in a deterministic order (its parameter list)."""
    names: dict[str, None] = {}

    def visit(stmts):
        for st in stmts:
            if isinstance(st, (k.Load, k.Store, k.AtomicAdd)):
                names[st.array] = None
            elif isinstance(st, k.If):
                visit(st.body)
                visit(st.orelse)
            elif isinstance(st, k.PushEvent):
                names[f"{st.ring}_count"] = None
                names[f"{st.ring}_list"] = None
                if st.multiplicity is not None:
                    names[f"{st.ring}_mult"] = None
            elif isinstance(st, k.LoadCount):
                names[f"{st.ring}_count"] = None
            elif isinstance(st, (k.RecordBit, k.RecordValue)):
                names[st.buffer] = None
            elif isinstance(st, k.RecordEvent):
                names[st.buffer] = None
                names[st.buffer.replace("__events", "__count")] = None
            elif isinstance(st, k.CableSolve):
                for a in cable.STAGE_ARRAYS[st.stage]:
                    names[cable.name(st.cable, a)] = None

    dom = kern.domain
    if isinstance(dom, k.EventDomain):
        names[f"{dom.ring}_count"] = None
        names[f"{dom.ring}_list"] = None
        if dom.mult:
            names[f"{dom.ring}_mult"] = None
    elif isinstance(dom, k.SynapseDomain):
        names[f"{dom.synapses}__rowlen"] = None
        names[f"{dom.synapses}__cols"] = None
    elif isinstance(dom, k.PathwayDomain):
        names[f"{dom.ring}_count"] = None
        names[f"{dom.ring}_list"] = None
        if dom.source == "pre":
            names[f"{dom.synapses}__rowlen"] = None
            names[f"{dom.synapses}__cols"] = None
        else:
            names[f"{dom.synapses}__collen"] = None
            names[f"{dom.synapses}__remap"] = None
        if dom.delay_array:
            names[dom.delay_array] = None
        if dom.mult:
            names[f"{dom.ring}_mult"] = None
    elif isinstance(dom, k.SpikeListDomain):
        names[f"{dom.group}__offsets"] = None
        names[f"{dom.group}__indices"] = None
        if dom.counts:
            names[f"{dom.group}__counts"] = None
    visit(kern.body)
    return list(names)


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


class CudaKernelPrinter:
    """Prints a :class:`~.kernel_ir.Plan` as one CUDA C source."""

    def __init__(self, plan: k.Plan) -> None:
        self.plan = plan
        self.p = plan.precision
        self.expr_printer = CudaExprPrinter(plan.precision, integer_symbols=INTEGER_LOCALS)
        self.arrays = {a.name: a for a in plan.arrays}
        self.B = plan.batch_size
        self.real = c_type("float", self.p)

    def expr(self, e: sympy.Basic) -> str:
        return self.expr_printer.doprint(e)

    def source(self) -> str:
        lines = [f"// Generated by gpuspike for network {self.plan.name!r} "
                 f"({self.p}, batch {self.B}). Deterministic: same network, same source.",
                 RNG_SOURCE, DISCRETE_SOURCE, CUDA_PREAMBLE, ""]
        if self.plan.functions:
            lines += [cuda_definitions(self.plan.functions), ""]
        for kern in self.plan.step_kernels:
            lines += self.kernel(kern)
            lines.append("")
        lines += self.advance()
        return "\n".join(lines) + "\n"

    def params(self, names: list[str]) -> str:
        ps = []
        for n in names:
            a = self.arrays[n]
            ps.append(f"{c_type(a.dtype, self.p)}* __restrict__ {n}")
        ps.append("long long* __restrict__ __step")
        ps.append("const long long* __restrict__ __origin")
        return ", ".join(ps)

    def advance(self) -> list[str]:
        out = ['extern "C" __global__ void gs_advance(long long* __restrict__ __step'
               + "".join(f", int* __restrict__ {r}_count" for r, _ in self.plan.ring_depths)
               + ") {",
               "    // one step done: clear the next slot of every ring, advance the counter",
               "    const long long s = __step[0] + 1;",
               f"    for (int b = threadIdx.x; b < {self.B}; b += blockDim.x) {{"]
        for r, depth in self.plan.ring_depths:
            out.append(f"        {r}_count[(s % {depth}) * {self.B} + b] = 0;")
        out += ["    }", "    __syncthreads();", "    if (threadIdx.x == 0) __step[0] = s;",
                "}"]
        return out

    # -- kernels
    def kernel(self, kern: k.Kernel) -> list[str]:
        names = kernel_arrays(kern)
        B = self.B
        out = [f"// {kern.comment} (phase {kern.phase})",
               f'extern "C" __global__ void k_{kern.name}({self.params(names)}) {{',
               "    const long long _step_ = __step[0];",
               "    const long long _origin_ = __origin[0];",
               f"    const double _t_ = (double)_step_ * {self.plan.dt!r};",
               "    (void)_t_; (void)_origin_;"]
        if kern.every > 1:
            out.append(f"    if (_step_ % {kern.every} != 0) return;  // slower clock")
        dom = kern.domain
        decls = [f"{c_type(dt, self.p)} {name} = 0;" for name, dt in kern.locals]
        self.domain = dom
        if isinstance(dom, k.ElementDomain):
            n = dom.size
            self.rng_index = f"(unsigned int)(_b_ * {n} + _i_)"
            out += [f"    for (long long _x = blockIdx.x * (long long)blockDim.x + threadIdx.x; "
                    f"_x < {B * n}LL; _x += (long long)gridDim.x * blockDim.x) {{",
                    f"        const int _b_ = (int)(_x / {n}); const int _i_ = (int)(_x - "
                    f"(long long)_b_ * {n});"]
            out += ["        " + d for d in decls]
            out += self.block(kern.body, 2)
            out.append("    }")
        elif isinstance(dom, k.EventDomain):
            self.rng_index = f"(unsigned int)(_b_ * {dom.size} + _i_)"
            out += ["    const int _b_ = blockIdx.y;",
                    f"    const int _slot_ = (int)(_step_ % {dom.depth});",
                    f"    const int _cnt = {dom.ring}_count[_slot_ * {B} + _b_];",
                    "    for (int _p = blockIdx.x * blockDim.x + threadIdx.x; _p < _cnt; "
                    "_p += gridDim.x * blockDim.x) {",
                    f"        const int _i_ = {dom.ring}_list[((long long)_slot_ * {B} + _b_) * "
                    f"{dom.size} + _p];"]
            if dom.mult:
                out.append(f"        const int _mult_ = {dom.ring}_mult[((long long)_slot_ * {B} "
                           f"+ _b_) * {dom.size} + _i_];")
            out += ["        " + d for d in decls]
            out += self.block(kern.body, 2)
            out.append("    }")
        elif isinstance(dom, k.SynapseDomain):
            npad = dom.n_pre * dom.max_row
            self.rng_index = f"(unsigned int)(_b_ * {npad}LL + _s_)"
            out += [f"    for (long long _x = blockIdx.x * (long long)blockDim.x + threadIdx.x; "
                    f"_x < {B * npad}LL; _x += (long long)gridDim.x * blockDim.x) {{",
                    f"        const int _b_ = (int)(_x / {max(1, npad)}LL);",
                    f"        const long long _s_ = _x - (long long)_b_ * {npad}LL;",
                    f"        const int _i_ = (int)(_s_ / {max(1, dom.max_row)});",
                    f"        if (_s_ - (long long)_i_ * {dom.max_row} >= "
                    f"{dom.synapses}__rowlen[_i_]) continue;",
                    f"        const int _j_ = {dom.synapses}__cols[_s_];"]
            out += ["        " + d for d in decls]
            out += self.block(kern.body, 2)
            out.append("    }")
        elif isinstance(dom, k.PathwayDomain):
            out += self.pathway(dom, kern, decls)
        elif isinstance(dom, k.SpikeListDomain):
            self.rng_index = "(unsigned int)_i_"
            st = f"_step_ % {dom.period_steps}" if dom.period_steps else "_step_"
            out += ["    const int _b_ = blockIdx.y;",
                    f"    const long long _st = {st};",
                    f"    if (_st >= {dom.n_steps}) return;",
                    f"    const int _lo = {dom.group}__offsets[_st], "
                    f"_hi = {dom.group}__offsets[_st + 1];",
                    "    for (int _p = _lo + threadIdx.x; _p < _hi; _p += blockDim.x) {",
                    f"        const int _i_ = {dom.group}__indices[_p];"]
            if dom.counts:
                out.append(f"        const int _mult_ = {dom.group}__counts[_p];")
            out += ["        " + d for d in decls]
            out += self.block(kern.body, 2)
            out.append("    }")
        elif isinstance(dom, k.SingleDomain):
            self.rng_index = "(unsigned int)_b_"
            out += ["    const int _b_ = threadIdx.x;", f"    if (_b_ >= {B}) return;"]
            out += ["    " + d for d in decls]
            out += self.block(kern.body, 1)
        elif isinstance(dom, k.CableDomain) and dom.stage == "sections":
            S = dom.sections
            out += [f"    for (long long _x = blockIdx.x * (long long)blockDim.x + threadIdx.x; "
                    f"_x < {B * S}LL; _x += (long long)gridDim.x * blockDim.x) {{",
                    f"        const int _b_ = (int)(_x / {S}); const int _sec_ = (int)(_x - "
                    f"(long long)_b_ * {S});"]
            out += self.block(kern.body, 2)
            out.append("    }")
        elif isinstance(dom, k.CableDomain):
            # one block per batch entry (uniform: the __syncthreads() inside are safe)
            out += ["    const int _b_ = blockIdx.x;", f"    if (_b_ >= {B}) return;"]
            out += self.block(kern.body, 1)
        else:  # pragma: no cover
            raise TypeError(dom)
        out.append("}")
        return out

    def pathway(self, dom: k.PathwayDomain, kern: k.Kernel, decls: list[str]) -> list[str]:
        B = self.B
        npad = dom.n_pre * dom.max_row
        self.rng_index = f"(unsigned int)(_b_ * {npad}LL + _s_)"
        n_src = dom.n_pre if dom.source == "pre" else dom.n_post
        syn = dom.synapses
        out = ["    const int _b_ = blockIdx.y;"]
        ind = "    "
        if dom.delay_array is not None:
            # TODO(perf): issue 2 follow-up: a dendritic delay ring for pathways that only
            # accumulate would avoid scanning every delay slot with a per-synapse check.
            out.append(f"    for (int _d = 0; _d <= {dom.max_delay}; ++_d) {{")
            ind = "        "
            delay = "_d"
        else:
            delay = str(dom.delay_steps)
        out += [f"{ind}const int _sl = (int)(((_step_ - {delay}) % {dom.depth} + {dom.depth}) "
                f"% {dom.depth});",
                f"{ind}const int _cnt = {dom.ring}_count[_sl * {B} + _b_];",
                f"{ind}for (int _p = blockIdx.x; _p < _cnt; _p += gridDim.x) {{",
                f"{ind}    const int _e = {dom.ring}_list[((long long)_sl * {B} + _b_) * "
                f"{n_src} + _p];"]
        if dom.mult:  # the event's multiplicity (NEST's): accumulations are scaled by it
            out.append(f"{ind}    const int _mult_ = {dom.ring}_mult[((long long)_sl * {B} + "
                       f"_b_) * {n_src} + _e];")
        if dom.source == "pre":
            out += [f"{ind}    const int _rl = {syn}__rowlen[_e];",
                    f"{ind}    for (int _k = threadIdx.x; _k < _rl; _k += blockDim.x) {{",
                    f"{ind}        const int _i_ = _e;",
                    f"{ind}        const long long _s_ = (long long)_e * {dom.max_row} + _k;",
                    f"{ind}        const int _j_ = {syn}__cols[_s_];"]
        else:
            out += [f"{ind}    const int _rl = {syn}__collen[_e];",
                    f"{ind}    for (int _k = threadIdx.x; _k < _rl; _k += blockDim.x) {{",
                    f"{ind}        const int _j_ = _e;",
                    f"{ind}        const long long _s_ = {syn}__remap[(long long)_e * "
                    f"{dom.max_col} + _k];",
                    f"{ind}        const int _i_ = (int)(_s_ / {max(1, dom.max_row)});"]
        if dom.delay_array is not None:
            out.append(f"{ind}        if ({dom.delay_array}[_s_] != _d) continue;")
        depth = len(ind) // 4 + 2
        out += ["    " * depth + d for d in decls]
        out += self.block(kern.body, depth)
        out += [f"{ind}    }}", f"{ind}}}"]
        if dom.delay_array is not None:
            out.append("    }")
        return out

    # -- statements
    def index(self, array: str, index: k.Index) -> str:
        a = self.arrays[array]
        if isinstance(index, str):
            base = k.INDEX_LOCALS[index]
        else:
            base = f"(long long)({self.expr(index)})"
        return f"(long long)_b_ * {a.size}LL + {base}" if a.batched else base

    def block(self, stmts, depth: int) -> list[str]:
        ind = "    " * depth
        out: list[str] = []
        for st in stmts:
            if isinstance(st, k.Load):
                out.append(f"{ind}{st.local} = {st.array}[{self.index(st.array, st.index)}];")
            elif isinstance(st, k.Let):
                if st.comment:
                    out.append(f"{ind}// {st.comment}")
                out.append(f"{ind}{st.local} = {self.expr(st.expr)};")
            elif isinstance(st, k.Store):
                if st.comment:
                    out.append(f"{ind}// {st.comment}")
                ct = c_type(self.arrays[st.array].dtype, self.p)
                out.append(f"{ind}{st.array}[{self.index(st.array, st.index)}] = "
                           f"({ct})({self.expr(st.expr)});")
            elif isinstance(st, k.AtomicAdd):
                if st.comment:
                    out.append(f"{ind}// {st.comment}")
                ct = c_type(self.arrays[st.array].dtype, self.p)
                out.append(f"{ind}atomicAdd(&{st.array}[{self.index(st.array, st.index)}], "
                           f"({ct})({self.expr(st.expr)}));")
            elif isinstance(st, k.If):
                out.append(f"{ind}if ({self.expr(st.condition)}) {{")
                out += self.block(st.body, depth + 1)
                if st.orelse:
                    out.append(f"{ind}}} else {{")
                    out += self.block(st.orelse, depth + 1)
                out.append(f"{ind}}}")
            elif isinstance(st, k.PushEvent):
                # TODO(perf): issue 2 follow-up: warp-aggregated or block-compacted appends
                # (one atomic per block as GeNN does); measure on a GPU first.
                out += [f"{ind}{{  // emit: append to this step's event list",
                        f"{ind}    const int _sl = (int)(_step_ % {st.depth});",
                        f"{ind}    const int _pos = atomicAdd(&{st.ring}_count[_sl * {self.B} "
                        f"+ _b_], 1);",
                        f"{ind}    {st.ring}_list[((long long)_sl * {self.B} + _b_) * {st.size} "
                        f"+ _pos] = _i_;"]
                if st.multiplicity is not None:
                    out.append(f"{ind}    {st.ring}_mult[((long long)_sl * {self.B} + _b_) * "
                               f"{st.size} + _i_] = (int)({self.expr(st.multiplicity)});")
                out.append(f"{ind}}}")
            elif isinstance(st, k.Draw):
                head = (f"{self.plan.seed}ULL, {st.stream}u, (unsigned long long)_step_, "
                        f"{st.draw}u, {self.rng_index}")
                if st.kind in ("uniform", "normal"):
                    bits = "f64" if self.p == "float64" else "f32"
                    out.append(f"{ind}{st.local} = _rng_{st.kind}_{bits}({head});")
                else:
                    params = ", ".join(f"(double)({self.expr(p)})" for p in st.params)
                    out.append(f"{ind}{st.local} = _rng_{st.kind}({head}, {params});")
            elif isinstance(st, k.LoadCount):
                out.append(f"{ind}{st.local} = {st.ring}_count[(int)(_step_ % {st.depth}) * "
                           f"{self.B} + _b_];")
            elif isinstance(st, k.RecordBit):
                buf = self.arrays[st.buffer]
                out.append(f"{ind}atomicOr(&{st.buffer}[(long long)_b_ * {buf.size}LL + "
                           f"(_step_ - _origin_) * {st.words} + (_i_ >> 5)], "
                           f"1u << (_i_ & 31));")
            elif isinstance(st, k.RecordValue):
                buf = self.arrays[st.buffer]
                ct = c_type(buf.dtype, self.p)
                out += [f"{ind}if (_step_ % {st.every} == 0) {{",
                        f"{ind}    const long long _row = (_step_ - _origin_) / {st.every};",
                        f"{ind}    {st.buffer}[(long long)_b_ * {buf.size}LL + _row * {st.width} "
                        f"+ ({self.expr(st.column)})] = ({ct})({self.expr(st.expr)});",
                        f"{ind}}}"]
            elif isinstance(st, k.RecordEvent):
                buf = self.arrays[st.buffer]
                cnt = st.buffer.replace("__events", "__count")
                width = 2 + len(st.values)
                out += [f"{ind}{{",
                        f"{ind}    const int _r = atomicAdd(&{cnt}[_b_], 1);",
                        f"{ind}    if (_r < {st.capacity}) {{",
                        f"{ind}        double* _ev = {st.buffer} + (long long)_b_ * "
                        f"{buf.size}LL + (long long)_r * {width};",
                        f"{ind}        _ev[0] = (double)_step_; _ev[1] = (double)_i_;"]
                for c, v in enumerate(st.values):
                    out.append(f"{ind}        _ev[{2 + c}] = (double)({self.expr(v)});")
                out += [f"{ind}    }}", f"{ind}}}"]
            elif isinstance(st, k.CableSolve):
                out += cable.cuda_stage(self.domain, ind)
            else:  # pragma: no cover
                raise TypeError(st)
        return out


def cuda_source(plan: k.Plan) -> str:
    """The whole CUDA source of a plan (deterministic)."""
    return CudaKernelPrinter(plan).source()
