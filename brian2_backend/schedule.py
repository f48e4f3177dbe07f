"""Brian2's clocks and schedule slots -> the IR's steps (``every``) and phases."""

from __future__ import annotations

from typing import Any

from gpuspike.bridge.errors import UnsupportedFeature

#: Brian2 ``when`` slot -> IR phase of a monitor that only reads state.
PHASE = {
    "before_start": "start", "start": "start", "after_start": "start",
    "before_groups": "start", "groups": "groups", "after_groups": "groups",
    "before_thresholds": "groups", "thresholds": "thresholds",
    "after_thresholds": "thresholds", "before_synapses": "thresholds",
    "synapses": "synapses", "after_synapses": "synapses", "before_resets": "synapses",
    "resets": "resets", "after_resets": "resets", "before_end": "resets", "end": "end",
    "after_end": "end",
}


def own_dt(o: Any, dt: float, what: str) -> float | None:
    """The dt of ``o``'s clock for the IR: None where it is the network's."""
    return None if every_steps(o, dt, what) == 1 else float(o.clock.dt_)


def every_steps(o: Any, dt: float, what: str) -> int:
    """Steps of the network between two runs of ``o`` (its clock's dt / the network's)."""
    ratio = float(o.clock.dt_) / dt
    every = int(round(ratio))
    if abs(ratio - every) > 1e-6 * ratio or every < 1:
        raise UnsupportedFeature(f"{what}: its dt ({float(o.clock.dt_)} s) is not a "
                                 f"multiple of the network's dt ({dt} s)")
    return every


def phase(o: Any, what: str) -> str:
    """The IR phase of an object that runs in Brian2's ``o.when`` slot."""
    out = PHASE.get(o.when)
    if out is None:
        raise UnsupportedFeature(f"{what}: when={o.when!r}")
    return out
