"""Build IR groups from equation strings: the engine's own small modelling API.

This is what tests, examples and the training code use to write a network directly
(the Brian2 and PyNN frontends produce the same IR from their own objects)::

    lif = neuron_group("exc", 4000, '''
        dv/dt = (ge + gi - (v - El)) / taum : volt (unless refractory)
        dge/dt = -ge / taue : volt
        dgi/dt = -gi / taui : volt
        ''', threshold="v > Vt", reset="v = Vr", refractory="5*ms",
        namespace={"El": -0.049, "taum": 0.02, ...}, init={"v": "Vr + rand()*(Vt - Vr)"})
    exc = synapses("exc_syn", "exc", "exc", on_pre="ge_post += we",
                   connector=FixedProbability(0.02), namespace={"we": 1.62e-3})

Numbers in ``namespace`` become :class:`~.ir.Parameter` (SI values); values may also be
strings with units (``"20*ms"``), and then the equations' units are checked against them
(:class:`~.errors.UnitError` names the equation). Unit names inside strings (``5*ms``)
are replaced by their SI scale. Differential equations are integrated
with :func:`~.integrators.integrate`; ``(unless refractory)`` variables keep their value
while the neuron is refractory (Brian2's semantics). Event-driven synaptic variables are
advanced exactly from their last update at every event of a pathway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import sympy

from . import ir
from .equations import Equations, check_units, parse_equations
from .errors import ModelError
from .expressions import parse_expression, parse_statements
from .integrators import integrate
from .units import Dimension, dimension_of

BUILTINS = ("t", "dt", "i", "j", "N", "N_pre", "N_post")


def _namespace(namespace: Mapping[str, Any] | None) -> tuple[dict[str, float], dict]:
    """SI values of a namespace, and the dimensions of the entries given with units.

    Values are numbers (SI, unit unknown: not checked) or strings with units such as
    ``"20*ms"`` (value 0.02, dimension second: checked against the equations).
    """
    values: dict[str, float] = {}
    dims: dict[str, Dimension] = {}
    for key, v in (namespace or {}).items():
        if isinstance(v, str):
            values[key] = float(parse_expression(v, units=True))
            dims[key] = dimension_of(parse_expression(v), {})
        else:
            values[key] = float(v)
    return values, dims


def _initializer(value: Any, allowed, functions) -> ir.Initializer:
    if isinstance(value, ir.Constant | ir.ExpressionInit | ir.ArrayInit):
        return value
    if isinstance(value, str):
        return ir.ExpressionInit(parse_expression(value, allowed=allowed, functions=functions,
                                                  units=True))
    if np.ndim(value) == 0:
        return ir.Constant(float(value))
    return ir.ArrayInit(np.asarray(value))


def _parameters(namespace: Mapping[str, float] | None, used: set[str]) -> tuple[ir.Parameter, ...]:
    return tuple(ir.Parameter(k, float(v)) for k, v in sorted((namespace or {}).items())
                 if k in used)


def _variables(eqs: Equations, init: Mapping[str, Any], allowed, functions, *,
               batched: bool, extra: tuple[ir.Variable, ...] = ()) -> tuple[ir.Variable, ...]:
    out = []
    for ln in eqs.lines:
        if ln.kind == "sub":
            continue
        v0 = init.get(ln.name, 0.0)
        out.append(ir.Variable(ln.name, ln.dtype, ln.unit, batched=batched,
                               read_only="constant" in ln.flags,
                               init=_initializer(v0, allowed, functions)))
    out += list(extra)
    unknown = set(init) - {v.name for v in out}
    if unknown:
        raise ModelError(f"initial values given for {sorted(unknown)}, which the equations "
                         "do not define")
    return tuple(out)


def _statements(text: str | None, allowed, functions) -> tuple[ir.Statement, ...]:
    if not text:
        return ()
    return parse_statements(text, allowed=allowed, functions=functions, units=True)


def _expr(text: str, allowed, functions) -> sympy.Basic:
    return parse_expression(text, allowed=allowed, functions=functions, units=True)


def _substitute_subexpressions(stmts: tuple[ir.Statement, ...], eqs: Equations
                               ) -> tuple[ir.Statement, ...]:
    from .passes import substitute

    subs = {sympy.Symbol(k): v for k, v in eqs.subexpressions().items()}
    return substitute(stmts, subs) if subs else stmts


def neuron_group(name: str, n: int, model: str, *, threshold: str | None = None,
                 reset: str | None = None, refractory: str | float | None = None,
                 method: str = "auto", namespace: Mapping[str, float] | None = None,
                 init: Mapping[str, Any] | None = None,
                 events: Mapping[str, tuple[str, str | None]] | None = None,
                 functions: tuple[str, ...] = (), batched: bool = True) -> ir.NeuronGroupIR:
    """A :class:`~.ir.NeuronGroupIR` from Brian2-style equations.

    ``events``: extra events, name -> (condition, statements or None).
    """
    namespace, known = _namespace(namespace)
    init = dict(init or {})
    eqs = parse_equations(model, functions=functions,
                          external=set(namespace) | set(BUILTINS) | {"lastspike",
                                                                     "not_refractory"})
    check_units(eqs, known, f"neuron group {name!r}")
    names = set(eqs.names)
    allowed = names | set(namespace) | set(BUILTINS) | {"lastspike", "not_refractory"}
    odes = eqs.odes(event_driven=None)
    update = integrate(odes, method) if odes else ()
    has_refractory = refractory is not None
    if has_refractory:
        flagged = {ln.name for ln in eqs.of_kind("diff", "unless refractory")}
        update = tuple(
            ir.Conditional(sympy.Symbol("not_refractory"), (st,))
            if isinstance(st, ir.Assign) and st.target in flagged else st
            for st in update)
    evs = []
    if threshold is not None:
        ref = None
        if has_refractory:
            ref = (sympy.Float(refractory) if isinstance(refractory, (int, float))
                   else _expr(refractory, allowed, functions))
        evs.append(ir.EventIR("spike", _expr(threshold, allowed, functions),
                              _statements(reset, allowed, functions), ref))
    elif reset is not None or has_refractory:
        raise ModelError(f"neuron group {name!r}: reset/refractory need a threshold")
    for ev_name, (cond, stmts) in (events or {}).items():
        evs.append(ir.EventIR(ev_name, _expr(cond, allowed, functions),
                              _statements(stmts, allowed, functions)))
    evs = [ir.EventIR(e.name, _substitute_subexpressions((ir.Assign("_c", e.condition),),
                                                         eqs)[0].expr,
                      _substitute_subexpressions(e.reset, eqs), e.refractory) for e in evs]
    update = _substitute_subexpressions(tuple(update), eqs)
    used = set()
    for st in update:
        used |= {s.name for s in _symbols(st)}
    for e in evs:
        used |= {s.name for s in e.condition.free_symbols}
        for st in e.reset:
            used |= {s.name for s in _symbols(st)}
        if e.refractory is not None:
            used |= {s.name for s in e.refractory.free_symbols}
    for v in init.values():
        if isinstance(v, str):
            used |= set(namespace)
    return ir.NeuronGroupIR(
        name, int(n), _variables(eqs, init, allowed, functions, batched=batched),
        _parameters(namespace, used | set(namespace)), tuple(update), tuple(evs))


def _symbols(st: ir.Statement) -> set[sympy.Symbol]:
    if isinstance(st, (ir.Assign, ir.Accumulate)):
        return st.expr.free_symbols
    if isinstance(st, ir.Conditional):
        out = set(st.condition.free_symbols)
        for s in (*st.body, *st.orelse):
            out |= _symbols(s)
        return out
    return set()


def synapses(name: str, pre: str, post: str, *, model: str = "", on_pre: str | None = None,
             on_post: str | None = None, connector: ir.Connector = ir.AllToAll(),
             delay: float | str | None = None, max_delay: float | None = None, dt: float,
             method: str = "auto", namespace: Mapping[str, float] | None = None,
             init: Mapping[str, Any] | None = None, functions: tuple[str, ...] = (),
             pre_variables: tuple[str, ...] = (), post_variables: tuple[str, ...] = (),
             batched: bool = False) -> ir.SynapseGroupIR:
    """A :class:`~.ir.SynapseGroupIR` from Brian2-style model and pathway code.

    ``delay``: seconds (homogeneous), or the name of a synapse variable in ``model``
    holding per-synapse delays in seconds (heterogeneous; ``max_delay`` bounds it).
    ``pre_variables`` / ``post_variables``: names of the pre/post groups' variables that
    the code may use with ``_pre`` / ``_post``.
    """
    namespace, known = _namespace(namespace)
    init = dict(init or {})
    side_names = {f"{v}_pre" for v in pre_variables} | {f"{v}_post" for v in post_variables}
    eqs = parse_equations(model, functions=functions,
                          external=set(namespace) | set(BUILTINS) | side_names | {
                              "lastupdate", "lastspike_pre", "lastspike_post"})
    names = set(eqs.names)
    allowed = (names | set(namespace) | set(BUILTINS) | side_names | {"lastupdate"}
               | {"lastspike_pre", "lastspike_post"})
    summed = tuple(
        ir.SummedVariableIR(ln.name.rsplit("_", 1)[0], ln.expr,
                            "post" if ln.name.endswith("_post") else "pre")
        for ln in eqs.of_kind("sub", "summed"))
    for ln in eqs.of_kind("sub", "summed"):
        if not (ln.name.endswith("_post") or ln.name.endswith("_pre")):
            raise ModelError(f"synapses {name!r}: summed variable {ln.name!r} must end in "
                             "_post or _pre")
    clock = eqs.odes(event_driven=False)
    dynamics = integrate(clock, method) if clock else ()
    event_odes = eqs.odes(event_driven=True)
    extra: tuple[ir.Variable, ...] = ()
    prelude: tuple[ir.Statement, ...] = ()
    if event_odes:
        # exact solution over the time since the last update, at every event
        step = integrate(event_odes, "exact")
        elapsed = sympy.Symbol("t") - sympy.Symbol("lastupdate")
        prelude = tuple(ir.Assign(s.target, s.expr.xreplace({sympy.Symbol("dt"): elapsed}))
                        for s in step) + (ir.Assign("lastupdate", sympy.Symbol("t")),)
        extra = (ir.Variable("lastupdate", "float64", "second", batched=batched,
                             init=ir.Constant(0.0)),)
    delay_var = None
    pathway_delay: ir.Delay = ir.HomogeneousDelay(0)
    if isinstance(delay, str):
        if delay not in names:
            raise ModelError(f"synapses {name!r}: delay variable {delay!r} is not in the model")
        if max_delay is None:
            raise ModelError(f"synapses {name!r}: heterogeneous delays need max_delay")
        delay_var = delay
        pathway_delay = ir.HeterogeneousDelay(f"{delay}_steps", int(round(max_delay / dt)))
    elif delay is not None:
        pathway_delay = ir.HomogeneousDelay(int(round(float(delay) / dt)))
    variables = _variables(eqs, init, allowed, functions, batched=batched, extra=extra)
    if delay_var is not None:
        d0 = init.get(delay_var, 0.0)
        steps_init: ir.Initializer
        if isinstance(d0, str):
            steps_init = ir.ExpressionInit(sympy.floor(_expr(d0, allowed, functions) / dt
                                                       + sympy.Rational(1, 2)))
        elif np.ndim(d0) == 0:
            steps_init = ir.Constant(float(np.round(float(d0) / dt)))
        else:
            steps_init = ir.ArrayInit(np.round(np.asarray(d0) / dt).astype(np.int32))
        variables += (ir.Variable(f"{delay_var}_steps", "int32", "1", batched=False,
                                  read_only=True, init=steps_init),)
    pathways = []
    for pw_name, code, source in (("pre", on_pre, "pre"), ("post", on_post, "post")):
        if not code:
            continue
        stmts = prelude + _statements(code, allowed, functions)
        pathways.append(ir.PathwayIR(pw_name, _substitute_subexpressions(stmts, eqs), source,
                                     "spike", pathway_delay if source == "pre" else
                                     ir.HomogeneousDelay(0)))
    used: set[str] = set()
    for st in (*dynamics, *(s for p in pathways for s in p.statements)):
        used |= {s.name for s in _symbols(st)}
    for sv in summed:
        used |= {s.name for s in sv.expr.free_symbols}
    return ir.SynapseGroupIR(
        name, pre, post, connector, variables, _parameters(namespace, used | set(namespace)),
        tuple(pathways), _substitute_subexpressions(tuple(dynamics), eqs), summed)
