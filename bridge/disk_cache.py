"""A per-user disk cache for results that are slow to derive and never change: the
compiled C++ of a network (the engine's) and SymPy derivations such as exact
propagators (the integrators'), so that a new process does not pay for them again.

The root is ``$GPUSPIKE_CACHE_DIR``, else ``$XDG_CACHE_HOME/gpuspike``, else
``~/.cache/gpuspike``; each user of it takes a sub-folder.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def cache_root() -> Path:
    """The cache's root folder (not created)."""
    root = os.environ.get("GPUSPIKE_CACHE_DIR")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "gpuspike"


def folder(name: str) -> Path | None:
    """``cache_root()/name``, created; None where it cannot be (read-only home)."""
    path = cache_root() / name
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return path


def memoise(namespace: str, key: str, compute: Callable[[], T]) -> T:
    """``compute()``, kept on disk under ``key`` (any text that fully determines the
    result, versions included). A missing, unreadable or damaged entry is recomputed; a
    cache that cannot be written is skipped."""
    where = folder(namespace)
    if where is None:
        return compute()
    path = where / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".pkl")
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh)  # noqa: S301 - our own files in the user's cache
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        pass
    value = compute()
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except (OSError, pickle.PicklingError, TypeError, AttributeError):
        try:
            os.unlink(tmp)
        except OSError:
            pass
    return value


__all__ = ["cache_root", "folder", "memoise"]
