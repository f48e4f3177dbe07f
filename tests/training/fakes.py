"""Small deterministic stand-ins for the training tests: a toy dataset and a Trainable.

``LogReg`` is softmax regression on spike counts summed over time: with
``x_b = sum_t inputs[t, b]``, ``z = x W + c``, ``L = -mean_b log softmax(z_b)[y_b]``; the
gradients ``dL/dW = x^T (P - Y) / B`` and ``dL/dc = sum_b (P - Y) / B`` are exact.
"""

from __future__ import annotations

import numpy as np
from gpuspike.engine.training.protocol import Batch, StepResult

from gpuspike.datasets.events import SpikeDataset

N_CLASSES, N_CHANNELS, DT, N_STEPS = 3, 6, 1e-3, 20


def make_dataset(n: int = 48, seed: int = 0, n_channels: int = N_CHANNELS) -> SpikeDataset:
    """Class ``k`` fires mostly on channels ``2k, 2k+1``, times in ``[0, 22 ms)``."""
    rng = np.random.default_rng(seed)
    times, units, labels = [], [], []
    for i in range(n):
        k = i % N_CLASSES
        m = int(rng.integers(5, 30))
        u = np.where(rng.random(m) < 0.8, 2 * k + rng.integers(0, 2, m), rng.integers(0, 6, m))
        t = rng.uniform(0, 0.022, m)  # some spikes fall after N_STEPS * DT
        order = np.argsort(t)
        times.append(t[order].astype(np.float32))
        units.append(u[order].astype(np.int64) % n_channels)
        labels.append(k)
    return SpikeDataset(times, units, np.array(labels), np.full(n, -1, dtype=np.int64), n_channels)


class LogReg:
    """Softmax regression on summed counts, implementing the Trainable protocol."""

    def __init__(self, xp, n_inputs: int = N_CHANNELS, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.xp = xp
        self.n_inputs, self.n_steps, self.dt = n_inputs, N_STEPS, DT
        self.params = {
            "w": xp.asarray(rng.normal(0, 0.1, (n_inputs, N_CLASSES))),
            "c": xp.zeros(N_CLASSES),
        }
        self.epochs_seen = 0

    def _forward(self, batch: Batch):
        xp = self.xp
        x = batch.inputs.sum(axis=0).astype(xp.float64)
        z = x @ self.params["w"] + self.params["c"]
        z = z - z.max(axis=1, keepdims=True)
        p = xp.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        y = batch.labels
        n = int(y.shape[0])
        loss = float(-xp.log(p[xp.arange(n), y]).mean())
        pred = np.asarray(p.argmax(axis=1).get() if xp.__name__ == "cupy" else p.argmax(axis=1))
        labels = batch.labels.get() if xp.__name__ == "cupy" else np.asarray(batch.labels)
        return x, p, y, n, loss, pred, labels

    def loss_and_grad(self, batch: Batch) -> StepResult:
        xp = self.xp
        x, p, y, n, loss, pred, labels = self._forward(batch)
        d = p.copy()
        d[xp.arange(n), y] -= 1.0
        d /= n
        grads = {"w": x.T @ d, "c": d.sum(axis=0)}
        return StepResult(
            loss=loss,
            correct=int((pred == labels).sum()),
            n=n,
            predictions=pred,
            grads=grads,
            spikes_per_neuron={"out": float(x.sum()) / (n * N_CLASSES)},
            diagnostics={"batches": 1.0},
        )

    def evaluate(self, batch: Batch) -> StepResult:
        _, _, _, n, loss, pred, labels = self._forward(batch)
        return StepResult(loss=loss, correct=int((pred == labels).sum()), n=n, predictions=pred)

    def after_epoch(self) -> dict[str, float]:
        self.epochs_seen += 1
        return {"after_epoch_calls": float(self.epochs_seen)}

    def state_dict(self) -> dict[str, np.ndarray]:
        xp = self.xp
        out = {
            k: (v.get() if xp.__name__ == "cupy" else np.array(v)) for k, v in self.params.items()
        }
        out["epochs_seen"] = np.array(self.epochs_seen)
        return out

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        for k in self.params:
            self.params[k][...] = self.xp.asarray(state[k])
        self.epochs_seen = int(state["epochs_seen"])
