"""Tests of gpuspike.datasets.audio: the encoder on synthetic signals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.io import wavfile

from gpuspike.datasets.audio import (
    EncoderConfig,
    box_envelope,
    encode_array,
    encode_wav,
    lif_encode,
)
from gpuspike.datasets.errors import EncoderError
from gpuspike.datasets.filterbank import erb_rate

FS = 16000.0
CFG = EncoderConfig(channels=64, normalize=None, gain=10.0)


def _tone(f: float, amp: float = 0.2, seconds: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * FS)) / FS
    return amp * np.sin(2 * np.pi * f * t)


@pytest.mark.parametrize("f", [300.0, 1000.0, 3000.0])
def test_tone_excites_channels_near_its_frequency(f) -> None:
    _times, units = encode_array(_tone(f), FS, CFG)
    assert len(units) > 0
    cf = CFG.centre_frequencies(FS)
    counts = np.bincount(units, minlength=CFG.channels)
    distance = np.abs(erb_rate(cf) - erb_rate(f))  # in ERBs
    assert distance[np.argmax(counts)] < 1.0
    assert counts[distance < 2.5].sum() > 0.9 * counts.sum()


def test_silence_gives_no_spikes() -> None:
    times, units = encode_array(np.zeros(4000), FS, EncoderConfig(channels=32))
    assert len(times) == 0 and len(units) == 0


def test_rate_grows_with_amplitude_and_rms_normalisation_removes_it() -> None:
    n = [len(encode_array(_tone(500, a), FS, CFG)[0]) for a in (0.05, 0.2, 1.0)]
    assert n[0] < n[1] < n[2]
    norm = EncoderConfig(channels=64, normalize="rms")
    quiet, loud = (encode_array(_tone(500, a), FS, norm)[0] for a in (0.01, 1.0))
    assert len(quiet) == len(loud)


def test_deterministic_sorted_and_on_the_step_grid() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=8000) * 0.2
    t1, u1 = encode_array(x, FS, CFG)
    t2, u2 = encode_array(x, FS, CFG)
    np.testing.assert_array_equal(t1, t2)
    np.testing.assert_array_equal(u1, u2)
    assert np.all(np.diff(t1) >= 0) and u1.max() < 64
    steps = t1 / CFG.dt - 0.5
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)
    assert t1.max() < len(x) / FS


def test_lif_constant_drive_rate() -> None:
    # Euler LIF with a = dt/tau = 0.2 and drive 2: v_k = 2 (1 - 0.8^k) > 1 first at k = 4
    times, _units = lif_encode(np.full((1, 100), 2.0), 1e-3, 5e-3)
    assert len(times) == 25 and np.allclose(np.diff(times), 4e-3)
    assert len(lif_encode(np.full((3, 100), 0.99), 1e-3, 5e-3)[0]) == 0


def test_adaptive_threshold_rate_matches_the_periodic_fixed_point() -> None:
    """Constant drive I with threshold 1 + A, A decaying by r = exp(-dt/tau_a) per step and
    jumping by J at each spike: the first spike comes as in the plain LIF (4th step for
    I = 2, a = 0.2), then intervals lengthen. A periodic orbit of n steps has the threshold
    excess A_pre = J r^n / (1 - r^n) just before each spike, so it exists iff
    I (1 - (1 - a)^n) > 1 + A_pre(n); with n* the smallest such n, the step grid locks into
    a mix of n* - 1 and n* step intervals (mean between them)."""
    drive, a, jump, tau_a = 2.0, 0.2, 0.25, 20e-3
    times, _ = lif_encode(np.full((1, 3000), drive), 1e-3, 5e-3, jump, tau_a)
    isi = np.rint(np.diff(times) / 1e-3).astype(int)
    r = np.exp(-1e-3 / tau_a)
    period = next(n for n in range(1, 1000)
                  if drive * (1 - (1 - a) ** n) > 1 + jump * r**n / (1 - r**n))
    assert round(times[0] / 1e-3 - 0.5) + 1 == 4        # spike at step index 3 = 4th update
    assert isi[0] > 4 and period > 5
    assert set(isi[-300:].tolist()) <= {period - 1, period}
    assert period - 1 < isi[-300:].mean() < period
    # without adaptation the same drive keeps its 4-step interval
    plain, _ = lif_encode(np.full((1, 3000), drive), 1e-3, 5e-3)
    assert len(plain) == 750 and len(times) < len(plain) * 4 / (period - 1)


def test_box_envelope_integer_and_fractional() -> None:
    r = np.arange(20, dtype=np.float64)[None, :]
    np.testing.assert_allclose(box_envelope(r, 1000.0, 4e-3), [[1.5, 5.5, 9.5, 13.5, 17.5]])
    # 2.5 samples per step: [0, 2.5) -> (0 + 1 + 0.5*2) / 2.5
    env = box_envelope(np.arange(5, dtype=np.float64)[None, :], 1000.0, 2.5e-3)
    np.testing.assert_allclose(env, [[2 / 2.5, (0.5 * 2 + 3 + 4) / 2.5]])
    # a short last step averages what it has
    np.testing.assert_allclose(box_envelope(np.ones((1, 5)), 1000.0, 2e-3), [[1, 1, 1]])


def test_wav_input_and_errors(tmp_path) -> None:
    path = tmp_path / "tone.wav"
    wavfile.write(path, int(FS), (_tone(800) * 32767).astype(np.int16))
    t, _u = encode_wav(path, CFG)
    t2, _u2 = encode_array(_tone(800), FS, CFG)
    assert abs(len(t) - len(t2)) <= 0.02 * len(t2)  # int16 quantisation only
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"nope")
    with pytest.raises(EncoderError, match="WAV"):
        encode_wav(bad)
    with pytest.raises(EncoderError, match="dt < tau"):
        encode_array(_tone(800), FS, EncoderConfig(dt=0.01))
