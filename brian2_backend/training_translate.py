"""Brian2 objects -> :class:`~gpuspike.bridge.training_ir.EventPropIR`, parameters and back.

A trainable Brian2 network is one ``SpikeGeneratorGroup`` (the input), ``NeuronGroup``\\ s
that :func:`~gpuspike.bridge.adjoint.lif_from_equations` recognises as LIF (or, for the
readout, leaky-integrator) populations, and ``Synapses`` between whole groups whose only
content is a weight parameter and ``on_pre='I_post += w'`` (optionally with delays).
Monitors are allowed and ignored; anything else is refused with :class:`UnsupportedFeature`
naming the object and the fix.

Population names are the Brian2 names of the groups, projection names
``"<source name>-><target name>"``; the weight matrix of a projection is ``W[j, i] = w``
(post, pre) for each synapse ``(i, j)``, with a mask when not every pair is connected.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from gpuspike.bridge.adjoint import CanonicalLIF, lif_from_equations
from gpuspike.bridge.errors import ModelError, UnsupportedFeature
from gpuspike.bridge.training_ir import (
    EventPropIR,
    LossSpec,
    TrainPopulation,
    TrainProjection,
)

#: Objects that observe a network without changing it.
_MONITORS = ("StateMonitor", "SpikeMonitor", "EventMonitor", "PopulationRateMonitor")
_ON_PRE = re.compile(r"^\s*(?P<lhs>[A-Za-z_]\w*)\s*\+=\s*(?P<rhs>[A-Za-z_]\w*)\s*$")
_SYN_FIX = (
    'EventProp synapses are \'Synapses(pre, post, "w : 1", on_pre="I_post += w")\' '
    "(a weight with the unit of the current is fine): one weight parameter, no "
    "other dynamics, no on_post"
)


@dataclass
class ProjectionBinding:
    """How one Brian2 ``Synapses`` object maps onto a projection of the IR."""

    syn: Any
    name: str
    weight: str
    i: np.ndarray
    j: np.ndarray
    shape: tuple[int, int]
    learn_weight: bool
    learn_delay: bool
    has_delays: bool
    shared_delay: bool


@dataclass
class Translation:
    """The IR, its initial parameters and masks, and the Brian2 objects behind them."""

    ir: EventPropIR
    params: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]
    groups: dict[str, Any]
    projections: dict[str, ProjectionBinding]
    input: Any
    output: Any


def _si(value: Any) -> float:
    return float(np.asarray(value, dtype=np.float64))


def _kind(obj: Any) -> str:
    return type(obj).__name__


# ----------------------------------------------------------------------------- neurons
def group_namespace(
    group: Any, codes: Iterable[str], run_namespace: Mapping[str, Any]
) -> dict[str, float]:
    """SI values of the external constants (and uniform parameters) that ``group`` uses.

    Names are resolved as Brian2 does (the group's ``namespace``, then ``run_namespace``,
    then Brian2's units); a per-neuron parameter (``tau_m : second (constant)``) is
    replaced by its value when all neurons share it.
    """
    from brian2.core.functions import Function
    from brian2.core.variables import ArrayVariable, Constant
    from brian2.utils.stringtools import get_identifiers

    ids = set(group.equations.identifiers) | set(group.equations.parameter_names)
    for code in codes:
        ids |= set(get_identifiers(code))
    ids -= set(group.equations.diff_eq_names) | {"t", "dt", "i", "N", "xi"}
    try:
        resolved = group.resolve_all(sorted(ids), dict(run_namespace))
    except KeyError as err:
        why = str(err.args[0] if err.args else err).rstrip(".")
        raise ModelError(
            f"{_kind(group)} {group.name!r}: {why}; define it before creating the "
            "trainer or pass namespace={...}"
        ) from None
    out = {}
    for name, var in resolved.items():
        if isinstance(var, Function):
            continue
        if isinstance(var, Constant):
            value = var.get_value()
            if isinstance(value, (bool, np.bool_)):
                continue
            out[name] = _si(value)
        elif isinstance(var, ArrayVariable):
            values = np.asarray(var.get_value(), dtype=np.float64).ravel()
            if values.size and np.ptp(values) != 0.0:
                raise UnsupportedFeature(
                    f"{_kind(group)} {group.name!r}: parameter {name!r} differs between "
                    f"neurons ({values.min():g} .. {values.max():g} SI); EventProp trains "
                    "populations whose neurons share their parameters — give it one value "
                    "or split the group"
                )
            if values.size:
                out[name] = float(values[0])
    return out


def _uniform(group: Any, var: str, what: str) -> float:
    values = np.asarray(group.variables[var].get_value(), dtype=np.float64).ravel()
    if values.size and np.ptp(values) != 0.0:
        raise UnsupportedFeature(
            f"NeuronGroup {group.name!r}: the initial {what} {var!r} differs between neurons; "
            "EventProp starts every neuron of a population from the same state — set one "
            f"value ({group.name}.{var} = ...)"
        )
    return float(values[0]) if values.size else 0.0


def neuron_of(group: Any, run_namespace: Mapping[str, Any], dt: float) -> CanonicalLIF:
    """The canonical LIF (or LI) dynamics of a Brian2 ``NeuronGroup`` on steps of ``dt``.

    ``refractory=r`` (a duration) holds ``(unless refractory)`` variables for
    ``timestep(r, dt) - 1`` steps after a spike's step in Brian2's schedule: the canonical
    ``t_ref`` is ``r - dt`` (BPTT and e-prop train it; EventProp refuses it)."""
    where = f"NeuronGroup {group.name!r}"
    refractory = getattr(group, "_refractory", False)
    t_ref = 0.0
    if refractory is not False and refractory is not None:
        if isinstance(refractory, str):
            raise UnsupportedFeature(
                f"{where}: refractory={refractory!r} (an expression or condition); training "
                "takes a fixed duration (refractory=5*ms) or none"
            )
        t_ref = max(0.0, _si(refractory) - dt)
    if set(group.events) - {"spike"}:
        raise UnsupportedFeature(
            f"{where}: custom events {sorted(set(group.events) - {'spike'})}"
            " are not supported by EventProp — remove them"
        )
    threshold = group.events.get("spike")
    reset = group.event_codes.get("spike")
    if threshold is not None and reset is None:
        raise UnsupportedFeature(
            f"{where}: a threshold without a reset; EventProp needs an "
            "absolute reset — add reset='v = 0' (or your v_reset)"
        )
    codes = [c for c in (threshold, reset) if c]
    ns = group_namespace(group, codes, run_namespace)
    neuron = lif_from_equations(
        str(group.equations), ns, threshold=threshold, reset=reset, where=where,
        refractory=t_ref if threshold is not None else 0.0,
    )
    if _uniform(group, neuron.current, "current") != 0.0:
        raise UnsupportedFeature(
            f"{where}: the current {neuron.current!r} starts at a non-zero "
            f"value; EventProp starts from {neuron.current} = 0 — do not "
            "set it"
        )
    if neuron.adaptive and _uniform(group, neuron.adaptation, "adaptation") != 0.0:
        raise UnsupportedFeature(
            f"{where}: the adaptation {neuron.adaptation!r} starts at a non-zero value; "
            f"training starts every trial from {neuron.adaptation} = 0 — do not set it"
        )
    v0 = _uniform(group, neuron.voltage, "membrane")
    return dataclasses.replace(neuron, u0=v0 - neuron.v_rest)


# ----------------------------------------------------------------------------- synapses
def synapse_weight(syn: Any, post_neuron: CanonicalLIF) -> str:
    """The weight variable of ``syn``, after checking it is an ``I_post += w`` synapse."""
    where = f"Synapses {syn.name!r}"
    eqs = syn.equations
    if list(eqs.diff_eq_names) or list(eqs.subexpr_names):
        raise UnsupportedFeature(
            f"{where}: the synapse model has dynamics ({sorted(eqs.diff_eq_names)} "
            f"{sorted(eqs.subexpr_names)}) — {_SYN_FIX}"
        )
    if any("summed" in eq.flags for eq in eqs.values()):
        raise UnsupportedFeature(f"{where}: summed variables are not supported — {_SYN_FIX}")
    paths = list(syn._pathways)
    if len(paths) != 1 or paths[0].prepost != "pre":
        what = [f"{p.prepost}: {p.code!r}" for p in paths]
        raise UnsupportedFeature(
            f"{where}: pathways {what}; EventProp needs exactly one "
            f"on_pre and no on_post — {_SYN_FIX}"
        )
    code = "\n".join(s for s in paths[0].code.replace(";", "\n").splitlines() if s.strip())
    m = _ON_PRE.match(code)
    current = post_neuron.current
    params = set(eqs.parameter_names)
    ok_lhs = m is not None and (
        m["lhs"] == current + "_post" or (m["lhs"] == current and current not in params)
    )
    if not ok_lhs or m["rhs"] not in params:
        raise UnsupportedFeature(
            f"{where}: on_pre={paths[0].code!r}; it must add the synapse's weight parameter "
            f"to the target's current: on_pre='{current}_post += w' with model 'w : ...' — "
            f"{_SYN_FIX}"
        )
    if syn.variables[m["rhs"]].scalar:
        raise UnsupportedFeature(
            f"{where}: the weight {m['rhs']!r} is shared; declare it per "
            f"synapse ('{m['rhs']} : 1' without '(shared)') — {_SYN_FIX}"
        )
    return m["rhs"]


def _delays(syn: Any) -> tuple[np.ndarray, bool]:
    shared = bool(syn.pre.variables["delay"].scalar)
    values = np.asarray(syn.pre.variables["delay"].get_value(), dtype=np.float64)
    return np.broadcast_to(
        values.ravel() if not shared else values.reshape(()), (len(syn),)
    ).copy(), shared


def _learn_targets(
    items: Iterable[Any] | None,
    default: str | None,
    syns: Mapping[str, Any],
    run_namespace: Mapping[str, Any],
    what: str,
) -> dict[str, str]:
    """Synapses name -> variable name for ``learn`` / ``learn_delays`` entries."""
    from brian2.core.variables import VariableView

    if items is None:
        return {}
    out = {}
    for item in items:
        if isinstance(item, VariableView):
            group = getattr(item.group, "synapses", item.group)  # S.delay: S.pre's view
            owner, var = group.name, item.name
        elif isinstance(item, str) and "." in item:
            obj, var = item.rsplit(".", 1)
            found = syns.get(obj)
            if found is None and obj in run_namespace:
                found = run_namespace[obj]
            owner = getattr(found, "name", None)
        elif _kind(item) == "Synapses" or hasattr(item, "_pathways"):
            owner, var = item.name, default
        else:
            raise ModelError(
                f"{what}: cannot read {type(item).__name__} {str(item)[:60]!r}; "
                "pass S.w, 'S.w' or the Synapses"
            )
        if owner not in syns:
            label = item if isinstance(item, str) else f"{owner}.{var}"
            raise ModelError(
                f"{what}: {label!r} is not a Synapses object of the network (have {sorted(syns)})"
            )
        out[owner] = var
    return out


# ----------------------------------------------------------------------------- network
def translate(
    net: Any,
    *,
    input: Any = None,
    output: Any = None,
    learn: Any = None,
    learn_delays: Any = (),
    loss: str | LossSpec = "avg_ce",
    dt: float,
    n_steps: int,
    max_spikes: int = 500,
    max_delay: float | None = None,
    run_namespace: Mapping[str, Any] | None = None,
) -> Translation:
    """Read a Brian2 ``Network`` into an :class:`EventPropIR` and initial parameters.

    ``learn``: weights to train (``S.w``, ``'S.w'`` with S a Brian2 name or a variable of
    the caller, or a Synapses object; ``None``: all); ``learn_delays``: delays to train
    (``S.delay``), bounded by ``max_delay`` seconds (default ``n_steps * dt``).
    """
    ns = dict(run_namespace or {})
    groups, syns, inputs = {}, {}, []
    for obj in sorted(net.objects, key=lambda o: o.name):
        kind = _kind(obj)
        if kind == "SpikeGeneratorGroup":
            inputs.append(obj)
            groups[obj.name] = obj
        elif kind == "NeuronGroup":
            groups[obj.name] = obj
        elif kind == "Synapses":
            syns[obj.name] = obj
        elif kind not in _MONITORS:
            raise UnsupportedFeature(
                f"{kind} {obj.name!r}: EventProp training supports SpikeGeneratorGroup input, "
                "NeuronGroups and Synapses (monitors are ignored) — remove it from the "
                "Network for training"
            )
    if len(inputs) != 1:
        raise UnsupportedFeature(
            f"EventProp training needs exactly one SpikeGeneratorGroup as input, the network "
            f"has {len(inputs)} ({[g.name for g in inputs]}); merge the inputs into one "
            "SpikeGeneratorGroup (offset the indices of the second)"
        )
    if input is not None and getattr(input, "name", None) != inputs[0].name:
        raise UnsupportedFeature(
            f"input={getattr(input, 'name', input)!r} is not the "
            f"network's SpikeGeneratorGroup {inputs[0].name!r}"
        )
    inp = inputs[0]
    pops = [TrainPopulation(inp.name, len(inp))]
    neurons = {}
    for name, g in groups.items():
        if g is not inp:
            neurons[name] = neuron_of(g, ns, dt)
            pops.append(TrainPopulation(name, len(g), neurons[name]))
    if output is None:
        sources = {s.source.name for s in syns.values()}
        sinks = [n for n in neurons if n not in sources]
        if len(sinks) != 1:
            raise ModelError(
                f"cannot tell the output group (candidates {sinks}); pass output=<NeuronGroup>"
            )
        output = groups[sinks[0]]
    if getattr(output, "name", None) not in neurons:
        raise ModelError(
            f"output={getattr(output, 'name', output)!r} is not a NeuronGroup of the network"
        )
    learn_w = _learn_targets(learn, None, syns, ns, "learn")
    learn_d = _learn_targets(learn_delays, "delay", syns, ns, "learn_delays")
    max_delay_steps = n_steps if max_delay is None else int(np.ceil(max_delay / dt - 1e-9))
    projs, masks, bindings = [], {}, {}
    for sname, syn in syns.items():
        where = f"Synapses {sname!r}"
        for end, grp in (("source", syn.source), ("target", syn.target)):
            if getattr(grp, "name", None) not in groups or groups[grp.name] is not grp:
                raise UnsupportedFeature(
                    f"{where}: its {end} {getattr(grp, 'name', grp)!r} is not a whole group of "
                    "the network (subgroups are not supported) — connect whole groups and "
                    "use a mask-like connect(condition=...) instead"
                )
        if syn.target is inp:
            raise UnsupportedFeature(f"{where} targets the input SpikeGeneratorGroup")
        weight = synapse_weight(syn, neurons[syn.target.name])
        if sname in learn_w and learn_w[sname] != weight:
            raise ModelError(
                f"learn: {sname}.{learn_w[sname]} is not the weight that on_pre "
                f"adds ({sname}.{weight})"
            )
        if sname in learn_d and learn_d[sname] != "delay":
            raise ModelError(f"learn_delays: use {sname}.delay, not {sname}.{learn_d[sname]}")
        pname = f"{syn.source.name}->{syn.target.name}"
        if pname in bindings:
            raise UnsupportedFeature(
                f"{where}: a second Synapses object from {syn.source.name!r} to "
                f"{syn.target.name!r} ({bindings[pname].syn.name!r}); merge them into one"
            )
        i = np.asarray(syn.i[:], dtype=np.int64)
        j = np.asarray(syn.j[:], dtype=np.int64)
        shape = (len(syn.target), len(syn.source))
        flat = j * shape[1] + i
        if np.unique(flat).size != flat.size:
            raise UnsupportedFeature(
                f"{where}: several synapses connect the same pair of neurons (multapses); "
                "EventProp holds one weight per pair — connect each pair once (n=1)"
            )
        delays, shared = _delays(syn)
        learn_delay = sname in learn_d
        if learn_delay and shared:
            raise UnsupportedFeature(
                f"{where}: its delay is one shared value (delay=... in the constructor); to "
                f"learn delays create it without delay= and set {sname}.delay = '...' per "
                "synapse"
            )
        d_steps = np.rint(delays / dt) if delays.size else np.zeros(0)
        has_delays = learn_delay or bool(d_steps.size and d_steps.max() > 0)
        mds = max_delay_steps if learn_delay else (int(d_steps.max()) if has_delays else 0)
        if learn_delay and d_steps.size and d_steps.max() > mds:
            raise ModelError(
                f"{where}: delays up to {delays.max():g} s exceed max_delay "
                f"({mds * dt:g} s); raise max_delay"
            )
        learn_weight = learn is None or sname in learn_w
        projs.append(
            TrainProjection(syn.source.name, syn.target.name, learn_weight, mds, learn_delay)
        )
        bindings[pname] = ProjectionBinding(
            syn, pname, weight, i, j, shape, learn_weight, learn_delay, has_delays, shared
        )
        if flat.size != shape[0] * shape[1]:
            mask = np.zeros(shape, dtype=bool)
            mask[j, i] = True
            masks[pname] = mask
    spec = LossSpec(kind=loss) if isinstance(loss, str) else loss
    ir = EventPropIR(tuple(pops), tuple(projs), output.name, spec, dt, n_steps, max_spikes)
    tr = Translation(ir, {}, masks, groups, bindings, inp, output)
    tr.params = read_params(tr)
    return tr


def write_back(tr: Translation, state: Mapping[str, np.ndarray], dt: float) -> None:
    """Set each Synapses' weights (and learnt delays, rounded to steps) from ``state``."""
    for name, b in tr.projections.items():
        var = b.syn.variables[b.weight]
        var.set_value(np.asarray(state[name + ".w"], dtype=np.float64)[b.j, b.i])
        if b.learn_delay:
            q = tr.ir.projections[[p.name for p in tr.ir.projections].index(name)]
            steps = np.clip(
                np.rint(np.asarray(state[name + ".d"], np.float64) / dt), 0, q.max_delay_steps
            )
            b.syn.pre.variables["delay"].set_value(steps[b.j, b.i] * dt)


def read_params(tr: Translation) -> dict[str, np.ndarray]:
    """The Brian2 objects' current weights and delays as engine parameters."""
    out = {}
    for name, b in tr.projections.items():
        w = np.zeros(b.shape)
        w[b.j, b.i] = np.asarray(b.syn.variables[b.weight].get_value(), dtype=np.float64)
        out[name + ".w"] = w
        if b.has_delays:
            d = np.zeros(b.shape)
            d[b.j, b.i] = _delays(b.syn)[0]
            out[name + ".d"] = d
    return out
