"""The network intermediate representation (IR): frozen dataclasses, SI floats, SymPy maths.

A :class:`NetworkIR` is what both frontends (Brian2, PyNN) produce and what the engine
lowers to kernels. Everything in it is already discretised: a neuron group's ``update`` is
the statements that advance its state by one step ``dt`` (integrators in
:mod:`gpuspike.bridge.integrators` make them from ODEs).

Symbols that expressions may use
--------------------------------
- the group's own variables and parameters by name;
- in synapse code, ``x_pre`` / ``x_post`` for variables of the pre- / post-synaptic group
  and the synapse's own variables unsuffixed;
- ``t`` (time at the start of the step, seconds), ``dt``, ``i`` (element index; the
  pre-synaptic index in synapse code), ``j`` (post-synaptic index), ``N`` (group size),
  ``N_pre``, ``N_post``;
- ``rand()`` / ``randn()`` (one fresh uniform [0, 1) / standard normal draw per call site,
  element and step, from the counter-based RNG), and timed arrays by their name
  (``stimulus(t)`` or ``stimulus(t, i)``).

Semantics of one step (Brian2's order; other orders through :attr:`NetworkIR.schedule`)
-------------------------------------------------------------------------------------
``start`` (monitors with ``when='start'``) -> ``groups`` (neuron updates, clock-driven
synapse dynamics, summed variables, cable solves of multi-compartment neurons) ->
``thresholds`` (event conditions; spikes pushed to
each group's spike ring) -> ``synapses`` (pathways deliver the events of step
``t - delay``) -> ``resets`` (reset statements of the neurons that spiked) -> ``end``
(monitors with ``when='end'``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Union

import numpy as np
import sympy

from .errors import ModelError

#: ``'float'`` resolves to the network's precision; the others are fixed.
Dtype = Literal["float", "float32", "float64", "int32", "int64", "uint32", "bool"]
DTYPES: tuple[str, ...] = ("float", "float32", "float64", "int32", "int64", "uint32", "bool")
Side = Literal["pre", "post"]
Phase = Literal["start", "groups", "thresholds", "synapses", "resets", "end"]

#: Brian2's default order of phases within one step.
SCHEDULE_BRIAN2: tuple[str, ...] = ("start", "groups", "thresholds", "synapses", "resets", "end")
#: GeNN/PyNN order: the previous step's events are delivered before the neurons update.
SCHEDULE_GENN: tuple[str, ...] = ("start", "synapses", "groups", "thresholds", "resets", "end")
PHASES: frozenset[str] = frozenset(SCHEDULE_BRIAN2)


# ----------------------------------------------------------------------------- initialisers
@dataclass(frozen=True)
class Constant:
    """Every element starts at ``value``."""

    value: float


@dataclass(frozen=True)
class ExpressionInit:
    """Per-element initial value from an expression of ``i`` (and ``j``, ``N``, ``rand()``,
    ``randn()`` and the group's parameters), evaluated on the device."""

    expr: sympy.Expr


@dataclass(frozen=True, eq=False)
class ArrayInit:
    """Explicit per-element values (shape ``(n,)``, or ``(batch, n)`` for batched ones)."""

    values: np.ndarray


Initializer = Union[Constant, ExpressionInit, ArrayInit]


# ----------------------------------------------------------------------------- variables
@dataclass(frozen=True)
class Variable:
    """A per-element array of a group (neurons, synapses or a source).

    ``batched``: one value per batch entry (state such as ``v``) rather than one shared by
    every batch entry (a weight). ``read_only`` variables are never written by kernels.
    """

    name: str
    dtype: str = "float"
    unit: str = "1"
    batched: bool = True
    read_only: bool = False
    init: Initializer = Constant(0.0)
    #: A linked variable (Brian2's ``linked_var``): ``(group, variable)`` whose values this
    #: name reads, element for element, or through the int variable ``linked_index`` of
    #: this group. It has no storage of its own and is read-only.
    linked: tuple[str, str] | None = None
    linked_index: str | None = None
    #: One value for the whole group (Brian2's ``(shared)``), per batch entry if batched.
    #: Element code may assign it only an expression that is the same for every element.
    shared: bool = False

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ModelError(
                f"variable {self.name!r}: dtype {self.dtype!r} unknown; use one of {DTYPES}"
            )
        if not self.name.isidentifier():
            raise ModelError(f"variable name {self.name!r} is not a valid identifier")


@dataclass(frozen=True)
class Parameter:
    """A constant shared by all elements (SI value); baked into the generated code."""

    name: str
    value: float
    unit: str = "1"


# ----------------------------------------------------------------------------- statements
@dataclass(frozen=True)
class Assign:
    """``target = expr`` on the element the kernel runs for (no cross-element write)."""

    target: str
    expr: sympy.Expr


@dataclass(frozen=True)
class Accumulate:
    """``target_<side> += expr``: the only cross-element write, done atomically.

    In synapse code ``side`` is ``'post'`` or ``'pre'``: the variable ``target`` of that
    neuron group receives ``expr`` from every synapse that runs the statement this step.
    """

    target: str
    expr: sympy.Expr
    side: Side = "post"


@dataclass(frozen=True)
class Conditional:
    """``if condition: body else: orelse`` (both tuples of statements)."""

    condition: sympy.Basic
    body: tuple[Statement, ...]
    orelse: tuple[Statement, ...] = ()


@dataclass(frozen=True)
class EmitEvent:
    """Record that the element emits event ``event`` this step (pushed to its spike ring)."""

    event: str


Statement = Union[Assign, Accumulate, Conditional, EmitEvent]


# ----------------------------------------------------------------------------- events
@dataclass(frozen=True)
class EventIR:
    """An event of a neuron group: ``condition`` is tested in the ``thresholds`` phase;
    elements for which it holds emit the event and run ``reset`` in the ``resets`` phase.

    ``refractory`` (spike events only): a duration expression in seconds, or a boolean
    condition that keeps the neuron refractory while true. The group then owns the
    variables ``lastspike`` and ``not_refractory``, and ``condition`` is only tested while
    ``not_refractory`` holds.

    ``multiplicity``: the name of a variable of the group holding how many events the
    element emits in the step when ``condition`` holds (NEST's spike multiplicity, a whole
    number >= 1; None: one). Such an event is still one event: every pathway runs its
    statements once for it, with each accumulation (``x_post += expr``) scaled by the
    multiplicity (NEST's receivers multiply the weight by it); event monitors record it
    that many times; rate monitors count it once.
    """

    name: str
    condition: sympy.Basic
    reset: tuple[Statement, ...] = ()
    refractory: sympy.Basic | None = None
    multiplicity: str | None = None


# ----------------------------------------------------------------------------- groups
@dataclass(frozen=True)
class NeuronGroupIR:
    """``size`` neurons advanced by ``update`` every step, with events (``'spike'`` first)."""

    name: str
    size: int
    variables: tuple[Variable, ...] = ()
    parameters: tuple[Parameter, ...] = ()
    update: tuple[Statement, ...] = ()
    events: tuple[EventIR, ...] = ()
    dt: float | None = None  # None: the network's dt; else a multiple of it
    order: int = 0  # position within each phase (Brian2's ``order``), ties by definition

    def variable(self, name: str) -> Variable:
        for v in self.variables:
            if v.name == name:
                return v
        raise ModelError(f"group {self.name!r} has no variable {name!r}")

    def event(self, name: str) -> EventIR:
        for e in self.events:
            if e.name == name:
                return e
        raise ModelError(f"group {self.name!r} has no event {name!r}")


# ----------------------------------------------------------------------------- connectivity
@dataclass(frozen=True)
class AllToAll:
    allow_self: bool = True


@dataclass(frozen=True)
class OneToOne:
    pass


@dataclass(frozen=True)
class FixedProbability:
    p: float
    allow_self: bool = True


@dataclass(frozen=True)
class FixedNumberPost:
    """Each pre-synaptic neuron connects to ``n`` post-synaptic ones."""

    n: int
    allow_self: bool = True
    with_replacement: bool = False


@dataclass(frozen=True)
class FixedNumberPre:
    """Each post-synaptic neuron receives from ``n`` pre-synaptic ones."""

    n: int
    allow_self: bool = True
    with_replacement: bool = False


@dataclass(frozen=True, eq=False)
class FromList:
    """Explicit pairs; synapse order is the list order."""

    i: np.ndarray
    j: np.ndarray


@dataclass(frozen=True)
class ConditionConnect:
    """Brian2's ``connect(condition=..., p=..., n=...)``: pair (i, j) exists where
    ``condition`` (an expression of i, j, N_pre, N_post) holds, with probability ``p``
    (a number or an expression of i and j), ``n`` times."""

    condition: sympy.Basic = sympy.true
    p: sympy.Expr = sympy.Integer(1)
    n: int = 1


Connector = Union[
    AllToAll, OneToOne, FixedProbability, FixedNumberPost, FixedNumberPre, FromList,
    ConditionConnect,
]


# ----------------------------------------------------------------------------- delays
@dataclass(frozen=True)
class HomogeneousDelay:
    """Every synapse of the pathway delivers ``steps`` steps after the event."""

    steps: int = 0


@dataclass(frozen=True)
class HeterogeneousDelay:
    """Per-synapse delays in steps, held in the synapse variable ``variable`` (int32);
    ``max_steps`` bounds it and sizes the spike ring."""

    variable: str
    max_steps: int


Delay = Union[HomogeneousDelay, HeterogeneousDelay]


@dataclass(frozen=True)
class PathwayIR:
    """On event ``event`` of the ``source`` side's group, run ``statements`` for every
    synapse of the firing element, ``delay`` after the event."""

    name: str
    statements: tuple[Statement, ...]
    source: Side = "pre"
    event: str = "spike"
    delay: Delay = HomogeneousDelay(0)
    order: int | None = None  # within the synapses phase; None: the synapse group's order


@dataclass(frozen=True)
class SummedVariableIR:
    """``target_post = sum over synapses of expr`` (Brian2's ``(summed)``), every step in
    the ``groups`` phase, after the synapse dynamics; ``side`` picks the group.
    ``target_range = (start, stop)``: only those elements are cleared before summing (a
    summed variable into a subgroup); the others keep their values."""

    target: str
    expr: sympy.Expr
    side: Side = "post"
    target_range: tuple[int, int] | None = None


@dataclass(frozen=True)
class SynapseGroupIR:
    """Synapses from group ``pre`` to group ``post``.

    ``dynamics``: clock-driven per-synapse statements run in the ``groups`` phase.

    ``pre`` or ``post`` may name another synapse group (Brian2's Synapses acting on
    Synapses): that side's elements are its synapses in their user order (``N_pre`` /
    ``N_post`` its number of synapses), ``x_pre`` / ``x_post`` its synapse variables (to
    read, accumulate into or sum into), ``i_post`` / ``j_post`` the pre- and
    post-synaptic indices of its synapses. A synapse group emits no events: pathways start
    on neuron groups and sources only.
    """

    name: str
    pre: str
    post: str
    connector: Connector
    variables: tuple[Variable, ...] = ()
    parameters: tuple[Parameter, ...] = ()
    pathways: tuple[PathwayIR, ...] = ()
    dynamics: tuple[Statement, ...] = ()
    summed: tuple[SummedVariableIR, ...] = ()
    dt: float | None = None  # clock of the dynamics and summed variables
    order: int = 0

    def variable(self, name: str) -> Variable:
        for v in self.variables:
            if v.name == name:
                return v
        raise ModelError(f"synapses {self.name!r} have no variable {name!r}")


# ----------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class PoissonSourceIR:
    """``size`` independent Poisson spike trains with rates ``rates`` (Hz)."""

    name: str
    size: int
    rates: Initializer = Constant(0.0)
    order: int = 0


@dataclass(frozen=True, eq=False)
class SpikeArraySourceIR:
    """Spikes at given times (seconds) and indices, delivered at step ``round(t/dt)``.

    ``counts``: the multiplicity of each spike (whole numbers >= 1; see
    :attr:`EventIR.multiplicity`); None: one each. A neuron may appear once per step.
    """

    name: str
    size: int
    times: np.ndarray
    indices: np.ndarray
    period: float = 0.0  # repeat every ``period`` seconds when > 0
    order: int = 0
    counts: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class TimedArrayIR:
    """Values sampled every ``dt`` seconds, usable as ``name(t)`` (1-D ``values``) or
    ``name(t, i)`` (2-D ``values`` of shape ``(samples, n)``); the sample index is
    clipped to the last one past the end, as Brian2 does."""

    name: str
    values: np.ndarray
    dt: float


Source = Union[PoissonSourceIR, SpikeArraySourceIR]


@dataclass(frozen=True, eq=False)
class FunctionIR:
    """A user function, called in expressions as ``name(args)`` (element-wise, pure).

    ``numpy``: a vectorised Python callable (arrays in, array out) that the NumPy engine
    calls; ``cuda``: CUDA C++ source that defines ``name`` for the CuPy engine (plain C++
    functions in it become ``__device__`` functions). An engine refuses a network whose
    kernels call a function without its implementation.
    """

    name: str
    numpy: Callable[..., np.ndarray] | None = None
    cuda: str | None = None

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or "__" in self.name:
            raise ModelError(f"function name {self.name!r} must be an identifier without "
                             "'__'")
        if self.numpy is None and self.cuda is None:
            raise ModelError(f"function {self.name!r} has no implementation: give numpy= "
                             "(a Python callable) and/or cuda= (CUDA C++ source)")


# ----------------------------------------------------------------------------- monitors
@dataclass(frozen=True)
class EventMonitorIR:
    """Record (index, step) of every ``event`` of ``source`` (optionally the values of
    ``variables`` at that moment), for elements in ``indices`` (None: all)."""

    name: str
    source: str
    event: str = "spike"
    variables: tuple[str, ...] = ()
    indices: tuple[int, ...] | None = None
    order: int = 0


@dataclass(frozen=True)
class SpikeMonitorIR(EventMonitorIR):
    """An :class:`EventMonitorIR` of the ``'spike'`` event."""


@dataclass(frozen=True)
class StateMonitorIR:
    """Record ``variables`` of ``source`` for ``indices`` every ``every`` steps in phase
    ``when``."""

    name: str
    source: str
    variables: tuple[str, ...]
    indices: tuple[int, ...] | None = None
    every: int = 1
    when: str = "start"
    order: int = 0


@dataclass(frozen=True)
class RateMonitorIR:
    """Population rate of ``source``: events per step / (size * dt), every step."""

    name: str
    source: str
    event: str = "spike"
    when: str = "end"
    order: int = 0


Monitor = Union[EventMonitorIR, SpikeMonitorIR, StateMonitorIR, RateMonitorIR]


# ----------------------------------------------------------------------------- operations
@dataclass(frozen=True)
class CustomOperationIR:
    """Statements run on every element of ``group`` (a neuron or synapse group) every
    ``every`` steps in phase ``when`` (Brian2's ``run_regularly``)."""

    name: str
    group: str
    statements: tuple[Statement, ...]
    every: int = 1
    when: str = "start"
    order: int = 0


# ----------------------------------------------------------------------------- cables
@dataclass(frozen=True, eq=False)
class CableIR:
    """The compartments of neuron group ``group`` coupled by the cable equation (Brian2's
    ``SpatialNeuron``): a tree of unbranched sections, each a run of compartments.

    Every step (phase ``groups``, at ``order``) compartment ``k`` first evaluates
    ``current`` (statements that define locals) and the linearised membrane current
    ``Im = I0 - gtot * v`` (A/m^2: ``gtot`` = -dIm/dv, ``I0`` the rest), then ``v``
    advances by one implicit (backward Euler) step of

        Cm_k dv_k/dt = Im_k + sum over neighbours n of g_kn (v_n - v_k) / area_k

    where the axial conductance between two adjacent compartments of a section is
    ``1 / (Ri (1/r_length_2[k-1] + 1/r_length_1[k]))`` (Brian2's definition of the
    half-compartment terms ``r_length_1/2`` = cross-section over length, in m), and a
    section meets its parent section's end through ``r_length_1[first] / Ri`` and
    ``r_length_2[last] / Ri`` (the root section's start is sealed). Afterwards
    ``capacitive_current`` (if given) holds ``Cm (v_new - v_old) / dt``.

    ``starts`` / ``ends``: the compartments ``[starts[s], ends[s])`` of section ``s``,
    sections in depth-first order (section 0 is the root, starting at compartment 0);
    ``parent[s]``: the section whose end section ``s`` hangs from, -1 for the root.
    ``capacitance`` names the group's specific capacitance variable (F/m^2), ``v`` its
    membrane potential.
    """

    name: str
    group: str
    gtot: sympy.Expr
    I0: sympy.Expr
    area: np.ndarray
    r_length_1: np.ndarray
    r_length_2: np.ndarray
    Ri: float
    starts: np.ndarray
    ends: np.ndarray
    parent: np.ndarray
    current: tuple[Statement, ...] = ()
    v: str = "v"
    capacitance: str = "Cm"
    capacitive_current: str | None = None
    every: int = 1
    order: int = 0

    def __post_init__(self) -> None:
        n, s = len(self.area), len(self.starts)
        if s == 0 or len(self.ends) != s or len(self.parent) != s:
            raise ModelError(f"cable {self.name!r}: starts, ends and parent need one entry "
                             "per section")
        if any(len(a) != n for a in (self.r_length_1, self.r_length_2)):
            raise ModelError(f"cable {self.name!r}: area, r_length_1 and r_length_2 need one "
                             "entry per compartment")
        starts, ends = np.asarray(self.starts), np.asarray(self.ends)
        parent = np.asarray(self.parent)
        if (starts[0] != 0 or ends[-1] != n or np.any(ends <= starts)
                or np.any(starts[1:] != ends[:-1])):
            raise ModelError(f"cable {self.name!r}: sections must cover the {n} compartments "
                             "in order, each with at least one compartment")
        if parent[0] != -1 or np.any(parent[1:] < 0) or np.any(
                parent[1:] >= np.arange(1, s)):
            raise ModelError(f"cable {self.name!r}: parent[0] must be -1 (the root) and "
                             "every other section's parent must come before it")
        if self.Ri <= 0 or np.any(np.asarray(self.area) <= 0):
            raise ModelError(f"cable {self.name!r}: Ri and every area must be positive")


# ----------------------------------------------------------------------------- network
@dataclass(frozen=True)
class NetworkIR:
    """A whole network: what the engine lowers and runs."""

    dt: float
    groups: tuple[NeuronGroupIR, ...] = ()
    synapses: tuple[SynapseGroupIR, ...] = ()
    sources: tuple[Source, ...] = ()
    timed_arrays: tuple[TimedArrayIR, ...] = ()
    monitors: tuple[Monitor, ...] = ()
    operations: tuple[CustomOperationIR, ...] = ()
    schedule: tuple[str, ...] = SCHEDULE_BRIAN2
    batch_size: int = 1
    precision: str = "float64"
    seed: int = 0
    name: str = "network"
    functions: tuple[FunctionIR, ...] = ()
    cables: tuple[CableIR, ...] = ()

    def __post_init__(self) -> None:
        if self.precision not in ("float32", "float64"):
            raise ModelError(f"precision {self.precision!r}: use 'float32' or 'float64'")
        if self.dt <= 0:
            raise ModelError(f"dt must be positive, got {self.dt}")
        if self.batch_size < 1:
            raise ModelError(f"batch_size must be >= 1, got {self.batch_size}")
        unknown = [p for p in self.schedule if p not in PHASES]
        if unknown:
            raise ModelError(f"unknown phases {unknown} in schedule; known: {sorted(PHASES)}")

    def population(self, name: str) -> NeuronGroupIR | Source:
        for g in (*self.groups, *self.sources):
            if g.name == name:
                return g
        raise ModelError(f"network has no neuron group or source named {name!r}")

    def endpoint(self, name: str) -> NeuronGroupIR | Source | SynapseGroupIR:
        """The pre- or post-synaptic side ``name`` of a synapse group: a neuron group, a
        source or another synapse group."""
        for s in self.synapses:
            if s.name == name:
                return s
        for g in (*self.groups, *self.sources):
            if g.name == name:
                return g
        raise ModelError(f"network has no neuron group, source or synapse group named "
                         f"{name!r}")

    def synapse_group(self, name: str) -> SynapseGroupIR:
        for s in self.synapses:
            if s.name == name:
                return s
        raise ModelError(f"network has no synapse group named {name!r}")
