"""EventProp training of ``pyNN.gpuspike`` networks (exact gradients, Wunderlich & Pehle 2021).

::

    import pyNN.gpuspike as sim
    from pyNN.gpuspike.training import EventPropTrainer, LeakyIntegratorReadout

    sim.setup(timestep=1.0)
    inp = sim.Population(784, sim.SpikeSourceArray(spike_times=[]))
    hid = sim.Population(128, sim.IF_curr_exp(tau_refrac=0.0, tau_syn_E=5.0, tau_syn_I=5.0))
    out = sim.Population(10, LeakyIntegratorReadout())
    p1 = sim.Projection(inp, hid, sim.AllToAllConnector(), sim.StaticSynapse(weight=w1))
    p2 = sim.Projection(hid, out, sim.AllToAllConnector(), sim.StaticSynapse(weight=w2))
    trainer = EventPropTrainer(input=inp, output=out, projections=[p1, p2], duration=20.0)
    result = trainer.fit(train_ds, epochs=10, batch_size=32, lr=1e-2, val=test_ds)
    # p1.get("weight", format="array") now holds the trained weights; sim.run simulates them

The trainer translates the PyNN objects into an :class:`~gpuspike.bridge.training_ir.EventPropIR`
and trains it with the EventProp engine (numpy, cpp or cupy); the result is written back into the
Projections, so the ordinary ``sim.run`` (or any PyNN simulator given the same weights)
simulates the trained network.

Units: PyNN's, throughout (ms, mV, nA, nF). The engine runs on the simulator's grid
(``dt = sim.get_time_step()`` ms); datasets (:class:`~gpuspike.datasets.events.SpikeDataset`)
keep their times in seconds and are binned with ``floor(t / dt)``.

Mapping (checked against ``sim.run`` and NEST in ``tests/pynn/test_training.py``):

- ``IF_curr_exp`` with ``i_offset = 0`` and ``tau_syn_E == tau_syn_I`` is the canonical
  LIF of :mod:`gpuspike.bridge.adjoint` with ``tau_s = tau_syn``, ``gain = tau_m / cm``
  (mV/nA), ``theta = v_thresh - v_rest``, reset ``v_reset - v_rest``, the membrane held at
  the reset for ``floor(tau_refrac / dt)`` steps after a spike's (as ``sim.run`` and NEST
  simulate it; BPTT and e-prop train it, EventProp needs ``tau_refrac < dt``: PyNN's
  default 0.1 ms is no step at dt >= 0.2 ms).
  :class:`LeakyIntegratorReadout` (or an ``IF_curr_exp`` whose threshold is at least
  ``1e6`` mV above rest) is the non-spiking readout of the voltage losses.
- Weights: the engine weight of a synapse is its PyNN weight, sign included. PyNN gives
  inhibitory current synapses negative weights and excitatory ones positive; both add to the
  one synaptic current (hence equal time constants). An excitatory and an inhibitory
  projection between the same two populations train as one signed matrix (the sum);
  ``signs="pynn"`` (default) keeps every synapse within PyNN's sign convention (a synapse
  only in the excitatory projection stays >= 0, one only in the inhibitory projection
  <= 0, one in both may take either sign and is written back as the positive part to the
  excitatory and the negative part to the inhibitory projection); ``signs="free"`` lets
  any weight change sign (``Projection.set`` accepts it and ``sim.run`` and NEST simulate
  it correctly, since the time constants are equal, but PyNN refuses such weights when a
  projection is *created*).
- Time: engine step ``n`` is PyNN time ``n dt``. An input spike in bin ``n`` (``floor(t/dt) =
  n``) is a ``SpikeSourceArray`` spike at ``n dt``; a neuron whose membrane reaches threshold
  at ``n dt`` spikes at ``n dt`` in both (PyNN labels a threshold crossing in the update from
  ``(n-1) dt`` to ``n dt`` with the time ``n dt``). A PyNN delay ``D`` is an engine delay of
  ``round(D / dt)`` steps (the engine's "a spike of step n arrives in step n + d", i.e. the
  synaptic current jumps at ``t_spike + D`` in both); spike-array delays are at least one
  step, as in ``sim.run``. So there is no offset: ``sim.run(duration)`` gives the engine's
  hidden spikes and output voltage ``v(n dt)``, ``n = 0..N``, except a spike at exactly
  ``duration``, which the engine (whose trial ends there) does not emit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gpuspike.bridge.adjoint import CanonicalLIF
from gpuspike.bridge.errors import ModelError, UnsupportedFeature
from gpuspike.bridge.training_ir import (
    SPIKE_LOSSES,
    VOLTAGE_LOSSES,
    EventPropIR,
    LossSpec,
    TrainPopulation,
    TrainProjection,
)
from gpuspike.engine.rules.network import make_network
from gpuspike.engine.training.trainer import Trainer, trial_steps

from . import models, simulator
from .training_models import ALIF_CURR_EXP, LI_READOUT, ALIF_curr_exp, LeakyIntegratorReadout

__all__ = ["ALIF_curr_exp", "EventPropTrainer", "ExampleTrace", "LeakyIntegratorReadout"]

#: An IF_curr_exp output with a threshold this far above rest (mV) counts as a readout.
READOUT_THRESHOLD = 1e6
#: Relative tolerance of "the same value" for per-neuron parameters and tau_syn_E/I.
_RTOL = 1e-9
_LIF_PARAMETERS = (
    "tau_m",
    "cm",
    "v_rest",
    "v_thresh",
    "v_reset",
    "tau_refrac",
    "tau_syn_E",
    "tau_syn_I",
    "i_offset",
)
_LI_PARAMETERS = ("tau_m", "cm", "v_rest", "tau_syn_E", "tau_syn_I", "i_offset")


@dataclass
class ExampleTrace:
    """The engine's forward pass of one example, in PyNN's units and times.

    ``t``: the grid ``n dt`` (ms), ``n = 0..N``; ``v``: ``(N + 1, n_out)`` output membrane
    (mV) at those times; ``spikes``: population label -> one array of spike times (ms) per
    neuron, for every spiking population; ``input_spikes``: the input's spike times per
    channel as the engine saw them (``floor(t/dt) dt``); ``prediction``: the predicted class.
    """

    t: np.ndarray
    v: np.ndarray
    spikes: dict[str, list[np.ndarray]]
    input_spikes: list[np.ndarray]
    prediction: int


@dataclass
class _Group:
    """The PyNN projections between one (pre, post) pair: one engine weight matrix."""

    name: str
    pre: Any
    post: Any
    members: list[Any]
    learn_weight: bool
    learn_delay: bool
    mask: np.ndarray = field(default=None, repr=False)  # (post, pre) bool
    delay_steps: np.ndarray = field(default=None, repr=False)  # (post, pre) int
    min_delay_steps: int = 0
    max_delay_steps: int = 0
    weight_bounds: tuple | None = field(default=None, repr=False)


def _label(obj: Any) -> str:
    return str(getattr(obj, "label", None) or obj)


class EventPropTrainer(Trainer):
    """Train the weights (and optionally delays) of PyNN projections with EventProp.

    Parameters
    ----------
    input : Population
        The one ``SpikeSourceArray`` population that the dataset drives (its own
        ``spike_times`` are ignored during training; :meth:`load_example` sets them).
    output : Population
        The readout: :class:`LeakyIntegratorReadout` for the voltage losses (``avg_ce``,
        ``sum_ce``, ``exp_avg_ce``, ``max_ce``, ``per_timestep_ce``, ``mse``), ``IF_curr_exp``
        for the first-spike losses (``ttfs_ce``, ``ttfs_dmse``). One output neuron per class.
    projections : sequence of Projection
        Everything trained (feed-forward or recurrent); their pre- and post-synaptic
        populations make the network. Hidden populations are ``IF_curr_exp``.
    loss : str or LossSpec
        The loss; a string takes :class:`~gpuspike.bridge.training_ir.LossSpec`'s defaults
        converted to ms (``tau0 = 0.5``, ``tau1 = 6.4``, ``delta = 1.0``), updated from
        ``loss_options``.
    duration : float
        Trial length in ms (a multiple of ``dt``): the engine simulates ``[0, duration]``.
    dt : float, optional
        Time step in ms; must equal the simulator's (the default).
    engine : str
        ``"auto"``, ``"numpy"``, ``"cpp"`` or ``"cupy"``.
    max_spikes : int
        Spikes per neuron and trial the engine can tape (more raises, never truncates).
    lift : float
        After each epoch, raise the learnt input weights of hidden neurons that never fired
        by this much (nA; 0 disables).
    rule : str
        ``"eventprop"`` (exact gradients, default), ``"bptt"`` (surrogate-gradient
        backpropagation through time) or ``"eprop"`` (e-prop: eligibility along each
        neuron's own state, learning signals through the readout);
        :mod:`gpuspike.engine.rules`. BPTT and e-prop train voltage readouts
        without delays.
    surrogate : gpuspike.engine.rules.surrogate.Surrogate, optional
        The spike function's surrogate derivative of ``bptt``/``eprop`` (default: fast
        sigmoid, beta 100, for BPTT; triangle, gamma 0.3, for e-prop).
    eprop_online : bool
        e-prop's eligibility traces forward in time, per synapse and step (memory
        independent of the trial length; 10-20x slower on a CPU). Default: the same
        gradient computed in reverse time (:class:`~gpuspike.engine.rules.network.EpropNetwork`).
    learn : tuple or mapping
        ``("weight",)``, ``("weight", "delay")``, ``("delay",)``; or a mapping Projection ->
        such a tuple (projections not in it stay fixed).
    max_delay : float, optional
        Upper bound (ms) of learnt delays; default the simulator's ``max_delay`` (the trial
        length when that is ``"auto"``).
    signs : {"pynn", "free"}
        Keep PyNN's sign convention (see the module docstring) or let weights change sign.
    dtype : str
        ``"float32"`` (fast) or ``"float64"`` (what ``sim.run`` computes in).
    loss_options : mapping, optional
        Extra :class:`LossSpec` fields (times in ms), e.g. ``{"tau_w": 10.0}``.
    """

    def __init__(
        self,
        input: Any,
        output: Any,
        projections: Sequence[Any],
        *,
        loss: str | LossSpec = "avg_ce",
        duration: float,
        dt: float | None = None,
        engine: str = "auto",
        max_spikes: int = 500,
        lift: float = 0.0,
        learn: Sequence[str] | Mapping[Any, Sequence[str]] = ("weight",),
        max_delay: float | None = None,
        signs: str = "pynn",
        dtype: str = "float32",
        loss_options: Mapping[str, Any] | None = None,
        rule: str = "eventprop",
        surrogate: Any = None,
        eprop_online: bool = False,
    ) -> None:
        state = simulator.state
        self.dt = float(state.dt if dt is None else dt)
        if abs(self.dt - state.dt) > 1e-9 * state.dt:
            raise ModelError(
                f"dt = {self.dt} ms differs from the simulator's time step ({state.dt} ms); "
                "train on the grid sim.run uses: leave dt out, or call sim.setup(timestep="
                f"{self.dt})"
            )
        self.n_steps = trial_steps(duration, self.dt, "ms")
        self.duration = self.n_steps * self.dt
        if signs not in ("pynn", "free"):
            raise ModelError(f"signs must be 'pynn' or 'free', got {signs!r}")
        self.signs = signs
        self.loss = self._loss_spec(loss, loss_options)
        self.input, self.output = self._check_endpoints(input, output)
        self.projections = self._check_projections(projections)
        self._learn = self._learn_map(learn)
        if max_delay is None:
            max_delay = state.max_delay
            if not isinstance(max_delay, (int, float)):  # PyNN's "auto"
                max_delay = self.duration
        self.max_delay = float(max_delay)
        self.names = self._population_names()
        self.groups = self._make_groups()
        self.ir = self._make_ir(max_spikes)
        bounds: dict[str, tuple[Any, Any]] = {}
        for g in self.groups:
            if g.weight_bounds is not None and g.learn_weight:
                bounds[g.name + ".w"] = g.weight_bounds   # PyNN's signs, per synapse
            if g.learn_delay:
                bounds[g.name + ".d"] = (g.min_delay_steps * self.dt,
                                         g.max_delay_steps * self.dt)
        self.model = self.network = make_network(
            rule,
            self.ir,
            self._pull(),
            engine=engine,
            dtype=np.dtype(dtype),
            lift=float(lift),
            masks={g.name: g.mask for g in self.groups},
            bounds=bounds,
            surrogate=surrogate,
            online=eprop_online,
        )

    # ------------------------------------------------------------------ checks
    @staticmethod
    def _loss_spec(loss: str | LossSpec, options: Mapping[str, Any] | None) -> LossSpec:
        if isinstance(loss, LossSpec):
            if options:
                raise ModelError(
                    "pass loss options either in the LossSpec or in loss_options, not both"
                )
            return loss
        if loss not in VOLTAGE_LOSSES + SPIKE_LOSSES:
            raise ModelError(f"unknown loss {loss!r}; choose from {VOLTAGE_LOSSES + SPIKE_LOSSES}")
        base = LossSpec()
        ms = {"tau0": base.tau0 * 1e3, "tau1": base.tau1 * 1e3, "delta": base.delta * 1e3}
        ms.update(dict(options or {}))
        try:
            return LossSpec(kind=loss, **ms)
        except TypeError as err:
            raise ModelError(f"loss_options: {err}; the fields are those of LossSpec") from err

    def _check_endpoints(self, inp: Any, out: Any) -> tuple[Any, Any]:
        from .populations import Population

        if isinstance(inp, (list, tuple, set)):
            raise UnsupportedFeature(
                f"{len(inp)} input populations given; EventProp training takes exactly one "
                "SpikeSourceArray population as input: merge the inputs into one population "
                "(one channel per neuron)"
            )
        for role, pop in (("input", inp), ("output", out)):
            if not isinstance(pop, Population):
                raise UnsupportedFeature(
                    f"the {role} {_label(pop)!r} is a {type(pop).__name__}, not a "
                    "pyNN.gpuspike Population; pass the whole Population (views and "
                    "assemblies cannot be trained)"
                )
        if getattr(inp.celltype, "source_kind", None) != "array":
            raise UnsupportedFeature(
                f"the input {inp.label!r} is {type(inp.celltype).__name__}; the dataset drives "
                "the input, which must be a SpikeSourceArray population (one neuron per "
                "dataset channel)"
            )
        if out is inp:
            raise ModelError("the output population cannot be the input")
        return inp, out

    def _check_projections(self, projections: Sequence[Any]) -> list[Any]:
        from .populations import Population
        from .projections import Projection
        from .standardmodels import StaticSynapse

        projections = list(projections)
        if not projections:
            raise ModelError("no projections to train; pass the Projections of the network")
        for prj in projections:
            if not isinstance(prj, Projection):
                raise UnsupportedFeature(
                    f"{_label(prj)!r} is a {type(prj).__module__}.{type(prj).__name__}, not a "
                    "pyNN.gpuspike Projection; build the network with `import "
                    "pyNN.gpuspike as sim`"
                )
            for side in (prj.pre, prj.post):
                if not isinstance(side, Population):
                    raise UnsupportedFeature(
                        f"projection {prj.label!r} connects {type(side).__name__} "
                        f"{_label(side)!r}; EventProp trains projections between whole "
                        "Populations: project from/to the parent population (and give the "
                        "absent synapses no connection)"
                    )
            if not isinstance(prj.synapse_type, StaticSynapse):
                raise UnsupportedFeature(
                    f"projection {prj.label!r} has a {type(prj.synapse_type).__name__}; "
                    "EventProp trains StaticSynapse weights and delays: use "
                    "sim.StaticSynapse"
                )
            if prj.receptor_type not in ("excitatory", "inhibitory"):
                raise UnsupportedFeature(
                    f"projection {prj.label!r} targets receptor {prj.receptor_type!r}; use "
                    "'excitatory' or 'inhibitory'"
                )
            if prj.post is self.input:
                raise ModelError(
                    f"projection {prj.label!r} targets the input "
                    f"{self.input.label!r}, a spike source"
                )
        if len({id(p) for p in projections}) != len(projections):
            raise ModelError("a projection is listed twice; list each projection once")
        sources = [
            p
            for p in {id(prj.pre): prj.pre for prj in projections}.values()
            if getattr(p.celltype, "source_kind", None) is not None
        ]
        extra = [p for p in sources if p is not self.input]
        if extra:
            raise UnsupportedFeature(
                f"projections start at {len(sources)} spike-source populations "
                f"({', '.join(repr(p.label) for p in sources)}); EventProp training takes "
                f"exactly one input ({self.input.label!r}): merge the inputs into one "
                "SpikeSourceArray population and the projections from them into one"
            )
        if all(prj.post is not self.output for prj in projections):
            raise ModelError(f"no projection reaches the output {self.output.label!r}")
        return projections

    def _learn_map(self, learn: Any) -> dict[int, tuple[bool, bool]]:
        def parse(spec: Any, where: str) -> tuple[bool, bool]:
            spec = (spec,) if isinstance(spec, str) else tuple(spec)
            bad = [s for s in spec if s not in ("weight", "delay")]
            if bad:
                raise ModelError(f"{where}: cannot learn {bad}; choose from 'weight', 'delay'")
            return "weight" in spec, "delay" in spec

        if isinstance(learn, Mapping):
            known = {id(p) for p in self.projections}
            for prj in learn:
                if id(prj) not in known:
                    raise ModelError(
                        f"learn names projection {_label(prj)!r}, which is not in projections"
                    )
            out = {id(p): (False, False) for p in self.projections}
            out.update({id(p): parse(s, f"learn[{_label(p)!r}]") for p, s in learn.items()})
        else:
            flags = parse(learn, "learn")
            out = {id(p): flags for p in self.projections}
        if not any(w or d for w, d in out.values()):
            raise ModelError("nothing to learn: give learn=('weight',) and/or 'delay'")
        return out

    def _population_names(self) -> dict[int, str]:
        pops = {id(self.input): self.input}
        for prj in self.projections:
            pops.setdefault(id(prj.pre), prj.pre)
            pops.setdefault(id(prj.post), prj.post)
        labels = [str(p.label) for p in pops.values()]
        names = {}
        for key, pop in pops.items():
            label = str(pop.label)
            ok = label and labels.count(label) == 1 and "->" not in label and "." not in label
            names[key] = label if ok else pop.group_name
        self._pops = pops
        return names

    # ------------------------------------------------------------------ neurons
    def _scalar(self, pop: Any, name: str) -> float:
        values = np.asarray(pop.get(name, gather=True), dtype=float).reshape(-1)
        if values.size == 0:
            raise ModelError(f"population {pop.label!r} is empty")
        v0 = float(values[0])
        if not np.allclose(values, v0, rtol=_RTOL, atol=0.0):
            raise UnsupportedFeature(
                f"population {pop.label!r}: {name} varies across its neurons "
                f"({values.min():g} .. {values.max():g}); EventProp trains populations with "
                f"one value per parameter: give {name} one value (or split the population)"
            )
        return v0

    def _initial(self, pop: Any, variable: str) -> float:
        values = pop._initial.get(variable)
        if values is None:
            return float(pop.celltype.default_initial_values.get(variable, 0.0))
        values = np.asarray(values, dtype=float)
        if not np.allclose(values, values[0], rtol=_RTOL, atol=1e-12):
            raise UnsupportedFeature(
                f"population {pop.label!r}: the initial {variable} varies across its neurons; "
                f"EventProp needs one initial value per population: initialize({variable}=x)"
            )
        return float(values[0])

    def _neuron(self, pop: Any) -> CanonicalLIF:
        ct = pop.celltype
        model = getattr(ct, "model", None)
        role = "output" if pop is self.output else "hidden population"
        spiking_out = self.loss.kind in SPIKE_LOSSES
        if model is LI_READOUT:
            if pop is not self.output:
                raise UnsupportedFeature(
                    f"{role} {pop.label!r} is a LeakyIntegratorReadout, which never spikes; "
                    "only the output may be a readout: make hidden populations IF_curr_exp"
                )
            if spiking_out:
                raise UnsupportedFeature(
                    f"loss {self.loss.kind!r} needs output spikes, but the output "
                    f"{pop.label!r} is a LeakyIntegratorReadout: make it IF_curr_exp "
                    "(tau_refrac=0), or use a voltage loss (avg_ce, ...)"
                )
            names = _LI_PARAMETERS
        elif model is models.IF_CURR_EXP:
            names = _LIF_PARAMETERS
        elif model is ALIF_CURR_EXP and pop is not self.output:
            names = _LIF_PARAMETERS + ("tau_a", "beta_a")
        else:
            hint = {
                "IF_curr_alpha": " (its alpha synapse has a second state variable: use "
                "IF_curr_exp)",
                "IF_curr_delta": " (its delta synapse has no current: use IF_curr_exp with a "
                "short tau_syn)",
            }.get(type(ct).__name__, "")
            raise UnsupportedFeature(
                f"{role} {pop.label!r} is {type(ct).__name__}{hint}; EventProp trains "
                "IF_curr_exp neurons (exponential current synapses, exact gradients) and a "
                "LeakyIntegratorReadout output: change the cell type"
            )
        p = {name: self._scalar(pop, name) for name in names}
        for cs in simulator.state.current_sources:
            if any(
                getattr(c, "parent", None) is pop
                or getattr(getattr(c, "parent", None), "parent", None) is pop
                for c in cs.cell_list
            ):
                raise UnsupportedFeature(
                    f"{role} {pop.label!r} receives a {type(cs).__name__}; EventProp as "
                    "implemented has no injected currents: remove it for training"
                )
        if p["i_offset"] != 0.0:
            raise UnsupportedFeature(
                f"{role} {pop.label!r}: i_offset = {p['i_offset']:g} nA; EventProp's neuron "
                "has no bias current: set i_offset=0 (a constant drive can come from an input "
                "channel that fires regularly)"
            )
        te, ti = p["tau_syn_E"], p["tau_syn_I"]
        if abs(te - ti) > _RTOL * max(te, ti):
            raise UnsupportedFeature(
                f"{role} {pop.label!r}: tau_syn_E = {te:g} ms but tau_syn_I = {ti:g} ms; "
                "EventProp needs one synaptic current per neuron (and training may change "
                "a weight's sign, which in NEST chooses the receptor): set tau_syn_E == "
                "tau_syn_I"
            )
        if p["tau_m"] <= 0 or te <= 0 or p["cm"] <= 0:
            raise ModelError(f"{role} {pop.label!r}: tau_m, tau_syn and cm must be positive")
        for var in ("isyn_exc", "isyn_inh"):
            if self._initial(pop, var) != 0.0:
                raise UnsupportedFeature(
                    f"{role} {pop.label!r}: initial {var} is not 0; EventProp starts every "
                    f"trial with no synaptic current: initialize({var}=0)"
                )
        v_rest = p["v_rest"]
        u0 = self._initial(pop, "v") - v_rest
        gain = p["tau_m"] / p["cm"]
        theta = v_reset = None
        if model in (models.IF_CURR_EXP, ALIF_CURR_EXP):
            high = p["v_thresh"] - v_rest >= READOUT_THRESHOLD
            if pop is self.output and not spiking_out:
                if not high:
                    raise UnsupportedFeature(
                        f"loss {self.loss.kind!r} reads the membrane of a non-spiking "
                        f"readout, but the output {pop.label!r} is IF_curr_exp with "
                        f"v_thresh = {p['v_thresh']:g} mV: use LeakyIntegratorReadout, or "
                        f"set v_thresh at least {READOUT_THRESHOLD:g} mV above v_rest"
                    )
            else:
                if high:
                    raise UnsupportedFeature(
                        f"{role} {pop.label!r} has v_thresh = {p['v_thresh']:g} mV, so it "
                        "never spikes; only the output may be a readout"
                    )
                theta, v_reset = p["v_thresh"] - v_rest, p["v_reset"] - v_rest
                if v_reset >= theta:
                    raise ModelError(
                        f"{role} {pop.label!r}: v_reset ({p['v_reset']:g} mV) "
                        f"must lie below v_thresh ({p['v_thresh']:g} mV)"
                    )
        adaptation = {}
        if model is ALIF_CURR_EXP:   # canonical a = theta_a / beta_a (jumps by 1)
            if self._initial(pop, "theta_a") != 0.0:
                raise UnsupportedFeature(
                    f"{role} {pop.label!r}: initial theta_a is not 0; training starts every "
                    "trial with the threshold at rest: initialize(theta_a=0)")
            if p["tau_a"] <= 0 or p["beta_a"] < 0:
                raise ModelError(f"{role} {pop.label!r}: tau_a must be positive and beta_a "
                                 "non-negative")
            adaptation = dict(tau_a=p["tau_a"], beta_a=p["beta_a"], adaptation="theta_a")
        # tau_refrac: the membrane held for floor(tau_refrac / dt) steps after a spike's
        # (as simulated); BPTT and e-prop train it, EventProp needs it below one step
        t_ref = p.get("tau_refrac", 0.0) if theta is not None else 0.0
        return CanonicalLIF(p["tau_m"], te, theta, v_reset, v_rest, gain, u0, t_ref=t_ref,
                            **adaptation)

    # ------------------------------------------------------------------ projections
    def _make_groups(self) -> list[_Group]:
        by_pair: dict[tuple[int, int], list[Any]] = {}
        for prj in self.projections:
            by_pair.setdefault((id(prj.pre), id(prj.post)), []).append(prj)
        groups = []
        for (a, b), members in by_pair.items():
            pre, post = self._pops[a], self._pops[b]
            kinds = [m.receptor_type for m in members]
            if len(set(kinds)) != len(kinds):
                raise UnsupportedFeature(
                    f"projections {', '.join(repr(m.label) for m in members)} all connect "
                    f"{pre.label!r} to {post.label!r} through {kinds[0]!r} synapses; "
                    "EventProp trains one weight per synapse: merge them into one projection"
                )
            flags = {self._learn[id(m)] for m in members}
            if len(flags) != 1:
                raise UnsupportedFeature(
                    f"projections {', '.join(repr(m.label) for m in members)} connect the "
                    "same populations and train as one signed matrix, but learn different "
                    "things: give them the same learn setting"
                )
            learn_w, learn_d = flags.pop()
            name = f"{self.names[a]}->{self.names[b]}"
            g = _Group(name, pre, post, members, learn_w, learn_d)
            self._connectivity(g)
            groups.append(g)
        return groups

    def _connections(self, prj: Any) -> tuple[np.ndarray, np.ndarray]:
        """(post, pre) indices of a projection's connections; duplicates are refused."""
        rows, cols = prj._post_idx, prj._pre_idx
        flat = rows * prj.pre.size + cols
        if np.unique(flat).size != flat.size:
            raise UnsupportedFeature(
                f"projection {prj.label!r} connects some neuron pair more than once; EventProp "
                "trains one weight per pair: use a connector without multiple synapses"
            )
        return rows, cols

    def _connectivity(self, g: _Group) -> None:
        shape = (g.post.size, g.pre.size)
        g.mask = np.zeros(shape, dtype=bool)
        steps = np.zeros(shape, dtype=np.int64)
        seen = np.zeros(shape, dtype=bool)
        source = getattr(g.pre.celltype, "source_kind", None) == "array"
        lo_steps = 1 if source else 0
        in_kind = {}
        for prj in g.members:
            rows, cols = self._connections(prj)
            d = np.round(np.asarray(prj._attribute("delay"), float) / self.dt).astype(np.int64)
            d = np.maximum(d, lo_steps)  # sim.run delivers spike-array events >= 1 step late
            both = seen[rows, cols]
            if np.any(steps[rows, cols][both] != d[both]):
                raise UnsupportedFeature(
                    f"projections {', '.join(repr(m.label) for m in g.members)} give a pair "
                    f"of neurons of {g.pre.label!r} -> {g.post.label!r} different delays; "
                    "they train as one signed synapse: give both the same delay"
                )
            steps[rows, cols] = d
            seen[rows, cols] = True
            g.mask[rows, cols] = True
            in_kind[prj.receptor_type] = np.zeros(shape, dtype=bool)
            in_kind[prj.receptor_type][rows, cols] = True
        steps[~g.mask] = lo_steps
        g.delay_steps = steps
        g.min_delay_steps = max(lo_steps, int(round(simulator.state.min_delay / self.dt)))
        if g.learn_delay:
            g.max_delay_steps = int(round(self.max_delay / self.dt))
            if g.max_delay_steps < max(int(steps.max(initial=0)), 1):
                raise ModelError(
                    f"max_delay = {self.max_delay:g} ms is below the delays of "
                    f"{g.pre.label!r} -> {g.post.label!r} ({steps.max() * self.dt:g} ms); "
                    "raise max_delay"
                )
            g.min_delay_steps = min(g.min_delay_steps, g.max_delay_steps)
        else:
            g.max_delay_steps = int(steps.max(initial=0))
        if self.signs == "pynn":
            exc = in_kind.get("excitatory", np.zeros(shape, dtype=bool))
            inh = in_kind.get("inhibitory", np.zeros(shape, dtype=bool))
            lo = np.where(exc & ~inh, 0.0, -np.inf)
            hi = np.where(inh & ~exc, 0.0, np.inf)
            g.weight_bounds = (lo, hi)

    def _make_ir(self, max_spikes: int) -> EventPropIR:
        pops = [TrainPopulation(self.names[id(self.input)], self.input.size)]
        for key, pop in self._pops.items():
            if pop is not self.input:
                pops.append(TrainPopulation(self.names[key], pop.size, self._neuron(pop)))
        projs = [
            TrainProjection(
                self.names[id(g.pre)],
                self.names[id(g.post)],
                g.learn_weight,
                g.max_delay_steps,
                g.learn_delay,
            )
            for g in self.groups
        ]
        return EventPropIR(
            tuple(pops),
            tuple(projs),
            self.names[id(self.output)],
            self.loss,
            self.dt,
            self.n_steps,
            int(max_spikes),
        )

    # ------------------------------------------------------------------ PyNN <-> engine
    def _pull(self) -> dict[str, np.ndarray]:
        """Engine parameters from the Projections: summed weights, delays in ms."""
        params = {}
        for g in self.groups:
            w = np.zeros(g.mask.shape)
            for prj in g.members:
                rows, cols = self._connections(prj)
                w[rows, cols] += np.asarray(prj._attribute("weight"), float)
            params[g.name + ".w"] = w
            if g.max_delay_steps > 0:
                params[g.name + ".d"] = g.delay_steps * self.dt
        return params

    def read_from_pynn(self) -> None:
        """Load the Projections' current weights (and delays) into the engine network."""
        for g in self.groups:
            mask, top = g.mask, g.max_delay_steps
            self._connectivity(g)
            if not np.array_equal(mask, g.mask) or g.max_delay_steps > top:
                raise UnsupportedFeature(
                    f"the connections (or the longest delay) of {g.pre.label!r} -> "
                    f"{g.post.label!r} changed since the trainer was made; make a new "
                    "EventPropTrainer"
                )
            g.max_delay_steps = top
        self.network.load_state_dict(self._pull())
        self.network.clamp()

    def engine_weights(self) -> dict[str, np.ndarray]:
        """The trained weights per engine projection, ``(post, pre)`` in nA (0: no synapse)."""
        return {name: _host(w) for name, w in self.network.weights().items()}

    def write_back(self) -> None:
        """Write the engine's weights (and learnt delays) into the Projections.

        Each connection gets its engine weight; a pair present in both an excitatory and an
        inhibitory projection gets the positive part in the first and the negative part in
        the second. Learnt delays become ``round(d / dt) dt`` ms.
        """
        weights = self.engine_weights()
        delays = {k: _host(v) for k, v in self.network.delay_steps().items()}
        for g in self.groups:
            w = weights[g.name]
            both = np.zeros(g.mask.shape, dtype=int)
            for prj in g.members:
                rows, cols = self._connections(prj)
                both[rows, cols] += 1
            for prj in g.members:
                full = np.zeros((g.pre.size, g.post.size))
                rows, cols = self._connections(prj)
                values = w[rows, cols]
                shared = both[rows, cols] > 1
                part = np.maximum if prj.receptor_type == "excitatory" else np.minimum
                values = np.where(shared, part(values, 0.0), values)
                full[cols, rows] = values
                prj.set(weight=full)
                if g.learn_delay:
                    d = np.clip(delays[g.name], g.min_delay_steps, g.max_delay_steps)
                    dfull = np.full((g.pre.size, g.post.size), self.dt)
                    dfull[cols, rows] = d[rows, cols] * self.dt
                    prj.set(delay=dfull)
            if g.learn_delay:
                g.delay_steps = np.where(
                    g.mask,
                    np.clip(delays[g.name], g.min_delay_steps, g.max_delay_steps),
                    g.delay_steps,
                )

    # ------------------------------------------------------------------ data
    def check_dataset(self, ds: Any, what: str) -> None:
        if ds.n_channels != self.input.size:
            raise ModelError(
                f"the {what} dataset has {ds.n_channels} channels but the input "
                f"{self.input.label!r} has {self.input.size} neurons; make them equal"
            )
        if self.loss.kind != "mse" and len(ds):
            top = int(np.max(ds.labels))
            if top >= self.output.size:
                raise ModelError(
                    f"the {what} dataset has labels up to {top}, but the output "
                    f"{self.output.label!r} has {self.output.size} neurons (one per class); "
                    f"make the output at least {top + 1} neurons"
                )

    def loader(self, ds: Any, batch_size: int = 256, *, shuffle: bool = False,
               seed: int = 0, augment: Any = None) -> Any:
        """Batches of ``ds`` on the simulator's grid (spike times in seconds, as
        SpikeDatasets hold them)."""
        from gpuspike.engine.training.data import BatchLoader

        return BatchLoader(
            ds,
            batch_size=int(batch_size),
            dt=self.dt * 1e-3,
            n_steps=self.n_steps,
            xp=self.network.xp,
            dtype=self.network.dtype,
            shuffle=shuffle,
            seed=seed,
            augment=augment,
        )

    def _bins(self, ds: Any, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Steps and channels of example ``index``, binned exactly as the loader bins them."""
        t, u = ds.sample(index)
        s = np.floor(np.asarray(t, dtype=np.float64) / (self.dt * 1e-3)).astype(np.int64)
        keep = (s >= 0) & (s < self.n_steps)
        return s[keep], np.asarray(u, dtype=np.int64)[keep]

    def spike_times(self, ds: Any, index: int) -> list[np.ndarray]:
        """Input spike times (ms) per channel of example ``index``, as the engine sees them:
        ``floor(t / dt) dt`` for ``t`` in ``[0, duration)``."""
        steps, units = self._bins(ds, index)
        order = np.lexsort((steps, units))
        steps, units = steps[order], units[order]
        bounds = np.searchsorted(units, np.arange(self.input.size + 1))
        return [steps[bounds[k] : bounds[k + 1]] * self.dt for k in range(self.input.size)]

    def load_example(self, ds: Any, index: int) -> None:
        """Set the input population's ``spike_times`` to example ``index`` (for ``sim.run``)."""
        from pyNN.parameters import Sequence as PyNNSequence

        self.check_dataset(ds, "example")
        times = self.spike_times(ds, index)
        self.input.set(spike_times=[PyNNSequence(t) for t in times])

    # ------------------------------------------------------------------ training
    #: ``fit(train)`` without epochs trains one epoch (PyNN's trainer always did)
    default_epochs = 1

    def before_fit(self) -> None:
        self.read_from_pynn()

    def config(self) -> dict[str, Any]:
        return {"ir": self._signature(), "rule": self.model.rule}

    def _signature(self) -> str:
        parts = [f"{p.name}:{p.size}" for p in self.ir.populations]
        parts += [
            f"{q.name}:{int(q.learn_weight)}{int(q.learn_delay)}:{q.max_delay_steps}"
            for q in self.ir.projections
        ]
        return f"{self.ir.loss.kind};dt={self.dt};n={self.n_steps};" + ",".join(parts)

    def evaluate_loss(self, ds: Any, batch_size: int = 256) -> tuple[float, float]:
        """``(loss, accuracy)`` on ``ds`` (:meth:`score`)."""
        return self.score(ds, batch_size)

    def trace(self, ds: Any, index: int) -> ExampleTrace:
        """The engine's forward pass of example ``index``: spikes and output voltage."""
        ex = self.forward_example(ds, index)
        spikes = {}
        for key, pop in self._pops.items():
            name = self.names[key]
            if name not in ex.spikes:
                continue
            steps, neurons = ex.spikes[name]
            per = [[] for _ in range(pop.size)]
            for n, i in zip(steps.tolist(), neurons.tolist()):
                per[i].append(n * self.dt)
            spikes[str(pop.label)] = [np.asarray(s, dtype=float) for s in per]
        return ExampleTrace(
            np.arange(self.n_steps + 1) * self.dt,
            ex.v,
            spikes,
            self.spike_times(ds, index),
            ex.prediction,
        )


def _host(a: Any) -> np.ndarray:
    return a.get() if hasattr(a, "get") and not isinstance(a, np.ndarray) else np.asarray(a)
