"""Equation strings in Brian2's syntax."""

from __future__ import annotations

import pytest
import sympy
from gpuspike.bridge.equations import parse_equations
from gpuspike.bridge.errors import ModelError


def test_kinds_flags_units_and_dtypes():
    eqs = parse_equations("""
        dv/dt = (I - v)/tau : volt (unless refractory)   # membrane
        I = I0 * 2 : amp
        tau : second (constant)
        n : integer
        flag : boolean
        decay : 1
    """)
    kinds = {ln.name: (ln.kind, ln.dtype, ln.flags) for ln in eqs.lines}
    assert kinds["v"] == ("diff", "float", ("unless refractory",))
    assert kinds["I"][0] == "sub" and kinds["tau"] == ("var", "float", ("constant",))
    assert kinds["n"][1] == "int32" and kinds["flag"][1] == "bool"
    assert "decay" in eqs.names  # not mistaken for d(ecay)/dt
    v, i0, tau = sympy.symbols("v I0 tau")
    assert sympy.simplify(eqs.odes()["v"] - (2 * i0 - v) / tau) == 0


def test_subexpressions_nest():
    eqs = parse_equations("dx/dt = a : 1\na = b*2 : 1\nb = x + 1 : 1")
    x = sympy.Symbol("x")
    assert sympy.expand(eqs.odes()["x"] - 2 * (x + 1)) == 0


def test_cycle_unknown_flag_unit_and_syntax_are_errors():
    with pytest.raises(ModelError, match="cycle"):
        parse_equations("a = b : 1\nb = a : 1")
    with pytest.raises(ModelError, match="unknown flag"):
        parse_equations("dv/dt = -v : 1 (sometimes)")
    with pytest.raises(ModelError, match="furlong"):
        parse_equations("v : furlong")
    with pytest.raises(ModelError, match="not an equation"):
        parse_equations("dv/dt -v")


def test_external_names_protect_variables_from_units():
    # 'g' is a gram and 'm' a metre unless the equations or the caller define them
    eqs = parse_equations("dg/dt = -g/tau + m : 1\nm : 1", external={"tau"})
    assert {s.name for s in eqs.odes()["g"].free_symbols} == {"g", "tau", "m"}
    with pytest.raises(ModelError, match="tau2"):
        parse_equations("dg/dt = -g/tau2 : 1", external={"tau"})
