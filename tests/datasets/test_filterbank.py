"""Tests of gpuspike.datasets.filterbank: ERB scale and gammatone responses."""

from __future__ import annotations

import numpy as np
import pytest

from gpuspike.datasets.errors import EncoderError
from gpuspike.datasets.filterbank import (
    erb,
    erb_rate,
    erb_space,
    filter_bank,
    gammatone_impulse_responses,
    inverse_erb_rate,
)


def test_erb_formulas() -> None:
    assert erb(1000.0) == pytest.approx(24.7 * 5.37)
    f = np.array([50.0, 440.0, 3600.0])
    np.testing.assert_allclose(inverse_erb_rate(erb_rate(f)), f)
    cf = erb_space(50, 3600, 64)
    assert cf[0] == pytest.approx(50) and cf[-1] == pytest.approx(3600)
    assert np.allclose(np.diff(erb_rate(cf)), np.diff(erb_rate(cf))[0])
    with pytest.raises(EncoderError):
        erb_space(100, 50, 4)


def test_unit_gain_at_centre_and_selectivity() -> None:
    fs = 16000.0
    cf = np.array([200.0, 1000.0, 4000.0])
    g = gammatone_impulse_responses(fs, cf)
    freqs = np.fft.rfftfreq(1 << 16, 1 / fs)
    h = np.abs(np.fft.rfft(g, n=1 << 16, axis=1))
    for c, f in enumerate(cf):
        assert h[c, np.argmin(np.abs(freqs - f))] == pytest.approx(1.0, rel=1e-3)
        assert freqs[np.argmax(h[c])] == pytest.approx(f, rel=0.02)
        # two ERBs away the 4th-order gammatone is far down
        assert h[c, np.argmin(np.abs(freqs - (f + 2 * erb(f))))] < 0.1


def test_filter_bank_matches_direct_convolution() -> None:
    fs = 8000.0
    x = np.random.default_rng(0).normal(size=500)
    cf = erb_space(100, 3000, 5)
    y = filter_bank(x, fs, cf)
    g = gammatone_impulse_responses(fs, cf)
    direct = np.stack([np.convolve(x, gi)[:500] for gi in g])
    np.testing.assert_allclose(y, direct, atol=2e-4 * np.abs(direct).max())
