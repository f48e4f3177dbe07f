"""COBAHH (Brette et al. 2007, Brian2's example) on gpuspike against Brian2's numpy target.

Hodgkin-Huxley neurons (Traub-Miles rate functions in their exprel-free form) with
conductance-based exponential synapses, 80 % excitatory. Sizes: ``--neurons N
--synapses-per-neuron K`` (connection probability ``K / N``); default 4000 x 80 (p = 0.02,
Brian2's example) on NumPy, and the DESIGN.md goal size 1e5 x 1000 on CuPy (goal <= 0.2 s
per simulated second on an H100/H200; Brian2CUDA's published 0.80 s on an H200 is printed as
an anchor, not measured here). Brian2's numpy target runs only up to 10000 neurons.

gpuspike builds the network as two groups (``E``, ``I``) and four projections; Brian2 as
one group with subgroups ``P[:Ne]`` and ``P[Ne:]`` as in its example: the same
distribution of networks. ``--connector pre`` uses FixedNumberPre (each neuron receives
exactly 0.8 K excitatory and 0.2 K inhibitory synapses) in place of FixedProbability.

Run: ``python benchmarks/cobahh.py --engine numpy [--neurons 4000 --synapses-per-neuron 80]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    ANCHORS,
    GOALS,
    Timer,
    backend_fields,
    brian2_numpy,
    compare_with_brian2,
    emit,
    figures,
    log,
    make_parser,
    out_degree,
    resolve_engine,
    run_brian2_network,
    run_gpuspike_network,
)

MS, MV, NS = 1e-3, 1e-3, 1e-9
DT = 0.1 * MS
AREA = 20000e-12  # 20000 um^2 in m^2
CM2 = 1e-4  # 1 cm^2 in m^2
PARAMS = {
    "Cm": 1e-6 / CM2 * AREA,  # 1 uF/cm^2
    "gl": 5e-5 / CM2 * AREA,  # 5e-5 S/cm^2
    "El": -60 * MV,
    "EK": -90 * MV,
    "ENa": 50 * MV,
    "g_na": 100e-3 / CM2 * AREA,  # 100 mS/cm^2
    "g_kd": 30e-3 / CM2 * AREA,  # 30 mS/cm^2
    "VT": -63 * MV,
    "taue": 5 * MS,
    "taui": 10 * MS,
    "Ee": 0 * MV,
    "Ei": -80 * MV,
}
WE, WI = 6 * NS, 67 * NS
EQS = """
dv/dt = (gl*(El-v)+ge*(Ee-v)+gi*(Ei-v)-g_na*(m*m*m)*h*(v-ENa)-g_kd*(n*n*n*n)*(v-EK))/Cm : volt
dm/dt = alpha_m*(1-m)-beta_m*m : 1
dn/dt = alpha_n*(1-n)-beta_n*n : 1
dh/dt = alpha_h*(1-h)-beta_h*h : 1
dge/dt = -ge*(1./taue) : siemens
dgi/dt = -gi*(1./taui) : siemens
alpha_m = 0.32*(mV**-1)*(13*mV-v+VT)/(exp((13*mV-v+VT)/(4*mV))-1.)/ms : Hz
beta_m = 0.28*(mV**-1)*(v-VT-40*mV)/(exp((v-VT-40*mV)/(5*mV))-1)/ms : Hz
alpha_h = 0.128*exp((17*mV-v+VT)/(18*mV))/ms : Hz
beta_h = 4./(1+exp((40*mV-v+VT)/(5*mV)))/ms : Hz
alpha_n = 0.032*(mV**-1)*(15*mV-v+VT)/(exp((15*mV-v+VT)/(5*mV))-1.)/ms : Hz
beta_n = .5*exp((10*mV-v+VT)/(40*mV))/ms : Hz
"""
INIT = {
    "v": "El + (randn() * 5 - 5)*mV",
    "ge": "(randn() * 1.5 + 4) * 10.*nS",
    "gi": "(randn() * 12 + 20) * 10.*nS",
}
BRIAN2_MAX_NEURONS = 10000


# ----------------------------------------------------------------------------- gpuspike
def build_network(
    n: int,
    k: int,
    *,
    precision: str = "float64",
    seed: int = 1,
    connector: str = "prob",
    monitor: str = "spikes",
):
    """COBAHH as a NetworkIR: groups E (0.8 n) and I (0.2 n), four projections.

    ``monitor``: ``'spikes'`` (spike monitors: exact rates and synaptic events),
    ``'rate'`` (population rate monitors: per-step counts only, so the host does not
    unpack a bit per neuron per step at large sizes) or ``'none'``.
    """
    from gpuspike.bridge import ir
    from gpuspike.bridge.model import neuron_group, synapses

    n_exc = round(0.8 * n)
    sizes = {"E": n_exc, "I": n - n_exc}
    groups = tuple(
        neuron_group(
            name,
            size,
            EQS,
            threshold="v > -20*mV",
            refractory="v > -20*mV",
            method="exponential_euler",
            namespace=PARAMS,
            init=INIT,
        )
        for name, size in sizes.items()
    )
    projections = []
    for pre in ("E", "I"):
        target, weight = ("ge", WE) if pre == "E" else ("gi", WI)
        for post in ("E", "I"):
            if connector == "pre":
                conn = ir.FixedNumberPre(max(1, round(k * sizes[pre] / n)))
            else:
                conn = ir.FixedProbability(k / n)
            projections.append(
                synapses(
                    f"C{pre}{post}",
                    pre,
                    post,
                    on_pre=f"{target}_post += w",
                    dt=DT,
                    namespace={"w": weight},
                    post_variables=(target,),
                    connector=conn,
                )
            )
    monitors: tuple = ()
    if monitor == "spikes":
        monitors = tuple(ir.SpikeMonitorIR(f"spikes_{g}", g) for g in sizes)
    elif monitor == "rate":
        monitors = tuple(ir.RateMonitorIR(f"rate_{g}", g) for g in sizes)
    return ir.NetworkIR(
        dt=DT,
        groups=groups,
        synapses=tuple(projections),
        monitors=monitors,
        precision=precision,
        seed=seed,
        name="cobahh",
    )


def run_gpuspike(
    engine: str,
    n: int,
    k: int,
    duration: float,
    *,
    precision: str,
    seed: int,
    chunk_steps: int,
    connector: str,
    monitor: str = "spikes",
) -> dict:
    """Build, warm up one chunk, run ``duration`` seconds; the figures as a dict."""
    net, sim, warm_t, res = run_gpuspike_network(
        lambda: build_network(
            n, k, precision=precision, seed=seed, connector=connector, monitor=monitor
        ),
        engine,
        duration,
        dt=DT,
        chunk_steps=chunk_steps,
    )
    spikes = synapses = events = 0
    for g in ("E", "I"):
        size = net.population(g).size
        deg = np.zeros(size, dtype=np.int64)
        for post in ("E", "I"):
            deg += out_degree(sim, f"C{g}{post}")
        synapses += int(deg.sum())
        if monitor == "spikes":
            sp = sim.spikes(f"spikes_{g}")
            idx = sp.i[sp.t >= warm_t - DT / 2]
            spikes += int(idx.size)
            events += int(deg[idx].sum())
        elif monitor == "rate":
            t, rate = sim.rates(f"rate_{g}")
            count = round(float(rate[0][t >= warm_t - DT / 2].sum()) * size * DT)
            spikes += count
            events += round(count * deg.mean())  # estimate: mean out-degree per spike
    res.update(
        spikes=spikes,
        synapses=synapses,
        syn_events=events,
        syn_events_exact=monitor == "spikes",
        monitor=monitor,
    )
    res.update(backend_fields(sim))
    return res


# ----------------------------------------------------------------------------- Brian2
def run_brian2(
    n: int, k: int, duration: float, *, precision: str, seed: int, warm_steps: int
) -> dict:
    """Brian2's COBAHH example (explicit Network, numpy target)."""
    brian2_numpy(precision, seed)
    from brian2 import (
        Equations,
        Network,
        NeuronGroup,
        SpikeMonitor,
        Synapses,
        cm,
        ms,
        msiemens,
        mV,
        nS,
        siemens,
        ufarad,
        umetre,
    )

    n_exc = round(0.8 * n)
    with Timer() as t_build:
        area = 20000 * umetre**2
        namespace = {
            "Cm": (1 * ufarad * cm**-2) * area,
            "gl": (5e-5 * siemens * cm**-2) * area,
            "El": -60 * mV,
            "EK": -90 * mV,
            "ENa": 50 * mV,
            "g_na": (100 * msiemens * cm**-2) * area,
            "g_kd": (30 * msiemens * cm**-2) * area,
            "VT": -63 * mV,
            "taue": 5 * ms,
            "taui": 10 * ms,
            "Ee": 0 * mV,
            "Ei": -80 * mV,
            "we": 6 * nS,
            "wi": 67 * nS,
        }
        P = NeuronGroup(
            n,
            model=Equations(EQS),
            threshold="v>-20*mV",
            refractory="v>-20*mV",
            method="exponential_euler",
            namespace=namespace,
        )
        Pe, Pi = P[:n_exc], P[n_exc:]
        Ce = Synapses(Pe, P, on_pre="ge+=we", namespace=namespace)
        Ci = Synapses(Pi, P, on_pre="gi+=wi", namespace=namespace)
        Ce.connect(p=k / n)
        Ci.connect(p=k / n)
        P.v = "El + (randn() * 5 - 5)*mV"
        P.ge = "(randn() * 1.5 + 4) * 10.*nS"
        P.gi = "(randn() * 12 + 20) * 10.*nS"
        s_mon = SpikeMonitor(P)
        net = Network(P, Ce, Ci, s_mon)
        net.run(0 * ms, namespace=namespace)
    deg = np.bincount(np.asarray(Ce.i[:]), minlength=n) + np.bincount(
        np.asarray(Ci.i[:]) + n_exc, minlength=n
    )
    return run_brian2_network(
        net,
        s_mon,
        deg,
        setup_s=t_build.s,
        warm_steps=warm_steps,
        duration=duration,
        dt=DT,
        namespace=namespace,
    )


def main(argv: list[str] | None = None) -> int:
    p = make_parser(__doc__.splitlines()[0])
    p.add_argument(
        "--neurons",
        type=int,
        default=None,
        help="default: 4000 on NumPy, 100000 on CuPy (2000 with --quick)",
    )
    p.add_argument(
        "--synapses-per-neuron",
        type=int,
        default=None,
        help="default: 80 on NumPy (p = 0.02), 1000 on CuPy",
    )
    p.add_argument(
        "--connector",
        choices=("prob", "pre"),
        default="prob",
        help="FixedProbability(K/N) or FixedNumberPre",
    )
    p.add_argument(
        "--monitor",
        choices=("auto", "spikes", "rate"),
        default="auto",
        help="gpuspike recording: spike monitors, or population rate monitors (auto: spikes "
        "up to 10000 neurons, else rate)",
    )
    args = p.parse_args(argv)
    engine = resolve_engine(args.engine)
    gpu_size = engine == "cupy" and not args.quick
    n = args.neurons or (100_000 if gpu_size else (2000 if args.quick else 4000))
    k = args.synapses_per_neuron or (1000 if gpu_size else round(0.02 * n))
    duration = args.duration if args.duration is not None else (0.2 if args.quick else 1.0)
    monitor = args.monitor
    if monitor == "auto":
        monitor = "spikes" if n <= BRIAN2_MAX_NEURONS else "rate"
    log(
        f"cobahh: {n} neurons x {k} synapses/neuron, {duration} s, engine {engine}, "
        f"{args.precision}, connector {args.connector}"
    )
    gs = figures(
        run_gpuspike(
            engine,
            n,
            k,
            duration,
            precision=args.precision,
            seed=args.seed,
            chunk_steps=args.chunk_steps,
            connector=args.connector,
            monitor=monitor,
        ),
        n,
        duration,
    )
    log(
        f"  gpuspike/{gs['backend']}: set-up {gs['setup_s']:.2f} s, run {gs['run_s']:.2f} s "
        f"({gs['wall_per_sim_s']:.3f} s per simulated s), {gs['rate_hz']:.2f} Hz"
    )
    big = n >= 100_000 and k >= 1000
    extra = {}
    if big:
        extra = {
            "goal_wall_per_sim_s": GOALS["cobahh_1e5_k1000_wall_per_sim_s"],
            "meets_goal": gs["wall_per_sim_s"] <= GOALS["cobahh_1e5_k1000_wall_per_sim_s"],
            "anchor_brian2cuda_h200_wall_per_sim_s": ANCHORS[
                "brian2cuda_cobahh_1e5_k1000_h200_wall_per_sim_s"
            ],
            "anchor_note": "Brian2CUDA figure published in DESIGN.md (H200), NOT measured "
            "in this run",
        }
    emit(
        bench="cobahh",
        engine=gs.pop("backend"),
        simulator="gpuspike",
        precision=args.precision,
        synapses_per_neuron=k,
        connector=args.connector,
        chunk_steps=args.chunk_steps,
        **gs,
        **extra,
    )
    compare_with_brian2(
        "cobahh",
        engine,
        gs,
        lambda: run_brian2(
            n, k, duration, precision=args.precision, seed=args.seed, warm_steps=args.chunk_steps
        ),
        n=n,
        duration=duration,
        precision=args.precision,
        no_brian2=args.no_brian2,
        skip=(
            f"Brian2 numpy peer runs only up to {BRIAN2_MAX_NEURONS} neurons"
            if n > BRIAN2_MAX_NEURONS
            else None
        ),
        fields={"synapses_per_neuron": k},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
