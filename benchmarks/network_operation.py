"""The cost of a Brian2 ``network_operation`` per call on gpuspike, against Brian2's runtime.

Script: 4000 LIF neurons driven by a per-neuron input ``I`` (the CUBA group without its
synapses), run for ``--steps`` steps of 0.1 ms, with and without an operation that is called
every step and touches one variable: it reads the mean of ``v`` (one 4000-float pull) and
sets the input ``I`` (one 4000-float push), a proportional controller as in closed-loop
stimulation. Each device runs the script twice (with the operation and without), in the
same process after a warm-up run; per call cost = (wall with - wall without) / calls.
The goal (issue 15): no more than a device-to-host round trip of what the operation
touches, which the line gives as ``round_trip_us`` (``sim.get`` + ``sim.set`` of ``v`` and
``I`` on the engine, measured in the same process).

One JSON line per device (``runtime`` = Brian2's NumPy runtime; ``gpuspike-ENGINE``) and a
ratio line (``per_call_vs_round_trip``; ``speedup_vs_runtime`` of the whole script with
the operation).

    python benchmarks/network_operation.py [--engine cpp] [--steps 2000]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import emit, log, make_parser, resolve_engine  # noqa: E402


def script(with_op: bool, steps: int) -> tuple[float, int]:
    """Build and run the network; (wall seconds of the run, operation calls)."""
    import numpy as np
    from brian2 import NeuronGroup, ms, mV, network_operation, run, start_scope

    start_scope()
    G = NeuronGroup(4000, """dv/dt = (I - v)/(20*ms) : volt
                             I : volt""", threshold="v > 15*mV", reset="v = 0*mV",
                    method="exact")
    G.v = np.linspace(0, 14, 4000) * mV
    calls = [0]
    if with_op:
        @network_operation
        def control():  # noqa: F841 - collected by Brian2's magic run()
            calls[0] += 1
            G.I = (20 - 0.5 * np.mean(G.v[:] / mV)) * mV
    t0 = time.perf_counter()
    run(steps * 0.1 * ms)
    return time.perf_counter() - t0, calls[0]


def measure(device: str, engine: str, steps: int) -> dict:
    from brian2 import prefs, set_device

    import gpuspike  # noqa: F401 - registers the device

    set_device(device)
    if device == "gpuspike":
        prefs.devices.gpuspike.engine = engine
    script(True, 20)  # warm-up: build, compile, caches
    with_s, calls = script(True, steps)
    without_s, _ = script(False, steps)
    out = {"device": device if device == "runtime" else f"gpuspike-{engine}",
           "steps": steps, "calls": calls, "wall_with_s": with_s, "wall_without_s": without_s,
           "per_call_us": (with_s - without_s) / max(1, calls) * 1e6}
    if device == "gpuspike":
        from brian2.devices.device import get_device

        sim = next(iter(get_device()._cache.values())).sim
        owner = next(g.name for g in sim.net.groups)
        t0 = time.perf_counter()
        for _ in range(200):
            for var in ("v", "I"):
                sim.set(owner, var, sim.get(owner, var))
        out["round_trip_us"] = (time.perf_counter() - t0) / 200 * 1e6
    return out


def main(argv: list[str] | None = None) -> None:
    p = make_parser(__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=2000)
    args = p.parse_args(argv)
    engine = resolve_engine(args.engine)
    steps = 200 if args.quick else args.steps
    runtime = measure("runtime", engine, steps)
    emit(bench="network_operation", **runtime)
    ours = measure("gpuspike", engine, steps)
    emit(bench="network_operation", engine=engine, **ours)
    emit(bench="network_operation_ratio", engine=engine,
         per_call_vs_round_trip=ours["per_call_us"] / ours["round_trip_us"],
         speedup_vs_runtime=runtime["wall_with_s"] / ours["wall_with_s"],
         note="per_call_vs_round_trip: the operation's cost per call over a pull+push of "
              "what it touches (goal <= 1 plus the Python of the operation itself)")
    log(f"network_operation: {ours['per_call_us']:.1f} us per call on {engine} "
        f"(round trip {ours['round_trip_us']:.1f} us), runtime {runtime['per_call_us']:.1f} us")


if __name__ == "__main__":
    main()
