"""Writes to shared (per-group scalar) variables from kernels over many elements.

A statement like ``count = count + 1`` on a shared ``count`` in a group's update is Brian2's
*scalar* code: it runs once per step, from the value at the start of the step. Every
element of the kernel computes the same new value (the lowering only allows values of
shared variables and constants there), but if each stored it, an element that loads
``count`` after another one stored would add again (a serial CPU loop does exactly that;
on the GPU it depends on the scheduling of blocks).

So the lowering rewrites such a kernel: its elements store the new value into a shadow
array ``<array>__next`` and set a per-batch flag; a one-thread kernel right after it
(``<kernel>_commit``) copies the shadow into the variable where the flag is set and
clears the flag. A kernel that ran over no element (an event domain with no event this
step) leaves the variable as it was.
"""

from __future__ import annotations

import sympy

from . import kernel_ir as k

__all__ = ["commit_shared_writes"]


def _rewrite(stmts: tuple[k.KStmt, ...], flag: str, shadows: dict[str, str]
             ) -> tuple[k.KStmt, ...]:
    out: list[k.KStmt] = []
    for st in stmts:
        if isinstance(st, k.Store) and st.index == "scalar":
            shadow = shadows.setdefault(st.array, f"{st.array}__next")
            out.append(k.Store(shadow, st.expr, "scalar", st.comment))
            out.append(k.Store(flag, sympy.Integer(1), "scalar"))
        elif isinstance(st, k.If):
            out.append(k.If(st.condition, _rewrite(st.body, flag, shadows),
                            _rewrite(st.orelse, flag, shadows)))
        else:
            out.append(st)
    return tuple(out)


def commit_shared_writes(kernels: list[k.Kernel], arrays: list[k.ArrayDecl]
                         ) -> tuple[list[k.Kernel], list[k.ArrayDecl]]:
    """``kernels`` with scalar stores of multi-element kernels made race-free (see the
    module docstring), and the arrays (shadows, flags) that this adds."""
    decls = {a.name: a for a in arrays}
    out_k: list[k.Kernel] = []
    new_arrays: list[k.ArrayDecl] = []
    for kern in kernels:
        if isinstance(kern.domain, k.SingleDomain):
            out_k.append(kern)
            continue
        flag = f"{kern.name}__wrote"
        shadows: dict[str, str] = {}
        body = _rewrite(kern.body, flag, shadows)
        if not shadows:
            out_k.append(kern)
            continue
        new_arrays.append(k.ArrayDecl(flag, "int32", 1, True, "runtime", kern.name))
        for array, shadow in shadows.items():
            a = decls[array]
            new_arrays.append(k.ArrayDecl(shadow, a.dtype, a.size, a.batched, "runtime",
                                          a.owner))
        out_k.append(k.Kernel(kern.name, kern.domain, body, kern.phase, kern.comment,
                              kern.locals, kern.every, kern.order))
        copy: list[k.KStmt] = []
        locals_: list[tuple[str, str]] = [("_gs_wrote", "int32")]
        for n, (array, shadow) in enumerate(shadows.items()):
            local = f"_gs_shared{n}"
            locals_.append((local, decls[array].dtype))
            copy += [k.Load(local, shadow, "scalar"),
                     k.Store(array, sympy.Symbol(local), "scalar")]
        copy.append(k.Store(flag, sympy.Integer(0), "scalar"))
        commit = (k.Load("_gs_wrote", flag, "scalar"),
                  k.If(sympy.Ne(sympy.Symbol("_gs_wrote"), 0), tuple(copy)))
        out_k.append(k.Kernel(f"{kern.name}_commit", k.SingleDomain(), commit, kern.phase,
                              f"shared variables written by {kern.name}", tuple(locals_),
                              kern.every, kern.order))
    return out_k, new_arrays
