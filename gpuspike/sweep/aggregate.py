"""Average trial records per group (grid point) over seeds and folds; write CSV and JSON.

Files written to the output folder:

``results.csv``
    One row per group: the grid values, ``n_trials``, ``n_ok``, ``n_failed``, then
    ``<metric>_mean`` and ``<metric>_std`` of every numeric metric (e.g. the mean LOSO test
    accuracy over the held-out speakers and seeds).
``trials.csv``
    One row per trial: id, status, grid values, seed, held-out speaker, metrics, run time,
    host and error.
``results.json``
    The sweep config, the summary, the groups and the full trial records.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gpuspike.sweep.execute import OK
from gpuspike.sweep.store import write_json_atomic
from gpuspike.sweep.trials import Trial


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``; 0 for a single value)."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    mean = math.fsum(values) / n
    if n == 1:
        return mean, 0.0
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var)


def metric_names(records: Sequence[dict[str, Any] | None]) -> list[str]:
    """Numeric scalar metrics of the finished records, in first-seen order."""
    names: dict[str, None] = {}
    for rec in records:
        if rec is not None and rec.get("status") == OK:
            for key, value in (rec.get("metrics") or {}).items():
                if _is_number(value):
                    names.setdefault(key)
    return list(names)


def aggregate_groups(
    trials: Sequence[Trial], records: Sequence[dict[str, Any] | None]
) -> list[dict[str, Any]]:
    """One entry per grid point, in trial order, with mean and std of each numeric metric.

    Parameters
    ----------
    trials : sequence of Trial
        All trials of the sweep.
    records : sequence of dict or None
        The record of each trial (``None`` when it has not run).

    Returns
    -------
    list of dict
        ``{"params", "n_trials", "n_ok", "n_failed", "metrics": {name: {"mean", "std",
        "n"}}}``; failed and missing trials are left out of the statistics.
    """
    names = metric_names(records)
    groups: dict[str, dict[str, Any]] = {}
    values: dict[str, dict[str, list[float]]] = {}
    for trial, rec in zip(trials, records):
        g = groups.setdefault(
            trial.group,
            {"params": dict(trial.params), "n_trials": 0, "n_ok": 0, "n_failed": 0},
        )
        vals = values.setdefault(trial.group, {name: [] for name in names})
        g["n_trials"] += 1
        if rec is None:
            continue
        if rec.get("status") != OK:
            g["n_failed"] += 1
            continue
        g["n_ok"] += 1
        for name in names:
            value = (rec.get("metrics") or {}).get(name)
            if _is_number(value):
                vals[name].append(float(value))
    for key, g in groups.items():
        g["metrics"] = {}
        for name, vs in values[key].items():
            if vs:
                mean, std = mean_std(vs)
                g["metrics"][name] = {"mean": mean, "std": std, "n": len(vs)}
    return list(groups.values())


def best_group(groups: Sequence[dict[str, Any]], metric: str, mode: str) -> dict[str, Any] | None:
    """The group with the highest (``mode="max"``) or lowest mean ``metric``, if any has it."""
    scored = [
        g for g in groups if metric in g["metrics"] and math.isfinite(g["metrics"][metric]["mean"])
    ]
    if not scored:
        return None
    pick = max if mode == "max" else min
    best = pick(scored, key=lambda g: g["metrics"][metric]["mean"])
    return {"params": best["params"], metric: best["metrics"][metric]}


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return value


def write_groups_csv(
    path: str | os.PathLike, groups: Sequence[dict[str, Any]], grid_keys: Sequence[str]
) -> None:
    """Write ``results.csv``: one row per group with ``<metric>_mean`` / ``<metric>_std``."""
    names: dict[str, None] = {}
    for g in groups:
        for name in g["metrics"]:
            names.setdefault(name)
    header = [*grid_keys, "n_trials", "n_ok", "n_failed"]
    for name in names:
        header += [f"{name}_mean", f"{name}_std"]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for g in groups:
            row = [_cell(g["params"].get(k)) for k in grid_keys]
            row += [g["n_trials"], g["n_ok"], g["n_failed"]]
            for name in names:
                stat = g["metrics"].get(name)
                row += ["", ""] if stat is None else [stat["mean"], stat["std"]]
            writer.writerow(row)


def write_trials_csv(
    path: str | os.PathLike,
    trials: Sequence[Trial],
    records: Sequence[dict[str, Any] | None],
    grid_keys: Sequence[str],
) -> None:
    """Write ``trials.csv``: one row per trial (``status`` is empty for a trial not run)."""
    names = metric_names(records)
    header = ["id", "status", *grid_keys, "seed", "fold", *names, "elapsed_s", "host", "error"]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for trial, rec in zip(trials, records):
            rec = rec or {}
            metrics = rec.get("metrics") or {}
            row = [trial.id, rec.get("status", "")]
            row += [_cell(trial.params.get(k)) for k in grid_keys]
            row += [_cell(trial.seed), _cell(trial.fold)]
            row += [_cell(metrics.get(n)) for n in names]
            row += [_cell(rec.get("elapsed_s")), _cell(rec.get("host")), _cell(rec.get("error"))]
            writer.writerow(row)


def write_results(
    output: str | os.PathLike,
    sweep: dict[str, Any],
    summary: dict[str, Any],
    trials: Sequence[Trial],
    records: Sequence[dict[str, Any] | None],
    groups: Sequence[dict[str, Any]],
) -> dict[str, Path]:
    """Write ``results.csv``, ``trials.csv`` and ``results.json``; return their paths."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    grid_keys = list(sweep.get("grid") or {})
    paths = {
        "results_csv": out / "results.csv",
        "trials_csv": out / "trials.csv",
        "results_json": out / "results.json",
    }
    write_groups_csv(paths["results_csv"], groups, grid_keys)
    write_trials_csv(paths["trials_csv"], trials, records, grid_keys)
    write_json_atomic(
        paths["results_json"],
        {
            "sweep": sweep,
            "summary": summary,
            "groups": list(groups),
            "trials": [
                rec if rec is not None else {"id": t.id, "status": None, "config": t.config}
                for t, rec in zip(trials, records)
            ],
        },
    )
    return paths
