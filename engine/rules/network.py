"""Trainable networks of every rule: :func:`make_network` and the BPTT / e-prop models.

Both are :class:`~gpuspike.engine.eventprop.network.EventPropNetwork`\\ s (same parameters,
forward pass, losses, regulariser, weight lift, checkpoints, bounds) whose gradient pass is
the rule's generated kernels (:mod:`.kernels`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from gpuspike.bridge.errors import UnsupportedFeature
from gpuspike.bridge.training_ir import EventPropIR

from ..eventprop.network import EventPropNetwork
from ..eventprop.passes import TrainingPrograms
from .kernels import RULES, check_rule
from .programs import BPTTPrograms, EpropPrograms, EpropReversePrograms
from .surrogate import DEFAULT, Surrogate


class _SurrogateNetwork(EventPropNetwork):
    rule = ""
    _programs_class: type = TrainingPrograms

    def __init__(self, ir: EventPropIR, params: Mapping[str, np.ndarray], *,
                 surrogate: Surrogate | None = None, **kwargs: Any) -> None:
        check_rule(ir, self.rule)
        self.surrogate = surrogate or DEFAULT[self.rule]
        super().__init__(ir, params, **kwargs)

    def make_programs(self, batch: int) -> TrainingPrograms:
        return self._programs_class(self.ir, self.backend, batch, self.ring_capacity,
                                    self.dtype, self.threads, surrogate=self.surrogate)


class BPTTNetwork(_SurrogateNetwork):
    """Surrogate-gradient backpropagation through time (fast sigmoid, beta 100, by
    default; the reset detached)."""

    rule = "bptt"
    _programs_class = BPTTPrograms


class EpropNetwork(_SurrogateNetwork):
    """e-prop (Bellec et al. 2020): eligibility along each neuron's own state, learning
    signals through the readout weights (triangle pseudo-derivative, gamma 0.3, by default).

    ``online=False`` (default) computes the gradient in reverse time (BPTT's backward pass
    with the feedback through the readout only: work per spike, a tape of ``O(N)`` per
    neuron); ``online=True`` runs the eligibility traces forward in time, per synapse and
    step (memory independent of the trial's length; 10-20x slower on a CPU). Both give
    the same gradient to rounding (:mod:`.kernels`)."""

    rule = "eprop"

    def __init__(self, ir: EventPropIR, params: Mapping[str, np.ndarray], *,
                 online: bool = False, **kwargs: Any) -> None:
        self.online = bool(online)
        self._programs_class = EpropPrograms if self.online else EpropReversePrograms
        super().__init__(ir, params, **kwargs)


def make_network(rule: str, ir: EventPropIR, params: Mapping[str, np.ndarray], *,
                 surrogate: Surrogate | None = None, online: bool = False,
                 **kwargs: Any) -> EventPropNetwork:
    """The trainable model of ``ir`` for ``rule`` (``'eventprop'``, ``'bptt'``,
    ``'eprop'``); ``online``: e-prop's forward-time traces (:class:`EpropNetwork`);
    ``kwargs`` are :class:`EventPropNetwork`'s."""
    if online and rule != "eprop":
        raise UnsupportedFeature(f"online eligibility traces are e-prop's; rule {rule!r} "
                                 "computes its gradient in reverse time (use rule='eprop' "
                                 "or drop online)")
    if rule == "eventprop":
        if surrogate is not None:
            raise UnsupportedFeature("EventProp's gradients are exact: it takes no surrogate "
                                     "(pass one with rule='bptt' or 'eprop')")
        return EventPropNetwork(ir, params, **kwargs)
    if rule == "bptt":
        return BPTTNetwork(ir, params, surrogate=surrogate, **kwargs)
    if rule == "eprop":
        return EpropNetwork(ir, params, surrogate=surrogate, online=online, **kwargs)
    raise UnsupportedFeature(f"unknown training rule {rule!r}; choose from {RULES}")
