"""Keep trial results as one JSON file each, ``OUTPUT/trials/<id>.json``, written atomically.

A file appears only once its trial has finished (it is written to a temporary name and
renamed), so a sweep killed at any moment leaves only whole records; a record with status
``"ok"`` marks its trial done, any other record (a failure) is overwritten by the rerun.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from gpuspike.sweep.execute import OK
from gpuspike.sweep.trials import Trial

#: subfolder of the output folder holding one record per trial
TRIALS_DIR = "trials"


def record_path(output: str | os.PathLike, trial_id: str) -> Path:
    """Where the record of ``trial_id`` lives."""
    return Path(output) / TRIALS_DIR / f"{trial_id}.json"


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` via a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_record(output: str | os.PathLike, trial: Trial, outcome: dict[str, Any]) -> dict:
    """Store a finished trial: its identity (config, params, seed, fold) plus ``outcome``.

    Parameters
    ----------
    output : str or path-like
        The sweep's output folder.
    trial : Trial
        The trial that ran.
    outcome : dict
        What :func:`gpuspike.sweep.execute.execute_trial` returned.

    Returns
    -------
    dict
        The record as written.
    """
    record = {
        **outcome,
        "id": trial.id,
        "trial": trial.trial,
        "config": trial.config,
        "params": trial.params,
        "seed": trial.seed,
        "fold": trial.fold,
    }
    write_json_atomic(record_path(output, trial.id), record)
    return record


def read_record(output: str | os.PathLike, trial: Trial) -> dict[str, Any] | None:
    """The stored record of ``trial``, or ``None`` when absent, unreadable or not its own."""
    path = record_path(output, trial.id)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("config") != trial.config:
        return None
    return record


def is_done(record: dict[str, Any] | None) -> bool:
    """Whether a stored record marks its trial finished (a failure does not)."""
    return record is not None and record.get("status") == OK
