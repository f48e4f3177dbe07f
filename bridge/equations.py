"""Equation strings in Brian2's syntax -> ODEs, subexpressions and per-element variables.

One definition per line (``#`` starts a comment)::

    dv/dt = (I - v) / tau : volt (unless refractory)   # differential equation
    I = I0 * sin(2*pi*f*t) : amp                        # subexpression (inlined)
    g : siemens                                         # per-element variable
    tau : second (constant)                             # read-only per-element variable
    n : integer                                         # int32 variable; also 'boolean'
    Isyn_post = g * (v_pre - v_post) : amp (summed)     # synapses: summed variable
    dx/dt = -x / tau_x : 1 (event-driven)               # synapses: updated on events

Units are checked for being known (:func:`~.units.parse_unit`); expressions are parsed
with :func:`~.expressions.parse_expression` (no ``eval``). Subexpressions are substituted
into everything that uses them, innermost first.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from fractions import Fraction

import sympy

from .errors import ModelError
from .expressions import parse_expression
from .units import DIMENSIONLESS, UNIT_DIMENSIONS, Dimension, check_assignment, parse_unit

_DIFF = re.compile(r"^d\s*(?P<name>[A-Za-z_]\w*)\s*/\s*dt\s*=\s*(?P<expr>.+?)\s*:\s*"
                   r"(?P<unit>[^()]+?)\s*(\((?P<flags>[^)]*)\))?\s*$")
_SUB = re.compile(r"^(?P<name>[A-Za-z_]\w*)\s*=\s*(?P<expr>.+?)\s*:\s*(?P<unit>[^()]+?)\s*"
                  r"(\((?P<flags>[^)]*)\))?\s*$")
_PARAM = re.compile(r"^(?P<name>[A-Za-z_]\w*)\s*:\s*(?P<unit>[^()]+?)\s*"
                    r"(\((?P<flags>[^)]*)\))?\s*$")
KNOWN_FLAGS = {"unless refractory", "constant", "shared", "summed", "event-driven",
               "clock-driven", "linked", "constant over dt"}


@dataclass(frozen=True)
class EquationLine:
    """One parsed line: ``kind`` is ``'diff'``, ``'sub'`` or ``'var'``."""

    kind: str
    name: str
    expr: sympy.Basic | None
    unit: str
    dtype: str
    flags: tuple[str, ...]
    #: the expression as written, unit names kept as symbols (for unit checks)
    written: sympy.Basic | None = None


@dataclass(frozen=True)
class Equations:
    """Parsed equations; subexpressions already substituted into ``diff`` and ``sub`` lines."""

    lines: tuple[EquationLine, ...]

    def of_kind(self, kind: str, flag: str | None = None) -> tuple[EquationLine, ...]:
        return tuple(ln for ln in self.lines if ln.kind == kind
                     and (flag is None or flag in ln.flags))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(ln.name for ln in self.lines)

    def odes(self, *, event_driven: bool | None = False) -> dict[str, sympy.Basic]:
        """name -> rhs of the differential equations (event-driven ones or the others)."""
        out = {}
        for ln in self.of_kind("diff"):
            ed = "event-driven" in ln.flags
            if event_driven is None or ed == event_driven:
                out[ln.name] = ln.expr
        return out

    def subexpressions(self) -> dict[str, sympy.Basic]:
        return {ln.name: ln.expr for ln in self.of_kind("sub")}


def _unit_dtype(unit: str, what: str) -> tuple[str, str]:
    u = unit.strip()
    if u in ("integer", "int"):
        return "1", "int32"
    if u in ("boolean", "bool"):
        return "1", "bool"
    try:
        parse_unit(u)
    except ModelError as exc:
        raise ModelError(f"{what}: {exc}") from None
    return u, "float"


def parse_equations(text: str, *, functions=(), units: bool = True,
                    external: Collection[str] | None = None) -> Equations:
    """Parse an equation block (see the module docstring).

    ``external``: names the equations may use besides their own (parameters, ``t``, ...).
    When given, any other name is an error, and none of these names is read as a unit
    (a variable ``g`` is not a gram); when ``None``, unknown names are accepted.
    """
    matches = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        what = f"equations line {lineno} ({line!r})"
        for kind, rx in (("diff", _DIFF), ("sub", _SUB), ("var", _PARAM)):  # noqa: B007
            m = rx.match(line)
            if m:
                break
        else:
            raise ModelError(
                f"{what}: not an equation; use 'dx/dt = expr : unit', 'x = expr : unit' or "
                "'x : unit', optionally followed by flags in parentheses")
        matches.append((what, kind, m))
    defined = {m.group("name") for _, _, m in matches}
    allowed = None
    if external is not None:
        allowed = defined | set(external) | {"t", "dt", "xi"} | set(
            re.findall(r"\b(xi_\w+)\b", text))
    raw: list[EquationLine] = []
    for what, kind, m in matches:
        flags = tuple(f.strip() for f in (m.group("flags") or "").split(",") if f.strip())
        for f in flags:
            if f not in KNOWN_FLAGS:
                raise ModelError(f"{what}: unknown flag {f!r}; known: {sorted(KNOWN_FLAGS)}")
        unit, dtype = _unit_dtype(m.group("unit"), what)
        expr = written = None
        if kind != "var":
            expr = parse_expression(m.group("expr"), functions=functions, units=units,
                                    allowed=allowed)
            written = parse_expression(m.group("expr"), functions=functions, units=False)
        raw.append(EquationLine(kind, m.group("name"), expr, unit, dtype, flags, written))
    names = [ln.name for ln in raw]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ModelError(f"equations define {sorted(dup)} more than once")
    # substitute subexpressions (they may use each other; no cycles)
    subs = {ln.name: ln.expr for ln in raw if ln.kind == "sub" and "summed" not in ln.flags}
    resolved: dict[str, sympy.Basic] = {}

    def resolve(name: str, stack: tuple[str, ...]) -> sympy.Basic:
        if name in resolved:
            return resolved[name]
        if name in stack:
            raise ModelError(f"subexpressions refer to each other in a cycle: "
                             f"{' -> '.join((*stack, name))}")
        e = subs[name]
        inner = {sympy.Symbol(s): resolve(s, (*stack, name))
                 for s in (x.name for x in e.free_symbols) if s in subs}
        resolved[name] = e.xreplace(inner) if inner else e
        return resolved[name]

    for n in subs:
        resolve(n, ())
    mapping = {sympy.Symbol(n): e for n, e in resolved.items()}
    lines = tuple(EquationLine(ln.kind, ln.name,
                               None if ln.expr is None else ln.expr.xreplace(mapping),
                               ln.unit, ln.dtype, ln.flags, ln.written) for ln in raw)
    return Equations(lines)


def check_units(eqs: Equations, known: Mapping[str, Dimension], what: str) -> None:
    """Dimensional analysis of every equation whose symbols all have known units.

    ``known``: dimensions of external names (parameters given with units). Names of
    unknown dimension (plain SI floats) make an equation unchecked, never an error.
    ``dx/dt = f : u`` needs ``f`` in ``u / second``; ``y = f : u`` needs ``f`` in ``u``.
    """
    dims: dict[str, Dimension] = dict(known)
    second = parse_unit("second")[1]
    dims.update({"t": second, "dt": second, "i": DIMENSIONLESS, "j": DIMENSIONLESS,
                 "N": DIMENSIONLESS})
    for ln in eqs.lines:
        dims[ln.name] = parse_unit(ln.unit)[1]
    for ln in eqs.lines:
        if ln.written is None or "summed" in ln.flags:
            continue
        local = dict(dims)
        for sym in ln.written.free_symbols:
            if sym.name == "xi" or sym.name.startswith("xi_"):
                local[sym.name] = second ** Fraction(-1, 2)
        names = {s.name for s in ln.written.free_symbols} | {
            f.func.__name__ for f in ln.written.atoms(sympy.core.function.AppliedUndef)}
        if not names <= set(local) | set(UNIT_DIMENSIONS):
            continue  # a parameter given as a bare number: its unit is unknown
        target = dims[ln.name] / second if ln.kind == "diff" else dims[ln.name]
        lhs = f"d{ln.name}/dt" if ln.kind == "diff" else ln.name
        check_assignment(target, ln.written, local, target=f"{what}: {lhs}")
