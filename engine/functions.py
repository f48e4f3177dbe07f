"""User functions (:class:`~gpuspike.bridge.ir.FunctionIR`) in generated code.

Kernels call a user function as ``name(args)``. The NumPy engine puts its Python
implementation into the namespace of the generated module (it is called on whole arrays
of the domain's elements, as Brian2's NumPy target does); the CUDA printer puts its CUDA
C++ source in front of the kernels. C++ written for CPUs (Brian2's
``@implementation('cpp', ...)``) defines host functions: every top-level function
definition or declaration without an execution space is made ``__device__``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import sympy
from gpuspike.bridge import ir
from gpuspike.bridge.errors import ModelError, UnsupportedFeature
from sympy.core.function import AppliedUndef

from . import kernel_ir as k

__all__ = ["cuda_definitions", "device_source", "numpy_namespace", "used_functions"]

_SPACES = ("__device__", "__global__", "__host__")
_NOT_FUNCTIONS = re.compile(r"^\s*(?:typedef|using|struct|class|union|enum|namespace|extern)\b")


def used_functions(
    kernels: Iterable[k.Kernel], functions: Iterable[ir.FunctionIR]
) -> tuple[ir.FunctionIR, ...]:
    """The user functions that ``kernels`` call, in the network's order."""
    called: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, sympy.Basic):
            called.update(type(f).__name__ for f in node.atoms(AppliedUndef))
        elif isinstance(node, tuple):
            for x in node:
                visit(x)
        elif hasattr(node, "__dataclass_fields__"):
            for name in node.__dataclass_fields__:
                visit(getattr(node, name))

    for kern in kernels:
        visit(kern.body)
    return tuple(f for f in functions if f.name in called)


def numpy_namespace(
    functions: Iterable[ir.FunctionIR], reserved: Mapping[str, Any]
) -> dict[str, Any]:
    """Names -> Python implementations, for the generated NumPy module."""
    out: dict[str, Any] = {}
    for f in functions:
        if f.numpy is None:
            raise UnsupportedFeature(
                f"function {f.name!r} has no Python implementation, which the NumPy engine "
                "calls (give FunctionIR(numpy=...); Brian2 uses the decorated Python "
                "function itself), or run it on engine='cupy'"
            )
        if f.name in reserved:
            raise ModelError(
                f"function name {f.name!r} is used by the generated NumPy code; rename the function"
            )
        out[f.name] = f.numpy
    return out


def cuda_definitions(functions: Iterable[ir.FunctionIR]) -> str:
    """CUDA source defining every function (as device code), in order."""
    parts = []
    for f in functions:
        if f.cuda is None:
            raise UnsupportedFeature(
                f"function {f.name!r} has only a Python (NumPy) implementation; the CuPy "
                "engine needs a C++/CUDA implementation (Brian2: @implementation('cpp', "
                "...) or @implementation('cuda', ...); engine IR: FunctionIR(cuda=...)), "
                "or run it on engine='numpy'"
            )
        parts.append(f"// ---- user function {f.name} ----\n{device_source(f.cuda).strip()}\n")
    return "\n".join(parts)


def device_source(code: str) -> str:
    """``code`` with ``__device__`` in front of every top-level function definition or
    declaration that has no execution space (after a ``template <...>`` header).

    >>> device_source("inline double f(double x) { return x; }")
    '__device__ inline double f(double x) { return x; }'
    """
    marks: list[int] = []  # positions that get "__device__ "
    depth = 0
    start = 0  # where the current top-level declaration starts
    n = len(code)
    pos = 0

    def mark(end: int) -> None:
        decl = code[start:end]
        if depth or "(" not in decl or any(s in decl for s in _SPACES):
            return
        head = decl.split("(", 1)[0]
        if "=" in head or _NOT_FUNCTIONS.match(decl) or not head.strip():
            return
        lead = len(decl) - len(decl.lstrip())
        template = re.match(r"\s*template\s*<[^{;]*?>\s*", decl)
        at = start + (template.end() if template else lead)
        marks.append(at)

    while pos < n:
        c = code[pos]
        if code.startswith(("//", "/*"), pos):
            end = code.find("\n" if code[pos + 1] == "/" else "*/", pos + 2)
            end = n if end < 0 else end + (0 if code[pos + 1] == "/" else 2)
            if depth == 0 and code[start:pos].strip() == "":
                start = end  # a comment before a declaration is not part of it
            pos = end
            continue
        if c in "\"'":
            end = pos + 1
            while end < n and code[end] != c:
                end += 2 if code[end] == "\\" else 1
            pos = end + 1
            continue
        if c == "#" and depth == 0 and code[start:pos].strip() == "":
            end = code.find("\n", pos)
            while end > 0 and code[end - 1] == "\\":  # continued preprocessor line
                end = code.find("\n", end + 1)
            pos = n if end < 0 else end
            start = pos
            continue
        if c == "{":
            if depth == 0:
                mark(pos)
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                start = pos + 1
        elif c == ";" and depth == 0:
            mark(pos)
            start = pos + 1
        pos += 1
    for at in reversed(marks):
        code = code[:at] + "__device__ " + code[at:]
    return code
