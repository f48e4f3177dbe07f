"""Test helper: run a network on an engine, and check its CUDA source compiles.

Every feature test goes through :func:`simulate`. Besides running the network, it prints
the CUDA source of the same plan and compiles it with ``nvcc -ptx`` (once per distinct
source, where nvcc exists), so code-generation errors show up without a GPU.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
import tempfile

from gpuspike.bridge import ir
from gpuspike.engine.codegen_cuda import cuda_source
from gpuspike.engine.runtime import Simulation

_compiled: dict[str, str] = {}


def compile_ptx(source: str) -> None:
    """Compile CUDA ``source`` with nvcc -ptx; raise AssertionError with the log."""
    key = hashlib.sha256(source.encode()).hexdigest()
    if key in _compiled:
        return
    with tempfile.TemporaryDirectory() as tmp:
        cu = os.path.join(tmp, "net.cu")
        with open(cu, "w") as fh:
            fh.write(source)
        proc = subprocess.run(
            ["nvcc", "-ptx", "-arch=sm_80", "-std=c++17", "-o", os.path.join(tmp, "net.ptx"),
             cu], capture_output=True, text=True)
    if proc.returncode != 0:
        numbered = "\n".join(f"{n + 1:4d} {line}" for n, line in
                             enumerate(source.splitlines()))
        raise AssertionError(f"nvcc failed:\n{proc.stderr}\n--- source ---\n{numbered}")
    _compiled[key] = "ok"


def simulate(net: ir.NetworkIR, engine: str, steps: int = 0, **kwargs) -> Simulation:
    """Build ``net`` on ``engine``, check its CUDA source compiles, run ``steps`` steps."""
    sim = Simulation(net, engine=engine, **kwargs)
    if shutil.which("nvcc") and sim.backend.name == "numpy":
        for precision in ("float64", "float32"):
            compile_ptx(cuda_source(dataclasses.replace(sim.plan, precision=precision)))
    if steps:
        sim.run(steps)
    return sim


def host(a):
    """A host (NumPy) copy of a NumPy or CuPy array."""
    import numpy as np

    return a.get() if hasattr(a, "get") else np.asarray(a)
