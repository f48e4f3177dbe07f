"""Run one trial function call and turn its outcome into a JSON-ready result record.

This is the body of each Ray task (and of the in-process executor): it never raises for a
failing trial; the exception and traceback go into the record instead.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from gpuspike.sweep.errors import SweepError

#: record status of a trial that returned its metrics
OK = "ok"
#: record status of a trial that raised (it is run again on resume)
ERROR = "error"


def resolve_trial(path: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Import ``"module:function"`` and return the function.

    Raises
    ------
    SweepError
        The module or the function does not exist, or is not callable.
    """
    module_name, _, func_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SweepError(
            f"trial {path!r}: cannot import module {module_name!r} ({exc}); install it or fix "
            "the 'trial' key of the sweep config"
        ) from exc
    func = getattr(module, func_name, None)
    if not callable(func):
        raise SweepError(
            f"trial {path!r}: module {module_name!r} has no function {func_name!r}; fix the "
            "'trial' key of the sweep config"
        )
    return func


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: NumPy scalars and arrays become numbers and lists.

    Raises
    ------
    TypeError
        For objects that have no JSON form.
    """

    def default(obj: Any) -> Any:
        if hasattr(obj, "tolist"):  # numpy / cupy arrays and scalars
            return obj.tolist()
        if hasattr(obj, "item"):
            return obj.item()
        if isinstance(obj, (set, frozenset, tuple)):
            return list(obj)
        raise TypeError(f"{type(obj).__name__} is not JSON serialisable")

    return json.loads(json.dumps(value, default=default))


def execute_trial(
    trial_id: str,
    trial: str,
    config: dict[str, Any],
    sys_path: Sequence[str] = (),
) -> dict[str, Any]:
    """Call the trial function on ``config`` and return its result record.

    Parameters
    ----------
    trial_id : str
        The trial's id (copied into the record).
    trial : str
        ``"module:function"`` to call with ``config``.
    config : dict
        The trial's flat config.
    sys_path : sequence of str, optional
        Import-path entries of the submitting process; those that exist here and are
        missing from ``sys.path`` are appended, so that a trial module importable by the
        driver is importable on a local Ray worker too.

    Returns
    -------
    dict
        ``{"id", "status", "metrics", "error", "traceback", "elapsed_s", "host",
        "cuda_visible_devices"}``; ``status`` is :data:`OK` or :data:`ERROR`.
    """
    for entry in sys_path:
        if entry and entry not in sys.path and os.path.isdir(entry):
            sys.path.append(entry)
    record: dict[str, Any] = {
        "id": trial_id,
        "status": ERROR,
        "metrics": None,
        "error": None,
        "traceback": None,
        "elapsed_s": 0.0,
        "host": socket.gethostname(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
    start = time.perf_counter()
    try:
        func = resolve_trial(trial)
        metrics = func(dict(config))
        if not isinstance(metrics, dict):
            raise SweepError(
                f"trial {trial!r} returned {type(metrics).__name__}; it must return a dict of "
                "metrics such as {'test_acc': 0.9}"
            )
        record["metrics"] = jsonable(metrics)
        record["status"] = OK
    except Exception as exc:  # noqa: BLE001 - every trial failure is recorded, not raised
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc()
    record["elapsed_s"] = time.perf_counter() - start
    return record
