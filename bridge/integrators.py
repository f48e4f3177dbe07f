"""Integrators: turn an ODE/SDE system into the statements that advance it by one step ``dt``.

An ODE system maps each state variable ``x`` to the right-hand side of ``dx/dt``. Noise
follows Brian2's convention: the symbols ``xi`` and ``xi_<name>`` are white noise with unit
``second**-0.5``, so ``dx/dt = f + g*xi`` means ``dx = f dt + g dW`` (``dW ~ N(0, dt)``).
Every noise symbol is one independent Wiener process shared by all equations that use it;
it must enter linearly (``f + sum_k g_k xi_k``).

The result is a tuple of :class:`~gpuspike.bridge.ir.Assign`: temporaries (``_k1_x``,
``_x_new``, ``_noise_xi``, ...) computed from the *old* values, then ``x = _x_new`` for
every state (a single-variable system assigns ``x`` directly). The symbols ``t`` and ``dt``
are the time at the start of the step and the step.

Methods (:data:`INTEGRATORS`), with ``f`` the drift and ``g_k`` the diffusion terms:

- ``exact``: linear autonomous systems ``x' = A x + b`` (``A``, ``b`` free of states, ``t``
  and random draws; ``A`` triangular up to a reordering, so real eigenvalues and no
  oscillating modes): ``x(t+dt) = e^{A dt} x + int_0^dt e^{A s} ds b``, read off the
  exponential of the augmented matrix ``[[A, b], [0, 0]] dt`` (which also covers a singular
  ``A``). Decoupled variables use ``x' = -b/a + (x + b/a) e^{a dt}`` directly.
- ``exponential_euler``: conditionally linear systems, ``dx/dt = A x + B`` with ``A``, ``B``
  free of ``x`` (HH gates, conductance-based neurons): ``x' = -B/A + (x + B/A) e^{A dt}``
  (``A == 0``: Euler). Exact for a linear single variable; order 1 in general.
- ``euler`` (Euler-Maruyama for additive noise): ``x' = x + f dt + sum_k g_k sqrt(dt) N_k``.
- ``euler_maruyama``: the same update for any noise, in the Ito sense.
- ``rk2`` (midpoint) and ``rk4`` (classic Runge-Kutta): deterministic only, orders 2 and 4.
- ``heun``: stochastic Heun (Stratonovich sense, as Brian2's ``heun``), order 2 without noise:
  ``x_s = x + f(x) dt + sum_k g_k(x) sqrt(dt) N_k``;
  ``x' = x + (f(x) + f(x_s)) dt/2 + sum_k (g_k(x) + g_k(x_s)) sqrt(dt)/2 N_k``.

``method='auto'`` tries :data:`AUTO_ORDER` (exact, exponential_euler, rk4, euler, heun) and
takes the first that applies: without noise exact, then exponential Euler, else RK4;
with additive noise Euler-Maruyama; with multiplicative noise Heun (Stratonovich, as Brian2).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import sympy
from sympy.core.function import AppliedUndef
from sympy.matrices.exceptions import MatrixError

from . import disk_cache
from .errors import ModelError
from .ir import Assign

__all__ = [
    "AUTO_ORDER",
    "INTEGRATORS",
    "IntegrationError",
    "Integrator",
    "NormalDraw",
    "choose_method",
    "default_normal",
    "integrate",
    "noise_symbols",
]

NormalDraw = Callable[[int], sympy.Expr]
ODEs = Mapping[str, sympy.Expr]

T = sympy.Symbol("t")
DT = sympy.Symbol("dt")
#: Function names that stand for random draws (never constant within a step).
RANDOM_FUNCTIONS = frozenset({"rand", "randn"})


class IntegrationError(ModelError):
    """The ODE system cannot be integrated by the requested method."""


def default_normal(k: int) -> sympy.Expr:
    """The ``k``-th standard normal draw of the step: ``randn(k)``."""
    return sympy.Function("randn")(sympy.Integer(k))


def is_noise_symbol(name: str) -> bool:
    """``xi`` and ``xi_<name>`` are white-noise symbols (Brian2's convention)."""
    return name == "xi" or name.startswith("xi_")


def noise_symbols(odes: ODEs) -> tuple[sympy.Symbol, ...]:
    """The noise symbols used by ``odes``, sorted by name."""
    found = {s for rhs in odes.values() for s in sympy.sympify(rhs).free_symbols}
    return tuple(sorted((s for s in found if is_noise_symbol(s.name)), key=lambda s: s.name))


# ----------------------------------------------------------------------------- analysis
@dataclass(frozen=True)
class _System:
    """An ODE system split into drift ``f`` and diffusion ``g[x][xi]`` (``g`` linear in xi)."""

    states: tuple[sympy.Symbol, ...]
    drift: tuple[sympy.Expr, ...]
    diffusion: tuple[dict[sympy.Symbol, sympy.Expr], ...]
    noises: tuple[sympy.Symbol, ...]

    @property
    def stochastic(self) -> bool:
        return bool(self.noises)

    @property
    def additive(self) -> bool:
        """Noise terms free of every state variable (Ito and Stratonovich then agree)."""
        states = set(self.states)
        return all(not (g.free_symbols & states) for gs in self.diffusion for g in gs.values())


def _split(odes: ODEs) -> _System:
    if not odes:
        raise IntegrationError("no differential equations to integrate")
    for name in odes:
        if not name.isidentifier() or is_noise_symbol(name):
            raise IntegrationError(f"{name!r} cannot be a state variable name")
    states = tuple(sympy.Symbol(name) for name in odes)
    noises = noise_symbols(odes)
    drift, diffusion = [], []
    for name, rhs in odes.items():
        rhs = sympy.sympify(rhs)
        terms: dict[sympy.Symbol, sympy.Expr] = {}
        for xi in noises:
            g = sympy.diff(rhs, xi)
            if g.free_symbols & set(noises):
                raise IntegrationError(
                    f"d{name}/dt = {rhs}: noise must enter linearly (f + g*xi); "
                    f"rewrite the equation so that no noise symbol multiplies another"
                )
            if g != 0:
                terms[xi] = g
        f = rhs.subs({xi: 0 for xi in noises}) if noises else rhs
        drift.append(f)
        diffusion.append(terms)
    return _System(states, tuple(drift), tuple(diffusion), noises)


def _has_random_or_external(expr: sympy.Basic, external: bool = True) -> bool:
    """True when ``expr`` calls a random draw or (``external``) an undefined function such
    as a timed array."""
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, sympy.Function) and type(node).__name__ in RANDOM_FUNCTIONS:
            return True
        if external and isinstance(node, AppliedUndef):
            return True
    return False


def _finish(system: _System, new_values: list[sympy.Expr], prelude: list[Assign]) -> tuple:
    """Statements that set every state to its new value computed from the old ones."""
    if len(system.states) == 1:
        return (*prelude, Assign(system.states[0].name, new_values[0]))
    temps = [Assign(f"_{x.name}_new", e) for x, e in zip(system.states, new_values)]
    finals = [Assign(x.name, sympy.Symbol(f"_{x.name}_new")) for x in system.states]
    return (*prelude, *temps, *finals)


def _noise_draws(system: _System, normal: NormalDraw) -> tuple[list[Assign], dict]:
    """One ``_noise_<xi> = normal(k)`` per noise symbol, so that each is drawn once a step."""
    draws = [Assign(f"_noise_{xi.name}", normal(k)) for k, xi in enumerate(system.noises)]
    return draws, {xi: sympy.Symbol(f"_noise_{xi.name}") for xi in system.noises}


def _describe(odes: ODEs) -> str:
    return "; ".join(f"d{k}/dt = {v}" for k, v in odes.items())


# ----------------------------------------------------------------------------- integrators
class Integrator(Protocol):
    """A method: ``can_integrate(odes)`` says whether it applies, calling it integrates."""

    name: str

    def can_integrate(self, odes: ODEs) -> bool: ...

    def __call__(self, odes: ODEs, *, normal: NormalDraw = default_normal) -> tuple: ...


@dataclass(frozen=True)
class Exact:
    """Exact solution of linear autonomous systems ``x' = A x + b`` (no noise).

    ``x(t+dt) = Phi x + phi`` with ``[[Phi, phi], [0, 1]] = exp([[A, b], [0, 0]] dt)``.

    NOTE: coupled systems with symbolic parameters are solved for *distinct* symbolic
    eigenvalues: LIF + exponential synapse gives terms in ``1/(tau_m - tau_s)``, which is
    singular when both are numerically equal. Bake the parameters first (numbers let SymPy
    use the Jordan form, ``dt*exp(-dt/tau)/tau``) or use the same symbol for both.
    """

    name: str = "exact"

    def _linear(self, odes: ODEs) -> tuple[_System, sympy.Matrix, sympy.Matrix]:
        system = _split(odes)
        if system.stochastic:
            raise IntegrationError(
                f"method 'exact' cannot integrate stochastic equations ({_describe(odes)}); "
                f"use 'euler' (additive noise) or 'heun'"
            )
        A = sympy.Matrix([[sympy.diff(f, x) for x in system.states] for f in system.drift])
        zero = {x: 0 for x in system.states}
        b = sympy.Matrix([f.subs(zero) for f in system.drift])
        states = set(system.states)
        for e in (*A, *b):
            if e.free_symbols & (states | {T}) or _has_random_or_external(e):
                raise IntegrationError(
                    f"method 'exact' needs equations linear in the state variables with "
                    f"constant coefficients and inputs (no t, random draws or timed arrays); "
                    f"got {_describe(odes)}: use 'exponential_euler' or 'rk4'"
                )
        if not _triangular(A):
            raise IntegrationError(
                f"method 'exact' handles linear systems whose variables feed each other "
                f"without cycles (a triangular matrix, real eigenvalues); {_describe(odes)} "
                f"couples variables in a cycle: use 'exponential_euler' or 'rk4'"
            )
        return system, A, b

    def can_integrate(self, odes: ODEs) -> bool:
        try:
            self._linear(odes)
        except IntegrationError:
            return False
        return True

    def __call__(self, odes: ODEs, *, normal: NormalDraw = default_normal) -> tuple:
        system, A, b = self._linear(odes)
        n = len(system.states)
        x = sympy.Matrix(system.states)
        if A.is_diagonal():
            new = [_exact_scalar(A[k, k], b[k], x[k]) for k in range(n)]
        else:
            Phi, phi = _propagator(A, b)
            new = [
                sum((Phi[r, c] * x[c] for c in range(n) if Phi[r, c] != 0), phi[r])
                for r in range(n)
            ]
        return _finish(system, new, [])


def _triangular(A: sympy.Matrix) -> bool:
    """True when ``A`` is triangular up to a reordering of the variables (no feedback cycle
    between distinct variables), so that its eigenvalues are its real diagonal entries."""
    n = A.shape[0]
    remaining = set(range(n))
    while remaining:
        # a variable fed by no other remaining variable can be solved first
        free = [r for r in remaining if all(A[r, c] == 0 for c in remaining if c != r)]
        if not free:
            return False
        remaining -= set(free)
    return True


def _exact_scalar(a: sympy.Expr, b: sympy.Expr, x: sympy.Expr) -> sympy.Expr:
    """``x' = -b/a + (x + b/a) e^{a dt}`` for ``dx/dt = a x + b`` (``a == 0``: ``x + b dt``)."""
    if a == 0:
        return x + b * DT
    ba = sympy.cancel(b / a)
    return -ba + (x + ba) * sympy.exp(sympy.cancel(a * DT))


@lru_cache(maxsize=128)
def _propagator_cached(A: sympy.ImmutableMatrix, b: sympy.ImmutableMatrix) -> tuple:
    """The propagator, in memory and on disk (its SymPy simplification takes seconds for
    a two-variable system: a new process, e.g. each run of a script, would pay again)."""
    key = f"propagator v1 sympy {sympy.__version__}\n{sympy.srepr(A)}\n{sympy.srepr(b)}"
    return disk_cache.memoise("sympy", key, lambda: _derive_propagator(A, b))


def _derive_propagator(A: sympy.ImmutableMatrix, b: sympy.ImmutableMatrix) -> tuple:
    n = A.shape[0]
    M = sympy.zeros(n + 1, n + 1)
    M[:n, :n] = A
    M[:n, n] = b
    rates = [M[k, k] for k in range(n + 1)]
    distinct = all(sympy.simplify(a - b) != 0 for k, a in enumerate(rates) for b in rates[:k])
    try:
        if not distinct:  # repeated rates (e.g. tau_m == tau_s): Jordan blocks
            raise MatrixError("repeated eigenvalues")
        # Diagonalisable (distinct rates): e^{M dt} = P e^{D dt} P^-1, several times faster
        # than sympy's general matrix exponential (Jordan form) on these small systems.
        P, D = M.diagonalize()
        R = P * sympy.diag(*[sympy.exp(D[k, k] * DT) for k in range(n + 1)]) * P.inv()
    except (MatrixError, ValueError, NotImplementedError):
        R = (M * DT).exp()
    # simplify is slow but the matrices are small and the result is cached.
    R = R.applyfunc(lambda e: sympy.simplify(e) if e.has(sympy.exp) else e)
    return sympy.ImmutableMatrix(R[:n, :n]), sympy.ImmutableMatrix(R[:n, n])


def _propagator(A: sympy.Matrix, b: sympy.Matrix) -> tuple[sympy.Matrix, sympy.Matrix]:
    Phi, phi = _propagator_cached(sympy.ImmutableMatrix(A), sympy.ImmutableMatrix(b))
    return sympy.Matrix(Phi), sympy.Matrix(phi)


@dataclass(frozen=True)
class ExponentialEuler:
    """``dx/dt = A x + B`` with ``A``, ``B`` free of ``x`` (other states may appear):
    ``x' = -B/A + (x + B/A) e^{A dt}``, ``A == 0``: ``x' = x + B dt`` (no noise).

    NOTE: an ``A`` that is symbolically non-zero but numerically zero at run time gives
    0/0 (as in Brian2); an ``exprel`` form would avoid it.
    """

    name: str = "exponential_euler"

    def _split_linear(self, odes: ODEs) -> tuple[_System, list[tuple]]:
        system = _split(odes)
        if system.stochastic:
            raise IntegrationError(
                f"method 'exponential_euler' cannot integrate stochastic equations "
                f"({_describe(odes)}); use 'euler' (additive noise) or 'heun'"
            )
        parts = []
        for x, f in zip(system.states, system.drift):
            A = sympy.diff(f, x)
            if x in A.free_symbols or _has_random_or_external(A, external=False):
                raise IntegrationError(
                    f"method 'exponential_euler' needs d{x}/dt = A*{x} + B with A, B "
                    f"independent of {x}; got d{x}/dt = {f}: use 'rk4' or 'euler'"
                )
            parts.append((A, f.subs(x, 0)))
        return system, parts

    def can_integrate(self, odes: ODEs) -> bool:
        try:
            self._split_linear(odes)
        except IntegrationError:
            return False
        return True

    def __call__(self, odes: ODEs, *, normal: NormalDraw = default_normal) -> tuple:
        system, parts = self._split_linear(odes)
        new = [_exact_scalar(A, B, x) for x, (A, B) in zip(system.states, parts)]
        return _finish(system, new, [])


@dataclass(frozen=True)
class Euler:
    """``x' = x + f dt + sum_k g_k sqrt(dt) N_k`` (Euler-Maruyama; order 1, 0.5 strong with
    noise). ``multiplicative`` allows state-dependent ``g`` (Ito sense)."""

    name: str = "euler"
    multiplicative: bool = False

    def can_integrate(self, odes: ODEs) -> bool:
        try:
            system = _split(odes)
        except IntegrationError:
            return False
        return self.multiplicative or system.additive

    def __call__(self, odes: ODEs, *, normal: NormalDraw = default_normal) -> tuple:
        system = _split(odes)
        if not (self.multiplicative or system.additive):
            raise IntegrationError(
                f"method {self.name!r} handles additive noise only; {_describe(odes)} has "
                f"multiplicative noise: use 'heun' (Stratonovich) or 'euler_maruyama' (Ito)"
            )
        draws, noise = _noise_draws(system, normal)
        new = [
            x + f * DT + sum((g * sympy.sqrt(DT) * noise[xi] for xi, g in gs.items()), 0)
            for x, f, gs in zip(system.states, system.drift, system.diffusion)
        ]
        return _finish(system, new, draws)


def _deterministic(name: str, odes: ODEs) -> _System:
    system = _split(odes)
    if system.stochastic:
        raise IntegrationError(
            f"method {name!r} cannot integrate stochastic equations ({_describe(odes)}); "
            f"use 'euler' (additive noise) or 'heun'"
        )
    return system


def _at(exprs, system: _System, values, time) -> list[sympy.Expr]:
    """``exprs`` evaluated at states ``values`` and time ``time`` (simultaneous substitution)."""
    mapping = {**dict(zip(system.states, values)), T: time}
    return [sympy.sympify(e).xreplace(mapping) for e in exprs]


def _stage(system: _System, stage: str, exprs) -> tuple[list[Assign], list[sympy.Symbol]]:
    names = [sympy.Symbol(f"_{stage}_{x.name}") for x in system.states]
    return [Assign(s.name, e) for s, e in zip(names, exprs)], names


@dataclass(frozen=True)
class RK2:
    """Midpoint method: ``k1 = f(x, t)``, ``x' = x + dt f(x + dt/2 k1, t + dt/2)``."""

    name: str = "rk2"

    def can_integrate(self, odes: ODEs) -> bool:
        try:
            return not _split(odes).stochastic
        except IntegrationError:
            return False

    def __call__(self, odes: ODEs, *, normal: NormalDraw = default_normal) -> tuple:
        s = _deterministic(self.name, odes)
        x = s.states
        st1, k1 = _stage(s, "k1", s.drift)
        mid = _at(s.drift, s, [xx + DT / 2 * k for xx, k in zip(x, k1)], T + DT / 2)
        return _finish(s, [xx + DT * m for xx, m in zip(x, mid)], st1)


@dataclass(frozen=True)
class RK4:
    """Classic Runge-Kutta: ``k1 = f(x, t)``, ``k2 = f(x + dt/2 k1, t + dt/2)``,
    ``k3 = f(x + dt/2 k2, t + dt/2)``, ``k4 = f(x + dt k3, t + dt)``,
    ``x' = x + dt/6 (k1 + 2 k2 + 2 k3 + k4)``."""

    name: str = "rk4"

    def can_integrate(self, odes: ODEs) -> bool:
        return RK2().can_integrate(odes)

    def __call__(self, odes: ODEs, *, normal: NormalDraw = default_normal) -> tuple:
        s = _deterministic(self.name, odes)
        x = s.states
        st1, k1 = _stage(s, "k1", s.drift)
        st2, k2 = _stage(s, "k2", _at(s.drift, s, [a + DT / 2 * k for a, k in zip(x, k1)],
                                      T + DT / 2))
        st3, k3 = _stage(s, "k3", _at(s.drift, s, [a + DT / 2 * k for a, k in zip(x, k2)],
                                      T + DT / 2))
        st4, k4 = _stage(s, "k4", _at(s.drift, s, [a + DT * k for a, k in zip(x, k3)], T + DT))
        new = [
            a + DT / 6 * (p + 2 * q + 2 * r + w) for a, p, q, r, w in zip(x, k1, k2, k3, k4)
        ]
        return _finish(s, new, [*st1, *st2, *st3, *st4])


@dataclass(frozen=True)
class Heun:
    """Stochastic Heun (Stratonovich; Heun's order-2 method without noise):
    ``x_s = x + f(x, t) dt + sum_k g_k(x, t) sqrt(dt) N_k``,
    ``x' = x + (f(x, t) + f(x_s, t+dt)) dt/2 + sum_k (g_k(x, t) + g_k(x_s, t+dt)) sqrt(dt)/2 N_k``.
    """

    name: str = "heun"

    def can_integrate(self, odes: ODEs) -> bool:
        try:
            _split(odes)
        except IntegrationError:
            return False
        return True

    def __call__(self, odes: ODEs, *, normal: NormalDraw = default_normal) -> tuple:
        s = _split(odes)
        draws, noise = _noise_draws(s, normal)
        sq = sympy.sqrt(DT)

        def increment(drift, diffusion, weight):
            return [
                weight * (f * DT + sum((g * sq * noise[xi] for xi, g in gs.items()), 0))
                for f, gs in zip(drift, diffusion)
            ]

        support, xs = _stage(s, "support", [
            x + inc for x, inc in zip(s.states, increment(s.drift, s.diffusion, 1))
        ])
        f_s = _at(s.drift, s, xs, T + DT)
        g_s = [dict(zip(gs, _at(gs.values(), s, xs, T + DT))) for gs in s.diffusion]
        first = increment(s.drift, s.diffusion, sympy.Rational(1, 2))
        second = increment(f_s, g_s, sympy.Rational(1, 2))
        new = [x + a + b for x, a, b in zip(s.states, first, second)]
        return _finish(s, new, [*draws, *support])


#: Every method by name; ``integrate(..., method=name)`` looks it up here.
INTEGRATORS: dict[str, Integrator] = {
    "exact": Exact(),
    "exponential_euler": ExponentialEuler(),
    "euler": Euler(),
    "euler_maruyama": Euler(name="euler_maruyama", multiplicative=True),
    "rk2": RK2(),
    "rk4": RK4(),
    "heun": Heun(),
}
#: The order in which ``method='auto'`` tries the methods.
AUTO_ORDER: tuple[str, ...] = ("exact", "exponential_euler", "rk4", "euler", "heun")


def choose_method(odes: ODEs) -> str:
    """The first method of :data:`AUTO_ORDER` that can integrate ``odes``."""
    for name in AUTO_ORDER:
        if INTEGRATORS[name].can_integrate(odes):
            return name
    _split(odes)  # raises the reason (e.g. non-linear noise)
    raise IntegrationError(f"no integrator can integrate {_describe(odes)}")


def integrate(
    odes: ODEs, method: str = "auto", *, normal: NormalDraw = default_normal
) -> tuple[Assign, ...]:
    """Statements that advance the states of ``odes`` by one step ``dt``.

    Parameters
    ----------
    odes
        State variable name -> right-hand side of ``d<name>/dt`` (SymPy expression, or
        anything :func:`sympy.sympify` accepts); ``xi``/``xi_<name>`` are white noise.
    method
        A name in :data:`INTEGRATORS`, or ``'auto'`` (see :func:`choose_method`).
    normal
        ``normal(k)`` is the expression of the ``k``-th standard normal draw of a step.

    Returns
    -------
    tuple of Assign
        Temporaries, then one assignment per state variable.

    Raises
    ------
    ModelError
        ``method`` is unknown.
    IntegrationError
        The method cannot integrate these equations (the message suggests one that can).
    """
    odes = {name: sympy.sympify(rhs) for name, rhs in odes.items()}
    if method == "auto":
        method = choose_method(odes)
    try:
        integrator = INTEGRATORS[method]
    except KeyError:
        raise ModelError(
            f"unknown integration method {method!r}; known: 'auto', "
            + ", ".join(repr(k) for k in INTEGRATORS)
        ) from None
    return tuple(integrator(odes, normal=normal))
