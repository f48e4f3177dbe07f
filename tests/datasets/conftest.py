"""Fixtures of the dataset tests: the FSDD recordings folder, when this machine has it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_CANDIDATES = [
    os.environ.get("GPUSPIKE_FSDD"),
    str(Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "fsdd" / "recordings"),
    "/work/shared/data/fsdd/recordings",
]


@pytest.fixture(scope="session")
def fsdd_dir() -> Path:
    """FSDD's recordings folder (``$GPUSPIKE_FSDD`` or ``../shared/data/fsdd``); skip if absent."""
    for c in _CANDIDATES:
        if c and Path(c).is_dir() and any(Path(c).glob("*.wav")):
            return Path(c).resolve()
    pytest.skip("FSDD recordings not found; set GPUSPIKE_FSDD to run these tests")
