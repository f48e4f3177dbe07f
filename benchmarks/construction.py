"""Synapse construction speed: gpuspike's on-device FixedProbability against Brian2's
``Synapses.connect(p=...)`` on its numpy target, in the same invocation.

Sizes (synapses ~ n^2 p): on CuPy n = 1e5, p = 0.01 (1e8 synapses; goal <= 1 s, where
Brian2CUDA builds on the host at 1.2 M synapses/s, an anchor from DESIGN.md, not measured
here); on NumPy n = 31623, p = 0.01 (1e7); Brian2 numpy n = 31623 (1e7) or, with
``--quick``, n = 10000 (1e6) for everything. Lines: ``construction`` per simulator
(seconds, synapses, synapses per second) and ``construction-ratio`` (gpuspike synapses/s
over Brian2's).

Run: ``python benchmarks/construction.py --engine numpy [--quick]``.
"""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    ANCHORS,
    GOALS,
    Timer,
    brian2_available,
    device_description,
    emit,
    free_gpu_memory,
    gpu_memory_bytes,
    log,
    make_parser,
    ratio,
    resolve_engine,
    synchronize,
)


def build_gpuspike(engine: str, n: int, p: float, seed: int) -> tuple[int, float]:
    """(synapses, seconds) of one FixedProbability(p) build of n x n on ``engine``."""
    from gpuspike.bridge import ir
    from gpuspike.engine import connectivity as conn
    from gpuspike.engine.backend import select_backend

    xp = select_backend(engine).xp
    with Timer() as t:
        rows = conn.build(
            ir.FixedProbability(p),
            n,
            n,
            xp=xp,
            seed=seed,
            stream=zlib.crc32(b"connect bench"),
            same_group=True,
            name="bench",
        )
        synapses = int(rows.row_length.sum())  # also waits for the device
        synchronize(engine)
    del rows
    return synapses, t.s


def build_brian2(n: int, p: float, seed: int) -> tuple[int, float]:
    """(synapses, seconds) of Brian2's ``Synapses(G, G).connect(p=p)``, numpy target."""
    import brian2 as b2

    b2.start_scope()
    b2.prefs.codegen.target = "numpy"
    b2.seed(seed)
    group = b2.NeuronGroup(n, "v : 1")
    syn = b2.Synapses(group, group)
    with Timer() as t:
        syn.connect(p=p)
    return len(syn), t.s


def main(argv: list[str] | None = None) -> int:
    p = make_parser(__doc__.splitlines()[0])
    p.add_argument("--neurons", type=int, default=None, help="gpuspike n (n x n, p)")
    p.add_argument("--brian2-neurons", type=int, default=None, help="Brian2 n (n x n, p)")
    p.add_argument("--p", type=float, default=0.01)
    p.add_argument("--repeats", type=int, default=3, help="timed gpuspike builds (best kept)")
    args = p.parse_args(argv)
    engine = resolve_engine(args.engine)
    quick = args.quick
    n = args.neurons or (
        100_000 if engine == "cupy" and not quick else (10_000 if quick else 31_623)
    )
    n_b2 = args.brian2_neurons or (10_000 if quick else 31_623)
    log(f"construction: gpuspike {engine} {n} x {n} p={args.p}; brian2 {n_b2} x {n_b2}")
    # warm-up: CuPy compiles its kernels on first use, NumPy touches its allocator
    build_gpuspike(engine, 1000, args.p, args.seed)
    times, syn = [], 0
    for r in range(max(1, args.repeats)):
        syn, s = build_gpuspike(engine, n, args.p, args.seed + r)
        times.append(s)
        free_gpu_memory(engine)
    best = min(times)
    rate = syn / best
    log(f"  gpuspike/{engine}: {syn} synapses in {best:.3f} s ({rate / 1e6:.1f} M/s)")
    extra = {}
    if engine == "cupy":
        extra = {
            "goal_s_for_1e8": GOALS["construction_1e8_synapses_s"],
            "anchor_brian2cuda_host_per_s": ANCHORS["brian2cuda_host_synapse_creation_per_s"],
            "anchor_note": "Brian2CUDA host creation rate from DESIGN.md, NOT measured in this run",
            "gpu_pool_bytes": gpu_memory_bytes(engine),
        }
    emit(
        bench="construction",
        engine=engine,
        simulator="gpuspike",
        device=device_description(engine),
        connector="FixedProbability",
        neurons=n,
        p=args.p,
        synapses=syn,
        build_s=best,
        build_s_all=times,
        synapses_per_s=rate,
        **extra,
    )
    b2_rate, b2_syn, why = None, None, brian2_available()[1]
    if args.no_brian2:
        why = "--no-brian2"
    elif brian2_available()[0]:
        try:
            b2_syn, b2_s = build_brian2(n_b2, args.p, args.seed)
            b2_rate = b2_syn / b2_s
            log(f"  brian2/numpy: {b2_syn} synapses in {b2_s:.3f} s ({b2_rate / 1e6:.2f} M/s)")
            emit(
                bench="construction",
                engine="brian2-numpy",
                simulator="brian2",
                connector="connect(p=p)",
                neurons=n_b2,
                p=args.p,
                synapses=b2_syn,
                build_s=b2_s,
                synapses_per_s=b2_rate,
                brian2_version=why,
            )
        except Exception as exc:  # noqa: BLE001 - the peer failing must not hide our figures
            why, b2_rate, b2_syn = f"brian2 failed: {exc.__class__.__name__}: {exc}", None, None
    if b2_rate is None:
        log(f"  brian2 peer skipped: {why}")
        emit(bench="construction", engine="brian2-numpy", simulator="brian2", skipped=why)
    emit(
        bench="construction-ratio",
        engine=engine,
        peer="brian2-numpy",
        speedup_synapses_per_s=ratio(rate, b2_rate),
        gpuspike_synapses=syn,
        brian2_synapses=b2_syn,
        note="ratio of synapses per second; sizes may differ (see the construction lines)",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
