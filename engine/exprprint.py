"""SymPy -> source code printers: one expression, two targets (NumPy and CUDA C).

:class:`NumpyExprPrinter` writes vectorised NumPy source that refers to the module as
``np`` (run it with :data:`NUMPY_NAMESPACE`); :class:`CudaExprPrinter` writes C for CUDA
kernels in single or double precision (prepend :data:`CUDA_PREAMBLE` to the module).

Both print exactly the expressions :mod:`gpuspike.bridge.expressions` builds; anything
else (and ``rand`` / ``randn``, which the lowering replaces by locals first) raises
:class:`~gpuspike.bridge.errors.ExpressionError`. Division is always true division and
booleans used as numbers count 0 / 1, as in Brian2.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Literal

import numpy as np
import sympy
from gpuspike.bridge.errors import ExpressionError
from gpuspike.bridge.expressions import clip, expm1, exprel, int_, log1p
from sympy.core.function import AppliedUndef
from sympy.core.relational import Relational
from sympy.logic.boolalg import BooleanFunction
from sympy.printing.precedence import PRECEDENCE, precedence
from sympy.printing.printer import Printer

__all__ = ["CUDA_PREAMBLE", "NUMPY_NAMESPACE", "CudaExprPrinter", "NumpyExprPrinter"]

_ATOM = PRECEDENCE["Atom"]
_MUL = PRECEDENCE["Mul"]
_POW = PRECEDENCE["Pow"]


class _ExprPrinter(Printer):
    """Shared structure: sums, products, numbers; subclasses name the target's spellings."""

    target = "?"

    def __init__(self) -> None:
        super().__init__({})

    # -- dispatch
    def doprint(self, expr: Any) -> str:  # type: ignore[override]
        """Return the source of ``expr`` for this printer's target."""
        if isinstance(expr, bool):
            expr = sympy.true if expr else sympy.false
        elif isinstance(expr, int):
            expr = sympy.Integer(expr)
        elif isinstance(expr, float):
            expr = sympy.Float(expr)
        return self._print(expr)

    def _print(self, expr: Any, **kwargs: Any) -> str:
        if isinstance(expr, AppliedUndef):  # timed arrays, whatever their name
            return self._print_AppliedUndef(expr)
        return super()._print(expr, **kwargs)

    def emptyPrinter(self, expr: Any) -> str:
        raise ExpressionError(
            f"cannot print {type(expr).__name__} ({expr}) as {self.target} code; "
            "only expressions built by gpuspike.bridge.expressions are supported"
        )

    def _print_rand(self, expr: sympy.Basic) -> str:
        raise ExpressionError(
            f"{expr} must be replaced by a random draw before printing {self.target} code "
            "(the lowering assigns each call site a local variable)"
        )

    _print_randn = _print_binomial = _print_poisson = _print_rand

    # every value of the engine is real: SymPy's re()/im() (which it introduces for
    # symbols without assumptions, e.g. |exp(z)| = exp(re(z))) are the value and zero
    def _print_re(self, expr: sympy.Basic) -> str:
        return f"({self._print(expr.args[0])})"  # re() is an atom: keep its argument whole

    def _print_im(self, expr: sympy.Basic) -> str:
        return "0"

    # -- precedence
    def _prec(self, expr: sympy.Basic) -> int:
        if isinstance(expr, (Relational, BooleanFunction, sympy.Piecewise)):
            return _ATOM  # printed as calls or fully parenthesised
        if isinstance(expr, sympy.Rational) and not expr.is_Integer and expr > 0:
            return _ATOM  # printed as a float literal
        if isinstance(expr, sympy.Pow) and expr.exp.is_Number and expr.exp < 0:
            return _ATOM  # printed as (1.0/...)
        return precedence(expr)

    def _paren(self, expr: sympy.Basic, level: int, strict: bool = False) -> str:
        s = self._print(expr)
        p = self._prec(expr)
        return f"({s})" if p < level or (strict and p <= level) else s

    # -- numbers
    def _real(self, value: float) -> str:
        raise NotImplementedError

    def _print_Integer(self, expr: sympy.Integer) -> str:
        return str(int(expr))

    _print_Zero = _print_One = _print_NegativeOne = _print_Integer

    def _print_Rational(self, expr: sympy.Rational) -> str:
        return self._real(float(expr))

    _print_Half = _print_Rational

    def _print_Float(self, expr: sympy.Float) -> str:
        return self._real(float(expr))

    def _print_NumberSymbol(self, expr: sympy.Basic) -> str:
        return self._real(float(expr))

    def _print_Symbol(self, expr: sympy.Symbol) -> str:
        return expr.name

    def _print_ComplexInfinity(self, expr: sympy.Basic) -> str:
        raise ExpressionError(f"cannot print complex infinity ({expr}): division by zero?")

    # -- arithmetic
    def _print_Add(self, expr: sympy.Add) -> str:
        out = ""
        for term in expr.as_ordered_terms():
            s = self._paren(term, PRECEDENCE["Add"])
            if s.startswith("-"):
                out += f" - {s[1:]}" if out else s
            else:
                out += f" + {s}" if out else s
        return out

    def _divide(self, num: list[sympy.Basic], num_s: str, den: list[sympy.Basic],
                den_s: str) -> str:
        return f"{num_s}/{den_s}"

    def _print_Mul(self, expr: sympy.Mul) -> str:
        coeff, rest = expr.as_coeff_Mul()
        sign = ""
        if coeff.is_negative:
            sign, coeff = "-", -coeff
        num: list[sympy.Basic] = []
        den: list[sympy.Basic] = []
        for f in sympy.Mul.make_args(rest):
            if f.is_Pow and f.exp.is_Number and f.exp < 0:
                den.append(sympy.Pow(f.base, -f.exp))
            else:
                num.append(f)
        num_s = [self._paren(f, _MUL) for f in num]
        den_s = [self._paren(f, _MUL, strict=True) for f in den]
        if coeff.is_Rational and not coeff.is_Integer:
            if coeff.p != 1:
                num_s.insert(0, self._print(sympy.Integer(coeff.p)))
                num.insert(0, sympy.Integer(coeff.p))
            den_s.insert(0, self._real(float(coeff.q)))
            den.insert(0, sympy.Float(coeff.q))
        elif coeff != 1:
            num_s.insert(0, self._print(coeff))
            num.insert(0, coeff)
        if not den:
            return sign + "*".join(num_s)
        top = "*".join(num_s) if num_s else self._real(1.0)
        bottom = den_s[0] if len(den_s) == 1 else f"({'*'.join(den_s)})"
        return sign + self._divide(num, top, den, bottom)

    # -- booleans
    def _print_Relational(self, expr: Relational) -> str:
        lhs, rhs = expr.args
        return f"({self._paren(lhs, _MUL)} {expr.rel_op} {self._paren(rhs, _MUL)})"

    def _print_Piecewise(self, expr: sympy.Piecewise) -> str:
        *pairs, (last, last_cond) = expr.args
        if last_cond is sympy.true:
            out = self._print(last)
        else:
            pairs.append((last, last_cond))
            out = self._nan()
        for value, cond in reversed(pairs):
            out = self._select(self._print(cond), self._print(value), out)
        return out

    def _nan(self) -> str:
        raise NotImplementedError

    def _select(self, cond: str, a: str, b: str) -> str:
        raise NotImplementedError


# ============================================================================= NumPy
def _exprel(x: Any) -> Any:
    """``(exp(x) - 1) / x``, 1 at 0, vectorised without warnings (keeps float32)."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    small = np.abs(x) < 1e-8
    safe = np.where(small, np.ones_like(x), x)
    with np.errstate(over="ignore", invalid="ignore"):
        result = np.where(small, 1 + x / 2, np.expm1(safe) / safe)
    return result[()] if result.ndim == 0 else result


#: Globals for ``eval``/``exec`` of code printed by :class:`NumpyExprPrinter`.
NUMPY_NAMESPACE: dict[str, Any] = {"np": np, "_exprel": _exprel}

_NUMPY_FUNCTIONS: dict[type, str] = {
    sympy.exp: "np.exp", sympy.log: "np.log", sympy.sin: "np.sin", sympy.cos: "np.cos",
    sympy.tan: "np.tan", sympy.asin: "np.arcsin", sympy.acos: "np.arccos",
    sympy.atan: "np.arctan", sympy.sinh: "np.sinh", sympy.cosh: "np.cosh",
    sympy.tanh: "np.tanh", sympy.Abs: "np.abs", sympy.floor: "np.floor",
    sympy.ceiling: "np.ceil", sympy.sign: "np.sign", int_: "np.trunc", exprel: "_exprel",
    clip: "np.clip", sympy.Mod: "np.mod", expm1: "np.expm1", log1p: "np.log1p",
}


class NumpyExprPrinter(_ExprPrinter):
    """Prints vectorised NumPy source; evaluate it with :data:`NUMPY_NAMESPACE` globals.

    >>> NumpyExprPrinter().doprint(parse_expression("where(v > 0, exp(-v/2), 0)"))
    'np.where((v > 0), np.exp(-0.5*v), 0)'
    """

    target = "NumPy"

    def _real(self, value: float) -> str:
        if np.isnan(value):
            return "np.nan"
        if np.isinf(value):
            return "np.inf" if value > 0 else "-np.inf"
        return repr(float(value))

    def _nan(self) -> str:
        return "np.nan"

    def _select(self, cond: str, a: str, b: str) -> str:
        return f"np.where({cond}, {a}, {b})"

    def _print_Infinity(self, expr: sympy.Basic) -> str:
        return "np.inf"

    def _print_NegativeInfinity(self, expr: sympy.Basic) -> str:
        return "-np.inf"

    def _print_NaN(self, expr: sympy.Basic) -> str:
        return "np.nan"

    def _print_Pi(self, expr: sympy.Basic) -> str:
        return "np.pi"

    def _print_Exp1(self, expr: sympy.Basic) -> str:
        return "np.e"

    def _print_BooleanTrue(self, expr: sympy.Basic) -> str:
        return "True"

    def _print_BooleanFalse(self, expr: sympy.Basic) -> str:
        return "False"

    def _print_Pow(self, expr: sympy.Pow) -> str:
        base, exp = expr.args
        if exp == sympy.S.Half:
            return f"np.sqrt({self._print(base)})"
        if exp == -sympy.S.Half:
            return f"(1.0/np.sqrt({self._print(base)}))"
        if exp.is_Number and exp < 0:
            return f"(1.0/{self._paren(sympy.Pow(base, -exp), _MUL, strict=True)})"
        # An integer base to a symbolic or negative power fails in NumPy: use a float.
        if base.is_Integer:
            base_s = self._real(float(base))
            base_s = f"({base_s})" if base < 0 else base_s
        else:
            base_s = self._paren(base, _POW, strict=True)
        return f"{base_s}**{self._paren(exp, _POW, strict=True)}"

    def _print_Function(self, expr: sympy.Basic) -> str:
        name = _NUMPY_FUNCTIONS.get(type(expr))
        if name is None:
            return self.emptyPrinter(expr)
        return f"{name}({', '.join(self._print(a) for a in expr.args)})"

    def _min_max(self, expr: sympy.Basic, name: str) -> str:
        args = [self._print(a) for a in expr.args]
        out = args[-1]
        for a in reversed(args[:-1]):
            out = f"{name}({a}, {out})"
        return out

    def _print_Min(self, expr: sympy.Min) -> str:
        return self._min_max(expr, "np.minimum")

    def _print_Max(self, expr: sympy.Max) -> str:
        return self._min_max(expr, "np.maximum")

    def _print_And(self, expr: sympy.And) -> str:
        return self._min_max(expr, "np.logical_and")

    def _print_Or(self, expr: sympy.Or) -> str:
        return self._min_max(expr, "np.logical_or")

    def _print_Not(self, expr: sympy.Not) -> str:
        return f"np.logical_not({self._print(expr.args[0])})"

    def _print_AppliedUndef(self, expr: sympy.Basic) -> str:
        return f"{expr.func.__name__}({', '.join(self._print(a) for a in expr.args)})"


# ============================================================================= CUDA
#: Helper functions that printed CUDA code calls; put it once at the top of a module.
CUDA_PREAMBLE = r"""
// ---- gpuspike expression helpers (float and double overloads) ----
__device__ __forceinline__ double _exprel(double x) {
    // (exp(x) - 1) / x, 1 at 0; expm1 keeps it exact for small x
    return fabs(x) < 1e-8 ? 1.0 + 0.5 * x : expm1(x) / x;
}
__device__ __forceinline__ float _exprel(float x) {
    return fabsf(x) < 1e-4f ? 1.0f + 0.5f * x : expm1f(x) / x;
}
__device__ __forceinline__ double _clip(double x, double lo, double hi) {
    return x < lo ? lo : (x > hi ? hi : x);
}
__device__ __forceinline__ float _clip(float x, float lo, float hi) {
    return x < lo ? lo : (x > hi ? hi : x);
}
__device__ __forceinline__ double _sign(double x) {
    return (double)((x > 0.0) - (x < 0.0));
}
__device__ __forceinline__ float _sign(float x) {
    return (float)((x > 0.0f) - (x < 0.0f));
}
// Python's modulo: the result has the sign of the divisor
__device__ __forceinline__ double _mod(double a, double b) {
    double r = fmod(a, b);
    return (r != 0.0 && ((r < 0.0) != (b < 0.0))) ? r + b : r;
}
__device__ __forceinline__ float _mod(float a, float b) {
    float r = fmodf(a, b);
    return (r != 0.0f && ((r < 0.0f) != (b < 0.0f))) ? r + b : r;
}
__device__ __forceinline__ int _clip(int x, int lo, int hi) {
    return x < lo ? lo : (x > hi ? hi : x);
}
__device__ __forceinline__ long long _clip(long long x, long long lo, long long hi) {
    return x < lo ? lo : (x > hi ? hi : x);
}
__device__ __forceinline__ long long _imod(long long a, long long b);
__device__ __forceinline__ int _mod(int a, int b) { return (int)_imod(a, b); }
__device__ __forceinline__ long long _mod(long long a, long long b) { return _imod(a, b); }
// Mixed argument types (double t in float32 code, integer bounds): promote as C does;
// every promoted type has an exact overload above, so these never call themselves.
template <class A, class B, class C>
__device__ __forceinline__ auto _clip(A x, B lo, C hi) -> decltype(x + lo + hi) {
    typedef decltype(x + lo + hi) T;
    return _clip((T)x, (T)lo, (T)hi);
}
template <class A, class B>
__device__ __forceinline__ auto _mod(A a, B b) -> decltype(a + b) {
    typedef decltype(a + b) T;
    return _mod((T)a, (T)b);
}
__device__ __forceinline__ long long _imod(long long a, long long b) {
    long long r = a % b;
    return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}
"""

_CUDA_FUNCTIONS: dict[type, str] = {
    sympy.exp: "exp", sympy.log: "log", sympy.sin: "sin", sympy.cos: "cos",
    sympy.tan: "tan", sympy.asin: "asin", sympy.acos: "acos", sympy.atan: "atan",
    sympy.sinh: "sinh", sympy.cosh: "cosh", sympy.tanh: "tanh", sympy.Abs: "fabs",
    sympy.floor: "floor", sympy.ceiling: "ceil", int_: "trunc", expm1: "expm1",
    log1p: "log1p",
}
_CUDA_HELPERS: dict[type, str] = {sympy.sign: "_sign", exprel: "_exprel", clip: "_clip"}
#: Symbols that hold integers in every kernel (indices and sizes).
DEFAULT_INTEGER_SYMBOLS: frozenset[str] = frozenset({"i", "j", "N", "N_pre", "N_post"})
#: Largest integer power written out as repeated multiplication.
_MAX_EXPANDED_POWER = 4


class CudaExprPrinter(_ExprPrinter):
    """Prints C for CUDA kernels; helpers come from :data:`CUDA_PREAMBLE`.

    Parameters
    ----------
    precision
        ``'float32'`` uses ``expf``, ``sqrtf``, ... and ``f``-suffixed literals;
        ``'float64'`` the double functions.
    integer_symbols
        Symbols of integer type: divisions of integers are made real (``i/N`` is true
        division) and integers passed to maths functions are cast.

    NOTE: helper overloads take all-float or all-double arguments; a double variable in
    float32 code (or the reverse) must be cast by the lowering.
    """

    target = "CUDA"

    def __init__(
        self,
        precision: Literal["float32", "float64"] = "float64",
        integer_symbols: Collection[str] = DEFAULT_INTEGER_SYMBOLS,
    ) -> None:
        if precision not in ("float32", "float64"):
            raise ValueError(f"precision {precision!r}: use 'float32' or 'float64'")
        super().__init__()
        self.precision = precision
        self.integer_symbols = frozenset(integer_symbols)
        self._f = "f" if precision == "float32" else ""
        self._real_type = "float" if precision == "float32" else "double"

    # -- numbers
    def _real(self, value: float) -> str:
        if np.isnan(value):
            return self._nan()
        if np.isinf(value):
            inf = ("__int_as_float(0x7f800000)" if self._f
                   else "__longlong_as_double(0x7ff0000000000000LL)")
            return inf if value > 0 else f"(-{inf})"
        return repr(float(value)) + self._f

    def _nan(self) -> str:
        return ("__int_as_float(0x7fffffff)" if self._f
                else "__longlong_as_double(0x7ff8000000000000LL)")

    def _print_Integer(self, expr: sympy.Integer) -> str:
        v = int(expr)
        return str(v) if abs(v) < 2**31 else self._real(float(v))

    _print_Zero = _print_One = _print_NegativeOne = _print_Integer

    def _print_Infinity(self, expr: sympy.Basic) -> str:
        return self._real(float("inf"))

    def _print_NegativeInfinity(self, expr: sympy.Basic) -> str:
        return self._real(float("-inf"))

    def _print_NaN(self, expr: sympy.Basic) -> str:
        return self._nan()

    def _print_BooleanTrue(self, expr: sympy.Basic) -> str:
        return "true"

    def _print_BooleanFalse(self, expr: sympy.Basic) -> str:
        return "false"

    # -- integer awareness
    def _maybe_int(self, expr: sympy.Basic) -> bool:
        if expr.is_Integer:
            return True
        if isinstance(expr, sympy.Symbol):
            return expr.name in self.integer_symbols
        if isinstance(expr, (sympy.Add, sympy.Mul, sympy.Mod)):
            return all(self._maybe_int(a) for a in expr.args)
        if isinstance(expr, sympy.Pow):
            return bool(expr.exp.is_Integer and expr.exp >= 0 and self._maybe_int(expr.base)
                        and expr.exp <= _MAX_EXPANDED_POWER)
        if isinstance(expr, sympy.Piecewise):
            return all(self._maybe_int(e) for e, _ in expr.args)
        return False

    def _arg(self, expr: sympy.Basic) -> str:
        """``expr`` as a real argument of a maths function (no int overload ambiguity)."""
        if expr.is_Rational:
            return self._real(float(expr))
        s = self._print(expr)
        return f"(({self._real_type})({s}))" if self._maybe_int(expr) else s

    def _call(self, name: str, args: tuple[sympy.Basic, ...]) -> str:
        return f"{name}({', '.join(self._arg(a) for a in args)})"

    def _divide(self, num: list[sympy.Basic], num_s: str, den: list[sympy.Basic],
                den_s: str) -> str:
        if num and all(self._maybe_int(n) for n in num) and all(
            self._maybe_int(d) for d in den
        ):
            num_s = f"(({self._real_type})({num_s}))"
        return f"{num_s}/{den_s}"

    # -- arithmetic
    def _print_Pow(self, expr: sympy.Pow) -> str:
        base, exp = expr.args
        if exp == sympy.S.Half:
            return self._call("sqrt" + self._f, (base,))
        if exp == -sympy.S.Half:
            return f"({self._real(1.0)}/{self._call('sqrt' + self._f, (base,))})"
        if exp.is_Number and exp < 0:
            inner = self._paren(sympy.Pow(base, -exp), _MUL, strict=True)
            return f"({self._real(1.0)}/{inner})"
        if exp.is_Integer and 1 < exp <= _MAX_EXPANDED_POWER:
            b = self._paren(base, _MUL, strict=True)
            return "(" + "*".join([b] * int(exp)) + ")"
        return self._call("pow" + self._f, (base, exp))

    def _print_Function(self, expr: sympy.Basic) -> str:
        name = _CUDA_FUNCTIONS.get(type(expr))
        if name is not None:
            return self._call(name + self._f, expr.args)
        helper = _CUDA_HELPERS.get(type(expr))
        if helper is not None:
            return self._call(helper, expr.args)
        return self.emptyPrinter(expr)

    def _print_Mod(self, expr: sympy.Mod) -> str:
        if all(self._maybe_int(a) for a in expr.args):
            a, b = (self._print(x) for x in expr.args)
            return f"_imod({a}, {b})"
        return self._call("_mod", expr.args)

    def _min_max(self, expr: sympy.Basic, name: str) -> str:
        args = [self._arg(a) for a in expr.args]
        out = args[-1]
        for a in reversed(args[:-1]):
            out = f"{name}{self._f}({a}, {out})"
        return out

    def _print_Min(self, expr: sympy.Min) -> str:
        return self._min_max(expr, "fmin")

    def _print_Max(self, expr: sympy.Max) -> str:
        return self._min_max(expr, "fmax")

    # -- booleans
    def _select(self, cond: str, a: str, b: str) -> str:
        return f"(({cond}) ? ({a}) : ({b}))"

    def _print_And(self, expr: sympy.And) -> str:
        return "(" + " && ".join(self._print(a) for a in expr.args) + ")"

    def _print_Or(self, expr: sympy.Or) -> str:
        return "(" + " || ".join(self._print(a) for a in expr.args) + ")"

    def _print_Not(self, expr: sympy.Not) -> str:
        return f"(!{self._print(expr.args[0])})"

    def _print_AppliedUndef(self, expr: sympy.Basic) -> str:
        return f"{expr.func.__name__}({', '.join(self._print(a) for a in expr.args)})"
