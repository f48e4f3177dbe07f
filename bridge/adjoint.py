"""EventProp as an IR transform: a user's neuron equations -> the canonical LIF/adjoint system.

EventProp (Wunderlich & Pehle 2021) gives exact gradients for neurons whose state between
events is a *linear* two-variable system: a membrane ``v`` driven by a current ``I`` that
decays on its own and jumps by the synaptic weight at each arrival. Any such model,

    dv/dt = a v + b I + c ,        dI/dt = -I / tau_s ,      a < 0, b != 0
    spike when v crosses theta upwards ; then v <- v_reset (absolute)
    arrival of a spike through weight w:  I <- I + w

is mapped by SymPy (:func:`lif_from_equations`) onto the canonical form the engine runs,

    u = v - v_rest,  J = g I,   v_rest = -c / a,  tau_m = -1 / a,  g = b tau_m
    tau_m du/dt = -u + J ,     tau_s dJ/dt = -J ,     J <- J + g w at an arrival
    threshold theta - v_rest, reset v_reset - v_rest

whose forward propagator over a step ``dt`` is ``exp(M dt)`` with
``M = [[-1/tau_m, 1/tau_m], [0, -1/tau_s]]``, i.e. ``u <- alpha u + P J``, ``J <- beta J``
(alpha = e^{-dt/tau_m}, beta = e^{-dt/tau_s}), and whose adjoint (EVENTPROP.md §1.3, with
lambda = -costate/tau) propagates in reverse time by ``exp(M^T dt)`` rescaled::

    lambda_V <- alpha lambda_V ;  lambda_I <- beta lambda_I + K lambda_V
    jump at a spike:  lambda_V += [(theta - v_reset) lambda_V + sum_m w_mn (lambda_V,m -
                      lambda_I,m) + dl_p/dt] / (J^- - u^-)        (tau_m du/dt^- = J - u)
    dL/dw_ji = -tau_s g_j sum_{spikes k of i} lambda_I,j(t_k + d_ji)

Models that do not fit (a third state variable, a non-linear term, a relative reset, a bias
current) raise :class:`UnsupportedFeature` saying what to change. Two extensions are trained
by the surrogate rules (BPTT, e-prop) only: an adaptive threshold (ALIF) and a refractory
period (the membrane held at the reset, ``t_ref``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import sympy

from .equations import parse_equations
from .errors import ModelError, UnsupportedFeature
from .expressions import parse_expression

#: What the user is told when the model is not an EventProp-trainable LIF.
_FIX = ("EventProp trains leaky integrate-and-fire neurons with an exponential current "
        "synapse: 'dv/dt = (v_rest - v + R*I)/tau_m' and 'dI/dt = -I/tau_s', threshold "
        "'v > theta', reset 'v = v_reset', no refractory period (BPTT and e-prop take one)")


@dataclass(frozen=True)
class CanonicalLIF:
    """A population's dynamics in the canonical form of the module docstring.

    ``theta``/``v_reset`` are canonical (relative to ``v_rest``); ``None`` for a
    non-spiking leaky integrator (an LI readout). ``gain`` multiplies every incoming weight;
    ``voltage``/``current`` are the user's variable names, ``u0`` the initial canonical
    voltage.
    """

    tau_m: float
    tau_s: float
    theta: float | None = 1.0
    v_reset: float | None = 0.0
    v_rest: float = 0.0
    gain: float = 1.0
    u0: float = 0.0
    voltage: str = "v"
    current: str = "I"
    #: adaptive threshold (ALIF, Bellec et al. 2020): ``theta + beta_a a`` with
    #: ``tau_a da/dt = -a`` and ``a <- a + 1`` at each spike (``None``: plain LIF)
    tau_a: float | None = None
    beta_a: float = 0.0
    adaptation: str = "a"
    #: refractory period (BPTT and e-prop): after the step of a spike the membrane is held
    #: at ``v_reset`` for :meth:`refractory_steps` steps (its propagation skipped, the
    #: current still integrating; PyNN's/NEST's ``tau_refrac``; Brian2's ``refractory=r``
    #: with ``(unless refractory)`` on the membrane is ``r - dt``)
    t_ref: float = 0.0

    def __post_init__(self) -> None:
        if self.t_ref < 0 or (self.t_ref > 0 and not self.spiking):
            raise ModelError(f"a refractory period ({self.t_ref}) needs t_ref >= 0 and a "
                             "spiking neuron (theta)")
        if self.tau_a is not None:
            if not self.spiking:
                raise ModelError("an adaptive threshold needs a spiking neuron (theta)")
            if not self.tau_a > 0 or self.beta_a < 0:
                raise ModelError(f"ALIF needs tau_a > 0 and beta_a >= 0 (tau_a {self.tau_a}, "
                                 f"beta_a {self.beta_a})")

    @property
    def spiking(self) -> bool:
        return self.theta is not None

    @property
    def adaptive(self) -> bool:
        """An ALIF neuron (adaptive threshold)."""
        return self.tau_a is not None

    def refractory_steps(self, dt: float) -> int:
        """Steps the membrane is held after a spike's step: ``floor(t_ref / dt)`` (to 1e-3
        of a step, Brian2's ``timestep`` rule)."""
        return int(math.floor(self.t_ref / dt + 1e-3)) if self.t_ref > 0 else 0

    def rho(self, dt: float) -> float:
        """The adaptation's decay over one step, ``e^{-dt/tau_a}``."""
        return math.exp(-dt / self.tau_a)

    def propagators(self, dt: float) -> StepPropagators:
        """Forward and adjoint propagators over one step ``dt`` (:func:`step_propagators`)."""
        return step_propagators(self.tau_m, self.tau_s, dt)


@dataclass(frozen=True)
class StepPropagators:
    """``u <- alpha u + p_vi J``, ``J <- beta J``; reverse: ``lambda_I += k_iv lambda_V``."""

    alpha: float
    beta: float
    p_vi: float
    k_iv: float


_TM, _TS, _DT = sympy.symbols("tau_m tau_s dt", positive=True)


def _symbolic_propagators() -> tuple[sympy.Expr, sympy.Expr]:
    """``P(dt)`` and ``K(dt)`` as closed forms, from ``exp(M dt)`` and ``exp(M^T dt)``.

    ``P`` is the (v, I) entry of ``exp(M dt)``; the adjoint of the scaled costates
    ``lambda_V = -mu_V/tau_m``, ``lambda_I = -mu_I/tau_s`` obeys ``mu(t - dt) =
    exp(M^T dt) mu(t)``, so ``K = (tau_m/tau_s) exp(M^T dt)[I, V]``.
    """
    m = sympy.Matrix([[-1 / _TM, 1 / _TM], [0, -1 / _TS]])
    e = (m * _DT).exp()
    et = (m.T * _DT).exp()
    return sympy.simplify(e[0, 1]), sympy.simplify(et[1, 0] * _TM / _TS)


_P_EXPR, _K_EXPR = _symbolic_propagators()
_P_FN = sympy.lambdify((_TM, _TS, _DT), _P_EXPR, "math")
_K_FN = sympy.lambdify((_TM, _TS, _DT), _K_EXPR, "math")


def _phi(z: float) -> float:
    return math.expm1(z) / z if z != 0.0 else 1.0


def step_propagators(tau_m: float, tau_s: float, dt: float) -> StepPropagators:
    """Numerical values of the exact step propagators.

    Equal time constants make the closed forms 0/0; there (and near it, where they cancel)
    the same functions are evaluated as ``(dt/tau) e^{-dt/tau} expm1(z)/z``.
    """
    if tau_m <= 0 or tau_s <= 0 or dt <= 0:
        raise ModelError(f"tau_m ({tau_m}), tau_s ({tau_s}) and dt ({dt}) must be positive")
    alpha, beta = math.exp(-dt / tau_m), math.exp(-dt / tau_s)
    z = dt * (1.0 / tau_m - 1.0 / tau_s)
    if abs(z) > 1e-3:
        p, k = float(_P_FN(tau_m, tau_s, dt)), float(_K_FN(tau_m, tau_s, dt))
    else:
        p = alpha * (dt / tau_m) * _phi(z)
        k = beta * (dt / tau_s) * _phi(-z)
    return StepPropagators(alpha, beta, p, k)


def _numeric(expr: object, values: Mapping[str, float]) -> sympy.Expr:
    subs = {s: values[s.name] for s in expr.free_symbols if s.name in values}
    return sympy.sympify(sympy.sympify(expr).xreplace(subs))


def _constant(expr: sympy.Basic, what: str) -> float:
    if expr.free_symbols:
        raise UnsupportedFeature(
            f"{what} depends on {sorted(s.name for s in expr.free_symbols)}; give those "
            f"names values (namespace) — {_FIX}")
    return float(expr)


def lif_from_equations(
    equations: str,
    namespace: Mapping[str, float] | None = None,
    *,
    threshold: str | None,
    reset: str | None,
    current: str | None = None,
    initial_v: float | None = None,
    refractory: float = 0.0,
    where: str = "neuron model",
) -> CanonicalLIF:
    """Recognise a user's neuron model as an EventProp-trainable LIF (or LI) population.

    Parameters
    ----------
    equations : str
        Brian2-syntax equations (units allowed), e.g.
        ``"dv/dt = (I - v)/tau_m : 1\\n dI/dt = -I/tau_s : 1"``.
    namespace : mapping, optional
        Values of the parameters the equations use (SI units).
    threshold, reset : str or None
        ``"v > theta"`` and ``"v = v_reset"``; both ``None`` for a leaky-integrator readout.
    current : str, optional
        The variable synapses add their weight to; by default the state variable that
        decays on its own.
    initial_v : float, optional
        Initial membrane value (default ``v_rest``).
    refractory : float
        Seconds the membrane is held at the reset after a spike's step
        (:attr:`CanonicalLIF.t_ref`; BPTT and e-prop train it, EventProp refuses it). The
        membrane's equation must carry ``(unless refractory)`` and the current's must not.
    where : str
        Object name for error messages.

    Returns
    -------
    CanonicalLIF
    """
    ns = dict(namespace or {})
    eqs = parse_equations(equations)
    odes = {name: _numeric(expr, ns) for name, expr in eqs.odes().items()}
    adapt = None
    if len(odes) == 3 and threshold is not None and _moves_threshold(odes, threshold, ns):
        # ALIF: an adaptive threshold
        adapt, threshold, reset = _adaptation(odes, threshold, reset, ns, where)
        del odes[adapt.name]
    if len(odes) != 2:
        raise UnsupportedFeature(
            f"{where}: {len(odes)} differential equations ({sorted(odes)}); EventProp needs "
            f"exactly two state variables — {_FIX}")
    syms = {name: sympy.Symbol(name) for name in odes}
    for name, rhs in odes.items():
        extra = {s.name for s in rhs.free_symbols} - set(syms)
        if extra:
            raise UnsupportedFeature(
                f"{where}: d{name}/dt uses {sorted(extra)} (time, noise or an unknown "
                f"parameter); give parameters values in the namespace — {_FIX}")
        poly = sympy.Poly(sympy.expand(rhs), *syms.values()) if rhs.free_symbols else None
        if poly is not None and poly.total_degree() > 1:
            raise UnsupportedFeature(f"{where}: d{name}/dt = {rhs} is not linear — {_FIX}")
    jac = {(a, b): _constant(sympy.diff(odes[a], syms[b]), f"{where}: d{a}/dt")
           for a in odes for b in odes}
    decaying = [a for a in odes if jac[(a, next(b for b in odes if b != a))] == 0.0]
    if current is None:
        if len(decaying) != 1:
            raise UnsupportedFeature(
                f"{where}: cannot tell the synaptic current from the membrane (the current "
                f"must decay on its own) — {_FIX}")
        current = decaying[0]
    if current not in odes:
        raise ModelError(f"{where}: the synaptic current {current!r} is not a state variable "
                         f"of the model ({sorted(odes)})")
    voltage = next(b for b in odes if b != current)
    if jac[(current, voltage)] != 0.0:
        raise UnsupportedFeature(f"{where}: d{current}/dt depends on {voltage} — {_FIX}")
    zero = {syms[voltage]: 0, syms[current]: 0}
    if _constant(odes[current].xreplace(zero), where) != 0.0:
        raise UnsupportedFeature(
            f"{where}: d{current}/dt has a constant drive; model a bias as a constant "
            f"input to v instead — {_FIX}")
    a, b = jac[(voltage, voltage)], jac[(voltage, current)]
    c = _constant(odes[voltage].xreplace(zero), where)
    decay_i = jac[(current, current)]
    if a >= 0 or decay_i >= 0 or b == 0:
        raise UnsupportedFeature(
            f"{where}: the membrane must leak (a = {a}), the current decay (-1/tau_s = "
            f"{decay_i}) and drive the membrane (b = {b}) — {_FIX}")
    tau_m, tau_s = -1.0 / a, -1.0 / decay_i
    v_rest = -c / a
    theta = v_reset = None
    if (threshold is None) != (reset is None):
        raise UnsupportedFeature(f"{where}: a threshold without a reset (or the reverse) — {_FIX}")
    if threshold is not None:
        theta = _threshold(threshold, voltage, ns, where) - v_rest
        v_reset = _reset(reset, voltage, ns, where) - v_rest
        if v_reset >= theta:
            raise ModelError(f"{where}: reset ({v_reset + v_rest}) must lie below the "
                             f"threshold ({theta + v_rest})")
    u0 = 0.0 if initial_v is None else float(initial_v) - v_rest
    extra = {}
    if adapt is not None:
        if adapt.name in (voltage, current) or any(
                sympy.Symbol(adapt.name) in odes[x].free_symbols for x in odes):
            raise UnsupportedFeature(f"{where}: the adaptation {adapt.name!r} must only move "
                                     f"the threshold — {_ALIF_FIX}")
        extra = dict(tau_a=adapt.tau_a, beta_a=adapt.beta_a, adaptation=adapt.name)
    if refractory:
        if threshold is None:
            raise ModelError(f"{where}: a refractory period needs a threshold and reset")
        held = {ln.name for ln in eqs.of_kind("diff", "unless refractory")}
        if voltage not in held or current in held:
            raise UnsupportedFeature(
                f"{where}: a refractory period holds the membrane at the reset while the "
                f"current goes on: mark 'd{voltage}/dt = ... (unless refractory)' and not "
                f"d{current}/dt (flagged now: {sorted(held) or 'none'})")
        extra["t_ref"] = float(refractory)
    return CanonicalLIF(tau_m, tau_s, theta, v_reset, v_rest, b * tau_m, u0, voltage, current,
                        **extra)


_ALIF_FIX = ("an adaptive threshold (ALIF) is 'da/dt = -a/tau_a', threshold 'v > theta + "
             "beta*a', reset 'v = v_reset; a += 1' (any positive step); BPTT and e-prop train "
             "it")


@dataclass(frozen=True)
class _Adaptation:
    name: str
    tau_a: float
    beta_a: float   # threshold increase per spike (the canonical a jumps by 1)
    scale: float    # the user's a per canonical a (the reset's step)


def _moves_threshold(odes: dict, threshold: str, ns: Mapping[str, float]) -> bool:
    """The threshold's right-hand side names a state variable (an adaptive threshold)."""
    rel = _numeric(parse_expression(threshold), ns)
    rhs = getattr(rel, "rhs", None)
    return rhs is not None and any(sympy.Symbol(n) in rhs.free_symbols for n in odes)


def _adaptation(odes: dict, threshold: str, reset: str | None, ns: Mapping[str, float],
                where: str) -> tuple[_Adaptation, str, str]:
    """The ALIF part of a three-variable model: the state variable in the threshold, its
    decay, its step at the reset; returns it and the threshold and reset without it (the
    LIF part, recognised as usual). Canonically ``a`` jumps by 1: ``beta_a = beta * step``."""
    rel = _numeric(parse_expression(threshold), ns)
    if not isinstance(rel, (sympy.StrictGreaterThan, sympy.GreaterThan)):
        raise UnsupportedFeature(f"{where}: threshold {threshold!r} — {_ALIF_FIX}")
    names = [n for n in odes if sympy.Symbol(n) in rel.rhs.free_symbols]
    if len(names) != 1:
        raise UnsupportedFeature(
            f"{where}: three state variables ({sorted(odes)}) but the threshold {threshold!r} "
            f"does not depend on exactly one of them — {_FIX}; or {_ALIF_FIX}")
    name = names[0]
    x = sympy.Symbol(name)
    beta = _constant(sympy.diff(rel.rhs, x), f"{where}: threshold {threshold!r}")
    base = sympy.expand(rel.rhs - beta * x)
    rhs = odes[name]
    if rhs.free_symbols - {x} or sympy.expand(rhs).xreplace({x: 0}) != 0:
        raise UnsupportedFeature(f"{where}: d{name}/dt = {rhs} — {_ALIF_FIX}")
    decay = _constant(sympy.diff(rhs, x), f"{where}: d{name}/dt")
    if decay >= 0 or beta < 0:
        raise UnsupportedFeature(f"{where}: the adaptation must decay and raise the "
                                 f"threshold (d{name}/dt = {rhs}, beta {beta}) — {_ALIF_FIX}")
    lines = [t.strip() for t in (reset or "").replace(";", "\n").splitlines() if t.strip()]
    step = [t for t in lines if t.replace(" ", "").startswith(f"{name}+=")]
    rest = [t for t in lines if t not in step]
    if len(step) != 1:
        raise UnsupportedFeature(f"{where}: reset {reset!r} must add a step to {name!r} — "
                                 f"{_ALIF_FIX}")
    jump = _constant(_numeric(parse_expression(step[0].split("+=", 1)[1]), ns),
                     f"{where}: reset {reset!r}")
    if jump <= 0:
        raise UnsupportedFeature(f"{where}: the reset's step of {name!r} must be positive — "
                                 f"{_ALIF_FIX}")
    op = ">=" if isinstance(rel, sympy.GreaterThan) else ">"
    lif_threshold = f"{sympy.sstr(rel.lhs)} {op} {sympy.sstr(base)}"
    return (_Adaptation(name, -1.0 / decay, beta * jump, jump), lif_threshold,
            "; ".join(rest))


def _threshold(text: str, voltage: str, ns: Mapping[str, float], where: str) -> float:
    rel = _numeric(parse_expression(text), ns)
    if not isinstance(rel, (sympy.StrictGreaterThan, sympy.GreaterThan)):
        raise UnsupportedFeature(f"{where}: threshold {text!r} is not 'v > theta' — {_FIX}")
    if rel.lhs != sympy.Symbol(voltage):
        raise UnsupportedFeature(
            f"{where}: threshold {text!r} must compare the membrane {voltage!r} — {_FIX}")
    return _constant(rel.rhs, f"{where}: threshold {text!r}")


def _reset(text: str, voltage: str, ns: Mapping[str, float], where: str) -> float:
    lines = [s.strip() for s in text.replace(";", "\n").splitlines() if s.strip()]
    if len(lines) != 1 or "=" not in lines[0]:
        raise UnsupportedFeature(f"{where}: reset {text!r} must be one 'v = v_reset' — {_FIX}")
    lhs, rhs = (s.strip() for s in lines[0].split("=", 1))
    if lhs.endswith(("+", "-", "*", "/")):
        raise UnsupportedFeature(
            f"{where}: reset {text!r} is relative; EventProp's jump condition assumes an "
            f"absolute reset — {_FIX}")
    if lhs != voltage:
        raise UnsupportedFeature(f"{where}: reset {text!r} must set {voltage!r} — {_FIX}")
    value = _numeric(parse_expression(rhs), ns)
    if sympy.Symbol(voltage) in value.free_symbols:
        raise UnsupportedFeature(f"{where}: reset {text!r} depends on {voltage} — {_FIX}")
    return _constant(value, f"{where}: reset {text!r}")
