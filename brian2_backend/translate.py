"""Brian2 abstract code -> IR statements: name resolution, functions, conditional writes.

Brian2 hands every code object over as abstract code (already discretised by its state
updater, constants already SI floats) plus a ``variables`` dict and ``variable_indices``.
:func:`brian2.codegen.translation.make_statements` turns the code into ``Statement``
objects (``var op expr``, subexpressions inserted where they are read); each becomes an
IR statement here:

===============================  ===========================================================
Brian2                           IR
===============================  ===========================================================
``Constant``                     its value (a number)
``ArrayVariable`` of the group   the IR variable of the same name (``x_pre`` / ``x_post``
                                 through ``_presynaptic_idx`` / ``_postsynaptic_idx``)
linked variable                  the group's IR linked variable (written only where it
                                 maps elements one to one, see :mod:`.names`)
linked subexpression             Brian2's copy of the subexpression, over the group's
                                 IR linked variables for the state it reads
shared (scalar) variable         its current value, when no per-step code writes it; else
                                 an IR shared variable of the group
``i`` of a neuron group          ``i`` (``j`` through ``_postsynaptic_idx``); for a
                                 subgroup the subgroup offset is subtracted by Brian2's own
                                 subexpression; a synapse's ``i``/``j`` likewise
clock ``t`` / ``dt``             ``t`` / the clock's dt
``timestep(x, dt)``              ``floor((x + 1e-3 dt) / dt)`` (Brian2's definition)
``TimedArray``                   a :class:`~gpuspike.bridge.ir.TimedArrayIR` call
user ``Function``                a :class:`~gpuspike.bridge.ir.FunctionIR` call (see
                                 :mod:`.functions`)
random functions                 ``rand``, ``randn``, ``poisson`` and Brian2's
                                 ``BinomialFunction``: call sites numbered over the block
temporaries, subexpressions      locals named ``_L_<name>`` (no clash with ``i``, ``j``)
``x (unless refractory)`` write  ``if not_refractory: x = ...`` (Brian2's conditional
                                 write, also for ``x_post += ...`` from synapses), except
                                 where the template overrides it
``x_post = expr`` in synapses    an IR assignment when ``expr`` reads that side only
===============================  ===========================================================
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy
from gpuspike.bridge import ir
from gpuspike.bridge.errors import UnsupportedFeature
from gpuspike.bridge.expressions import FUNCTIONS, _RandomDraw, binomial, parse_expression

from .functions import function_ir
from .names import elementwise_link, ir_name, link_names, root_group

#: Brian2 index names -> IR suffix of a variable read through them.
INDEX_SUFFIX = {"_idx": "", "_sub_idx": "", "_presynaptic_idx": "_pre",
                "_postsynaptic_idx": "_post"}
LOCAL_PREFIX = "_L_"
#: Functions the bridge parser knows; everything else must be handled here.
_KNOWN = FUNCTIONS | {"timestep"}


@dataclass
class TimedArrays:
    """Timed arrays and user functions met while translating, by IR name (shared over
    the whole network)."""

    arrays: dict[str, ir.TimedArrayIR] = field(default_factory=dict)
    by_id: dict[int, str] = field(default_factory=dict)
    functions: dict[str, ir.FunctionIR] = field(default_factory=dict)
    function_ids: dict[int, str] = field(default_factory=dict)

    def add_function(self, name: str, func: Any, owner: Any, what: str) -> str:
        """The IR name of the Brian2 user function ``func`` (called ``name``)."""
        if id(func) not in self.function_ids:
            ir_fn = ir_name(name)
            if ir_fn in self.functions or ir_fn in self.arrays:
                ir_fn = ir_name(f"{ir_fn}_{len(self.functions)}")
            self.functions[ir_fn] = function_ir(ir_fn, name, func, owner, what)
            self.function_ids[id(func)] = ir_fn
        return self.function_ids[id(func)]

    def add(self, ta: Any) -> str:
        if id(ta) in self.by_id:
            return self.by_id[id(ta)]
        name = ir_name(f"ta_{ta.name}")
        values = np.asarray(ta.values, dtype=np.float64)
        if values.ndim not in (1, 2):
            raise UnsupportedFeature(f"TimedArray {ta.name!r} with {values.ndim} dimensions")
        self.arrays[name] = ir.TimedArrayIR(name, values, float(ta.dt))
        self.by_id[id(ta)] = name
        return name


@dataclass
class Context:
    """What a code block runs on: the IR side of every Brian2 owner it may touch.

    ``sides`` maps a Brian2 index name (``_idx``, ``_presynaptic_idx``,
    ``_postsynaptic_idx``) to the root Brian2 group whose variables that index reads.
    """

    what: str
    sides: Mapping[str, Any]
    timed: TimedArrays
    synaptic: bool = False
    #: Brian2 scalar variables written by per-step code (cannot be baked as numbers)
    written_scalars: frozenset[int] = frozenset()


class BlockTranslator:
    """Translates one abstract code block of one code object into IR statements."""

    def __init__(self, ctx: Context, variables: Mapping[str, Any],
                 variable_indices: Mapping[str, str],
                 override_conditional_write: frozenset[str] = frozenset()) -> None:
        self.ctx = ctx
        self.variables = variables
        self.indices = variable_indices
        self.override = override_conditional_write
        self.n_rand = 0
        self.locals: set[str] = set()

    # -- names
    def resolve(self, key: str) -> sympy.Basic:
        """The IR expression for the Brian2 name ``key``."""
        from brian2.core.clocks import Clock
        from brian2.core.variables import ArrayVariable, AuxiliaryVariable, Constant

        if key in self.locals:
            return sympy.Symbol(LOCAL_PREFIX + key)
        var = self.variables.get(key)
        if var is None:
            raise UnsupportedFeature(f"{self.ctx.what}: unknown name {key!r} in its code")
        if isinstance(var, Constant):
            return _number(var.value)
        if isinstance(var, AuxiliaryVariable):
            return sympy.Symbol(LOCAL_PREFIX + key)
        if isinstance(var, ArrayVariable):
            owner = var.owner
            if isinstance(owner, Clock):
                if var.name == "t":
                    return sympy.Symbol("t")
                if var.name == "dt":
                    return _number(float(var.get_value()[0]))
                if var.name == "timestep":
                    dt = float(owner.dt_)
                    return sympy.floor((sympy.Symbol("t") + 1e-3 * dt) / dt)
                raise UnsupportedFeature(f"{self.ctx.what}: clock variable {var.name!r}")
            if var.scalar:
                if id(var) not in self.ctx.written_scalars:
                    return _number(var.get_value()[0])  # constant during the run
                if root_group(owner).name != self.ctx.sides["_idx"].name:
                    raise UnsupportedFeature(
                        f"{self.ctx.what}: reads the shared variable {var.name!r} of "
                        f"{owner.name!r}, which per-step code writes")
                return sympy.Symbol(var.name)  # an IR shared variable
            index = self.indices.get(key, "_idx")
            own = self.ctx.sides.get("_idx")
            if not self.ctx.synaptic and root_group(owner).name != own.name:
                for linked, name in link_names(own).items():
                    if (own.variables.get(linked) is var
                            and own.variables.indices[linked] == index):
                        return sympy.Symbol(name)  # the group's linked variable
            suffix = INDEX_SUFFIX.get(index)
            expected = self.ctx.sides.get(index)
            if suffix is None or expected is None:
                raise UnsupportedFeature(
                    f"{self.ctx.what}: variable {key!r} is read through the index "
                    f"{index!r} (linked variables and custom indices are not supported yet)")
            if root_group(owner).name != expected.name:
                raise UnsupportedFeature(
                    f"{self.ctx.what}: variable {key!r} belongs to {owner.name!r} "
                    "(linked variables are not supported yet)")
            if var.name in ("_synaptic_pre", "_synaptic_post"):
                # a synapse's own i / j; with a suffix, those of a Synapses acting as the
                # pre/post side (i_post: the pre-synaptic index of the target synapse)
                return sympy.Symbol(("i" if var.name == "_synaptic_pre" else "j") + suffix)
            if var.name == "i" and not self.ctx.synaptic:
                return sympy.Symbol("i")
            if var.name == "i" and suffix:
                return sympy.Symbol("i" if suffix == "_pre" else "j")
            return sympy.Symbol(var.name + suffix)
        raise UnsupportedFeature(f"{self.ctx.what}: name {key!r} of kind "
                                 f"{type(var).__name__}")

    def target(self, key: str) -> tuple[str, str | None, Any]:
        """(IR name, accumulation side or None, Brian2 variable) of an assignment target."""
        from brian2.core.variables import ArrayVariable

        if key in self.locals:
            return LOCAL_PREFIX + key, None, None
        var = self.variables.get(key)
        if not isinstance(var, ArrayVariable):
            self.locals.add(key)
            return LOCAL_PREFIX + key, None, None
        own = self.ctx.sides.get("_idx")
        if var.scalar:
            if root_group(var.owner).name != own.name:
                raise UnsupportedFeature(f"{self.ctx.what}: writes the shared variable "
                                         f"{var.name!r} of another group")
            return var.name, None, var
        sym = self.resolve(key)
        if not self.ctx.synaptic and root_group(var.owner).name != own.name:
            linked = next((n for n, ir_n in link_names(own).items()
                           if ir_n == getattr(sym, "name", None)), None)
            if linked is None or not elementwise_link(own, linked):
                raise UnsupportedFeature(
                    f"{self.ctx.what}: writes the linked variable {key!r} through an index "
                    "(only linked variables without `index=` to a group of the same size "
                    "can be written on the gpuspike engine; write the variable it links to)")
            return sym.name, None, var  # writes the linked group's variable
        if not isinstance(sym, sympy.Symbol) or sym.name in ("i", "j", "t"):
            raise UnsupportedFeature(f"{self.ctx.what}: cannot write to {key!r}")
        index = self.indices.get(key, "_idx")
        side = {"_presynaptic_idx": "pre", "_postsynaptic_idx": "post"}.get(index)
        return (var.name if side else sym.name), side, var

    # -- expressions
    def expression(self, text: str) -> sympy.Basic:
        """Parse a Brian2 expression string and resolve every name in it."""
        from brian2.core.functions import Function
        from brian2.input.binomial import BinomialFunction
        from brian2.input.timedarray import TimedArray

        funcs = {k for k, v in self.variables.items()
                 if isinstance(v, Function) and k not in FUNCTIONS}
        # the parser refuses names starting with '__' (Brian2 makes such names when it
        # renames subexpression identifiers): alias them
        aliases: dict[str, str] = {}

        def alias(m: re.Match) -> str:
            name = m.group(0)
            if not name.startswith("__"):
                return name
            return aliases.setdefault(name, f"_gsalias{len(aliases)}")

        text = re.sub(r"[A-Za-z_]\w*", alias, text)
        back = {v: k for k, v in aliases.items()}
        expr = parse_expression(text, functions=funcs)
        # function calls: timestep, timed arrays, Brian2's BinomialFunction; anything else
        # is not supported
        subs: dict[sympy.Basic, sympy.Basic] = {}
        for k, call in enumerate(sorted(expr.atoms(sympy.core.function.AppliedUndef),
                                        key=str)):
            name = type(call).__name__
            name = back.get(name, name)
            if name == "timestep":
                x, dt = call.args
                subs[call] = sympy.floor((x + 1e-3 * dt) / dt)
            elif isinstance(self.variables.get(name), TimedArray):
                ta = self.ctx.timed.add(self.variables[name])
                subs[call] = sympy.Function(ta)(*call.args)
            elif isinstance(self.variables.get(name), BinomialFunction):
                n, p = _binomial_parameters(self.variables[name])
                subs[call] = binomial(sympy.Integer(10**6 + k), _number(n), _number(p))
            elif isinstance(self.variables.get(name), Function) and name not in _KNOWN:
                fn = self.ctx.timed.add_function(name, self.variables[name],
                                                 self.ctx.sides.get("_idx"), self.ctx.what)
                subs[call] = sympy.Function(fn)(*call.args)
            elif name not in _KNOWN:
                raise UnsupportedFeature(f"{self.ctx.what}: function {name!r}")
        if subs:
            expr = expr.xreplace(subs)
        # random draws (rand, randn, binomial, poisson) carry call-site ids numbered per
        # expression: renumber them over the whole block (one stream per call site)
        found = sorted(expr.atoms(_RandomDraw), key=lambda d: int(d.args[0]))
        if found:
            expr = expr.xreplace({d: type(d)(sympy.Integer(self.n_rand + k), *d.args[1:])
                                  for k, d in enumerate(found)})
            self.n_rand += len(found)
        names = {s.name for s in expr.free_symbols if isinstance(s, sympy.Symbol)}
        mapping = {sympy.Symbol(n): self.resolve(back.get(n, n)) for n in names}
        return expr.xreplace(mapping) if mapping else expr

    # -- statements
    def statements(self, code: str) -> list[ir.Statement]:
        """All statements of ``code`` (scalar ones first, as Brian2 runs them)."""
        from brian2.codegen.translation import make_statements
        from brian2.core.preferences import prefs

        if not code.strip():
            return []
        scalar, vector = make_statements(code, self.variables,
                                         prefs["core.default_float_dtype"], optimise=False)
        out: list[ir.Statement] = []
        for st in (*scalar, *vector):
            out.append(self.statement(st))
        _check_side_assignments(out, self.ctx.what)
        return out

    def statement(self, st: Any) -> ir.Statement:
        rhs = self.expression(st.expr)
        name, side, var = self.target(st.var)
        op = st.op
        if op == ":=":
            op = "="
        if side is not None:
            if not self.ctx.synaptic:  # pragma: no cover - Brian2 would not produce it
                raise UnsupportedFeature(f"{self.ctx.what}: write through {side}")
            if op == "=" and _side_uniform(rhs, side):
                # the same value from every synapse of the receiving neuron: race-free
                acc: ir.Statement = ir.Assign(f"{name}_{side}", rhs)
            elif op in ("+=", "-="):
                acc = ir.Accumulate(name, rhs if op == "+=" else -rhs,
                                    side)  # type: ignore[arg-type]
            else:
                raise UnsupportedFeature(
                    f"{self.ctx.what}: `{st.var} {st.op} ...` writes a {side}-synaptic "
                    "variable other than by += / -= or by `=` from values of that side only "
                    "(not supported by the engine)")
            cond = getattr(var, "conditional_write", None)
            if cond is not None and cond.name not in self.override:
                # `v_post += w` on a `(unless refractory)` variable: only where the
                # receiving neuron is not refractory (Brian2's conditional write)
                acc = ir.Conditional(sympy.Symbol(f"{cond.name}_{side}"), (acc,))
            return acc
        current = sympy.Symbol(name)
        ops = {"=": lambda: rhs, "+=": lambda: current + rhs, "-=": lambda: current - rhs,
               "*=": lambda: current * rhs, "/=": lambda: current / rhs}
        if op not in ops:
            raise UnsupportedFeature(f"{self.ctx.what}: operator {st.op!r}")
        value = ops[op]()
        stmt: ir.Statement = ir.Assign(name, value)
        cond = getattr(var, "conditional_write", None) if var is not None else None
        if cond is not None and cond.name not in self.override:
            stmt = ir.Conditional(sympy.Symbol(cond.name), (stmt,))
        return stmt


def runner_block(r: Any, ctx: Context, key: Any = None) -> tuple[BlockTranslator, str]:
    """A translator for the code object the device captured for the runner ``r``, and
    its abstract code (block ``key``, else the first)."""
    if getattr(r, "codeobj", None) is None:  # nothing to run (e.g. no differential eqs)
        return BlockTranslator(ctx, {}, {}), ""
    cap = getattr(r.codeobj, "_gs_captured", None)
    if cap is None:
        raise UnsupportedFeature(f"{r.name!r}: its code object was not made by the gpuspike "
                                 "device (was the device set before the objects were created?)")
    tr = BlockTranslator(ctx, cap.variables, cap.variable_indices,
                         frozenset(cap.override_conditional_write or ()))
    code = cap.abstract_code.get(key, "") if key is not None else next(
        iter(cap.abstract_code.values()), "")
    return tr, code


def _side_uniform(expr: sympy.Basic, side: str) -> bool:
    """Whether ``expr`` has one value per ``side`` neuron: it reads only that side's
    variables, ``t`` and the neuron's index, and draws no random numbers."""
    allowed = {"t", "i" if side == "pre" else "j"}
    if any(s.name not in allowed and not s.name.endswith(f"_{side}")
           for s in expr.free_symbols):
        return False
    return not expr.atoms(_RandomDraw)


def _check_side_assignments(stmts: list[ir.Statement], what: str) -> None:
    """``x_post = expr`` is race-free only if no statement of the block changes what
    ``expr`` reads (Brian2 applies the block synapse by synapse; the engine once)."""
    written = set()
    for st in stmts:
        inner = st.body if isinstance(st, ir.Conditional) else (st,)
        for x in inner:
            if isinstance(x, ir.Accumulate):
                written.add(f"{x.target}_{x.side}")
            elif isinstance(x, ir.Assign) and x.target.endswith(("_pre", "_post")):
                written.add(x.target)
    for st in stmts:
        inner = st.body if isinstance(st, ir.Conditional) else (st,)
        for x in inner:
            if (isinstance(x, ir.Assign) and x.target in written
                    and {s.name for s in x.expr.free_symbols} & written):
                raise UnsupportedFeature(
                    f"{what}: `{x.target} = {x.expr}` reads a pre-/post-synaptic variable "
                    "that the same synaptic code changes (the result would depend on the "
                    "order of the synapses)")


def _binomial_parameters(func: Any) -> tuple[int, float]:
    """(n, p) of a Brian2 ``BinomialFunction`` (it keeps them only in its NumPy
    implementation's closure: ``n, p``, or ``loc, scale`` of its normal approximation)."""
    impl = func.implementations["numpy"].get_code(None)
    cells = dict(zip(impl.__code__.co_freevars,
                     (c.cell_contents for c in impl.__closure__ or ())))
    if "n" in cells and "p" in cells:
        return int(cells["n"]), float(cells["p"])
    if "loc" in cells and "scale" in cells:  # n p and sqrt(n p (1 - p))
        loc, scale = float(cells["loc"]), float(cells["scale"])
        p = 1.0 - scale**2 / loc
        return int(round(loc / p)), p
    raise UnsupportedFeature(f"BinomialFunction {func.name!r}: parameters not found")


def _number(value: Any) -> sympy.Basic:
    v = np.asarray(value).item()
    if isinstance(v, (bool, np.bool_)):
        return sympy.true if v else sympy.false
    if isinstance(v, int):
        return sympy.Integer(v)
    return sympy.Float(float(v))


def inline_locals(stmts: list[ir.Statement], result: str) -> sympy.Basic:
    """The value of local ``result`` after ``stmts`` (plain local assignments only),
    with earlier locals substituted: a summed variable needs one expression."""
    env: dict[sympy.Symbol, sympy.Basic] = {}
    for st in stmts:
        if not isinstance(st, ir.Assign) or not st.target.startswith(LOCAL_PREFIX):
            raise UnsupportedFeature(f"summed variable code with statement {st!r}")
        env[sympy.Symbol(st.target)] = st.expr.xreplace(env)
    key = sympy.Symbol(LOCAL_PREFIX + result)
    if key not in env:
        raise UnsupportedFeature(f"summed variable code without {result!r}")
    return env[key]
