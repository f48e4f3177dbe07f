"""Cochlea-like audio -> spikes encoder: gammatone filterbank, envelope, per-channel LIF.

Pipeline for a mono signal ``x`` sampled at ``fs`` (every stage vectorised over channels):

1. optional level normalisation: ``x <- x / rms(x)`` (``normalize="rms"``) so that loud
   and quiet recordings give similar rates;
2. ERB-spaced 4th-order gammatone filterbank, ``y_c = g_c * x``
   (:mod:`gpuspike.datasets.filterbank`), channel 0 = lowest frequency;
3. half-wave rectification and compression, ``r_c = max(y_c, 0)^(1/3)`` (``"cbrt"``) or
   ``log(1 + max(y_c, 0) / 0.01)`` (``"log"``);
4. envelope at the simulation step: ``e_c[k]`` = mean of ``r_c`` over
   ``[k dt, (k + 1) dt)`` (a box low-pass followed by decimation to ``1 / dt``);
5. leaky integrate-and-fire per channel with an adaptive threshold ``1 + A_c`` (forward
   Euler, ``a = dt / tau``, ``r = exp(-dt / tau_adapt)``)::

       v_c <- v_c + a (gain e_c[k] - v_c);   A_c <- r A_c
       if v_c > 1 + A_c: spike at (k + 1/2) dt, v_c <- 0, A_c <- A_c + adaptation

   Without adaptation a channel fires only while ``gain e_c > 1``, so silence and faint
   noise give no spikes; a constant drive ``I > 1`` fires at ``1 / (-tau log(1 - 1/I))``
   (the step-rounded value under Euler). Adaptation (spike-frequency adaptation of the
   auditory nerve) makes a channel fire densely at onsets and sparsely during steady
   vowels, so that a higher gain reaches the weak consonants without flooding the vowels.
   Spike times sit in the middle of their step so that binning at ``dt`` recovers the step
   whatever float width stores them.

Defaults (``gain`` 4.5, ``adaptation`` 0.25, ``tau_adapt`` 50 ms) were chosen on FSDD by
the accuracy of the closed-form ridge classifier (:mod:`gpuspike.datasets.baseline`) on the
binned counts, official split / mean LOSO, 140 channels:

===========================================  =========  ========  ======
encoder                                      Hz/channel official   LOSO
===========================================  =========  ========  ======
gain 2.88, no adaptation (version 1)            10.1     81-82 %  58-60 %
gain 4.5, no adaptation                         40.6     91-95 %  69-70 %
gain 8, no adaptation                          121       93 %     69-70 %
gain 4.5, adaptation 0.25 / 50 ms (default)     13.9     94 %     70 %
gain 8, adaptation 1.0 / 100 ms                 10.8     91 %     67-68 %
===========================================  =========  ========  ======

Version 1 (gain 2.88 without adaptation, calibrated with :func:`calibrate_gain` to SHD's
~10 Hz) lost the consonants below threshold: 0/3 ("zero"/"three") and 6/8 were the SNN's
main confusions.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from typing import Literal

import numpy as np
from scipy.io import wavfile

from gpuspike.datasets.errors import EncoderError
from gpuspike.datasets.filterbank import GAMMATONE_B, erb_space, filter_bank

#: bump when the encoder's output changes for the same parameters (invalidates caches)
ENCODER_VERSION = 2


@dataclass(frozen=True)
class EncoderConfig:
    """Parameters of the audio -> spikes encoder (see the module docstring for the maths).

    Parameters
    ----------
    channels : int
        Number of filterbank channels = spike channels (700 like SHD).
    dt : float
        Simulation step in seconds; the envelope is sampled at ``1 / dt``.
    f_low, f_high : float
        Lowest and highest centre frequency in Hz; ``f_high=None`` means
        ``min(8000, 0.45 fs)``.
    order, bandwidth : int, float
        Gammatone order and bandwidth factor ``b``.
    compression : {"cbrt", "log"}
        Compression of the rectified filter output.
    normalize : {"rms", None}
        Level normalisation of the signal before filtering.
    tau : float
        LIF membrane time constant in seconds.
    gain : float
        Input gain of the LIF (threshold 1).
    adaptation : float
        Threshold increment per spike (0: a plain LIF).
    tau_adapt : float
        Decay time constant of the threshold increment in seconds.
    """

    channels: int = 700
    dt: float = 1e-3
    f_low: float = 50.0
    f_high: float | None = None
    order: int = 4
    bandwidth: float = GAMMATONE_B
    compression: Literal["cbrt", "log"] = "cbrt"
    normalize: Literal["rms"] | None = "rms"
    tau: float = 5e-3
    gain: float = 4.5
    adaptation: float = 0.25
    tau_adapt: float = 50e-3

    def centre_frequencies(self, fs: float) -> np.ndarray:
        """The ERB-spaced centre frequencies for sampling rate ``fs``."""
        f_high = min(8000.0, 0.45 * fs) if self.f_high is None else self.f_high
        return erb_space(self.f_low, f_high, self.channels)

    def key(self) -> str:
        """A stable JSON text of the parameters and encoder version (for cache keys)."""
        return json.dumps({**asdict(self), "version": ENCODER_VERSION}, sort_keys=True)

    def validate(self) -> None:
        if self.channels < 1:
            raise EncoderError(f"channels must be >= 1, got {self.channels}")
        if not 0 < self.dt < self.tau:
            raise EncoderError(
                f"need 0 < dt < tau for the Euler LIF, got dt={self.dt}, tau={self.tau}; "
                "lower dt or raise tau"
            )
        if self.adaptation < 0 or self.tau_adapt <= 0:
            raise EncoderError(
                f"need adaptation >= 0 and tau_adapt > 0, got adaptation={self.adaptation}, "
                f"tau_adapt={self.tau_adapt}")
        if self.compression not in ("cbrt", "log"):
            raise EncoderError(f"compression must be 'cbrt' or 'log', got {self.compression!r}")
        if self.normalize not in ("rms", None):
            raise EncoderError(f"normalize must be 'rms' or None, got {self.normalize!r}")


def _as_float_mono(signal: np.ndarray) -> np.ndarray:
    """Integer PCM -> float in [-1, 1); stereo -> mean of the channels."""
    x = np.asarray(signal)
    if np.issubdtype(x.dtype, np.unsignedinteger):
        half = (np.iinfo(x.dtype).max + 1) / 2
        x = (x.astype(np.float64) - half) / half
    elif np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float64) / (np.iinfo(x.dtype).max + 1)
    else:
        x = x.astype(np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if x.ndim != 1:
        raise EncoderError(f"expected a mono or (samples, 2) signal, got shape {x.shape}")
    return x


def box_envelope(r: np.ndarray, fs: float, dt: float) -> np.ndarray:
    """Mean of ``r`` (``(channels, samples)``) over each step ``[k dt, (k + 1) dt)``.

    Returns ``(channels, steps)`` with ``steps = ceil(samples / (fs dt))``; the last step
    averages the samples it has.
    """
    n = r.shape[1]
    per = fs * dt
    steps = max(1, int(np.ceil(n / per - 1e-9)))
    if abs(per - round(per)) < 1e-9:
        per = round(per)
        padded = np.zeros((r.shape[0], steps * per), dtype=r.dtype)
        padded[:, :n] = r
        counts = np.full(steps, per, dtype=np.float64)
        counts[-1] = n - (steps - 1) * per
        return (padded.reshape(r.shape[0], steps, per).sum(axis=2) / counts).astype(r.dtype)
    csum = np.zeros((r.shape[0], n + 1))
    np.cumsum(r, axis=1, out=csum[:, 1:])
    edges = np.minimum(np.arange(steps + 1) * per, n)
    lo = np.minimum(np.floor(edges).astype(np.int64), n - 1)
    frac = edges - lo
    at = csum[:, lo] + frac * (csum[:, lo + 1] - csum[:, lo])
    return (np.diff(at, axis=1) / np.diff(edges)).astype(r.dtype)


def envelope(signal: np.ndarray, fs: float, config: EncoderConfig = EncoderConfig()) -> np.ndarray:
    """Steps 1-4 of the pipeline: the compressed envelope ``(channels, steps)`` at ``dt``."""
    config.validate()
    x = _as_float_mono(signal)
    if len(x) == 0:
        raise EncoderError("the signal is empty; nothing to encode")
    if config.normalize == "rms":
        rms = float(np.sqrt(np.mean(x**2)))
        x = x / rms if rms > 0 else x
    y = filter_bank(x, fs, config.centre_frequencies(fs), config.order, config.bandwidth)
    np.maximum(y, 0, out=y)
    if config.compression == "cbrt":
        np.cbrt(y, out=y)
    else:
        np.log1p(y * 100.0, out=y)
    return box_envelope(y, fs, config.dt)


def lif_encode(drive: np.ndarray, dt: float, tau: float, adaptation: float = 0.0,
               tau_adapt: float = 50e-3) -> tuple[np.ndarray, np.ndarray]:
    """Step 5: (adaptive-threshold) LIF spikes of a ``(channels, steps)`` input
    ``I = gain * envelope``.

    Returns
    -------
    times, units : numpy.ndarray
        float32 spike times ``(k + 1/2) dt`` and int64 channels, sorted by time then channel.
    """
    a = np.float32(dt / tau)
    decay = np.float32(np.exp(-dt / tau_adapt))
    jump = np.float32(adaptation)
    drive_t = np.ascontiguousarray(drive.T, dtype=np.float32)  # (steps, channels)
    fired = np.zeros(drive_t.shape, dtype=bool)
    v = np.zeros(drive_t.shape[1], dtype=np.float32)
    extra = np.zeros(drive_t.shape[1], dtype=np.float32)        # threshold - 1
    for k in range(drive_t.shape[0]):
        v += a * (drive_t[k] - v)
        s = fired[k]
        if adaptation:
            extra *= decay
            np.greater(v, 1.0 + extra, out=s)
            extra[s] += jump
        else:
            np.greater(v, 1.0, out=s)
        v[s] = 0.0
    steps, units = np.nonzero(fired)
    return ((steps + 0.5) * dt).astype(np.float32), units.astype(np.int64)


def encode_array(
    signal: np.ndarray, fs: float, config: EncoderConfig = EncoderConfig()
) -> tuple[np.ndarray, np.ndarray]:
    """Encode a signal to spikes ``(times, units)``: times in seconds, units in channels.

    Parameters
    ----------
    signal : numpy.ndarray
        Mono (or ``(samples, 2)`` stereo) audio, integer PCM or float.
    fs : float
        Sampling rate in Hz.
    config : EncoderConfig, optional
        Encoder parameters.
    """
    env = envelope(signal, fs, config)
    return lif_encode(config.gain * env, config.dt, config.tau, config.adaptation,
                      config.tau_adapt)


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, float]:
    """Read a WAV file as ``(signal, fs)``; typed error for an unreadable file."""
    try:
        fs, x = wavfile.read(path)
    except (OSError, ValueError) as err:
        raise EncoderError(f"cannot read {path} as WAV ({err}); give a PCM .wav file") from err
    return x, float(fs)


def encode_wav(
    path: str | os.PathLike, config: EncoderConfig = EncoderConfig()
) -> tuple[np.ndarray, np.ndarray]:
    """Encode a WAV file to ``(times, units)`` with :func:`encode_array`."""
    x, fs = read_wav(path)
    return encode_array(x, fs, config)


def calibrate_gain(
    signals: list[tuple[np.ndarray, float]],
    target_rate: float = 10.0,
    config: EncoderConfig = EncoderConfig(),
    iterations: int = 20,
) -> float:
    """Find the gain whose mean rate per channel over ``signals`` is ``target_rate`` Hz.

    The rate ``sum spikes / (channels * sum durations)`` grows monotonically with the gain,
    so a bisection on ``log(gain)`` between 0.1 and 1000 finds it; the envelopes are
    computed once.
    """
    envs = [envelope(x, fs, config) for x, fs in signals]
    total = config.channels * sum(len(_as_float_mono(x)) / fs for x, fs in signals)

    def rate(gain: float) -> float:
        n = sum(len(lif_encode(gain * e, config.dt, config.tau, config.adaptation,
                               config.tau_adapt)[0]) for e in envs)
        return n / total

    lo, hi = np.log(0.1), np.log(1000.0)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if rate(float(np.exp(mid))) < target_rate else (lo, mid)
    return float(np.exp(0.5 * (lo + hi)))


def with_gain(config: EncoderConfig, gain: float) -> EncoderConfig:
    """A copy of ``config`` with another gain."""
    return replace(config, gain=gain)
