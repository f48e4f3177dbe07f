"""The mel-spectrogram Poisson rate code (gpuspike/datasets/melcode.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.io import wavfile

from gpuspike.cli import main
from gpuspike.datasets.encode import encode_files
from gpuspike.datasets.errors import EncoderError
from gpuspike.datasets.melcode import (
    MelPoissonConfig,
    mel,
    mel_filters,
    mel_poisson_encode,
    mel_rates,
)
from gpuspike.datasets.shd import read_shd

FS = 8000


def tone(f: float, seconds: float = 0.5, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * FS)) / FS
    return level * np.sin(2 * np.pi * f * t)


def test_filters_are_triangles_on_the_mel_scale():
    m = mel_filters(20, 512, FS, 50.0)
    freqs = np.fft.rfftfreq(512, 1 / FS)
    assert m.shape == (20, 257) and m.min() >= 0 and m.max() <= 1 + 1e-12
    peaks = freqs[m.argmax(axis=1)]
    assert np.all(np.diff(peaks) > 0)
    # centres equally spaced in mel (to a bin's width)
    spacing = np.diff(mel(peaks))
    assert np.ptp(spacing[2:]) < 0.25 * spacing.mean()


def test_a_tone_drives_the_channel_of_its_frequency():
    cfg = MelPoissonConfig(channels=32, dt=2e-3, max_rate=100.0)
    for f in (300.0, 1200.0, 3000.0):
        r = mel_rates(tone(f), FS, cfg)
        assert r.shape == (250, 32) and r.max() == pytest.approx(100.0)
        m = mel_filters(32, 256, FS, cfg.f_low)
        centre = np.fft.rfftfreq(256, 1 / FS)[m.argmax(axis=1)]
        best = int(np.argmax(r[120]))
        assert abs(mel(centre[best]) - mel(f)) < 2 * np.diff(mel(centre)).mean()
        # 40 dB below the peak is silent
        assert (r[120] == 0).sum() > 10


def test_spike_counts_follow_the_rates_and_repeat_exactly():
    cfg = MelPoissonConfig(channels=16, dt=1e-3, max_rate=80.0)
    x = tone(800.0, 2.0) + tone(2000.0, 2.0, 0.1)
    rates = mel_rates(x, FS, cfg)
    t, u = mel_poisson_encode(x, FS, cfg, seed=7)
    counts = np.bincount(u, minlength=16)
    expected = rates.sum(axis=0) * cfg.dt
    ok = expected > 20
    z = (counts[ok] - expected[ok]) / np.sqrt(expected[ok])
    assert np.all(np.abs(z) < 5)
    t2, u2 = mel_poisson_encode(x, FS, cfg, seed=7)
    np.testing.assert_array_equal(t, t2)
    np.testing.assert_array_equal(u, u2)
    assert not np.array_equal(u, mel_poisson_encode(x, FS, cfg, seed=8)[1])
    # times in the middle of their step
    np.testing.assert_allclose((t / cfg.dt) % 1.0, 0.5, atol=1e-3)


def test_errors_name_the_problem():
    with pytest.raises(EncoderError, match="dynamic_range"):
        mel_rates(tone(500.0), FS, MelPoissonConfig(dynamic_range=0))
    with pytest.raises(EncoderError, match="empty"):
        mel_rates(np.zeros(0), FS, MelPoissonConfig())
    with pytest.raises(EncoderError, match="Nyquist"):
        mel_rates(tone(500.0), FS, MelPoissonConfig(f_low=5000.0))


def test_cli_and_cache_encode_the_same(tmp_path, capsys):
    d = tmp_path / "wavs"
    d.mkdir()
    for name, f in (("0_ann_0.wav", 400.0), ("1_bob_2.wav", 1800.0)):
        wavfile.write(d / name, FS, (tone(f) * 32767).astype(np.int16))
    assert main(["encode-audio", str(d), str(tmp_path / "m.h5"), "--channels", "24",
                 "--encoder", "mel", "--max-rate", "50", "--cache", str(tmp_path / "c"),
                 "--no-progress", "--workers", "1"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["channels"] == 24 and line["files"] == 2
    ds = read_shd(tmp_path / "m.h5")
    cfg = MelPoissonConfig(channels=24, max_rate=50.0)
    again = encode_files(sorted(d.glob("*.wav")), cfg, workers=1, cache_dir=tmp_path / "c")
    assert again.cache_hits == 2
    fresh = encode_files(sorted(d.glob("*.wav")), cfg, workers=1, cache_dir=None)
    for a, b in zip(ds.units, fresh.units):
        np.testing.assert_array_equal(a, b)
