"""Brian2 user functions (``Function``, ``@implementation``) -> ``FunctionIR``.

The NumPy engine calls the function's NumPy implementation (the decorated Python function,
as Brian2's NumPy target does); the CuPy engine compiles its ``'cuda'`` implementation, or
else its ``'cpp'`` one (``__device__`` is added by the engine). Dependencies (other
functions the C++ code calls) come first in the source; a C++ implementation under
another name than the function's gets a forwarding function. What cannot be translated
raises :class:`~gpuspike.bridge.errors.UnsupportedFeature` here, or (a missing
implementation) when an engine needs it.
"""

from __future__ import annotations

from typing import Any

from gpuspike.bridge import ir
from gpuspike.bridge.errors import UnsupportedFeature

#: Brian2 targets whose C++ implementation the CuPy engine can compile, best first.
CUDA_TARGETS = ("cuda", "cpp")


def function_ir(name: str, brian_name: str, func: Any, owner: Any, what: str) -> ir.FunctionIR:
    """The IR function ``name`` of the Brian2 ``Function`` ``func``, which code of
    ``owner`` calls as ``brian_name``."""
    if getattr(func, "auto_vectorise", False):
        raise UnsupportedFeature(
            f"{what}: function {name!r} is auto-vectorised (it receives "
            "Brian2's _vectorisation_idx), which the engine does not pass"
        )
    if not getattr(func, "stateless", True):
        raise UnsupportedFeature(
            f"{what}: function {name!r} is not stateless (the engine may "
            "reorder or merge its calls); declare it stateless=True if "
            "its result depends on its arguments only"
        )
    numpy = _numpy(func, owner)
    try:
        cuda = _cuda(brian_name, func, owner, what, set())
    except UnsupportedFeature:
        if numpy is None:
            raise
        cuda = None  # NOTE: the CuPy engine then reports a missing C++ implementation
    c_name = getattr(_implementation(func), "name", None) or brian_name
    if cuda is not None and c_name != name:  # implemented under another name
        cuda += (
            f"\ntemplate <class... A> __device__ auto {name}(A... a) "
            f"-> decltype({c_name}(a...)) {{ return {c_name}(a...); }}"
        )
    if numpy is None and cuda is None:
        raise UnsupportedFeature(
            f"{what}: function {name!r} has neither a NumPy nor a C++ implementation"
        )
    return ir.FunctionIR(name, numpy=numpy, cuda=cuda)


def _numpy(func: Any, owner: Any) -> Any:
    from brian2.codegen.runtime.numpy_rt.numpy_rt import NumpyCodeObject

    try:
        impl = func.implementations[NumpyCodeObject]
    except KeyError:
        return None
    return impl.get_code(owner)


def _implementation(func: Any) -> Any:
    """The function's implementation for the first of :data:`CUDA_TARGETS` it has."""
    impls = func.implementations._implementations
    for target in CUDA_TARGETS:
        for key, impl in impls.items():
            if key == target or getattr(key, "class_name", None) == target:
                return impl
    return None


def _cuda(name: str, func: Any, owner: Any, what: str, seen: set[int]) -> str | None:
    """CUDA C++ source that defines ``name`` (and what it depends on), or None."""
    impl = _implementation(func)
    if impl is None or id(func) in seen:
        return None if impl is None else ""
    seen.add(id(func))
    if impl.get_namespace(owner):
        raise UnsupportedFeature(
            f"{what}: the C++ implementation of function {name!r} "
            "reads values from its namespace (not supported)"
        )
    code = impl.get_code(owner)
    if isinstance(code, dict):
        code = "\n".join(code.get(k, "") for k in ("hashdefine_code", "support_code"))
    parts = []
    for dep_name, dep in (impl.dependencies or {}).items():
        dep_code = _cuda(dep_name, dep, owner, what, seen)
        if dep_code is None:
            raise UnsupportedFeature(
                f"{what}: function {name!r} depends on {dep_name!r}, "
                "which has no C++ implementation"
            )
        parts.append(dep_code)
    parts.append(code or "")
    return "\n".join(p for p in parts if p.strip())
