"""State in and out of the engine, and recordings back into Brian2's monitors.

Before each run the device pushes every bound Brian2 array into the engine (so values set
between runs, and ``restore()``, take effect); after it, it pulls the state back and
appends what the monitors recorded to Brian2's dynamic arrays, resizing them as Brian2's
own templates do (``SpikeMonitor``: ``i``, ``t``, recorded variables, ``count``, ``N``;
``StateMonitor``: ``t`` and one row per sample; ``PopulationRateMonitor``: ``t``,
``rate``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gpuspike.engine.runtime import Simulation

from .binding import Binding


@dataclass
class Written:
    """How much of each engine recorder was already copied to Brian2 (per monitor)."""

    counts: dict[str, int] = field(default_factory=dict)


def push_state(sim: Simulation, binding: Binding) -> None:
    """Brian2's current values -> the engine's arrays."""
    for (owner, var), bvar in binding.state.items():
        sim.set(owner, var, np.asarray(bvar.get_value()))
    for (owner, var), values in binding.derived.items():
        sim.set(owner, var, values)


def pull_state(sim: Simulation, binding: Binding) -> None:
    """The engine's arrays -> Brian2's values (read-only ones are left alone)."""
    for (owner, var), bvar in binding.state.items():
        if bvar.read_only and var not in ("lastspike", "not_refractory"):
            continue
        target = bvar.get_value()
        target[...] = sim.get(owner, var).astype(target.dtype, copy=False)


def write_monitors(sim: Simulation, binding: Binding, written: Written, first_step: int,
                   n_steps: int) -> None:
    """Append everything recorded since the last call (a run of ``n_steps`` steps from
    ``first_step``) to the Brian2 monitors."""
    for name, (mon, kind, extra) in binding.monitors.items():
        done = written.counts.get(name, 0)
        if kind == "event":
            rec = sim.spikes(name)
            new = slice(done, len(rec.i))
            written.counts[name] = len(rec.i)
            values = {v: rec.values[v][new] for v in rec.values}
            if extra["reset"]:
                values = apply_on_host(extra["reset"], values, rec.t[new], rec.i[new])
            _append_events(mon, rec.i[new] - extra["start"], rec.t[new], values)
        elif kind == "state":
            st = sim.states(name)
            n = len(st.t)
            written.counts[name] = n
            if n > done:
                values = {v: st.values[v][0, done:] for v in st.values}
                for var, (aux, tvar) in extra.get("linked", {}).items():
                    values[var] = sim.states(aux).values[tvar][0, done:]
                for var, expr in extra["derived"].items():
                    values[var] = evaluate_on_host(expr, values, st.t[done:], st.indices,
                                                   extra["timed"], extra.get("functions"))
                _append_states(mon, st.t[done:], values)
        elif kind == "idle_rate":  # the source emits nothing in this run
            t_new = np.arange(first_step, first_step + n_steps) * sim.net.dt
            if len(t_new):
                _append_rates(mon, t_new, np.zeros(len(t_new)))
        elif kind == "times":
            every = extra["every"]
            steps = np.arange(first_step, first_step + n_steps)
            t = steps[steps % every == 0] * sim.net.dt
            if len(t):
                _append_states(mon, t, {})
        elif kind == "rate":
            t, rate = sim.rates(name)
            written.counts[name] = len(t)
            if len(t) > done:
                _append_rates(mon, t[done:], rate[0, done:])
        elif kind == "rate_from_spikes":
            rec = sim.spikes(name)
            written.counts[name] = len(rec.i)
            t_new = np.arange(first_step, first_step + n_steps) * sim.net.dt
            if len(t_new):
                dt = sim.net.dt
                steps = np.round(rec.t[done:] / dt).astype(np.int64)
                counts = np.bincount(steps - first_step, minlength=n_steps)[:n_steps]
                _append_rates(mon, t_new, counts / (extra["size"] * dt))


def evaluate_on_host(expr: Any, values: dict[str, np.ndarray], t: np.ndarray,
                     indices: np.ndarray, timed: dict, functions: dict | None = None
                     ) -> np.ndarray:
    """Evaluate an IR expression on recorded samples (shape (samples, indices)): ``t``
    per sample, ``i`` per index, timed arrays as the engine reads them, user functions
    (IR name -> :class:`~gpuspike.bridge.ir.FunctionIR`) through their Python code."""
    import sympy
    from gpuspike.engine.exprprint import NUMPY_NAMESPACE, NumpyExprPrinter
    from gpuspike.engine.functions import numpy_namespace

    env: dict[str, Any] = {**NUMPY_NAMESPACE, "np": np}
    called = {type(f).__name__ for f in expr.atoms(sympy.core.function.AppliedUndef)}
    env.update(numpy_namespace([f for n, f in (functions or {}).items() if n in called], env))
    subs = {}
    for k_, call in enumerate(sorted(expr.atoms(sympy.core.function.AppliedUndef), key=str)):
        ta = timed.get(type(call).__name__)
        if ta is None:
            continue
        fname = f"_ta{k_}"
        env[fname] = _timed_array_function(ta)
        subs[call] = sympy.Function(fname)(*call.args)
    if subs:
        expr = expr.xreplace(subs)
    shape = (len(t), len(indices))
    for sym in expr.free_symbols:
        if sym.name == "t":
            env["t"] = t[:, None]
        elif sym.name == "i":
            env["i"] = indices[None, :]
        else:
            env[sym.name] = values[sym.name]
    code = NumpyExprPrinter().doprint(expr)
    out = eval(compile(code, "<recorded subexpression>", "eval"), env)  # noqa: S307
    return np.broadcast_to(np.asarray(out, dtype=np.float64), shape)


def apply_on_host(stmts: tuple, values: dict[str, np.ndarray], t: np.ndarray,
                  i: np.ndarray) -> dict[str, np.ndarray]:
    """Run IR statements (assignments, conditionals) on recorded events, element-wise:
    ``values`` maps variable names to one value per event."""
    import sympy
    from gpuspike.bridge import ir
    from gpuspike.engine.exprprint import NUMPY_NAMESPACE, NumpyExprPrinter

    env = {k: np.asarray(v) for k, v in values.items()}

    def ev(expr: Any, scope: dict) -> np.ndarray:
        g: dict[str, Any] = {**NUMPY_NAMESPACE, "np": np, "t": t, "i": i, **scope}
        code = NumpyExprPrinter().doprint(sympy.sympify(expr))
        out = eval(compile(code, "<reset on host>", "eval"), g)  # noqa: S307
        return np.broadcast_to(np.asarray(out), t.shape)

    def run(block: tuple, scope: dict) -> dict:
        scope = dict(scope)
        for st in block:
            if isinstance(st, ir.Assign):
                scope[st.target] = ev(st.expr, scope)
            elif isinstance(st, ir.Conditional):
                mask = ev(st.condition, scope).astype(bool)
                yes, no = run(st.body, scope), run(st.orelse, scope)
                for k in set(yes) | set(no):
                    if k in yes and k in no:
                        scope[k] = np.where(mask, yes[k], no[k])
            else:  # pragma: no cover - resets hold no other statements
                raise TypeError(f"statement {st!r} cannot run on the host")
        return scope

    return run(tuple(stmts), env)


def _timed_array_function(ta: Any) -> Any:
    values = np.asarray(ta.values, dtype=np.float64)

    def f(t: Any, i: Any = None) -> Any:
        idx = np.clip(np.floor((np.asarray(t) + 1e-3 * ta.dt) / ta.dt).astype(np.int64), 0,
                      values.shape[0] - 1)
        return values[idx] if i is None else values[idx, np.asarray(i, dtype=np.int64)]

    return f


def _append_events(mon: Any, i: np.ndarray, t: np.ndarray, values: dict[str, np.ndarray]
                   ) -> None:
    n_new = len(i)
    count = mon.variables["count"].get_value()
    if n_new:
        count += np.bincount(i, minlength=len(count)).astype(count.dtype)[:len(count)]
    if not n_new:
        return
    # N counts the events even with record=False (``num_spikes`` reads it); the arrays
    # hold i, t (record=True) and the recorded variables
    old = int(mon.variables["N"].get_value()[0])
    mon.variables["N"].set_value(old + n_new)
    if not mon.record_variables:
        return
    mon.resize(old + n_new)
    for var in mon.record_variables:
        arr = mon.variables[var].get_value()
        if var == "i":
            arr[old:] = i
        elif var == "t":
            arr[old:] = t
        else:
            arr[old:] = values[var]


def _append_states(mon: Any, t: np.ndarray, values: dict[str, np.ndarray]) -> None:
    old = int(mon.variables["N"].get_value()[0])
    mon.resize(old + len(t))
    mon.variables["t"].get_value()[old:] = t
    for var in mon.record_variables:
        if var in values:  # absent: nothing recorded (record=False)
            mon.variables[var].get_value()[old:, :] = values[var]


def _append_rates(mon: Any, t: np.ndarray, rate: np.ndarray) -> None:
    old = int(mon.variables["N"].get_value()[0])
    mon.resize(old + len(t))
    mon.variables["N"].set_value(old + len(t))
    mon.variables["t"].get_value()[old:] = t
    mon.variables["rate"].get_value()[old:] = rate
