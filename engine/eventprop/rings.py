"""Per-neuron spike rings: the forward pass's tape, and the slope at each threshold crossing.

Each (example, neuron) owns ``capacity`` slots. The forward pass writes spike ``k`` of a
neuron into slot ``k``: its step ``n`` and the state ``(u, J)`` at the start of that step
(after the previous step's reset and deliveries). The backward pass reads them back newest
first with a per-neuron pointer, so no dense spike raster is stored (memory
``O(batch x neurons x capacity)``). Overflow is detected after the pass (counts keep growing
past the capacity, writes are clamped) and raised, never ignored.

After the forward pass :meth:`SpikeRing.finish` turns each entry into ``tau_m du/dt^-`` at
the crossing, the denominator of the adjoint jump, in one vectorised pass over all spikes:

* ``"sample"``: ``J_n - u_n`` on the grid sample after the crossing (mlGeNN's choice). On a
  coarse grid the sample is often past the PSP's peak, so this is small or negative and the
  jump explodes or must be skipped.
* ``"interpolated"`` (default): the crossing time ``s*`` inside the step solves
  ``alpha(s) u0 + P(s) J0 = theta`` (bisection on ``[0, dt]``, where the left end is below
  and the right end at or above threshold), and the slope is ``J0 e^{-s*/tau_s} - theta``,
  positive for every upward crossing: the exact event-based value, up to the grid
  rounding of the inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

from gpuspike.bridge.adjoint import CanonicalLIF, step_propagators
from gpuspike.bridge.errors import RingBufferOverflow

#: Bisection steps: the crossing time is found to dt * 2**-BISECTIONS.
BISECTIONS = 30


@dataclass
class SpikeRing:
    """Slots ``step[b, i, k]``, ``u0``/``j0`` (pre-step state; after :meth:`finish`,
    ``i_minus_v`` holds the crossing slope); ``count[b, i]`` spikes written."""

    step: Any
    u0: Any
    j0: Any
    count: Any
    name: str
    i_minus_v: Any = None

    @classmethod
    def empty(cls, xp: ModuleType, batch: int, size: int, capacity: int, dtype: Any,
              name: str) -> SpikeRing:
        return cls(xp.full((batch, size, capacity), -1, dtype=xp.int32),
                   xp.zeros((batch, size, capacity), dtype=dtype),
                   xp.zeros((batch, size, capacity), dtype=dtype),
                   xp.zeros((batch, size), dtype=xp.int32), name)

    @property
    def capacity(self) -> int:
        return int(self.step.shape[2])

    def push(self, xp: ModuleType, spiked: Any, step: int, u0: Any, j0: Any) -> None:
        """Record a spike of every ``(b, i)`` where ``spiked`` is true, at ``step``, with the
        state ``(u0, j0)`` at the start of that step.

        A dense masked write (gather, select, scatter over all ``(b, i)``) rather than an
        index list: no device-to-host synchronisation, so a step loop can be captured.
        """
        batch, size, cap = self.step.shape
        k = xp.minimum(self.count, cap - 1)
        flat = (xp.arange(batch * size, dtype=xp.int64).reshape(batch, size) * cap + k)
        for store, value in ((self.step, step), (self.u0, u0), (self.j0, j0)):
            flat_store = store.reshape(-1)
            flat_store[flat] = xp.where(spiked, value, flat_store[flat])
        self.count += spiked.astype(self.count.dtype)

    def finish(self, xp: ModuleType, neuron: CanonicalLIF, dt: float,
               crossing: str = "interpolated") -> None:
        """Compute ``i_minus_v`` (``tau_m du/dt^-`` at each crossing; module docstring)."""
        p = step_propagators(neuron.tau_m, neuron.tau_s, dt)
        # the slope overwrites u0 (no longer needed): one array less per slot
        if crossing == "sample":
            u_n = p.alpha * self.u0 + p.p_vi * self.j0
            self.u0[...] = p.beta * self.j0 - u_n
            self.i_minus_v = self.u0
            return
        if crossing != "interpolated":
            raise ValueError(f"crossing must be 'interpolated' or 'sample', not {crossing!r}")
        used = xp.arange(self.capacity)[None, None, :] < self.count[..., None]
        u0, j0 = self.u0[used], self.j0[used]
        lo = xp.zeros_like(u0)
        hi = xp.full_like(u0, dt)
        for _ in range(BISECTIONS):
            mid = 0.5 * (lo + hi)
            above = _voltage(xp, neuron, u0, j0, mid) >= neuron.theta
            hi = xp.where(above, mid, hi)
            lo = xp.where(above, lo, mid)
        self.u0[used] = j0 * xp.exp(-hi / neuron.tau_s) - neuron.theta
        self.i_minus_v = self.u0

    def check(self) -> None:
        """Raise :class:`RingBufferOverflow` if any neuron spiked more than ``capacity`` times."""
        most = int(self.count.max()) if self.count.size else 0
        if most > self.capacity:
            err = RingBufferOverflow(
                f"population {self.name!r}: a neuron spiked {most} times in one trial, more "
                f"than the spike ring holds (max_spikes={self.capacity}); pass a larger "
                f"max_spikes (e.g. {2 * most}), a shorter trial, or regularise the firing rate")
            err.population, err.most = self.name, most
            raise err

    def reader(self, xp: ModuleType) -> Any:
        """A read pointer per neuron at its newest spike (``count - 1``; -1 when none)."""
        return self.count - 1

    def spikes_at(self, xp: ModuleType, ptr: Any, step: int) -> tuple[Any, Any]:
        """``(spiked, i_minus_v)`` of the spikes at ``step``; advances ``ptr`` past them."""
        safe = xp.maximum(ptr, 0)[..., None]
        at = xp.take_along_axis(self.step, safe, axis=2)[..., 0]
        spiked = (ptr >= 0) & (at == step)
        imv = xp.take_along_axis(self.i_minus_v, safe, axis=2)[..., 0]  # after finish()
        ptr -= spiked.astype(ptr.dtype)
        return spiked, imv


def _voltage(xp: ModuleType, neuron: CanonicalLIF, u0: Any, j0: Any, s: Any) -> Any:
    """``u(s) = alpha(s) u0 + P(s) J0`` for lags ``s`` (arrays), tau_s = tau_m included."""
    a = xp.exp(-s / neuron.tau_m)
    z = s * (1.0 / neuron.tau_m - 1.0 / neuron.tau_s)
    safe = xp.where(xp.abs(z) > 1e-8, z, 1.0)
    phi = xp.where(xp.abs(z) > 1e-8, xp.expm1(safe) / safe, 1.0 + 0.5 * z)
    return a * u0 + a * (s / neuron.tau_m) * phi * j0
