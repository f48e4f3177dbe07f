"""Typed errors of gpuspike: each names the problem and the way out.

Every error a user can meet derives from :class:`GpuspikeError`, so that a frontend can
catch them all; the subclasses say what kind of mistake it is.
"""

from __future__ import annotations


class GpuspikeError(Exception):
    """Base class of every error raised by gpuspike."""


class ModelError(GpuspikeError, ValueError):
    """The model is malformed: unknown symbol, bad statement, cross-element write, ..."""


class ExpressionError(ModelError):
    """An expression string could not be parsed or uses something not allowed."""


class UnitError(ModelError):
    """Inconsistent or unknown physical units in a model."""


class DtypeError(ModelError):
    """Inconsistent dtypes, e.g. a float expression assigned to a boolean variable."""


class UnsupportedFeature(GpuspikeError, NotImplementedError):
    """A feature the engine cannot run; the message names the feature and the object."""


class EngineUnavailable(GpuspikeError, RuntimeError):
    """The engine asked for cannot run here (e.g. ``cupy`` without a usable GPU)."""


class GpuMemoryError(GpuspikeError, MemoryError):
    """The network does not fit the GPU; the message gives the estimate."""


class RingBufferOverflow(GpuspikeError, RuntimeError):
    """A fixed-size device buffer (spike list, spike ring, event tape) overflowed."""
