"""The Potjans & Diesmann (2014) cortical microcircuit through PyNN on gpuspike.

Eight populations (layers 2/3, 4, 5 and 6, excitatory and inhibitory) of current-based
LIF neurons, 77,169 neurons and about 3e8 synapses at full scale, with the published
parameters (Potjans TC, Diesmann M (2014) Cerebral Cortex 24:785-806, tables 4 and 5):
connection probabilities ``C`` turned into a total number of synapses per projection
``K = log(1 - C)/log(1 - 1/(N_pre N_post))`` drawn with replacement
(``FixedTotalNumberConnector``), PSC amplitude 87.8 pA with a relative SD of 0.1 (twice that
from L4E to L2/3E), g = -4, delays 1.5 ms (excitatory) and 0.75 ms (inhibitory) with a
relative SD of 0.5, external input of ``K_ext`` synapses at 8 Hz as Poisson trains
(``--poisson``, the default) or as the equal mean current (``--dc``).

Scaling (``--scale s``, ``--k-scale k``, default ``k = s``): population sizes times ``s``,
in-degrees times ``k``; weights are divided by ``sqrt(k)`` so that the variance of each
neuron's input is kept, and the mean input this loses is given back as a DC current
computed from the full model's rates (the usual compensation, as in NEST's example).

    python examples/pynn/microcircuit.py --scale 0.1 --t-sim 1000 --record
    python examples/pynn/microcircuit.py --scale 0.1 --simulator nest   # the same on NEST

Prints one JSON line: construction and simulation times, the real-time factor and, with
``--record``, the per-population firing rates after the presimulation.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
import time

import numpy as np

POPULATIONS = ("L23E", "L23I", "L4E", "L4I", "L5E", "L5I", "L6E", "L6I")
N_FULL = np.array([20683, 5834, 21915, 5479, 4850, 1065, 14395, 2948])
#: connection probability, rows: target, columns: source (same order as POPULATIONS)
CONN_PROB = np.array([
    [0.1009, 0.1689, 0.0437, 0.0818, 0.0323, 0.0, 0.0076, 0.0],
    [0.1346, 0.1371, 0.0316, 0.0515, 0.0755, 0.0, 0.0042, 0.0],
    [0.0077, 0.0059, 0.0497, 0.1350, 0.0067, 0.0003, 0.0453, 0.0],
    [0.0691, 0.0029, 0.0794, 0.1597, 0.0033, 0.0, 0.1057, 0.0],
    [0.1004, 0.0622, 0.0505, 0.0057, 0.0831, 0.3726, 0.0204, 0.0],
    [0.0548, 0.0269, 0.0257, 0.0022, 0.0600, 0.3158, 0.0086, 0.0],
    [0.0156, 0.0066, 0.0211, 0.0166, 0.0572, 0.0197, 0.0396, 0.2252],
    [0.0364, 0.0010, 0.0034, 0.0005, 0.0277, 0.0080, 0.0658, 0.1443]])
K_EXT = np.array([1600, 1500, 2100, 1900, 2000, 1900, 2900, 2100])
#: rates of the full-scale model (Hz), used only for the DC compensation of k < 1
FULL_MEAN_RATES = np.array([0.971, 2.868, 4.746, 5.396, 8.142, 9.078, 0.991, 7.523])
#: the rates the published model shows (Hz), for the check in the output
PUBLISHED_RANGE = {"L23E": (0.2, 1.5), "L23I": (1.5, 4.5), "L4E": (2.5, 7.0),
                   "L4I": (3.0, 8.0), "L5E": (4.5, 11.0), "L5I": (5.0, 13.0),
                   "L6E": (0.3, 2.0), "L6I": (4.0, 11.0)}

PSC_MEAN = 87.8      # pA
PSC_REL_SD = 0.1
G = -4.0
BG_RATE = 8.0        # Hz
DELAY = (1.5, 0.75)  # ms, excitatory and inhibitory sources
DELAY_REL_SD = 0.5
POISSON_DELAY = 1.5  # ms
CELL = dict(cm=0.25, tau_m=10.0, tau_syn_E=0.5, tau_syn_I=0.5, tau_refrac=2.0,
            v_thresh=-50.0, v_reset=-65.0, v_rest=-65.0)
V0 = (-58.0, 10.0)   # initial membrane potential, mean and SD (mV)


def full_synapse_numbers() -> np.ndarray:
    """Total synapses per projection of the full model (targets x sources)."""
    prod = np.outer(N_FULL, N_FULL).astype(float)
    return np.round(np.log(1.0 - CONN_PROB) / np.log(1.0 - 1.0 / prod))


def psc_matrix() -> np.ndarray:
    """Mean PSC amplitudes (pA), targets x sources."""
    w = np.tile([PSC_MEAN, G * PSC_MEAN], (8, 4))
    w[0, 2] = 2 * PSC_MEAN  # L4E -> L2/3E
    return w


def network_parameters(scale: float, k_scale: float, drive: str) -> dict:
    """Sizes, synapse numbers, weights (pA) and DC currents (pA) at the given scaling."""
    n = np.maximum(np.round(N_FULL * scale).astype(int), 1)
    indegree_full = full_synapse_numbers() / N_FULL[:, None]
    synapses = np.round(indegree_full * k_scale * n[:, None]).astype(np.int64)
    w_full = psc_matrix()
    w = w_full / math.sqrt(k_scale)
    tau_syn = CELL["tau_syn_E"]
    # mean input lost by k < 1 (pA), from the full model's in-degrees and rates
    lost = 1e-3 * tau_syn * (1.0 - math.sqrt(k_scale)) * (
        w_full * indegree_full * FULL_MEAN_RATES[None, :]).sum(axis=1)
    ext_mean = 1e-3 * tau_syn * PSC_MEAN * K_EXT * BG_RATE  # mean external current (pA)
    if drive == "dc":
        dc = lost + ext_mean
    else:
        dc = lost + (1.0 - math.sqrt(k_scale)) * ext_mean
    return {"n": n, "synapses": synapses, "w": w, "dc": dc,
            "poisson_rate": BG_RATE * K_EXT * k_scale,
            "w_ext": PSC_MEAN / math.sqrt(k_scale)}


def _projection(sim, pre, post, n_syn: int, w: float, delay: float, rng):
    """``n_syn`` synapses drawn with replacement, normal weights (redrawn until they keep
    their sign) and delays (redrawn below dt), in PyNN units."""
    rtype = "excitatory" if w > 0 else "inhibitory"
    dt = sim.get_time_step()
    sd_w, sd_d = abs(w) * PSC_REL_SD, delay * DELAY_REL_SD
    if sim.__name__ == "pyNN.nest":
        connector = _nest_fixed_total_number(sim, n_syn, w, sd_w, delay, sd_d, dt)
        return sim.Projection(pre, post, connector, sim.StaticSynapse(), receptor_type=rtype)
    low, high = (0.0, np.inf) if w > 0 else (-np.inf, 0.0)
    weight = sim.RandomDistribution("normal_clipped", mu=w * 1e-3, sigma=sd_w * 1e-3,
                                    low=low * 1e-3, high=high * 1e-3, rng=rng)
    delays = sim.RandomDistribution("normal_clipped", mu=delay, sigma=sd_d, low=dt,
                                    high=np.inf, rng=rng)
    connector = sim.FixedTotalNumberConnector(int(n_syn), with_replacement=True, rng=rng)
    return sim.Projection(pre, post, connector, sim.StaticSynapse(weight=weight, delay=delays),
                          receptor_type=rtype)


def _nest_fixed_total_number(sim, n_syn, w, sd_w, delay, sd_d, dt):
    """NEST's own ``fixed_total_number`` rule (PyNN's generic connector draws connection
    by connection in Python); weights in pA as NEST's iaf_psc_exp takes them."""
    import nest

    class NativeFixedTotalNumber(sim.FixedTotalNumberConnector):
        def connect(self, projection):
            low, high = (0.0, np.inf) if w > 0 else (-np.inf, 0.0)
            syn = {"synapse_model": projection.nest_synapse_model,
                   "weight": nest.math.redraw(nest.random.normal(mean=w, std=sd_w),
                                              min=low, max=high),
                   "delay": nest.math.redraw(nest.random.normal(mean=delay, std=sd_d),
                                             min=dt, max=np.inf)}
            projection._connect({"rule": "fixed_total_number", "N": int(n_syn),
                                 "allow_autapses": True, "allow_multapses": True}, syn)

    return NativeFixedTotalNumber(int(n_syn))


def build(sim, scale: float, k_scale: float | None = None, drive: str = "poisson",
          seed: int = 1, record: bool = False, dt: float = 0.1, **setup) -> dict:
    """Set up ``sim`` and build the network; returns the populations and the build time."""
    k_scale = scale if k_scale is None else k_scale
    par = network_parameters(scale, k_scale, drive)
    t0 = time.perf_counter()
    sim.setup(timestep=dt, min_delay=dt, max_delay=20.0, rng_seed=seed, **setup)
    rng = sim.NumpyRNG(seed=seed)
    pops = {}
    for k, name in enumerate(POPULATIONS):
        cell = sim.IF_curr_exp(**CELL, i_offset=float(par["dc"][k]) * 1e-3)
        p = sim.Population(int(par["n"][k]), cell, label=name)
        p.initialize(v=sim.RandomDistribution("normal", mu=V0[0], sigma=V0[1], rng=rng))
        if record:
            p.record("spikes")
        pops[name] = p
    for t, target in enumerate(POPULATIONS):
        for s, source in enumerate(POPULATIONS):
            n_syn = int(par["synapses"][t, s])
            if n_syn:
                _projection(sim, pops[source], pops[target], n_syn, float(par["w"][t, s]),
                            DELAY[s % 2], rng)
    if drive == "poisson":
        for k, name in enumerate(POPULATIONS):
            src = sim.Population(int(par["n"][k]),
                                 sim.SpikeSourcePoisson(rate=float(par["poisson_rate"][k])),
                                 label=f"{name}_bg")
            sim.Projection(src, pops[name], sim.OneToOneConnector(),
                           sim.StaticSynapse(weight=par["w_ext"] * 1e-3, delay=POISSON_DELAY),
                           receptor_type="excitatory")
    return {"populations": pops, "build_s": time.perf_counter() - t0,
            "neurons": int(par["n"].sum()), "synapses": int(par["synapses"].sum())}


def rates(pops: dict, t_start: float, t_stop: float) -> dict[str, float]:
    """Mean firing rate (Hz) of each population over [t_start, t_stop) ms."""
    out = {}
    for name, p in pops.items():
        trains = p.get_data("spikes", clear=True).segments[0].spiketrains
        n = sum(int(np.count_nonzero((np.asarray(s) >= t_start) & (np.asarray(s) < t_stop)))
                for s in trains)
        out[name] = n / p.size / ((t_stop - t_start) * 1e-3)
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=0.1, help="population size factor")
    ap.add_argument("--k-scale", type=float, default=None,
                    help="in-degree factor (default: --scale)")
    drive = ap.add_mutually_exclusive_group()
    drive.add_argument("--poisson", dest="drive", action="store_const", const="poisson")
    drive.add_argument("--dc", dest="drive", action="store_const", const="dc")
    ap.add_argument("--t-presim", type=float, default=500.0, help="ms, discarded")
    ap.add_argument("--t-sim", type=float, default=1000.0, help="ms")
    ap.add_argument("--record", action="store_true", help="record spikes, print rates")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--simulator", default="gpuspike", help="pyNN.<simulator>")
    ap.add_argument("--engine", default=None, help="gpuspike engine: auto, numpy, cupy")
    args = ap.parse_args(argv)
    sim = importlib.import_module(f"pyNN.{args.simulator}")
    setup = {"engine": args.engine} if args.engine and args.simulator == "gpuspike" else {}
    net = build(sim, args.scale, args.k_scale, args.drive or "poisson", args.seed,
                args.record, **setup)
    t0 = time.perf_counter()
    sim.run(args.t_presim)
    t1 = time.perf_counter()
    sim.run(args.t_sim)
    t2 = time.perf_counter()
    out = {"simulator": args.simulator, "scale": args.scale,
           "k_scale": args.k_scale if args.k_scale is not None else args.scale,
           "drive": args.drive or "poisson", "neurons": net["neurons"],
           "synapses": net["synapses"], "build_s": round(net["build_s"], 3),
           "presim_s": round(t1 - t0, 3), "sim_s": round(t2 - t1, 3),
           "rtf": round((t2 - t1) / (args.t_sim * 1e-3), 4)}
    if args.record:
        out["rates_hz"] = {k: round(v, 3) for k, v in
                           rates(net["populations"], args.t_presim,
                                 args.t_presim + args.t_sim).items()}
    sim.end()
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
