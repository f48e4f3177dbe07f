"""Per-neuron spike rings: the forward pass's tape of (step, J - u) at each spike.

Each (example, neuron) owns ``capacity`` slots. The forward pass writes spike ``k`` of a
neuron into slot ``k``; the backward pass reads them back newest first with a per-neuron
pointer, so no dense spike raster is ever stored (memory ``O(batch x neurons x capacity)``).
``J - u`` just before the reset is ``tau_m du/dt^-``, the denominator of the adjoint jump.
Overflow is detected after the pass (counts keep growing past the capacity, writes are
clamped) and raised, never ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

from gpuspike.bridge.errors import RingBufferOverflow


@dataclass
class SpikeRing:
    """Slots ``step[b, i, k]`` and ``i_minus_v[b, i, k]``; ``count[b, i]`` spikes written."""

    step: Any
    i_minus_v: Any
    count: Any
    name: str

    @classmethod
    def empty(cls, xp: ModuleType, batch: int, size: int, capacity: int, dtype: Any,
              name: str) -> SpikeRing:
        return cls(xp.full((batch, size, capacity), -1, dtype=xp.int32),
                   xp.zeros((batch, size, capacity), dtype=dtype),
                   xp.zeros((batch, size), dtype=xp.int32), name)

    @property
    def capacity(self) -> int:
        return int(self.step.shape[2])

    def push(self, xp: ModuleType, spiked: Any, step: int, i_minus_v: Any) -> None:
        """Record a spike of every ``(b, i)`` where ``spiked`` is true, at ``step``.

        A dense masked write (gather, select, scatter over all ``(b, i)``) rather than an
        index list: no device-to-host synchronisation, so a step loop can be captured.
        """
        batch, size, cap = self.step.shape
        k = xp.minimum(self.count, cap - 1)
        flat = (xp.arange(batch * size, dtype=xp.int64).reshape(batch, size) * cap + k)
        steps, imv = self.step.reshape(-1), self.i_minus_v.reshape(-1)
        steps[flat] = xp.where(spiked, step, steps[flat])
        imv[flat] = xp.where(spiked, i_minus_v, imv[flat])
        self.count += spiked.astype(self.count.dtype)

    def check(self) -> None:
        """Raise :class:`RingBufferOverflow` if any neuron spiked more than ``capacity`` times."""
        most = int(self.count.max()) if self.count.size else 0
        if most > self.capacity:
            raise RingBufferOverflow(
                f"population {self.name!r}: a neuron spiked {most} times in one trial, more "
                f"than the spike ring holds (max_spikes={self.capacity}); pass a larger "
                f"max_spikes (e.g. {2 * most}), a shorter trial, or regularise the firing rate")

    def reader(self, xp: ModuleType) -> Any:
        """A read pointer per neuron at its newest spike (``count - 1``; -1 when none)."""
        return self.count - 1

    def spikes_at(self, xp: ModuleType, ptr: Any, step: int) -> tuple[Any, Any]:
        """``(spiked, i_minus_v)`` of the spikes at ``step``; advances ``ptr`` past them."""
        safe = xp.maximum(ptr, 0)[..., None]
        at = xp.take_along_axis(self.step, safe, axis=2)[..., 0]
        spiked = (ptr >= 0) & (at == step)
        imv = xp.take_along_axis(self.i_minus_v, safe, axis=2)[..., 0]
        ptr -= spiked.astype(ptr.dtype)
        return spiked, imv
