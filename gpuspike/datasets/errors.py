"""Typed errors of the dataset tools, under :class:`gpuspike.bridge.errors.GpuspikeError`."""

from __future__ import annotations

from gpuspike.bridge.errors import GpuspikeError


class DatasetError(GpuspikeError, ValueError):
    """A dataset file or folder is missing, malformed or not in the expected layout."""


class EncoderError(GpuspikeError, ValueError):
    """The audio encoder got a signal or a parameter it cannot use."""
