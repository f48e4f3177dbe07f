"""Physical units and dimensional analysis: unit strings -> (SI scale, dimension).

A :class:`Dimension` holds the exponents of the seven SI base units. :func:`parse_unit`
turns strings such as ``'mV'``, ``'uF/cm**2'`` or ``'1/second'`` into the factor that
converts a value in that unit to SI and its dimension; :func:`dimension_of` checks a SymPy
expression (as built by :mod:`gpuspike.bridge.expressions`) for consistent dimensions.

Unit names follow Brian2 (``mvolt``, ``nsiemens``, ``Mohm``, ``umetre``) and PyNN (``mV``,
``nS``, ``nA``, ``ms``); every base unit takes the SI prefixes ``p n u µ m c d k M G``.
"""

from __future__ import annotations

import ast
import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from fractions import Fraction
from types import MappingProxyType

import sympy
from sympy.core.relational import Relational
from sympy.logic.boolalg import BooleanAtom, BooleanFunction

from .errors import UnitError

Exponent = int | Fraction


# ----------------------------------------------------------------------------- dimensions
@dataclass(frozen=True)
class Dimension:
    """Exponents of the SI base units metre, kilogram, second, ampere, kelvin, mole, candela.

    Exponents are stored as :class:`fractions.Fraction` (``sqrt`` gives half powers).
    ``Dimension(kg=1, m=2, s=-3, A=-1)`` is the volt.
    """

    m: Exponent = 0
    kg: Exponent = 0
    s: Exponent = 0
    A: Exponent = 0
    K: Exponent = 0
    mol: Exponent = 0
    cd: Exponent = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, Fraction(getattr(self, f.name)))

    @property
    def exponents(self) -> tuple[Fraction, ...]:
        return tuple(getattr(self, f.name) for f in fields(self))

    @property
    def is_dimensionless(self) -> bool:
        return not any(self.exponents)

    def __mul__(self, other: Dimension) -> Dimension:
        if not isinstance(other, Dimension):
            return NotImplemented
        return Dimension(*(a + b for a, b in zip(self.exponents, other.exponents)))

    def __truediv__(self, other: Dimension) -> Dimension:
        if not isinstance(other, Dimension):
            return NotImplemented
        return Dimension(*(a - b for a, b in zip(self.exponents, other.exponents)))

    def __pow__(self, power: int | Fraction) -> Dimension:
        p = Fraction(power)
        return Dimension(*(a * p for a in self.exponents))

    def __str__(self) -> str:
        named = _DIMENSION_NAMES.get(self)
        if named is not None:
            return named
        parts = []
        for f, e in zip(fields(self), self.exponents):
            if e == 0:
                continue
            parts.append(f.name if e == 1 else f"{f.name}^{e}")
        return " ".join(parts)


DIMENSIONLESS = Dimension()
_M, _KG, _S, _A = Dimension(m=1), Dimension(kg=1), Dimension(s=1), Dimension(A=1)
_K, _MOL, _CD = Dimension(K=1), Dimension(mol=1), Dimension(cd=1)
VOLT = _KG * _M**2 / _S**3 / _A
SIEMENS = _A**2 * _S**3 / _KG / _M**2
FARAD = _A**2 * _S**4 / _KG / _M**2
OHM = DIMENSIONLESS / SIEMENS
HERTZ = DIMENSIONLESS / _S
COULOMB = _A * _S
JOULE = _KG * _M**2 / _S**2
WATT = JOULE / _S
MOLAR = _MOL / _M**3

#: How :meth:`Dimension.__str__` names the common dimensions.
_DIMENSION_NAMES: dict[Dimension, str] = {
    DIMENSIONLESS: "dimensionless",
    _M: "metre", _KG: "kilogram", _S: "second", _A: "amp", _K: "kelvin", _MOL: "mole",
    _CD: "candela", VOLT: "volt", SIEMENS: "siemens", FARAD: "farad", OHM: "ohm",
    HERTZ: "hertz", COULOMB: "coulomb", JOULE: "joule", WATT: "watt", MOLAR: "molar",
}

# ----------------------------------------------------------------------------- unit table
_PREFIXES: dict[str, float] = {
    "p": 1e-12, "n": 1e-9, "u": 1e-6, "µ": 1e-6, "μ": 1e-6, "m": 1e-3, "c": 1e-2,
    "d": 1e-1, "k": 1e3, "M": 1e6, "G": 1e9,
}

# (names taking prefixes, SI scale, dimension)
_BASE_UNITS: tuple[tuple[tuple[str, ...], float, Dimension], ...] = (
    (("volt", "V"), 1.0, VOLT),
    (("amp", "ampere", "A"), 1.0, _A),
    (("second", "s"), 1.0, _S),
    (("siemens", "S"), 1.0, SIEMENS),
    (("farad", "F"), 1.0, FARAD),
    (("ohm", "Ω", "Ω"), 1.0, OHM),
    (("hertz", "Hz"), 1.0, HERTZ),
    (("metre", "meter", "m"), 1.0, _M),
    (("gram", "gramme", "g"), 1e-3, _KG),
    (("mole", "mol"), 1.0, _MOL),
    (("molar", "M"), 1e3, MOLAR),
    (("coulomb", "C"), 1.0, COULOMB),
    (("watt", "W"), 1.0, WATT),
    (("joule", "J"), 1.0, JOULE),
    (("kelvin", "K"), 1.0, _K),
    (("candela", "cd"), 1.0, _CD),
    (("litre", "liter", "l", "L"), 1e-3, _M**3),
)


def _build_table() -> dict[str, tuple[float, Dimension]]:
    table: dict[str, tuple[float, Dimension]] = {}
    for names, scale, dim in _BASE_UNITS:
        for name in names:
            for prefix, factor in _PREFIXES.items():
                table.setdefault(prefix + name, (factor * scale, dim))
    # Unprefixed names win over any prefixed spelling that happens to coincide.
    for names, scale, dim in _BASE_UNITS:
        for name in names:
            table[name] = (scale, dim)
    table["kilogram"] = table["kg"] = (1.0, _KG)
    return table


_UNITS: dict[str, tuple[float, Dimension]] = _build_table()
#: Unit name -> factor converting a value in that unit to SI (``'mV'`` -> ``1e-3``).
UNIT_SCALES: Mapping[str, float] = MappingProxyType({k: s for k, (s, _) in _UNITS.items()})
#: Unit name -> its dimension.
UNIT_DIMENSIONS: Mapping[str, Dimension] = MappingProxyType(
    {k: d for k, (_, d) in _UNITS.items()}
)


# ----------------------------------------------------------------------------- parse_unit
def parse_unit(text: str) -> tuple[float, Dimension]:
    """Parse a unit string into ``(SI scale, dimension)``.

    Parameters
    ----------
    text
        A product, quotient or power of unit names and numbers: ``'volt'``, ``'mV'``,
        ``'siemens/meter**2'``, ``'uF/cm**2'``, ``'1/second'``, ``'Hz'``. ``'1'`` and ``''``
        are dimensionless.

    Raises
    ------
    UnitError
        Unknown unit names (with close matches) or malformed strings.
    """
    stripped = text.strip()
    if stripped in ("", "1"):
        return 1.0, DIMENSIONLESS
    try:
        tree = ast.parse(stripped, mode="eval")
    except (SyntaxError, ValueError) as err:
        raise UnitError(f"cannot parse unit {text!r}: {err}") from None
    return _unit_of(tree.body, text)


def _unit_of(node: ast.AST, text: str) -> tuple[float, Dimension]:
    if isinstance(node, ast.Name):
        if node.id not in _UNITS:
            close = difflib.get_close_matches(node.id, list(_UNITS), n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise UnitError(f"unknown unit {node.id!r} in {text!r}{hint}")
        return _UNITS[node.id]
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return float(node.value), DIMENSIONLESS
    if isinstance(node, ast.BinOp):
        ls, ld = _unit_of(node.left, text)
        if isinstance(node.op, ast.Pow):
            p = _exponent_of(node.right, text)
            return ls ** float(p), ld**p
        rs, rd = _unit_of(node.right, text)
        if isinstance(node.op, ast.Mult):
            return ls * rs, ld * rd
        if isinstance(node.op, ast.Div):
            return ls / rs, ld / rd
    raise UnitError(f"unit {text!r}: only unit names, numbers, *, / and ** are allowed")


def _exponent_of(node: ast.AST, text: str) -> Fraction:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        p = _exponent_of(node.operand, text)
        return -p if isinstance(node.op, ast.USub) else p
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return Fraction(node.value).limit_denominator(1000)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        return _exponent_of(node.left, text) / _exponent_of(node.right, text)
    raise UnitError(f"unit {text!r}: exponents must be numbers")


# ----------------------------------------------------------------------------- analysis
def _is_wildcard(expr: sympy.Basic) -> bool:
    """Zero and infinities fit any dimension (``clip(v, 0, inf)``, ``where(c, v, 0)``)."""
    return bool(expr.is_zero) or expr in (sympy.oo, -sympy.oo)


def _same(exprs: list[sympy.Basic], dims: Mapping[str, Dimension], what: str) -> Dimension:
    result: Dimension | None = None
    first: sympy.Basic | None = None
    for e in exprs:
        d = dimension_of(e, dims)
        if _is_wildcard(e):
            continue
        if result is None:
            result, first = d, e
        elif d != result:
            raise UnitError(
                f"inconsistent units: {what} {result} ({first}) to {d} ({e}); "
                "convert one side so both have the same dimension"
            )
    return DIMENSIONLESS if result is None else result


def _dimensionless_args(expr: sympy.Basic, dims: Mapping[str, Dimension]) -> None:
    for a in expr.args:
        d = dimension_of(a, dims)
        if not d.is_dimensionless:
            raise UnitError(
                f"{expr.func.__name__}() needs a dimensionless argument, got {d} in {expr}; "
                "divide by a quantity of the same unit"
            )


def dimension_of(expr: sympy.Basic, dims: Mapping[str, Dimension]) -> Dimension:
    """Dimension of ``expr``; symbols are looked up in ``dims``, then in the unit table.

    Booleans (comparisons, ``and``/``or``/``not``) are dimensionless once their operands
    are consistent. Zero and infinities are compatible with every dimension.

    Raises
    ------
    UnitError
        Unknown symbols, sums / comparisons / branches with different dimensions,
        dimensioned arguments of ``exp``, ``log``, ``sin``, ..., non-numeric exponents of
        dimensioned bases.
    """
    from .expressions import clip, expm1, exprel, int_, log1p, rand, randn

    if isinstance(expr, sympy.Symbol):
        if expr.name in dims:
            return dims[expr.name]
        if expr.name in UNIT_DIMENSIONS:
            return UNIT_DIMENSIONS[expr.name]
        close = difflib.get_close_matches(expr.name, list(dims), n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise UnitError(f"no unit known for symbol {expr.name!r}{hint}")
    if expr.is_number and not expr.free_symbols and not expr.atoms(sympy.Function):
        return DIMENSIONLESS
    if isinstance(expr, (BooleanAtom, sympy.NumberSymbol, sympy.Number)):
        return DIMENSIONLESS
    if isinstance(expr, Relational):
        _same(list(expr.args), dims, "comparing")
        return DIMENSIONLESS
    if isinstance(expr, BooleanFunction):
        for a in expr.args:
            dimension_of(a, dims)
        return DIMENSIONLESS
    if isinstance(expr, sympy.Add):
        return _same(list(expr.args), dims, "adding")
    if isinstance(expr, sympy.Mul):
        result = DIMENSIONLESS
        for a in expr.args:
            result = result * dimension_of(a, dims)
        return result
    if isinstance(expr, sympy.Pow):
        base, exp = expr.args
        bd = dimension_of(base, dims)
        ed = dimension_of(exp, dims)
        if not ed.is_dimensionless:
            raise UnitError(f"exponent of {expr} has unit {ed}; exponents are dimensionless")
        if bd.is_dimensionless:
            return DIMENSIONLESS
        if not exp.is_Rational:
            if exp.is_Float and math.isfinite(float(exp)):
                return bd ** Fraction(float(exp)).limit_denominator(1000)
            raise UnitError(f"{expr}: a base with unit {bd} needs a numeric exponent")
        return bd ** Fraction(int(exp.p), int(exp.q))
    if isinstance(expr, sympy.Piecewise):
        for _, cond in expr.args:
            dimension_of(cond, dims)
        return _same([e for e, _ in expr.args], dims, "choosing between")
    if isinstance(expr, (sympy.Min, sympy.Max, clip, sympy.Mod)):
        return _same(list(expr.args), dims, f"{expr.func.__name__}() of")
    if isinstance(expr, (sympy.Abs, sympy.floor, sympy.ceiling, int_)):
        return dimension_of(expr.args[0], dims)
    if isinstance(expr, sympy.sign):
        dimension_of(expr.args[0], dims)
        return DIMENSIONLESS
    if isinstance(expr, (rand, randn)):
        return DIMENSIONLESS
    if isinstance(expr, (sympy.exp, sympy.log, exprel, expm1, log1p, sympy.sin, sympy.cos,
                         sympy.tan,
                         sympy.asin, sympy.acos, sympy.atan, sympy.sinh, sympy.cosh,
                         sympy.tanh)):
        _dimensionless_args(expr, dims)
        return DIMENSIONLESS
    if isinstance(expr, sympy.core.function.AppliedUndef):
        name = expr.func.__name__
        for a in expr.args:
            dimension_of(a, dims)
        if name not in dims:
            raise UnitError(f"no unit known for the values of function {name!r}")
        return dims[name]
    raise UnitError(f"cannot infer the unit of {expr} ({type(expr).__name__})")


def check_assignment(
    target_dim: Dimension,
    expr: sympy.Basic,
    dims: Mapping[str, Dimension],
    *,
    target: str = "the target",
) -> None:
    """Raise :class:`UnitError` unless ``expr`` has the dimension ``target_dim``.

    ``target`` names the assigned variable in the message.
    """
    d = dimension_of(expr, dims)
    if d != target_dim and not _is_wildcard(expr):
        raise UnitError(
            f"cannot assign {expr} (unit {d}) to {target} (unit {target_dim}); "
            "the expression must have the unit of the variable"
        )
