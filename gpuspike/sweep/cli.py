"""The ``gpuspike sweep CONFIG`` subcommand: run a sweep, print progress and a JSON summary."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path


def add_sweep_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``gpuspike sweep CONFIG``."""
    p.add_argument("config", metavar="CONFIG", help="sweep config (.toml or .json)")
    p.add_argument(
        "--address",
        default=None,
        help="Ray cluster address ('auto', 'ray://head:10001'); default: the config's, else "
        "a local Ray",
    )
    p.add_argument("--output", default=None, help="result folder (default: the config's)")
    p.add_argument(
        "--executor",
        default="ray",
        choices=("ray", "local"),
        help="'ray' tasks (default) or 'local': one after another in this process, no Ray",
    )
    p.add_argument(
        "--max-concurrent",
        type=int,
        default=None,
        metavar="N",
        help="trials in flight at once (default: the config's, else as resources allow)",
    )
    p.add_argument("--no-plot", action="store_true", help="do not draw plot.png")
    p.add_argument(
        "--dry-run", action="store_true", help="list the trials and which are done; run none"
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def run_sweep(args: argparse.Namespace) -> int:
    """Run the sweep; progress on stderr, the summary as the last stdout line.

    Returns 0 when every trial has finished, 1 when some failed (their records hold the
    errors; rerun the command to retry them), 2 for a config or setup error.
    """
    from gpuspike.sweep import runner
    from gpuspike.sweep.config import load_sweep_config
    from gpuspike.sweep.errors import SweepError

    def log(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    try:
        config = load_sweep_config(args.config)
        if args.address is not None:
            config = replace(config, address=args.address or None)
        if args.output is not None:
            config = replace(config, output=Path(args.output).expanduser())
        if args.dry_run:
            print(json.dumps(_dry_run(config)))
            return 0
        summary = runner.run_sweep(
            config,
            executor=args.executor,
            max_concurrent=args.max_concurrent,
            plot=not args.no_plot,
            log=log,
        )
    except SweepError as exc:
        print(f"gpuspike sweep: {exc}", file=sys.stderr)
        print(json.dumps({"error": str(exc)}))
        return 2
    print(json.dumps(summary.to_dict()))
    return 0 if summary.n_failed == 0 and summary.n_ok == summary.n_trials else 1


def _dry_run(config) -> dict:  # noqa: ANN001 - SweepConfig, imported lazily
    from gpuspike.sweep.store import is_done, read_record
    from gpuspike.sweep.trials import expand_trials

    trials = expand_trials(config)
    listed = [
        {
            "id": t.id,
            "done": is_done(read_record(config.output, t)),
            "params": t.params,
            "seed": t.seed,
            "fold": t.fold,
        }
        for t in trials
    ]
    return {
        "name": config.name,
        "output": str(config.output),
        "trials": len(trials),
        "done": sum(t["done"] for t in listed),
        "list": listed,
    }
