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

import numpy as np

if __package__:
    from .common import (
        ANCHORS,
        GOALS,
        Timer,
        brian2_available,
        device_description,
        emit,
        gpu_memory_bytes,
        log,
        make_parser,
        ratio,
        resolve_engine,
        synchronize,
    )
else:
    from common import (
        ANCHORS,
        GOALS,
        Timer,
        brian2_available,
        device_description,
        emit,
        gpu_memory_bytes,
        log,
        make_parser,
        ratio,
        resolve_engine,
        synchronize,
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
    from gpuspike.engine.runtime import Simulation

    with Timer() as t_ir:
        net = build_network(
            n, k, precision=precision, seed=seed, connector=connector, monitor=monitor
        )
    with Timer() as t_sim:
        sim = Simulation(net, engine=engine, chunk_steps=chunk_steps)
        synchronize(sim.backend.name)
    with Timer() as t_warm:
        sim.run(steps=chunk_steps)
    warm_t = sim.t
    steps = round(duration / DT)
    with Timer() as t_run:
        sim.run(steps=steps)
        synchronize(sim.backend.name)
    spikes = synapses = events = 0
    for g in ("E", "I"):
        size = net.population(g).size
        deg = np.zeros(size, dtype=np.int64)
        for post in ("E", "I"):
            rl = sim.rows[f"C{g}{post}"].row_length
            deg += rl.get() if hasattr(rl, "get") else np.asarray(rl)
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
    return {
        "setup_s": t_ir.s + t_sim.s,
        "ir_build_s": t_ir.s,
        "connectivity_s": sim.timings.get("connectivity_s"),
        "compile_s": sim.timings.get("compile_s"),
        "warmup_s": t_warm.s,
        "run_s": t_run.s,
        "steps": steps,
        "spikes": spikes,
        "synapses": synapses,
        "syn_events": events,
        "syn_events_exact": monitor == "spikes",
        "monitor": monitor,
        "backend": sim.backend.name,
        "device": sim.backend.device if sim.backend.is_gpu else device_description("numpy"),
        "gpu_pool_bytes": gpu_memory_bytes(sim.backend.name),
    }


# ----------------------------------------------------------------------------- Brian2
def run_brian2(
    n: int, k: int, duration: float, *, precision: str, seed: int, warm_steps: int
) -> dict:
    """Brian2's COBAHH example (explicit Network, numpy target)."""
    import brian2 as b2
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
        prefs,
        second,
        siemens,
        ufarad,
        umetre,
    )

    b2.start_scope()
    prefs.codegen.target = "numpy"
    prefs.core.default_float_dtype = np.float32 if precision == "float32" else np.float64
    b2.seed(seed)
    b2.defaultclock.dt = 0.1 * ms
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
    with Timer() as t_warm:
        net.run(warm_steps * 0.1 * ms, namespace=namespace)
    n_warm = int(s_mon.num_spikes)
    with Timer() as t_run:
        net.run(duration * second, namespace=namespace)
    idx = np.asarray(s_mon.i[:])[n_warm:]
    deg = np.bincount(np.asarray(Ce.i[:]), minlength=n) + np.bincount(
        np.asarray(Ci.i[:]) + n_exc, minlength=n
    )
    return {
        "setup_s": t_build.s,
        "warmup_s": t_warm.s,
        "run_s": t_run.s,
        "steps": round(duration / DT),
        "spikes": int(idx.size),
        "synapses": int(deg.sum()),
        "syn_events": int(deg[idx].sum()),
        "brian2_version": b2.__version__,
    }


def figures(res: dict, n: int, duration: float) -> dict:
    out = dict(res)
    out.update(
        neurons=n,
        duration_s=duration,
        wall_per_sim_s=res["run_s"] / duration,
        us_per_step=1e6 * res["run_s"] / res["steps"],
        rate_hz=res["spikes"] / n / duration,
        syn_events_per_s=res["syn_events"] / res["run_s"],
    )
    return out


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
    b2 = None
    ok, why = brian2_available()
    if args.no_brian2:
        ok, why = False, "--no-brian2"
    elif n > BRIAN2_MAX_NEURONS:
        ok, why = False, f"Brian2 numpy peer runs only up to {BRIAN2_MAX_NEURONS} neurons"
    if ok:
        try:
            b2 = figures(
                run_brian2(
                    n,
                    k,
                    duration,
                    precision=args.precision,
                    seed=args.seed,
                    warm_steps=args.chunk_steps,
                ),
                n,
                duration,
            )
            log(
                f"  brian2/numpy: set-up {b2['setup_s']:.2f} s, run {b2['run_s']:.2f} s, "
                f"{b2['rate_hz']:.2f} Hz"
            )
            emit(
                bench="cobahh",
                engine="brian2-numpy",
                simulator="brian2",
                precision=args.precision,
                synapses_per_neuron=k,
                **b2,
            )
        except Exception as exc:  # noqa: BLE001 - the peer failing must not hide our figures
            why, b2 = f"brian2 failed: {exc.__class__.__name__}: {exc}", None
    if b2 is None:
        log(f"  brian2 peer skipped: {why}")
        emit(
            bench="cobahh",
            engine="brian2-numpy",
            simulator="brian2",
            neurons=n,
            synapses_per_neuron=k,
            skipped=why,
        )
    emit(
        bench="cobahh-ratio",
        engine=engine,
        peer="brian2-numpy",
        neurons=n,
        synapses_per_neuron=k,
        duration_s=duration,
        precision=args.precision,
        speedup_run=ratio(b2 and b2["run_s"], gs["run_s"]),
        speedup_setup=ratio(b2 and b2["setup_s"], gs["setup_s"]),
        rate_hz_gpuspike=gs["rate_hz"],
        rate_hz_brian2=b2 and b2["rate_hz"],
        rate_rel_diff=ratio(b2 and abs(gs["rate_hz"] - b2["rate_hz"]), b2 and b2["rate_hz"]),
        note="speedup = brian2 wall / gpuspike wall, same simulated interval, same process",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
