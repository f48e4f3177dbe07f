"""Lowering of a :class:`~gpuspike.bridge.ir.CableIR`: four kernels in the ``groups`` phase.

=========================  ==================================================================
kernel                     what (see :mod:`.cable` for the maths)
=========================  ==================================================================
``<c>_currents``           per compartment: the membrane current's ``gtot`` and ``I0``;
                           ``diag = axial - Cm/dt - gtot``, ``vstar = -(Cm/dt) v - I0``
``<c>_sections``           :class:`~.kernel_ir.CableSolve` ``'sections'``
``<c>_tree``               :class:`~.kernel_ir.CableSolve` ``'tree'``
``<c>_voltage``            per compartment: ``v = vstar + V[node0] uminus + V[node1] uplus``,
                           capacitive current ``Cm (v_new - v_old) / dt``
=========================  ==================================================================

The first and the last are ordinary kernel IR, so both printers emit them like any
neuron update. The solve's arrays are float64 in any precision (see :mod:`.cable`).
"""

from __future__ import annotations

import dataclasses

import sympy
from gpuspike.bridge import ir
from gpuspike.bridge.errors import ModelError

from . import cable as cb
from . import kernel_ir as k
from .kernel_writer import KernelWriter, neuron_scope, optimise, period, population_variables


def lower_cable(net: ir.NetworkIR, c: ir.CableIR) -> tuple[list[k.ArrayDecl],
                                                              list[k.Kernel]]:
    """Array declarations and the four kernels of cable ``c`` (in execution order)."""
    g = next((x for x in net.groups if x.name == c.group), None)
    if g is None:
        raise ModelError(f"cable {c.name!r}: no neuron group {c.group!r}")
    if g.size != len(c.area):
        raise ModelError(f"cable {c.name!r}: {len(c.area)} compartments, but group "
                         f"{g.name!r} has {g.size} elements (one per compartment)")
    variables = {v.name: v for v in population_variables(g)}
    for role, var in (("v", c.v), ("capacitance", c.capacitance),
                      ("capacitive_current", c.capacitive_current)):
        if var is not None and var not in variables:
            raise ModelError(f"cable {c.name!r}: {role} {var!r} is not a variable of "
                             f"{g.name!r}")
        if var is not None and variables[var].shared:
            raise ModelError(f"cable {c.name!r}: {role} {var!r} must be a per-compartment "
                             "variable, not a shared one")
    every = period(g.dt, net.dt, f"cable {c.name!r}")
    if c.every != every:
        raise ModelError(f"cable {c.name!r}: runs every {c.every} steps, its group "
                         f"{g.name!r} every {every}")
    decls = cb.array_decls(c)
    base = neuron_scope(net, g)

    def scope(extra: dict[str, tuple[str, k.Index, str]]):
        return dataclasses.replace(base, arrays={**base.arrays, **extra},
                                   what=f"cable {c.name!r}")

    dom = k.ElementDomain(g.name, g.size)
    v, cm = sympy.Symbol(c.v), sympy.Symbol(c.capacitance)
    dt = base.constants["dt"]

    # 0: the step's diagonal and right-hand side
    sc = scope({"_gs_axial": (cb.name(c.name, "axial"), "elem", "float64")})
    w = KernelWriter(sc, f"{c.name}_currents", allow_accumulate=False,
                     batch_size=net.batch_size)
    gtot, i0 = sympy.Symbol("_gs_gtot"), sympy.Symbol("_gs_I0")
    stmts = optimise((*c.current, ir.Assign(gtot.name, c.gtot), ir.Assign(i0.name, c.I0)),
                     sc)
    body = list(w.statements(stmts))
    diag = w.expr(sympy.Symbol("_gs_axial") - cm / dt - gtot, {}, body)
    rhs = w.expr(-(cm / dt) * v - i0, {}, body)
    body += [k.Store(cb.name(c.name, "diag"), diag, comment="diag = axial - Cm/dt - gtot"),
             k.Store(cb.name(c.name, "vstar"), rhs, comment="rhs = -(Cm/dt) v - I0")]
    kernels = [w.kernel(dom, tuple(body), "groups", f"membrane currents of cable {c.name}",
                        every, c.order)]

    # 1, 2: the linear solve
    size = cb.sizes(c)
    for stage in ("sections", "tree"):
        cdom = k.CableDomain(c.name, stage, size["N"], size["S"], size["L+1"] - 1,
                             cb.widest_level(c))
        kernels.append(k.Kernel(f"{c.name}_{stage}", cdom, (k.CableSolve(c.name, stage),),
                                "groups", f"cable {c.name}: {stage} stage of the solve",
                                (), every, c.order))

    # 3: the new voltage (and capacitive current)
    node_v = cb.name(c.name, "node_v")
    sc = scope({
        "_gs_node0": (cb.name(c.name, "node0"), "elem", "int32"),
        "_gs_node1": (cb.name(c.name, "node1"), "elem", "int32"),
        "_gs_V0": (node_v, sympy.Symbol("_gs_node0"), "float64"),
        "_gs_V1": (node_v, sympy.Symbol("_gs_node1"), "float64"),
        **{f"_gs_{x}": (cb.name(c.name, x), "elem", "float64")
           for x in ("vstar", "uplus", "uminus")}})
    w = KernelWriter(sc, f"{c.name}_voltage", allow_accumulate=False,
                     batch_size=net.batch_size)
    S = sympy.Symbol
    new_v = S("_gs_vstar") + S("_gs_V0") * S("_gs_uminus") + S("_gs_V1") * S("_gs_uplus")
    stmts = [ir.Assign("_gs_vold", v), ir.Assign(c.v, new_v)]
    if c.capacitive_current is not None:
        stmts.append(ir.Assign(c.capacitive_current, cm * (v - S("_gs_vold")) / dt))
    body = w.statements(stmts)
    kernels.append(w.kernel(dom, body, "groups", f"new voltage of cable {c.name}", every,
                            c.order))
    return decls, kernels
