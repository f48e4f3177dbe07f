"""CUBA (Vogels & Abbott 2005, Brian2's example) on gpuspike against Brian2's numpy target.

4000 LIF neurons (3200 excitatory, 800 inhibitory), current-based exponential synapses,
p = 0.02, dt = 0.1 ms; gpuspike's network is ``cuba()`` of ``examples/demo.py``. Both
simulators build the network, run a warm-up of one chunk (``--chunk-steps`` steps; on CuPy
it captures the CUDA graph) and then the timed run, so both time the same simulated
interval. Lines printed (stdout, JSON):

- ``cuba`` for gpuspike and for ``brian2-numpy``: set-up (construction + compile),
  run wall time, wall per simulated second, us per step, firing rate, synaptic events/s;
- ``cuba-ratio``: Brian2 run wall / gpuspike run wall (> 1: gpuspike faster), both rates;
- on CuPy, ``cuba-overhead``: us per step of a long run (10 s) of the full network and of
  an "empty-ish" one (same kernels, 32 neurons, no monitor), goal <= 5 us/step; the full
  network with and without its spike monitor (pulled and unpacked on the host per chunk).

Run: ``python benchmarks/cuba.py --engine numpy [--duration 1] [--quick]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
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

MS = 1e-3
DT = 0.1 * MS
EQS = """
dv/dt  = (ge+gi-(v-El))/taum : volt (unless refractory)
dge/dt = -ge/taue : volt
dgi/dt = -gi/taui : volt
"""


# ----------------------------------------------------------------------------- gpuspike
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
    """Build examples/demo.py's CUBA network, warm up one chunk, run ``duration`` seconds;
    the figures as a dict."""
    from demo import cuba

    _, sim, warm_t, res = run_gpuspike_network(
        lambda: cuba(n, DT, seed, precision, monitor=monitor),
        engine,
        duration,
        dt=DT,
        chunk_steps=chunk_steps,
    )
    res.update(backend_fields(sim))
    if monitor:
        sp = sim.spikes("spikes")
        idx = sp.i[sp.t >= warm_t - DT / 2]
        deg = [out_degree(sim, s) for s in ("Ce", "Ci")]
        res["spikes"] = int(idx.size)
        res["synapses"] = int(sum(int(d.sum()) for d in deg))
        res["syn_events"] = int(sum(int(d[idx].sum()) for d in deg))
    return res


# ----------------------------------------------------------------------------- Brian2
def run_brian2(n: int, duration: float, *, precision: str, seed: int, warm_steps: int) -> dict:
    """The same network written as Brian2's example, on Brian2's numpy target."""
    brian2_numpy(precision, seed)
    from brian2 import Network, NeuronGroup, SpikeMonitor, Synapses, ms, mV

    n_exc = int(0.8 * n)  # as examples/demo.py's cuba()
    with Timer() as t_build:
        namespace = {
            "taum": 20 * ms,
            "taue": 5 * ms,
            "taui": 10 * ms,
            "Vt": -50 * mV,
            "Vr": -60 * mV,
            "El": -49 * mV,
            "we": (60 * 0.27 / 10) * mV,
            "wi": (-20 * 4.5 / 10) * mV,
        }
        P = NeuronGroup(
            n,
            EQS,
            threshold="v>Vt",
            reset="v = Vr",
            refractory=5 * ms,
            method="exact",
            namespace=namespace,
        )
        P.v = "Vr + rand() * (Vt - Vr)"
        P.ge = 0 * mV
        P.gi = 0 * mV
        Ce = Synapses(P, P, on_pre="ge += we", namespace=namespace)
        Ci = Synapses(P, P, on_pre="gi += wi", namespace=namespace)
        Ce.connect(f"i<{n_exc}", p=0.02)
        Ci.connect(f"i>={n_exc}", p=0.02)
        s_mon = SpikeMonitor(P)
        net = Network(P, Ce, Ci, s_mon)
        net.run(0 * ms, namespace=namespace)  # code generation and set-up
    deg = np.bincount(np.asarray(Ce.i[:]), minlength=n) + np.bincount(
        np.asarray(Ci.i[:]), minlength=n
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


# ----------------------------------------------------------------------------- reporting
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
    compare_with_brian2(
        "cuba",
        engine,
        gs,
        lambda: run_brian2(
            n, duration, precision=args.precision, seed=args.seed, warm_steps=args.chunk_steps
        ),
        n=n,
        duration=duration,
        precision=args.precision,
        no_brian2=args.no_brian2,
    )
    if args.overhead == "yes" or (args.overhead == "auto" and engine == "cupy"):
        overhead(engine, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
