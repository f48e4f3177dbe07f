"""Tests of gpuspike.bridge.passes: validation errors, baking, CSE and hoisting."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import sympy
from gpuspike.bridge.errors import DtypeError, ModelError
from gpuspike.bridge.ir import (
    Accumulate,
    AllToAll,
    Assign,
    Conditional,
    EmitEvent,
    EventIR,
    HeterogeneousDelay,
    NetworkIR,
    NeuronGroupIR,
    Parameter,
    PathwayIR,
    PoissonSourceIR,
    SpikeMonitorIR,
    StateMonitorIR,
    SummedVariableIR,
    SynapseGroupIR,
    TimedArrayIR,
    Variable,
)
from gpuspike.bridge.passes import (
    CrossElementWrite,
    ReadOnlyWrite,
    UndefinedSymbol,
    WriteConflict,
    bake_network,
    bake_parameters,
    common_subexpressions,
    hoist_invariants,
    statement_symbols,
    substitute,
    validate,
    walk_statements,
)

S = sympy.Symbol
v, ge, tau, v_th, dt, w, t = sympy.symbols("v ge tau v_th dt w t")
int_ = sympy.Function("int_")
randn = sympy.Function("randn")


def group(**changes) -> NeuronGroupIR:
    g = NeuronGroupIR(
        "exc",
        10,
        variables=(
            Variable("v"),
            Variable("ge"),
            Variable("count", dtype="int32"),
            Variable("flag", dtype="bool"),
            Variable("label", dtype="int32", read_only=True),
        ),
        parameters=(Parameter("tau", 0.02), Parameter("v_th", 1.0), Parameter("E", -0.07)),
        update=(
            Assign("_decay", sympy.exp(-dt / tau)),
            Assign("v", v * S("_decay") + ge + S("E") * (1 - S("_decay"))),
            Assign("flag", v > v_th),
        ),
        events=(
            EventIR("spike", v > v_th, reset=(Assign("v", 0), Assign("count", S("count") + 1)),
                    refractory=sympy.Float(0.002)),
        ),
    )
    return replace(g, **changes)


def synapses(**changes) -> SynapseGroupIR:
    s = SynapseGroupIR(
        "s",
        "exc",
        "exc",
        AllToAll(),
        variables=(Variable("w", batched=False), Variable("delay", dtype="int32")),
        parameters=(Parameter("wmax", 2.0),),
        pathways=(PathwayIR("on_pre", (Accumulate("ge", w * S("v_th_post")),)),),
    )
    return replace(s, **changes)


def network(**changes) -> NetworkIR:
    net = NetworkIR(
        dt=1e-4,
        groups=(group(),),
        synapses=(synapses(),),
        sources=(PoissonSourceIR("noise", 5),),
        timed_arrays=(TimedArrayIR("stimulus", np.zeros(3), 1e-3),),
        monitors=(SpikeMonitorIR("spikes", "exc"), StateMonitorIR("trace", "exc", ("v",))),
    )
    return replace(net, **changes)


def test_valid_network_passes():
    validate(network())


def with_update(*statements) -> NetworkIR:
    return network(groups=(group(update=statements),))


def with_pathway(*statements, **kw) -> NetworkIR:
    return network(synapses=(synapses(pathways=(PathwayIR("on_pre", statements, **kw),)),))


# ----------------------------------------------------------------------------- symbols
def test_undefined_symbol_names_group_statement_and_fix():
    with pytest.raises(UndefinedSymbol) as info:
        validate(with_update(Assign("v", v + S("I_ext"))))
    msg = str(info.value)
    assert "neuron group 'exc', update" in msg
    assert "`v = I_ext + v`" in msg
    assert "['I_ext']" in msg and "define them" in msg


def test_local_must_be_assigned_before_use():
    validate(with_update(Assign("_a", 2 * v), Assign("v", S("_a"))))
    with pytest.raises(UndefinedSymbol, match="_a"):
        validate(with_update(Assign("v", S("_a")), Assign("_a", 2 * v)))
    # a local assigned in one branch only is undefined after the conditional
    cond = Conditional(v > 0, (Assign("_a", v),))
    with pytest.raises(UndefinedSymbol, match="_a"):
        validate(with_update(cond, Assign("v", S("_a"))))
    both = Conditional(v > 0, (Assign("_a", v),), (Assign("_a", -v),))
    validate(with_update(both, Assign("v", S("_a"))))


def test_refractory_names_only_with_refractory():
    validate(with_update(Assign("v", v * S("not_refractory") + S("lastspike"))))
    plain = group(events=(EventIR("spike", v > v_th),),
                  update=(Assign("v", v + S("lastspike")),))
    with pytest.raises(UndefinedSymbol, match="lastspike"):
        validate(network(groups=(plain,)))


def test_functions_timed_arrays_and_unknown():
    validate(with_update(Assign("v", v + sympy.Function("stimulus")(t, S("i")))))
    with pytest.raises(UndefinedSymbol, match=r"unknown function\(s\) \['mystery'\]"):
        validate(with_update(Assign("v", sympy.Function("mystery")(v))))


def test_event_condition_and_reset_symbols():
    bad = group(events=(EventIR("spike", v > S("theta")),))
    with pytest.raises(UndefinedSymbol, match="event 'spike'.*theta"):
        validate(network(groups=(bad,)))
    bad = group(events=(EventIR("spike", v > v_th, reset=(Assign("v", S("v_reset")),)),))
    with pytest.raises(UndefinedSymbol, match="reset of event 'spike'.*v_reset"):
        validate(network(groups=(bad,)))


# ----------------------------------------------------------------------------- writes
def test_write_to_read_only_variable_and_parameter():
    with pytest.raises(ReadOnlyWrite, match="read-only variable 'label'"):
        validate(with_update(Assign("label", 3)))
    with pytest.raises(ReadOnlyWrite, match="'tau', a parameter"):
        validate(with_update(Assign("tau", 3.0)))


def test_accumulate_in_neuron_code_is_cross_element():
    with pytest.raises(CrossElementWrite, match="only synapse code"):
        validate(with_update(Accumulate("v", 1.0)))


def test_synapse_assign_to_post_variable():
    with pytest.raises(CrossElementWrite) as info:
        validate(with_pathway(Assign("ge_post", S("ge_post") + w)))
    msg = str(info.value)
    assert "synapses 's', pathway 'on_pre'" in msg
    assert "use `ge_post += ...` (an accumulate)" in msg


def test_accumulate_target_missing_or_read_only():
    with pytest.raises(ModelError, match="no variable 'gi'"):
        validate(with_pathway(Accumulate("gi", w)))
    with pytest.raises(ReadOnlyWrite, match="read-only variable 'label'"):
        validate(with_pathway(Accumulate("label", 1)))
    src = synapses(pre="noise", pathways=(PathwayIR("p", (Accumulate("v", w, side="pre"),)),))
    with pytest.raises(ModelError, match="pre-synaptic group has no variable 'v'"):
        validate(network(synapses=(src,)))


def test_synapse_scope():
    validate(with_pathway(
        Assign("w", sympy.Min(w + S("lastspike_post") - t, S("wmax"))),
        Accumulate("ge", w * S("N_pre") / S("N_post") + S("v_pre") + S("tau_post")),
    ))
    with pytest.raises(UndefinedSymbol, match="ge_pr"):
        validate(with_pathway(Accumulate("ge", S("ge_pr"))))


def test_pathway_reading_what_it_accumulates():
    with pytest.raises(WriteConflict, match="order of the synapses"):
        validate(with_pathway(Accumulate("ge", w * S("ge_post"))))
    with pytest.raises(WriteConflict, match=r"\['v_post'\]"):
        validate(with_pathway(Assign("w", S("v_post")), Accumulate("v", w)))


def test_single_writer():
    summed = synapses(summed=(SummedVariableIR("ge", w * S("v_pre")),))
    with pytest.raises(WriteConflict, match="summed variable.*accumulated by pathway"):
        validate(network(synapses=(summed,)))
    one = synapses(name="a", pathways=(), summed=(SummedVariableIR("ge", w),))
    two = synapses(name="b", pathways=(), summed=(SummedVariableIR("ge", 2 * w),))
    with pytest.raises(WriteConflict, match="two summed variables"):
        validate(network(synapses=(one, two)))
    with pytest.raises(WriteConflict, match="assigns 'ge', a summed variable"):
        validate(network(groups=(group(update=(Assign("ge", 0),)),), synapses=(one,)))
    validate(network(synapses=(one,)))


# ----------------------------------------------------------------------------- dtypes
def test_float_into_int_needs_int():
    with pytest.raises(DtypeError, match=r"float value in int32 variable 'count'.*int\(\.\.\.\)"):
        validate(with_update(Assign("count", v * 2)))
    validate(with_update(Assign("count", int_(v * 2)), Assign("count", S("count") + S("i"))))


def test_boolean_targets_and_conditions():
    with pytest.raises(DtypeError, match="boolean variable 'flag'"):
        validate(with_update(Assign("flag", v)))
    validate(with_update(Assign("v", sympy.And(v > 0, S("flag"))), Assign("flag", S("flag"))))
    with pytest.raises(DtypeError, match="not boolean.*`v > 0`"):
        validate(network(groups=(group(events=(EventIR("spike", v),)),)))
    with pytest.raises(DtypeError, match="not boolean"):
        validate(with_update(Conditional(v - 1, (Assign("v", 0),))))


def test_heterogeneous_delay_variable():
    validate(with_pathway(Accumulate("ge", w), delay=HeterogeneousDelay("delay", 10)))
    with pytest.raises(DtypeError, match="'w' must be an integer variable"):
        validate(with_pathway(Accumulate("ge", w), delay=HeterogeneousDelay("w", 10)))
    with pytest.raises(DtypeError, match="'d' must be"):
        validate(with_pathway(Accumulate("ge", w), delay=HeterogeneousDelay("d", 10)))


# ----------------------------------------------------------------------------- network
def test_monitors_sources_and_names():
    with pytest.raises(ModelError, match="monitor 'x': source 'inh'"):
        validate(network(monitors=(SpikeMonitorIR("x", "inh"),)))
    with pytest.raises(ModelError, match=r"no variable\(s\) \['u'\]"):
        validate(network(monitors=(StateMonitorIR("x", "exc", ("v", "u")),)))
    with pytest.raises(ModelError, match="no event 'burst'"):
        validate(network(monitors=(SpikeMonitorIR("x", "exc", event="burst"),)))
    with pytest.raises(ModelError, match="post-synaptic group 'inh' does not exist"):
        validate(network(synapses=(synapses(post="inh"),)))
    with pytest.raises(ModelError, match=r"names \['exc'\]"):
        validate(network(sources=(PoissonSourceIR("exc", 3),)))


# ----------------------------------------------------------------------------- helpers
def test_statement_helpers():
    cond = Conditional(v > v_th, (Assign("v", 0), EmitEvent("spike")), (Accumulate("ge", w),))
    statements = (Assign("_a", 2 * tau), cond)
    assert [type(s).__name__ for s in walk_statements(statements)] == [
        "Assign", "Conditional", "Assign", "EmitEvent", "Accumulate"
    ]
    assert statement_symbols(cond) == ({"v", "v_th", "w"}, {"v", "ge_post"})
    out = substitute(statements, {"tau": 3, v_th: S("theta")})
    assert out[0].expr == 6
    assert out[1].condition == (v > S("theta"))


# ----------------------------------------------------------------------------- bake
def test_bake_parameters_recurses():
    statements = (Assign("v", v / tau), Conditional(v > v_th, (Assign("v", v_th * 0.5),)))
    out = bake_parameters(statements, {"tau": 2.0, "v_th": 0.1})
    assert out[0].expr == v / 2
    assert out[1].condition == (v > sympy.Float(0.1, 17))
    assert float(out[1].body[0].expr) == pytest.approx(0.05)


def test_bake_network():
    net = bake_network(network(synapses=(synapses(
        pathways=(PathwayIR(
            "on_pre", (Accumulate("ge", sympy.Min(w, S("wmax")) * S("tau_post")),)
        ),)
    ),)))
    g, s = net.groups[0], net.synapses[0]
    assert g.parameters == () and s.parameters == ()
    assert g.update[0].expr == sympy.exp(-dt / sympy.Float(0.02, 17))
    assert g.events[0].condition == (v > 1)
    assert s.pathways[0].statements[0].expr.free_symbols == {w}
    assert s.pathways[0].statements[0].expr.subs(w, 1.0) == pytest.approx(0.02)


# ----------------------------------------------------------------------------- CSE / hoist
def evaluate(expr, env: dict) -> float:
    return float(sympy.sympify(sympy.sympify(expr).xreplace({S(k): x for k, x in env.items()})))


def execute(statements, env: dict) -> dict:
    env = dict(env)
    for stmt in statements:
        subs = {S(k): val for k, val in env.items()}
        if isinstance(stmt, Assign):
            env[stmt.target] = evaluate(stmt.expr, env)
        elif isinstance(stmt, Accumulate):
            env[f"{stmt.target}_post"] += evaluate(stmt.expr, env)
        elif isinstance(stmt, Conditional):
            branch = stmt.body if bool(stmt.condition.xreplace(subs)) else stmt.orelse
            env = execute(branch, env)
    return env


def same_results(a: dict, b: dict) -> bool:
    """Equal values of every name that is not a pass's temporary."""
    def keep(d: dict) -> dict:
        return {k: x for k, x in d.items() if not k.startswith(("_cse", "_inv"))}

    return keep(a) == pytest.approx(keep(b), rel=1e-12)


ENV = {"v": 0.3, "ge": 0.2, "tau": 0.02, "dt": 1e-4, "E": -0.07, "ge_post": 0.0, "w": 0.5}


def test_cse_shares_and_preserves_values():
    e = sympy.exp(-dt / tau)
    statements = (
        Assign("v", v * e + S("E") * (1 - e) + ge * e),
        Assign("ge", ge * e),  # reads nothing written before: same segment
        Accumulate("ge", w * e),
        Assign("_x", v * sympy.exp(-dt / tau) + 1),  # reads the new v: next segment
        Conditional(v > 0, (Assign("v", sympy.sqrt(v + ge) + sympy.sqrt(v + ge) ** 3),)),
    )
    out = common_subexpressions(statements)
    temps = [s for s in out if isinstance(s, Assign) and s.target.startswith("_cse")]
    assert temps and temps[0].expr == e
    assert sum(isinstance(s, Assign) and s.expr.has(sympy.exp) for s in out) == 1
    # the new v is read by `_x`: a new segment, which reuses exp(-dt/tau) (dt, tau unchanged)
    assert out[-2] == Assign("_x", S("_cse0") * v + 1)
    assert out[-1].body[0] == Assign("_cse2", v + ge)  # conditional bodies on their own
    assert same_results(execute(out, ENV), execute(statements, ENV))


def test_cse_does_not_cross_assignments():
    x, y = sympy.symbols("x y")
    statements = (Assign("a", (x + y) ** 2 + (x + y)), Assign("x", 2),
                  Assign("b", (x + y) ** 3 + (x + y)))
    out = common_subexpressions(statements)
    assert sum(s.target.startswith("_cse") for s in out) == 2
    env = {"x": 1.0, "y": 2.0}
    assert same_results(execute(out, env), execute(statements, env))


def test_cse_keeps_every_random_draw():
    s = S("sigma")
    statements = (
        Assign("v", v + s * randn(0) * sympy.exp(tau) + sympy.exp(tau)),
        Assign("ge", ge + s * randn(0) * sympy.exp(tau)),
    )
    out = common_subexpressions(statements)
    count = sum(1 for st in out for n in sympy.preorder_traversal(st.expr)
                if isinstance(n, sympy.Function) and n.func.__name__ == "randn")
    assert count == 2
    assert out[0] == Assign("_cse0", sympy.exp(tau))


def test_hoist_invariants_moves_decay_factor():
    e = sympy.exp(-dt / tau)
    statements = (
        Assign("v", v * e + S("E") * (1 - e) - v * dt / tau),
        Conditional(v > 2 * S("E") + 1, (Assign("ge", ge * e + sympy.sqrt(dt) * randn(0)),)),
    )
    prelude, out = hoist_invariants(statements, {"dt", "tau", "E"})
    hoisted = {p.expr: p.target for p in prelude}
    assert e in hoisted and -dt / tau in hoisted and sympy.sqrt(dt) in hoisted
    assert not any(s.expr.has(sympy.exp) for s in walk_statements(out)
                   if isinstance(s, Assign))
    assert out[1].body[0].expr.has(randn(0))
    assert all(p.target.startswith("_inv") for p in prelude)
    assert same_results(execute((*prelude, *out), ENV), execute(statements, ENV))


def test_hoist_skips_written_symbols_and_draws():
    statements = (Assign("tau", 2 * tau), Assign("v", v * sympy.exp(tau) + randn(0) * 2))
    prelude, out = hoist_invariants(statements, {"tau"})
    assert prelude == () and out == statements


def test_random_functions_of_the_expressions_module_are_never_shared():
    expressions = pytest.importorskip("gpuspike.bridge.expressions")
    draw = expressions.randn(sympy.Integer(0))
    statements = (
        Assign("v", v + sympy.sqrt(dt) * draw * sympy.exp(tau)),
        Assign("ge", ge + sympy.sqrt(dt) * draw * sympy.exp(tau)),
        Assign("count", expressions.int_(v * 2)),
    )
    prelude, out = hoist_invariants(common_subexpressions(statements), {"dt", "tau"})
    calls = [n for s in out for n in sympy.preorder_traversal(s.expr)
             if isinstance(n, expressions.randn)]
    assert len(calls) == 2 and not any(p.expr.has(expressions.randn) for p in prelude)
    validate(with_update(*statements))
