"""CUBA (Vogels & Abbott 2005, Brian2's example) on gpuspike against Brian2's numpy target.

4000 LIF neurons (3200 excitatory, 800 inhibitory), current-based exponential synapses,
p = 0.02, dt = 0.1 ms. Both simulators build the network, run a warm-up of one chunk
(``--chunk-steps`` steps; on CuPy it captures the CUDA graph) and then the timed run, so
both time the same simulated interval. Lines printed (stdout, JSON):

- ``cuba`` for gpuspike and for ``brian2-numpy``: set-up (construction + compile),
  run wall time, wall per simulated second, us per step, firing rate, synaptic events/s;
- ``cuba-ratio``: Brian2 run wall / gpuspike run wall (> 1: gpuspike faster), both rates;
- on CuPy, ``cuba-overhead``: us per step of a long run (10 s) of the full network and of
  an "empty-ish" one (same kernels, 32 neurons, no monitor), goal <= 5 us/step; the full
  network with and without its spike monitor (pulled and unpacked on the host per chunk).

Run: ``python benchmarks/cuba.py --engine numpy [--duration 1] [--quick]``.
"""

from __future__ import annotations

import numpy as np

if __package__:
    from .common import (
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

MS, MV = 1e-3, 1e-3
DT = 0.1 * MS
PARAMS = {
    "taum": 20 * MS,
    "taue": 5 * MS,
    "taui": 10 * MS,
    "Vt": -50 * MV,
    "Vr": -60 * MV,
    "El": -49 * MV,
}
WE = (60 * 0.27 / 10) * MV
WI = (-20 * 4.5 / 10) * MV
EQS = """
dv/dt  = (ge+gi-(v-El))/taum : volt (unless refractory)
dge/dt = -ge/taue : volt
dgi/dt = -gi/taui : volt
"""


# ----------------------------------------------------------------------------- gpuspike
def build_network(
    n: int = 4000, *, precision: str = "float64", seed: int = 1, monitor: bool = True
):
    """The CUBA network as a NetworkIR: one group, exc/inh pathways split by ``i`` (as
    Brian2's ``connect('i<3200', p=0.02)``), 80 % excitatory."""
    from gpuspike.bridge import ir
    from gpuspike.bridge.expressions import parse_expression
    from gpuspike.bridge.model import neuron_group, synapses

    n_exc = round(0.8 * n)
    group = neuron_group(
        "P",
        n,
        EQS,
        threshold="v > Vt",
        reset="v = Vr",
        refractory="5*ms",
        method="exact",
        namespace=PARAMS,
        init={"v": "Vr + rand() * (Vt - Vr)"},
    )
    exc = synapses(
        "Ce",
        "P",
        "P",
        on_pre="ge_post += we",
        dt=DT,
        namespace={"we": WE},
        post_variables=("ge",),
        connector=ir.ConditionConnect(condition=parse_expression(f"i < {n_exc}"), p=0.02),
    )
    inh = synapses(
        "Ci",
        "P",
        "P",
        on_pre="gi_post += wi",
        dt=DT,
        namespace={"wi": WI},
        post_variables=("gi",),
        connector=ir.ConditionConnect(condition=parse_expression(f"i >= {n_exc}"), p=0.02),
    )
    monitors = (ir.SpikeMonitorIR("spikes", "P"),) if monitor else ()
    return ir.NetworkIR(
        dt=DT,
        groups=(group,),
        synapses=(exc, inh),
        monitors=monitors,
        precision=precision,
        seed=seed,
        name="cuba",
    )


def out_degrees(sim, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Synapses per pre-synaptic neuron of each synapse group (host arrays)."""
    out = {}
    for s in names:
        rl = sim.rows[s].row_length
        out[s] = rl.get() if hasattr(rl, "get") else np.asarray(rl)
    return out


def run_gpuspike(
    engine: str,
    n: int,
    duration: float,
    *,
    precision: str,
    seed: int,
    chunk_steps: int,
    monitor: bool = True,
) -> dict:
    """Build, warm up one chunk, run ``duration`` seconds; the figures as a dict."""
    from gpuspike.engine.runtime import Simulation

    with Timer() as t_ir:
        net = build_network(n, precision=precision, seed=seed, monitor=monitor)
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
    res = {
        "setup_s": t_ir.s + t_sim.s,
        "ir_build_s": t_ir.s,
        "connectivity_s": sim.timings.get("connectivity_s"),
        "compile_s": sim.timings.get("compile_s"),
        "warmup_s": t_warm.s,
        "run_s": t_run.s,
        "steps": steps,
        "backend": sim.backend.name,
        "device": (sim.backend.device if sim.backend.is_gpu else device_description("numpy")),
        "gpu_pool_bytes": gpu_memory_bytes(sim.backend.name),
    }
    if monitor:
        sp = sim.spikes("spikes")
        keep = sp.t >= warm_t - DT / 2
        idx = sp.i[keep]
        deg = out_degrees(sim, ("Ce", "Ci"))
        res["spikes"] = int(idx.size)
        res["synapses"] = int(sum(int(d.sum()) for d in deg.values()))
        res["syn_events"] = int(sum(int(d[idx].sum()) for d in deg.values()))
    return res


# ----------------------------------------------------------------------------- Brian2
def run_brian2(n: int, duration: float, *, precision: str, seed: int, warm_steps: int) -> dict:
    """The same network written as Brian2's example, on Brian2's numpy target."""
    import brian2 as b2
    from brian2 import Network, NeuronGroup, SpikeMonitor, Synapses, ms, mV, prefs, second

    b2.start_scope()
    prefs.codegen.target = "numpy"
    prefs.core.default_float_dtype = np.float32 if precision == "float32" else np.float64
    b2.seed(seed)
    b2.defaultclock.dt = 0.1 * ms
    n_exc = round(0.8 * n)
    with Timer() as t_build:
        taum, taue, taui = 20 * ms, 5 * ms, 10 * ms  # noqa: F841 (Brian2 namespace)
        Vt, Vr, El = -50 * mV, -60 * mV, -49 * mV  # noqa: F841
        we = (60 * 0.27 / 10) * mV  # noqa: F841
        wi = (-20 * 4.5 / 10) * mV  # noqa: F841
        P = NeuronGroup(n, EQS, threshold="v>Vt", reset="v = Vr", refractory=5 * ms, method="exact")
        P.v = "Vr + rand() * (Vt - Vr)"
        P.ge = 0 * mV
        P.gi = 0 * mV
        Ce = Synapses(P, P, on_pre="ge += we")
        Ci = Synapses(P, P, on_pre="gi += wi")
        Ce.connect(f"i<{n_exc}", p=0.02)
        Ci.connect(f"i>={n_exc}", p=0.02)
        s_mon = SpikeMonitor(P)
        net = Network(P, Ce, Ci, s_mon)
        net.run(0 * ms)  # code generation and set-up
    with Timer() as t_warm:
        net.run(warm_steps * 0.1 * ms)
    n_warm = int(s_mon.num_spikes)
    with Timer() as t_run:
        net.run(duration * second)
    idx = np.asarray(s_mon.i[:])[n_warm:]
    deg = np.bincount(np.asarray(Ce.i[:]), minlength=n) + np.bincount(
        np.asarray(Ci.i[:]), minlength=n
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


# ----------------------------------------------------------------------------- reporting
def figures(res: dict, n: int, duration: float) -> dict:
    """Derived figures common to both simulators."""
    out = dict(res)
    out["neurons"] = n
    out["duration_s"] = duration
    out["wall_per_sim_s"] = res["run_s"] / duration
    out["us_per_step"] = 1e6 * res["run_s"] / res["steps"]
    if "spikes" in res:
        out["rate_hz"] = res["spikes"] / n / duration
        out["syn_events_per_s"] = res["syn_events"] / res["run_s"]
    return out


def overhead(engine: str, args) -> None:
    """CuPy per-step overhead: long runs of the full and of an empty-ish network."""
    dur = 1.0 if args.quick else 10.0
    variants = (("full", 4000, True), ("full-no-monitor", 4000, False), ("empty-ish", 32, False))
    for variant, n, mon in variants:
        res = run_gpuspike(
            engine,
            n,
            dur,
            precision=args.precision,
            seed=args.seed,
            chunk_steps=args.chunk_steps,
            monitor=mon,
        )
        us = 1e6 * res["run_s"] / res["steps"]
        log(f"cuba overhead {variant}: {us:.2f} us/step over {res['steps']} steps")
        emit(
            bench="cuba-overhead",
            engine=res["backend"],
            device=res["device"],
            variant=variant,
            neurons=n,
            monitor=mon,
            duration_s=dur,
            steps=res["steps"],
            run_s=res["run_s"],
            us_per_step=us,
            chunk_steps=args.chunk_steps,
            goal_us_per_step=GOALS["cuba_per_step_overhead_us"],
            meets_goal=us <= GOALS["cuba_per_step_overhead_us"],
            precision=args.precision,
        )


def main(argv: list[str] | None = None) -> int:
    p = make_parser(__doc__.splitlines()[0])
    p.add_argument("--neurons", type=int, default=4000)
    p.add_argument(
        "--overhead",
        choices=("auto", "yes", "no"),
        default="auto",
        help="measure the per-step overhead (auto: on CuPy only)",
    )
    args = p.parse_args(argv)
    engine = resolve_engine(args.engine)
    duration = args.duration if args.duration is not None else (0.25 if args.quick else 1.0)
    n = args.neurons
    log(f"cuba: {n} neurons, {duration} s, engine {engine}, {args.precision}")
    gs = figures(
        run_gpuspike(
            engine,
            n,
            duration,
            precision=args.precision,
            seed=args.seed,
            chunk_steps=args.chunk_steps,
        ),
        n,
        duration,
    )
    log(
        f"  gpuspike/{gs['backend']}: set-up {gs['setup_s']:.2f} s, run {gs['run_s']:.2f} s, "
        f"{gs['rate_hz']:.2f} Hz"
    )
    emit(
        bench="cuba",
        engine=gs.pop("backend"),
        simulator="gpuspike",
        precision=args.precision,
        chunk_steps=args.chunk_steps,
        **gs,
    )
    b2 = None
    ok, why = brian2_available()
    if args.no_brian2:
        why, ok = "--no-brian2", False
    if ok:
        try:
            b2 = figures(
                run_brian2(
                    n,
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
                bench="cuba",
                engine="brian2-numpy",
                simulator="brian2",
                precision=args.precision,
                **b2,
            )
        except Exception as exc:  # noqa: BLE001 - the peer failing must not hide our figures
            why = f"brian2 failed: {exc.__class__.__name__}: {exc}"
            b2 = None
    if b2 is None:
        log(f"  brian2 peer skipped: {why}")
        emit(bench="cuba", engine="brian2-numpy", simulator="brian2", skipped=why)
    emit(
        bench="cuba-ratio",
        engine=engine,
        peer="brian2-numpy",
        neurons=n,
        duration_s=duration,
        precision=args.precision,
        speedup_run=ratio(b2 and b2["run_s"], gs["run_s"]),
        speedup_setup=ratio(b2 and b2["setup_s"], gs["setup_s"]),
        rate_hz_gpuspike=gs["rate_hz"],
        rate_hz_brian2=b2 and b2["rate_hz"],
        rate_rel_diff=ratio(b2 and abs(gs["rate_hz"] - b2["rate_hz"]), b2 and b2["rate_hz"]),
        note="speedup = brian2 wall / gpuspike wall, same simulated interval, same process",
    )
    if args.overhead == "yes" or (args.overhead == "auto" and engine == "cupy"):
        overhead(engine, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
