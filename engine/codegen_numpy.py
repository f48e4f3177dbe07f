"""Vectorised NumPy code generation from the kernel IR (the CPU twin of the CUDA printer).

Each kernel becomes one Python function ``k_<name>(A, step)`` operating on whole arrays:
the domain's elements are index vectors (``_b_``, ``_i_``, ``_j_``, ``_s_``), loads are
gathers, stores are scatters, conditionals become masks (``np.where``) and atomic
accumulation becomes ``np.add.at`` / ``np.bincount`` (the same sum, in another order).
The module source is deterministic and can be read with :attr:`NumpyProgram.source`.

The generated code is executed with ``exec`` on source that *we* print from SymPy trees;
no user string is ever evaluated.
"""

from __future__ import annotations

import re

import numpy as np
import sympy

from . import cable, rng, rng_discrete
from . import kernel_ir as k
from .exprprint import NUMPY_NAMESPACE, NumpyExprPrinter
from .functions import numpy_namespace
from .program_base import Program

NP_DTYPES = {"float64": "np.float64", "float32": "np.float32", "int32": "np.int32",
             "int64": "np.int64", "uint32": "np.uint32", "bool": "np.bool_"}


def numpy_dtype(dtype: str, precision: str) -> np.dtype:
    return np.dtype(precision if dtype == "float" else ("bool" if dtype == "bool" else dtype))


# ----------------------------------------------------------------------------- runtime helpers
def _accumulate(flat: np.ndarray, idx: np.ndarray, val) -> None:
    """``flat[idx] += val`` with repeated indices summed (np.add.at semantics); ``idx`` and
    ``val`` broadcast together (a 2-D grid of events and posts included)."""
    val = np.asarray(val, dtype=flat.dtype)
    shape = np.broadcast_shapes(np.shape(idx), val.shape)
    idx = np.broadcast_to(np.asarray(idx, dtype=np.int64), shape).reshape(-1)
    if idx.size == 0:
        return
    val = np.broadcast_to(val, shape).reshape(-1)
    if idx.size * 8 > flat.size and flat.dtype.kind == "f":
        flat += np.bincount(idx, weights=val, minlength=flat.size).astype(flat.dtype)
    else:
        np.add.at(flat, idx, val)


def _push_elements(count: np.ndarray, lst: np.ndarray, slot: int, B: int, n: int,
                   mask) -> None:
    """Event lists of step ``slot`` from a (B, n) mask: element order within a batch."""
    if B == 1:  # the common simulation case: no batch bookkeeping
        idx = np.flatnonzero(np.broadcast_to(mask, (1, n)))
        count[slot] = idx.size
        lst[slot * n:slot * n + idx.size] = idx
        return
    m = np.broadcast_to(np.asarray(mask, dtype=bool), (B, n))
    cnt = m.sum(axis=1)
    count[slot * B:(slot + 1) * B] = cnt
    bb, ii = np.nonzero(m)
    if bb.size:
        pos = np.cumsum(m, axis=1)[bb, ii] - 1
        lst[(slot * B + bb) * n + pos] = ii


def _push_pairs(count: np.ndarray, lst: np.ndarray, slot: int, B: int, n: int,
                bb: np.ndarray, ii: np.ndarray) -> None:
    """Append (batch, element) pairs, sorted by batch, to the event lists of ``slot``."""
    order = np.argsort(bb, kind="stable")
    bb, ii = bb[order], ii[order]
    cnt = np.bincount(bb, minlength=B)
    start = count[slot * B:(slot + 1) * B].astype(np.int64)
    pos = start[bb] + np.arange(bb.size) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    if bb.size and pos.max() >= n:
        from gpuspike.bridge.errors import RingBufferOverflow
        raise RingBufferOverflow(f"more than {n} events in one step for a group of {n} "
                                 "(duplicate spike times for one neuron in a step?)")
    lst[(slot * B + bb) * n + pos] = ii
    count[slot * B:(slot + 1) * B] = start + cnt


def _store_mult(mult: np.ndarray, slot: int, B: int, n: int, mask, value) -> None:
    """Multiplicities of the elements of a (B, n) mask pushed in step ``slot``."""
    view = mult[slot * B * n:(slot + 1) * B * n].reshape(B, n)
    m = np.broadcast_to(np.asarray(mask, dtype=bool), (B, n))
    view[m] = np.broadcast_to(value, (B, n))[m]


def _events(count: np.ndarray, lst: np.ndarray, slot: int, B: int, n: int):
    """(batch, element) vectors of the event lists of ``slot``."""
    if B == 1:
        c = int(count[slot])
        return _zeros(c), lst[slot * n:slot * n + c].astype(np.int64)
    cnt = count[slot * B:(slot + 1) * B].astype(np.int64)
    bb = np.repeat(np.arange(B), cnt)
    p = np.arange(bb.size) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    return bb, lst[(slot * B + bb) * n + p].astype(np.int64)


_ZEROS = np.zeros(1 << 16, dtype=np.int64)
_ZEROS.setflags(write=False)
_K = np.arange(1 << 16, dtype=np.int64)
_K.setflags(write=False)


def _zeros(n: int) -> np.ndarray:
    """A read-only int64 zero vector (the batch index of batch-1 pair domains)."""
    return _ZEROS[:n] if n <= _ZEROS.size else np.zeros(n, np.int64)


def _record_bits(flat: np.ndarray, words: np.ndarray, bits: np.ndarray) -> None:
    """``flat[words] |= bits`` where several bits may share a word. Each element appears
    once per step, so the bits of one word are distinct and their sum is their OR."""
    if words.size == 0:
        return
    if words.size <= 16:  # a few events: a plain loop beats the vector set-up
        for w, b in zip(words.tolist(), bits.tolist()):
            flat[w] |= b
        return
    if words.size > 1 and np.any(words[1:] < words[:-1]):
        order = np.argsort(words, kind="stable")
        words, bits = words[order], bits[order]
    first = np.flatnonzero(np.diff(words, prepend=-1))
    flat[words[first]] |= np.add.reduceat(bits.astype(np.uint64), first).astype(np.uint32)


def _delay_index(A: dict, cache: dict, delay: str, length: str, width: int, n_src: int,
                 n_delays: int, remap: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The synapses of every (firing element, delay) of a heterogeneous-delay pathway:
    ``perm[start[e * n_delays + d]:start[e * n_delays + d + 1]]`` are the padded synapse
    slots of element ``e`` (its row, or its column-map entries through ``remap``) with
    delay ``d``, in row order. Built once per delay array (``cache``; writing the delays
    drops it) so that delivery costs what the events reach, not every delay's scan."""
    key = (delay, length)
    hit = cache.get(key)
    if hit is not None:
        return hit
    ln = A[length].astype(np.int64)
    owner = np.repeat(np.arange(n_src), ln)
    pos = owner * width + np.arange(owner.size) - np.repeat(np.cumsum(ln) - ln, ln)
    slots = pos if remap is None else A[remap][pos].astype(np.int64)
    d = A[delay][slots].astype(np.int64)
    ok = (d >= 0) & (d < n_delays)  # other delays never match an event's age
    group = owner[ok] * n_delays + d[ok]
    order = np.argsort(group, kind="stable")
    out = (slots[ok][order], np.searchsorted(group[order], np.arange(n_src * n_delays + 1)))
    cache[key] = out
    return out


def _expand(bsp: np.ndarray, owner: np.ndarray, length: np.ndarray, width: int):
    """Expand (batch, owner) pairs into one entry per row position ``k < length[owner]``."""
    rl = length[owner].astype(np.int64)
    bb = np.repeat(bsp, rl)
    oo = np.repeat(owner, rl)
    kk = np.arange(bb.size) - np.repeat(np.cumsum(rl) - rl, rl)
    return bb, oo, oo * width + kk


def _int(x):
    return np.asarray(x).astype(np.int64)


RUNTIME_NAMESPACE = {
    **NUMPY_NAMESPACE,
    "np": np,
    "_accumulate": _accumulate,
    "_push_elements": _push_elements,
    "_push_pairs": _push_pairs,
    "_events": _events,
    "_store_mult": _store_mult,
    "_expand": _expand,
    "_delay_index": _delay_index,
    "_record_bits": _record_bits,
    "_zeros": _zeros,
    "_K": _K,
    "_int": _int,
    "_uniform": rng.uniform,
    "_normal": rng.normal,
    "_binomial": rng_discrete.binomial,
    "_poisson": rng_discrete.poisson,
    "_cable_sections": cable.numpy_sections,
    "_cable_tree": cable.numpy_tree,
}


# ----------------------------------------------------------------------------- printer
class NumpyKernelPrinter:
    """Prints a :class:`~.kernel_ir.Plan` as a Python module of vectorised kernels."""

    def __init__(self, plan: k.Plan) -> None:
        self.plan = plan
        self.expr_printer = NumpyExprPrinter()
        self.arrays = {a.name: a for a in plan.arrays}
        self.B = plan.batch_size
        self.fdtype = NP_DTYPES[plan.precision]
        self.delay_arrays = {kern.domain.delay_array for kern in plan.step_kernels
                             if isinstance(kern.domain, k.PathwayDomain)
                             and kern.domain.delay_array}

    def expr(self, e: sympy.Basic) -> str:
        return self.expr_printer.doprint(e)

    def source(self) -> str:
        lines = [f'"""Generated NumPy kernels for network {self.plan.name!r} '
                 f'({self.plan.precision}, batch {self.B})."""', ""]
        for kern in self.plan.step_kernels:
            lines += self.kernel(kern)
            lines.append("")
        lines.append("STEP_KERNELS = [" + ", ".join(f"k_{kern.name}"
                                                   for kern in self.plan.step_kernels) + "]")
        return "\n".join(lines) + "\n"

    # -- kernels
    def kernel(self, kern: k.Kernel) -> list[str]:
        out = [f"def k_{kern.name}(A, _step_):",
               f'    """{kern.comment or kern.name} (phase {kern.phase})."""',
               f"    _t_ = _step_ * {self.plan.dt!r}",
               "    _origin_ = int(A['__origin'][0])"]
        if kern.every > 1:
            out += [f"    if _step_ % {kern.every}:", "        return"]
        dom = kern.domain
        B = self.B
        self.n_masks = 0
        # every local starts defined (as in C), so masked updates can use np.where
        out += [f"    {name} = 0" for name, _dtype in kern.locals]
        self.element_mode = isinstance(dom, k.ElementDomain)
        self.domain = dom
        stride, local = k.philox_index(dom)
        self.rng_index = local if stride is None else f"(_b_ * {stride} + {local})"
        if isinstance(dom, k.ElementDomain):
            out += [f"    _b_ = np.arange({B})[:, None]", f"    _i_ = np.arange({dom.size})",
                    f"    _n_ = {dom.size}"]
            body = self.block(kern.body, 1, None)
        elif isinstance(dom, k.EventDomain):
            out += [f"    _slot_ = _step_ % {dom.depth}",
                    f"    _b_, _i_ = _events(A['{dom.ring}_count'], A['{dom.ring}_list'], "
                    f"_slot_, {B}, {dom.size})",
                    "    if _b_.size == 0:", "        return"]
            if dom.mult:
                out.append(f"    _mult_ = A['{dom.ring}_mult'][(_slot_ * {B} + _b_) * "
                           f"{dom.size} + _i_]")
            body = self.block(kern.body, 1, None)
        elif isinstance(dom, k.SynapseDomain):
            out += [f"    _valid = A['{dom.synapses}__valid']",
                    f"    _b_ = np.repeat(np.arange({B}), _valid.size)",
                    f"    _s_ = np.tile(_valid, {B})",
                    f"    _i_ = _s_ // {max(1, dom.max_row)}",
                    f"    _j_ = A['{dom.synapses}__cols'][_s_].astype(np.int64)",
                    "    if _s_.size == 0:", "        return"]
            body = self.block(kern.body, 1, None)
        elif isinstance(dom, k.PathwayDomain):
            body = self.block(kern.body, 1, None)
            used = set(re.findall(r"\b(_[ijsb]_)\b", "\n".join(body)))
            prologue = [line for line in self.pathway_prologue(dom)
                        if not line.startswith("    #unless ") or line.split()[1] in used]
            out += prologue
            out = [line.replace("    #unless _s_ ", "    ").replace("    #unless _i_ ", "    ")
                   .replace("    #unless _b_ ", "    ") for line in out]
        elif isinstance(dom, k.SpikeListDomain) and dom.batched:
            out += ["    _st = _step_",
                    f"    if _st < 0 or _st >= {dom.n_steps}:", "        return",
                    f"    _off = A['{dom.group}__offsets'][_st * {B}:_st * {B} + {B + 1}]"
                    ".astype(np.int64)",
                    f"    _ids = A['{dom.group}__indices'][_off[0]:_off[-1]].astype(np.int64)",
                    "    if _ids.size == 0:", "        return",
                    f"    _b_ = np.repeat(np.arange({B}), np.diff(_off))",
                    "    _i_ = _ids"]
            if dom.counts:
                out.append(f"    _mult_ = A['{dom.group}__counts'][_off[0]:_off[-1]]")
            body = self.block(kern.body, 1, None)
        elif isinstance(dom, k.SpikeListDomain):
            st = f"_step_ % {dom.period_steps}" if dom.period_steps else "_step_"
            out += [f"    _st = {st}",
                    f"    if _st >= {dom.n_steps}:", "        return",
                    f"    _off = A['{dom.group}__offsets']",
                    f"    _ids = A['{dom.group}__indices'][_off[_st]:_off[_st + 1]]"
                    ".astype(np.int64)",
                    "    if _ids.size == 0:", "        return",
                    f"    _b_ = np.repeat(np.arange({B}), _ids.size)",
                    f"    _i_ = np.tile(_ids, {B})"]
            if dom.counts:
                out.append(f"    _mult_ = np.tile(A['{dom.group}__counts'][_off[_st]:"
                           f"_off[_st + 1]], {B})")
            body = self.block(kern.body, 1, None)
        elif isinstance(dom, k.SingleDomain):
            out += [f"    _b_ = np.arange({B})"]
            body = self.block(kern.body, 1, None)
        elif isinstance(dom, k.CableDomain):  # whole arrays: the stage is one call
            body = self.block(kern.body, 1, None)
        else:  # pragma: no cover
            raise TypeError(dom)
        return out + body

    def pathway_prologue(self, dom: k.PathwayDomain) -> list[str]:
        B, n_src = self.B, dom.n_pre if dom.source == "pre" else dom.n_post
        ring = dom.ring
        syn = dom.synapses
        out = []
        if dom.dense and dom.source == "pre" and dom.delay_array is None:
            # full rows in post order: (event, post) as a 2-D grid, no row expansion
            K = f"_K[:{dom.max_row}]" if dom.max_row <= 1 << 16 else f"np.arange({dom.max_row})"
            out += [f"    _sl = (_step_ - {dom.delay_steps}) % {dom.depth}",
                    f"    _bsp, _isp = _events(A['{ring}_count'], A['{ring}_list'], _sl, {B}, "
                    f"{n_src})"]
            if dom.mult:
                out.append(f"    _mev = A['{ring}_mult'][(_sl * {B} + _bsp) * {n_src} + _isp]")
            out += ["    if _bsp.size == 0:", "        return",
                    "    _b_ = _bsp[:, None]", "    _i_ = _isp[:, None]",
                    f"    _j_ = {K}[None, :]",
                    f"    #unless _s_ _s_ = _isp[:, None] * {dom.max_row} + _j_"]
            if dom.mult:
                out.append("    _mult_ = _mev[:, None]")
            return out
        if B == 1 and dom.source == "pre" and dom.delay_array is None:
            # the common simulation case: gather the firing rows of the padded matrix;
            # indices the body does not use are not computed ("#unless x" lines)
            K = f"_K[:{dom.max_row}]" if dom.max_row <= 1 << 16 else f"np.arange({dom.max_row})"
            return [f"    _sl = (_step_ - {dom.delay_steps}) % {dom.depth}",
                    f"    _c = int(A['{ring}_count'][_sl])",
                    "    if _c == 0:", "        return",
                    f"    _isp = A['{ring}_list'][_sl * {n_src}:_sl * {n_src} + _c]",
                    f"    _blk = A['{syn}__cols'].reshape({dom.n_pre}, {dom.max_row})[_isp]",
                    f"    _ok = {K} < A['{syn}__rowlen'][_isp][:, None]",
                    "    _j_ = _blk[_ok]",
                    "    if _j_.size == 0:", "        return",
                    f"    #unless _s_ _s_ = (_isp[:, None] * {dom.max_row} + {K})[_ok]",
                    "    #unless _i_ _i_ = np.repeat(_isp, _ok.sum(axis=1))",
                    "    #unless _b_ _b_ = _zeros(_j_.size)"] + (
                [f"    _mult_ = np.repeat(A['{ring}_mult'][_sl * {n_src} + _isp], "
                 "_ok.sum(axis=1))"] if dom.mult else [])
        if dom.delay_array is not None:
            return self.heterogeneous_prologue(dom)
        out += [f"    _sl = (_step_ - {dom.delay_steps}) % {dom.depth}",
                f"    _bsp, _isp = _events(A['{ring}_count'], A['{ring}_list'], _sl, {B}, "
                f"{n_src})"]
        if dom.mult:
            out.append(f"    _mev = A['{ring}_mult'][(_sl * {B} + _bsp) * {n_src} + _isp]")
        out += ["    if _bsp.size == 0:", "        return"]
        if dom.source == "pre":
            out += [f"    _b_, _i_, _s_ = _expand(_bsp, _isp, A['{syn}__rowlen'], {dom.max_row})",
                    f"    _j_ = A['{syn}__cols'][_s_].astype(np.int64)"]
        else:
            out += [f"    _b_, _j_, _c = _expand(_bsp, _isp, A['{syn}__collen'], {dom.max_col})",
                    f"    _s_ = A['{syn}__remap'][_c].astype(np.int64)",
                    f"    _i_ = _s_ // {max(1, dom.max_row)}"]
        if dom.mult:
            length = "rowlen" if dom.source == "pre" else "collen"
            out.append(f"    _mult_ = np.repeat(_mev, A['{syn}__{length}'][_isp].astype(np.int64))")
        out += ["    if _s_.size == 0:", "        return"]
        return out

    def heterogeneous_prologue(self, dom: k.PathwayDomain) -> list[str]:
        """Events of every delay slot at once, each expanded only over its synapses with
        the event's age as delay (:func:`_delay_index`): the same (batch, synapse) entries
        in the same order as scanning every delay, so sums are bit for bit the same."""
        B, n_src = self.B, dom.n_pre if dom.source == "pre" else dom.n_post
        ring, syn, n_d = dom.ring, dom.synapses, dom.max_delay + 1
        pre = dom.source == "pre"
        ages = f"_K[:{n_d}]" if n_d <= 1 << 16 else f"np.arange({n_d})"
        counts = (f"A['{ring}_count'][_dl]" if B == 1 else
                  f"A['{ring}_count'][(_dl[:, None] * {B} + np.arange({B})).ravel()]")
        out = [f"    _dl = (_step_ - {ages}) % {dom.depth}",
               f"    _c = {counts}.astype(np.int64)",
               "    _n_ = int(_c.sum())", "    if _n_ == 0:", "        return",
               "    _rep = np.repeat(np.arange(_c.size), _c)",
               "    _p = np.arange(_n_) - np.repeat(np.cumsum(_c) - _c, _c)"]
        if B == 1:
            out += ["    _age, _bsp = _rep, _zeros(_n_)"]
        else:
            out += [f"    _age, _bsp = _rep // {B}, _rep % {B}"]
        out += [f"    _ix = (_dl[_age] * {B} + _bsp) * {n_src} + _p",
                f"    _isp = A['{ring}_list'][_ix].astype(np.int64)",
                f"    _perm, _st = _delay_index(A, _DCACHE, '{dom.delay_array}', "
                f"'{syn}__{'rowlen' if pre else 'collen'}', "
                f"{dom.max_row if pre else dom.max_col}, {n_src}, {n_d}, "
                f"{None if pre else repr(syn + '__remap')})",
                f"    _lo = _st[_isp * {n_d} + _age]",
                f"    _rl = _st[_isp * {n_d} + _age + 1] - _lo",
                "    _ev = np.repeat(np.arange(_n_), _rl)",
                "    _s_ = _perm[np.repeat(_lo - np.cumsum(_rl) + _rl, _rl) + np.arange(_ev.size)]",
                "    _b_ = _bsp[_ev]"]
        if pre:
            out += ["    _i_ = _isp[_ev]", f"    _j_ = A['{syn}__cols'][_s_].astype(np.int64)"]
        else:
            out += ["    _j_ = _isp[_ev]", f"    _i_ = _s_ // {max(1, dom.max_row)}"]
        if dom.mult:
            out.append(f"    _mult_ = A['{ring}_mult'][(_dl[_age] * {B} + _bsp) * {n_src} "
                       "+ _isp][_ev]")
        return out + ["    if _s_.size == 0:", "        return"]

    # -- statements
    def whole_array(self, array: str, index: k.Index) -> bool:
        """Element kernels over a whole array use it directly (views, no gathers); over a
        part of it (a range, a shared value) they index like the other domains."""
        return (self.element_mode and isinstance(index, str) and index == "elem"
                and self.arrays[array].size == self.domain.size)

    def index(self, array: str, index: k.Index) -> str:
        a = self.arrays[array]
        if isinstance(index, str):
            base = k.INDEX_LOCALS[index]
        else:
            base = f"_int({self.expr(index)})"
        return f"_b_ * {a.size} + {base}" if a.batched and self.B > 1 else base

    def block(self, stmts, depth: int, mask: str | None) -> list[str]:
        ind = "    " * depth
        out: list[str] = []
        for st in stmts:
            if isinstance(st, k.Load):
                a = self.arrays[st.array]
                if self.whole_array(st.array, st.index):
                    src = f"A['{st.array}']"
                else:
                    src = f"A['{st.array}'].reshape(-1)[{self.index(st.array, st.index)}]"
                del a
                out.append(f"{ind}{st.local} = {src}")
            elif isinstance(st, k.Let):
                if st.comment:
                    out.append(f"{ind}# {st.comment}")
                val = self.expr(st.expr)
                if mask is None:
                    out.append(f"{ind}{st.local} = {val}")
                else:
                    out.append(f"{ind}{st.local} = np.where({mask}, {val}, {st.local})")
            elif isinstance(st, k.Store):
                val = self.expr(st.expr)
                if self.whole_array(st.array, st.index):
                    a = self.arrays[st.array]
                    if mask is not None:  # a conditional store keeps the other elements
                        val = f"np.where({mask}, {val}, A['{st.array}'])"
                    if a.batched:
                        out.append(f"{ind}A['{st.array}'][...] = {val}")
                    else:
                        out.append(f"{ind}A['{st.array}'][...] = "
                                   f"np.broadcast_to({val}, ({self.B}, {a.size}))[0]")
                else:
                    idx = self.index(st.array, st.index)
                    rhs = val if mask is None else f"np.where({mask}, {val}, A['{st.array}']"\
                        f".reshape(-1)[{idx}])"
                    out.append(f"{ind}_ix = {idx}")
                    out.append(f"{ind}A['{st.array}'].reshape(-1)[_ix] = {rhs}")
                if st.array in self.delay_arrays:  # new delays: rebuild the delay index
                    out.append(f"{ind}_DCACHE.clear()")
            elif isinstance(st, k.AtomicAdd):
                if st.comment:
                    out.append(f"{ind}# {st.comment}")
                idx = self.index(st.array, st.index)
                val = self.expr(st.expr)
                out.append(f"{ind}_ix = {idx}")
                if mask is None:
                    out.append(f"{ind}_accumulate(A['{st.array}'].reshape(-1), _ix, {val})")
                else:
                    # a shared target (a scalar index) under a per-element condition:
                    # every element that meets it adds once
                    out.append(f"{ind}_mk = np.broadcast_to({mask}, np.broadcast_shapes("
                               f"np.shape(_ix), np.shape({mask})))")
                    out.append(f"{ind}_ix = np.broadcast_to(_ix, _mk.shape)")
                    out.append(f"{ind}_v = np.broadcast_to({val}, _mk.shape)")
                    out.append(f"{ind}_accumulate(A['{st.array}'].reshape(-1), _ix[_mk], "
                               f"_v[_mk])")
            elif isinstance(st, k.If):
                cond = self.expr(st.condition)
                self.n_masks += 1
                m = f"_m{self.n_masks}"
                out.append(f"{ind}{m} = {cond}" if mask is None
                           else f"{ind}{m} = np.logical_and({mask}, {cond})")
                out += self.block(st.body, depth, m)
                if st.orelse:
                    m2 = f"{m}e"
                    out.append(f"{ind}{m2} = np.logical_not({cond})" if mask is None else
                               f"{ind}{m2} = np.logical_and({mask}, np.logical_not({cond}))")
                    out += self.block(st.orelse, depth, m2)
            elif isinstance(st, k.PushEvent):
                cnt, lst = f"A['{st.ring}_count']", f"A['{st.ring}_list']"
                slot = f"_step_ % {st.depth}"
                mult = None if st.multiplicity is None else self.expr(st.multiplicity)
                if self.element_mode:
                    m = "True" if mask is None else mask
                    out.append(f"{ind}_push_elements({cnt}, {lst}, {slot}, {self.B}, "
                               f"{st.size}, {m})")
                    if mult is not None:
                        out.append(f"{ind}_store_mult(A['{st.ring}_mult'], {slot}, {self.B}, "
                                   f"{st.size}, {m}, {mult})")
                else:
                    sel = "" if mask is None else f"[np.broadcast_to({mask}, _b_.shape)]"
                    out.append(f"{ind}_push_pairs({cnt}, {lst}, {slot}, {self.B}, {st.size}, "
                               f"_b_{sel}, _i_{sel})")
                    if mult is not None:
                        out.append(f"{ind}A['{st.ring}_mult'][({slot} * {self.B} + _b_{sel}) * "
                                   f"{st.size} + _i_{sel}] = "
                                   f"np.broadcast_to({mult}, _b_.shape){sel}")
            elif isinstance(st, k.Draw):
                index = f"np.asarray({self.rng_index}, dtype=np.uint32)"
                head = f"np, {self.plan.seed}, {st.stream}, _step_, {st.draw}, {index}"
                if st.kind in ("uniform", "normal"):
                    fn = "_uniform" if st.kind == "uniform" else "_normal"
                    out.append(f"{ind}{st.local} = {fn}({head}, {self.fdtype})")
                else:
                    params = ", ".join(self.expr(p) for p in st.params)
                    out.append(f"{ind}{st.local} = _{st.kind}({head}, {params})")
            elif isinstance(st, k.LoadCount):
                out.append(f"{ind}{st.local} = A['{st.ring}_count']"
                           f"[(_step_ % {st.depth}) * {self.B} + _b_]")
            elif isinstance(st, k.RecordBit):
                buf = self.arrays[st.buffer]
                m = "" if mask is None else f"[np.broadcast_to({mask}, _b_.shape)]"
                out.append(f"{ind}_w = (_b_ * {buf.size} + (_step_ - _origin_) * {st.words} "
                           f"+ _i_ // 32){m}")
                out.append(f"{ind}_record_bits(A['{st.buffer}'].reshape(-1), _w, "
                           f"np.left_shift(np.uint32(1), (_i_ % 32){m}.astype(np.uint32)))")
            elif isinstance(st, k.RecordValue):
                buf = self.arrays[st.buffer]
                col = self.expr(st.column)
                out.append(f"{ind}if _step_ % {st.every} == 0:")
                out.append(f"{ind}    _row = (_step_ - _origin_) // {st.every}")
                out.append(f"{ind}    _ix = _b_ * {buf.size} + _row * {st.width} + {col}")
                out.append(f"{ind}    A['{st.buffer}'].reshape(-1)[_ix] = {self.expr(st.expr)}")
            elif isinstance(st, k.RecordEvent):
                buf = self.arrays[st.buffer]
                width = 2 + len(st.values)
                cnt = st.buffer.replace("__events", "__count")
                sel = "" if mask is None else f"[np.broadcast_to({mask}, _b_.shape)]"
                out.append(f"{ind}_rb, _ri = _b_{sel}, _i_{sel}")
                out.append(f"{ind}_rc = np.bincount(_rb, minlength={self.B})")
                out.append(f"{ind}_rp = A['{cnt}'][_rb] + np.arange(_rb.size) - "
                           f"np.repeat(np.cumsum(_rc) - _rc, _rc)")
                out.append(f"{ind}A['{cnt}'] += _rc.astype(A['{cnt}'].dtype)")
                out.append(f"{ind}_ok = _rp < {st.capacity}")
                out.append(f"{ind}_base = _rb * {buf.size} + _rp * {width}")
                out.append(f"{ind}_E = A['{st.buffer}'].reshape(-1)")
                out.append(f"{ind}_E[_base[_ok]] = _step_")
                out.append(f"{ind}_E[_base[_ok] + 1] = _ri[_ok]")
                for c, v in enumerate(st.values):
                    out.append(f"{ind}_E[_base[_ok] + {2 + c}] = "
                               f"np.broadcast_to({self.expr(v)}, _rb.shape)[_ok]")
            elif isinstance(st, k.CableSolve):
                out.append(f"{ind}_cable_{st.stage}(A, {st.cable!r}, {self.B})")
            else:  # pragma: no cover
                raise TypeError(st)
        if not out:
            out.append(f"{ind}pass")
        return out


class NumpyProgram(Program):
    """A compiled module of NumPy kernels for one plan; ``run(n)`` steps it on ``arrays``."""

    def __init__(self, plan: k.Plan, arrays: dict | None = None) -> None:
        self.plan = plan
        self.arrays = arrays
        printer = NumpyKernelPrinter(plan)
        self.source = printer.source()
        self.delay_arrays = printer.delay_arrays
        namespace = dict(RUNTIME_NAMESPACE)
        self.delay_cache: dict = {}  # per program: its heterogeneous-delay indices
        namespace["_DCACHE"] = self.delay_cache
        reserved = {**RUNTIME_NAMESPACE, "STEP_KERNELS": None,
                    **{f"k_{kern.name}": None for kern in plan.step_kernels}}
        namespace.update(numpy_namespace(plan.functions, reserved))
        code = compile(self.source, f"<gpuspike numpy kernels {plan.name}>", "exec")
        exec(code, namespace)  # noqa: S102 - source printed by us from the kernel IR
        self.step_kernels = namespace["STEP_KERNELS"]

    def run(self, n: int) -> None:
        """``n`` steps: every kernel in order, then clear the next slot of every ring."""
        A = self.arrays
        kernels, rings, B = self.step_kernels, self.plan.ring_depths, self.plan.batch_size
        s = int(A["__step"][0])
        reverse = self.plan.reverse_steps
        for _ in range(n):
            A["__step"][0] = s
            ks = reverse - s if reverse else s   # the kernels' step
            for fn in kernels:
                fn(A, ks)
            s += 1
            ks = reverse - s if reverse else s
            for r, depth in rings:
                A[f"{r}_count"][(ks % depth) * B:(ks % depth + 1) * B] = 0
        A["__step"][0] = s

    def array_written(self, name: str) -> None:
        if name in self.delay_arrays:
            self.delay_cache.clear()  # new delays: rebuild their delivery index
