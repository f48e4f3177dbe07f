"""gpuspike demo: the Vogels-Abbott CUBA network (Brian2's example), 1 s of activity.

Runs on the best engine here (CuPy on a usable GPU, else NumPy), prints set-up and run
times, the firing rate and a coarse text raster; ``--plot FILE.png`` saves a raster with
matplotlib when it is installed.

    python examples/demo.py [--engine auto|numpy|cupy] [--duration 1.0] [--neurons 4000]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from gpuspike.bridge import ir
from gpuspike.bridge.expressions import parse_expression
from gpuspike.bridge.model import neuron_group, synapses
from gpuspike.engine.runtime import Simulation

ms, mV = 1e-3, 1e-3


def cuba(n: int = 4000, dt: float = 0.1 * ms, seed: int = 1,
         precision: str = "float64", *, monitor: bool = True) -> ir.NetworkIR:
    """Vogels & Abbott (2005) CUBA: 80 % excitatory, 20 % inhibitory, p = 0.02.

    ``monitor``: record the spikes of ``P`` (monitor ``"spikes"``); ``False`` leaves the
    network without a monitor (what ``benchmarks/cuba.py`` times for the per-step overhead).
    """
    n_exc = int(0.8 * n)
    group = neuron_group("P", n, """
        dv/dt  = (ge + gi - (v - El))/taum : volt (unless refractory)
        dge/dt = -ge/taue : volt
        dgi/dt = -gi/taui : volt
        """, threshold="v > Vt", reset="v = Vr", refractory="5*ms",
        namespace={"taum": 20 * ms, "taue": 5 * ms, "taui": 10 * ms, "Vt": -50 * mV,
                   "Vr": -60 * mV, "El": -49 * mV},
        init={"v": "Vr + rand()*(Vt - Vr)"})
    exc = synapses("Ce", "P", "P", on_pre="ge_post += we",
                   connector=ir.ConditionConnect(parse_expression(f"i < {n_exc}"),
                                                 parse_expression("0.02")),
                   namespace={"we": (60 * 0.27 / 10) * mV}, dt=dt, post_variables=("ge",))
    inh = synapses("Ci", "P", "P", on_pre="gi_post += wi",
                   connector=ir.ConditionConnect(parse_expression(f"i >= {n_exc}"),
                                                 parse_expression("0.02")),
                   namespace={"wi": (-20 * 4.5 / 10) * mV}, dt=dt, post_variables=("gi",))
    return ir.NetworkIR(dt=dt, groups=(group,), synapses=(exc, inh),
                        monitors=(ir.SpikeMonitorIR("spikes", "P"),) if monitor else (),
                        seed=seed, precision=precision, name="cuba")


def text_raster(t: np.ndarray, i: np.ndarray, n: int, duration: float, rows: int = 16,
                cols: int = 72) -> str:
    grid = np.zeros((rows, cols), dtype=int)
    r = np.minimum(i * rows // n, rows - 1)
    c = np.minimum((t / duration * cols).astype(int), cols - 1)
    np.add.at(grid, (r, c), 1)
    shades = " .:-=+*#%@"
    top = max(1, grid.max())
    return "\n".join("".join(shades[min(9, v * 9 // top)] for v in row) for row in grid)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", default="auto", choices=("auto", "numpy", "cpp", "cupy"))
    ap.add_argument("--duration", type=float, default=1.0, help="simulated seconds")
    ap.add_argument("--neurons", type=int, default=4000)
    ap.add_argument("--precision", default="float64", choices=("float32", "float64"))
    ap.add_argument("--plot", help="save a raster plot here (needs matplotlib)")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    net = cuba(args.neurons, precision=args.precision)
    sim = Simulation(net, engine=args.engine)
    setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    sim.run(duration=args.duration)
    wall = time.perf_counter() - t1
    rec = sim.spikes("spikes")
    n_syn = sum(len(sim.connectivity(s.name)[0]) for s in net.synapses)
    rate = len(rec.i) / args.neurons / args.duration
    print(f"CUBA network: {args.neurons} neurons, {n_syn} synapses, {args.duration} s "
          f"simulated on {sim.backend.name} ({sim.backend.device})")
    print(text_raster(rec.t, rec.i, args.neurons, args.duration))
    summary = {"demo": "cuba", "engine": sim.backend.name, "neurons": args.neurons,
               "synapses": n_syn, "duration_s": args.duration, "spikes": len(rec.i),
               "rate_hz": round(rate, 3), "setup_s": round(setup, 3),
               "run_wall_s": round(wall, 3),
               "wall_per_sim_s": round(wall / args.duration, 3),
               "us_per_step": round(wall / sim.step * 1e6, 2)}
    print(json.dumps(summary))
    if args.plot:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("matplotlib is not installed: pip install matplotlib to plot")
        else:
            fig, ax = plt.subplots(figsize=(8, 4))
            ax.plot(rec.t, rec.i, ",k")
            ax.set_xlabel("time (s)")
            ax.set_ylabel("neuron")
            ax.set_title(f"CUBA, {rate:.1f} Hz, {sim.backend.name}")
            fig.savefig(args.plot, dpi=120)
            print(f"raster saved to {args.plot}")
    return summary


if __name__ == "__main__":
    main()
