"""Save PNG figures of a training run: learning curves, confusion matrix, spike raster.

matplotlib is imported only when a figure is drawn, and figures are rendered with the Agg
canvas directly (``matplotlib.figure.Figure``, no pyplot), so plotting never changes the
backend of an interactive session and works without a display.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from gpuspike.bridge.errors import EngineUnavailable, ModelError

from .history import History


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise EngineUnavailable(
            "plots need matplotlib, which is not installed; pip install matplotlib "
            "(or pip install 'gpuspike[train]')"
        ) from exc
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | os.PathLike, dpi: int) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def plot_training_curves(
    history: History | Sequence[Mapping[str, Any]],
    path: str | os.PathLike,
    *,
    title: str | None = None,
    dpi: int = 120,
) -> Path:
    """Loss (left) and accuracy (right) per epoch, train and validation, as a PNG.

    Parameters
    ----------
    history : History or list of dict
        Records with ``epoch``, ``train_loss``, ``train_acc`` and optionally ``val_loss``,
        ``val_acc`` (missing or None values are left out).
    path : path
        Output PNG.
    title : str, optional
        Figure title.
    dpi : int, optional
        Resolution.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    h = history if isinstance(history, History) else History(history)
    if len(h) == 0:
        raise ModelError("plot_training_curves got an empty history; train an epoch first")
    epochs = h.column("epoch")
    fig = _figure(9, 3.5)
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("loss", "acc")):
        for split, style in (("train", "-o"), ("val", "-s")):
            y = h.column(f"{split}_{metric}")
            ok = np.isfinite(y)
            if ok.any():
                ax.plot(epochs[ok], y[ok], style, ms=3, label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss" if metric == "loss" else "accuracy")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    if title:
        fig.suptitle(title)
    return _save(fig, path, dpi)


def plot_confusion(
    confusion: np.ndarray,
    path: str | os.PathLike,
    *,
    class_names: Sequence[str] | None = None,
    normalise: bool = True,
    title: str | None = None,
    dpi: int = 120,
) -> Path:
    """Confusion matrix image (rows: true class, columns: predicted), as a PNG.

    With ``normalise`` each row is divided by its sum, so a cell shows
    ``P(predicted j | true i)`` (rows without examples stay 0).

    Parameters
    ----------
    confusion : numpy.ndarray
        ``(K, K)`` counts (see :func:`~gpuspike.engine.training.history.confusion_matrix`).
    path : path
        Output PNG.
    class_names : sequence of str, optional
        Tick labels.
    normalise : bool, optional
        Show row-normalised rates instead of counts.
    title : str, optional
        Axes title.
    dpi : int, optional
        Resolution.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    c = np.asarray(confusion, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ModelError(f"a confusion matrix must be square, got shape {c.shape}")
    k = c.shape[0]
    if normalise:
        rows = c.sum(axis=1, keepdims=True)
        c = np.divide(c, rows, out=np.zeros_like(c), where=rows > 0)
    fig = _figure(1.5 + 0.35 * k, 1.2 + 0.35 * k)
    ax = fig.subplots()
    im = ax.imshow(c, cmap="Blues", vmin=0, vmax=1 if normalise else None)
    fig.colorbar(im, ax=ax, shrink=0.8)
    ticks = np.arange(k)
    names = list(class_names) if class_names is not None else [str(i) for i in ticks]
    ax.set_xticks(ticks, names, rotation=90 if k > 10 else 0)
    ax.set_yticks(ticks, names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    return _save(fig, path, dpi)


def plot_raster(
    spikes: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | os.PathLike,
    *,
    dt: float | None = None,
    sizes: Mapping[str, int] | None = None,
    title: str | None = None,
    dpi: int = 120,
) -> Path:
    """Spike raster of one example, one panel per population, as a PNG.

    Parameters
    ----------
    spikes : mapping of str to (steps, neurons)
        Per population, the step and neuron index of every spike (equal-length int arrays).
    path : path
        Output PNG.
    dt : float, optional
        Step width in seconds; with it the x axis is time in ms (``1000 dt step``).
    sizes : mapping of str to int, optional
        Neurons per population (y limits); by default the largest index + 1.
    title : str, optional
        Figure title.
    dpi : int, optional
        Resolution.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    if not spikes:
        raise ModelError("plot_raster got no populations; pass {'name': (steps, neurons)}")
    fig = _figure(8, 1.0 + 1.8 * len(spikes))
    axes = np.atleast_1d(fig.subplots(len(spikes), 1, sharex=True, squeeze=False)[:, 0])
    for ax, (name, (steps, neurons)) in zip(axes, spikes.items()):
        steps, neurons = np.asarray(steps), np.asarray(neurons)
        if steps.shape != neurons.shape:
            raise ModelError(
                f"population {name!r} has {len(steps)} steps but {len(neurons)} neuron indices"
            )
        x = steps * (1000.0 * dt) if dt is not None else steps
        ax.scatter(x, neurons, s=1.5, marker="|", linewidths=0.8, color="k")
        top = (sizes or {}).get(name, int(neurons.max(initial=-1)) + 1)
        ax.set_ylim(-0.5, max(top, 1) - 0.5)
        ax.set_ylabel(f"{name}\nneuron")
    axes[-1].set_xlabel("time (ms)" if dt is not None else "step")
    if title:
        fig.suptitle(title)
    return _save(fig, path, dpi)
