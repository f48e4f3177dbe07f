"""IR passes: validation, parameter baking, common subexpressions and loop-invariant hoisting.

Statements are sequences of :data:`~gpuspike.bridge.ir.Statement`; a pass returns new
tuples and never mutates its input.

- :func:`validate` checks a :class:`~gpuspike.bridge.ir.NetworkIR`: every symbol defined,
  no writes to read-only variables or parameters, cross-element writes only as
  ``Accumulate`` (``x_post += e``), one writer per post-synaptic variable, no pathway that
  reads a variable it accumulates into (its result would depend on synapse order), dtypes
  (a float value needs ``int(...)`` to go into an integer variable; conditions are boolean).
- :func:`bake_parameters` / :func:`bake_network` replace parameter symbols by their values.
- :func:`common_subexpressions`: ``sympy.cse`` per straight-line segment, a segment being a
  run of statements none of which reads a symbol written earlier in it, so every shared
  temporary ``_cse<k>`` can be computed at the segment start from the same values.
- :func:`hoist_invariants`: maximal subexpressions of invariant symbols (parameters, ``dt``)
  move into a prelude ``_inv<k> = e`` computed once per launch: ``v*exp(-dt/tau)`` becomes
  ``_inv0 = exp(-dt/tau)``; ``v*_inv0``.

Random draws (``rand``, ``randn``) are never shared nor hoisted: every call site stays one
draw, as the IR defines.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from itertools import count

import sympy
from sympy.core.function import AppliedUndef

from .errors import DtypeError, ModelError
from .ir import (
    Accumulate,
    Assign,
    Conditional,
    EventIR,
    EventMonitorIR,
    ExpressionInit,
    HeterogeneousDelay,
    NetworkIR,
    NeuronGroupIR,
    RateMonitorIR,
    Statement,
    StateMonitorIR,
    SynapseGroupIR,
    Variable,
)

__all__ = [
    "KNOWN_FUNCTIONS",
    "CrossElementWrite",
    "ReadOnlyWrite",
    "UndefinedSymbol",
    "WriteConflict",
    "bake_network",
    "bake_parameters",
    "common_subexpressions",
    "hoist_invariants",
    "statement_symbols",
    "substitute",
    "validate",
    "walk_statements",
]

Statements = tuple[Statement, ...]
RANDOM_FUNCTIONS = frozenset({"rand", "randn", "binomial", "poisson"})
#: Function names every expression may call besides timed arrays (see bridge.expressions).
KNOWN_FUNCTIONS = frozenset({"rand", "randn", "binomial", "poisson", "exprel", "clip", "int_",
                             "int"})
INT_FUNCTIONS = frozenset({"int_", "int", "floor", "ceiling"})
INT_DTYPES = frozenset({"int32", "int64", "uint32"})


class UndefinedSymbol(ModelError):
    """An expression uses a name that is neither a variable, a parameter nor a local."""


class ReadOnlyWrite(ModelError):
    """A statement writes a read-only variable or a parameter."""


class CrossElementWrite(ModelError):
    """Synapse code assigns a pre/post variable instead of accumulating into it."""


class WriteConflict(ModelError):
    """Two writers for one variable, or a result that would depend on synapse order."""


# ----------------------------------------------------------------------------- helpers
def is_side_uniform(expr: sympy.Basic, side: str, constants: Iterable[str] = ()) -> bool:
    """True when ``expr`` takes the same value for every synapse of one ``side`` element:
    it reads only ``x_<side>`` variables, ``t``, ``dt``, ``i`` (pre side) or ``j`` (post
    side) and constants, and draws no random numbers. Such an assignment
    ``x_<side> = expr`` in synapse code is order-independent, hence allowed."""
    index = "i" if side == "pre" else "j"
    allowed = {"t", "dt", index, "N_pre", "N_post"} | set(constants)
    for sym in expr.free_symbols:
        if not (sym.name.endswith(f"_{side}") or sym.name in allowed):
            return False
    return not any(_is_random(f) for f in expr.atoms(sympy.Function))


def specialise_flag(statements: Sequence[Statement], flag: str) -> tuple[Statement, ...]:
    """Split statements that use ``int(flag)`` as a 0/1 factor into two branches.

    Brian2 multiplies the derivative of ``(unless refractory)`` variables by
    ``int(not_refractory)``; integrated exactly that puts the factor inside ``exp(...)``,
    evaluated per element and step. Since the factor is 0 or 1,
    ``if flag: <statements with 1> else: <statements with 0>`` is the same computation,
    and in each branch the constants fold again. Statements up to the last assignment of
    ``flag`` itself stay in front.
    """
    from .expressions import int_

    sym = sympy.Symbol(flag)
    factors = (int_(sym), sympy.Piecewise((1, sym), (0, True)))
    last = max((n for n, st in enumerate(statements)
                if isinstance(st, Assign) and st.target == flag), default=-1)
    head, tail = tuple(statements[:last + 1]), tuple(statements[last + 1:])
    uses = any(isinstance(st, (Assign, Accumulate)) and any(st.expr.has(f) for f in factors)
               for st in walk_statements(tail))
    if not uses:
        return tuple(statements)

    def branch(value: int) -> tuple[Statement, ...]:
        return substitute(tail, {f: sympy.Integer(value) for f in factors})

    return (*head, Conditional(sym, branch(1), branch(0)))


def walk_statements(statements: Iterable[Statement]) -> Iterator[Statement]:
    """Every statement, depth first, conditionals before their bodies."""
    for stmt in statements:
        yield stmt
        if isinstance(stmt, Conditional):
            yield from walk_statements(stmt.body)
            yield from walk_statements(stmt.orelse)


def _names(expr: sympy.Basic) -> set[str]:
    return {s.name for s in sympy.sympify(expr).free_symbols}


def _written_name(stmt: Assign | Accumulate) -> str:
    return stmt.target if isinstance(stmt, Assign) else f"{stmt.target}_{stmt.side}"


def statement_symbols(stmt: Statement) -> tuple[set[str], set[str]]:
    """``(reads, writes)``: symbol names read and written by ``stmt`` (and its bodies).

    An ``Accumulate`` writes ``<target>_<side>``, the name synapse code reads it by.
    """
    if isinstance(stmt, (Assign, Accumulate)):
        return _names(stmt.expr), {_written_name(stmt)}
    if isinstance(stmt, Conditional):
        reads, writes = _names(stmt.condition), set()
        for inner in (*stmt.body, *stmt.orelse):
            r, w = statement_symbols(inner)
            reads |= r
            writes |= w
        return reads, writes
    return set(), set()


def _map_exprs(statements: Iterable[Statement], fn) -> Statements:
    """``statements`` with ``fn`` applied to every expression and condition."""
    out: list[Statement] = []
    for stmt in statements:
        if isinstance(stmt, (Assign, Accumulate)):
            out.append(replace(stmt, expr=fn(stmt.expr)))
        elif isinstance(stmt, Conditional):
            out.append(Conditional(fn(stmt.condition), _map_exprs(stmt.body, fn),
                                   _map_exprs(stmt.orelse, fn)))
        else:
            out.append(stmt)
    return tuple(out)


def _symbol_mapping(mapping: Mapping) -> dict:
    return {
        (sympy.Symbol(k) if isinstance(k, str) else k): sympy.sympify(v)
        for k, v in mapping.items()
    }


def substitute(statements: Iterable[Statement], mapping: Mapping) -> Statements:
    """Replace symbols (names or ``Symbol``) by expressions in every expression, at once."""
    subs = _symbol_mapping(mapping)
    return _map_exprs(statements, lambda e: sympy.sympify(e).xreplace(subs))


def _is_random(node: sympy.Basic) -> bool:
    return isinstance(node, sympy.Function) and type(node).__name__ in RANDOM_FUNCTIONS


def _has_call(expr: sympy.Basic, random_only: bool) -> bool:
    return any(
        _is_random(n) or (not random_only and isinstance(n, AppliedUndef))
        for n in sympy.preorder_traversal(expr)
    )


def _fmt(stmt: Statement) -> str:
    if isinstance(stmt, Assign):
        return f"{stmt.target} = {stmt.expr}"
    if isinstance(stmt, Accumulate):
        return f"{stmt.target}_{stmt.side} += {stmt.expr}"
    if isinstance(stmt, Conditional):
        return f"if {stmt.condition}: ..."
    return f"emit {stmt.event}"


def _fresh(prefix: str, taken: set[str]) -> Iterator[sympy.Symbol]:
    for k in count():
        if f"{prefix}{k}" not in taken:
            yield sympy.Symbol(f"{prefix}{k}")


def _all_names(statements: Iterable[Statement]) -> set[str]:
    names: set[str] = set()
    for stmt in statements:
        r, w = statement_symbols(stmt)
        names |= r | w
    return names


# ----------------------------------------------------------------------------- validate
def _is_boolean(expr: sympy.Basic, kinds: Mapping[str, str]) -> bool:
    if isinstance(expr, (sympy.logic.boolalg.Boolean, sympy.core.relational.Relational)):
        if isinstance(expr, sympy.Symbol):
            return kinds.get(expr.name) == "bool"
        return True
    return False


def _kind(expr: sympy.Basic, kinds: Mapping[str, str]) -> str:
    """``'bool'``, ``'int'`` or ``'float'``: the dtype family of an expression's value."""
    expr = sympy.sympify(expr)
    if isinstance(expr, sympy.Symbol):
        return kinds.get(expr.name, "float")
    if _is_boolean(expr, kinds):
        return "bool"
    if expr.is_Integer:
        return "int"
    if expr.is_Number:
        return "float"
    if isinstance(expr, sympy.Function) and type(expr).__name__ in INT_FUNCTIONS:
        return "int"
    if isinstance(expr, (sympy.Add, sympy.Mul, sympy.Mod, sympy.Max, sympy.Min)):
        if all(_kind(a, kinds) in ("int", "bool") for a in expr.args):
            return "int"
        return "float"
    if isinstance(expr, sympy.Pow):
        exp = expr.exp
        if _kind(expr.base, kinds) in ("int", "bool") and exp.is_Integer and exp >= 0:
            return "int"
    return "float"


def _family(dtype: str) -> str:
    return "bool" if dtype == "bool" else "int" if dtype in INT_DTYPES else "float"


class _Scope:
    """What code of one group may read and write, and how to report it."""

    def __init__(self, where: str, owner: str) -> None:
        self.where = where  # e.g. "neuron group 'exc', update"
        self.owner = owner  # e.g. "neuron group 'exc'"
        self.kinds: dict[str, str] = {}  # readable name -> 'float' | 'int' | 'bool'
        self.own: dict[str, Variable] = {}  # assignable variables
        self.constants: set[str] = set()  # parameters and built-ins: never written
        self.cross: dict[str, str] = {}  # 'v_post' -> 'post'
        self.targets: dict[str, dict[str, Variable] | None] = {}  # side -> variables
        self.functions: set[str] = set(KNOWN_FUNCTIONS)

    def at(self, where: str) -> _Scope:
        other = _Scope.__new__(_Scope)
        other.__dict__.update(self.__dict__)
        other.where = where
        return other

    def check_expr(self, expr: sympy.Basic, stmt: str, local: Mapping[str, str]) -> None:
        expr = sympy.sympify(expr)
        unknown = sorted(_names(expr) - set(self.kinds) - set(local))
        if unknown:
            known = sorted(set(self.kinds) | set(local))
            raise UndefinedSymbol(
                f"{self.where}: `{stmt}` uses undefined symbol(s) {unknown}; define them as "
                f"variables or parameters of {self.owner}, or assign them earlier "
                f"(known: {', '.join(known[:30])}{', ...' if len(known) > 30 else ''})"
            )
        funcs = {type(n).__name__ for n in sympy.preorder_traversal(expr)
                 if isinstance(n, AppliedUndef)}
        unknown = sorted(funcs - self.functions)
        if unknown:
            raise UndefinedSymbol(
                f"{self.where}: `{stmt}` calls unknown function(s) {unknown}; add a timed "
                f"array or a user function (FunctionIR) of that name to the network or use "
                f"one of {sorted(self.functions)}"
            )

    def check_condition(self, cond: sympy.Basic, what: str, local: Mapping[str, str]) -> None:
        self.check_expr(cond, what, local)
        if not _is_boolean(sympy.sympify(cond), {**self.kinds, **local}):
            raise DtypeError(
                f"{self.where}: {what} is not boolean; write a comparison such as "
                f"`{cond} > 0`"
            )

    def check(self, statements: Sequence[Statement], local: dict[str, str]) -> dict[str, str]:
        """Check ``statements`` in order; returns the locals defined after them."""
        local = dict(local)
        for stmt in statements:
            text = _fmt(stmt)
            if isinstance(stmt, Conditional):
                self.check_condition(stmt.condition, f"condition of `{text}`", local)
                body = self.check(stmt.body, local)
                orelse = self.check(stmt.orelse, local)
                # a local is defined after the conditional only if both branches define it
                local.update({k: v for k, v in body.items() if k in orelse})
            elif isinstance(stmt, Assign):
                self.check_expr(stmt.expr, text, local)
                self._check_assign(stmt, text, local)
            elif isinstance(stmt, Accumulate):
                self.check_expr(stmt.expr, text, local)
                self._check_accumulate(stmt, text, local)
        return local

    def _check_assign(self, stmt: Assign, text: str, local: dict[str, str]) -> None:
        name = stmt.target
        value = _kind(stmt.expr, {**self.kinds, **local})
        if name in self.own:
            var = self.own[name]
            if var.read_only:
                raise ReadOnlyWrite(
                    f"{self.where}: `{text}` writes read-only variable {name!r}; "
                    f"declare it writable or assign a new local instead"
                )
            _check_dtype(self.where, text, var, value)
        elif name in self.cross and is_side_uniform(stmt.expr, self.cross[name],
                                                   self.constants):
            pass  # every synapse writes the same value: order-independent
        elif name in self.cross:
            side = self.cross[name]
            raise CrossElementWrite(
                f"{self.where}: `{text}` assigns {side}-synaptic variable {name!r}, which many "
                f"synapses share; use `{name} += ...` (an accumulate) or a summed variable"
            )
        elif name in self.kinds:
            raise ReadOnlyWrite(
                f"{self.where}: `{text}` writes {name!r}, a parameter or built-in constant; "
                f"make it a variable of {self.owner} to change it"
            )
        else:
            local[name] = value

    def _check_accumulate(self, stmt: Accumulate, text: str, local: dict[str, str]) -> None:
        if stmt.side not in self.targets:
            raise CrossElementWrite(
                f"{self.where}: `{text}` accumulates into another element; only synapse "
                f"code can do that: assign the element's own variable instead"
            )
        variables = self.targets[stmt.side]
        if variables is None or stmt.target not in variables:
            raise ModelError(
                f"{self.where}: `{text}`: the {stmt.side}-synaptic group has no variable "
                f"{stmt.target!r}; add it to that group or fix the name"
            )
        var = variables[stmt.target]
        if var.read_only:
            raise ReadOnlyWrite(
                f"{self.where}: `{text}` accumulates into read-only variable "
                f"{stmt.target!r} of the {stmt.side}-synaptic group; declare it writable"
            )
        _check_dtype(self.where, text, var, _kind(stmt.expr, {**self.kinds, **local}))


def _check_dtype(where: str, text: str, var: Variable, value: str) -> None:
    family = _family(var.dtype)
    if family == "bool" and value != "bool":
        raise DtypeError(
            f"{where}: `{text}` stores a {value} value in boolean variable {var.name!r}; "
            f"write a comparison or a logical expression"
        )
    if family == "int" and value == "float":
        raise DtypeError(
            f"{where}: `{text}` stores a float value in {var.dtype} variable {var.name!r}; "
            f"convert it explicitly with int(...)"
        )


def _neuron_scope(group: NeuronGroupIR, functions: set[str], where: str) -> _Scope:
    scope = _Scope(where, f"neuron group {group.name!r}")
    scope.functions |= functions
    scope.kinds.update({"t": "float", "dt": "float", "i": "int", "N": "int"})
    scope.kinds.update({p.name: "float" for p in group.parameters})
    if any(e.refractory is not None for e in group.events):
        scope.kinds.update({"lastspike": "float", "not_refractory": "bool"})
    scope.constants = set(scope.kinds)
    for v in group.variables:
        scope.kinds[v.name] = _family(v.dtype)
        scope.own[v.name] = v
    return scope


def _validate_group(group: NeuronGroupIR, functions: set[str]) -> None:
    names = [v.name for v in group.variables] + [p.name for p in group.parameters]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ModelError(
            f"neuron group {group.name!r} defines {dupes} more than once; rename one of them"
        )
    base = _neuron_scope(group, functions, f"neuron group {group.name!r}")
    base.at(f"neuron group {group.name!r}, update").check(group.update, {})
    for event in group.events:
        scope = base.at(f"neuron group {group.name!r}, event {event.name!r}")
        scope.check_condition(event.condition, f"condition `{event.condition}`", {})
        if event.refractory is not None:
            scope.check_expr(event.refractory, f"refractory `{event.refractory}`", {})
        if event.multiplicity is not None and event.multiplicity not in names:
            raise ModelError(
                f"neuron group {group.name!r}, event {event.name!r}: multiplicity "
                f"{event.multiplicity!r} is not a variable of the group; declare it"
            )
        scope.at(f"neuron group {group.name!r}, reset of event {event.name!r}").check(
            event.reset, {}
        )


def _side_names(pop, suffix: str, scope: _Scope) -> dict[str, Variable] | None:
    """Add the ``x_<suffix>`` names of population ``pop`` to ``scope``."""
    scope.kinds[f"N_{suffix}"] = "int"
    if isinstance(pop, SynapseGroupIR):  # synapses on synapses: its synapses' variables
        scope.kinds.update({f"i_{suffix}": "int", f"j_{suffix}": "int"})
        for v in pop.variables:
            scope.kinds.setdefault(f"{v.name}_{suffix}", _family(v.dtype))
            scope.cross.setdefault(f"{v.name}_{suffix}", suffix)
        return {v.name: v for v in pop.variables}
    scope.kinds[f"lastspike_{suffix}"] = "float"
    if not isinstance(pop, NeuronGroupIR):
        return None
    for p in pop.parameters:
        scope.kinds.setdefault(f"{p.name}_{suffix}", "float")
    if any(e.refractory is not None for e in pop.events):
        scope.kinds.setdefault(f"not_refractory_{suffix}", "bool")
    for v in pop.variables:
        scope.kinds.setdefault(f"{v.name}_{suffix}", _family(v.dtype))
        scope.cross.setdefault(f"{v.name}_{suffix}", suffix)
    return {v.name: v for v in pop.variables}


def _validate_synapses(net: NetworkIR, syn: SynapseGroupIR, functions: set[str]) -> None:
    owner = f"synapses {syn.name!r}"
    pops = {}
    for side in ("pre", "post"):
        name = getattr(syn, side)
        try:
            pops[side] = net.endpoint(name)
        except ModelError:
            raise ModelError(
                f"{owner}: {side}-synaptic group {name!r} does not exist; add it to the "
                f"network or fix the name"
            ) from None
        if name == syn.name:
            raise ModelError(f"{owner}: a synapse group cannot be its own {side}-synaptic "
                             "group")
    scope = _Scope(owner, owner)
    scope.functions |= functions
    scope.kinds.update({"t": "float", "dt": "float", "i": "int", "j": "int", "N": "int"})
    scope.kinds.update({p.name: "float" for p in syn.parameters})
    for v in syn.variables:
        scope.kinds[v.name] = _family(v.dtype)
        scope.own[v.name] = v
    for side in ("pre", "post"):
        scope.targets[side] = _side_names(pops[side], side, scope)

    scope.at(f"{owner}, dynamics").check(syn.dynamics, {})
    for pw in syn.pathways:
        where = f"{owner}, pathway {pw.name!r}"
        source = pops[pw.source]
        events = (
            [e.name for e in source.events] if isinstance(source, NeuronGroupIR)
            else [] if isinstance(source, SynapseGroupIR) else ["spike"]
        )
        if pw.event not in events:
            raise ModelError(
                f"{where}: the {pw.source}-synaptic group {source.name!r} has no event "
                f"{pw.event!r} (it has {events})"
            )
        if isinstance(pw.delay, HeterogeneousDelay):
            var = next((v for v in syn.variables if v.name == pw.delay.variable), None)
            if var is None or _family(var.dtype) != "int":
                raise DtypeError(
                    f"{where}: heterogeneous delay variable {pw.delay.variable!r} must be an "
                    f"integer variable (int32, in steps) of {owner}; add it"
                )
        scope.at(where).check(pw.statements, {})
        accumulated = {
            f"{s.target}_{s.side}" for s in walk_statements(pw.statements)
            if isinstance(s, Accumulate)
        }
        for stmt in walk_statements(pw.statements):
            if isinstance(stmt, Conditional):
                reads = _names(stmt.condition)
            elif isinstance(stmt, (Assign, Accumulate)):
                reads = _names(stmt.expr)
            else:
                continue
            both = sorted(reads & accumulated)
            if both:
                raise WriteConflict(
                    f"{where}: `{_fmt(stmt)}` reads {both} which the same pathway "
                    f"accumulates into, so the result depends on the order of the "
                    f"synapses (Brian2 warns 'may not be well-defined' here: its numpy "
                    f"target runs each statement for all synapses before the next one, "
                    f"cython and C++ synapse by synapse); the engine has no such "
                    f"statement-by-statement pathway. Way out: move the increment to the "
                    f"neuron group's reset (once per spike, as most models intend), or "
                    f"read the value before the increment from a copy the group keeps"
                )
    for sv in syn.summed:
        where = f"{owner}, summed variable {sv.target}_{sv.side}"
        variables = scope.targets.get(sv.side)
        if variables is None or sv.target not in variables:
            raise ModelError(
                f"{where}: the {sv.side}-synaptic group has no variable {sv.target!r}; "
                f"add it there"
            )
        if variables[sv.target].read_only:
            raise ReadOnlyWrite(f"{where}: target {sv.target!r} is read-only")
        scope.at(where).check_expr(sv.expr, f"{sv.target}_{sv.side} = sum({sv.expr})", {})


def _validate_writers(net: NetworkIR) -> None:
    accumulated: dict[tuple[str, str], str] = {}
    summed: dict[tuple[str, str], str] = {}
    ranges: dict[tuple[str, str], list[tuple[int, int, str]]] = {}
    for syn in net.synapses:
        for pw in syn.pathways:
            for s in walk_statements(pw.statements):
                if isinstance(s, Accumulate):
                    group = syn.post if s.side == "post" else syn.pre
                    accumulated[(group, s.target)] = f"pathway {pw.name!r} of {syn.name!r}"
        for sv in syn.summed:
            group = syn.post if sv.side == "post" else syn.pre
            key = (group, sv.target)
            lo, hi = sv.target_range or (0, getattr(net.endpoint(group), "size", 2**62))
            overlap = any(lo < h and l_ < hi for l_, h, _ in ranges.get(key, ()))
            ranges.setdefault(key, []).append((lo, hi, syn.name))
            if key in summed and overlap:
                raise WriteConflict(
                    f"variable {sv.target!r} of neuron group {group!r} is the target of two "
                    f"summed variables ({summed[key]} and synapses {syn.name!r}); sum both "
                    f"into one variable each and add them in the group's equations"
                )
            summed[key] = f"synapses {syn.name!r}"
    for key, who in summed.items():
        if key in accumulated:
            raise WriteConflict(
                f"variable {key[1]!r} of neuron group {key[0]!r} is a summed variable of "
                f"{who} and accumulated by {accumulated[key]}; the sum would overwrite the "
                f"accumulation: give each its own variable"
            )
    for group in net.groups:
        for s in walk_statements(group.update):
            if isinstance(s, Assign) and (group.name, s.target) in summed:
                raise WriteConflict(
                    f"neuron group {group.name!r}, update: `{_fmt(s)}` assigns {s.target!r}, "
                    f"a summed variable of {summed[(group.name, s.target)]}; remove one"
                )


def _validate_monitors(net: NetworkIR) -> None:
    for mon in net.monitors:
        where = f"monitor {mon.name!r}"
        try:
            source = net.population(mon.source)
        except ModelError:
            try:
                source = net.synapse_group(mon.source)
            except ModelError:
                raise ModelError(
                    f"{where}: source {mon.source!r} is not a group of the network; "
                    f"fix the name"
                ) from None
        variables = {v.name for v in getattr(source, "variables", ())}
        if isinstance(source, NeuronGroupIR) and any(
            e.refractory is not None for e in source.events
        ):
            variables |= {"lastspike", "not_refractory"}
        wanted = mon.variables if isinstance(mon, (StateMonitorIR, EventMonitorIR)) else ()
        missing = sorted(set(wanted) - variables)
        if missing:
            raise ModelError(
                f"{where}: {mon.source!r} has no variable(s) {missing} "
                f"(it has {sorted(variables)})"
            )
        if isinstance(mon, (EventMonitorIR, RateMonitorIR)):
            events = (
                [e.name for e in source.events] if isinstance(source, NeuronGroupIR)
                else [] if isinstance(source, SynapseGroupIR) else ["spike"]
            )
            if mon.event not in events:
                raise ModelError(
                    f"{where}: {mon.source!r} has no event {mon.event!r} (it has {events})"
                )


def validate(net: NetworkIR) -> None:
    """Check ``net`` and raise the first problem found.

    Raises
    ------
    UndefinedSymbol, ReadOnlyWrite, CrossElementWrite, WriteConflict, DtypeError, ModelError
        All subclasses of :class:`~gpuspike.bridge.errors.ModelError`; the message names
        the group, the statement and the fix.
    """
    names = [
        o.name for o in (*net.groups, *net.synapses, *net.sources, *net.timed_arrays,
                         *net.functions, *net.monitors)
    ]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ModelError(f"names {dupes} are used by more than one object; rename them")
    functions = {ta.name for ta in net.timed_arrays} | {f.name for f in net.functions}
    for group in net.groups:
        _validate_group(group, functions)
    for syn in net.synapses:
        _validate_synapses(net, syn, functions)
    _validate_writers(net)
    _validate_monitors(net)


# ----------------------------------------------------------------------------- bake
def _number(value: float) -> sympy.Expr:
    value = float(value)
    return sympy.Integer(int(value)) if value.is_integer() else sympy.Float(value, 17)


def bake_parameters(statements: Iterable[Statement], params: Mapping[str, float]) -> Statements:
    """``statements`` with every parameter symbol replaced by its value (integral values
    become exact integers, so that ``1/tau`` with ``tau = 2`` folds to ``1/2``)."""
    return substitute(statements, {k: _number(v) for k, v in params.items()})


def _bake_event(event: EventIR, params: Mapping[str, float]) -> EventIR:
    subs = _symbol_mapping({k: _number(v) for k, v in params.items()})
    return replace(
        event,
        condition=sympy.sympify(event.condition).xreplace(subs),
        reset=bake_parameters(event.reset, params),
        refractory=None if event.refractory is None
        else sympy.sympify(event.refractory).xreplace(subs),
    )


def _bake_variables(variables: Iterable[Variable], params: Mapping) -> tuple[Variable, ...]:
    subs = _symbol_mapping({k: _number(v) for k, v in params.items()})
    return tuple(
        replace(v, init=ExpressionInit(sympy.sympify(v.init.expr).xreplace(subs)))
        if isinstance(v.init, ExpressionInit) else v
        for v in variables
    )


def bake_network(net: NetworkIR) -> NetworkIR:
    """``net`` with every group's and synapse group's parameters baked into its code
    (synapse code also sees ``p_pre``/``p_post``), and the parameters dropped."""
    params = {g.name: {p.name: p.value for p in g.parameters} for g in net.groups}
    groups = tuple(
        replace(
            g,
            parameters=(),
            variables=_bake_variables(g.variables, params[g.name]),
            update=bake_parameters(g.update, params[g.name]),
            events=tuple(_bake_event(e, params[g.name]) for e in g.events),
        )
        for g in net.groups
    )
    synapses = []
    for s in net.synapses:
        values = {p.name: p.value for p in s.parameters}
        for side in ("pre", "post"):
            values.update(
                {f"{k}_{side}": v for k, v in params.get(getattr(s, side), {}).items()}
            )
        subs = _symbol_mapping({k: _number(v) for k, v in values.items()})
        synapses.append(replace(
            s,
            parameters=(),
            variables=_bake_variables(s.variables, values),
            dynamics=bake_parameters(s.dynamics, values),
            pathways=tuple(
                replace(pw, statements=bake_parameters(pw.statements, values))
                for pw in s.pathways
            ),
            summed=tuple(replace(sv, expr=sympy.sympify(sv.expr).xreplace(subs))
                         for sv in s.summed),
        ))
    return replace(net, groups=groups, synapses=tuple(synapses))


# ----------------------------------------------------------------------------- CSE
def _segments(statements: Sequence[Statement]) -> Iterator[tuple[bool, list[Statement]]]:
    """Yield ``(straight, statements)``: straight-line segments in which no statement reads
    a symbol written earlier in the segment, and single non-straight statements."""
    segment: list[Statement] = []
    written: set[str] = set()
    for stmt in statements:
        if not isinstance(stmt, (Assign, Accumulate)):
            if segment:
                yield True, segment
            segment, written = [], set()
            yield False, [stmt]
            continue
        reads, writes = statement_symbols(stmt)
        if reads & written and segment:
            yield True, segment
            segment, written = [], set()
        segment.append(stmt)
        written |= writes
    if segment:
        yield True, segment


def _cse_segment(
    segment: list[Statement], names: Iterator[sympy.Symbol], available: dict
) -> list[Statement]:
    """CSE of one straight-line segment; ``available`` maps expressions to temporaries of
    earlier segments that are still valid, and receives this segment's temporaries."""
    # Each random call site becomes its own placeholder so that no temporary holds a draw.
    placeholders: dict[sympy.Symbol, sympy.Basic] = {}
    exprs = []
    for stmt in segment:
        calls = {n for n in sympy.preorder_traversal(stmt.expr) if _is_random(n)}
        mapping = {c: sympy.Dummy("draw") for c in calls}
        placeholders.update({d: c for c, d in mapping.items()})
        exprs.append(sympy.sympify(stmt.expr).xreplace(mapping).xreplace(available))
    temps, reduced = sympy.cse(exprs, symbols=names, order="none")
    kept: list[tuple[sympy.Symbol, sympy.Basic]] = []
    inline: dict[sympy.Symbol, sympy.Basic] = {}
    for sym, expr in temps:
        expr = expr.xreplace(inline)
        if expr.free_symbols & set(placeholders):
            inline[sym] = expr
        else:
            kept.append((sym, expr))
    out: list[Statement] = [Assign(sym.name, expr) for sym, expr in kept]
    for stmt, expr in zip(segment, reduced):
        out.append(replace(stmt, expr=expr.xreplace(inline).xreplace(placeholders)))
    available.update({expr: sym for sym, expr in kept})
    _invalidate(available, {w for stmt in segment for w in statement_symbols(stmt)[1]})
    return out


def _invalidate(available: dict, written: set[str]) -> None:
    """Forget temporaries that read a symbol written since they were computed (temporaries
    themselves are never rewritten, so one built on a forgotten one can no longer match)."""
    for expr, sym in list(available.items()):
        if _names(expr) & written or sym.name in written:
            del available[expr]


def common_subexpressions(statements: Sequence[Statement], prefix: str = "_cse") -> Statements:
    """Share repeated subexpressions through temporaries ``Assign('_cse<k>', e)``.

    Temporaries are computed at the start of a straight-line segment (see the module
    docstring) and reused by later segments while none of their symbols is written;
    ``Conditional`` bodies are treated on their own. Random draws are never shared, so each
    call site still makes one draw.
    """
    names = _fresh(prefix, _all_names(statements))
    return _cse(statements, names, {})


def _cse(statements: Sequence[Statement], names: Iterator[sympy.Symbol], available: dict
         ) -> Statements:
    out: list[Statement] = []
    for straight, segment in _segments(statements):
        if straight:
            out.extend(_cse_segment(segment, names, available))
            continue
        stmt = segment[0]
        if isinstance(stmt, Conditional):
            stmt = Conditional(stmt.condition, _cse(stmt.body, names, dict(available)),
                               _cse(stmt.orelse, names, dict(available)))
            _invalidate(available, statement_symbols(stmt)[1])
        out.append(stmt)
    return tuple(out)


# ----------------------------------------------------------------------------- hoisting
def _trivial(expr: sympy.Basic) -> bool:
    """Atoms and ``number*atom`` are not worth a temporary."""
    if expr.is_Atom:
        return True
    return isinstance(expr, sympy.Mul) and len(expr.args) == 2 and all(
        a.is_Atom for a in expr.args
    ) and any(a.is_Number for a in expr.args)


def hoist_invariants(
    statements: Sequence[Statement], invariant_symbols: Collection[str], prefix: str = "_inv"
) -> tuple[tuple[Assign, ...], Statements]:
    """Move subexpressions that depend only on ``invariant_symbols`` out of the loop.

    Returns ``(prelude, statements)``: ``prelude`` assigns ``_inv<k>`` from invariants only
    (run once per launch or per run); the rewritten statements use those names. Symbols
    that the statements assign are not invariant, whatever ``invariant_symbols`` says;
    random draws and function calls other than known maths stay in place.
    """
    written = {w for s in statements for w in statement_symbols(s)[1]}
    invariant = {sympy.Symbol(n) for n in invariant_symbols if n not in written}
    names = _fresh(prefix, _all_names(statements) | set(invariant_symbols))
    hoisted: dict[sympy.Basic, sympy.Symbol] = {}

    def is_invariant(e: sympy.Basic) -> bool:
        return e.free_symbols <= invariant and not _has_call(e, random_only=False)

    def hoist(e: sympy.Basic) -> sympy.Basic:
        if e not in hoisted:
            hoisted[e] = next(names)
        return hoisted[e]

    def visit(e: sympy.Basic) -> sympy.Basic:
        if e.is_Atom or not isinstance(e, sympy.Basic):
            return e
        if is_invariant(e):
            return e if _trivial(e) else hoist(e)
        if isinstance(e, (sympy.Add, sympy.Mul)):
            inv = [a for a in e.args if is_invariant(a)]
            rest = [visit(a) for a in e.args if not is_invariant(a)]
            if inv:
                part = e.func(*inv)
                rest.append(part if _trivial(part) else hoist(part))
            return e.func(*rest)
        return e.func(*(visit(a) for a in e.args))

    rewritten = _map_exprs(statements, lambda e: visit(sympy.sympify(e)))
    prelude = tuple(Assign(sym.name, expr) for expr, sym in hoisted.items())
    return prelude, rewritten

