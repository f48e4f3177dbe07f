"""The kernel IR: what the lowering produces and both code generators print.

A :class:`Plan` is a list of :class:`Kernel` per phase of a step, plus the arrays they
use (:class:`ArrayDecl`). A kernel runs its ``body`` once per element of its
:data:`Domain` (a neuron, an emitted event, a synapse reached by an event, ...). The body is
straight-line code over *locals* (SymPy symbols) with explicit memory operations:

- :class:`Load` ``local = array[index]`` and :class:`Store` ``array[index] = expr``, where
  ``index`` names one of the domain's indices (``'elem'``, ``'pre'``, ``'post'``,
  ``'syn'``, ``'scalar'``) or is a SymPy expression of a flat (unbatched) position;
- :class:`AtomicAdd` ``array[index] += expr`` (the only cross-element write);
- :class:`Let` ``local = expr``; :class:`If`; :class:`PushEvent` (append the element to its
  event list of this step); :class:`Draw` (a Philox draw for ``rand()``/``randn()``);
- monitor records (:class:`RecordBit`, :class:`RecordValue`);
- events with a multiplicity (NEST's: several spikes of one element in one step, counted
  by one event): the ring keeps each event's count in ``<ring>_mult`` (slot, batch,
  element), and domains over such events define the integer local ``_mult_``;
- :class:`CableSolve` (a stage of a cable's linear solve, over a :class:`CableDomain`).

Batched arrays hold ``batch_size`` copies; the printers add the batch index ``b``.
The CUDA printer (:mod:`.codegen_cuda`) and the NumPy printer (:mod:`.codegen_numpy`) read
exactly this; neither knows any neuron model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

import sympy

#: Index kinds a domain can provide, and the local each printer defines for it.
INDEX_LOCALS = {"elem": "_i_", "pre": "_i_", "post": "_j_", "syn": "_s_", "scalar": "0"}
INDEX_KINDS = tuple(INDEX_LOCALS)
#: The local that holds an event's multiplicity in domains over events that carry one.
MULT_LOCAL = "_mult_"
Index = Union[str, sympy.Expr]


@dataclass(frozen=True)
class ArrayDecl:
    """A device array: ``size`` elements per batch entry (``batched``) or in all.

    ``role`` says what it is for (``'state'``, ``'connectivity'``, ``'ring'``,
    ``'monitor'``, ``'input'``, ``'runtime'``); ``owner`` is the IR object it belongs to.
    """

    name: str
    dtype: str
    size: int
    batched: bool = False
    role: str = "state"
    owner: str = ""

    def shape(self, batch: int) -> tuple[int, ...]:
        return (batch, self.size) if self.batched else (self.size,)


# ----------------------------------------------------------------------------- domains
@dataclass(frozen=True)
class ElementDomain:
    """Every element ``i < size`` of a group, for every batch entry ``b``."""

    group: str
    size: int


@dataclass(frozen=True)
class EventDomain:
    """Elements of ``group`` that emitted ``event`` in this step (its current ring slot)."""

    group: str
    size: int
    ring: str  # prefix of the ring arrays
    depth: int
    mult: bool = False  # the events carry a multiplicity (``_mult_``)


@dataclass(frozen=True)
class SynapseDomain:
    """Every existing synapse ``s`` (pre ``i``, post ``j``) of ``synapses``."""

    synapses: str
    n_pre: int
    n_post: int
    max_row: int
    #: every row is full and in post order (all-to-all): the C++ printer runs each
    #: (batch entry, pre) row as a contiguous inner loop over posts (no column loads, no
    #: divisions per synapse; vectorisable); the other printers ignore it
    dense: bool = False


@dataclass(frozen=True)
class PathwayDomain:
    """Synapses reached this step by events of the ``source`` side's ``group``.

    Homogeneous delay ``delay_steps``: the ring slot of step ``t - delay_steps``. With a
    heterogeneous delay (``delay_array`` set), the events of every slot ``d <= max_delay``
    reach their synapses whose delay equals ``d`` (CUDA checks each synapse of the row;
    NumPy looks them up in an index by element and delay, built once per delay values).
    On the ``post`` side the synapses of the firing post-synaptic neuron come from the
    column map.
    """

    synapses: str
    source: str  # 'pre' or 'post'
    group: str
    n_pre: int
    n_post: int
    max_row: int
    max_col: int
    ring: str
    depth: int
    delay_steps: int = 0
    delay_array: str | None = None
    max_delay: int = 0
    mult: bool = False  # the events carry a multiplicity (``_mult_``)
    #: every row is full and in post order (``cols[i * max_row + k] = k``, all-to-all):
    #: the C-family printers index ``_j_ = k`` directly (no column load), so a row's
    #: loop is contiguous and the compiler can vectorise it
    dense: bool = False


@dataclass(frozen=True)
class SpikeListDomain:
    """Scheduled spikes of a spike-array source at this step (CSR by step).

    ``<group>__offsets`` has ``n_steps + 1`` entries; the spikes of step ``st`` are
    ``<group>__indices[offsets[st]:offsets[st + 1]]``, the same for every batch entry. With
    ``batched``, each batch entry has its own spikes (``n_steps * B + 1`` offsets, entry
    ``st * B + b``: a batch of recorded examples, as training feeds its inputs).
    """

    group: str
    size: int
    n_steps: int  # length of the schedule
    period_steps: int  # > 0: the schedule repeats
    counts: bool = False  # ``<group>__counts`` gives each spike's multiplicity (``_mult_``)
    batched: bool = False  # a schedule per batch entry


@dataclass(frozen=True)
class SingleDomain:
    """One thread per batch entry (bookkeeping, rate monitors)."""


@dataclass(frozen=True)
class CableDomain:
    """Threads of one stage of a cable solve (:mod:`.cable`): ``'sections'``, one per
    (batch entry, section); ``'tree'``, one block per batch entry whose threads take the
    sections of one tree level at a time (``widest``: most sections in a level)."""

    cable: str
    stage: str
    compartments: int
    sections: int
    levels: int
    widest: int


Domain = Union[ElementDomain, EventDomain, SynapseDomain, PathwayDomain, SpikeListDomain,
               SingleDomain, CableDomain]


# ----------------------------------------------------------------------------- statements
@dataclass(frozen=True)
class Load:
    local: str
    array: str
    index: Index = "elem"


@dataclass(frozen=True)
class Let:
    local: str
    expr: sympy.Basic
    dtype: str = "float"
    comment: str = ""


@dataclass(frozen=True)
class Store:
    array: str
    expr: sympy.Basic
    index: Index = "elem"
    comment: str = ""


@dataclass(frozen=True)
class AtomicAdd:
    array: str
    expr: sympy.Basic
    index: Index = "post"
    comment: str = ""


@dataclass(frozen=True)
class If:
    condition: sympy.Basic
    body: tuple[KStmt, ...]
    orelse: tuple[KStmt, ...] = ()


@dataclass(frozen=True)
class PushEvent:
    """Append this element to the event list ``ring`` of the current step; with
    ``multiplicity``, store that count for it in ``<ring>_mult``."""

    ring: str
    size: int
    depth: int
    multiplicity: sympy.Basic | None = None


@dataclass(frozen=True)
class Draw:
    """``local`` = a Philox draw for call site ``draw``: ``'uniform'``, ``'normal'``,
    ``'binomial'`` (``params = (n, p)``) or ``'poisson'`` (``params = (lam,)``)."""

    local: str
    kind: str
    draw: int
    stream: int
    params: tuple[sympy.Basic, ...] = ()


@dataclass(frozen=True)
class LoadCount:
    """``local`` = number of elements in the event list ``ring`` this step."""

    local: str
    ring: str
    depth: int


@dataclass(frozen=True)
class RecordBit:
    """Set bit ``elem`` of row ``step - origin`` of a bitfield monitor buffer."""

    buffer: str
    words: int  # 32-bit words per row and batch entry


@dataclass(frozen=True)
class RecordValue:
    """Write ``expr`` at row ``(step - origin)//every`` (when ``step % every == 0``), column
    ``column`` of a sample buffer of ``width`` columns per batch entry."""

    buffer: str
    expr: sympy.Basic
    column: sympy.Expr
    width: int
    every: int = 1


@dataclass(frozen=True)
class RecordEvent:
    """Append (step, batch, elem, values...) to a list buffer of ``capacity`` rows."""

    buffer: str
    values: tuple[sympy.Basic, ...]
    capacity: int


@dataclass(frozen=True)
class CableSolve:
    """Stage ``stage`` (``'sections'`` or ``'tree'``) of the linear solve of ``cable``,
    on its arrays ``<cable>__*`` (:data:`.cable.STAGE_ARRAYS`); the only statement of a
    kernel over a :class:`CableDomain`. The maths is in :mod:`.cable`."""

    cable: str
    stage: str


KStmt = Union[Load, Let, Store, AtomicAdd, If, PushEvent, Draw, LoadCount, RecordBit,
              RecordValue, RecordEvent, CableSolve]


@dataclass(frozen=True)
class Kernel:
    """One kernel: ``body`` run for every element of ``domain``."""

    name: str
    domain: Domain
    body: tuple[KStmt, ...]
    phase: str
    comment: str = ""
    #: local name -> dtype for locals the body declares (printers declare them)
    locals: tuple[tuple[str, str], ...] = ()
    #: run only on steps that are multiples of ``every`` (objects on a slower clock)
    every: int = 1
    #: position within its phase (Brian2's ``order``); ties keep definition order
    order: int = 0


#: Names the printers use themselves (kernel arguments, loop indices, temporaries, module
#: aliases) and C/C++ keywords: a model local with one of these names is renamed.
RESERVED_NAMES = frozenset({
    # NumPy printer
    "A", "np", "_ok", "_isp", "_ix", "_sl", "_rb", "_rc", "_parts", "_keep", "_c", "_bsp",
    "_st", "_ids", "_base", "_E", "_valid", "_rp", "_off", "_mk", "_d", "_bd", "_w", "_v",
    "_row", "_ri", "_id", "_blk", "_agex", "_age", "_n_", "_K", "_ZEROS", "_mev", "_mult_",
    "_dl", "_rep", "_perm", "_DCACHE",
    # CUDA printer
    "_x", "_p", "_k", "_e", "_rl", "_cnt", "_pos", "_r", "_ev", "_lo", "_hi", "b", "s",
    # C/C++ keywords and common macros
    "auto", "bool", "break", "case", "char", "const", "continue", "default", "delete",
    "do", "double", "else", "enum", "extern", "float", "for", "goto", "if", "inline", "int",
    "long", "new", "operator", "private", "protected", "public", "register", "restrict",
    "return", "short", "signed", "sizeof", "static", "struct", "switch", "template", "this",
    "throw", "typedef", "union", "unsigned", "virtual", "void", "volatile", "while",
    "NULL", "INFINITY", "NAN", "true", "false",
}) | {f"_m{n}" for n in range(64)} | {f"_m{n}e" for n in range(64)}


def philox_index(dom: Domain) -> tuple[int | None, str]:
    """The Philox counter index of a draw in ``dom`` as ``(stride, local)``: the index is
    ``_b_ * stride + local`` (``local`` alone where ``stride`` is None), the element's flat
    position over (batch, domain). Every printer formats this one rule."""
    if isinstance(dom, (ElementDomain, EventDomain)):
        return dom.size, "_i_"
    if isinstance(dom, (SynapseDomain, PathwayDomain)):
        return dom.n_pre * dom.max_row, "_s_"
    if isinstance(dom, SpikeListDomain):
        return None, "_i_"
    return None, "_b_"


def rename_locals(kern: Kernel, mapping: dict[str, str]) -> Kernel:
    """``kern`` with its locals renamed by ``mapping`` (arrays keep their names)."""
    if not mapping:
        return kern
    subs = {sympy.Symbol(a): sympy.Symbol(b) for a, b in mapping.items()}

    def e(x):
        return x.xreplace(subs) if isinstance(x, sympy.Basic) else x

    def n(name: str) -> str:
        return mapping.get(name, name)

    def visit(stmts):
        out = []
        for st in stmts:
            if isinstance(st, Load):
                st = Load(n(st.local), st.array, e(st.index))
            elif isinstance(st, Let):
                st = Let(n(st.local), e(st.expr), st.dtype, st.comment)
            elif isinstance(st, Store):
                st = Store(st.array, e(st.expr), e(st.index), st.comment)
            elif isinstance(st, AtomicAdd):
                st = AtomicAdd(st.array, e(st.expr), e(st.index), st.comment)
            elif isinstance(st, If):
                st = If(e(st.condition), visit(st.body), visit(st.orelse))
            elif isinstance(st, Draw):
                st = Draw(n(st.local), st.kind, st.draw, st.stream,
                          tuple(e(p) for p in st.params))
            elif isinstance(st, LoadCount):
                st = LoadCount(n(st.local), st.ring, st.depth)
            elif isinstance(st, PushEvent) and st.multiplicity is not None:
                st = PushEvent(st.ring, st.size, st.depth, e(st.multiplicity))
            elif isinstance(st, RecordValue):
                st = RecordValue(st.buffer, e(st.expr), e(st.column), st.width, st.every)
            elif isinstance(st, RecordEvent):
                st = RecordEvent(st.buffer, tuple(e(v) for v in st.values), st.capacity)
            out.append(st)
        return tuple(out)

    return Kernel(kern.name, kern.domain, visit(kern.body), kern.phase, kern.comment,
                  tuple((n(name), dt) for name, dt in kern.locals), kern.every, kern.order)


@dataclass(frozen=True)
class Plan:
    """Everything the printers and the runtime need for one network."""

    name: str
    precision: str
    batch_size: int
    dt: float
    seed: int
    arrays: tuple[ArrayDecl, ...]
    step_kernels: tuple[Kernel, ...]  # in execution order within a step
    ring_depths: tuple[tuple[str, int], ...] = ()
    #: user functions the kernels call (:class:`~gpuspike.bridge.ir.FunctionIR`)
    functions: tuple[Any, ...] = ()
    meta: dict = field(default_factory=dict, compare=False, hash=False)
    #: reverse time (adjoint passes): with ``R > 0`` the kernels' step ``_step_`` is ``R``
    #: minus the program's step counter, so ``run(R + 1)`` visits steps ``R, R-1, ..., 0``
    #: (the counter itself, ``__step``, still counts up from 0; rings clear the slot of
    #: the next step visited)
    reverse_steps: int = 0

    def kernel_step(self, counter: str) -> str:
        """The kernels' step for the program's step counter expression ``counter``."""
        return f"({self.reverse_steps} - {counter})" if self.reverse_steps else counter

    def array(self, name: str) -> ArrayDecl:
        for a in self.arrays:
            if a.name == name:
                return a
        raise KeyError(name)
