"""The C-family printer of the kernel IR: statement and body printing shared by targets.

GeNN's ``BackendSIMT`` is the model: one base prints every statement, every kernel body and
the per-domain index set-up; a target (:class:`~.codegen_cuda.CudaTarget`,
:class:`~.codegen_cpp.CppTarget`) answers only a few questions:

- how to loop over a domain's elements (:meth:`CFamilyPrinter.loop` for the kinds
  ``'grid'``, ``'block'``, ``'thread'``; :meth:`CFamilyPrinter.batch_head` for the batch
  entry of a per-batch domain; :meth:`CFamilyPrinter.domain_head` for the pragmas that
  open the domain);
- how to accumulate across elements (:meth:`atomic_add`, :meth:`atomic_inc`,
  :meth:`atomic_or`);
- what a kernel's signature and the module's preamble and step bookkeeping look like.

So the text of every kernel body (loads, arithmetic, stores, event appends, draws, monitor
records, cable stages) is the same on the GPU and on the CPU: every CPU test executes the
code the GPU will run.

The Philox counter index of a draw is the element's position in its domain, flattened
over the batch (:func:`~.kernel_ir.philox_index`): the same on every target.
"""

from __future__ import annotations

import sympy

from . import cable
from . import kernel_ir as k
from .exprprint import CudaExprPrinter

C_TYPES = {"float64": "double", "float32": "float", "int32": "int", "int64": "long long",
           "uint32": "unsigned int", "bool": "bool"}
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
    if any(isinstance(st, k.Draw) for st in walk(kern.body)):
        names["__seed"] = None
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
        if dom.source == "pre" and dom.dense:
            pass  # full rows: no connectivity arrays read
        elif dom.source == "pre":
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


def walk(stmts: tuple[k.KStmt, ...]):
    """Every statement of a body, nested ones included (depth first)."""
    for st in stmts:
        yield st
        if isinstance(st, k.If):
            yield from walk(st.body)
            yield from walk(st.orelse)


def pushed_rings(kern: k.Kernel) -> list[k.PushEvent]:
    """The event lists a kernel appends to (one entry per ring)."""
    seen: dict[str, k.PushEvent] = {}
    for st in walk(kern.body):
        if isinstance(st, k.PushEvent):
            seen.setdefault(st.ring, st)
    return list(seen.values())


def philox_index(dom: k.Domain) -> str:
    """:func:`~.kernel_ir.philox_index` as a C expression."""
    stride, local = k.philox_index(dom)
    return f"(unsigned int)({local})" if stride is None else (
        f"(unsigned int)(_b_ * {stride}LL + {local})")


class CFamilyPrinter:
    """Prints a :class:`~.kernel_ir.Plan` as one C-family source; targets add the hooks."""

    #: the target's name in comments and error messages
    target = "C"

    def __init__(self, plan: k.Plan) -> None:
        self.plan = plan
        self.p = plan.precision
        self.expr_printer = CudaExprPrinter(plan.precision, integer_symbols=INTEGER_LOCALS)
        self.arrays = {a.name: a for a in plan.arrays}
        self.B = plan.batch_size
        self.real = c_type("float", self.p)
        self.domain: k.Domain | None = None
        self.kern: k.Kernel | None = None
        self._printed: dict[str, list[str]] = {}

    # ------------------------------------------------------------------ target hooks
    def preamble(self) -> list[str]:
        raise NotImplementedError

    def signature(self, kern: k.Kernel, params: str) -> str:
        """The first line of a kernel's definition (without the opening brace)."""
        raise NotImplementedError

    def epilogue(self) -> list[str]:
        """What follows the kernels: the step bookkeeping and, on the CPU, the step loop."""
        raise NotImplementedError

    def loop(self, var: str, ctype: str, lo: str, hi: str, level: str) -> list[str]:
        """Head lines of a loop of ``var`` over ``[lo, hi)`` spread over the ``level``'s workers:
        ``'grid'`` (every thread), ``'block'`` (blocks), ``'thread'`` (a block's threads)."""
        raise NotImplementedError

    def batch_head(self, dom: k.Domain) -> list[str]:
        """Opens the per-batch-entry part of a per-batch domain (defines ``_b_``)."""
        raise NotImplementedError

    def batch_tail(self) -> list[str]:
        raise NotImplementedError

    def domain_head(self, kern: k.Kernel) -> list[str]:
        """Lines before a domain's outermost loop (the CPU's parallel pragmas)."""
        return []

    def kernel_tail(self, kern: k.Kernel) -> list[str]:
        """Lines after the domain's loops, still inside the kernel."""
        return []

    def atomic_add(self, target: str, value: str) -> str:
        """A statement: ``target += value`` where several elements may add to ``target``."""
        raise NotImplementedError

    def atomic_inc(self, target: str) -> str:
        """An int expression: ``target++`` (old value) where several elements may count."""
        raise NotImplementedError

    def atomic_or(self, target: str, value: str) -> str:
        raise NotImplementedError

    # ------------------------------------------------------------------ module
    def expr(self, e: sympy.Basic) -> str:
        return self.expr_printer.doprint(e)

    def source(self) -> str:
        lines = [f"// Generated by gpuspike ({self.target}) for network {self.plan.name!r} "
                 f"({self.p}, batch {self.B}). Deterministic: same network, same source."]
        lines += self.preamble()
        for kern in self.plan.step_kernels:
            lines += self.kernel(kern)
            lines.append("")
        lines += self.epilogue()
        return "\n".join(lines) + "\n"

    def params(self, names: list[str]) -> str:
        ps = []
        for n in names:
            a = self.arrays[n]
            ps.append(f"{c_type(a.dtype, self.p)}* __restrict__ {n}")
        ps.append("long long* __restrict__ __step")
        ps.append("const long long* __restrict__ __origin")
        return ", ".join(ps)

    # ------------------------------------------------------------------ kernels
    def kernel(self, kern: k.Kernel) -> list[str]:
        """The lines of one kernel (printed once per printer: the C++ target reads them
        for its source, its size estimate and its translation units)."""
        if kern.name not in self._printed:
            self._printed[kern.name] = self._print_kernel(kern)
        return list(self._printed[kern.name])

    def _print_kernel(self, kern: k.Kernel) -> list[str]:
        names = kernel_arrays(kern)
        out = [f"// {kern.comment} (phase {kern.phase})",
               self.signature(kern, self.params(names)) + " {",
               f"    const long long _step_ = {self.plan.kernel_step('__step[0]')};",
               "    const long long _origin_ = __origin[0];",
               f"    const double _t_ = (double)_step_ * {self.plan.dt!r};",
               "    (void)_t_; (void)_origin_;"]
        if kern.every > 1:
            out.append(f"    if (_step_ % {kern.every} != 0) return;  // slower clock")
        dom = kern.domain
        self.domain, self.kern = dom, kern
        self.rng_index = philox_index(dom)
        decls = [f"{c_type(dt, self.p)} {name} = 0;" for name, dt in kern.locals]
        out += ["    " + line for line in self.domain_head(kern)]
        printer = {
            k.ElementDomain: self.element_domain, k.EventDomain: self.event_domain,
            k.SynapseDomain: self.synapse_domain, k.PathwayDomain: self.pathway_domain,
            k.SpikeListDomain: self.spike_list_domain, k.SingleDomain: self.single_domain,
            k.CableDomain: self.cable_domain,
        }[type(dom)]
        out += printer(dom, kern, decls)
        out += ["    " + line for line in self.kernel_tail(kern)]
        out.append("}")
        return out

    def _flat(self, n: int, decls: list[str], body: tuple, setup: list[str]) -> list[str]:
        out = ["    " + line for line in self.loop("_x", "long long", "0", f"{n}LL", "grid")]
        out += ["        " + line for line in setup]
        out += ["        " + d for d in decls]
        out += self.block(body, 2)
        out.append("    }")
        return out

    def _split(self, n: int, local: str, ctype: str = "int") -> str:
        """``_b_`` and ``local`` from the flat index ``_x`` over (batch, ``n``); with one
        batch entry no division (it costs a multiply-shift per element)."""
        if self.B == 1:
            return f"const int _b_ = 0; const {ctype} {local} = ({ctype})_x;"
        return (f"const int _b_ = (int)(_x / {max(1, n)}LL); const {ctype} {local} = "
                f"({ctype})(_x - (long long)_b_ * {n}LL);")

    def element_domain(self, dom: k.ElementDomain, kern: k.Kernel, decls) -> list[str]:
        return self._flat(self.B * dom.size, decls, kern.body, [self._split(dom.size, "_i_")])

    def synapse_domain(self, dom: k.SynapseDomain, kern: k.Kernel, decls) -> list[str]:
        npad = dom.n_pre * dom.max_row
        return self._flat(self.B * npad, decls, kern.body, [
            self._split(npad, "_s_", "long long"),
            f"const int _i_ = (int)(_s_ / {max(1, dom.max_row)});",
            f"if (_s_ - (long long)_i_ * {dom.max_row} >= {dom.synapses}__rowlen[_i_]) "
            "continue;",
            f"const int _j_ = {dom.synapses}__cols[_s_];"])

    def event_domain(self, dom: k.EventDomain, kern: k.Kernel, decls) -> list[str]:
        B = self.B
        out = ["    " + line for line in self.batch_head(dom)]
        out += [f"    const int _slot_ = (int)(_step_ % {dom.depth});",
                f"    const int _cnt = {dom.ring}_count[_slot_ * {B} + _b_];",
                *("    " + line for line in self.loop("_p", "int", "0", "_cnt", "grid")),
                f"        const int _i_ = {dom.ring}_list[((long long)_slot_ * {B} + _b_) * "
                f"{dom.size} + _p];"]
        if dom.mult:
            out.append(f"        const int _mult_ = {dom.ring}_mult[((long long)_slot_ * {B} "
                       f"+ _b_) * {dom.size} + _i_];")
        out += ["        " + d for d in decls]
        out += self.block(kern.body, 2)
        out.append("    }")
        out += ["    " + line for line in self.batch_tail()]
        return out

    def spike_list_domain(self, dom: k.SpikeListDomain, kern: k.Kernel, decls) -> list[str]:
        st = f"_step_ % {dom.period_steps}" if dom.period_steps else "_step_"
        out = [f"    const long long _st = {st};",
               f"    if (_st < 0 || _st >= {dom.n_steps}) return;"]
        if dom.batched:  # a schedule per batch entry
            out += ["    " + line for line in self.batch_head(dom)]
            out.append(f"    const int _lo = {dom.group}__offsets[_st * {self.B} + _b_], "
                       f"_hi = {dom.group}__offsets[_st * {self.B} + _b_ + 1];")
        else:
            out.append(f"    const int _lo = {dom.group}__offsets[_st], "
                       f"_hi = {dom.group}__offsets[_st + 1];")
            out += ["    " + line for line in self.batch_head(dom)]
        out += [*("    " + line for line in self.loop("_p", "int", "_lo", "_hi", "thread")),
                f"        const int _i_ = {dom.group}__indices[_p];"]
        if dom.counts:
            out.append(f"        const int _mult_ = {dom.group}__counts[_p];")
        out += ["        " + d for d in decls]
        out += self.block(kern.body, 2)
        out.append("    }")
        out += ["    " + line for line in self.batch_tail()]
        return out

    def single_domain(self, dom: k.SingleDomain, kern: k.Kernel, decls) -> list[str]:
        out = ["    " + line for line in self.batch_head(dom)]
        out += ["    " + d for d in decls]
        out += self.block(kern.body, 1)
        out += ["    " + line for line in self.batch_tail()]
        return out

    def cable_domain(self, dom: k.CableDomain, kern: k.Kernel, decls) -> list[str]:
        if dom.stage == "sections":
            S = dom.sections
            return self._flat(self.B * S, [], kern.body, [self._split(S, "_sec_")])
        # the tree: one block per batch entry, its threads over the sections of a level
        out = ["    " + line for line in self.batch_head(dom)]
        out += self.block(kern.body, 1)
        out += ["    " + line for line in self.batch_tail()]
        return out

    def pathway_domain(self, dom: k.PathwayDomain, kern: k.Kernel, decls) -> list[str]:
        B = self.B
        n_src = dom.n_pre if dom.source == "pre" else dom.n_post
        syn = dom.synapses
        out = ["    " + line for line in self.batch_head(dom)]
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
                *(ind + line for line in self.loop("_p", "int", "0", "_cnt", "block")),
                f"{ind}    const int _e = {dom.ring}_list[((long long)_sl * {B} + _b_) * "
                f"{n_src} + _p];"]
        if dom.mult:  # the event's multiplicity (NEST's): accumulations are scaled by it
            out.append(f"{ind}    const int _mult_ = {dom.ring}_mult[((long long)_sl * {B} + "
                       f"_b_) * {n_src} + _e];")
        if dom.source == "pre" and dom.dense:  # full rows in post order
            out += [*(ind + "    " + line for line in self.loop("_k", "int", "0",
                                                                 str(dom.max_row), "thread")),
                    f"{ind}        const int _i_ = _e;",
                    f"{ind}        const long long _s_ = (long long)_e * {dom.max_row} + _k;",
                    f"{ind}        const int _j_ = _k;"]
        elif dom.source == "pre":
            out += [f"{ind}    const int _rl = {syn}__rowlen[_e];",
                    *(ind + "    " + line for line in self.loop("_k", "int", "0", "_rl", "thread")),
                    f"{ind}        const int _i_ = _e;",
                    f"{ind}        const long long _s_ = (long long)_e * {dom.max_row} + _k;",
                    f"{ind}        const int _j_ = {syn}__cols[_s_];"]
        else:
            out += [f"{ind}    const int _rl = {syn}__collen[_e];",
                    *(ind + "    " + line for line in self.loop("_k", "int", "0", "_rl", "thread")),
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
        out += ["    " + line for line in self.batch_tail()]
        return out

    # ------------------------------------------------------------------ statements
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
            out += [ind + line for line in self.statement(st, depth)]
        return out

    def statement(self, st: k.KStmt, depth: int) -> list[str]:
        """The lines of one statement (indented by the caller)."""
        return getattr(self, f"stmt_{type(st).__name__}")(st, depth)

    def stmt_Load(self, st: k.Load, depth: int) -> list[str]:
        return [f"{st.local} = {st.array}[{self.index(st.array, st.index)}];"]

    def stmt_Let(self, st: k.Let, depth: int) -> list[str]:
        head = [f"// {st.comment}"] if st.comment else []
        return head + [f"{st.local} = {self.expr(st.expr)};"]

    def stmt_Store(self, st: k.Store, depth: int) -> list[str]:
        head = [f"// {st.comment}"] if st.comment else []
        ct = c_type(self.arrays[st.array].dtype, self.p)
        return head + [f"{st.array}[{self.index(st.array, st.index)}] = "
                       f"({ct})({self.expr(st.expr)});"]

    def stmt_AtomicAdd(self, st: k.AtomicAdd, depth: int) -> list[str]:
        head = [f"// {st.comment}"] if st.comment else []
        ct = c_type(self.arrays[st.array].dtype, self.p)
        return head + [self.atomic_add(f"{st.array}[{self.index(st.array, st.index)}]",
                                       f"({ct})({self.expr(st.expr)})")]

    def stmt_If(self, st: k.If, depth: int) -> list[str]:
        out = [f"if ({self.expr(st.condition)}) {{"]
        out += self.block(st.body, 1)
        if st.orelse:
            out.append("} else {")
            out += self.block(st.orelse, 1)
        out.append("}")
        return out

    def stmt_PushEvent(self, st: k.PushEvent, depth: int) -> list[str]:
        # TODO(perf): issue 2 follow-up: warp-aggregated or block-compacted appends
        # (one atomic per block as GeNN does); measure on a GPU first.
        out = ["{  // emit: append to this step's event list",
               f"    const int _sl = (int)(_step_ % {st.depth});",
               f"    const int _pos = {self.atomic_inc(f'{st.ring}_count[_sl * {self.B} + _b_]')};",
               f"    {st.ring}_list[((long long)_sl * {self.B} + _b_) * {st.size} "
               f"+ _pos] = _i_;"]
        if st.multiplicity is not None:
            out.append(f"    {st.ring}_mult[((long long)_sl * {self.B} + _b_) * "
                       f"{st.size} + _i_] = (int)({self.expr(st.multiplicity)});")
        out.append("}")
        return out

    def stmt_Draw(self, st: k.Draw, depth: int) -> list[str]:
        head = (f"(unsigned long long)__seed[0], {st.stream}u, (unsigned long long)_step_, "
                f"{st.draw}u, {self.rng_index}")
        if st.kind in ("uniform", "normal"):
            bits = "f64" if self.p == "float64" else "f32"
            return [f"{st.local} = _rng_{st.kind}_{bits}({head});"]
        params = ", ".join(f"(double)({self.expr(p)})" for p in st.params)
        return [f"{st.local} = _rng_{st.kind}({head}, {params});"]

    def stmt_LoadCount(self, st: k.LoadCount, depth: int) -> list[str]:
        return [f"{st.local} = {st.ring}_count[(int)(_step_ % {st.depth}) * {self.B} + _b_];"]

    def stmt_RecordBit(self, st: k.RecordBit, depth: int) -> list[str]:
        buf = self.arrays[st.buffer]
        return [self.atomic_or(f"{st.buffer}[(long long)_b_ * {buf.size}LL + "
                               f"(_step_ - _origin_) * {st.words} + (_i_ >> 5)]",
                               "1u << (_i_ & 31)")]

    def stmt_RecordValue(self, st: k.RecordValue, depth: int) -> list[str]:
        buf = self.arrays[st.buffer]
        ct = c_type(buf.dtype, self.p)
        return [f"if (_step_ % {st.every} == 0) {{",
                f"    const long long _row = (_step_ - _origin_) / {st.every};",
                f"    {st.buffer}[(long long)_b_ * {buf.size}LL + _row * {st.width} "
                f"+ ({self.expr(st.column)})] = ({ct})({self.expr(st.expr)});",
                "}"]

    def stmt_RecordEvent(self, st: k.RecordEvent, depth: int) -> list[str]:
        buf = self.arrays[st.buffer]
        cnt = st.buffer.replace("__events", "__count")
        width = 2 + len(st.values)
        out = ["{",
               f"    const int _r = {self.atomic_inc(f'{cnt}[_b_]')};",
               f"    if (_r < {st.capacity}) {{",
               f"        double* _ev = {st.buffer} + (long long)_b_ * "
               f"{buf.size}LL + (long long)_r * {width};",
               "        _ev[0] = (double)_step_; _ev[1] = (double)_i_;"]
        for c, v in enumerate(st.values):
            out.append(f"        _ev[{2 + c}] = (double)({self.expr(v)});")
        out += ["    }", "}"]
        return out

    def stmt_CableSolve(self, st: k.CableSolve, depth: int) -> list[str]:
        return cable.cuda_stage(self.domain, "")
