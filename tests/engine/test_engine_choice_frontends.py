"""Every frontend takes the engine (and the C++ engine's threads) with no other change to
a script: Brian2's preferences, PyNN's ``setup``, the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from gpuspike.engine import cpp_build

pytestmark = pytest.mark.skipif(cpp_build.find_compiler() is None,
                                reason="no working C++ compiler")


def test_pynn_setup_engine_and_threads():
    import pyNN.gpuspike as sim

    sim.setup(timestep=0.1, engine="cpp", threads=1)
    p = sim.Population(3, sim.IF_curr_exp(i_offset=1.0))
    p.record("spikes")
    sim.run(50.0)
    eng = sim.simulator.state.engine
    assert eng.backend.name == "cpp" and eng.program.threads == 1
    assert sum(len(st) for st in p.get_data().segments[0].spiketrains) > 0
    sim.end()


def test_brian2_preferences_engine_and_threads():
    code = """
import json
from brian2 import *
import gpuspike
set_device('gpuspike')
prefs.devices.gpuspike.engine = 'cpp'
prefs.devices.gpuspike.threads = 1
G = NeuronGroup(5, 'dv/dt = (2 - v)/(10*ms) : 1', threshold='v > 1', reset='v = 0')
M = SpikeMonitor(G)
run(20*ms)
dev = get_device()
sim = list(dev._cache.values())[0].sim
print(json.dumps({"engine": dev.last_run["engine"], "threads": sim.program.threads,
                  "spikes": int(M.num_spikes)}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip().splitlines()[-1]
    r = json.loads(out)
    assert r == {"engine": "cpp", "threads": 1, "spikes": r["spikes"]} and r["spikes"] > 0


def test_cli_info_names_the_cpp_engine():
    out = subprocess.run([sys.executable, "-m", "gpuspike.cli", "info", "--engine", "cpp"],
                         capture_output=True, text=True, check=True).stdout
    info = json.loads(out.strip().splitlines()[-1])
    assert info["engine"] == "cpp" and "threads" in info["device"]
