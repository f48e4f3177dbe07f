"""Read and write spike datasets in the Spiking Heidelberg Digits (SHD) h5 layout.

The layout (Cramer et al. 2020, https://zenkelab.org/datasets/) is::

    spikes/times    per-sample spike times in seconds (variable-length float arrays)
    spikes/units    per-sample channel indices (variable-length int arrays)
    labels          class of each sample
    extra/speaker   speaker id of each sample          (optional here)
    extra/keys      class names: label i is named keys[i] (optional here)
    extra/files     source file name of each sample    (ours, optional; not in the real SHD)
    extra/meta_info group of per-speaker information    (optional, ignored)

In the real SHD ``extra/keys`` holds the 20 class names ("english-zero" ... "german-nine"),
one per label, not one per sample. :func:`read_shd` and :func:`write_shd` map it to
``SpikeDataset.keys`` (class names) and ``extra/files`` to ``SpikeDataset.files`` (per-sample
source names).

The real SHD cannot be downloaded in CI; put ``shd_train.h5`` / ``shd_test.h5`` (gunzipped)
anywhere and pass the path. Besides h5py's variable-length arrays the reader accepts fixed
2-D padded arrays ``(samples, max_events)``; padding is marked by a NaN or negative time or a
negative unit, or the first ``spikes/n_events[i]`` entries of row ``i`` are used when that
dataset exists. Times may be float16/32/64, units any integer width.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from gpuspike.datasets.binning import BinnedEvents, bin_events
from gpuspike.datasets.errors import DatasetError
from gpuspike.datasets.events import SpikeDataset, from_structured, to_structured

__all__ = [
    "BinnedEvents",
    "SpikeDataset",
    "bin_events",
    "from_structured",
    "read_shd",
    "to_structured",
    "write_shd",
]

#: SHD's channel count (the cochlea model of Cramer et al. has 700 output fibres).
SHD_CHANNELS = 700

_REQUIRED = ("spikes/times", "spikes/units", "labels")


def _rows(ds: h5py.Dataset, lengths: np.ndarray | None, name: str) -> list[np.ndarray]:
    """Per-sample 1-D arrays from a vlen dataset or a fixed 2-D padded one."""
    if h5py.check_vlen_dtype(ds.dtype) is not None:
        return [np.asarray(row) for row in ds[()]]
    data = ds[()]
    if data.ndim != 2:
        raise DatasetError(
            f"'{name}' in {ds.file.filename} has shape {data.shape}; SHD stores it as "
            "variable-length arrays or as a 2-D (samples, max_events) padded array"
        )
    if lengths is not None:
        return [data[i, : int(n)] for i, n in enumerate(lengths)]
    return [row for row in data]


def _strip_padding(
    times: list[np.ndarray], units: list[np.ndarray]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    out_t, out_u = [], []
    for t, u in zip(times, units):
        keep = np.isfinite(t) & (t >= 0) & (u >= 0)
        if not keep.all():
            t, u = t[keep], u[keep]
        out_t.append(t)
        out_u.append(u)
    return out_t, out_u


def _as_str(x: object) -> str:
    return x.decode("utf-8") if isinstance(x, bytes) else str(x)


def read_shd(path: str | os.PathLike, n_channels: int | None = None) -> SpikeDataset:
    """Read an SHD-layout h5 file into a :class:`SpikeDataset`.

    Parameters
    ----------
    path : str or path-like
        The ``.h5`` file (gunzip the downloaded ``.h5.gz`` first).
    n_channels : int, optional
        Channel count. When not given: the file's ``n_channels`` attribute (written by
        :func:`write_shd`), else ``max(unit) + 1`` over all samples, else 700 (no events).

    Returns
    -------
    SpikeDataset
        Times as float arrays of the stored width, units as ``int64``, labels and
        speakers as ``int64`` (speakers ``-1`` when ``extra/speaker`` is absent), ``keys``
        the class names of ``extra/keys`` and ``files`` the per-sample names of
        ``extra/files`` (each empty when absent).

    Raises
    ------
    DatasetError
        If the file is missing, is not an h5 file, or lacks a required key (the message
        names it), or the arrays disagree in length (``extra/files`` included, when present).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"no SHD file at {path}; give the path of an existing .h5 file")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise DatasetError(
            f"{path} is not an h5 file ({err}); if it ends in .gz, gunzip it first"
        ) from err
    with f:
        for key in _REQUIRED:
            if key not in f:
                raise DatasetError(
                    f"{path} is not SHD-like: key '{key}' is missing (an SHD file holds "
                    f"{', '.join(_REQUIRED)} and optionally extra/speaker, extra/keys)"
                )
        lengths = f["spikes/n_events"][()] if "spikes/n_events" in f else None
        times = _rows(f["spikes/times"], lengths, "spikes/times")
        units = _rows(f["spikes/units"], lengths, "spikes/units")
        labels = np.asarray(f["labels"][()]).astype(np.int64).reshape(-1)
        n = len(labels)
        speakers = (
            np.asarray(f["extra/speaker"][()]).astype(np.int64).reshape(-1)
            if "extra/speaker" in f
            else np.full(n, -1, dtype=np.int64)
        )
        class_names = [_as_str(k) for k in f["extra/keys"][()]] if "extra/keys" in f else []
        files = [_as_str(k) for k in f["extra/files"][()]] if "extra/files" in f else []
        attr_channels = f.attrs.get("n_channels")
    if files and len(files) != n:
        raise DatasetError(
            f"{path}: extra/files has {len(files)} names for {n} samples; it needs one per sample"
        )
    if len(times) != n or len(units) != n or len(speakers) != n:
        raise DatasetError(
            f"{path}: spikes/times ({len(times)}), spikes/units ({len(units)}), labels ({n}) "
            f"and extra/speaker ({len(speakers)}) must have one entry per sample"
        )
    if any(np.issubdtype(u.dtype, np.floating) for u in units[:1]):
        raise DatasetError(f"{path}: spikes/units holds floats; SHD stores integer channels")
    units = [np.asarray(u, dtype=np.int64) for u in units]
    times = [np.asarray(t) for t in times]
    if lengths is None:
        times, units = _strip_padding(times, units)
    if n_channels is None:
        if attr_channels is not None:
            n_channels = int(attr_channels)
        else:
            top = max((int(u.max()) for u in units if len(u)), default=-1)
            n_channels = top + 1 if top >= 0 else SHD_CHANNELS
    for i, u in enumerate(units):
        if len(u) and (u.min() < 0 or u.max() >= n_channels):
            raise DatasetError(
                f"{path}: sample {i} has units outside [0, {n_channels}); pass a larger "
                "n_channels or check the file"
            )
    return SpikeDataset(
        times, units, labels, speakers, int(n_channels), keys=class_names, files=files
    )


def write_shd(
    path: str | os.PathLike,
    dataset: SpikeDataset,
    time_dtype: np.dtype | type = np.float32,
    compression: str | None = "gzip",
    meta_info: dict[str, list[str]] | None = None,
    class_names: list[str] | None = None,
    files: list[str] | None = None,
) -> None:
    """Write a :class:`SpikeDataset` in the SHD layout with variable-length arrays.

    ``extra/keys`` gets the class names (``dataset.keys`` unless ``class_names`` is passed)
    and ``extra/files`` the per-sample source names (``dataset.files`` unless ``files`` is
    passed); each is left out when empty.

    Parameters
    ----------
    path : str or path-like
        Output ``.h5`` file (overwritten).
    dataset : SpikeDataset
        What to write; ``n_channels`` goes to the root attribute ``n_channels``.
    time_dtype : numpy dtype, optional
        Width of the stored times; float32 by default. The real SHD uses float16, which
        resolves 1 ms only up to about 2 s (11-bit mantissa).
    compression : str or None, optional
        h5py compression of the fixed-size datasets.
    meta_info : dict of str to list of str, optional
        String lists written to ``extra/meta_info/<name>`` (e.g. ``speaker_names``).
    class_names : list of str, optional
        Name of each class, ``class_names[label]``; written to ``extra/keys`` instead of
        ``dataset.keys``.
    files : list of str, optional
        Source file of each sample; written to ``extra/files`` instead of ``dataset.files``.

    Raises
    ------
    DatasetError
        If ``files`` is neither empty nor one name per sample.
    """
    time_dtype = np.dtype(time_dtype)
    unit_dtype = np.uint16 if dataset.n_channels <= np.iinfo(np.uint16).max else np.uint32
    n = len(dataset)
    class_names = list(dataset.keys if class_names is None else class_names)
    files = list(dataset.files if files is None else files)
    if files and len(files) != n:
        raise DatasetError(
            f"files has {len(files)} names for {n} samples; pass one file name per sample"
        )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs["n_channels"] = int(dataset.n_channels)
        spikes = f.create_group("spikes")
        t_ds = spikes.create_dataset("times", (n,), dtype=h5py.vlen_dtype(time_dtype))
        u_ds = spikes.create_dataset("units", (n,), dtype=h5py.vlen_dtype(unit_dtype))
        for i, (t, u) in enumerate(zip(dataset.times, dataset.units)):
            t_ds[i] = np.asarray(t, dtype=time_dtype)
            u_ds[i] = np.asarray(u, dtype=unit_dtype)
        labels = np.asarray(dataset.labels)
        label_dtype = np.uint16 if labels.min(initial=0) >= 0 else np.int32
        f.create_dataset("labels", data=labels.astype(label_dtype), compression=compression)
        extra = f.create_group("extra")
        extra.create_dataset(
            "speaker", data=np.asarray(dataset.speakers, dtype=np.int32), compression=compression
        )
        for name, values in (("keys", class_names), ("files", files)):
            if values:
                extra.create_dataset(
                    name,
                    data=np.array([str(v) for v in values], dtype=object),
                    dtype=h5py.string_dtype("utf-8"),
                )
        if meta_info:
            meta = extra.create_group("meta_info")
            for name, values in meta_info.items():
                meta.create_dataset(
                    name,
                    data=np.array(list(values), dtype=object),
                    dtype=h5py.string_dtype("utf-8"),
                )
