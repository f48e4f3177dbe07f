"""Spike arrays whose elements spike more than once within one time step.

A spike train written as an array (a Poisson process by exponential intervals, several
sources merged into one array) can put two spikes of one element into one step of the
simulation grid. NEST delivers them as one event with multiplicity 2: every synapse the
element reaches takes its weight twice, and a spike recorder lists both spikes. The engine
already carries multiplicities (:attr:`~gpuspike.bridge.ir.SpikeArraySourceIR.counts`), so
such spikes become one event whose count is their number; the schedule itself
(:meth:`~.runtime.Simulation._schedule`) then holds each element at most once per step.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from gpuspike.bridge import ir

__all__ = ["merge_repeated_spikes"]


def _merged(src: ir.SpikeArraySourceIR, dt: float) -> ir.SpikeArraySourceIR:
    times = np.asarray(src.times, dtype=np.float64)
    idx = np.asarray(src.indices, dtype=np.int64)
    if times.shape != idx.shape or idx.size < 2:
        return src  # the schedule reports malformed arrays with the source's name
    steps = np.round(times / dt).astype(np.int64)  # the schedule's rounding
    key = steps * max(1, src.size) + idx
    unique, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    if unique.size == key.size:
        return src
    each = np.ones(idx.size) if src.counts is None else np.asarray(src.counts, dtype=float)
    counts = np.bincount(inverse.reshape(-1), weights=each, minlength=unique.size)
    return dataclasses.replace(src, times=times[first], indices=idx[first],
                               counts=np.round(counts).astype(np.int64))


def merge_repeated_spikes(net: ir.NetworkIR) -> ir.NetworkIR:
    """``net`` with every spike array's repeated (element, step) spikes merged into one
    event of that multiplicity (unchanged where no element spikes twice in a step)."""
    sources = tuple(_merged(s, net.dt) if isinstance(s, ir.SpikeArraySourceIR) else s
                    for s in net.sources)
    if all(a is b for a, b in zip(sources, net.sources)):
        return net
    return dataclasses.replace(net, sources=sources)
