"""Vogels-Abbott benchmark (Vogels & Abbott 2005; Brette et al. 2007) on pyNN.gpuspike.

A sparsely connected network of 80 % excitatory and 20 % inhibitory integrate-and-fire
neurons with exponential synapses, current-based (CUBA) or conductance-based (COBA),
started by random initial potentials and a short Poisson kick. Written for PyNN's API:
change the import to run the same script on another backend.

    python examples/pynn/va_benchmark.py --model COBA --duration 200
    python examples/pynn/va_benchmark.py --model CUBA --n 4000 --duration 1000
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pyNN.gpuspike as sim


def psp_weight(psp_mV: float, cm: float, tau_m: float, tau_syn: float) -> float:
    """Current (nA) of an exponential synapse whose PSP peaks at ``psp_mV`` (mV)."""
    tau = tau_m * tau_syn / (tau_m - tau_syn)
    t_peak = tau * math.log(tau_m / tau_syn)
    shape = tau * (math.exp(-t_peak / tau_m) - math.exp(-t_peak / tau_syn))  # ms
    return psp_mV * cm / shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("CUBA", "COBA"), default="COBA")
    parser.add_argument("--n", type=int, default=4000, help="number of neurons")
    parser.add_argument("--duration", type=float, default=200.0, help="simulated ms")
    parser.add_argument("--dt", type=float, default=0.1)
    parser.add_argument("--p", type=float, default=0.02, help="connection probability")
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--engine", default="auto", help="auto, numpy or cupy")
    args = parser.parse_args()

    t0 = time.perf_counter()
    sim.setup(timestep=args.dt, min_delay=args.dt, engine=args.engine, seed=args.seed)
    rng = sim.NumpyRNG(seed=args.seed)
    cell = dict(cm=0.2, tau_m=20.0, v_thresh=-50.0, v_reset=-60.0, tau_refrac=5.0,
                tau_syn_E=5.0, tau_syn_I=10.0)
    if args.model == "COBA":
        celltype = sim.IF_cond_exp(v_rest=-60.0, e_rev_E=0.0, e_rev_I=-80.0, **cell)
        w_exc, w_inh = 4e-3, 51e-3  # uS
    else:
        celltype = sim.IF_curr_exp(v_rest=-49.0, **cell)
        w_exc = psp_weight(0.27, 0.2, 20.0, 5.0)  # nA
        w_inh = -psp_weight(4.5, 0.2, 20.0, 10.0)
    # scale the weights so that a smaller network keeps the same input per neuron
    scale = 4000 / args.n
    n_exc = int(0.8 * args.n)
    exc = sim.Population(n_exc, celltype, label="exc")
    inh = sim.Population(args.n - n_exc, celltype, label="inh")
    for pop in (exc, inh):
        pop.initialize(v=sim.RandomDistribution("normal", (-55.0, 5.0), rng=rng))
    kick = sim.Population(20, sim.SpikeSourcePoisson(rate=50.0, duration=50.0), label="kick")
    conn = sim.FixedProbabilityConnector(args.p, allow_self_connections=False, rng=rng)
    for pre, w, receptor in ((exc, w_exc, "excitatory"), (inh, w_inh, "inhibitory")):
        for post in (exc, inh):
            sim.Projection(pre, post, conn, sim.StaticSynapse(weight=w * scale, delay=args.dt),
                           receptor_type=receptor)
    for post in (exc, inh):
        sim.Projection(kick, post, sim.FixedProbabilityConnector(0.01, rng=rng),
                       sim.StaticSynapse(weight=w_exc * 10, delay=args.dt),
                       receptor_type="excitatory")
    exc.record("spikes")
    inh.record("spikes")
    build = time.perf_counter() - t0

    t1 = time.perf_counter()
    sim.run(args.duration)
    wall = time.perf_counter() - t1
    rates = []
    for pop in (exc, inh):
        trains = pop.get_data().segments[0].spiketrains
        rates.append(sum(len(s) for s in trains) / pop.size / (args.duration / 1000.0))
    sim.end()
    print(f"{args.model}: {args.n} neurons, {args.duration:g} ms; build {build:.1f} s, "
          f"run {wall:.1f} s; rates exc {rates[0]:.1f} Hz, inh {rates[1]:.1f} Hz")
    print(f"engine: {sim.simulator.state.engine.backend.name}; "
          f"mean rate {np.mean(rates):.1f} Hz")


if __name__ == "__main__":
    main()
