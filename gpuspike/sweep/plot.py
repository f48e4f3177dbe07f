"""Plot a metric against a swept parameter with error bars over seeds and folds (PNG).

Matplotlib is imported only inside :func:`plot_groups`, which draws on an Agg canvas without
pyplot (no global backend state, no display needed).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gpuspike.sweep.errors import SweepError


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def auto_logx(values: Sequence[Any]) -> bool:
    """Whether numeric x values want a log axis: all positive, spanning two decades or more."""
    xs = [float(v) for v in values]
    return bool(xs) and min(xs) > 0 and max(xs) / min(xs) >= 100


def _label(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def plot_groups(
    groups: Sequence[dict[str, Any]],
    path: str | os.PathLike,
    metric: str,
    x: str | None = None,
    logx: bool | None = None,
    title: str | None = None,
) -> Path:
    """Draw ``metric`` (mean ± std) against the grid key ``x``, one line per other setting.

    Parameters
    ----------
    groups : sequence of dict
        What :func:`gpuspike.sweep.aggregate.aggregate_groups` returned.
    path : str or path-like
        PNG file to write.
    metric : str
        Metric on the y axis; groups without it are left out.
    x : str, optional
        Grid key on the x axis; default the first grid key. Without grid keys every group
        is one point.
    logx : bool, optional
        Log-scaled x axis; default when numeric x values are all positive and span two
        decades or more.
    title : str, optional
        Figure title.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    SweepError
        ``x`` is not a grid key, or no group has ``metric``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    keys = list(groups[0]["params"]) if groups else []
    if x is None and keys:
        x = keys[0]
    if x is not None and x not in keys:
        raise SweepError(f"plot: x = {x!r} is not a grid key; use one of {keys}")
    shown = [g for g in groups if metric in g["metrics"]]
    if not shown:
        raise SweepError(
            f"plot: no finished trial reported metric {metric!r}; set 'metric' (or plot.metric) "
            "to one the trial function returns"
        )

    xs_all = [g["params"][x] for g in shown] if x is not None else [0]
    numeric = x is not None and _numeric(xs_all)
    categories: list[Any] = []
    if not numeric:
        for v in xs_all:
            if v not in categories:
                categories.append(v)

    lines: dict[str, list[dict[str, Any]]] = {}
    for g in shown:
        rest = {k: v for k, v in g["params"].items() if k != x}
        lines.setdefault(_label(rest), []).append(g)

    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for label, members in lines.items():
        pts = []
        for g in members:
            xv = g["params"][x] if x is not None else 0
            pos = xv if numeric else categories.index(xv)
            stat = g["metrics"][metric]
            pts.append((pos, stat["mean"], stat["std"], stat["n"]))
        pts.sort(key=lambda p: p[0])
        ax.errorbar(
            [p[0] for p in pts],
            [p[1] for p in pts],
            yerr=[p[2] for p in pts],
            marker="o",
            capsize=3,
            label=label or None,
        )
    if numeric:
        if logx is None:
            logx = auto_logx(xs_all)
        if logx:
            ax.set_xscale("log")
    else:
        ax.set_xticks(range(len(categories)), [str(c) for c in categories])
    n_max = max(g["metrics"][metric]["n"] for g in shown)
    ax.set_xlabel(x if x is not None else "")
    ax.set_ylabel(f"{metric} (mean ± std, n ≤ {n_max})")
    if title:
        ax.set_title(title)
    if any(label for label in lines):
        ax.legend(fontsize="small")
    ax.grid(True, alpha=0.3)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    return out
