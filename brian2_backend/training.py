"""Train a plain Brian2 network with EventProp (exact gradients, Wunderlich & Pehle 2021).

::

    trainer = EventPropTrainer(net, input=inp, output=out, learn=[s1.w, s2.w],
                               loss="avg_ce", dt=1*ms, duration=20*ms)
    trainer.fit(train, epochs=10, batch_size=32, lr=1e-2, val=test)
    # s1.w, s2.w now hold the trained weights; net.run(20*ms) simulates the trained network

The network is read once, when the trainer is made (:mod:`.training_translate`: one
``SpikeGeneratorGroup`` input, LIF/LI ``NeuronGroup``\\ s, ``I_post += w`` ``Synapses``);
:meth:`EventPropTrainer.fit` trains the engine's copy of the weights and writes them back
into the ``Synapses`` (:meth:`~EventPropTrainer.push`; :meth:`~EventPropTrainer.pull`
re-reads weights changed in Brian2 since).

Timing: Brian2's default schedule (groups -> thresholds -> synapses -> resets) adds a
``SpikeGeneratorGroup`` spike of step ``k`` (``t = k dt``) to ``I_post`` *after* the state
update of step ``k``, so it first moves ``v`` in step ``k + 1``; a ``NeuronGroup`` spike
(threshold after the update of step ``k``) reaches its targets at the same point. The engine
(:mod:`gpuspike.engine.eventprop.kernels`) delivers input bin ``k`` *before* its propagation
``k + 1`` — one step earlier than Brian2. The trainer therefore feeds the engine input bin
``k`` at step ``k + 1`` (:class:`Brian2TimedLoader`): the trained network then means
exactly what Brian2 runs. With ``N = duration / dt`` steps, engine step ``n`` is the state
after Brian2's ``n``-th update: ``StateMonitor(out, 'v', when='end')`` records
``v_out[1..N]`` (the loss's readout), a spike of engine step ``n`` is recorded by a
``SpikeMonitor`` at ``t = (n - 1) dt``, and Brian2's last step ``N - 1`` checks a threshold
that the engine does not (its spikes cannot affect the readout). Thresholds ``v > theta``
are compared as ``>=`` by the engine (they differ only at exact equality).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from gpuspike.bridge.errors import ModelError
from gpuspike.bridge.training_ir import LossSpec
from gpuspike.engine.rules.network import make_network
from gpuspike.engine.training.data import BatchLoader
from gpuspike.engine.training.protocol import Batch
from gpuspike.engine.training.trainer import Trainer, trial_steps

from gpuspike.datasets.events import SpikeDataset

from .training_translate import Translation, read_params, translate, write_back

__all__ = ["Brian2TimedLoader", "EventPropTrainer", "ExampleTrace"]


class Brian2TimedLoader(BatchLoader):
    """A :class:`BatchLoader` that hands the engine input bin ``k`` at step ``k + 1``.

    This is when Brian2's default schedule lets a ``SpikeGeneratorGroup`` spike at ``k dt``
    act (see the module docstring); spikes of the last bin are dropped (in Brian2 they
    arrive after the last update).
    """

    def batch(self, i: int) -> Batch:
        b = super().batch(i)
        shifted = self.xp.zeros_like(b.inputs)
        shifted[1:] = b.inputs[:-1]
        spikes = None
        if b.spikes is not None:   # the sparse bins, one step later (the last step's drop)
            bins, counts = b.spikes
            step = b.inputs.shape[1] * b.inputs.shape[2]
            keep = bins < (b.inputs.shape[0] - 1) * step
            spikes = (bins[keep] + step, counts[keep])
        return Batch(inputs=shifted, labels=b.labels, index=b.index, spikes=spikes)


@dataclass
class ExampleTrace:
    """The engine's forward pass of one example, in Brian2's terms.

    ``v[n]`` (``n = 0..N``, shape ``(N + 1, n_out)``, SI units) is the output voltage after
    ``n`` updates: ``StateMonitor(out, 'v', when='end')`` records ``v[1:]``, one with the
    default ``when='start'`` records ``v[:-1]``. ``spikes[group] = (t, i)``: spike times as
    a Brian2 ``SpikeMonitor`` records them (``(n - 1) dt`` for engine step ``n``) and neuron
    indices; ``counts[group]``: spikes per neuron; ``prediction``: the predicted class.
    """

    v: np.ndarray
    spikes: dict[str, tuple[np.ndarray, np.ndarray]]
    counts: dict[str, np.ndarray]
    prediction: int


def _seconds(value: Any, what: str) -> float:
    dim = getattr(value, "dim", None)
    if dim is not None and str(dim) not in ("s", "second"):
        raise ModelError(f"{what} must be a time (e.g. 1*ms), got {value!r}")
    return float(np.asarray(value, dtype=np.float64))


def _host(a: Any) -> np.ndarray:
    return a.get() if hasattr(a, "get") and not isinstance(a, np.ndarray) else np.asarray(a)


class EventPropTrainer(Trainer):
    """Train the weights (and optionally delays) of a Brian2 network with EventProp.

    Parameters
    ----------
    net : brian2.Network
        SpikeGeneratorGroup input, LIF NeuronGroups, ``I_post += w`` Synapses (monitors are
        ignored).
    input, output : Brian2 groups, optional
        The input SpikeGeneratorGroup and the readout NeuronGroup (default: the network's
        only SpikeGeneratorGroup, the only NeuronGroup without outgoing Synapses). A
        leaky-integrator readout (no threshold) for voltage losses, LIF for ``ttfs_*``.
    learn : list, optional
        Weights to train: ``S.w``, ``'S.w'`` (S a Brian2 name or a variable of the caller)
        or Synapses objects; default all. The others stay fixed.
    learn_delays : list, optional
        Synapses whose per-synapse delays are trained (``S.delay``), within
        ``[0, max_delay]`` (default ``duration``).
    loss : str or LossSpec
        ``"avg_ce"``, ``"sum_ce"``, ``"exp_avg_ce"``, ``"max_ce"``, ``"per_timestep_ce"``,
        ``"mse"``, ``"ttfs_ce"``, ``"ttfs_dmse"`` or a LossSpec (regulariser settings).
    dt, duration : Brian2 time or float seconds
        Step (default: the input group's clock dt) and trial length.
    engine : str
        ``"auto"``, ``"numpy"``, ``"cpp"`` or ``"cupy"``.
    dtype : numpy dtype
        Float type of the engine (float32; float64 for comparisons).
    namespace : dict, optional
        Values of external constants; merged over the caller's variables (the group's own
        ``namespace`` wins, as in Brian2).
    max_spikes : int
        Per-neuron spike buffer of the engine.
    lift : float
        After each epoch, added to the learnt input weights of hidden neurons that never
        fired (0: off).
    level : int
        Extra stack frames between the user's code and this call (for wrappers).
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
    """

    def __init__(
        self,
        net: Any,
        *,
        input: Any = None,
        output: Any = None,
        learn: Any = None,
        learn_delays: Any = (),
        loss: str | LossSpec = "avg_ce",
        dt: Any = None,
        duration: Any = None,
        engine: str = "auto",
        dtype: Any = np.float32,
        namespace: Mapping[str, Any] | None = None,
        max_spikes: int = 500,
        lift: float = 0.0,
        max_delay: Any = None,
        level: int = 0,
        rule: str = "eventprop",
        surrogate: Any = None,
        eprop_online: bool = False,
    ) -> None:
        from brian2.core.namespace import get_local_namespace

        if duration is None:
            raise ModelError("EventPropTrainer needs duration= (the trial length, e.g. 20*ms)")
        run_ns = {**get_local_namespace(level + 1), **dict(namespace or {})}
        if dt is None:
            dt = input.clock.dt if input is not None else _first_input(net).clock.dt
        self.dt = _seconds(dt, "dt")
        self.duration = _seconds(duration, "duration")
        self.n_steps = trial_steps(self.duration, self.dt, "s")
        self.translation: Translation = translate(
            net,
            input=input,
            output=output,
            learn=learn,
            learn_delays=learn_delays,
            loss=loss,
            dt=self.dt,
            n_steps=self.n_steps,
            max_spikes=max_spikes,
            max_delay=None if max_delay is None else _seconds(max_delay, "max_delay"),
            run_namespace=run_ns,
        )
        self.ir = self.translation.ir
        self.input = self.translation.input
        self.output = self.translation.output
        self.model = make_network(
            rule,
            self.ir,
            self.translation.params,
            engine=engine,
            dtype=dtype,
            lift=lift,
            masks=self.translation.masks,
            bounds={q.name + ".d": (0.0, q.max_delay_steps * self.dt)
                    for q in self.ir.projections if q.learn_delay},
            surrogate=surrogate,
            online=eprop_online,
        )
        self.result: Any = None
        self._warned_dt = False

    # -- what the base trainer asks --------------------------------------------------------
    def loader(
        self,
        dataset: SpikeDataset,
        batch_size: int = 256,
        *,
        shuffle: bool = False,
        seed: int = 0,
        augment: Any = None,
    ) -> Brian2TimedLoader:
        """A batch loader of ``dataset`` on the engine's grid, with Brian2's input timing."""
        n_in = len(self.input)
        if dataset.n_channels > n_in:
            raise ModelError(
                f"the dataset has {dataset.n_channels} channels but the input "
                f"SpikeGeneratorGroup {self.input.name!r} only {n_in} neurons"
            )
        if dataset.n_channels < n_in:
            dataset = dataclasses.replace(dataset, n_channels=n_in)
        return Brian2TimedLoader(
            dataset,
            batch_size=batch_size,
            dt=self.dt,
            n_steps=self.n_steps,
            xp=self.model.xp,
            dtype=self.model.dtype,
            shuffle=shuffle,
            seed=seed,
            augment=augment,
        )

    def config(self) -> dict[str, Any]:
        return {
            "frontend": "brian2",
            "rule": self.model.rule,
            "dt": self.dt,
            "n_steps": self.n_steps,
            "loss": self.ir.loss.kind,
            "output": self.ir.output,
            "populations": {p.name: p.size for p in self.ir.populations},
            "projections": sorted(q.name for q in self.ir.projections),
        }

    def write_back(self) -> None:
        self.push(_stacklevel=4)

    def run_example(self, times: Any, units: Any) -> ExampleTrace:
        """The engine's forward pass of one example (spike ``times`` in seconds, ``units``)."""
        t = np.asarray(times, dtype=np.float64)
        u = np.asarray(units, dtype=np.int64)
        ds = SpikeDataset([t], [u], np.zeros(1, np.int64), np.full(1, -1), len(self.input))
        ex = self.forward_example(ds, 0)
        spikes = {name: ((n - 1) * self.dt, i) for name, (n, i) in ex.spikes.items()}
        return ExampleTrace(ex.v, spikes, ex.counts, ex.prediction)

    # -- Brian2 side -----------------------------------------------------------------------
    def push(self, *, _stacklevel: int = 2) -> None:
        """Write the engine's weights (and learnt delays, on the step grid) into Brian2.

        Warns (once) when the Brian2 objects' clocks run with another dt than the trainer.
        """
        write_back(self.translation, self.model.state_dict(), self.dt)
        if not self._warned_dt:
            objs = [
                *self.translation.groups.values(),
                *(b.syn for b in self.translation.projections.values()),
            ]
            other = {float(o.clock.dt_) for o in objs} - {self.dt}
            if any(abs(d - self.dt) > 1e-12 * self.dt for d in other):
                self._warned_dt = True
                warnings.warn(
                    f"the network was trained with dt = {self.dt} s but its Brian2 objects run "
                    f"with dt = {sorted(other)} s; set defaultclock.dt (or the groups' dt) to "
                    f"{self.dt} s to simulate what was trained",
                    stacklevel=_stacklevel,
                )

    def pull(self) -> None:
        """Re-read the weights and delays of the Brian2 Synapses into the engine."""
        self.model.load_state_dict(read_params(self.translation))

    def set_input(self, times: Any, units: Any) -> None:
        """Give the input SpikeGeneratorGroup one example, on the training grid.

        Spike times are floored to ``k dt`` as the trainer's loader bins them; spikes at or
        after ``duration`` are dropped. A channel may spike once per step (Brian2's rule).
        """
        from brian2 import second

        t = np.asarray(times, dtype=np.float64)
        u = np.asarray(units, dtype=np.int64)
        k = np.floor(t / self.dt).astype(np.int64)
        keep = (k >= 0) & (k < self.n_steps)
        k, u = k[keep], u[keep]
        key = k * len(self.input) + u
        if np.unique(key).size != key.size:
            raise ModelError(
                "an input channel spikes more than once in one step; Brian2's "
                "SpikeGeneratorGroup cannot express that — use a smaller dt"
            )
        order = np.argsort(key, kind="stable")
        self.input.set_spikes(u[order], k[order] * self.dt * second)


def _first_input(net: Any) -> Any:
    for obj in net.objects:
        if type(obj).__name__ == "SpikeGeneratorGroup":
            return obj
    raise ModelError("the network has no SpikeGeneratorGroup input")
