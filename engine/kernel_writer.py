"""Kernel writing: the IR statements of one object -> kernel-IR bodies.

:class:`KernelWriter` turns the statements of one neuron group, synapse group, operation or
cable stage into the body of one kernel: constants become numbers, ``rand()`` and friends
become counter-based draws, timed-array calls become loads, and every variable resolves
through a :class:`Scope` (name -> array, index, dtype) to loads at the start and stores at
the end. Around it sit what scopes are built from (array naming, a population's variables
and events, linked variables, clocks) and the passes on statements before and after
writing (:func:`optimise`, :func:`scaled_accumulations`). Both :mod:`.lower` and
:mod:`.lower_cable` build on this module; it imports neither.

Symbols are renamed so that nothing a user names can clash with the printers' own names:
``t -> _t_``, ``i -> _i_``, ``j -> _j_``.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import sympy
from gpuspike.bridge import ir
from gpuspike.bridge.errors import ModelError
from gpuspike.bridge.expressions import clip
from gpuspike.bridge.passes import bake_parameters, common_subexpressions, is_side_uniform
from sympy.logic.boolalg import BooleanAtom, BooleanFunction

from . import endpoints
from . import kernel_ir as k

T, I, J = sympy.Symbol("_t_"), sympy.Symbol("_i_"), sympy.Symbol("_j_")
RANDOM_NAMES = ("rand", "randn", "binomial", "poisson")


@dataclass(frozen=True)
class ConnShape:
    """Sizes of a synapse group's built connectivity (padded rows + column map);
    ``n_pre`` / ``n_post`` count the elements of its sides (neurons, or the synapses of a
    synapse group on that side)."""

    n_pre: int
    n_post: int
    max_row: int
    max_col: int
    n_synapses: int = 0


def array_name(owner: str, var: str) -> str:
    """The array of variable ``var`` of ``owner`` (a group, a source, a monitor...)."""
    return f"{owner}__{var}"


def ring_name(group: str, event: str) -> str:
    """The spike ring of ``event`` of ``group`` (its arrays add ``_count``, ``_list``...)."""
    return f"{group}__ring_{event}"


def stream_id(name: str) -> int:
    """A deterministic 32-bit RNG stream id for a kernel (CRC32 of its name)."""
    return zlib.crc32(name.encode()) & 0xFFFFFFFF


def is_boolean(expr: sympy.Basic) -> bool:
    """True for relations, logic functions and true/false (a Symbol is not, whatever SymPy's
    class hierarchy says)."""
    return isinstance(expr, (sympy.core.relational.Relational, BooleanFunction, BooleanAtom))


# ----------------------------------------------------------------------------- symbol scopes
@dataclass
class Scope:
    """How names resolve inside one kernel: name -> (array, index kind, dtype)."""

    arrays: dict[str, tuple[str, k.Index, str]]
    constants: dict[str, float]
    timed_arrays: Mapping[str, ir.TimedArrayIR]
    readonly: frozenset[str] = frozenset()
    what: str = ""


def variable_ref(net: ir.NetworkIR, pop, v: ir.Variable, index: str,
                 suffix: str = "") -> tuple[str, k.Index, str]:
    """(array, index, dtype) of a variable as seen from ``pop``'s elements; a linked
    variable points into its target group's array."""
    if v.linked is None:
        return array_name(pop.name, v.name), "scalar" if v.shared else index, v.dtype
    group, var = v.linked
    target = net.population(group)
    tvar = next((x for x in population_variables(target) if x.name == var), None)
    if tvar is None:
        raise ModelError(f"{pop.name}.{v.name} is linked to {group}.{var}, which does not "
                         "exist")
    if v.linked_index is not None:
        return array_name(group, var), sympy.Symbol(v.linked_index + suffix), tvar.dtype
    if target.size != pop.size:
        raise ModelError(f"{pop.name}.{v.name} is linked to {group}.{var} of another size "
                         f"({target.size} != {pop.size}): give an index variable")
    return array_name(group, var), index, tvar.dtype


def period(dt: float | None, net_dt: float, what: str) -> int:
    """Steps between runs of an object on a clock of ``dt`` (a multiple of the network's)."""
    if dt is None:
        return 1
    ratio = dt / net_dt
    if ratio < 1 - 1e-9 or abs(ratio - round(ratio)) > 1e-6 * ratio:
        raise ModelError(f"{what}: dt = {dt} s is not a multiple of the network's dt = "
                         f"{net_dt} s; use dt values that are multiples of the smallest one")
    return int(round(ratio))


def neuron_scope(net: ir.NetworkIR, g: ir.NeuronGroupIR) -> Scope:
    arrays = {v.name: variable_ref(net, g, v, "elem") for v in population_variables(g)}
    consts = {p.name: p.value for p in g.parameters}
    consts.update({"N": g.size, "dt": g.dt or net.dt})
    # a linked variable without an index maps elements one to one: writing it is safe;
    # through an index several elements could write one target, so it stays read-only
    ro = frozenset(v.name for v in population_variables(g)
                   if v.read_only or (v.linked and v.linked_index is not None))
    return Scope(arrays, consts, {ta.name: ta for ta in net.timed_arrays}, ro,
                 f"neuron group {g.name!r}")


def synapse_scope(net: ir.NetworkIR, s: ir.SynapseGroupIR, shape: ConnShape) -> Scope:
    arrays: dict[str, tuple[str, k.Index, str]] = {}
    for side in ("pre", "post"):
        grp = net.endpoint(getattr(s, side))
        if isinstance(grp, ir.SynapseGroupIR):
            arrays.update(endpoints.side_arrays(grp, side))
            continue
        for v in population_variables(grp):
            arrays[f"{v.name}_{side}"] = variable_ref(net, grp, v, side, f"_{side}")
    for v in s.variables:
        arrays[v.name] = (array_name(s.name, v.name), "syn", v.dtype)
    consts = {p.name: p.value for p in s.parameters}
    # NOTE: Brian2's N is set by the frontend; here it is the padded size
    consts.update({"N_pre": shape.n_pre, "N_post": shape.n_post,
                   "N": shape.n_pre * shape.max_row, "dt": s.dt or net.dt})
    ro = frozenset(v.name for v in s.variables if v.read_only)
    return Scope(arrays, consts, {ta.name: ta for ta in net.timed_arrays}, ro,
                 f"synapses {s.name!r}")


def population_variables(pop: ir.NeuronGroupIR | ir.Source) -> tuple[ir.Variable, ...]:
    """Variables of a neuron group, including the ones the lowering adds (refractoriness),
    or of a source (a Poisson source's ``rates``)."""
    if isinstance(pop, ir.NeuronGroupIR):
        extra = []
        if any(e.refractory is not None for e in pop.events):
            names = {v.name for v in pop.variables}
            if "lastspike" not in names:
                extra.append(ir.Variable("lastspike", "float64", "second",
                                         init=ir.Constant(-1e4)))
            if "not_refractory" not in names:
                extra.append(ir.Variable("not_refractory", "bool", init=ir.Constant(1)))
        return (*pop.variables, *extra)
    if isinstance(pop, ir.PoissonSourceIR):
        return (ir.Variable("rates", "float", "Hz", batched=False, init=pop.rates),)
    return ()


def population_events(pop: ir.NeuronGroupIR | ir.Source) -> tuple[str, ...]:
    if isinstance(pop, ir.NeuronGroupIR):
        return tuple(e.name for e in pop.events)
    return ("spike",)


def has_multiplicity(pop: ir.NeuronGroupIR | ir.Source, event: str) -> bool:
    """Whether ``event`` of ``pop`` carries a multiplicity (NEST's several spikes per step)."""
    if isinstance(pop, ir.NeuronGroupIR):
        return any(e.name == event and e.multiplicity is not None for e in pop.events)
    return isinstance(pop, ir.SpikeArraySourceIR) and pop.counts is not None


# ----------------------------------------------------------------------------- the writer
class KernelWriter:
    """Turns IR statements into kernel statements for one kernel and one scope."""

    def __init__(self, scope: Scope, kernel: str, *, allow_accumulate: bool,
                 accumulate_arrays: Mapping[str, Mapping[str, tuple[str, k.Index]]]
                 | None = None,
                 writable_index: tuple[str, ...] = ("elem", "syn"),
                 batch_size: int = 1) -> None:
        self.scope = scope
        self.name = kernel
        self.stream = stream_id(kernel)
        self.allow_accumulate = allow_accumulate
        self.accumulate_arrays = accumulate_arrays or {}
        self.writable_index = writable_index
        self.batch_size = batch_size
        self.loads: list[k.KStmt] = []
        self.loaded: set[str] = set()
        self.locals: dict[str, str] = {}
        self.written: dict[str, None] = {}
        self.n_draws = 0
        self.n_timed = 0

    # -- expressions
    def expr(self, e: sympy.Basic, draws: dict, out: list[k.KStmt]) -> sympy.Basic:
        """Resolve an expression: constants to numbers, rand to draws, arrays to loads."""
        e = self._replace_random(e, draws, out)
        e = self._replace_timed_arrays(e, out)
        subs: dict[sympy.Basic, sympy.Basic] = {}
        for sym in sorted(e.free_symbols, key=lambda s: s.name):
            subs_to = self.symbol(sym.name)
            if subs_to is not None:
                subs[sym] = subs_to
        return e.xreplace(subs) if subs else e

    def symbol(self, name: str) -> sympy.Basic | None:
        if name in self.locals and name not in self.scope.arrays:
            return None
        if name in self.scope.arrays:
            if name not in self.loaded:
                array, index, dtype = self.scope.arrays[name]
                if not isinstance(index, str):  # linked through an index variable
                    for sym in sorted(index.free_symbols, key=lambda x: x.name):
                        self.symbol(sym.name)
                self.loads.append(k.Load(name, array, index))
                self.loaded.add(name)
                self.locals.setdefault(name, dtype)
            return None
        if name in self.scope.constants:
            return sympy.Float(self.scope.constants[name]) if isinstance(
                self.scope.constants[name], float) else sympy.Integer(self.scope.constants[name])
        if name == "t":
            return T
        if name == "i":
            return I
        if name == "j":
            return J
        if name.startswith("_") and name.endswith("_") and name in ("_t_", "_i_", "_j_"):
            return None
        raise ModelError(
            f"{self.scope.what}: unknown symbol {name!r} in kernel {self.name!r}; define it "
            "as a variable or parameter of the group (or use x_pre / x_post in synapse code)"
        )

    def _replace_random(self, e: sympy.Basic, draws: dict, out: list[k.KStmt]) -> sympy.Basic:
        calls = [a for a in e.atoms(sympy.Function) if type(a).__name__ in RANDOM_NAMES]
        if not calls:
            return e
        subs = {}
        kinds = {"rand": "uniform", "randn": "normal", "binomial": "binomial",
                 "poisson": "poisson"}
        for call in sorted(calls, key=str):
            key = (type(call).__name__, tuple(call.args))
            if key not in draws:
                local = f"_rand{self.n_draws}"
                params = tuple(self.expr(a, draws, out) for a in call.args[1:])
                out.append(k.Draw(local, kinds[key[0]], self.n_draws, self.stream, params))
                self.locals[local] = "float"
                draws[key] = sympy.Symbol(local)
                self.n_draws += 1
            subs[call] = draws[key]
        return e.xreplace(subs)

    def _replace_timed_arrays(self, e: sympy.Basic, out: list[k.KStmt]) -> sympy.Basic:
        calls = [a for a in e.atoms(sympy.Function)
                 if isinstance(a, sympy.core.function.AppliedUndef)
                 and type(a).__name__ in self.scope.timed_arrays]
        subs = {}
        for call in sorted(calls, key=str):
            ta = self.scope.timed_arrays[type(call).__name__]
            nsamp = ta.values.shape[0]
            args = [self.expr(a, {}, out) for a in call.args]
            # Brian2's timestep(t, dt) = int((t + 1e-3 dt) / dt), clipped to the samples.
            idx = clip(sympy.floor((args[0] + 1e-3 * ta.dt) / ta.dt), 0, nsamp - 1)
            if ta.values.ndim == 2:
                if len(args) != 2:
                    raise ModelError(f"timed array {ta.name!r} is 2-D: call it as "
                                     f"{ta.name}(t, i)")
                idx = idx * ta.values.shape[1] + args[1]
            elif len(args) != 1:
                raise ModelError(f"timed array {ta.name!r} is 1-D: call it as {ta.name}(t)")
            local = f"_ta{self.n_timed}"
            self.n_timed += 1
            out.append(k.Load(local, array_name("timed", ta.name), idx))
            self.locals[local] = "float"
            subs[call] = sympy.Symbol(local)
        return e.xreplace(subs) if subs else e

    # -- statements
    def statements(self, stmts: Iterable[ir.Statement], draws: dict | None = None
                   ) -> tuple[k.KStmt, ...]:
        draws = {} if draws is None else draws
        out: list[k.KStmt] = []
        for st in stmts:
            if isinstance(st, ir.Assign):
                rhs = self.expr(st.expr, draws, out)
                target = st.target
                if target in self.scope.arrays:
                    array, index, dtype = self.scope.arrays[target]
                    if not self._may_write(index, st):
                        raise ModelError(
                            f"{self.scope.what}: statement `{target} = ...` writes a variable "
                            f"of another element ({index}-synaptic); only accumulations "
                            f"(`{target} += ...`) may cross elements"
                        )
                    if target in self.scope.readonly:
                        raise ModelError(f"{self.scope.what}: variable {target!r} is read-only")
                    self.symbol(target)  # load so the store writes a defined value
                    self.written[target] = None
                    out.append(k.Let(target, _cast(rhs, dtype), dtype, comment=_src(st)))
                else:
                    dtype = "bool" if is_boolean(rhs) else self.locals.get(target, "float")
                    self.locals.setdefault(target, dtype)
                    out.append(k.Let(target, rhs, self.locals[target], comment=_src(st)))
            elif isinstance(st, ir.Accumulate):
                if not self.allow_accumulate:
                    raise ModelError(
                        f"{self.scope.what}: `{st.target}_{st.side} += ...` accumulates into "
                        "another group; only synapse code may do that"
                    )
                arrays = self.accumulate_arrays.get(st.side, {})
                if st.target not in arrays:
                    raise ModelError(
                        f"{self.scope.what}: accumulation target {st.target!r} is not a "
                        f"variable of the {st.side}-synaptic group"
                    )
                rhs = self.expr(st.expr, draws, out)
                array, index = arrays[st.target]
                if not isinstance(index, str):  # through an index local: load it first
                    for sym in sorted(index.free_symbols, key=lambda x: x.name):
                        self.symbol(sym.name)
                out.append(k.AtomicAdd(array, rhs, index, comment=_src(st)))
            elif isinstance(st, ir.Conditional):
                cond = self.expr(st.condition, draws, out)
                body = self.statements(st.body, draws)
                orelse = self.statements(st.orelse, draws)
                out.append(k.If(cond, body, orelse))
            elif isinstance(st, ir.EmitEvent):
                raise ModelError(f"{self.scope.what}: EmitEvent belongs in an event condition")
            else:  # pragma: no cover - the IR is a closed union
                raise ModelError(f"unknown statement {st!r}")
        return tuple(out)

    def _may_write(self, index: k.Index, st: ir.Assign) -> bool:
        """Own elements always; another element (pre/post) or a shared variable only with a
        value that every writer computes identically (order-independent, race-free)."""
        if isinstance(index, str) and index in self.writable_index:
            return True
        if isinstance(index, sympy.Symbol):  # a synapse group's slot, seen as a side
            index = {endpoints.slot_local(x): x for x in ("pre", "post")}.get(index.name, index)
        if index in ("pre", "post"):
            return is_side_uniform(st.expr, index, self.scope.constants)
        if index == "scalar":
            shared = {n for n, (_a, ix, _d) in self.scope.arrays.items() if ix == "scalar"}
            return all(s.name in shared | set(self.scope.constants) | {"t", "dt"}
                       for s in st.expr.free_symbols) and not any(
                type(f).__name__ in RANDOM_NAMES for f in st.expr.atoms(sympy.Function))
        return False

    def stores(self) -> tuple[k.KStmt, ...]:
        out = []
        for name in self.written:
            array, index, _dtype = self.scope.arrays[name]
            out.append(k.Store(array, sympy.Symbol(name), index))
        return tuple(out)

    def kernel(self, domain: k.Domain, body: tuple[k.KStmt, ...], phase: str,
               comment: str = "", every: int = 1, order: int = 0) -> k.Kernel:
        full = (*self.loads, *body, *self.stores())
        return k.Kernel(self.name, domain, full, phase, comment,
                        tuple(self.locals.items()), every, order)


def _cast(expr: sympy.Basic, dtype: str) -> sympy.Basic:
    if dtype == "bool" and not is_boolean(expr):
        return sympy.Ne(expr, 0)
    if dtype != "bool" and is_boolean(expr):
        return sympy.Piecewise((1, expr), (0, True))
    return expr


def _src(st: ir.Statement) -> str:
    if isinstance(st, ir.Assign):
        return f"{st.target} = {st.expr}"
    if isinstance(st, ir.Accumulate):
        return f"{st.target}_{st.side} += {st.expr}"
    return ""


# ----------------------------------------------------------------------------- around the writer
def accumulate_targets(net: ir.NetworkIR, name: str, side: str
                       ) -> dict[str, tuple[str, k.Index]]:
    """Variables of the side ``name`` of a synapse group that its code may accumulate
    into: name -> (array, index)."""
    pop = net.endpoint(name)
    if isinstance(pop, ir.SynapseGroupIR):
        return endpoints.accumulate_targets(pop, side)
    return {v.name: (array_name(pop.name, v.name), side) for v in population_variables(pop)
            if not v.read_only}


def optimise(stmts: tuple[ir.Statement, ...], scope: Scope) -> tuple[ir.Statement, ...]:
    """Bake constants first (so ``exp(-dt/tau)`` and friends fold into numbers), then
    eliminate common subexpressions of what is left."""
    return common_subexpressions(bake_parameters(stmts, scope.constants))


def scaled_accumulations(body: tuple[k.KStmt, ...], factor: sympy.Basic
                         ) -> tuple[k.KStmt, ...]:
    """``body`` with every atomic accumulation multiplied by ``factor``."""
    out: list[k.KStmt] = []
    for st in body:
        if isinstance(st, k.AtomicAdd):
            st = k.AtomicAdd(st.array, factor * st.expr, st.index, st.comment)
        elif isinstance(st, k.If):
            st = k.If(st.condition, scaled_accumulations(st.body, factor),
                      scaled_accumulations(st.orelse, factor))
        out.append(st)
    return tuple(out)
