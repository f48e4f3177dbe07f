"""Save and restore training checkpoints atomically, keeping the last and the best.

A checkpoint is two files in one directory: ``ckpt-<epoch>-<token>.npz`` holds every array
(model state, optimiser buffers) and ``last.json`` (or ``best.json``) holds the rest: epoch,
history, extra counters, config, and the name and SHA-256 of the ``.npz`` it belongs to.
Every file is written to a temporary name in the same directory, flushed and fsynced, then
renamed over its target with ``os.replace`` (atomic on POSIX), and the ``.json`` is written
last: it is the commit point. A crash at any moment therefore leaves either the old or the
new checkpoint complete, and an ``.npz`` whose hash does not match its ``.json`` is never
loaded. The ``.npz`` is read back and its hash checked before the ``.json`` commits it, and
the previous ``last.json`` stays as ``prev.json`` (with its ``.npz``) until then, so a file
damaged on disk later still leaves an older checkpoint to resume from. Array files no
``.json`` refers to any more are deleted after each commit.

Resuming takes the newest checkpoint that verifies (``last``, ``prev``, ``best``), logs
each file it had to pass over with the reason, and raises :class:`CheckpointError` when
checkpoint files exist but none verifies: a damaged directory never restarts silently
from epoch 0.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import math
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gpuspike.bridge.errors import GpuspikeError

FORMAT = 1
_ARRAY = "__array__"
_log = logging.getLogger("gpuspike")
_TMP_PREFIX = ".tmp-"
_NPZ_PREFIX = "ckpt-"


class CheckpointError(GpuspikeError, RuntimeError):
    """A checkpoint cannot be used: it was made with another configuration, or is unusable."""


@dataclass
class Checkpoint:
    """One loaded checkpoint.

    ``model_state`` and the arrays inside ``optimiser_state`` are host numpy arrays;
    ``which`` is ``"last"`` or ``"best"``; ``value`` is the monitored metric of this epoch
    (``None`` when no monitor was given).
    """

    epoch: int
    model_state: dict[str, np.ndarray]
    optimiser_state: dict[str, Any]
    history: list[dict[str, Any]]
    extra: dict[str, Any]
    config: dict[str, Any] | None = None
    monitor: str | None = None
    value: float | None = None
    which: str = "last"
    path: Path | None = None
    schedule_state: dict[str, Any] = field(default_factory=dict)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def to_json_bytes(obj: Any) -> bytes:
    """Encode ``obj`` as JSON (numpy scalars and arrays become numbers and lists)."""
    return json.dumps(obj, default=_json_default, indent=1, sort_keys=False).encode()


def normalise(obj: Any) -> Any:
    """``obj`` after a JSON round trip (tuples become lists, numpy scalars numbers)."""
    return json.loads(to_json_bytes(obj))


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, replace.

    A failure at any point leaves the previous content of ``path`` untouched and removes
    the temporary file.
    """
    path = Path(path)
    tmp = path.with_name(f"{_TMP_PREFIX}{uuid.uuid4().hex}-{path.name}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)
    return path


def _host(a: Any) -> np.ndarray:
    if type(a).__module__.split(".")[0] == "cupy":
        return a.get()
    return np.asarray(a)


def _split(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Replace every array in a nested dict/list by ``{"__array__": key}`` into ``arrays``."""
    if isinstance(obj, Mapping):
        return {str(k): _split(v, arrays) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_split(v, arrays) for v in obj]
    if isinstance(obj, np.ndarray) or type(obj).__module__.split(".")[0] == "cupy":
        key = f"a{len(arrays)}"
        arrays[key] = _host(obj)
        return {_ARRAY: key}
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _join(obj: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    """Inverse of :func:`_split`."""
    if isinstance(obj, dict):
        if set(obj) == {_ARRAY}:
            return arrays[obj[_ARRAY]]
        return {k: _join(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join(v, arrays) for v in obj]
    return obj


def _better(value: float | None, best: float | None, mode: str) -> bool:
    if value is None or not math.isfinite(value):
        return False
    if best is None or not math.isfinite(best):
        return True
    return value > best if mode == "max" else value < best


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("format") == FORMAT else None


def _collect_garbage(directory: Path) -> None:
    """Delete array files no ``.json`` refers to, and leftover temporary files."""
    keep = set()
    for name in ("last.json", "prev.json", "best.json"):
        path = directory / name
        if path.exists():
            doc = _read_json(path)
            if doc is None:
                return  # cannot tell what it needs: delete nothing
            keep.add(doc["npz"])
    for p in directory.iterdir():
        stale_npz = p.name.startswith(_NPZ_PREFIX) and p.suffix == ".npz" and p.name not in keep
        if stale_npz or p.name.startswith(_TMP_PREFIX):
            with contextlib.suppress(OSError):
                p.unlink()


def save_checkpoint(
    directory: str | os.PathLike,
    epoch: int,
    model_state: Mapping[str, np.ndarray],
    optimiser_state: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]],
    extra: Mapping[str, Any],
    *,
    config: Mapping[str, Any] | None = None,
    schedule_state: Mapping[str, Any] | None = None,
    monitor: str | None = None,
    mode: str = "max",
) -> Path:
    """Write the checkpoint of ``epoch`` as ``last`` and, if it is the best so far, ``best``.

    The checkpoint is the best when ``history[-1][monitor]`` is finite and beats (``>`` for
    ``mode="max"``, ``<`` for ``"min"``) the value stored in ``best.json``, or no valid
    ``best.json`` exists yet, or ``best.json`` is of a later epoch (a run restarted from an
    earlier checkpoint).

    Parameters
    ----------
    directory : path
        Folder of the checkpoints (created if missing).
    epoch : int
        Epoch just completed (0-based).
    model_state : mapping of str to numpy.ndarray
        ``model.state_dict()``.
    optimiser_state : mapping
        ``optimiser.state_dict()``: nested dicts of numbers, strings and arrays.
    history : sequence of dict
        Per-epoch records so far.
    extra : mapping
        Counters the loop needs to resume (JSON-serialisable or arrays).
    config : mapping, optional
        The run's configuration, checked by :func:`load_checkpoint` on resume.
    schedule_state : mapping, optional
        ``schedule.state_dict()`` of a stateful learning-rate schedule.
    monitor : str, optional
        History key that decides the best checkpoint.
    mode : {"max", "min"}, optional
        Whether a larger or a smaller ``monitor`` value is better.

    Returns
    -------
    pathlib.Path
        Path of ``last.json``.
    """
    if mode not in ("max", "min"):
        raise CheckpointError(f"mode must be 'max' or 'min', got {mode!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    body = {
        "model_state": _split(dict(model_state), arrays),
        "optimiser_state": _split(dict(optimiser_state), arrays),
        "schedule_state": _split(dict(schedule_state or {}), arrays),
    }
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = buf.getvalue()
    npz_name = f"{_NPZ_PREFIX}{int(epoch):06d}-{uuid.uuid4().hex[:12]}.npz"
    atomic_write_bytes(directory / npz_name, data)
    digest = hashlib.sha256(data).hexdigest()
    if hashlib.sha256((directory / npz_name).read_bytes()).hexdigest() != digest:
        raise CheckpointError(f"{directory / npz_name} does not read back as written (disk "
                              "or file system fault); the previous checkpoint is kept")

    value = None
    if monitor is not None and history:
        raw = history[-1].get(monitor)
        value = None if raw is None else float(raw)
    doc = {
        "format": FORMAT,
        "epoch": int(epoch),
        "npz": npz_name,
        "sha256": digest,
        "monitor": monitor,
        "mode": mode,
        "value": value,
        "history": [dict(r) for r in history],
        "extra": dict(extra),
        "config": None if config is None else dict(config),
        **body,
    }
    previous = _read_json(directory / "last.json")
    if previous is not None:  # kept until the new one is committed (verified on loading)
        atomic_write_bytes(directory / "prev.json", to_json_bytes({**previous, "which": "prev"}))
    last = atomic_write_bytes(directory / "last.json", to_json_bytes({**doc, "which": "last"}))
    best_doc = _read_json(directory / "best.json")
    if monitor is not None and (
        best_doc is None or _better(value, best_doc.get("value"), mode) or best_doc["epoch"] > epoch
    ):
        atomic_write_bytes(directory / "best.json", to_json_bytes({**doc, "which": "best"}))
    _collect_garbage(directory)
    return last


def _load(path: Path) -> tuple[Checkpoint | None, str | None]:
    """(the checkpoint of ``path``, None) or (None, why it cannot be used)."""
    if not path.exists():
        return None, "missing"
    doc = _read_json(path)
    if doc is None:
        return None, "not a readable checkpoint (damaged or truncated JSON)"
    npz = path.parent / str(doc.get("npz"))
    try:
        data = npz.read_bytes()
    except OSError as exc:
        return None, f"its array file {npz.name} cannot be read ({exc.strerror or exc})"
    if hashlib.sha256(data).hexdigest() != doc.get("sha256"):
        return None, f"its array file {npz.name} fails its SHA-256 check (damaged)"
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        return None, f"its array file {npz.name} is not a readable archive ({exc})"
    return Checkpoint(
        epoch=int(doc["epoch"]),
        model_state=_join(doc["model_state"], arrays),
        optimiser_state=_join(doc["optimiser_state"], arrays),
        history=doc["history"],
        extra=doc["extra"],
        config=doc.get("config"),
        monitor=doc.get("monitor"),
        value=doc.get("value"),
        which=doc.get("which", path.stem),
        path=path,
        schedule_state=_join(doc.get("schedule_state", {}), arrays),
    ), None


_MISSING = object()


def _lookup(cfg: Mapping[str, Any] | None, key: str) -> Any:
    """``cfg[key]``, descending into nested dicts for dotted keys (``"net.n_hidden"``)."""
    node: Any = cfg if cfg is not None else {}
    if key in node:
        return node[key]
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def check_config(
    saved: Mapping[str, Any] | None,
    current: Mapping[str, Any] | None,
    keys: Sequence[str] | None = None,
    *,
    where: str = "the checkpoint",
) -> None:
    """Refuse to resume when ``saved`` and ``current`` differ in ``keys``.

    Values are compared after a JSON round trip (so ``(1, 2) == [1, 2]``); dotted keys
    reach into nested dicts. ``keys=None`` compares every top-level key of either config.

    Raises
    ------
    CheckpointError
        Naming each differing key with its saved and current value.
    """
    saved_n = normalise(dict(saved or {}))
    current_n = normalise(dict(current or {}))
    if keys is None:
        keys = sorted(set(saved_n) | set(current_n))
    diffs = []
    for k in keys:
        a, b = _lookup(saved_n, k), _lookup(current_n, k)
        if a != b:
            show = [("<missing>" if v is _MISSING else repr(v)) for v in (a, b)]
            diffs.append(f"{k}: saved {show[0]}, now {show[1]}")
    if diffs:
        raise CheckpointError(
            f"cannot resume from {where}: it was made with another configuration ("
            + "; ".join(diffs)
            + "). Resume with the saved settings, or start afresh (resume=False) in a new "
            "checkpoint directory"
        )


def load_checkpoint(
    directory: str | os.PathLike,
    *,
    which: str = "last",
    config: Mapping[str, Any] | None = None,
    config_keys: Sequence[str] | None = None,
) -> Checkpoint | None:
    """Load the newest complete checkpoint of ``directory``, or ``None`` if there is none.

    ``which="last"`` takes the newest of ``last.json``, ``prev.json`` and ``best.json``
    that verifies (its ``.npz`` present, hashing to the recorded SHA-256, readable), logging
    each file passed over with the reason; ``which="best"`` reads only ``best.json``. With
    ``config`` given, :func:`check_config` compares it with the saved config on
    ``config_keys`` (all keys when ``None``).

    Raises
    ------
    CheckpointError
        When the saved config differs from ``config``, or (``which="last"``) checkpoint
        files exist but none verifies.
    """
    if which not in ("last", "best"):
        raise CheckpointError(f"which must be 'last' or 'best', got {which!r}")
    directory = Path(directory)
    if not directory.is_dir():
        return None
    names = ["last.json", "prev.json", "best.json"] if which == "last" else ["best.json"]
    found, failed = [], []
    for name in names:
        ckpt, why = _load(directory / name)
        if ckpt is not None:
            found.append(ckpt)
        elif why != "missing":
            failed.append(f"{directory / name}: {why}")
    if not found:
        if failed and which == "last":
            raise CheckpointError(
                "no checkpoint in " + str(directory) + " verifies (" + "; ".join(failed)
                + "). Restore the files, or start afresh (resume=False) in a new checkpoint "
                "directory")
        for line in failed:
            _log.warning("checkpoint passed over: %s", line)
        return None
    ckpt = max(found, key=lambda c: c.epoch)  # the newest that verifies
    for line in failed:
        _log.warning("checkpoint passed over: %s; resuming from %s (epoch %d)", line,
                     ckpt.path, ckpt.epoch)
    if config is not None:
        check_config(ckpt.config, config, config_keys, where=str(ckpt.path))
    return ckpt


def has_checkpoint(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` holds a ``last.json`` or ``best.json`` (complete or not)."""
    directory = Path(directory)
    return (directory / "last.json").exists() or (directory / "best.json").exists()
