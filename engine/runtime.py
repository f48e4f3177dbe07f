"""Runtime: build a network on the device and run it step by step, in chunks.

``Simulation(net).run(steps)`` does, once: pick the engine, build connectivity on the
device, lower the IR, generate and compile the code, allocate and initialise memory. Then
per chunk of ``K`` steps: set the recording origin, run the ``K`` steps (on CuPy a CUDA graph
of ``K x (kernels + advance)`` launches captured once per chunk length and replayed; every
per-step quantity lives on the device), and pull the monitor buffers to the host.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gpuspike.bridge import ir
from gpuspike.bridge.errors import ModelError, RingBufferOverflow
from gpuspike.bridge.passes import validate

from . import cable, endpoints
from . import connectivity as conn
from . import kernel_ir as k
from .backend import Backend, select_backend
from .lower import ConnShape, array_name, has_multiplicity, lower, population_variables
from .memory import allocate, dtype_of, evaluate_initializer
from .programs import make_program
from .spike_arrays import merge_repeated_spikes


@dataclass
class SpikeRecord:
    """Events recorded by an event/spike monitor (host arrays, in time order per batch)."""

    i: np.ndarray
    t: np.ndarray
    batch: np.ndarray
    values: dict[str, np.ndarray] = field(default_factory=dict)

    def count(self, n: int, batch: int = 0) -> np.ndarray:
        """Events per element (``n`` elements) of one batch entry."""
        return np.bincount(self.i[self.batch == batch], minlength=n)


@dataclass
class StateRecord:
    """Samples of a state monitor: ``values[var]`` has shape (batch, samples, indices)."""

    t: np.ndarray
    indices: np.ndarray
    values: dict[str, np.ndarray]


@dataclass
class _Recorder:
    """Host-side accumulation of one monitor's chunks."""

    monitor: ir.Monitor
    chunks: list = field(default_factory=list)
    times: list = field(default_factory=list)


class Simulation:
    """A network built on the engine, ready to run.

    Parameters
    ----------
    net : NetworkIR
        The network.
    engine : {'auto', 'numpy', 'cpp', 'cupy'}
        ``auto``: CuPy where a CUDA device is usable, else C++ where a compiler works,
        else NumPy.
    chunk_steps : int
        Steps per chunk (CUDA graph length and monitor buffer length).
    use_graphs : bool
        CuPy: replay chunks as CUDA graphs.
    threads : int, optional
        C++: OpenMP threads (default ``$GPUSPIKE_THREADS``, else every core).
    """

    def __init__(self, net: ir.NetworkIR, engine: str = "auto", chunk_steps: int = 250,
                 use_graphs: bool = True, threads: int | None = None) -> None:
        t0 = time.perf_counter()
        net = merge_repeated_spikes(net)
        self.net = net
        self.backend: Backend = select_backend(engine)
        self.xp = self.backend.xp
        self.step = 0
        self.B = net.batch_size
        self.use_graphs = use_graphs
        self.threads = threads
        self.timings: dict[str, float] = {}
        self._check_names()
        validate(net)
        # connectivity first: the kernels need its sizes
        self.rows: dict[str, conn.SparseRows] = {}
        self._user_order: dict[str, np.ndarray] = {}
        shapes, colmaps = self._build_connectivity()
        self.shapes = shapes
        self._endpoint_names = endpoints.used_as_endpoint(net)
        self.timings["connectivity_s"] = time.perf_counter() - t0
        schedules = {src.name: self._schedule(src) for src in net.sources
                     if isinstance(src, ir.SpikeArraySourceIR)}
        self.chunk_steps = self._chunk_length(chunk_steps)
        self.plan: k.Plan = lower(net, shapes, {n: len(o) - 1 for n, (o, *_) in
                                                schedules.items()},
                                  monitor_capacity=self._capacity)
        self.arrays = allocate(self.plan, self.xp)
        self.arrays["__seed"][...] = np.array(net.seed & 0xFFFFFFFFFFFFFFFF,
                                              dtype=np.uint64).view(np.int64)
        self._init_state(shapes)
        self._fill_connectivity(shapes, colmaps)
        self._fill_inputs(schedules)
        self.timings["build_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        self._compile()
        self.timings["compile_s"] = time.perf_counter() - t1
        self._recorders = {m.name: _Recorder(m) for m in net.monitors}

    # ------------------------------------------------------------------ building
    def _build_connectivity(self) -> tuple[dict[str, ConnShape], dict[str, tuple]]:
        """Build every synapse group's rows on the device; note the user's synapse order
        (row-major, or list order for FromList) as padded indices. A synapse group whose
        side is another synapse group is built after it (its synapses are that side)."""
        shapes: dict[str, ConnShape] = {}
        colmaps: dict[str, tuple] = {}
        n_synapses: dict[str, int] = {}
        for s in endpoints.build_order(self.net):
            n_pre = endpoints.endpoint_size(self.net, s.pre, n_synapses)
            n_post = endpoints.endpoint_size(self.net, s.post, n_synapses)
            rows = conn.build(s.connector, n_pre, n_post, xp=self.xp, seed=self.net.seed,
                              stream=zlib.crc32(f"connect {s.name}".encode()),
                              same_group=s.pre == s.post, name=s.name,
                              condition_evaluator=None, max_bytes=self._free_bytes())
            self.rows[s.name] = rows
            max_col = 1
            if any(pw.source == "post" for pw in s.pathways):
                colmaps[s.name] = conn.column_map(rows)
                max_col = max(1, int(colmaps[s.name][1]))
            shapes[s.name] = ConnShape(n_pre, n_post, max(1, int(rows.max_row)), max_col,
                                       int(rows.n_synapses))
            n_synapses[s.name] = int(rows.n_synapses)
            padded = self._to_host(rows.padded_index())
            if isinstance(s.connector, ir.FromList):
                # rows keep list order within a row: list entry order[k] is synapse k
                order = np.argsort(np.asarray(s.connector.i, dtype=np.int64), kind="stable")
                user = np.empty_like(padded)
                user[order] = padded
                padded = user
            self._user_order[s.name] = padded
        return shapes, colmaps

    def _fill_connectivity(self, shapes: dict[str, ConnShape], colmaps: dict) -> None:
        xp = self.xp
        for s in self.net.synapses:
            rows, sh = self.rows[s.name], shapes[s.name]
            self.arrays[array_name(s.name, "rowlen")][...] = rows.row_length
            cols = xp.zeros((sh.n_pre, sh.max_row), dtype=xp.int32)
            if rows.max_row:
                cols[:, :rows.max_row] = xp.maximum(rows.cols, 0)
            self.arrays[array_name(s.name, "cols")][...] = cols.reshape(-1)
            if s.name in colmaps:
                col_length, max_col, remap = colmaps[s.name]
                self.arrays[array_name(s.name, "collen")][...] = col_length
                rm = xp.zeros((sh.n_post, sh.max_col), dtype=xp.int32)
                if max_col:
                    rm[:, :max_col] = xp.maximum(remap, 0)
                self.arrays[array_name(s.name, "remap")][...] = rm.reshape(-1)
            self.arrays[f"{s.name}__valid"] = rows.padded_index()
            if s.name in self._endpoint_names:  # another synapse group connects these
                i, j = self.connectivity(s.name)
                for name, values in ((endpoints.SLOT, self._user_order[s.name]),
                                     (endpoints.PRE_INDEX, i), (endpoints.POST_INDEX, j)):
                    self.arrays[array_name(s.name, name)][:values.size] = xp.asarray(
                        values, dtype=xp.int32)

    def _fill_inputs(self, schedules: dict[str, tuple]) -> None:
        """Spike schedules, monitor index lists, timed-array values, cable coefficients."""
        xp = self.xp
        for name, (offsets, indices, counts) in schedules.items():
            self.arrays[array_name(name, "offsets")][...] = xp.asarray(offsets)
            if len(indices):
                self.arrays[array_name(name, "indices")][...] = xp.asarray(indices)
                if counts is not None:
                    self.arrays[array_name(name, "counts")][...] = xp.asarray(counts)
        for m in self.net.monitors:
            if isinstance(m, ir.StateMonitorIR):
                size = self._monitor_size(m)
                idx = np.arange(size) if m.indices is None else np.asarray(m.indices)
                if idx.size and (idx.min() < 0 or idx.max() >= size):
                    raise ModelError(f"monitor {m.name!r}: indices must lie in [0, {size})")
                if m.source in self._user_order:  # synapses: user order -> padded slots
                    idx = self._user_order[m.source][idx]
                self.arrays[f"{m.name}__idx"][...] = xp.asarray(idx, dtype=xp.int32)
        for ta in self.net.timed_arrays:
            self.arrays[array_name("timed", ta.name)][...] = xp.asarray(
                np.asarray(ta.values, dtype=np.float64).reshape(-1))
        for c in self.net.cables:  # the morphology's coefficients, computed once
            for name, values in cable.constants(c).items():
                self.arrays[cable.name(c.name, name)][...] = xp.asarray(values)

    # ------------------------------------------------------------------ set-up helpers
    def _check_names(self) -> None:
        names = [g.name for g in (*self.net.groups, *self.net.sources, *self.net.synapses,
                                  *self.net.cables)]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ModelError(f"object names must be unique; repeated: {sorted(dup)}")
        for n in names:
            if "__" in n or not n.isidentifier():
                raise ModelError(f"object name {n!r} must be an identifier without '__'")

    def _monitor_size(self, m: ir.Monitor) -> int:
        """Elements of a monitor's source (neurons, or synapses in the user's order)."""
        if m.source in self._user_order:
            return int(self._user_order[m.source].size)
        return self.net.population(m.source).size

    def _free_bytes(self) -> int | None:
        """Free device memory (None on the CPU): connectivity larger than this is refused
        with a GpuMemoryError that gives the estimate."""
        if not self.backend.is_gpu:
            return None
        return int(self.xp.cuda.runtime.memGetInfo()[0] * 0.9)

    def _to_host(self, a: Any) -> np.ndarray:
        return a.get() if hasattr(a, "get") else np.asarray(a)

    def _schedule(self, src: ir.SpikeArraySourceIR
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(offsets by step, indices, multiplicities or None) of a spike-array source."""
        dt = self.net.dt
        times = np.asarray(src.times, dtype=np.float64)
        idx = np.asarray(src.indices, dtype=np.int64)
        if times.shape != idx.shape:
            raise ModelError(f"spike source {src.name!r}: {times.size} times but {idx.size} "
                             "indices")
        if idx.size and (idx.min() < 0 or idx.max() >= src.size):
            raise ModelError(f"spike source {src.name!r}: indices must lie in [0, {src.size})")
        steps = np.round(times / dt).astype(np.int64)
        if steps.size and steps.min() < 0:
            raise ModelError(f"spike source {src.name!r}: negative spike times")
        if src.period > 0:
            period = int(round(src.period / dt))
            if steps.size and steps.max() >= period:
                raise ModelError(f"spike source {src.name!r}: spike times must be shorter "
                                 f"than the period {src.period} s")
        counts = None
        if src.counts is not None:
            counts = np.asarray(src.counts)
            if counts.shape != idx.shape or (counts.size and (
                    counts.min() < 1 or np.any(counts != np.round(counts)))):
                raise ModelError(f"spike source {src.name!r}: counts must be whole numbers "
                                 ">= 1, one per spike")
        order = np.lexsort((idx, steps))
        steps, idx = steps[order], idx[order]
        if counts is not None:
            counts = counts[order].astype(np.int32)
        # each (step, element) is there once: merge_repeated_spikes ran in __init__
        n_steps = int(steps.max()) + 1 if steps.size else 0
        if src.period > 0:
            n_steps = int(round(src.period / dt))
        offsets = np.searchsorted(steps, np.arange(n_steps + 1)).astype(np.int32)
        return offsets, idx.astype(np.int32), counts

    def _chunk_length(self, requested: int) -> int:
        """Chunk length: requested, reduced so that event lists with variables stay small."""
        K = max(1, int(requested))
        for m in self.net.monitors:
            if self._listed(m):
                n = self.net.population(m.source).size
                K = max(1, min(K, (1 << 22) // max(1, n)))
        return K

    def _listed(self, m: ir.Monitor) -> bool:
        """An event monitor that lists its events (with variables, or multiplicities)
        rather than setting one bit per element and step."""
        return isinstance(m, ir.EventMonitorIR) and bool(
            m.variables or has_multiplicity(self.net.population(m.source), m.event))

    def _capacity(self, m: ir.Monitor) -> int:
        K = self.chunk_steps
        if isinstance(m, ir.StateMonitorIR):
            return K // m.every + 1
        if self._listed(m):
            return K * self.net.population(m.source).size
        return K

    def _init_state(self, shapes: dict[str, ConnShape]) -> None:
        xp, B, net = self.xp, self.B, self.net
        for pop in (*net.groups, *net.sources):
            params = {p.name: p.value for p in getattr(pop, "parameters", ())}
            for v in population_variables(pop):
                if v.linked is not None:
                    continue
                name = array_name(pop.name, v.name)
                arr = self.arrays[name]
                shape = arr.shape
                i_idx = xp.arange(pop.size)
                vals = evaluate_initializer(
                    v.init, xp=xp, shape=shape, dtype=arr.dtype,
                    index_values={} if v.shared else {"i": i_idx},
                    constants={"N": pop.size, **params}, seed=net.seed,
                    stream_name=f"init {name}", what=f"{pop.name}.{v.name}")
                arr[...] = vals
        for s in net.synapses:
            sh = shapes[s.name]
            padded = xp.asarray(self._user_order[s.name])
            n_syn = int(padded.size)
            params = {p.name: p.value for p in s.parameters}
            i_idx = padded // sh.max_row
            j_idx = self.rows[s.name].cols.reshape(-1)[padded] if n_syn else padded
            for v in s.variables:
                name = array_name(s.name, v.name)
                arr = self.arrays[name]
                if v.shared:
                    arr[...] = evaluate_initializer(
                        v.init, xp=xp, shape=arr.shape, dtype=arr.dtype, index_values={},
                        constants={"N": n_syn, **params}, seed=net.seed,
                        stream_name=f"init {name}", what=f"{s.name}.{v.name}")
                    continue
                shape = (B, n_syn) if v.batched else (n_syn,)
                vals = evaluate_initializer(
                    v.init, xp=xp, shape=shape, dtype=arr.dtype,
                    index_values={"i": i_idx, "j": j_idx},
                    constants={"N": n_syn, "N_pre": sh.n_pre, "N_post": sh.n_post, **params},
                    seed=net.seed, stream_name=f"init {name}", what=f"{s.name}.{v.name}")
                if v.batched:
                    arr[:, padded] = vals
                else:
                    arr[padded] = vals

    def _compile(self) -> None:
        self.program = make_program(self.backend, self.plan, self.arrays,
                                    threads=self.threads, use_graphs=self.use_graphs)
        self.source = self.program.source

    # ------------------------------------------------------------------ running
    def run(self, steps: int | None = None, *, duration: float | None = None) -> None:
        """Advance the network by ``steps`` steps (or ``duration`` seconds)."""
        if steps is None:
            if duration is None:
                raise ValueError("run() needs steps or duration")
            steps = int(round(duration / self.net.dt))
        t0 = time.perf_counter()
        done = 0
        while done < steps:
            n = min(self.chunk_steps, steps - done)
            self._run_chunk(n)
            done += n
        self.program.sync()
        self.timings["last_run_s"] = time.perf_counter() - t0

    def _run_chunk(self, n: int) -> None:
        origin = self.step
        self.arrays["__origin"][...] = origin
        self._clear_monitor_buffers()
        self.program.run(n)
        self.step += n
        self._pull_monitors(origin, n)

    # ------------------------------------------------------------------ monitors
    def _clear_monitor_buffers(self) -> None:
        for a in self.plan.arrays:
            if a.role == "monitor" and not a.name.endswith("__idx"):
                self.arrays[a.name][...] = 0

    def _pull_monitors(self, origin: int, n: int) -> None:
        self.program.sync()
        dt, B = self.net.dt, self.B
        for m in self.net.monitors:
            rec = self._recorders[m.name]
            if isinstance(m, ir.StateMonitorIR):
                steps = np.arange(origin, origin + n)
                steps = steps[steps % m.every == 0]
                if not steps.size:
                    continue
                rows = (steps - origin) // m.every
                width = self._monitor_size(m) if m.indices is None else len(m.indices)
                chunk = {}
                for var in m.variables:
                    buf = self._to_host(self.arrays[f"{m.name}__{var}"]).reshape(B, -1, width)
                    chunk[var] = buf[:, rows, :].copy()
                rec.chunks.append(chunk)
                rec.times.append(steps * dt)
                continue
            pop = self.net.population(m.source)
            if isinstance(m, ir.RateMonitorIR):
                buf = self._to_host(self.arrays[f"{m.name}__rate"]).reshape(B, -1)
                rec.chunks.append(buf[:, :n].copy())
                rec.times.append(np.arange(origin, origin + n) * dt)
            elif isinstance(m, ir.EventMonitorIR) and not self._listed(m):
                words = (pop.size + 31) // 32
                bits = self._to_host(self.arrays[f"{m.name}__bits"]).reshape(B, -1, words)[:, :n]
                bb, rr, ii = _set_bits(bits)
                if m.indices is not None:
                    keep = np.isin(ii, np.asarray(m.indices))
                    bb, rr, ii = bb[keep], rr[keep], ii[keep]
                rec.chunks.append((ii.astype(np.int64), (origin + rr) * dt, bb.astype(np.int64),
                                   {}))
            elif isinstance(m, ir.EventMonitorIR):
                count = self._to_host(self.arrays[f"{m.name}__count"]).reshape(B)
                cap = self._capacity(m)
                if (count > cap).any():
                    raise RingBufferOverflow(
                        f"monitor {m.name!r}: {int(count.max())} events in a chunk of {n} "
                        f"steps exceed its buffer of {cap}; lower chunk_steps")
                mult = has_multiplicity(pop, m.event)
                width = 2 + len(m.variables) + mult
                ev = self._to_host(self.arrays[f"{m.name}__events"]).reshape(B, -1, width)
                parts = []
                for b in range(B):
                    e = ev[b, :count[b]]
                    e = e[np.lexsort((e[:, 1], e[:, 0]))]
                    parts.append((b, e))
                ii = np.concatenate([p[1][:, 1] for p in parts]).astype(np.int64)
                tt = np.concatenate([p[1][:, 0] for p in parts]) * dt
                bb = np.concatenate([np.full(len(p[1]), p[0]) for p in parts]).astype(np.int64)
                vals = {var: np.concatenate([p[1][:, 2 + c] for p in parts])
                        for c, var in enumerate(m.variables)}
                if m.indices is not None:
                    keep = np.isin(ii, np.asarray(m.indices))
                    ii, tt, bb = ii[keep], tt[keep], bb[keep]
                    vals = {v: a[keep] for v, a in vals.items()}
                if mult:  # an event of multiplicity n is recorded n times (as NEST does)
                    n_each = np.concatenate([p[1][:, -1] for p in parts]).astype(np.int64)
                    if m.indices is not None:
                        n_each = n_each[keep]
                    ii, tt, bb = (np.repeat(x, n_each) for x in (ii, tt, bb))
                    vals = {v: np.repeat(a, n_each) for v, a in vals.items()}
                rec.chunks.append((ii, tt, bb, vals))

    def spikes(self, monitor: str) -> SpikeRecord:
        """Everything an event/spike monitor recorded so far."""
        rec = self._recorder(monitor, ir.EventMonitorIR)
        if not rec.chunks:
            return SpikeRecord(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64),
                               {v: np.zeros(0) for v in rec.monitor.variables})
        ii = np.concatenate([c[0] for c in rec.chunks])
        tt = np.concatenate([c[1] for c in rec.chunks])
        bb = np.concatenate([c[2] for c in rec.chunks])
        vals = {v: np.concatenate([c[3][v] for c in rec.chunks]) for v in rec.monitor.variables}
        return SpikeRecord(ii, tt, bb, vals)

    def states(self, monitor: str) -> StateRecord:
        """Samples of a state monitor so far."""
        rec = self._recorder(monitor, ir.StateMonitorIR)
        m = rec.monitor
        idx = np.arange(self._monitor_size(m)) if m.indices is None else np.asarray(m.indices)
        if not rec.chunks:
            return StateRecord(np.zeros(0), idx, {v: np.zeros((self.B, 0, idx.size))
                                                  for v in m.variables})
        return StateRecord(np.concatenate(rec.times), idx,
                           {v: np.concatenate([c[v] for c in rec.chunks], axis=1)
                            for v in m.variables})

    def rates(self, monitor: str) -> tuple[np.ndarray, np.ndarray]:
        """(t, rate in Hz of shape (batch, steps)) of a population rate monitor."""
        rec = self._recorder(monitor, ir.RateMonitorIR)
        if not rec.chunks:
            return np.zeros(0), np.zeros((self.B, 0))
        return np.concatenate(rec.times), np.concatenate(rec.chunks, axis=1)

    def take(self, monitor: str) -> SpikeRecord | StateRecord | tuple:
        """What ``monitor`` recorded so far, then forget it (frontends that move the data
        into their own structures after each run use this)."""
        rec = self._recorders[monitor]
        m = rec.monitor
        if isinstance(m, ir.StateMonitorIR):
            out = self.states(monitor)
        elif isinstance(m, ir.RateMonitorIR):
            out = self.rates(monitor)
        else:
            out = self.spikes(monitor)
        rec.chunks.clear()
        rec.times.clear()
        return out

    def _recorder(self, name: str, kind: type) -> _Recorder:
        if name not in self._recorders:
            raise KeyError(f"no monitor named {name!r}; monitors: {sorted(self._recorders)}")
        rec = self._recorders[name]
        if not isinstance(rec.monitor, kind):
            raise TypeError(f"monitor {name!r} is a {type(rec.monitor).__name__}")
        return rec

    # ------------------------------------------------------------------ state access
    @property
    def t(self) -> float:
        """Simulated time in seconds (start of the next step)."""
        return self.step * self.net.dt

    def _variable_array(self, owner: str, var: str) -> tuple[Any, bool]:
        name = array_name(owner, var)
        if name not in self.arrays:
            raise KeyError(f"{owner!r} has no variable {var!r}")
        is_syn = any(s.name == owner and not s.variable(var).shared for s in self.net.synapses)
        return self.arrays[name], is_syn

    def get(self, owner: str, var: str) -> np.ndarray:
        """Host copy of a variable: (n,) or (batch, n) if batched with batch > 1; synapse
        variables in the user's synapse order (row-major, or list order for FromList)."""
        arr, is_syn = self._variable_array(owner, var)
        host = self._to_host(arr)
        if is_syn:
            order = self._user_order[owner]
            host = host[..., order]
        if host.ndim == 2 and self.B == 1:
            host = host[0]
        return host.copy()

    def set(self, owner: str, var: str, values: Any) -> None:
        """Overwrite a variable (broadcast like :meth:`get`'s shape)."""
        arr, is_syn = self._variable_array(owner, var)
        self.program.array_written(array_name(owner, var))
        vals = np.asarray(values)
        if is_syn:
            order = self.xp.asarray(self._user_order[owner])
            n = int(order.size)
            shape = (self.B, n) if arr.ndim == 2 else (n,)
            v = self.xp.asarray(np.broadcast_to(vals, shape), dtype=arr.dtype)
            arr[..., order] = v
        else:
            shape = arr.shape
            if arr.ndim == 2 and vals.ndim <= 1:
                vals = np.broadcast_to(vals, shape[1:])
            arr[...] = self.xp.asarray(np.broadcast_to(vals, shape), dtype=arr.dtype)

    def connectivity(self, synapses: str) -> tuple[np.ndarray, np.ndarray]:
        """(i, j) of every synapse of a group, in the user's synapse order."""
        order = self._user_order[synapses]
        width = self.shapes[synapses].max_row
        cols = self._to_host(self.arrays[array_name(synapses, "cols")])
        return (order // max(1, width)).astype(np.int64), cols[order].astype(np.int64)


def _set_bits(bits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(batch, row, element) of every set bit of a (batch, rows, words) uint32 bitfield,
    in that lexical order. Spikes are sparse: only the non-zero words are unpacked."""
    bb, rr, ww = np.nonzero(bits)
    words = np.ascontiguousarray(bits[bb, rr, ww], dtype="<u4")
    flags = np.unpackbits(words.view(np.uint8).reshape(-1, 4), axis=1, bitorder="little")
    kk, bit = np.nonzero(flags)
    return bb[kk], rr[kk], ww[kk].astype(np.int64) * 32 + bit


def dtype_name(d: str, precision: str) -> str:
    return str(dtype_of(d, precision))
