"""C++ code generation from the kernel IR: the CUDA kernel bodies as native CPU code.

:class:`CppTarget` answers the hooks of :class:`~.codegen_c.CFamilyPrinter`; every
statement and kernel body is the text the CUDA target prints (the preamble maps the few
CUDA names it uses: ``__device__``, ``uint4``, ``__umulhi``, ``__int_as_float``, ...).
The module exports one function, ``gs_run(arrays, n_steps, threads)``, that runs the whole
step loop natively (every kernel in order, then the ring bookkeeping of ``gs_advance``).

Parallelism (OpenMP, ``threads`` workers) and why results do not depend on it:

- a kernel's shared loop carries an orphaned ``omp for``; ``gs_run`` calls the kernel in a
  team only where its estimated work reaches ``gs_min_work`` (a parallel region costs
  microseconds, far more when another process holds a core), else on the calling thread at
  the cost of a plain loop;
- kernels without cross-element accumulation share their elements (a flat loop over
  (batch, element) or (batch, synapse slot), static schedule; or a batch entry's events).
  Event appends take a position with an atomic increment; the new part of each event list
  is then sorted (``omp single``), so the lists are in element order whatever the thread
  count (as the NumPy engine has them);
- kernels with cross-element accumulation (``AtomicAdd``: spike propagation, summed
  variables) run each batch entry's elements in order, batch entries shared where every
  accumulated array is batched, so every sum is taken in one fixed order;
- monitor bit sets and event-list records are atomic; their order is restored on the host.

TODO(perf): issue 12 follow-up: propagation of one batch entry is serial (deterministic
sums); a post-synaptic partition of the rows would make it parallel and still ordered.
"""

from __future__ import annotations

import re

import sympy

from . import kernel_ir as k
from .codegen_c import CFamilyPrinter, c_type, kernel_arrays, pushed_rings, walk
from .exprprint import CUDA_PREAMBLE
from .functions import cuda_definitions
from .rng import CUDA_SOURCE as RNG_SOURCE
from .rng_discrete import CUDA_SOURCE as DISCRETE_SOURCE

__all__ = ["CPP_PRELUDE", "CUDA_HOST_SHIMS", "CppTarget", "cpp_source", "structural_key"]

#: Estimated work (operations, a transcendental function counting as
#: ``TRANSCENDENTAL_COST``) below which a kernel runs on one thread: a parallel region costs
#: 1-3 us when the cores are free and far more when another process holds one of them (the
#: team waits at the barrier for a descheduled thread), so only kernels of tens of
#: microseconds or more are split.
PARALLEL_MIN_WORK = 200_000
TRANSCENDENTAL_COST = 20
_TRANSCENDENTAL = (sympy.exp, sympy.log, sympy.Pow, sympy.sin, sympy.cos, sympy.tan,
                   sympy.tanh, sympy.sinh, sympy.cosh, sympy.atan, sympy.asin, sympy.acos)

#: The CUDA types and intrinsics that the shared helper text (RNG, expression helpers)
#: uses, for a host compiler. The test harness that runs whole CUDA modules on the CPU
#: (tests/cuda_host.py) uses them too.
CUDA_HOST_SHIMS = r"""
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <math.h>
#define __device__
#define __host__
#define __forceinline__ inline
struct uint2 { unsigned int x, y; };
struct uint4 { unsigned int x, y, z, w; };
struct gs_dim3 { unsigned int x, y, z; };
static inline uint2 make_uint2(unsigned int x, unsigned int y) { return uint2{x, y}; }
static inline uint4 make_uint4(unsigned int x, unsigned int y, unsigned int z, unsigned int w) {
    return uint4{x, y, z, w};
}
static inline unsigned int __umulhi(unsigned int a, unsigned int b) {
    return (unsigned int)(((unsigned long long)a * b) >> 32);
}
static inline float __int_as_float(int x) { float f; std::memcpy(&f, &x, 4); return f; }
static inline double __longlong_as_double(long long x) {
    double d; std::memcpy(&d, &x, 8); return d;
}
"""

#: What the C++ target puts before the shared text: the shims, OpenMP, no-op barriers (a
#: block is one worker on the CPU).
CPP_PRELUDE = CUDA_HOST_SHIMS + r"""
#ifdef _OPENMP
#include <omp.h>
#endif
#define __global__
#define __syncthreads()
#ifndef GS_KERNEL
#define GS_KERNEL static
#endif
static int gs_threads = 1;
static long long gs_min_work = 200000;  // see PARALLEL_MIN_WORK
static int gs_int_order(const void* a, const void* b) {
    const int x = *(const int*)a, y = *(const int*)b;
    return (x > y) - (x < y);
}
"""


def body_cost(kern: k.Kernel) -> int:
    """Rough operations per element of a kernel's body (for the parallel threshold)."""
    cost = 0
    for st in walk(kern.body):
        cost += 1
        for field in ("expr", "condition", "multiplicity"):
            e = getattr(st, field, None)
            if isinstance(e, sympy.Basic):
                for node in sympy.preorder_traversal(e):
                    cost += TRANSCENDENTAL_COST if isinstance(node, _TRANSCENDENTAL) else 1
        if isinstance(st, k.Draw):
            cost += 4 * TRANSCENDENTAL_COST
    return cost


def _typical_elements(dom: k.Domain) -> int:
    """Elements a per-batch domain usually has in a step (a tenth of an event domain's
    worst case: events are sparse)."""
    if isinstance(dom, k.EventDomain):
        return max(1, dom.size // 10)
    if isinstance(dom, k.PathwayDomain):
        n_src = dom.n_pre if dom.source == "pre" else dom.n_post
        row = dom.max_row if dom.source == "pre" else dom.max_col
        return max(1, n_src * row // 10)
    if isinstance(dom, k.SpikeListDomain):
        return max(1, dom.size // 10)
    if isinstance(dom, k.CableDomain):
        return dom.compartments
    return 1


def _accumulates(kern: k.Kernel) -> bool:
    return any(isinstance(st, k.AtomicAdd) for st in walk(kern.body))


def _batch_parallel_safe(kern: k.Kernel, arrays: dict[str, k.ArrayDecl]) -> bool:
    """Batch entries may run in parallel: every accumulated array is batched."""
    return all(arrays[st.array].batched for st in walk(kern.body)
               if isinstance(st, k.AtomicAdd))


class CppTarget(CFamilyPrinter):
    """The C++ hooks: plain loops with OpenMP pragmas, ordered accumulation, ``gs_run``."""

    target = "C++"

    def __init__(self, plan: k.Plan) -> None:
        super().__init__(plan)
        #: the array table ``gs_run`` receives: plan order
        self.table = [a.name for a in plan.arrays]
        self._slot = {name: n for n, name in enumerate(self.table)}
        for needed in ("__step", "__origin"):
            if needed not in self._slot:  # pragma: no cover - the lowering declares them
                raise ValueError(f"plan {plan.name!r} declares no {needed!r} array")

    # ------------------------------------------------------------------ module
    def preamble(self) -> list[str]:
        lines = [CPP_PRELUDE, RNG_SOURCE, DISCRETE_SOURCE, CUDA_PREAMBLE, ""]
        if self.plan.functions:
            lines += [cuda_definitions(self.plan.functions), ""]
        return lines

    def signature(self, kern: k.Kernel, params: str) -> str:
        # GS_KERNEL: static in one translation unit; hidden (linked, not exported) when
        # a large network compiles as several units in parallel (:meth:`units`)
        return f"GS_KERNEL void k_{kern.name}({params})"

    def units(self, parts: int) -> list[str]:
        """The module as ``parts`` translation units (kernels spread by size, the step loop
        in the last), compiled in parallel and linked: the same code as :meth:`source`."""
        if parts <= 1:
            return [self.source()]
        head = [f"// gpuspike ({self.target}) network {self.plan.name!r}, one part of "
                f"{parts + 1}", "#define GS_KERNEL __attribute__((visibility(\"hidden\")))",
                *self.preamble()]
        bodies = [self.kernel(kern) for kern in self.plan.step_kernels]
        groups: list[list[str]] = [[] for _ in range(parts)]
        sizes = [0] * parts
        for lines in sorted(bodies, key=len, reverse=True):  # largest first, to the lightest
            n = sizes.index(min(sizes))
            groups[n] += [*lines, ""]
            sizes[n] += len(lines)
        decls = [f"GS_KERNEL void k_{kern.name}({self.params(kernel_arrays(kern))});"
                 for kern in self.plan.step_kernels]
        return (["\n".join(head + g) + "\n" for g in groups if g]
                + ["\n".join(head + decls + [""] + self.epilogue()) + "\n"])

    def parts_for(self, cores: int) -> int:
        """How many units to compile in parallel: one per ~600 lines of kernels, at most
        one per core (each unit repeats the ~250-line preamble)."""
        lines = sum(len(self.kernel(kern)) for kern in self.plan.step_kernels)
        return max(1, min(cores, lines // 600))

    # ------------------------------------------------------------------ parallel shape
    # A kernel's loops carry orphaned worksharing pragmas (``omp for``): called outside a
    # parallel region they run on the calling thread at the cost of a plain loop; ``gs_run``
    # opens a team around the call only where the kernel's work is worth it (the decision
    # per kernel in :meth:`call`). Code outside the shared loops runs on every thread of
    # the team: it only reads, or sits in ``omp single``.
    def _mode(self, kern: k.Kernel) -> str:
        """'elements': elements in parallel; 'batch': batch entries in parallel, each in
        order; 'serial': everything in order (accumulation into unbatched arrays)."""
        if not _accumulates(kern):
            return "elements"
        return "batch" if self.B > 1 and _batch_parallel_safe(kern, self.arrays) else "serial"

    def _flat_domain(self, dom: k.Domain) -> bool:
        return isinstance(dom, (k.ElementDomain, k.SynapseDomain)) or (
            isinstance(dom, k.CableDomain) and dom.stage == "sections")

    def _shares(self, kern: k.Kernel) -> str | None:
        """Which loop of ``kern`` its threads share: 'flat' (the (batch, element) loop),
        'batch' (the loop over batch entries), 'events' (a batch entry's events), or None
        (the kernel runs on one thread)."""
        dom, mode = kern.domain, self._mode(kern)
        if mode == "serial" or isinstance(dom, k.SingleDomain):
            return None
        if self._flat_domain(dom):
            return "flat"
        if self.B > 1:
            return "batch"
        if isinstance(dom, k.EventDomain) and mode == "elements":
            return "events"
        return None

    def work(self, kern: k.Kernel) -> int:
        """Estimated operations of one call of ``kern`` (a transcendental function counts
        :data:`TRANSCENDENTAL_COST`)."""
        dom = kern.domain
        if isinstance(dom, k.ElementDomain):
            n = dom.size
        elif isinstance(dom, k.SynapseDomain):
            n = dom.n_pre * dom.max_row
        elif isinstance(dom, k.CableDomain) and dom.stage == "sections":
            n = dom.compartments
        else:
            n = _typical_elements(dom)
        return self.B * n * body_cost(kern)

    def loop(self, var: str, ctype: str, lo: str, hi: str, level: str) -> list[str]:
        head = f"for ({ctype} {var} = {lo}; {var} < {hi}; ++{var}) {{"
        dom, shares = self.domain, self._shares(self.kern)
        if self._flat_domain(dom) and var == "_x":
            if self._mode(self.kern) == "elements":
                return (["#pragma omp for schedule(static)"] if shares else []) + [head]
            # one batch entry after the other's elements in order; entries in parallel
            per = f"({hi} / {self.B})"
            return [*(["#pragma omp for schedule(static)"] if shares else []),
                    f"for (int _bb = 0; _bb < {self.B}; ++_bb)",
                    f"for (long long _x = _bb * {per}; _x < (_bb + 1) * {per}; ++_x) {{"]
        if shares == "events" and var == "_p":
            return ["#pragma omp for schedule(static)", head]
        return [head]

    def synapse_domain(self, dom: k.SynapseDomain, kern: k.Kernel, decls) -> list[str]:
        if not dom.dense:
            return super().synapse_domain(dom, kern, decls)
        # (batch entry, pre) rows shared by the threads; each row's posts in order, contiguous
        rows = self.B * dom.n_pre
        out = ["    " + line for line in self.loop("_x", "long long", "0", f"{rows}LL", "grid")]
        out += ["        " + self._split(dom.n_pre, "_i_"),
                f"        for (int _k = 0; _k < {dom.n_post}; ++_k) {{",
                "            const int _j_ = _k;",
                f"            const long long _s_ = (long long)_i_ * {dom.max_row} + _k;"]
        out += ["            " + d for d in decls]
        out += self.block(kern.body, 3)
        out += ["        }", "    }"]
        return out

    def batch_head(self, dom: k.Domain) -> list[str]:
        head = [f"for (int _b_ = 0; _b_ < {self.B}; ++_b_) {{"]
        if self._shares(self.kern) == "batch":
            head.insert(0, "#pragma omp for schedule(static)")
        if isinstance(dom, k.CableDomain):  # one worker per tree: barriers are no-ops
            head.append("    const gs_dim3 threadIdx = {0, 0, 0}, blockDim = {1, 1, 1};")
        return head

    def batch_tail(self) -> list[str]:
        return ["}"]

    def _sorted_pushes(self, kern: k.Kernel) -> list[k.PushEvent]:
        """Rings whose appends may come in any order (elements shared by threads)."""
        return pushed_rings(kern) if self._shares(kern) in ("flat", "events") else []

    def domain_head(self, kern: k.Kernel) -> list[str]:
        out = []
        for n, st in enumerate(self._sorted_pushes(kern)):
            out += [f"int _n0_{n}[{self.B}];  // event-list lengths before this kernel",
                    f"for (int _b = 0; _b < {self.B}; ++_b) _n0_{n}[_b] = "
                    f"{st.ring}_count[(int)(_step_ % {st.depth}) * {self.B} + _b];"]
        if out:  # every thread has read them before any appends
            out.append("#pragma omp barrier")
        return out

    def kernel_tail(self, kern: k.Kernel) -> list[str]:
        pushes = self._sorted_pushes(kern)
        if not pushes:
            return []
        out = ["#pragma omp single", "{"]
        for n, st in enumerate(pushes):
            out += [f"for (int _b = 0; _b < {self.B}; ++_b) {{  // appends in element order",
                    f"    const int _sl = (int)(_step_ % {st.depth});",
                    f"    int* _l = {st.ring}_list + ((long long)_sl * {self.B} + _b) * "
                    f"{st.size};",
                    f"    qsort(_l + _n0_{n}[_b], {st.ring}_count[_sl * {self.B} + _b] - "
                    f"_n0_{n}[_b], sizeof(int), gs_int_order);",
                    "}"]
        return out + ["}"]

    def call(self, kern: k.Kernel, args: str) -> list[str]:
        """The call of ``kern`` in the step loop: in a team of ``gs_threads`` where its
        loops are shared and its work reaches ``gs_min_work``."""
        if self._shares(kern) is None:
            return [f"k_{kern.name}({args});"]
        return [f"if (gs_threads > 1 && {self.work(kern)}LL >= gs_min_work) {{",
                "    #pragma omp parallel num_threads(gs_threads)",
                f"    k_{kern.name}({args});",
                "} else {",
                f"    k_{kern.name}({args});",
                "}"]

    # ------------------------------------------------------------------ accumulation
    def atomic_add(self, target: str, value: str) -> str:
        # every kernel that accumulates runs one batch entry's elements in order
        return f"{target} += {value};"

    def atomic_inc(self, target: str) -> str:
        return f"__atomic_fetch_add(&{target}, 1, __ATOMIC_RELAXED)"

    def atomic_or(self, target: str, value: str) -> str:
        return f"__atomic_fetch_or(&{target}, {value}, __ATOMIC_RELAXED);"

    # ------------------------------------------------------------------ the step loop
    def _arg(self, name: str) -> str:
        a = self.arrays[name]
        return f"({c_type(a.dtype, self.p)}*)A[{self._slot[name]}]"

    def epilogue(self) -> list[str]:
        step, origin = self._arg("__step"), f"(const long long*)A[{self._slot['__origin']}]"
        out = ["static void gs_advance(void* const* A) {",
               "    // one step done: clear the next slot of every ring, advance the counter",
               f"    long long* __step = {step};",
               "    const long long s = __step[0] + 1;",
               f"    const long long ks = {self.plan.kernel_step('s')};  // the next step"]
        for r, depth in self.plan.ring_depths:
            out.append(f"    {{ int* _c = {self._arg(f'{r}_count')}; "
                       f"for (int b = 0; b < {self.B}; ++b) _c[(((ks % {depth}) + {depth}) % "
                       f"{depth}) * {self.B} + b] = 0; }}")
        out += ["    __step[0] = s;", "}", "",
                "// Runs n_steps steps; the arrays in the plan's order (gs_table lists them).",
                'extern "C" int gs_run(void* const* A, long long n_steps, int threads, '
                "long long min_work) {",
                "    gs_threads = threads > 0 ? threads : 1;",
                "    gs_min_work = min_work;",
                "    for (long long _n = 0; _n < n_steps; ++_n) {"]
        for kern in self.plan.step_kernels:
            args = ", ".join([self._arg(n) for n in kernel_arrays(kern)] + [step, origin])
            out += ["        " + line for line in self.call(kern, args)]
        out += ["        gs_advance(A);", "    }", "    return 0;", "}", "",
                f'extern "C" int gs_table_size() {{ return {len(self.table)}; }}']
        return out


def structural_key(plan: k.Plan, source: str) -> str:
    """``source`` with its comments dropped and the plan's array and kernel names replaced
    by their positions: the same text for networks that differ only in object names (a
    Brian2 script that builds ``neurongroup_1``, ``neurongroup_2``, ... in a loop), so that
    they share one compiled library (``gs_run`` takes the arrays by position)."""
    names = {a.name: f"a{n}" for n, a in enumerate(plan.arrays)}
    names.update({f"k_{kern.name}": f"k{n}" for n, kern in enumerate(plan.step_kernels)})
    text = re.sub(r"//[^\n]*", "", source)
    return re.sub(r"[A-Za-z_][A-Za-z0-9_]*", lambda m: names.get(m.group(0), m.group(0)), text)


def cpp_source(plan: k.Plan) -> str:
    """The whole C++ source of a plan (deterministic)."""
    return CppTarget(plan).source()
