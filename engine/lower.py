"""Lowering: :class:`~gpuspike.bridge.ir.NetworkIR` -> kernel :class:`~.kernel_ir.Plan`.

For every IR object the lowering decides which kernels run in which phase, which arrays
they touch and how symbols resolve to memory:

==========================  ===========================================================
IR object                   kernels (phase)
==========================  ===========================================================
NeuronGroupIR               ``<g>_update`` (groups), ``<g>_threshold`` (thresholds),
                            ``<g>_<event>_reset`` (resets)
PoissonSourceIR             ``<src>_poisson`` (thresholds): emit where ``u < rate dt``
SpikeArraySourceIR          ``<src>_spikes`` (thresholds): emit the scheduled spikes
SynapseGroupIR              ``<S>_dynamics``, ``<S>_summed_<x>`` (groups, before the
                            neuron updates), ``<S>_<pathway>`` (synapses); a side that
                            is another synapse group goes through its slot map
                            (:mod:`.endpoints`)
CableIR                     ``<c>_currents``, ``<c>_sections``, ``<c>_tree``,
                            ``<c>_voltage`` (groups; :mod:`.lower_cable`)
monitors                    ``<m>_record`` in the monitor's phase, after the groups
==========================  ===========================================================

Every (group, event) owns a spike ring of ``depth = 1 + max delay`` slots; slot of step
``n`` is ``n mod depth``. Events with a multiplicity (:attr:`~gpuspike.bridge.ir.EventIR.
multiplicity`, a spike array's ``counts``) also keep each event's count in the ring
(``<ring>_mult``); their pathways scale every accumulation by it and their event monitors
record the count with each event. Symbols are renamed so that nothing a user names can clash with
the printers' own names: ``t -> _t_``, ``i -> _i_``, ``j -> _j_``; ``dt``, ``N``,
``N_pre``, ``N_post`` and parameters become numbers.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import sympy
from gpuspike.bridge import ir
from gpuspike.bridge.errors import ModelError, UnsupportedFeature
from gpuspike.bridge.expressions import clip
from gpuspike.bridge.passes import bake_parameters, common_subexpressions, is_side_uniform

from . import endpoints
from . import kernel_ir as k
from .functions import used_functions
from .shared_writes import commit_shared_writes

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
    return f"{owner}__{var}"


def ring_name(group: str, event: str) -> str:
    return f"{group}__ring_{event}"


def stream_id(name: str) -> int:
    """A deterministic 32-bit RNG stream id for a kernel (CRC32 of its name)."""
    return zlib.crc32(name.encode()) & 0xFFFFFFFF


def is_boolean(expr: sympy.Basic) -> bool:
    """True for relations, logic functions and true/false (a Symbol is not, whatever SymPy's
    class hierarchy says)."""
    from sympy.logic.boolalg import BooleanAtom, BooleanFunction

    return isinstance(expr, (sympy.core.relational.Relational, BooleanFunction, BooleanAtom))


def _ir_dtype(var: ir.Variable) -> str:
    return var.dtype


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


def _scaled_accumulations(body: tuple[k.KStmt, ...], factor: sympy.Basic
                          ) -> tuple[k.KStmt, ...]:
    """``body`` with every atomic accumulation multiplied by ``factor``."""
    out: list[k.KStmt] = []
    for st in body:
        if isinstance(st, k.AtomicAdd):
            st = k.AtomicAdd(st.array, factor * st.expr, st.index, st.comment)
        elif isinstance(st, k.If):
            st = k.If(st.condition, _scaled_accumulations(st.body, factor),
                      _scaled_accumulations(st.orelse, factor))
        out.append(st)
    return tuple(out)


# ----------------------------------------------------------------------------- statement lowering
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


def _accumulate_targets(net: ir.NetworkIR, name: str, side: str
                        ) -> dict[str, tuple[str, k.Index]]:
    """Variables of the side ``name`` of a synapse group that its code may accumulate
    into: name -> (array, index)."""
    pop = net.endpoint(name)
    if isinstance(pop, ir.SynapseGroupIR):
        return endpoints.accumulate_targets(pop, side)
    return {v.name: (array_name(pop.name, v.name), side) for v in population_variables(pop)
            if not v.read_only}


def _optimise(stmts: tuple[ir.Statement, ...], scope: Scope) -> tuple[ir.Statement, ...]:
    """Bake constants first (so ``exp(-dt/tau)`` and friends fold into numbers), then
    eliminate common subexpressions of what is left."""
    return common_subexpressions(bake_parameters(stmts, scope.constants))


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


# ----------------------------------------------------------------------------- the lowering
def ring_depths(net: ir.NetworkIR) -> dict[tuple[str, str], int]:
    """Depth of every (population, event) spike ring: 1 + the longest delay reading it."""
    depths: dict[tuple[str, str], int] = {}
    for pop in (*net.groups, *net.sources):
        for ev in population_events(pop):
            depths[(pop.name, ev)] = 1
    for s in net.synapses:
        for pw in s.pathways:
            grp = s.pre if pw.source == "pre" else s.post
            key = (grp, pw.event)
            if key not in depths:
                raise ModelError(f"synapses {s.name!r}, pathway {pw.name!r}: group {grp!r} "
                                 f"has no event {pw.event!r}")
            d = pw.delay.steps if isinstance(pw.delay, ir.HomogeneousDelay) else pw.delay.max_steps
            if d < 0:
                raise ModelError(f"synapses {s.name!r}: negative delay {d}")
            depths[key] = max(depths[key], d + 1)
    return depths


def lower(net: ir.NetworkIR, conn: Mapping[str, ConnShape],
          spike_schedules: Mapping[str, int] | None = None,
          monitor_capacity: Callable[[ir.Monitor], int] | None = None) -> k.Plan:
    """Lower ``net`` given the built connectivity sizes ``conn`` (per synapse group).

    ``spike_schedules``: per spike-array source, the number of steps of its schedule.
    """
    spike_schedules = spike_schedules or {}
    B = net.batch_size
    depths = ring_depths(net)
    arrays: list[k.ArrayDecl] = [
        k.ArrayDecl("__step", "int64", 1, role="runtime"),
        k.ArrayDecl("__origin", "int64", 1, role="runtime"),
        # the seed as data, not text: networks that differ only in it share compiled code
        k.ArrayDecl("__seed", "int64", 1, role="runtime"),
    ]
    multiple = {(grp, ev) for (grp, ev) in depths
                if has_multiplicity(net.population(grp), ev)}
    for (grp, ev), depth in depths.items():
        size = net.population(grp).size
        r = ring_name(grp, ev)
        arrays.append(k.ArrayDecl(f"{r}_count", "int32", depth * B, role="ring", owner=grp))
        arrays.append(k.ArrayDecl(f"{r}_list", "int32", depth * B * size, role="ring",
                                  owner=grp))
        if (grp, ev) in multiple:
            arrays.append(k.ArrayDecl(f"{r}_mult", "int32", depth * B * size, role="ring",
                                      owner=grp))
    for ta in net.timed_arrays:
        arrays.append(k.ArrayDecl(array_name("timed", ta.name), "float", int(ta.values.size),
                                  role="input", owner=ta.name))

    phase_kernels: dict[str, list[k.Kernel]] = {p: [] for p in ir.PHASES}
    # A group's threshold reads only its own variables, which nothing after its update in
    # the groups phase writes: with 'thresholds' right after 'groups' the two fuse into one
    # kernel (one launch and one pass over memory less per group and step), same result.
    # Not for groups whose variables other kernels of those phases write, or that read
    # linked variables (another group's update may come later in the phase).
    sched = list(net.schedule)
    fuse_adjacent = ("groups" in sched and "thresholds" in sched
                     and sched.index("thresholds") == sched.index("groups") + 1)
    written_elsewhere = {op.group for op in net.operations
                         if op.when in ("groups", "thresholds")}
    written_elsewhere |= {c.group for c in net.cables}  # the cable solve writes v
    for syn in net.synapses:
        written_elsewhere |= {syn.post if sv.side == "post" else syn.pre for sv in syn.summed}
        if syn.dynamics:
            written_elsewhere |= {syn.pre, syn.post}

    # -- neuron groups
    for g in net.groups:
        for v in population_variables(g):
            if v.linked is None:
                arrays.append(k.ArrayDecl(array_name(g.name, v.name), _ir_dtype(v),
                                          1 if v.shared else g.size, v.batched, "state",
                                          g.name))
        scope = neuron_scope(net, g)
        dom = k.ElementDomain(g.name, g.size)
        every = period(g.dt, net.dt, f"neuron group {g.name!r}")
        fuse_threshold = fuse_adjacent and g.name not in written_elsewhere and not any(
            v.linked for v in g.variables)
        # update: refractoriness first (Brian2's state updater does the same)
        w = KernelWriter(scope, f"{g.name}_update", allow_accumulate=False, batch_size=B)
        pre: list[ir.Statement] = []
        for e in g.events:
            if e.refractory is not None:
                pre.append(ir.Assign("not_refractory",
                                     _not_refractory(e.refractory, g.dt or net.dt)))
        body = w.statements(_optimise((*pre, *g.update), scope))
        if not fuse_threshold:
            if body:
                phase_kernels["groups"].append(w.kernel(dom, body, "groups",
                                                        f"state update of {g.name}", every,
                                                        g.order))
            w = KernelWriter(scope, f"{g.name}_threshold", allow_accumulate=False,
                             batch_size=B)
            body = ()
        # thresholds: every event's condition
        body_t: list[k.KStmt] = []
        for e in g.events:
            cond = e.condition
            on_event: list[ir.Statement] = []
            if e.refractory is not None:
                cond = sympy.And(cond, sympy.Symbol("not_refractory"))
                on_event = [ir.Assign("lastspike", sympy.Symbol("t")),
                            ir.Assign("not_refractory", sympy.false)]
            c = w.expr(cond, {}, body_t)
            mult = (None if e.multiplicity is None
                    else w.expr(sympy.Symbol(e.multiplicity), {}, body_t))
            inner = (k.PushEvent(ring_name(g.name, e.name), g.size,
                                 depths[(g.name, e.name)], mult),
                     *w.statements(on_event))
            body_t.append(k.If(c, inner))
        if fuse_threshold and (body or body_t):
            phase_kernels["groups"].append(w.kernel(dom, (*body, *body_t), "groups",
                                                    f"state update and events of {g.name}",
                                                    every, g.order))
        elif body_t:
            phase_kernels["thresholds"].append(w.kernel(dom, tuple(body_t), "thresholds",
                                                        f"events of {g.name}", every, g.order))
        # resets: per event, over the elements that emitted it
        for e in g.events:
            if not e.reset:
                continue
            w = KernelWriter(scope, f"{g.name}_{e.name}_reset", allow_accumulate=False,
                             batch_size=B)
            body = w.statements(e.reset)
            edom = k.EventDomain(g.name, g.size, ring_name(g.name, e.name),
                                 depths[(g.name, e.name)])
            phase_kernels["resets"].append(w.kernel(edom, body, "resets",
                                                    f"{e.name} reset of {g.name}", every,
                                                    g.order))

    # -- sources
    for src in net.sources:
        r = ring_name(src.name, "spike")
        depth = depths[(src.name, "spike")]
        if isinstance(src, ir.PoissonSourceIR):
            arrays.append(k.ArrayDecl(array_name(src.name, "rates"), "float", src.size, False,
                                      "state", src.name))
            name = f"{src.name}_poisson"
            sid = stream_id(name)
            u, rate = sympy.Symbol("_rand0"), sympy.Symbol("rates")
            body = (k.Load("rates", array_name(src.name, "rates"), "elem"),
                    k.Draw("_rand0", "uniform", 0, sid),
                    k.If(sympy.StrictLessThan(u, rate * net.dt),
                         (k.PushEvent(r, src.size, depth),)))
            phase_kernels["thresholds"].append(k.Kernel(
                name, k.ElementDomain(src.name, src.size), body, "thresholds",
                f"Poisson spikes of {src.name}", (("rates", "float"), ("_rand0", "float")),
                order=src.order))
        elif isinstance(src, ir.SpikeArraySourceIR):
            n_steps = spike_schedules.get(src.name, 0)
            arrays.append(k.ArrayDecl(array_name(src.name, "offsets"), "int32", n_steps + 1,
                                      role="input", owner=src.name))
            arrays.append(k.ArrayDecl(array_name(src.name, "indices"), "int32",
                                      max(1, len(src.indices)), role="input", owner=src.name))
            repeat = int(round(src.period / net.dt)) if src.period > 0 else 0
            counts = src.counts is not None
            if counts:
                arrays.append(k.ArrayDecl(array_name(src.name, "counts"), "int32",
                                          max(1, len(src.indices)), role="input",
                                          owner=src.name))
            phase_kernels["thresholds"].append(k.Kernel(
                f"{src.name}_spikes",
                k.SpikeListDomain(src.name, src.size, n_steps, repeat, counts),
                (k.PushEvent(r, src.size, depth,
                             sympy.Symbol(k.MULT_LOCAL) if counts else None),),
                "thresholds", f"scheduled spikes of {src.name}", order=src.order))
        else:  # pragma: no cover
            raise UnsupportedFeature(f"source type {type(src).__name__}")

    # -- synapses
    synapse_kernels_groups: list[k.Kernel] = []
    endpoint_names = endpoints.used_as_endpoint(net)
    delivery_before_events = ("synapses" in sched and "thresholds" in sched
                              and sched.index("synapses") < sched.index("thresholds"))
    for s in net.synapses:
        shape = conn[s.name]
        n_padded = shape.n_pre * shape.max_row
        if s.name in endpoint_names:
            arrays += endpoints.endpoint_arrays(s.name, shape.n_synapses)
        for v in s.variables:
            arrays.append(k.ArrayDecl(array_name(s.name, v.name), v.dtype,
                                      1 if v.shared else n_padded, v.batched, "state", s.name))
        arrays += [
            k.ArrayDecl(array_name(s.name, "rowlen"), "int32", shape.n_pre,
                        role="connectivity", owner=s.name),
            k.ArrayDecl(array_name(s.name, "cols"), "int32", max(1, n_padded),
                        role="connectivity", owner=s.name),
        ]
        needs_colmap = any(pw.source == "post" for pw in s.pathways)
        if needs_colmap:
            arrays += [
                k.ArrayDecl(array_name(s.name, "collen"), "int32", shape.n_post,
                            role="connectivity", owner=s.name),
                k.ArrayDecl(array_name(s.name, "remap"), "int32",
                            max(1, shape.n_post * shape.max_col), role="connectivity",
                            owner=s.name),
            ]
        scope = synapse_scope(net, s, shape)
        acc = {side: _accumulate_targets(net, getattr(s, side), side)
               for side in ("pre", "post")}
        sdom = k.SynapseDomain(s.name, shape.n_pre, shape.n_post, shape.max_row)
        every = period(s.dt, net.dt, f"synapses {s.name!r}")
        if s.dynamics:
            w = KernelWriter(scope, f"{s.name}_dynamics", allow_accumulate=True,
                             accumulate_arrays=acc, batch_size=B)
            body = w.statements(_optimise(s.dynamics, scope))
            synapse_kernels_groups.append(w.kernel(sdom, body, "groups",
                                                   f"clock-driven dynamics of {s.name}",
                                                   every, s.order))
        for sv in s.summed:
            target_pop = net.endpoint(s.post if sv.side == "post" else s.pre)
            tarr = array_name(target_pop.name, sv.target)
            if isinstance(target_pop, ir.SynapseGroupIR):
                target_vars = target_pop.variables
                t_shape = conn[target_pop.name]
                size = t_shape.n_pre * t_shape.max_row  # every padded slot is cleared
            else:
                target_vars, size = population_variables(target_pop), target_pop.size
            try:
                tvar = next(v for v in target_vars if v.name == sv.target)
            except StopIteration:
                raise ModelError(f"synapses {s.name!r}: summed variable target {sv.target!r} "
                                 f"is not a variable of {target_pop.name!r}") from None
            if sv.target_range and isinstance(target_pop, ir.SynapseGroupIR):
                raise ModelError(f"synapses {s.name!r}: a summed variable into the synapses "
                                 f"{target_pop.name!r} sums into all of them (no range)")
            lo, hi = sv.target_range or (0, size)
            if not 0 <= lo <= hi <= size:
                raise ModelError(f"synapses {s.name!r}: summed variable range {lo}:{hi} lies "
                                 f"outside {target_pop.name!r} (size {size})")
            zero = k.Kernel(f"{s.name}_summed_{sv.side}_{sv.target}_zero",
                            k.ElementDomain(target_pop.name, hi - lo),
                            (k.Store(tarr, sympy.Integer(0), I + lo if lo else "elem"),),
                            "groups",
                            f"clear {target_pop.name}.{sv.target} before summing",
                            (), every, s.order)
            w = KernelWriter(scope, f"{s.name}_summed_{sv.side}_{sv.target}",
                             allow_accumulate=True,
                             accumulate_arrays=acc, batch_size=B)
            body = w.statements((ir.Accumulate(sv.target, sv.expr, sv.side),))
            synapse_kernels_groups += [zero, w.kernel(sdom, body, "groups",
                                                      f"summed variable {sv.target}", every,
                                                      s.order)]
            del tvar
        for pw in s.pathways:
            grp = s.pre if pw.source == "pre" else s.post
            r = ring_name(grp, pw.event)
            if (isinstance(pw.delay, ir.HomogeneousDelay) and pw.delay.steps == 0
                    and delivery_before_events):
                raise ModelError(
                    f"synapses {s.name!r}, pathway {pw.name!r}: a delay of 0 steps cannot be "
                    "delivered when the schedule runs 'synapses' before 'thresholds' (the "
                    "events of a step do not exist yet); use a delay of at least one step")
            mult = (grp, pw.event) in multiple
            if isinstance(pw.delay, ir.HeterogeneousDelay):
                dvar = s.variable(pw.delay.variable)
                if dvar.dtype not in ("int32", "int64"):
                    raise ModelError(f"synapses {s.name!r}: heterogeneous delay variable "
                                     f"{dvar.name!r} must be an integer number of steps")
                dom = k.PathwayDomain(s.name, pw.source, grp, shape.n_pre, shape.n_post,
                                      shape.max_row, shape.max_col, r, depths[(grp, pw.event)],
                                      0, array_name(s.name, dvar.name), pw.delay.max_steps,
                                      mult)
            else:
                dom = k.PathwayDomain(s.name, pw.source, grp, shape.n_pre, shape.n_post,
                                      shape.max_row, shape.max_col, r, depths[(grp, pw.event)],
                                      pw.delay.steps, mult=mult)
            w = KernelWriter(scope, f"{s.name}_{pw.name}", allow_accumulate=True,
                             accumulate_arrays=acc, batch_size=B)
            body = w.statements(_optimise(pw.statements, scope))
            if mult:  # NEST: the synapse runs once, the receiver takes the weight k times
                body = _scaled_accumulations(body, sympy.Symbol(k.MULT_LOCAL))
            if B > 1:
                own = {v.name: v for v in s.variables}  # side writes (v_post) are the
                for name in w.written:                   # groups' own, batched variables
                    if name in own and not own[name].batched:
                        raise ModelError(
                            f"synapses {s.name!r}, pathway {pw.name!r}: `{name} = ...` writes a "
                            f"variable shared by all {B} batch entries; declare it batched"
                        )
            phase_kernels["synapses"].append(w.kernel(
                dom, body, "synapses", f"{pw.event} pathway {pw.name}",
                order=s.order if pw.order is None else pw.order))
    phase_kernels["groups"] = synapse_kernels_groups + phase_kernels["groups"]

    # -- custom operations (run_regularly)
    for op in net.operations:
        target = next((g for g in (*net.groups, *net.synapses) if g.name == op.group), None)
        if target is None:
            raise ModelError(f"operation {op.name!r}: no neuron or synapse group "
                             f"{op.group!r}")
        if op.when not in phase_kernels:
            raise ModelError(f"operation {op.name!r}: unknown phase {op.when!r}")
        if isinstance(target, ir.NeuronGroupIR):
            scope = neuron_scope(net, target)
            w = KernelWriter(scope, op.name, allow_accumulate=False, batch_size=B)
            dom = k.ElementDomain(target.name, target.size)
        else:
            shape = conn[target.name]
            scope = synapse_scope(net, target, shape)
            w = KernelWriter(scope, op.name, allow_accumulate=False, batch_size=B)
            dom = k.SynapseDomain(target.name, shape.n_pre, shape.n_post, shape.max_row)
        body = w.statements(_optimise(op.statements, scope))
        phase_kernels[op.when].append(w.kernel(dom, body, op.when,
                                               f"operation {op.name} on {op.group}",
                                               op.every, op.order))

    # -- cables (multi-compartment neurons): kernels of their own, see .lower_cable
    if net.cables:
        from .lower_cable import lower_cable  # it builds on this module's writer

        for c in net.cables:
            decls, cable_kernels = lower_cable(net, c)
            arrays += decls
            phase_kernels["groups"] += cable_kernels

    # -- monitors
    for m in net.monitors:
        kern, decls = _lower_monitor(net, m, depths, B, monitor_capacity, conn)
        arrays += decls
        phase_kernels[kern.phase].append(kern)

    kernels: list[k.Kernel] = []
    for phase in net.schedule:
        kernels += sorted(phase_kernels[phase], key=lambda kern: kern.order)  # stable
    kernels = [k.rename_locals(kern, {name: f"{name}_gsu" for name, _ in kern.locals
                                      if name in k.RESERVED_NAMES}) for kern in kernels]
    kernels, shadows = commit_shared_writes(kernels, arrays)
    arrays += shadows
    return k.Plan(net.name, net.precision, B, net.dt, net.seed, tuple(arrays), tuple(kernels),
                  tuple((ring_name(g, e), d) for (g, e), d in depths.items()),
                  functions=used_functions(kernels, net.functions))


def _not_refractory(refractory: sympy.Basic, dt: float) -> sympy.Basic:
    """Brian2's rule: refractory while ``timestep(t - lastspike) < timestep(refractory)``
    for a duration; for a condition, refractoriness is only *left* when it stops holding:
    ``not_refractory = not_refractory or not condition``."""
    if is_boolean(refractory):
        return sympy.Or(sympy.Symbol("not_refractory"), sympy.Not(refractory))
    t, last = sympy.Symbol("t"), sympy.Symbol("lastspike")
    # timestep(t - lastspike) >= R with the integer R = timestep(refractory); since
    # floor(x) >= R <=> x >= R for an integer R, this is lastspike <= t - (R - 1e-3) dt:
    # one comparison per neuron instead of a floor of a difference.
    steps = sympy.floor((refractory + 1e-3 * dt) / dt)
    return sympy.LessThan(last, t - (steps - 1e-3) * dt)


def _lower_monitor(net: ir.NetworkIR, m: ir.Monitor, depths, B: int,
                   capacity: Callable[[ir.Monitor], int] | None,
                   conn: Mapping[str, ConnShape]) -> tuple[k.Kernel, list[k.ArrayDecl]]:
    if isinstance(m, ir.StateMonitorIR):
        syn = next((x for x in net.synapses if x.name == m.source), None)
        if syn is not None:  # synapse variables: the runtime maps indices to padded slots
            n_el = conn[syn.name].n_synapses
            variables = {v.name: v for v in syn.variables}
            pop = syn
        else:
            pop = net.population(m.source)
            n_el = pop.size
            variables = {v.name: v for v in population_variables(pop)}
        idx = tuple(range(n_el)) if m.indices is None else m.indices
        decls = [k.ArrayDecl(f"{m.name}__idx", "int32", max(1, len(idx)), role="monitor",
                             owner=m.name)]
        rows = capacity(m) if capacity else 1
        body: list[k.KStmt] = [k.Load("_rec_i", f"{m.name}__idx", "elem")]
        locs = [("_rec_i", "int32")]
        for var in m.variables:
            if var not in variables:
                raise ModelError(f"monitor {m.name!r}: {pop.name!r} has no variable {var!r}")
            v = variables[var]
            if v.linked is not None:
                raise UnsupportedFeature(f"monitor {m.name!r}: recording the linked variable "
                                         f"{pop.name}.{var}; record {v.linked[0]}."
                                         f"{v.linked[1]} instead")
            buf = f"{m.name}__{var}"
            decls.append(k.ArrayDecl(buf, "float64" if v.dtype == "float64" else
                                     ("float" if v.dtype == "float" else "float64"),
                                     rows * len(idx), True, "monitor", m.name))
            loc = f"_rec_{var}"
            body.append(k.Load(loc, array_name(pop.name, var), sympy.Symbol("_rec_i")))
            locs.append((loc, v.dtype))
            body.append(k.RecordValue(buf, sympy.Symbol(loc), I, len(idx), m.every))
        return (k.Kernel(f"{m.name}_record", k.ElementDomain(m.name, len(idx)), tuple(body),
                         m.when, f"state monitor of {pop.name}", tuple(locs),
                         order=m.order), decls)
    pop = net.population(m.source)
    if isinstance(m, ir.RateMonitorIR):
        rows = capacity(m) if capacity else 1
        r = ring_name(pop.name, m.event)
        decls = [k.ArrayDecl(f"{m.name}__rate", "float64", rows, True, "monitor", m.name)]
        count = sympy.Symbol("_count")
        body = (k.LoadCount("_count", r, depths[(pop.name, m.event)]),
                k.RecordValue(f"{m.name}__rate", count / (pop.size * net.dt), sympy.Integer(0),
                              1, 1))
        return (k.Kernel(f"{m.name}_record", k.SingleDomain(), body, m.when,
                         f"population rate of {pop.name}", (("_count", "int32"),),
                         order=m.order), decls)
    if isinstance(m, ir.EventMonitorIR):
        r = ring_name(pop.name, m.event)
        if (pop.name, m.event) not in depths:
            raise ModelError(f"monitor {m.name!r}: {pop.name!r} has no event {m.event!r}")
        mult = has_multiplicity(pop, m.event)
        edom = k.EventDomain(pop.name, pop.size, r, depths[(pop.name, m.event)], mult)
        if not m.variables and not mult:
            words = (pop.size + 31) // 32
            rows = capacity(m) if capacity else 1
            decls = [k.ArrayDecl(f"{m.name}__bits", "uint32", rows * words, True, "monitor",
                                 m.name)]
            return (k.Kernel(f"{m.name}_record", edom, (k.RecordBit(f"{m.name}__bits", words),),
                             "thresholds", f"{m.event} monitor of {pop.name}",
                             order=m.order), decls)
        cap = capacity(m) if capacity else 1
        variables = {v.name: v for v in population_variables(pop)}
        body2: list[k.KStmt] = []
        locs = []
        vals = []
        for var in m.variables:
            if var not in variables:
                raise ModelError(f"monitor {m.name!r}: {pop.name!r} has no variable {var!r}")
            body2.append(k.Load(f"_rec_{var}", array_name(pop.name, var), "elem"))
            locs.append((f"_rec_{var}", variables[var].dtype))
            vals.append(sympy.Symbol(f"_rec_{var}"))
        if mult:  # the last value: the event's multiplicity (the runtime repeats the event)
            vals.append(sympy.Symbol(k.MULT_LOCAL))
        decls = [k.ArrayDecl(f"{m.name}__count", "int32", B, False, "monitor", m.name),
                 k.ArrayDecl(f"{m.name}__events", "float64", cap * (2 + len(vals)), True,
                             "monitor", m.name)]
        body2.append(k.RecordEvent(f"{m.name}__events", tuple(vals), cap))
        return (k.Kernel(f"{m.name}_record", edom, tuple(body2), "thresholds",
                         f"{m.event} monitor of {pop.name} with "
                         + ("variables" if m.variables else "multiplicities"), tuple(locs),
                         order=m.order), decls)
    raise UnsupportedFeature(f"monitor type {type(m).__name__}")  # pragma: no cover
