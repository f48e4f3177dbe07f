"""Safe parsing of model expression and statement strings into SymPy and IR statements.

Strings are parsed with :mod:`ast` and the tree is walked against a whitelist; nothing a
user writes is ever evaluated (no ``eval``, ``exec``, ``sympify`` or ``parse_expr``).

Grammar (Brian2's): names, numbers, ``pi``, ``e``, ``inf``, ``True``, ``False``;
``+ - * / ** // %``, unary ``- + not``, ``and``, ``or``, comparisons (chained ones become
``And``), ``a if c else b``; the functions in :data:`FUNCTIONS`; timed arrays named in
``functions``. A boolean used as a number (``w * (v > 0)``) becomes
``Piecewise((1, cond), (0, True))``.

Each ``rand()`` / ``randn()`` call site of one ``parse_*`` call becomes ``rand(k)`` /
``randn(k)`` with a distinct id ``k = 0, 1, 2, ...`` in reading order.
"""

from __future__ import annotations

import ast
import difflib
import math
import warnings
from collections.abc import Callable, Collection

import mpmath
import sympy
from sympy.core.relational import Relational
from sympy.logic.boolalg import BooleanAtom, BooleanFunction

from .errors import ExpressionError
from .ir import Accumulate, Assign, Statement
from .units import UNIT_SCALES

__all__ = [
    "FUNCTIONS", "binomial", "clip", "collect_random_calls", "expm1", "exprel",
    "free_symbols_names", "log1p",
    "int_", "poisson",
    "parse_expression", "parse_statements", "rand", "randn",
]


# ----------------------------------------------------------------------------- functions
def _numeric(arg: sympy.Basic, prec: int) -> sympy.Float | None:
    value = arg.evalf(prec_to_dps(prec))
    return value if isinstance(value, sympy.Float) else None


def prec_to_dps(prec: int) -> int:
    return max(1, mpmath.libmp.prec_to_dps(prec))


class exprel(sympy.Function):
    """``exprel(x) = (exp(x) - 1) / x``, with ``exprel(0) = 1`` (numerically stable)."""

    nargs = 1

    @classmethod
    def eval(cls, x: sympy.Basic) -> sympy.Basic | None:
        if x.is_zero:
            return sympy.Integer(1)
        if isinstance(x, sympy.Float):
            return cls._value(x, x._prec)
        return None

    @staticmethod
    def _value(x: sympy.Float, prec: int) -> sympy.Float:
        with mpmath.workprec(prec):
            v = mpmath.mpf(x._mpf_)
            result = mpmath.mpf(1) if v == 0 else mpmath.expm1(v) / v
        return sympy.Float(result, precision=prec)

    def _eval_evalf(self, prec: int) -> sympy.Float | None:
        x = _numeric(self.args[0], prec)
        return None if x is None else self._value(x, prec)

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        x = self.args[0]
        return (x * sympy.exp(x) - sympy.exp(x) + 1) / x**2

    def _eval_rewrite_as_exp(self, x: sympy.Basic, **kwargs: object) -> sympy.Expr:
        return sympy.Piecewise((1, sympy.Eq(x, 0)), ((sympy.exp(x) - 1) / x, True))


class _Accurate(sympy.Function):
    """A one-argument function evaluated with mpmath's accurate implementation."""

    nargs = 1
    _mpmath = ""

    @classmethod
    def eval(cls, x: sympy.Basic) -> sympy.Basic | None:
        if x.is_zero:
            return sympy.Integer(0)
        return None

    def _eval_evalf(self, prec: int) -> sympy.Float | None:
        x = _numeric(self.args[0], prec)
        if x is None:
            return None
        with mpmath.workprec(prec):
            return sympy.Float(getattr(mpmath, self._mpmath)(mpmath.mpf(x._mpf_)),
                               precision=prec)


class expm1(_Accurate):  # noqa: N801 - named as the numpy/Brian2 function
    """``exp(x) - 1``, accurate near 0."""

    _mpmath = "expm1"

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return sympy.exp(self.args[0])


class log1p(_Accurate):  # noqa: N801 - named as the numpy/Brian2 function
    """``log(1 + x)``, accurate near 0."""

    _mpmath = "log1p"

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return 1 / (1 + self.args[0])


class clip(sympy.Function):
    """``clip(x, lo, hi) = min(max(x, lo), hi)``."""

    nargs = 3

    @classmethod
    def eval(cls, x: sympy.Basic, lo: sympy.Basic, hi: sympy.Basic) -> sympy.Basic | None:
        if all(isinstance(a, sympy.Number) for a in (x, lo, hi)):
            return sympy.Min(sympy.Max(x, lo), hi)
        return None

    def _eval_evalf(self, prec: int) -> sympy.Basic | None:
        vals = [a.evalf(prec_to_dps(prec)) for a in self.args]
        if all(isinstance(v, sympy.Number) for v in vals):
            return sympy.Min(sympy.Max(vals[0], vals[1]), vals[2])
        return None


class int_(sympy.Function):
    """``int(x)``: truncation toward zero (``int(-2.5) == -2``)."""

    nargs = 1

    @classmethod
    def eval(cls, x: sympy.Basic) -> sympy.Basic | None:
        if isinstance(x, sympy.Number) and x.is_finite:
            return sympy.Integer(int(x))
        return None

    def _eval_evalf(self, prec: int) -> sympy.Basic | None:
        x = _numeric(self.args[0], prec)
        return None if x is None or not x.is_finite else sympy.Float(int(x), precision=prec)


class _RandomDraw(sympy.Function):
    """A random draw: never evaluated symbolically (the first argument is the call site id,
    so SymPy must not treat it as a value or look for an mpmath function of that name)."""

    def _eval_evalf(self, prec: int) -> None:
        return None

    def _eval_is_real(self) -> bool:
        return True


class rand(_RandomDraw):  # noqa: N801 - named as the Brian2 function
    """One uniform draw in [0, 1); the argument is the call site id."""

    nargs = 1


class randn(_RandomDraw):  # noqa: N801 - named as the Brian2 function
    """One standard normal draw; the argument is the call site id."""

    nargs = 1


class binomial(_RandomDraw):  # noqa: N801 - named as the Brian2 function
    """One Binomial(n, p) draw: ``binomial(k, n, p)``, ``k`` the call site id."""

    nargs = 3


class poisson(_RandomDraw):  # noqa: N801 - named as the Brian2 function
    """One Poisson(lam) draw: ``poisson(k, lam)``, ``k`` the call site id."""

    nargs = 2


def _where(c: sympy.Basic, a: sympy.Basic, b: sympy.Basic) -> sympy.Basic:
    return sympy.Piecewise((a, c), (b, True))


# name -> (arity, builder, argument kinds: 'n' number / 'b' boolean)
_Builder = Callable[..., sympy.Basic]
_TABLE: dict[str, tuple[int, _Builder, str]] = {
    "exp": (1, sympy.exp, "n"),
    "log": (1, sympy.log, "n"),
    "log10": (1, lambda x: sympy.log(x, 10), "n"),
    "sqrt": (1, sympy.sqrt, "n"),
    "sin": (1, sympy.sin, "n"),
    "cos": (1, sympy.cos, "n"),
    "tan": (1, sympy.tan, "n"),
    "arcsin": (1, sympy.asin, "n"),
    "asin": (1, sympy.asin, "n"),
    "arccos": (1, sympy.acos, "n"),
    "acos": (1, sympy.acos, "n"),
    "arctan": (1, sympy.atan, "n"),
    "atan": (1, sympy.atan, "n"),
    "sinh": (1, sympy.sinh, "n"),
    "cosh": (1, sympy.cosh, "n"),
    "tanh": (1, sympy.tanh, "n"),
    "abs": (1, sympy.Abs, "n"),
    "floor": (1, sympy.floor, "n"),
    "ceil": (1, sympy.ceiling, "n"),
    "sign": (1, sympy.sign, "n"),
    "clip": (3, clip, "nnn"),
    "exprel": (1, exprel, "n"),
    "expm1": (1, expm1, "n"),
    "log1p": (1, log1p, "n"),
    "int": (1, int_, "n"),
    "minimum": (2, sympy.Min, "nn"),
    "maximum": (2, sympy.Max, "nn"),
    "where": (3, _where, "bnn"),
    "rand": (0, rand, ""),
    "randn": (0, randn, ""),
    "binomial": (2, binomial, "nn"),
    "poisson": (1, poisson, "n"),
}
#: The whitelisted function names of the expression language.
FUNCTIONS: frozenset[str] = frozenset(_TABLE)
_CONSTANTS: dict[str, sympy.Basic] = {"pi": sympy.pi, "e": sympy.E, "inf": sympy.oo}
_BINOPS: dict[type, Callable[[sympy.Basic, sympy.Basic], sympy.Basic]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
    ast.FloorDiv: lambda a, b: sympy.floor(a / b),
    ast.Mod: sympy.Mod,
}
_COMPARE: dict[type, Callable[[sympy.Basic, sympy.Basic], sympy.Basic]] = {
    ast.Lt: sympy.Lt, ast.LtE: sympy.Le, ast.Gt: sympy.Gt, ast.GtE: sympy.Ge,
    ast.Eq: sympy.Eq, ast.NotEq: sympy.Ne,
}
_CONSTRUCT_NAMES: dict[type, str] = {
    ast.Attribute: "attribute access", ast.Subscript: "subscripts", ast.Lambda: "lambda",
    ast.Starred: "starred arguments", ast.List: "lists", ast.Tuple: "tuples",
    ast.Dict: "dicts", ast.Set: "sets", ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions", ast.DictComp: "comprehensions",
    ast.GeneratorExp: "generator expressions", ast.JoinedStr: "f-strings",
    ast.NamedExpr: "assignment expressions (:=)", ast.Await: "await", ast.Yield: "yield",
    ast.YieldFrom: "yield", ast.Slice: "slices", ast.BitAnd: "the operator &",
    ast.BitOr: "the operator |", ast.BitXor: "the operator ^ (use ** for powers)",
    ast.LShift: "the operator <<", ast.RShift: "the operator >>",
    ast.MatMult: "the operator @", ast.Invert: "the operator ~ (use not)",
    ast.Is: "the operator is", ast.IsNot: "the operator is not", ast.In: "the operator in",
    ast.NotIn: "the operator not in",
}
_ALLOWED_HINT = (
    "allowed: names, numbers, + - * / ** // %, comparisons, and/or/not, "
    "'a if c else b' and the functions " + ", ".join(sorted(FUNCTIONS))
)
#: Beyond this many bits an exact number is refused (``9**9**9`` would never finish).
_MAX_BITS = 100_000


def _is_bool(expr: sympy.Basic) -> bool:
    return isinstance(expr, (Relational, BooleanFunction, BooleanAtom))


def _as_number(expr: sympy.Basic) -> sympy.Basic:
    """A boolean used in arithmetic counts 1 when true, 0 when false (as in Brian2)."""
    if expr is sympy.true:
        return sympy.Integer(1)
    if expr is sympy.false:
        return sympy.Integer(0)
    if _is_bool(expr):
        return sympy.Piecewise((1, expr), (0, True))
    return expr


def _as_bool(expr: sympy.Basic) -> sympy.Basic:
    """A number used as a condition is true when non-zero; symbols stay (bool variables)."""
    if _is_bool(expr) or isinstance(expr, sympy.Symbol):
        return expr
    return sympy.Ne(expr, 0)


# ----------------------------------------------------------------------------- the walker
class _Parser:
    """Builds SymPy from an ``ast`` tree; one instance numbers the rand call sites."""

    def __init__(
        self,
        text: str,
        allowed: Collection[str] | None,
        functions: Collection[str],
        units: bool,
    ) -> None:
        self.text = text
        self.allowed = None if allowed is None else frozenset(allowed)
        self.functions = frozenset(functions)
        self.units = units
        self.next_random_id = 0

    # -- errors
    def error(self, what: str, node: ast.AST | None = None, detail: str = "") -> ExpressionError:
        where = ""
        if node is not None and hasattr(node, "col_offset"):
            where = f" (column {node.col_offset + 1})"
        return ExpressionError(f"{what} in {self.text!r}{where}{detail}")

    def forbidden(self, node: ast.AST) -> ExpressionError:
        name = _CONSTRUCT_NAMES.get(type(node), type(node).__name__)
        if isinstance(node, ast.Constant):
            name = f"{type(node.value).__name__} literals ({node.value!r})"
        return self.error(f"{name} not allowed", node, f"; {_ALLOWED_HINT}")

    # -- names
    def known_names(self) -> list[str]:
        names = set(_CONSTANTS) | set(self.allowed or ())
        if self.units:
            names |= set(UNIT_SCALES)
        return sorted(names)

    def name(self, node: ast.Name) -> sympy.Basic:
        name = node.id
        if name.startswith("__"):
            raise self.error(f"name {name!r} not allowed (names may not start with '__')", node)
        if self.allowed is not None and name in self.allowed:
            return sympy.Symbol(name)
        if name in _CONSTANTS:
            return _CONSTANTS[name]
        if self.units and name in UNIT_SCALES:
            return sympy.Float(UNIT_SCALES[name])
        if name in FUNCTIONS or name in self.functions:
            raise self.error(f"function {name!r} used without calling it", node)
        if self.allowed is not None:
            close = difflib.get_close_matches(name, self.known_names(), n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            known = ", ".join(sorted(self.allowed)[:30]) or "none"
            raise self.error(f"unknown symbol {name!r}", node, f"{hint} Known symbols: {known}")
        return sympy.Symbol(name)

    def check_target(self, name: str, node: ast.AST) -> None:
        if name.startswith("__"):
            raise self.error(f"name {name!r} not allowed (names may not start with '__')", node)
        if self.allowed is not None and name not in self.allowed:
            close = difflib.get_close_matches(name, sorted(self.allowed), n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise self.error(f"unknown variable {name!r} assigned", node, hint)

    # -- expressions
    def expr(self, node: ast.AST) -> sympy.Basic:
        if isinstance(node, ast.Expression):
            return self.expr(node.body)
        if isinstance(node, ast.Constant):
            v = node.value
            if v is True or v is False:
                return sympy.true if v else sympy.false
            if type(v) is int:
                return sympy.Integer(v)
            if type(v) is float:
                return sympy.oo if v == math.inf else sympy.Float(v)
            raise self.forbidden(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.BinOp):
            op = _BINOPS.get(type(node.op))
            if op is None:
                raise self.forbidden(node.op)
            left = _as_number(self.expr(node.left))
            right = _as_number(self.expr(node.right))
            if isinstance(node.op, ast.Pow):
                self.check_power(left, right, node)
            return op(left, right)
        if isinstance(node, ast.UnaryOp):
            operand = self.expr(node.operand)
            if isinstance(node.op, ast.USub):
                return -_as_number(operand)
            if isinstance(node.op, ast.UAdd):
                return _as_number(operand)
            if isinstance(node.op, ast.Not):
                return sympy.Not(_as_bool(operand))
            raise self.forbidden(node.op)
        if isinstance(node, ast.BoolOp):
            values = [_as_bool(self.expr(v)) for v in node.values]
            return sympy.And(*values) if isinstance(node.op, ast.And) else sympy.Or(*values)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.IfExp):
            body = _as_number(self.expr(node.body))
            cond = _as_bool(self.expr(node.test))
            orelse = _as_number(self.expr(node.orelse))
            return _where(cond, body, orelse)
        if isinstance(node, ast.Call):
            return self.call(node)
        raise self.forbidden(node)

    def check_power(self, base: sympy.Basic, exp: sympy.Basic, node: ast.AST) -> None:
        if isinstance(base, sympy.Rational) and isinstance(exp, sympy.Integer):
            size = max(abs(int(base.p)), abs(int(base.q)), 2)
            if abs(int(exp)) * math.log2(size) > _MAX_BITS:
                raise self.error("number too large (exact power of a huge size)", node)

    def compare(self, node: ast.Compare) -> sympy.Basic:
        terms = [self.expr(node.left)]
        parts = []
        for op, right in zip(node.ops, node.comparators):
            build = _COMPARE.get(type(op))
            if build is None:
                raise self.forbidden(op)
            terms.append(self.expr(right))
            parts.append(build(_as_number(terms[-2]), _as_number(terms[-1])))
        return parts[0] if len(parts) == 1 else sympy.And(*parts)

    def call(self, node: ast.Call) -> sympy.Basic:
        if not isinstance(node.func, ast.Name):
            what = _CONSTRUCT_NAMES.get(type(node.func), "calls of expressions")
            raise self.error(f"{what} not allowed (calling {ast.unparse(node.func)!r})",
                             node, f"; {_ALLOWED_HINT}")
        name = node.func.id
        if node.keywords:
            raise self.error(f"keyword arguments not allowed in {name}()", node,
                             f"; {_ALLOWED_HINT}")
        for a in node.args:
            if isinstance(a, ast.Starred):
                raise self.forbidden(a)
        if name in self.functions:
            args = [_as_number(self.expr(a)) for a in node.args]
            return sympy.Function(name)(*args)
        if name not in _TABLE:
            candidates = sorted(FUNCTIONS | self.functions)
            close = difflib.get_close_matches(name, candidates, n=3)
            hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
            raise self.error(
                f"function {name!r} not allowed{hint}",
                node,
                f"; allowed functions: {', '.join(candidates)}",
            )
        arity, build, kinds = _TABLE[name]
        if len(node.args) != arity:
            raise self.error(
                f"{name}() takes {arity} argument{'s' if arity != 1 else ''} "
                f"({len(node.args)} given)",
                node,
            )
        args = [
            _as_bool(self.expr(a)) if kind == "b" else _as_number(self.expr(a))
            for a, kind in zip(node.args, kinds)
        ]
        if name in ("rand", "randn", "binomial", "poisson"):
            k = self.next_random_id
            self.next_random_id += 1
            return build(sympy.Integer(k), *args)
        return build(*args)

    # -- checked entry point
    def build(self, node: ast.AST) -> sympy.Basic:
        try:
            result = self.expr(node)
        except ExpressionError:
            raise
        except RecursionError:
            raise self.error("expression too deeply nested") from None
        except (TypeError, ValueError, ArithmeticError, NotImplementedError) as err:
            raise self.error(f"invalid expression ({type(err).__name__}: {err})") from None
        complex_powers = any(
            p.is_number and p.base.is_negative and not p.exp.is_integer
            for p in result.atoms(sympy.Pow)
        )
        if complex_powers or result.has(sympy.zoo, sympy.nan, sympy.I):
            raise self.error(
                "expression has an undefined or complex value (division by zero, "
                "log or sqrt of a negative number?)"
            )
        return result


def _syntax_error(text: str, err: SyntaxError, line_offset: int = 0) -> ExpressionError:
    line = (err.lineno or 1) + line_offset
    col = err.offset or 0
    snippet = (err.text or text).rstrip("\n")
    caret = f"\n    {snippet}\n    {' ' * max(col - 1, 0)}^" if snippet else ""
    return ExpressionError(
        f"syntax error in {text!r} at line {line}, column {col}: {err.msg}{caret}"
    )


def _parse_ast(text: str, mode: str, line_offset: int = 0) -> ast.AST:
    try:
        with warnings.catch_warnings():  # e.g. invalid escapes in (rejected) strings
            warnings.simplefilter("ignore", (SyntaxWarning, DeprecationWarning))
            return ast.parse(text, mode=mode)
    except SyntaxError as err:
        raise _syntax_error(text, err, line_offset) from None
    except (ValueError, RecursionError, MemoryError) as err:
        raise ExpressionError(f"cannot parse {text!r}: {err}") from None


# ----------------------------------------------------------------------------- public API
def parse_expression(
    text: str,
    *,
    allowed: Collection[str] | None = None,
    functions: Collection[str] = (),
    units: bool = False,
) -> sympy.Basic:
    """Parse one expression string into SymPy.

    Parameters
    ----------
    text
        The expression, e.g. ``'(v_rest - v) / tau + w * (v > 0)'``.
    allowed
        Names that may appear as symbols (``None``: any name). Constants (``pi``, ``e``,
        ``inf``) and, with ``units``, unit names are always accepted.
    functions
        Names of extra functions (timed arrays): ``f(a, b)`` -> ``sympy.Function('f')(a, b)``.
    units
        Replace unit names (``mV``, ``ms``, ...) that are not in ``allowed`` by their SI
        scale: ``10*mV`` -> ``0.01``.

    Raises
    ------
    ExpressionError
        Syntax errors (with the position), unknown symbols (with close matches), and any
        construct or function outside the whitelist.
    """
    if not isinstance(text, str):
        raise ExpressionError(f"expected an expression string, got {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise ExpressionError("empty expression")
    parser = _Parser(text, allowed, functions, units)
    return parser.build(_parse_ast(stripped, "eval"))


_AUG_OPS: dict[type, Callable[[sympy.Basic, sympy.Basic], sympy.Basic]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}


def _statement(parser: _Parser, node: ast.stmt) -> Statement:
    if isinstance(node, ast.Assign):
        if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
            raise parser.error("only 'name = expression' assignments are allowed", node)
        target = node.targets[0].id
        parser.check_target(target, node)
        return Assign(target, parser.build(node.value))
    if isinstance(node, ast.AugAssign):
        if not isinstance(node.target, ast.Name):
            raise parser.error("only 'name op= expression' assignments are allowed", node)
        op = _AUG_OPS.get(type(node.op))
        if op is None:
            raise parser.error("only +=, -=, *= and /= are allowed", node)
        target = node.target.id
        parser.check_target(target, node)
        value = _as_number(parser.build(node.value))
        if isinstance(node.op, (ast.Add, ast.Sub)):
            for side in ("post", "pre"):
                suffix = f"_{side}"
                if target.endswith(suffix) and len(target) > len(suffix):
                    amount = value if isinstance(node.op, ast.Add) else -value
                    return Accumulate(target[: -len(suffix)], amount, side)  # type: ignore[arg-type]
        return Assign(target, op(sympy.Symbol(target), value))
    if isinstance(node, ast.Expr):
        raise parser.error("a bare expression is not a statement; write 'name = expression'",
                           node)
    kind = type(node).__name__
    raise parser.error(f"statement {kind} not allowed; only 'x = expr' and 'x += expr' "
                       "(also -=, *=, /=)", node)


def parse_statements(
    text: str,
    *,
    allowed: Collection[str] | None = None,
    functions: Collection[str] = (),
    units: bool = False,
) -> tuple[Statement, ...]:
    """Parse statements, one per line (``;`` also separates; ``#`` starts a comment).

    ``x = e`` -> ``Assign('x', e)``; ``x op= e`` -> ``Assign('x', x op e)``, except
    ``x_post += e`` / ``x_pre -= e`` -> ``Accumulate('x', +e / -e, side)``, the only
    cross-element write. Options as in :func:`parse_expression`; ``allowed`` also applies
    to assignment targets. ``rand()`` ids are numbered across the whole text.
    """
    if not isinstance(text, str):
        raise ExpressionError(f"expected a statement string, got {type(text).__name__}")
    parser = _Parser(text, allowed, functions, units)
    statements: list[Statement] = []
    for lineno, line in enumerate(text.splitlines()):
        source = line.strip()
        if not source or source.startswith("#"):
            continue
        module = _parse_ast(source, "exec", line_offset=lineno)
        for node in module.body:  # type: ignore[attr-defined]
            statements.append(_statement(parser, node))
    return tuple(statements)


def free_symbols_names(expr: sympy.Basic) -> set[str]:
    """Names of the free symbols of ``expr`` (timed-array and rand calls excluded)."""
    return {s.name for s in expr.free_symbols if isinstance(s, sympy.Symbol)}


def collect_random_calls(expr: sympy.Basic) -> tuple[sympy.Basic, ...]:
    """The distinct ``rand(k)`` / ``randn(k)`` calls of ``expr``, ordered by id ``k``."""
    calls = expr.atoms(rand, randn)
    return tuple(sorted(calls, key=lambda c: (int(c.args[0]), c.func.__name__)))


def is_boolean(expr: sympy.Basic) -> bool:
    """Whether ``expr`` is a condition (comparison, and/or/not, True/False)."""
    return _is_bool(expr)
