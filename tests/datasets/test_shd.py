"""Tests of gpuspike.datasets.shd: SHD-layout files, written by us and made by hand."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from gpuspike.datasets.errors import DatasetError
from gpuspike.datasets.events import SpikeDataset
from gpuspike.datasets.shd import read_shd, write_shd


def _random_dataset(rng: np.random.Generator, n: int = 6, channels: int = 700) -> SpikeDataset:
    times, units = [], []
    for i in range(n):
        k = int(rng.integers(0, 50)) if i else 0  # one empty sample
        times.append(np.sort(rng.uniform(0, 1.0, k)))
        units.append(rng.integers(0, channels, k))
    return SpikeDataset(
        times,
        units,
        rng.integers(0, 20, n),
        rng.integers(0, 12, n),
        channels,
        files=[f"k{i}.wav" for i in range(n)],
    )


@pytest.mark.parametrize("time_dtype", [np.float16, np.float32, np.float64])
def test_round_trip_vlen(tmp_path, time_dtype) -> None:
    d = _random_dataset(np.random.default_rng(1))
    path = tmp_path / "x.h5"
    write_shd(path, d, time_dtype=time_dtype)
    r = read_shd(path)
    # no class names: extra/keys is not written; the file names go to extra/files
    assert r.n_channels == 700 and r.keys == [] and r.files == d.files
    with h5py.File(path, "r") as f:
        assert "extra/keys" not in f
    np.testing.assert_array_equal(r.labels, d.labels)
    np.testing.assert_array_equal(r.speakers, d.speakers)
    for a, b, ua, ub in zip(d.times, r.times, d.units, r.units):
        assert b.dtype == time_dtype
        np.testing.assert_array_equal(b, a.astype(time_dtype))
        np.testing.assert_array_equal(ub, ua)


def test_hand_made_shd_file_vlen_without_attribute(tmp_path) -> None:
    """The layout of the real SHD: vlen float16 times, vlen uint16 units, no n_channels."""
    path = tmp_path / "shd_like.h5"
    with h5py.File(path, "w") as f:
        t = f.create_dataset("spikes/times", (2,), dtype=h5py.vlen_dtype(np.float16))
        u = f.create_dataset("spikes/units", (2,), dtype=h5py.vlen_dtype(np.uint16))
        t[0], t[1] = np.array([0.1, 0.5], np.float16), np.array([0.25], np.float16)
        u[0], u[1] = np.array([4, 699], np.uint16), np.array([7], np.uint16)
        f["labels"] = np.array([3, 19], np.uint16)
        f["extra/speaker"] = np.array([2, 5], np.uint16)
        f["extra/keys"] = np.array([b"english-zero", b"german-nine"])
        f.create_group("extra/meta_info")
    d = read_shd(path)
    assert d.n_channels == 700  # max unit + 1
    assert d.keys == ["english-zero", "german-nine"]
    assert d.units[0].tolist() == [4, 699] and d.labels.tolist() == [3, 19]
    assert d.times[1].dtype == np.float16
    assert d.files == []  # the real SHD has no extra/files
    assert read_shd(path, n_channels=1000).n_channels == 1000


def test_class_names_and_files_round_trip(tmp_path) -> None:
    """Class names go to extra/keys (one per label), file names to extra/files."""
    d = _random_dataset(np.random.default_rng(3), n=4)
    classes = [f"class-{i}" for i in range(20)]
    path = tmp_path / "named.h5"
    write_shd(path, d, class_names=classes)
    with h5py.File(path, "r") as f:
        assert [k.decode() for k in f["extra/keys"][()]] == classes
        assert [k.decode() for k in f["extra/files"][()]] == d.files
    r = read_shd(path)
    assert r.keys == classes and r.files == d.files
    # a read file keeps its class names and files when written again
    again = tmp_path / "again.h5"
    write_shd(again, r)
    r2 = read_shd(again)
    assert r2.keys == classes and r2.files == d.files
    # explicit arguments override the dataset's; empty lists leave the datasets out
    write_shd(again, r, class_names=[], files=[])
    with h5py.File(again, "r") as f:
        assert "extra/keys" not in f and "extra/files" not in f
    with pytest.raises(DatasetError, match="one file name per sample"):
        write_shd(tmp_path / "bad.h5", d, files=["a.wav"])
    with h5py.File(path, "a") as f:
        del f["extra/files"]
        f["extra/files"] = np.array([b"a.wav"])
    with pytest.raises(DatasetError, match="extra/files has 1 names for 4 samples"):
        read_shd(path)


def test_as_many_classes_as_samples_round_trip(tmp_path) -> None:
    """A dataset with one sample per class: keys stay class names, files stay files."""
    rng = np.random.default_rng(5)
    names = [str(c) for c in range(10)]
    files = [f"img{i}.png" for i in range(10)]
    d = SpikeDataset(
        [np.sort(rng.uniform(0, 0.02, 3)) for _ in range(10)],
        [rng.integers(0, 784, 3) for _ in range(10)],
        np.arange(10),
        np.full(10, -1),
        784,
        keys=names,
        files=files,
    )
    path = tmp_path / "ten.h5"
    write_shd(path, d)
    with h5py.File(path, "r") as f:
        assert [k.decode() for k in f["extra/keys"][()]] == names
        assert [k.decode() for k in f["extra/files"][()]] == files
    r = read_shd(path)
    assert r.keys == names and r.files == files
    sub = r.subset([3, 0])
    assert sub.keys == names and sub.files == ["img3.png", "img0.png"]
    write_shd(tmp_path / "sub.h5", sub)
    back = read_shd(tmp_path / "sub.h5")
    assert back.keys == names and back.files == ["img3.png", "img0.png"]
    # without files the class names still go to extra/keys, not extra/files
    write_shd(path, SpikeDataset(d.times, d.units, d.labels, d.speakers, 784, keys=names))
    r = read_shd(path)
    assert r.keys == names and r.files == []


@pytest.mark.parametrize("time_dtype", [np.float16, np.float64])
@pytest.mark.parametrize("unit_dtype", [np.int8, np.int32, np.int64])
def test_fixed_padded_arrays(tmp_path, time_dtype, unit_dtype) -> None:
    path = tmp_path / "fixed.h5"
    times = np.array([[0.1, 0.2, np.nan], [0.3, -1.0, -1.0]], dtype=time_dtype)
    units = np.array([[1, 2, -1], [5, -1, -1]], dtype=unit_dtype)
    with h5py.File(path, "w") as f:
        f["spikes/times"], f["spikes/units"], f["labels"] = times, units, np.array([0, 1])
    d = read_shd(path)
    assert [len(t) for t in d.times] == [2, 1]
    assert d.units[0].tolist() == [1, 2] and d.units[1].tolist() == [5]
    assert d.n_channels == 6 and d.speakers.tolist() == [-1, -1] and d.keys == []


def test_fixed_arrays_with_event_counts(tmp_path) -> None:
    path = tmp_path / "counts.h5"
    with h5py.File(path, "w") as f:
        f["spikes/times"] = np.array([[0.0, 0.1], [0.2, 0.0]], np.float32)
        f["spikes/units"] = np.array([[0, 1], [2, 0]], np.uint16)
        f["spikes/n_events"] = np.array([2, 1])
        f["labels"] = np.array([0, 1])
    d = read_shd(path)
    assert d.times[0].tolist() == pytest.approx([0.0, 0.1]) and d.units[1].tolist() == [2]


def test_missing_key_names_it(tmp_path) -> None:
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        f["spikes/times"] = np.zeros((1, 1))
        f["labels"] = np.zeros(1)
    with pytest.raises(DatasetError, match="'spikes/units' is missing"):
        read_shd(path)


def test_not_h5_and_missing_file(tmp_path) -> None:
    bad = tmp_path / "x.h5"
    bad.write_text("not hdf5")
    with pytest.raises(DatasetError, match="not an h5 file"):
        read_shd(bad)
    with pytest.raises(DatasetError, match="no SHD file"):
        read_shd(tmp_path / "absent.h5")


def test_units_beyond_channel_count(tmp_path) -> None:
    d = _random_dataset(np.random.default_rng(2), channels=700)
    write_shd(tmp_path / "x.h5", d)
    with pytest.raises(DatasetError, match="outside"):
        read_shd(tmp_path / "x.h5", n_channels=10)
