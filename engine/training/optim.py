"""Gradient-descent optimisers that update a model's parameter arrays in place.

Each optimiser works on ``params: dict[str, array]`` with ``grads`` of the same names,
shapes and devices, using the arrays' own module (numpy or cupy), so the update never leaves
the device. ``lr`` is a plain attribute that a learning-rate schedule sets before each step.
``bounds[name] = (low, high)`` clips a parameter after each update (``None``: unbounded),
e.g. ``{"in->hidden.delay": (0.0, 0.062)}`` keeps learnt delays in range. ``clip`` (an
:class:`~gpuspike.engine.training.clipping.AutoClip`) scales surging gradients down before
the update; its history is part of :meth:`Optimiser.state_dict`.

``weight_decay = lambda`` is *decoupled* weight decay (Loshchilov & Hutter 2019, "AdamW"):
before each gradient update, ``p <- (1 - lr lambda) p`` for the weights only (names ending
in ``.w``; delays are not pulled to zero). For plain SGD this equals an L2 penalty
``lambda/2 |w|^2`` in the loss; for Adam it does not (the penalty's gradient would be
rescaled by ``1 / sqrt(v)``), which is the point of decoupling: every weight shrinks by the
same fraction per step, like a ridge prior.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import numpy as np
from gpuspike.bridge.errors import ModelError

Bounds = Mapping[str, tuple[float | None, float | None]]


def array_module(a: Any) -> ModuleType:
    """The module an array belongs to: cupy for ``cupy.ndarray``, numpy otherwise."""
    root = type(a).__module__.split(".")[0]
    if root == "cupy":
        return importlib.import_module("cupy")
    return np


def to_host(a: Any) -> np.ndarray:
    """A host numpy copy of a numpy or cupy array."""
    if type(a).__module__.split(".")[0] == "cupy":
        return a.get()
    return np.array(a, copy=True)


class Optimiser:
    """Base class: learning rate, clamp bounds, and the checks every update shares.

    Parameters
    ----------
    lr : float
        Learning rate (mutable: a schedule sets it before each step).
    bounds : mapping, optional
        ``name -> (low, high)``; after each step ``p <- min(max(p, low), high)``.
    clip : AutoClip, optional
        Gradient clipping applied before each update.
    weight_decay : float, optional
        Decoupled weight decay ``lambda >= 0`` of the weights (module docstring).
    """

    kind = "optimiser"

    def __init__(self, lr: float, bounds: Bounds | None = None, clip: Any = None,
                 weight_decay: float = 0.0) -> None:
        self.clip = clip
        if not lr >= 0:
            raise ModelError(f"the learning rate must be >= 0, got {lr}")
        if not weight_decay >= 0:
            raise ModelError(f"weight_decay must be >= 0, got {weight_decay}: it is the "
                             "fraction of each weight removed per step, divided by lr")
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.bounds: dict[str, tuple[float | None, float | None]] = dict(bounds or {})
        for name, (lo, hi) in self.bounds.items():
            # scalars, or arrays of the parameter's shape (per-element bounds)
            if lo is not None and hi is not None and bool((array_module(lo).asarray(lo) >
                                                           array_module(hi).asarray(hi)).any()):
                raise ModelError(f"bounds of {name!r} have low > high somewhere; swap them")
        self.t = 0

    def _pairs(self, params: Mapping[str, Any], grads: Mapping[str, Any] | None) -> list[str]:
        if grads is None:
            raise ModelError(
                "step() got no gradients (grads=None); pass StepResult.grads from "
                "loss_and_grad, not the result of evaluate"
            )
        unknown = sorted(set(grads) - set(params))
        if unknown:
            raise ModelError(
                f"gradients for {unknown} have no parameter of that name; the names in grads "
                f"must be keys of params ({sorted(params)})"
            )
        names = [n for n in params if n in grads and grads[n] is not None]
        for n in names:
            if tuple(params[n].shape) != tuple(grads[n].shape):
                raise ModelError(
                    f"gradient of {n!r} has shape {tuple(grads[n].shape)} but the parameter "
                    f"has {tuple(params[n].shape)}; the model must return d loss / d param"
                )
        return names

    def _clamp(self, name: str, p: Any) -> None:
        if name in self.bounds:
            lo, hi = self.bounds[name]
            xp = array_module(p)
            if lo is not None:
                xp.maximum(p, lo, out=p)
            if hi is not None:
                xp.minimum(p, hi, out=p)

    def step(self, params: Mapping[str, Any], grads: Mapping[str, Any] | None) -> None:
        """Update ``params`` in place from ``grads`` (parameters without a gradient stay)."""
        names = self._pairs(params, grads)
        if self.clip is not None:
            grads = self.clip({n: grads[n] for n in names})
        self.t += 1
        shrink = 1.0 - self.lr * self.weight_decay
        for n in names:
            if shrink != 1.0 and n.endswith(".w"):
                params[n] *= shrink
            self._update(n, params[n], grads[n])
            self._clamp(n, params[n])

    def _update(self, name: str, p: Any, g: Any) -> None:
        raise NotImplementedError

    def _buffers(self) -> dict[str, dict[str, Any]]:
        return {}

    def _hyper(self) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Host copies of the state: ``kind``, ``lr``, ``t``, hyper-parameters, buffers."""
        state: dict[str, Any] = {"kind": self.kind, "lr": self.lr, "t": self.t,
                                 "weight_decay": self.weight_decay}
        state.update(self._hyper())
        for key, bufs in self._buffers().items():
            state[key] = {n: to_host(b) for n, b in bufs.items()}
        if self.clip is not None:
            state["clip"] = self.clip.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`; buffers move to the parameters' device on first use."""
        if state.get("kind") != self.kind:
            raise ModelError(
                f"this is a {self.kind!r} optimiser but the state is from "
                f"{state.get('kind')!r}; load it into the optimiser that saved it"
            )
        self.lr = float(state["lr"])
        self.t = int(state["t"])
        self.weight_decay = float(state.get("weight_decay", self.weight_decay))
        for key, bufs in self._buffers().items():
            bufs.clear()
            bufs.update({n: np.array(b) for n, b in state.get(key, {}).items()})
        if self.clip is not None and "clip" in state:
            self.clip.load_state_dict(state["clip"])

    @staticmethod
    def _buffer(bufs: dict[str, Any], name: str, p: Any) -> Any:
        """``bufs[name]`` on ``p``'s device and dtype (zeros when new)."""
        xp = array_module(p)
        b = bufs.get(name)
        if b is None:
            b = xp.zeros_like(p)
        elif array_module(b) is not xp or b.dtype != p.dtype:
            b = xp.asarray(b, dtype=p.dtype)
        if b.shape != p.shape:
            raise ModelError(
                f"optimiser state of {name!r} has shape {b.shape} but the parameter has "
                f"{p.shape}; the checkpoint is from another network shape"
            )
        bufs[name] = b
        return b


class SGD(Optimiser):
    """Stochastic gradient descent with optional (heavy-ball) momentum.

    With momentum ``mu``: ``v <- mu v + g``, ``p <- p - lr v`` (``v`` starts at 0); with
    ``mu = 0`` this is ``p <- p - lr g``.

    Parameters
    ----------
    lr : float
        Learning rate.
    momentum : float, optional
        ``mu`` in ``[0, 1)``.
    bounds : mapping, optional
        Clamp bounds per parameter name.
    """

    kind = "sgd"

    def __init__(self, lr: float, momentum: float = 0.0, bounds: Bounds | None = None,
                 clip: Any = None, weight_decay: float = 0.0) -> None:
        super().__init__(lr, bounds, clip, weight_decay)
        if not 0 <= momentum < 1:
            raise ModelError(f"momentum must lie in [0, 1), got {momentum}")
        self.momentum = float(momentum)
        self.velocity: dict[str, Any] = {}

    def _hyper(self) -> dict[str, float]:
        return {"momentum": self.momentum}

    def _buffers(self) -> dict[str, dict[str, Any]]:
        return {"velocity": self.velocity}

    def _update(self, name: str, p: Any, g: Any) -> None:
        if self.momentum == 0:
            p -= self.lr * g
            return
        v = self._buffer(self.velocity, name, p)
        v *= self.momentum
        v += g
        p -= self.lr * v


class Adam(Optimiser):
    """Adam (Kingma & Ba 2015) with bias correction.

    At step ``t = 1, 2, ...``: ``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2) g^2``,
    ``m_hat = m / (1 - b1^t)``, ``v_hat = v / (1 - b2^t)``,
    ``p <- p - lr m_hat / (sqrt(v_hat) + eps)`` (``m``, ``v`` start at 0).

    Parameters
    ----------
    lr : float, optional
        Learning rate.
    beta1, beta2 : float, optional
        Decay rates of the first and second moment estimates, in ``[0, 1)``.
    eps : float, optional
        Added to ``sqrt(v_hat)``.
    bounds : mapping, optional
        Clamp bounds per parameter name.
    """

    kind = "adam"

    def __init__(
        self,
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        bounds: Bounds | None = None,
        clip: Any = None,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(lr, bounds, clip, weight_decay)
        for name, b in (("beta1", beta1), ("beta2", beta2)):
            if not 0 <= b < 1:
                raise ModelError(f"{name} must lie in [0, 1), got {b}")
        if not eps > 0:
            raise ModelError(f"eps must be positive, got {eps}")
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.m: dict[str, Any] = {}
        self.v: dict[str, Any] = {}

    def _hyper(self) -> dict[str, float]:
        return {"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def _buffers(self) -> dict[str, dict[str, Any]]:
        return {"m": self.m, "v": self.v}

    def _update(self, name: str, p: Any, g: Any) -> None:
        xp = array_module(p)
        m = self._buffer(self.m, name, p)
        v = self._buffer(self.v, name, p)
        m *= self.beta1
        m += (1.0 - self.beta1) * g
        v *= self.beta2
        v += (1.0 - self.beta2) * (g * g)
        c1 = 1.0 - self.beta1**self.t
        c2 = 1.0 - self.beta2**self.t
        p -= (self.lr / c1) * m / (xp.sqrt(v / c2) + self.eps)
