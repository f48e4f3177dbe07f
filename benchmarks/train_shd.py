"""SHD-sized training: our EventProp engine against snnTorch BPTT, same network, data, device.

Network (both frameworks, float32): 700 inputs -> 256 recurrent LIF -> 20 LI readouts,
``tau_m = 20 ms``, ``tau_s = 5 ms`` (exponential current synapse), ``theta = 1``, reset to 0,
no refractory period, on a grid of ``dt`` (1 ms: 1000 steps; 5 ms: 200 steps); loss
``exp_avg_ce`` (cross-entropy of ``z = (1/T) sum_n e^{-t_n/T} v_n dt``), Adam(1e-3), batch 32.
Weights start equal in both (``N(0.03, 0.01)`` input, ``N(0, 0.02)`` recurrent, ``N(0, 0.03)``
readout, as ``gpuspike train --dataset shd``); no regulariser, no weight lifting.

Exact equations (``alpha = e^{-dt/tau_m}``, ``beta = e^{-dt/tau_s}``, ``P`` the exact
current-to-voltage propagator of ``gpuspike.bridge.adjoint.step_propagators``), ours as
``engine/eventprop/kernels.py``: step 0 delivers input bin 0, then for ``n = 1..N``::

    u <- alpha u + P J ;  J <- beta J                 (hidden and readout)
    v_out[n] = u_out
    n < N:  s = u_h >= 1 ;  u_h[s] <- 0
            J_h += W_in x[n] + W_rec s ;  J_out += W_out s

snnTorch (``snntorch.Synaptic(alpha=beta, beta=alpha, threshold=1, reset_mechanism="zero",
reset_delay=False)`` for the hidden layer, ``reset_mechanism="none"`` for the readout; spike
function ``snntorch.surrogate.fast_sigmoid(slope=25)``): with ``syn_n = P J_{n-1}`` its update
``syn <- beta syn + in ; mem <- alpha mem + syn ; s = H(mem - 1) ; mem <- mem - s mem`` (the
reset's gradient flows through the surrogate of ``s``, as snnTorch does) is the same
recurrence when its input at step ``n`` is ``P (W_in x[n-1] + W_rec s[n-1])`` (readout:
``P W_out s[n-1]``), which is how the peer is driven (the input projection of all steps is one
matrix product before the loop, as BPTT code does). ``--peers torch`` adds the same equations
written in plain torch (no snnTorch module overhead; same surrogate), a leaner BPTT baseline.
The forward passes are therefore identical up to float rounding: the warm-up batch (same
initial weights) gives both frameworks the same loss and spike counts, which each line
reports (``warmup_loss``, ``warmup_spikes_per_hidden_neuron``). The gradients differ by
design (exact EventProp against surrogate BPTT). Both skip the optimiser step of a batch
whose gradients are not all finite (one host sync each, as mixed-precision training does),
so that a diverging gradient cannot turn the timed workload into a silent network; lines
count those steps (``updates_skipped_nonfinite``) and give EventProp's fraction of hidden
spikes skipped as grazing (``warmup_grazing_skipped_frac``: ``J - u <= 0`` on the grid).

Measured per framework and ``dt``: set-up and one warm-up batch (untimed: CuPy kernel and
torch.compile compilation), then ``--batches`` timed training steps (forward, loss, backward,
Adam; host->device copy of the batch included for both); ``epoch_time_s`` is the mean time
per batch times the batches of one SHD training epoch (8156 samples / batch size, the last
batch counted full), an extrapolation that every line states. Peak memory comes from one
more batch (batch 0 again) under each framework's own allocator: CuPy, the high-water of the
default pool's ``used_bytes`` sampled at every allocation; torch CUDA,
``max_memory_allocated`` after ``reset_peak_memory_stats``; on the CPU, the peak resident set
above the one before that batch (sampled every ms, after ``malloc_trim``), labelled
``rss_delta_sampled``. The CUDA context itself is not counted for either.

Lines (stdout, JSON): ``train_shd`` per framework and ``dt``; ``train_shd_ratio`` per peer and
``dt``: ``speedup`` = peer time / our time, ``memory_ratio`` = peer peak / our peak (goal: both
>= 3 at 1 ms; published anchor: mlGeNN 7.8 s and 342 MiB per SHD epoch against Spyx 29.8 s
and 1618 MiB, not measured here).

``--rules eventprop bptt eprop eprop_online`` times our three rules on the same batches (one
line each; the first rule is the one compared with the peers; ``eprop_online``: e-prop's
forward-time traces per synapse, ``eprop`` its default reverse-time pass).

Run: ``python benchmarks/train_shd.py [--engine cupy] [--dt 1 5] [--batches 10] [--quick]
[--train shd_train.h5] [--peers snntorch torch] [--compile] [--threads 1]``. ``--compile``
wraps the peers' per-step function in ``torch.compile``; it helps ``--peers torch`` but makes
snnTorch's neurons (tensors kept as module attributes) recompile. ``--threads`` caps torch's,
NumPy's and our cpp engine's CPU threads (CPU runs on a shared machine).
"""

from __future__ import annotations

import ctypes
import functools
import gc
import math
import os

# OpenMP threads of both frameworks sleep when idle, as gpuspike sets for itself: torch
# loads its libgomp first, and spinning threads made either side 5-50x slower whenever
# anything else ran (benchmarks/RESULTS.md)
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    device_description,
    emit,
    log,
    make_parser,
    ratio,
    resolve_engine,
)

MS = 1e-3
MIB = 2.0**20
#: Samples of the SHD training set (Cramer et al. 2020): one epoch is this many samples.
SHD_TRAIN_SAMPLES = 8156
N_IN, N_OUT = 700, 20
TAU_M, TAU_S, THETA = 20 * MS, 5 * MS, 1.0
#: Initial weights (mean, std) as ``gpuspike train --dataset shd``.
INIT = {"in->hidden": (0.03, 0.01), "hidden->hidden": (0.0, 0.02), "hidden->out": (0.0, 0.03)}
LR = 1e-3
SURROGATE_SLOPE = 25.0
#: Published figures (not measured by this script): one SHD epoch on a GPU.
ANCHORS = {
    "anchor_mlgenn_epoch_s": 7.8,
    "anchor_mlgenn_mib": 342.0,
    "anchor_spyx_epoch_s": 29.8,
    "anchor_spyx_mib": 1618.0,
}
GOAL_SPEEDUP, GOAL_MEMORY = 3.0, 3.0
ANCHOR_NOTE = (
    "anchor (published, not measured here): mlGeNN 7.8 s and 342 MiB per SHD epoch against "
    "Spyx 29.8 s and 1618 MiB (3.8x faster, 4.7x less memory)"
)


# ----------------------------------------------------------------------------- data
def synthetic_shd(
    n_samples: int,
    *,
    seed: int,
    n_channels: int = N_IN,
    n_classes: int = N_OUT,
    rate_hz: float = 10.0,
    durations: tuple[float, float] = (0.7, 1.0),
) -> Any:
    """An SHD-shaped :class:`~gpuspike.datasets.events.SpikeDataset`, seeded.

    Sample ``i`` has class ``i % n_classes``, a duration drawn uniformly from ``durations``
    and inhomogeneous Poisson spikes of rate ``r(t, c) = r0 / 2 + a g(c - c_k(t))`` on channel
    ``c`` (``g``: a Gaussian bump of 60 channels sweeping linearly between two class-specific
    channels, ``a`` chosen so that the mean over channels is ``rate_hz``), drawn by thinning.
    """
    from gpuspike.datasets.events import SpikeDataset

    rng = np.random.default_rng(seed)
    sigma = 60.0
    ch = np.arange(n_channels)
    ends = rng.uniform(0.1 * n_channels, 0.9 * n_channels, size=(n_classes, 2))
    base = 0.5 * rate_hz
    bump_mean = np.mean(np.exp(-0.5 * ((ch - n_channels / 2) / sigma) ** 2))
    amp = (rate_hz - base) / bump_mean
    r_max = base + amp
    times, units, labels = [], [], []
    for i in range(n_samples):
        k = i % n_classes
        dur = rng.uniform(*durations)
        m = rng.poisson(r_max * n_channels * dur)
        t = np.sort(rng.uniform(0.0, dur, m))
        c = rng.integers(0, n_channels, m)
        centre = ends[k, 0] + (ends[k, 1] - ends[k, 0]) * t / dur
        rate = base + amp * np.exp(-0.5 * ((c - centre) / sigma) ** 2)
        keep = rng.random(m) < rate / r_max
        times.append(t[keep].astype(np.float32))
        units.append(c[keep].astype(np.int64))
        labels.append(k)
    return SpikeDataset(
        times=times,
        units=units,
        labels=np.asarray(labels, dtype=np.int64),
        speakers=np.full(n_samples, -1, dtype=np.int64),
        n_channels=n_channels,
    )


def load_data(args: Any, n_samples: int) -> tuple[Any, str]:
    """The dataset (``--train`` file, a seeded random subset, or synthetic) and its label."""
    if args.train:
        from gpuspike.datasets.shd import read_shd

        ds = read_shd(args.train)
        if len(ds) > n_samples:
            pick = np.random.default_rng(args.seed).permutation(len(ds))[:n_samples]
            ds = ds.subset(np.sort(pick))
        return ds, f"SHD file {args.train}"
    return synthetic_shd(n_samples, seed=args.seed), "synthetic SHD-shaped (10 Hz Poisson)"


@dataclass
class Config:
    """One measured configuration."""

    dt: float
    n_steps: int
    n_in: int
    n_hidden: int
    n_out: int
    batch_size: int
    max_spikes: int

    @property
    def dt_ms(self) -> float:
        return round(self.dt / MS, 6)


def host_batches(ds: Any, cfg: Config, n_batches: int) -> list[tuple[Any, ...]]:
    """``n_batches`` host batches in order: dense ``inputs (N, B, n_in)`` float32, labels,
    and the loader's sparse bins (:attr:`Batch.spikes`, which our engine reads; the peers
    take the dense inputs)."""
    from gpuspike.engine.training.data import BatchLoader

    loader = BatchLoader(
        ds,
        batch_size=cfg.batch_size,
        dt=cfg.dt,
        n_steps=cfg.n_steps,
        xp=np,
        dtype=np.float32,
        shuffle=False,
        drop_last=True,
    )
    out = []
    for i in range(min(n_batches, len(loader))):
        b = loader.batch(i)
        out.append((np.ascontiguousarray(b.inputs), np.asarray(b.labels, dtype=np.int64),
                    b.spikes))
    return out


def initial_weights(cfg: Config, seed: int) -> tuple[Any, dict[str, np.ndarray]]:
    """The EventProp IR of the network and its initial weights (shared by both frameworks)."""
    from gpuspike.bridge.training_ir import LossSpec
    from gpuspike.engine.eventprop.builders import LayeredConfig, initial_params, layered_ir

    lcfg = LayeredConfig(
        cfg.n_in,
        cfg.n_hidden,
        cfg.n_out,
        recurrent=True,
        dt=cfg.dt,
        n_steps=cfg.n_steps,
        tau_m=TAU_M,
        tau_s=TAU_S,
        theta=THETA,
        loss=LossSpec("exp_avg_ce"),
        max_spikes=cfg.max_spikes,
        init=INIT,
    )
    ir = layered_ir(lcfg)
    return ir, initial_params(ir, INIT, seed=seed)


# ----------------------------------------------------------------------------- memory
def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _malloc_trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class RssPeak:
    """Peak resident set above the one at entry, sampled every ``interval`` s (CPU runs)."""

    source = "rss_delta_sampled"

    def __init__(self, interval: float = 1e-3) -> None:
        self.interval = interval

    def __enter__(self) -> RssPeak:
        _malloc_trim()
        self.base = self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, _rss_bytes())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())

    @property
    def bytes(self) -> int:
        return self.peak - self.base


class CupyPeak:
    """High-water mark of CuPy's default pool's ``used_bytes``, sampled at every allocation."""

    source = "cupy_pool_used_peak"

    def __enter__(self) -> CupyPeak:
        import cupy

        self._cupy = cupy
        pool = self.pool = cupy.get_default_memory_pool()
        self.base = self.peak = int(pool.used_bytes())
        box = self

        def malloc(size: int) -> Any:
            mem = pool.malloc(size)
            used = pool.used_bytes()
            if used > box.peak:
                box.peak = used
            return mem

        cupy.cuda.set_allocator(malloc)
        return self

    def __exit__(self, *exc: object) -> None:
        self._cupy.cuda.set_allocator(self.pool.malloc)
        self.peak = max(self.peak, int(self.pool.used_bytes()))
        self.held = int(self.pool.total_bytes())

    @property
    def bytes(self) -> int:
        return int(self.peak)


class TorchCudaPeak:
    """``torch.cuda.max_memory_allocated`` over the block (after ``reset_peak_memory_stats``)."""

    source = "torch_max_memory_allocated"

    def __init__(self, device: Any) -> None:
        self.device = device

    def __enter__(self) -> TorchCudaPeak:
        import torch

        self._torch = torch
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        self.base = int(torch.cuda.memory_allocated(self.device))
        return self

    def __exit__(self, *exc: object) -> None:
        torch = self._torch
        torch.cuda.synchronize(self.device)
        self.peak = int(torch.cuda.max_memory_allocated(self.device))
        self.held = int(torch.cuda.max_memory_reserved(self.device))

    @property
    def bytes(self) -> int:
        return self.peak


# ----------------------------------------------------------------------------- harness
@dataclass
class StepInfo:
    """One training step: mean loss, spikes per hidden neuron and example (None when not
    counted), whether the optimiser ran (skipped when a gradient was not finite) and, for
    EventProp, the fraction of hidden spikes skipped as grazing (``J - u <= 0``)."""

    loss: float
    spikes: float | None
    updated: bool
    grazing_frac: float | None = None


@dataclass
class Runner:
    """One framework set up for one configuration: ``step(inputs, labels, count) ->
    StepInfo`` runs one training step (synchronised); ``memory()`` a peak-memory context."""

    step: Callable[[np.ndarray, np.ndarray, bool], StepInfo]
    memory: Callable[[], Any]
    engine: str
    device: str
    extra: dict[str, Any]


def measure(
    runner_factory: Callable[[], Runner], batches: list[tuple[np.ndarray, np.ndarray]]
) -> dict[str, Any]:
    """Set up, warm up on batch 0, time batches 1.., then measure memory on batch 0 again."""
    t0 = time.perf_counter()
    runner = runner_factory()
    setup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    warm = runner.step(*batches[0][:2], True, batches[0][2])
    warm_s = time.perf_counter() - t0
    times, infos = [], []
    for x, y, spikes in batches[1:]:
        t0 = time.perf_counter()
        infos.append(runner.step(x, y, False, spikes))
        times.append(time.perf_counter() - t0)
    with runner.memory() as mem:
        last = runner.step(*batches[0][:2], True, batches[0][2])
    tracemalloc_peak = None
    if runner.engine == "numpy":  # NumPy reports its buffers to tracemalloc: exact, slower
        tracemalloc.start()
        runner.step(*batches[0][:2], False, batches[0][2])
        tracemalloc_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    arr = np.asarray(times)
    spikes = [i.spikes for i in infos if i.spikes is not None]
    return {
        "engine": runner.engine,
        "device": runner.device,
        "setup_s": setup_s,
        "warmup_s": warm_s,
        "timed_batches": int(arr.size),
        "batch_time_s": float(arr.mean()),
        "batch_time_min_s": float(arr.min()),
        "batch_time_max_s": float(arr.max()),
        "peak_mem_mib": mem.bytes / MIB,
        "peak_mem_source": mem.source,
        "peak_mem_base_mib": None if mem.source == RssPeak.source else mem.base / MIB,
        "held_mem_mib": getattr(mem, "held", None) and mem.held / MIB,
        "tracemalloc_peak_mib": tracemalloc_peak and tracemalloc_peak / MIB,
        "warmup_loss": warm.loss,
        "warmup_spikes_per_hidden_neuron": warm.spikes,
        "warmup_grazing_skipped_frac": warm.grazing_frac,
        "spikes_per_hidden_neuron": last.spikes,
        "timed_spikes_per_hidden_neuron": float(np.mean(spikes)) if spikes else None,
        "loss_first_timed": infos[0].loss if infos else None,
        "loss_last_timed": infos[-1].loss if infos else None,
        "memory_batch_loss": last.loss,
        "updates_skipped_nonfinite": sum(not i.updated for i in [warm, *infos, last]),
        "steps_run": len(infos) + 2,
        **runner.extra,
    }


# ----------------------------------------------------------------------------- ours
METHODS = {"eventprop": "EventProp (exact gradients)",
           "bptt": "surrogate-gradient BPTT (fast sigmoid, beta 100; generated kernels)",
           "eprop": "e-prop (triangle pseudo-derivative; its gradient in reverse time, "
                    "generated kernels)",
           "eprop_online": "e-prop (forward-time eligibility traces per synapse, triangle "
                           "pseudo-derivative; generated kernels)"}


def eventprop_runner(cfg: Config, engine: str, seed: int, rule: str = "eventprop",
                     threads: int | None = None) -> Runner:
    """Our network of ``rule`` + Adam on ``engine`` (its generated kernels: numpy, cpp,
    cupy), on ``threads`` CPU threads (the cpp engine; None: ``$GPUSPIKE_THREADS`` or all)."""
    from gpuspike.engine.rules.network import make_network
    from gpuspike.engine.training.loop import TrainingError
    from gpuspike.engine.training.optim import Adam
    from gpuspike.engine.training.protocol import Batch

    ir, params = initial_weights(cfg, seed)
    net = make_network(rule.removesuffix("_online"), ir, params, engine=engine,
                       dtype=np.float32, threads=threads, online=rule == "eprop_online")
    opt = Adam(LR)
    name = net.backend.name
    index = np.arange(cfg.batch_size)

    def sync() -> None:
        if name == "cupy":
            net.xp.cuda.get_current_stream().synchronize()

    def step(x: np.ndarray, y: np.ndarray, count: bool, spikes: Any = None) -> StepInfo:
        try:
            r = net.loss_and_grad(Batch(inputs=x, labels=y, index=index, spikes=spikes))
        except TrainingError:  # non-finite gradients: no update (counted)
            return StepInfo(float("nan"), None, False, None)
        total = sum(g.sum(dtype=net.xp.float64) for g in r.grads.values())
        finite = bool(net.xp.isfinite(total))  # one host sync
        if finite:
            opt.step(net.params, r.grads)
        sync()
        spikes = r.spikes_per_neuron.get("hidden")
        n_spikes = spikes * x.shape[1] * cfg.n_hidden if spikes else 0.0
        # the passes' arrays persist between batches (allocated once per batch size), so a
        # batch's RSS growth does not see them: report their size beside it
        extra["engine_arrays_mib"] = sum(
            a.nbytes for progs in net._programs.values()
            for a in progs.arrays.values()) / MIB
        skipped = r.diagnostics.get("grazing_skipped", 0.0)
        return StepInfo(r.loss, spikes, finite, skipped / n_spikes if n_spikes else None)

    def memory() -> Any:
        if name == "cupy":
            gc.collect()
            return CupyPeak()
        return RssPeak()

    extra = {
        "framework": f"gpuspike-{rule}",
        # the device string names the engine's default; this is what ran (cpp engine)
        "cpu_threads": threads,
        "rule": rule,
        "method": METHODS[rule],
        "max_spikes": cfg.max_spikes,
        # slots per neuron after the runs (tapes grow on overflow from 32); each slot
        # holds an int32 step and the float32 crossing slope
        "ring_slots": net.ring_capacity,
    }
    return Runner(step, memory, name, device_description(name), extra)


# ----------------------------------------------------------------------------- peers
def torch_device(want: str, engine: str) -> str:
    """``auto``: cuda when our engine runs on the GPU and torch sees one, else cpu."""
    import torch

    if want != "auto":
        return want
    return "cuda" if engine == "cupy" and torch.cuda.is_available() else "cpu"


def torch_device_description(device: Any) -> str:
    import torch

    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    return device_description("numpy").replace("(NumPy", f"(torch {torch.__version__}, NumPy")


def bptt_runner(cfg: Config, impl: str, device_name: str, seed: int, compile_: bool) -> Runner:
    """The same network trained with BPTT in torch: ``impl`` "snntorch" (snntorch.Synaptic
    neurons) or "torch" (the same equations in plain torch); same surrogate for both."""
    import snntorch
    import torch
    import torch.nn.functional as F
    from gpuspike.bridge.adjoint import step_propagators
    from snntorch import surrogate

    device = torch.device(device_name)
    _, params = initial_weights(cfg, seed)
    prop = step_propagators(TAU_M, TAU_S, cfg.dt)
    a_m, b_s, p_vi = prop.alpha, prop.beta, prop.p_vi
    spike_fn = surrogate.fast_sigmoid(slope=SURROGATE_SLOPE)
    n_steps, T = cfg.n_steps, cfg.n_steps * cfg.dt
    t = torch.arange(1, n_steps + 1, dtype=torch.float32) * cfg.dt
    readout_w = (torch.exp(-t / T) * cfg.dt / T).to(device)[:, None, None]

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()

            def w(key: str) -> torch.nn.Parameter:
                return torch.nn.Parameter(torch.tensor(params[key], dtype=torch.float32))

            self.w_in, self.w_rec, self.w_out = (
                w("in->hidden.w"),
                w("hidden->hidden.w"),
                w("hidden->out.w"),
            )
            if impl == "snntorch":
                self.lif = snntorch.Synaptic(
                    alpha=b_s,
                    beta=a_m,
                    threshold=THETA,
                    spike_grad=spike_fn,
                    reset_mechanism="zero",
                    reset_delay=False,
                )
                self.li = snntorch.Synaptic(
                    alpha=b_s,
                    beta=a_m,
                    threshold=THETA,
                    spike_grad=spike_fn,
                    reset_mechanism="none",
                    reset_delay=False,
                )

        def step(self, drive_h, drive_o, syn_h, mem_h, syn_o, mem_o):
            if impl == "snntorch":
                s, syn_h, mem_h = self.lif(drive_h, syn_h, mem_h)
                _, syn_o, mem_o = self.li(drive_o, syn_o, mem_o)
                return s, syn_h, mem_h, syn_o, mem_o
            syn_h = b_s * syn_h + drive_h
            mem_h = a_m * mem_h + syn_h
            s = spike_fn(mem_h - THETA)
            mem_h = mem_h - s * mem_h
            syn_o = b_s * syn_o + drive_o
            mem_o = a_m * mem_o + syn_o
            return s, syn_h, mem_h, syn_o, mem_o

        def forward(self, x: torch.Tensor, count: bool) -> tuple[torch.Tensor, torch.Tensor]:
            batch = x.shape[1]
            # P W_in x[n - 1] at step n: one product, then views (unbind: a single stacked
            # gradient in the backward pass, where indexing drive_in[n] would add a full-size
            # zero gradient per step)
            drive_in = (p_vi * (x @ self.w_in.T)).unbind(0)
            zeros_h = x.new_zeros(batch, cfg.n_hidden)
            zeros_o = x.new_zeros(batch, cfg.n_out)
            syn_h, mem_h, syn_o, mem_o, s = zeros_h, zeros_h, zeros_o, zeros_o, zeros_h
            spikes = x.new_zeros(()) if count else None
            v = []
            for n in range(1, n_steps + 1):
                drive_o = p_vi * (s @ self.w_out.T)
                if n == n_steps:  # hidden spikes of step N reach nothing (as ours)
                    syn_o = b_s * syn_o + drive_o
                    mem_o = a_m * mem_o + syn_o
                else:
                    drive_h = drive_in[n - 1] + p_vi * (s @ self.w_rec.T)
                    s, syn_h, mem_h, syn_o, mem_o = step_fn(
                        drive_h, drive_o, syn_h, mem_h, syn_o, mem_o
                    )
                    if count:
                        spikes = spikes + s.detach().sum()
                v.append(mem_o)
            z = (readout_w * torch.stack(v)).sum(dim=0)
            return z, spikes

    model = Net().to(device)
    step_fn = torch.compile(model.step) if compile_ else model.step
    opt = torch.optim.Adam(model.parameters(), lr=LR)

    def step(x: np.ndarray, y: np.ndarray, count: bool, spikes: Any = None) -> StepInfo:
        xt = torch.from_numpy(x).to(device)
        yt = torch.from_numpy(y).to(device)
        opt.zero_grad(set_to_none=True)
        z, spikes = model(xt, count)
        loss = F.cross_entropy(z, yt)
        loss.backward()
        total = sum(p.grad.sum(dtype=torch.float64) for p in model.parameters())
        finite = bool(torch.isfinite(total))  # one host sync, as ours
        if finite:
            opt.step()
        value = float(loss.item())
        if spikes is None:
            return StepInfo(value, None, finite)
        return StepInfo(value, float(spikes.item()) / (x.shape[1] * cfg.n_hidden), finite)

    def memory() -> Any:
        if device.type == "cuda":
            return TorchCudaPeak(device)
        return RssPeak()

    label = "snntorch" if impl == "snntorch" else "torch"
    return Runner(
        step,
        memory,
        label,
        torch_device_description(device),
        {
            "framework": f"{label}-bptt",
            "method": f"BPTT, fast_sigmoid surrogate (slope {SURROGATE_SLOPE:g})",
            "torch_device": str(device),
            "torch_version": torch.__version__,
            "snntorch_version": snntorch.__version__,
            "compiled": bool(compile_),
        },
    )


def peers_available() -> tuple[bool, str]:
    try:
        import snntorch
        import torch
    except Exception as exc:  # noqa: BLE001 - a broken install is reported, not raised
        return False, f"torch/snntorch not importable ({exc.__class__.__name__}: {exc})"
    return True, f"torch {torch.__version__}, snntorch {snntorch.__version__}"


# ----------------------------------------------------------------------------- main
def free_device_memory(engine: str, torch_device: str | None) -> None:
    """Give pooled device memory back between frameworks (GPU runs only)."""
    if engine == "cupy":
        import cupy

        gc.collect()
        cupy.get_default_memory_pool().free_all_blocks()
    if torch_device is not None and torch_device.startswith("cuda"):
        import torch

        gc.collect()
        torch.cuda.empty_cache()


def limit_threads(n: int | None) -> None:
    """At most ``n`` CPU threads for torch and NumPy's BLAS (threadpoolctl, if installed)."""
    if not n:
        return
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:
        log("  --threads: threadpoolctl is not installed; NumPy's BLAS threads unchanged")
    if "torch" in sys.modules or peers_available()[0]:
        import torch

        torch.set_num_threads(n)


def parse_args(argv: list[str] | None) -> Any:
    p = make_parser(__doc__.splitlines()[0])
    p.set_defaults(precision="float32")
    p.add_argument("--dt", type=float, nargs="+", default=None, help="steps in ms (1 5)")
    p.add_argument("--batches", type=int, default=None, help="timed batches per config (10)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--hidden", type=int, default=None, help="recurrent LIF neurons (256)")
    p.add_argument("--max-spikes", type=int, default=None, help="ring slots per neuron")
    p.add_argument("--device", default="auto", help="torch device (auto: as --engine)")
    p.add_argument(
        "--peers",
        nargs="*",
        choices=("snntorch", "torch"),
        default=None,
        help="BPTT peers (default: snntorch torch)",
    )
    p.add_argument("--no-peers", action="store_true", help="time our engine only")
    p.add_argument("--rules", nargs="+", choices=tuple(METHODS),
                   default=["eventprop"],
                   help="our training rules to time (the first is compared with the peers)")
    p.add_argument("--compile", action="store_true", help="torch.compile the peers' step")
    p.add_argument(
        "--threads", type=int, default=None, help="CPU threads of torch and NumPy's BLAS"
    )
    p.add_argument("--train", default=None, help="an SHD .h5 file instead of synthetic data")
    p.add_argument(
        "--epoch-samples",
        type=int,
        default=SHD_TRAIN_SAMPLES,
        help="samples of the epoch that the time is extrapolated to",
    )
    args = p.parse_args(argv)
    if args.precision != "float32":
        log(
            f"train_shd measures float32 only (both frameworks); --precision {args.precision} "
            "ignored"
        )
    q = args.quick
    args.duration = args.duration if args.duration is not None else (0.05 if q else 1.0)
    args.dt = args.dt or [1.0, 5.0]
    args.batches = args.batches if args.batches is not None else (2 if q else 10)
    args.hidden = args.hidden or (64 if q else 256)
    if args.peers is None:
        args.peers = ["snntorch", "torch"]
    if args.no_peers:
        args.peers = []
    return args


def report(res: dict[str, Any], common: dict[str, Any], note: str) -> dict[str, Any]:
    """Add the extrapolated epoch time to one framework's figures, log and emit its line."""
    res["epoch_time_s"] = res["batch_time_s"] * common["epoch_batches"]
    grazing = res.get("warmup_grazing_skipped_frac")
    log(
        f"  {res['framework']} dt {common['dt_ms']} ms ({res['device']}): "
        f"{res['batch_time_s']:.4g} s/batch -> {res['epoch_time_s']:.4g} s/epoch, "
        f"peak {res['peak_mem_mib']:.4g} MiB ({res['peak_mem_source']}), spikes/neuron "
        f"{res['spikes_per_hidden_neuron']:.3g}, warm-up loss {res['warmup_loss']:.5g}, "
        f"updates skipped (non-finite) {res['updates_skipped_nonfinite']}/{res['steps_run']}"
        + (f", grazing spikes skipped {grazing:.2%}" if grazing is not None else "")
    )
    emit(bench="train_shd", **{**common, **res}, note=note)
    return res


def run_config(
    args: Any, cfg: Config, batches: list, engine: str, device: str | None, peers: tuple
) -> None:
    """Ours, then each peer, on the same batches; the ``train_shd`` and ratio lines."""
    ok, why = peers
    epoch_batches = math.ceil(args.epoch_samples / args.batch_size)
    common = {
        "dt_ms": cfg.dt_ms,
        "n_steps": cfg.n_steps,
        "n_in": cfg.n_in,
        "hidden": cfg.n_hidden,
        "n_out": cfg.n_out,
        "batch_size": cfg.batch_size,
        "precision": "float32",
        "data": args.data,
        "input_spikes_per_sample": float(np.mean([x.sum() / x.shape[1] for x, *_ in batches])),
        "input_batch_mib": batches[0][0].nbytes / MIB,
        "epoch_batches": epoch_batches,
    }
    note = (
        f"epoch_time_s extrapolated: mean of {len(batches) - 1} timed batches x "
        f"{epoch_batches} batches ({args.epoch_samples} samples / batch {args.batch_size})"
    )
    log(f"== dt {cfg.dt_ms} ms: {cfg.n_steps} steps, {len(batches) - 1} timed batches")
    ours = None
    for rule in args.rules:
        res = report(measure(functools.partial(eventprop_runner, cfg, engine, args.seed, rule,
                                               args.threads), batches),
                     common, note)
        ours = ours or res
        free_device_memory(engine, device)
    for peer in args.peers:
        res, skip = None, None if ok else why
        if ok:
            try:
                factory = functools.partial(bptt_runner, cfg, peer, device, args.seed, args.compile)
                res = report(measure(factory, batches), common, note)
            except Exception as exc:  # noqa: BLE001 - the peer failing must not hide ours
                skip = f"{peer} failed: {exc.__class__.__name__}: {exc}"
            free_device_memory(engine, device)
        if res is None:
            log(f"  {peer} skipped: {skip}")
            emit(
                bench="train_shd",
                engine=peer,
                framework=f"{peer}-bptt",
                device=str(device),
                **common,
                skipped=skip,
            )
        emit_ratio(ours, res or {}, peer, cfg, note, skip)


def emit_ratio(
    ours: dict[str, Any], r: dict[str, Any], peer: str, cfg: Config, note: str, skip: str | None
) -> None:
    """The ``train_shd_ratio`` line of one peer (None figures where it was skipped)."""
    speedup = ratio(r.get("epoch_time_s"), ours["epoch_time_s"])
    mem_ratio = ratio(r.get("peak_mem_mib"), ours["peak_mem_mib"])
    loss_diff = None
    if r.get("warmup_loss") is not None:
        loss_diff = abs(r["warmup_loss"] - ours["warmup_loss"]) / abs(ours["warmup_loss"])
    emit(
        bench="train_shd_ratio",
        engine=ours["engine"],
        device=ours["device"],
        peer=f"{peer}-bptt",
        peer_device=r.get("device"),
        dt_ms=cfg.dt_ms,
        n_steps=cfg.n_steps,
        hidden=cfg.n_hidden,
        batch_size=cfg.batch_size,
        speedup=speedup,
        memory_ratio=mem_ratio,
        our_epoch_time_s=ours["epoch_time_s"],
        peer_epoch_time_s=r.get("epoch_time_s"),
        our_peak_mem_mib=ours["peak_mem_mib"],
        peer_peak_mem_mib=r.get("peak_mem_mib"),
        peak_mem_source=ours["peak_mem_source"],
        warmup_loss_rel_diff=loss_diff,
        warmup_spikes_ratio=ratio(
            r.get("warmup_spikes_per_hidden_neuron"), ours["warmup_spikes_per_hidden_neuron"]
        ),
        our_grazing_skipped_frac=ours["warmup_grazing_skipped_frac"],
        our_updates_skipped_nonfinite=ours["updates_skipped_nonfinite"],
        peer_updates_skipped_nonfinite=r.get("updates_skipped_nonfinite"),
        goal_speedup=GOAL_SPEEDUP,
        goal_memory_ratio=GOAL_MEMORY,
        meets_goal=None
        if speedup is None or mem_ratio is None
        else bool(speedup >= GOAL_SPEEDUP and mem_ratio >= GOAL_MEMORY),
        skipped=skip,
        **ANCHORS,
        anchor_note=ANCHOR_NOTE,
        note=f"speedup = peer epoch time / ours, memory_ratio = peer peak / ours; {note}",
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    engine = resolve_engine(args.engine)
    peers = peers_available() if args.peers else (False, "--no-peers")
    limit_threads(args.threads)
    n_batches = args.batches + 1  # + the warm-up batch (batch 0, reused for memory)
    ds, args.data = load_data(args, n_batches * args.batch_size)
    n_out = int(ds.labels.max()) + 1 if args.train else N_OUT
    device = torch_device(args.device, engine) if peers[0] else None
    log(
        f"train_shd: {args.data}, engine {engine}, torch device {device}, peers {args.peers}: "
        f"{peers[1]}"
    )
    for dt_ms in args.dt:
        dt = dt_ms * MS
        n_steps = max(1, round(args.duration / dt))
        max_spikes = args.max_spikes or min(1500, n_steps)
        cfg = Config(dt, n_steps, ds.n_channels, args.hidden, n_out, args.batch_size, max_spikes)
        batches = host_batches(ds, cfg, n_batches)
        if len(batches) < 2:
            raise SystemExit(f"need at least 2 batches of {args.batch_size}, have {len(batches)}")
        run_config(args, cfg, batches, engine, device, peers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
