"""Tests of gpuspike.datasets.encode: parallel encoding, the content-hash cache, SHD output."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from scipy.io import wavfile

from gpuspike.cli import main
from gpuspike.datasets.audio import EncoderConfig
from gpuspike.datasets.encode import DIGIT_NAMES, cache_key, encode_directory, encode_files
from gpuspike.datasets.errors import DatasetError
from gpuspike.datasets.shd import read_shd

FS = 8000


@pytest.fixture
def wav_dir(tmp_path):
    d = tmp_path / "wavs"
    d.mkdir()
    rng = np.random.default_rng(0)
    for name, f in [
        ("0_ann_0.wav", 300),
        ("1_ann_7.wav", 700),
        ("0_bob_3.wav", 1500),
        ("other.wav", 2500),
    ]:
        t = np.arange(int(0.25 * FS)) / FS
        x = 0.3 * np.sin(2 * np.pi * f * t) + 0.01 * rng.normal(size=len(t))
        wavfile.write(d / name, FS, (x * 32767).astype(np.int16))
    return d


def test_cache_hit_returns_same_spikes(wav_dir, tmp_path) -> None:
    files = sorted(wav_dir.glob("*.wav"))
    cfg = EncoderConfig(channels=16)
    first = encode_files(files, cfg, workers=2, cache_dir=tmp_path / "cache")
    second = encode_files(files, cfg, workers=1, cache_dir=tmp_path / "cache")
    assert first.cache_hits == 0 and second.cache_hits == len(files)
    for a, b, ua, ub in zip(first.times, second.times, first.units, second.units):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ua, ub)
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == len(files)
    # other parameters, other key
    data = files[0].read_bytes()
    assert cache_key(data, cfg) != cache_key(data, EncoderConfig(channels=17))
    third = encode_files(files, EncoderConfig(channels=17), workers=1, cache_dir=tmp_path / "cache")
    assert third.cache_hits == 0


def test_encode_directory_writes_shd(wav_dir, tmp_path) -> None:
    out = tmp_path / "spikes.h5"
    result = encode_directory(wav_dir, out, channels=16, workers=1, cache_dir=None)
    d = read_shd(out)
    assert d.n_channels == 16 and len(d) == 4
    names = ["0_ann_0.wav", "0_bob_3.wav", "1_ann_7.wav", "other.wav"]
    # extra/keys holds the class names, as in the real SHD; the file names go to extra/files
    assert d.keys == [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
    ]
    assert DIGIT_NAMES == d.keys
    assert d.files == names
    with h5py.File(out, "r") as f:
        assert [k.decode() for k in f["extra/keys"][()]][:2] == ["zero", "one"]
        assert [k.decode() for k in f["extra/files"][()]] == names
    assert d.labels.tolist() == [0, 0, 1, -1] and d.speakers.tolist() == [0, 1, 0, -1]
    assert result.spikes_per_sample > 0 and result.rate_per_channel > 0
    assert sum(len(t) for t in d.times) == sum(len(t) for t in result.times)
    with pytest.raises(DatasetError, match="not a folder"):
        encode_directory(tmp_path / "absent", out)


def test_cli_encode_audio(wav_dir, tmp_path, capsys) -> None:
    out = tmp_path / "cli.h5"
    rc = main(
        [
            "encode-audio",
            str(wav_dir),
            str(out),
            "--channels",
            "8",
            "--workers",
            "1",
            "--cache",
            str(tmp_path / "c"),
            "--no-progress",
        ]
    )
    assert rc == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["files"] == 4 and figures["channels"] == 8
    assert {"seconds", "spikes_per_sample", "rate_per_channel_hz"} <= set(figures)
    assert read_shd(out).n_channels == 8
