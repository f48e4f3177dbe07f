"""Brian2 network objects -> one :class:`~gpuspike.bridge.ir.NetworkIR`.

Every active object of a Brian2 network is either a group (NeuronGroup, PoissonGroup,
SpikeGeneratorGroup, Synapses: they own state) or a code runner that runs per step on a
group (state updater, thresholder, resetter, synaptic pathway, summed-variable updater,
monitors). :func:`build_network` walks them in Brian2's schedule order and assembles the
IR from the code objects the device captured (see :mod:`.translate`); it also returns
the :class:`Binding` of every IR array to its Brian2 variable, which :mod:`.results` uses
to move state and recordings in and out of the engine.

Order within a phase: every IR object's ``order`` is the rank of its Brian2 object in
``Network.sorted_objects`` (slot, ``order``, then name, as Brian2 breaks ties), so the
engine's stable sort by ``order`` repeats Brian2's sequence. A neuron group takes its state
updater's rank; every pathway its own; a Synapses its first summed variable's (see
:mod:`.synaptic`); its clock-driven dynamics become an operation with their own rank.
Ranks are even numbers, so that an object can be placed just before another.

The parts: :mod:`.neurons` (neuron groups, linked variables, spike generators),
:mod:`.spatial` (SpatialNeuron's cable equation),
:mod:`.synaptic` (synapses), :mod:`.monitors`, :mod:`.schedule` (clocks and slots),
:mod:`.binding` (what lives where on the Brian2 side), :mod:`.fingerprint`.

Initial values are left at zero in the IR: the device pushes Brian2's current values
into the engine before every run, so that the IR (and its fingerprint) only changes when
the model does.
"""

from __future__ import annotations

from typing import Any

import sympy
from gpuspike.bridge import ir
from gpuspike.bridge.errors import UnsupportedFeature

from .binding import Binding
from .fingerprint import fingerprint
from .monitors import event_monitor, rate_monitor, state_monitor, synapse_state_monitor
from .names import ir_name, root_group
from .neurons import (
    GroupDraft,
    add_neuron_runner,
    finish_group,
    host_writable_scalars,
    linked_variables,
    spike_generator,
    state_variables,
    written_scalars,
)
from .schedule import every_steps, own_dt, phase
from .spatial import spatial_cable
from .synaptic import (
    SynapsesDraft,
    add_pathway,
    add_summed_variable,
    finish_synapses,
    new_synapses,
    order_summed_variables,
)
from .translate import Context, TimedArrays, runner_block

__all__ = ["PER_STEP_TEMPLATES", "Binding", "build_network", "fingerprint"]

#: Templates of code objects that run once per time step (the ones the engine replaces).
PER_STEP_TEMPLATES = frozenset({
    "stateupdate", "threshold", "reset", "synapses", "synapses_push_spikes",
    "summed_variable", "spikemonitor", "statemonitor", "ratemonitor", "spikegenerator",
    "spatialstateupdate",
})


def build_network(net: Any, dt: float, precision: str, seed: int
                  ) -> tuple[ir.NetworkIR, Binding]:
    """Translate the active objects of the Brian2 network ``net`` into a NetworkIR."""
    from brian2.core.operations import NetworkOperation
    from brian2.groups.neurongroup import NeuronGroup, Resetter, StateUpdater, Thresholder
    from brian2.groups.subgroup import Subgroup
    from brian2.input.poissongroup import PoissonGroup
    from brian2.input.spikegeneratorgroup import SpikeGeneratorGroup
    from brian2.monitors.ratemonitor import PopulationRateMonitor
    from brian2.monitors.spikemonitor import EventMonitor
    from brian2.monitors.statemonitor import StateMonitor
    from brian2.spatialneuron.spatialneuron import SpatialStateUpdater
    from brian2.synapses.synapses import (
        StateUpdater as SynStateUpdater,
    )
    from brian2.synapses.synapses import (
        SummedVariableUpdater,
        Synapses,
        SynapticPathway,
    )

    binding = Binding()
    timed = TimedArrays()
    objects = [o for o in net.sorted_objects if o.active]
    ranks = {id(o): 2 * k for k, o in enumerate(objects)}  # even: see .synaptic
    written = written_scalars(objects)
    if any(isinstance(o, NetworkOperation) for o in objects):
        # a network_operation may set any shared variable between steps
        written = written | host_writable_scalars(objects)
    for o in objects:
        # objects on slower clocks (a multiple of the network's dt) run every k-th step;
        # a group's runners must share the group's clock
        if isinstance(o, (StateUpdater, Thresholder, Resetter)) and (
                abs(float(o.clock.dt_) - float(o.group.clock.dt_)) > 1e-9 * dt):
            raise UnsupportedFeature(f"{type(o).__name__} {o.name!r}: a clock other than "
                                     f"its group's ({o.group.name!r})")
        if isinstance(o, PopulationRateMonitor) and abs(float(o.clock.dt_) - dt) > 1e-9 * dt:
            raise UnsupportedFeature(f"PopulationRateMonitor {o.name!r} on a clock with "
                                     f"dt = {float(o.clock.dt_)} s (network: {dt} s)")
        every_steps(o, dt, f"{type(o).__name__} {o.name!r}")
    groups: dict[str, GroupDraft] = {}
    sources: list[ir.Source] = []
    synapses: dict[str, SynapsesDraft] = {}
    monitors: list[ir.Monitor] = []
    operations: list[Any] = []
    cables: list[ir.CableIR] = []

    def group_of(g: Any) -> GroupDraft:
        root = root_group(g)
        if root.name not in groups:
            if not isinstance(root, (NeuronGroup, PoissonGroup)):
                raise UnsupportedFeature(f"{root.name!r} of type {type(root).__name__}")
            name = ir_name(root.name)
            grp = GroupDraft(root, name, order=ranks.get(id(root), 0),
                             dt=own_dt(root, dt, f"{type(root).__name__} {root.name!r}"))
            grp.variables = state_variables(root, len(root), binding, name, written)
            groups[root.name] = grp
            binding.names[name] = root.name
            grp.variables += linked_variables(root, binding, name, group_of)
        return groups[root.name]

    def pop_name(g: Any) -> str:
        root = root_group(g)
        if isinstance(root, SpikeGeneratorGroup):
            return ir_name(root.name)
        if isinstance(root, Synapses):  # Synapses acting on Synapses
            return syn_of(root).name
        return group_of(root).name

    def syn_of(S: Any) -> SynapsesDraft:
        if S.name not in synapses:
            synapses[S.name] = new_synapses(S, pop_name(S.source), pop_name(S.target),
                                            binding, written)
        return synapses[S.name]

    def emits(src: Any, event: str) -> bool:
        """Whether the source of a monitor or pathway can emit ``event`` in this run (an
        inactive group, or one whose thresholder is inactive, emits nothing)."""
        root = root_group(src)
        if isinstance(root, SpikeGeneratorGroup):
            return any(x is root for x in objects)
        return any(isinstance(x, Thresholder) and x.event == event
                   and root_group(x.group).name == root.name for x in objects)

    for o in objects:
        what = f"{type(o).__name__} {o.name!r}"
        if isinstance(o, (NeuronGroup, PoissonGroup)):
            group_of(o)
        elif isinstance(o, Synapses):
            syn_of(o)
        elif isinstance(o, Subgroup):
            continue
        elif isinstance(o, (StateUpdater, Thresholder, Resetter)):
            g = group_of(o.group)
            ctx = Context(what, {"_idx": g.brian}, timed, written_scalars=written)
            add_neuron_runner(o, g, ctx, ranks[id(o)])
        elif isinstance(o, SpatialStateUpdater):
            g = group_of(o.group)
            ctx = Context(what, {"_idx": g.brian}, timed, written_scalars=written)
            cables.append(spatial_cable(o, g, ctx, every_steps(o, dt, what), ranks[id(o)]))
        elif isinstance(o, SpikeGeneratorGroup):
            sources.append(spike_generator(o, dt, ranks[id(o)]))
            binding.names[ir_name(o.name)] = o.name
        elif isinstance(o, SynapticPathway):
            s = syn_of(o.synapses)
            if emits(o.source, o.event):
                add_pathway(o, s, dt, binding, timed, written, ranks[id(o)])
        elif isinstance(o, SynStateUpdater):
            s = syn_of(o.group)
            tr, code = runner_block(o, s.context(what, timed, written))
            stmts = tuple(tr.statements(code))
            if stmts:
                # an operation of its own, at its own place in the 'groups' slot (the
                # synapse group's order places its summed variables)
                operations.append(ir.CustomOperationIR(
                    ir_name(o.name), s.name, stmts, every_steps(o, dt, what),
                    phase(o, what), ranks[id(o)]))
        elif isinstance(o, SummedVariableUpdater):
            add_summed_variable(o, syn_of(o.group), dt, timed, written, ranks[id(o)])
        elif (type(o).__name__ in ("CodeRunner", "SubexpressionUpdater", "PoissonInput")
              and getattr(o, "template", "") == "stateupdate"):
            # run_regularly, PoissonInput and `(constant over dt)` subexpressions
            operations.append(_run_regularly(o, group_of, syn_of, timed, written, dt,
                                             ranks[id(o)], binding))
        elif isinstance(o, EventMonitor) and not emits(o.source, o.event):
            binding.monitors[ir_name(o.name)] = (o, "idle", {})
        elif isinstance(o, PopulationRateMonitor) and not emits(o.source, "spike"):
            binding.monitors[ir_name(o.name)] = (o, "idle_rate", {})
        elif isinstance(o, EventMonitor):
            monitors.append(event_monitor(o, pop_name(o.source), binding, ranks, objects,
                                          groups))
        elif isinstance(o, StateMonitor) and isinstance(o.source, Synapses):
            monitors.append(synapse_state_monitor(o, syn_of(o.source), dt, binding,
                                                  ranks[id(o)]))
        elif isinstance(o, StateMonitor):
            monitors += state_monitor(o, pop_name, dt, binding, timed, written,
                                      ranks[id(o)])
        elif isinstance(o, PopulationRateMonitor):
            monitors.append(rate_monitor(o, pop_name(o.source), binding, ranks[id(o)]))
        elif isinstance(o, NetworkOperation):
            binding.host_operations.append(host_operation(o, dt))
        else:
            raise UnsupportedFeature(
                f"{what}: objects of type {type(o).__name__} do not run on the gpuspike "
                "engine yet (set prefs.devices.gpuspike.runtime_fallback = True to run them "
                "on Brian2's runtime, with a warning)")

    order_summed_variables(list(synapses.values()), ranks, objects)
    net_ir = ir.NetworkIR(
        dt=dt,
        groups=tuple(finish_group(g) for g in groups.values()),
        synapses=tuple(finish_synapses(s) for s in synapses.values()),
        sources=tuple(sources),
        timed_arrays=tuple(timed.arrays.values()),
        functions=tuple(timed.functions.values()),
        monitors=tuple(m for m in monitors if m is not None),
        **({"operations": tuple(operations)} if operations else {}),
        cables=tuple(cables),
        precision=precision,
        seed=seed,
        name=ir_name(net.name),
    )
    return net_ir, binding


#: Brian2 slots a network_operation may use: before the step's objects, or after them
_OPERATION_SLOTS = {"before_start": False, "start": False, "end": True, "after_end": True}


def host_operation(o: Any, dt: float) -> tuple[Any, int, bool]:
    """A ``network_operation`` as (operation, every k steps, called after the step)."""
    what = f"network_operation {o.name!r}"
    if o.when not in _OPERATION_SLOTS:
        raise UnsupportedFeature(
            f"{what}: when={o.when!r}; the engine runs a step's groups, thresholds, synapses "
            "and resets as one, so an operation can run before them ('start', the "
            "default) or after them ('end')")
    return o, every_steps(o, dt, what), _OPERATION_SLOTS[o.when]


def _run_regularly(o: Any, group_of: Any, syn_of: Any, timed: TimedArrays,
                   written: frozenset[int], dt: float, order: int,
                   binding: Binding | None = None) -> Any:
    """Brian2's ``run_regularly`` -> a :class:`CustomOperationIR` on its group.

    Scalar code that draws random numbers (``direction = rand()*2*pi`` on a shared
    ``direction``) runs once per call in Brian2; every element of the engine's kernel
    would draw its own value, so that part runs on the host before the step (see
    :func:`_random_scalar_block`) and the rest on the engine."""
    from brian2.synapses.synapses import Synapses

    if not hasattr(ir, "CustomOperationIR"):
        raise UnsupportedFeature(f"run_regularly {o.name!r}: the engine has no operations")
    what = f"run_regularly {o.name!r}"
    if isinstance(o.group, Synapses):
        s = syn_of(o.group)
        ctx = s.context(what, timed, written)
        owner = s.name
    else:
        g = group_of(o.group)
        ctx = Context(what, {"_idx": g.brian, "_sub_idx": g.brian}, timed,
                      written_scalars=written)
        owner = g.name
    tr, code = runner_block(o, ctx)
    if binding is not None and code:
        code = _random_scalar_block(o, code, dt, what, binding)
    stmts = tuple(tr.statements(code))
    if not isinstance(o.group, Synapses) and len(o.group) != len(g.brian):
        # a subgroup's operation: on the whole group, for the subgroup's elements only
        start = int(o.group.start)
        i = sympy.Symbol("i")
        stmts = (ir.Conditional(sympy.And(i >= start, i < start + len(o.group)), stmts),)
    return ir.CustomOperationIR(ir_name(o.name), owner, stmts, every_steps(o, dt, what),
                                phase(o, what), order)


class _ScalarHostOperation:
    """The random scalar statements of a ``run_regularly`` as a host operation: Brian2's
    own NumPy code object for just those statements, called like a network_operation."""

    def __init__(self, runner: Any, codeobj: Any, arrays: list[Any]) -> None:
        self.runner, self.codeobj, self.arrays = runner, codeobj, arrays
        self.clock = runner.clock
        self.name = f"{runner.name}_shared"

    def run(self) -> None:
        # the code object holds the arrays since it was compiled: touch them so that the
        # device brings them from the engine now and pushes the writes back afterwards
        for var in self.arrays:
            var.get_value()
        self.codeobj()


def _random_scalar_block(o: Any, code: str, dt: float, what: str, binding: Binding) -> str:
    """``code`` without its scalar statements if they draw random numbers; those become a
    :class:`_ScalarHostOperation` before the step (Brian2: scalar code runs once per call,
    before the vector code). Else ``code`` unchanged."""
    from brian2.codegen.translation import make_statements
    from brian2.core.variables import ArrayVariable
    from brian2.devices.device import get_device
    from brian2.utils.stringtools import get_identifiers

    cap = o.codeobj._gs_captured
    scalar, vector = make_statements(code, cap.variables, float, optimise=False)
    randoms = {"rand", "randn", "binomial", "poisson"}
    if not any(get_identifiers(s.expr) & randoms or s.var in randoms for s in scalar):
        return code
    if o.when not in ("start", "before_start"):
        raise UnsupportedFeature(
            f"{what}: scalar (shared) code that draws random numbers runs once per call, "
            f"which the engine does for when='start' only (this one has when={o.when!r}); "
            "use when='start', or a network_operation that sets the shared variable")
    local = {s.var for s in scalar if s.op == ":="}
    if any(get_identifiers(s.expr) & local for s in vector):
        raise UnsupportedFeature(
            f"{what}: the per-element code reads a local of the random scalar code "
            f"({sorted(local)}); store it in a shared variable instead")

    def text(stmts: Any) -> str:
        return "\n".join(f"{s.var} {'=' if s.op == ':=' else s.op} {s.expr}" for s in stmts)

    codeobj = get_device().code_object(
        o, f"{o.name}_shared_codeobject*", {None: text(scalar)}, cap.variables,
        "stateupdate", cap.variable_indices)
    codeobj.compile()
    # a host operation, counted as one (operation_calls), not as a per-step code object
    # that the engine failed to take over (runtime_step_calls)
    codeobj.__dict__.pop("run_block", None)
    names = set().union(*(get_identifiers(s.expr) | {s.var} for s in scalar))
    arrays = [cap.variables[n] for n in sorted(names)
              if isinstance(cap.variables.get(n), ArrayVariable)]
    binding.host_operations.append(
        (_ScalarHostOperation(o, codeobj, arrays), every_steps(o, dt, what), False))
    return text(vector)
