"""Run a sweep's unfinished trials on Ray (or in-process) and write its results.

Each finished trial is stored at once (``OUTPUT/trials/<id>.json``), so a sweep killed at any
point resumes where it stopped: trials with an ``"ok"`` record are skipped, failed and
missing ones run (again). With ``executor="ray"`` every trial is a Ray task: a local Ray
unless the config gives a cluster ``address``; ``gpus_per_trial`` GPUs per task where the
cluster has GPUs, CPUs only where it has none. A Ray session already initialised by the
caller is used as it is and left running. ``executor="local"`` calls the trials one after
another in this process, without Ray (for debugging).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gpuspike.sweep.aggregate import aggregate_groups, best_group, write_results
from gpuspike.sweep.config import Resources, SweepConfig
from gpuspike.sweep.errors import SweepError
from gpuspike.sweep.execute import ERROR, OK, execute_trial
from gpuspike.sweep.store import is_done, read_record, write_json_atomic, write_record
from gpuspike.sweep.trials import Trial, expand_trials

#: the executors :func:`run_sweep` knows
EXECUTORS = ("ray", "local")

Log = Callable[[str], None]


@dataclass(frozen=True)
class SweepSummary:
    """What a sweep run did and where its results are.

    Parameters
    ----------
    name : str
        The sweep's name.
    output : pathlib.Path
        Result folder.
    executor : str
        ``"ray"`` or ``"local"``.
    n_trials : int
        Trials of the sweep.
    n_ok : int
        Trials with a finished record after this run.
    n_failed : int
        Trials whose last run failed.
    n_skipped : int
        Trials already finished before this run (not rerun).
    n_run : int
        Trials this run executed.
    metric : str
        The summary's metric.
    best : dict, optional
        The best group's params and ``metric`` statistics (``mean``, ``std``, ``n``).
    elapsed_s : float
        Wall time of this run.
    files : dict of str to str
        ``results_csv``, ``trials_csv``, ``results_json`` and (when drawn) ``plot``.
    """

    name: str
    output: Path
    executor: str
    n_trials: int
    n_ok: int
    n_failed: int
    n_skipped: int
    n_run: int
    metric: str
    best: dict[str, Any] | None
    elapsed_s: float
    files: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what the CLI prints as its last line)."""
        return {
            "name": self.name,
            "output": str(self.output),
            "executor": self.executor,
            "trials": self.n_trials,
            "ok": self.n_ok,
            "failed": self.n_failed,
            "skipped": self.n_skipped,
            "ran": self.n_run,
            "metric": self.metric,
            "best": self.best,
            "elapsed_s": round(self.elapsed_s, 3),
            "files": dict(self.files),
        }


def task_options(resources: Resources, cluster: Mapping[str, float]) -> dict[str, float]:
    """Ray task options of one trial on a cluster with ``cluster`` resources.

    GPUs are asked only where the cluster has some (``cluster["GPU"] > 0``); elsewhere the
    trial runs on ``cpus_per_trial`` CPUs alone.

    Raises
    ------
    SweepError
        A trial asks more GPUs than the whole cluster has.
    """
    gpus_here = float(cluster.get("GPU", 0.0))
    gpus = resources.gpus_per_trial if gpus_here > 0 else 0.0
    if gpus > gpus_here:
        raise SweepError(
            f"resources.gpus_per_trial = {resources.gpus_per_trial:g} but the Ray cluster has "
            f"{gpus_here:g} GPU(s); lower gpus_per_trial"
        )
    return {"num_cpus": resources.cpus_per_trial, "num_gpus": gpus}


def run_sweep(
    config: SweepConfig,
    executor: str = "ray",
    max_concurrent: int | None = None,
    plot: bool = True,
    log: Log | None = None,
) -> SweepSummary:
    """Run the unfinished trials of ``config`` and write its results.

    Parameters
    ----------
    config : SweepConfig
        The sweep.
    executor : {"ray", "local"}
        Ray tasks, or plain calls in this process.
    max_concurrent : int, optional
        Trials in flight at once (Ray); default ``config.max_concurrent`` (no limit if
        unset: Ray schedules by resources).
    plot : bool
        Draw ``plot.png`` (needs matplotlib; skipped with a message when it is missing).
    log : callable, optional
        Receives one progress line per event (default: none).

    Returns
    -------
    SweepSummary
        Counts, the best group and the written files.

    Raises
    ------
    SweepError
        Unknown executor, Ray missing or unreachable, infeasible resources.
    """
    if executor not in EXECUTORS:
        raise SweepError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    limit = config.max_concurrent if max_concurrent is None else max_concurrent
    if limit is not None and limit < 1:
        raise SweepError(f"max_concurrent must be >= 1, got {limit}")
    say: Log = log or (lambda _line: None)
    start = time.perf_counter()
    output = Path(config.output)
    trials = expand_trials(config)
    write_json_atomic(
        output / "sweep.json", {"sweep": config.to_dict(), "trial_ids": [t.id for t in trials]}
    )
    records: dict[str, dict[str, Any] | None] = {t.id: read_record(output, t) for t in trials}
    todo = [t for t in trials if not is_done(records[t.id])]
    n_skipped = len(trials) - len(todo)
    say(
        f"sweep {config.name}: {len(trials)} trials, {n_skipped} already done, "
        f"{len(todo)} to run ({executor})"
    )
    done_count = [0]

    def finished(trial: Trial, outcome: dict[str, Any]) -> None:
        records[trial.id] = write_record(output, trial, outcome)
        done_count[0] += 1
        say(_progress_line(trial, outcome, done_count[0], len(todo), config.metric))

    if todo:
        if executor == "local":
            for trial in todo:
                finished(trial, execute_trial(trial.id, trial.trial, trial.config))
        else:
            _run_ray(config, todo, limit, finished, say)

    ordered = [records[t.id] for t in trials]
    groups = aggregate_groups(trials, ordered)
    n_ok = sum(is_done(r) for r in ordered)
    n_failed = sum(r is not None and r.get("status") == ERROR for r in ordered)
    best = best_group(groups, config.metric, config.mode)
    summary = SweepSummary(
        name=config.name,
        output=output,
        executor=executor,
        n_trials=len(trials),
        n_ok=n_ok,
        n_failed=n_failed,
        n_skipped=n_skipped,
        n_run=len(todo),
        metric=config.metric,
        best=best,
        elapsed_s=time.perf_counter() - start,
        files={},
    )
    files = {
        k: str(v)
        for k, v in write_results(
            output, config.to_dict(), summary.to_dict(), trials, ordered, groups
        ).items()
    }
    if plot:
        files.update(_draw(config, groups, output, say))
    return replace(summary, files=files, elapsed_s=time.perf_counter() - start)


def _progress_line(
    trial: Trial, outcome: dict[str, Any], done: int, total: int, metric: str
) -> str:
    where = ", ".join(
        [f"{k}={v}" for k, v in trial.params.items()]
        + ([f"fold={trial.fold}"] if trial.fold is not None else [])
        + ([f"seed={trial.seed}"] if trial.seed is not None else [])
    )
    if outcome.get("status") == OK:
        value = (outcome.get("metrics") or {}).get(metric)
        what = f"{metric}={value:.4g}" if isinstance(value, (int, float)) else "ok"
    else:
        what = f"FAILED {outcome.get('error')}"
    return (
        f"[{done}/{total}] {trial.id} {where or '-'}: {what} ({outcome.get('elapsed_s', 0):.1f} s)"
    )


def _draw(config: SweepConfig, groups: list[dict[str, Any]], output: Path, say: Log) -> dict:
    metric = config.plot.metric or config.metric
    if not any(metric in g["metrics"] for g in groups):
        say(f"plot skipped: no finished trial reported {metric!r}")
        return {}
    from gpuspike.sweep.plot import plot_groups

    try:
        path = plot_groups(
            groups,
            output / "plot.png",
            metric=metric,
            x=config.plot.x,
            logx=config.plot.logx,
            title=config.name,
        )
    except ImportError as exc:  # matplotlib missing
        say(f"plot skipped: {exc}; `pip install matplotlib`")
        return {}
    return {"plot": str(path)}


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise SweepError(
            "executor 'ray' needs Ray: `pip install gpuspike[sweep]` (or `pip install "
            "'ray[default]'`); or run with executor 'local'"
        ) from exc
    return ray


def _run_ray(
    config: SweepConfig,
    todo: list[Trial],
    limit: int | None,
    finished: Callable[[Trial, dict[str, Any]], None],
    say: Log,
) -> None:
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        try:
            ray.init(
                address=config.address,
                include_dashboard=False,
                runtime_env=config.runtime_env,
                log_to_driver=True,
            )
        except Exception as exc:  # ConnectionError, ValueError, RuntimeError ...
            where = config.address or "local"
            raise SweepError(
                f"cannot start or reach Ray at {where!r}: {exc}; check 'address' (e.g. "
                "'auto' on a cluster node, 'ray://head:10001' from outside) or use executor "
                "'local'"
            ) from exc
        started = True
    try:
        cluster = ray.cluster_resources()
        options = task_options(config.resources, cluster)
        say(
            f"ray: {cluster.get('CPU', 0):g} CPU, {cluster.get('GPU', 0):g} GPU; per trial "
            f"{options['num_cpus']:g} CPU, {options['num_gpus']:g} GPU"
        )
        if options["num_cpus"] > cluster.get("CPU", 0):
            say(
                f"warning: a trial asks {options['num_cpus']:g} CPUs, the cluster has "
                f"{cluster.get('CPU', 0):g} now; trials wait until it grows"
            )
        remote = ray.remote(execute_trial).options(max_retries=1, **options)
        sys_path = [p for p in sys.path if p]
        queue = list(todo)
        cap = math.inf if limit is None else limit
        pending: dict[Any, Trial] = {}
        while queue or pending:
            while queue and len(pending) < cap:
                t = queue.pop(0)
                pending[remote.remote(t.id, t.trial, t.config, sys_path)] = t
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                trial = pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except Exception as exc:  # worker died, task cancelled, ...
                    outcome = {
                        "id": trial.id,
                        "status": ERROR,
                        "metrics": None,
                        "error": f"{type(exc).__name__}: {exc}",
                        "traceback": None,
                        "elapsed_s": 0.0,
                        "host": None,
                        "cuda_visible_devices": None,
                    }
                finished(trial, outcome)
    finally:
        if started:
            ray.shutdown()
