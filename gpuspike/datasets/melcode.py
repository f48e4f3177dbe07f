"""A second audio -> spikes encoder: mel-spectrogram rate code with Bernoulli-Poisson spikes.

Unlike the cochlea-like encoder (:mod:`gpuspike.datasets.audio`: gammatone filterbank and a
deterministic LIF per channel), this one is the usual "spectrogram as firing rates" code,
so that training recipes can be checked on an encoding nobody tuned them for. For a mono
signal ``x`` at ``fs``:

1. short-time power spectrum with a Hann window of ``window`` seconds, hop ``dt``:
   ``P[k, f] = |rfft(w * x[k hop : k hop + n])|^2``;
2. ``channels`` triangular mel filters between ``f_low`` and ``fs / 2``
   (``mel(f) = 2595 log10(1 + f / 700)``, filter ``c`` rising from mel point ``c`` to
   ``c + 1`` and falling to ``c + 2``): ``E[k, c] = sum_f M[c, f] P[k, f]``;
3. log energy relative to the recording's loudest bin, over ``dynamic_range`` dB:
   ``n[k, c] = clip(1 + (10 log10 E[k, c] - max 10 log10 E) / dynamic_range, 0, 1)``;
4. rate ``r = max_rate * n`` and one Bernoulli draw per step and channel with
   ``p = min(1, r dt)`` (a Poisson process at rate ``r`` when ``r dt << 1``); spike times
   at ``(k + 1/2) dt``. The generator is seeded per recording (from the cache key) so that
   an encoding repeats exactly.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from gpuspike.datasets.errors import EncoderError

#: bump when the output changes for the same parameters (invalidates caches)
MEL_ENCODER_VERSION = 1


@dataclass(frozen=True)
class MelPoissonConfig:
    """Parameters of the mel rate code (module docstring for the maths)."""

    channels: int = 256
    dt: float = 1e-3
    window: float = 25e-3
    f_low: float = 50.0
    dynamic_range: float = 40.0
    max_rate: float = 60.0

    def key(self) -> str:
        """A stable JSON text of the parameters and encoder version (for cache keys)."""
        return json.dumps({**asdict(self), "encoder": "mel_poisson",
                           "version": MEL_ENCODER_VERSION}, sort_keys=True)

    def validate(self) -> None:
        if self.channels < 1 or self.dt <= 0 or self.window <= 0:
            raise EncoderError(f"need channels >= 1, dt > 0 and window > 0, got {self.channels}, "
                               f"{self.dt}, {self.window}")
        if self.dynamic_range <= 0 or self.max_rate <= 0:
            raise EncoderError(f"need dynamic_range > 0 dB and max_rate > 0 Hz, got "
                               f"{self.dynamic_range}, {self.max_rate}")


def mel(f: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_filters(channels: int, n_fft: int, fs: float, f_low: float) -> np.ndarray:
    """``(channels, n_fft // 2 + 1)`` triangular mel filters (step 2)."""
    if f_low >= fs / 2:
        raise EncoderError(f"f_low={f_low} Hz is not below the Nyquist frequency {fs / 2} Hz")
    points = np.linspace(mel(f_low), mel(fs / 2), channels + 2)
    hz = 700.0 * (10.0 ** (points / 2595.0) - 1.0)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / fs)
    lo, mid, hi = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    rise = (freqs - lo) / np.maximum(mid - lo, 1e-12)
    fall = (hi - freqs) / np.maximum(hi - mid, 1e-12)
    m = np.clip(np.minimum(rise, fall), 0.0, None)
    # a filter narrower than one frequency bin still sees its nearest bin
    empty = m.sum(axis=1) == 0
    m[empty, np.abs(freqs[None, :] - mid[empty]).argmin(axis=1)] = 1.0
    return m


def mel_rates(signal: np.ndarray, fs: float, config: MelPoissonConfig) -> np.ndarray:
    """Steps 1-4 without the draw: rates in Hz, ``(steps, channels)``."""
    config.validate()
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if len(x) == 0:
        raise EncoderError("the signal is empty; nothing to encode")
    hop = max(1, int(round(config.dt * fs)))
    n = max(hop, int(round(config.window * fs)))
    n_fft = 1 << (n - 1).bit_length()
    steps = int(np.ceil(len(x) / hop))
    padded = np.zeros(steps * hop + n)
    padded[n // 2: n // 2 + len(x)] = x
    frames = np.lib.stride_tricks.sliding_window_view(padded, n)[::hop][:steps]
    power = np.abs(np.fft.rfft(frames * np.hanning(n), n_fft, axis=1)) ** 2
    energy = power @ mel_filters(config.channels, n_fft, fs, config.f_low).T
    db = 10.0 * np.log10(np.maximum(energy, 1e-30))
    level = np.clip(1.0 + (db - db.max()) / config.dynamic_range, 0.0, 1.0)
    return config.max_rate * level


def mel_poisson_encode(signal: np.ndarray, fs: float, config: MelPoissonConfig,
                       seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Spikes ``(times, units)`` of one recording (float32 seconds, int64 channels)."""
    rates = mel_rates(signal, fs, config)
    rng = np.random.default_rng(seed)
    fired = rng.random(rates.shape) < np.minimum(1.0, rates * config.dt)
    steps, units = np.nonzero(fired)
    return ((steps + 0.5) * config.dt).astype(np.float32), units.astype(np.int64)
