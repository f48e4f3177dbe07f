"""Engine choice: auto, numpy, cupy and the errors around them."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from gpuspike.bridge.errors import EngineUnavailable
from gpuspike.engine import backend


def test_numpy_backend():
    b = backend.select_backend("numpy")
    assert b.name == "numpy" and b.xp is np and not b.is_gpu


def test_unknown_engine_is_a_clear_error():
    with pytest.raises(EngineUnavailable, match="unknown engine 'tpu'"):
        backend.select_backend("tpu")


def test_auto_follows_cuda_status():
    ok, _ = backend.cuda_status()
    assert backend.select_backend("auto").name == ("cupy" if ok else "numpy")


def test_cupy_without_gpu_says_why_and_what_to_do():
    ok, why = backend.cuda_status()
    if ok:
        pytest.skip("a GPU is usable here")
    with pytest.raises(EngineUnavailable) as err:
        backend.select_backend("cupy")
    msg = str(err.value)
    assert why in msg and "engine='numpy'" in msg and "cupy-cuda12x" in msg


def test_one_log_line_per_engine(caplog):
    backend._announced.clear()
    log = logging.getLogger("gpuspike")
    log.propagate = True
    try:
        with caplog.at_level(logging.INFO, logger="gpuspike"):
            backend.select_backend("numpy")
            backend.select_backend("numpy")
    finally:
        log.propagate = False
    lines = list({id(r): r for r in caplog.records if "engine" in r.getMessage()}.values())
    assert len(lines) == 1 and "numpy engine" in lines[0].getMessage()
