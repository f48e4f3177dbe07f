"""The Free Spoken Digit Dataset (FSDD): file names, speakers, official split and LOSO folds.

FSDD (Jakobovski et al., CC BY-SA 4.0) holds ``recordings/{digit}_{speaker}_{index}.wav``:
digits 0-9, 50 takes (index 0-49) per digit and speaker, 8 kHz mono. The official split puts
takes 0-4 in the test set and 5-49 in the training set; leave-one-speaker-out (LOSO) makes
one fold per speaker with that speaker's recordings as the validation set.

The recordings folder is an argument; when it is omitted the environment variable
``GPUSPIKE_FSDD`` names it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gpuspike.datasets.errors import DatasetError
from gpuspike.datasets.events import SpikeDataset

#: environment variable naming the FSDD ``recordings`` folder
FSDD_ENV = "GPUSPIKE_FSDD"
#: takes ``0 .. OFFICIAL_TEST_TAKES - 1`` form the official test set
OFFICIAL_TEST_TAKES = 5

_NAME = re.compile(r"^(\d)_([A-Za-z0-9-]+)_(\d+)\.wav$")


@dataclass(frozen=True)
class FsddName:
    """The parts of an FSDD file name ``{digit}_{speaker}_{index}.wav``."""

    digit: int
    speaker: str
    index: int


def parse_fsdd_name(name: str | os.PathLike) -> FsddName | None:
    """Parse ``{digit}_{speaker}_{index}.wav`` (directories ignored); ``None`` if no match."""
    m = _NAME.match(Path(name).name)
    if m is None:
        return None
    return FsddName(int(m.group(1)), m.group(2), int(m.group(3)))


def recordings_dir(path: str | os.PathLike | None = None) -> Path:
    """The FSDD recordings folder: ``path``, else ``$GPUSPIKE_FSDD``.

    A folder that holds a ``recordings`` subfolder is accepted too.
    """
    if path is None:
        env = os.environ.get(FSDD_ENV)
        if not env:
            raise DatasetError(
                f"no FSDD folder given; pass the path of FSDD's recordings folder or set "
                f"{FSDD_ENV}=/path/to/free-spoken-digit-dataset/recordings"
            )
        path = env
    p = Path(path).expanduser()
    if (p / "recordings").is_dir():
        p = p / "recordings"
    if not p.is_dir():
        raise DatasetError(f"FSDD recordings folder {p} does not exist; check the path")
    return p


def list_fsdd(path: str | os.PathLike | None = None) -> list[Path]:
    """All FSDD-named ``.wav`` files of the folder, sorted by name."""
    root = recordings_dir(path)
    files = sorted(p for p in root.iterdir() if parse_fsdd_name(p.name) is not None)
    if not files:
        raise DatasetError(
            f"{root} holds no files named {{digit}}_{{speaker}}_{{index}}.wav; point at "
            "FSDD's recordings folder"
        )
    return files


def speakers_of(names: list[str] | list[Path]) -> list[str]:
    """The distinct speaker names, sorted (speaker id = position in this list)."""
    return sorted({_parse_or_raise(n).speaker for n in names})


def _parse_or_raise(name: str | os.PathLike) -> FsddName:
    parsed = parse_fsdd_name(name)
    if parsed is None:
        raise DatasetError(f"{name} is not an FSDD file name {{digit}}_{{speaker}}_{{index}}.wav")
    return parsed


def labels_speakers_takes(
    names: list[str] | list[Path], speakers: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Digit label, speaker id and take index of each file name (int64 arrays)."""
    parsed = [_parse_or_raise(n) for n in names]
    speakers = speakers_of(names) if speakers is None else speakers
    sid = {s: i for i, s in enumerate(speakers)}
    return (
        np.array([p.digit for p in parsed], dtype=np.int64),
        np.array([sid[p.speaker] for p in parsed], dtype=np.int64),
        np.array([p.index for p in parsed], dtype=np.int64),
    )


def official_split(takes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays ``(train, test)``: takes 0-4 test, the rest train."""
    takes = np.asarray(takes)
    test = np.flatnonzero(takes < OFFICIAL_TEST_TAKES)
    train = np.flatnonzero(takes >= OFFICIAL_TEST_TAKES)
    return train, test


def loso_folds(speakers: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Leave-one-speaker-out folds ``[(train, held_out), ...]``, one per speaker id, sorted."""
    speakers = np.asarray(speakers)
    return [
        (np.flatnonzero(speakers != s), np.flatnonzero(speakers == s)) for s in np.unique(speakers)
    ]


def fsdd_takes(dataset: SpikeDataset) -> np.ndarray:
    """Take index of each sample of an FSDD :class:`SpikeDataset` (from its ``files``)."""
    if len(dataset.files) != len(dataset):
        raise DatasetError(
            "the dataset has no per-sample file names (SpikeDataset.files); encode it with "
            "load_fsdd_spikes or encode_directory, or read such a file with read_shd"
        )
    return np.array([_parse_or_raise(f).index for f in dataset.files], dtype=np.int64)


def load_fsdd_spikes(
    path: str | os.PathLike | None = None,
    channels: int = 700,
    cache: str | os.PathLike | None = None,
    workers: int | None = None,
    progress: bool = False,
    config: object | None = None,
) -> SpikeDataset:
    """Encode (or load from the cache) every FSDD recording to spikes.

    Parameters
    ----------
    path : str or path-like, optional
        FSDD recordings folder; default ``$GPUSPIKE_FSDD``.
    channels : int, optional
        Encoder channels (ignored when ``config`` is given).
    cache : str or path-like, optional
        Encoding cache folder (default ``~/.cache/gpuspike/encode``).
    workers : int, optional
        Encoding processes (default: all CPU cores).
    config : EncoderConfig, optional
        Full encoder parameters.

    Returns
    -------
    SpikeDataset
        Labels = digits, speakers = ids into the sorted speaker names, keys = the class
        names (:data:`gpuspike.datasets.encode.DIGIT_NAMES`), files = the file names.
    """
    from gpuspike.datasets.audio import EncoderConfig
    from gpuspike.datasets.encode import DIGIT_NAMES, encode_files

    files = list_fsdd(path)
    config = EncoderConfig(channels=channels) if config is None else config
    result = encode_files(files, config, workers=workers, cache_dir=cache, progress=progress)
    labels, speakers, _ = labels_speakers_takes(files)
    return SpikeDataset(
        times=result.times,
        units=result.units,
        labels=labels,
        speakers=speakers,
        n_channels=config.channels,
        keys=list(DIGIT_NAMES),
        files=[f.name for f in files],
    )
