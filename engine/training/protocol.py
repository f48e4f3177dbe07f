"""The contract between a trainable model (EventProp) and the training loop.

The loop only ever sees :class:`Trainable`: it asks for a loss and gradients on a
:class:`Batch`, lets the optimiser update ``params`` in place, and saves/loads the model
through ``state_dict``/``load_state_dict``. Arrays live on the model's engine (``xp`` is
numpy or cupy); everything in :class:`StepResult` except ``grads`` is on the host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class Batch:
    """One mini-batch on the engine's device.

    ``inputs[t, b, i]``: number of spikes of input channel ``i`` in step ``t`` (``t*dt <=
    time < (t+1)*dt``) of example ``b``, shape ``(n_steps, batch, n_inputs)``, float dtype of
    the model. ``labels``: integer class per example, shape ``(batch,)``. ``index``: the
    examples' positions in their dataset (host, for confusion matrices and rasters).
    ``spikes``: the same counts as ``(bins, counts)`` host arrays, ``bins`` the increasing
    flat indices ``(t * batch + b) * n_inputs + i`` of the non-empty bins (loaders that bin
    spike times have them for free; event-driven models read them instead of scanning
    ``inputs``); ``None``: derive them from ``inputs``.
    """

    inputs: Any
    labels: Any
    index: np.ndarray
    spikes: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def size(self) -> int:
        return int(self.index.shape[0])


@dataclass
class StepResult:
    """What one forward (and backward) pass over a batch reports.

    ``loss``: mean loss over the batch (host float). ``correct``/``n``: correct predictions
    and examples. ``predictions``: predicted class per example (host). ``grads``: name ->
    gradient of the *mean* loss, same shape/device as ``params[name]``; ``None`` from
    :meth:`Trainable.evaluate`. ``spikes_per_neuron``: population -> mean spikes per neuron
    and example. ``diagnostics``: counters such as grazing crossings skipped.
    """

    loss: float
    correct: int
    n: int
    predictions: np.ndarray
    grads: dict[str, Any] | None = None
    spikes_per_neuron: dict[str, float] = field(default_factory=dict)
    diagnostics: dict[str, float] = field(default_factory=dict)


class Trainable(Protocol):
    """A model the loop can train (implemented by the EventProp network)."""

    xp: ModuleType
    #: learnable arrays by name (e.g. ``"in->hidden.w"``); updated in place by optimisers.
    params: dict[str, Any]
    n_inputs: int
    n_steps: int
    dt: float

    def loss_and_grad(self, batch: Batch) -> StepResult: ...

    def evaluate(self, batch: Batch) -> StepResult: ...

    def after_epoch(self) -> dict[str, float]:
        """Hook run after each training epoch (e.g. lifting the input weights of neurons
        that stayed silent during the epoch); returns counters for the history."""

    def state_dict(self) -> dict[str, np.ndarray]:
        """Host copies of everything needed to restore the model (params and buffers)."""

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None: ...
