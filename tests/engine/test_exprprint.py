"""Tests of gpuspike.engine.exprprint: the NumPy and CUDA printers of IR expressions."""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
import sympy
from gpuspike.bridge.errors import ExpressionError
from gpuspike.bridge.expressions import parse_expression
from gpuspike.engine.exprprint import (
    CUDA_PREAMBLE,
    NUMPY_NAMESPACE,
    CudaExprPrinter,
    NumpyExprPrinter,
)


def _np(text: str) -> str:
    return NumpyExprPrinter().doprint(parse_expression(text, functions={"stim"}))


def _cu(text: str, precision: str = "float64") -> str:
    return CudaExprPrinter(precision).doprint(parse_expression(text, functions={"stim"}))


def _eval(text: str, **values: object) -> object:
    code = _np(text)
    return eval(compile(code, "<expr>", "eval"), dict(NUMPY_NAMESPACE), values)


# ----------------------------------------------------------------------------- NumPy
@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("(v_rest - v) / tau", "(-v + v_rest)/tau"),
        ("where(v > 0, exp(-v/2), 0)", "np.where((v > 0), np.exp(-v/2.0), 0)"),
        ("w * (v > 0)", "w*np.where((v > 0), 1, 0)"),
        ("x**2 + sqrt(x)", "np.sqrt(x) + x**2"),
        ("1 / x**2", "(1.0/x**2)"),
        ("x / 2", "x/2.0"),
        ("x > 0 and not y < 1", "np.logical_and((y >= 1), (x > 0))"),
        ("x < 0 or y", "np.logical_or(y, (x < 0))"),
        ("clip(v, 0, inf)", "np.clip(v, 0, np.inf)"),
        ("exprel(x) + int(y)", "_exprel(x) + np.trunc(y)"),
        ("minimum(a, b) * maximum(a, b)", "np.maximum(a, b)*np.minimum(a, b)"),
        ("x % 3", "np.mod(x, 3)"),
        (
            "floor(x) + ceil(y) + sign(z) + abs(w)",
            "np.abs(w) + np.ceil(y) + np.floor(x) + np.sign(z)",
        ),
        ("stim(t, i)", "stim(t, i)"),
        ("2 ** x", "2.0**x"),
        ("pi", "np.pi"),
    ],
)
def test_numpy_golden(text: str, code: str) -> None:
    assert _np(text) == code


def test_numpy_evaluates_elementwise() -> None:
    v = np.array([-1.0, 0.5, 2.0])
    got = _eval("where(v > 0, v**2, -v) + (v > 1)", v=v)
    np.testing.assert_allclose(got, [1.0, 0.25, 5.0])
    i, n = np.arange(4, dtype=np.int32), 4
    np.testing.assert_allclose(_eval("i / N + i % 3", i=i, N=n), i / n + i % 3)
    np.testing.assert_allclose(_eval("i**-1.0 * 0 + 1 / (i + 1)", i=i), 1 / (i + 1))


def test_numpy_mod_follows_python_semantics() -> None:
    x = np.array([-7.0, 7.0, -7.5])
    np.testing.assert_allclose(_eval("x % 3", x=x), np.array([-7.0, 7.0, -7.5]) % 3)
    np.testing.assert_allclose(_eval("x // 2", x=x), [-4.0, 3.0, -4.0])


def test_exprel_is_stable_and_silent() -> None:
    x = np.array([0.0, 1e-12, -1e-9, 1.0, -30.0, 800.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = NUMPY_NAMESPACE["_exprel"](x)
    assert got[0] == 1.0
    np.testing.assert_allclose(got[1:5], np.expm1(x[1:5]) / x[1:5], rtol=1e-12)
    assert np.isinf(got[5])
    assert NUMPY_NAMESPACE["_exprel"](np.float32(0.5)).dtype == np.float32
    assert float(NUMPY_NAMESPACE["_exprel"](0.0)) == 1.0


# ----------------------------------------------------------------------------- CUDA
@pytest.mark.parametrize(
    ("text", "f64", "f32"),
    [
        ("(v_rest - v) / tau", "(-v + v_rest)/tau", "(-v + v_rest)/tau"),
        ("exp(-v/2)", "exp(-v/2.0)", "expf(-v/2.0f)"),
        ("x**2 + x**-3", "(x*x) + (1.0/(x*x*x))", "(x*x) + (1.0f/(x*x*x))"),
        ("x**5 + x**0.3", "pow(x, 0.3) + pow(x, 5.0)", "powf(x, 0.3f) + powf(x, 5.0f)"),
        ("sqrt(x) + 1/sqrt(y)", "sqrt(x) + (1.0/sqrt(y))", "sqrtf(x) + (1.0f/sqrtf(y))"),
        ("where(v > 0, v, 0.5)", "(((v > 0)) ? (v) : (0.5))", "(((v > 0)) ? (v) : (0.5f))"),
        ("x > 0 and (y < 1 or not z)", "((x > 0) && ((!z) || (y < 1)))",
         "((x > 0) && ((!z) || (y < 1)))"),
        ("int(x)", "trunc(x)", "truncf(x)"),
        ("clip(x, 0, 1)", "_clip(x, 0.0, 1.0)", "_clip(x, 0.0f, 1.0f)"),
        ("exprel(x)", "_exprel(x)", "_exprel(x)"),
        ("minimum(a, b)", "fmin(a, b)", "fminf(a, b)"),
        ("maximum(a, maximum(b, c))", "fmax(a, fmax(b, c))", "fmaxf(a, fmaxf(b, c))"),
        ("abs(x) + floor(y)", "fabs(x) + floor(y)", "fabsf(x) + floorf(y)"),
        ("sign(x)", "_sign(x)", "_sign(x)"),
        ("x % 2.5", "_mod(1.0*x, 2.5)", "_mod(1.0f*x, 2.5f)"),
        ("i % 2 == 0", "(_imod(i, 2) == 0)", "(_imod(i, 2) == 0)"),
        ("i / N", "((double)(i))/N", "((float)(i))/N"),
        ("exp(i)", "exp(((double)(i)))", "expf(((float)(i)))"),
        ("stim(t, i)", "stim(t, i)", "stim(t, i)"),
        ("1/3", "0.3333333333333333", "0.3333333333333333f"),
    ],
)
def test_cuda_golden(text: str, f64: str, f32: str) -> None:
    assert _cu(text, "float64") == f64
    assert _cu(text, "float32") == f32


def test_cuda_infinity_is_valid_c() -> None:
    assert _cu("clip(x, -inf, inf)") == (
        "_clip(x, (-__longlong_as_double(0x7ff0000000000000LL)), "
        "__longlong_as_double(0x7ff0000000000000LL))"
    )
    assert "inf" not in _cu("clip(x, 0, inf)", "float32").replace("__int_as_float", "")


def test_cuda_bad_precision() -> None:
    with pytest.raises(ValueError, match="float32"):
        CudaExprPrinter("float16")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "printer", [NumpyExprPrinter(), CudaExprPrinter("float32"), CudaExprPrinter("float64")]
)
def test_rand_and_unknown_functions_rejected(printer: object) -> None:
    with pytest.raises(ExpressionError, match="must be replaced"):
        printer.doprint(parse_expression("1 + rand()"))  # type: ignore[attr-defined]
    with pytest.raises(ExpressionError, match="must be replaced"):
        printer.doprint(parse_expression("randn()"))  # type: ignore[attr-defined]
    with pytest.raises(ExpressionError, match="cannot print"):
        printer.doprint(sympy.gamma(sympy.Symbol("x")))  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------- nvcc
NVCC_EXPRESSIONS = [
    "(v_rest - v) / tau + w * (v > 0)",
    "where(v > 0, exp(-v/2), 0.5)",
    "x**2 + x**-3 + x**5 + x**0.3 + sqrt(abs(x)) + 1/sqrt(abs(y) + 1)",
    "x > 0 and (y < 1 or not flag)",
    "int(x) + clip(x, 0, inf) + exprel(x) + sign(x)",
    "minimum(x, y) + maximum(x, maximum(y, v))",
    "x % 2.5 + x // 3 + i % 2 + i / N",
    "log10(abs(x) + 1) + log(abs(y) + 1) + pi * e",
    "sin(x) + cos(y) + tan(v) + arcsin(0.5) + arccos(0.5) + arctan(x)",
    "sinh(x) + cosh(y) + tanh(v) + floor(x) + ceil(y)",
    "exp(i) + 2 ** x + 1 / (i + 1) + clip(i, 0, 10)",
    "stim(t, i) * (t > 10 * dt)",
]


def _kernel(precision: str) -> str:
    printer = CudaExprPrinter(precision)  # type: ignore[arg-type]
    real = "float" if precision == "float32" else "double"
    lines = [
        f"__device__ __forceinline__ {real} stim_{precision}({real} t, int i) {{ return t * i; }}",
        f'extern "C" __global__ void eval_{precision}('
        + f"{real}* out, const {real}* xs, int N, {real} t, {real} dt) {{",
        "    int i = blockIdx.x * blockDim.x + threadIdx.x;",
        "    if (i >= N) return;",
        f"    {real} x = xs[i], y = 2 * xs[i], v = -xs[i], v_rest = 0, tau = 1, w = 1;",
        "    bool flag = i > 2;",
    ]
    for k, text in enumerate(NVCC_EXPRESSIONS):
        expr = parse_expression(text, functions={"stim"})
        code = printer.doprint(expr).replace("stim(", f"stim_{precision}(")
        lines.append(f"    // {text}")
        lines.append(f"    out[{k} * N + i] = {code};")
    lines.append("}")
    return "\n".join(lines)


@pytest.mark.nvcc
@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not on PATH")
def test_printed_cuda_compiles(tmp_path: Path) -> None:
    source = tmp_path / "exprs.cu"
    source.write_text(
        "\n".join([CUDA_PREAMBLE, _kernel("float32"), _kernel("float64")]) + "\n"
    )
    result = subprocess.run(
        ["nvcc", "-ptx", "-arch=sm_80", "-o", str(tmp_path / "exprs.ptx"), str(source)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr + "\n" + source.read_text()
