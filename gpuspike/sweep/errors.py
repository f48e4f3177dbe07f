"""Typed error of the sweep tools, under :class:`gpuspike.bridge.errors.GpuspikeError`."""

from __future__ import annotations

from gpuspike.bridge.errors import GpuspikeError


class SweepError(GpuspikeError, ValueError):
    """A sweep config, trial function or result folder is unusable; the message says the fix."""
