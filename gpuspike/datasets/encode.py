"""Encode folders of WAV files to SHD-format spike files, in parallel and cached.

Each file's spikes are cached under ``cache_dir / key[:2] / key.npz`` where
``key = sha256(wav bytes + encoder parameters + encoder version)``, so a rerun, or a rerun
on a renamed copy, reads the spikes instead of encoding again. Files are spread over a
``concurrent.futures.ProcessPoolExecutor`` (one process per CPU core by default).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gpuspike.datasets.audio import EncoderConfig, encode_array, read_wav
from gpuspike.datasets.errors import DatasetError
from gpuspike.datasets.events import SpikeDataset
from gpuspike.datasets.fsdd import parse_fsdd_name
from gpuspike.datasets.melcode import MelPoissonConfig, mel_poisson_encode

#: the encoders' parameter types: the cochlea-like LIF code or the mel Poisson rate code
AnyEncoderConfig = EncoderConfig | MelPoissonConfig

#: default cache folder of encoded spikes
DEFAULT_CACHE = Path("~/.cache/gpuspike/encode")
#: class names of spoken digits (label ``d`` is ``DIGIT_NAMES[d]``): the ``SpikeDataset.keys``
#: of encoded FSDD datasets, written to ``extra/keys``
DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@dataclass(frozen=True)
class EncodeResult:
    """Spikes of a list of files, with what the encoding cost and produced."""

    times: list[np.ndarray]
    units: list[np.ndarray]
    durations: np.ndarray  # seconds of audio per file
    cache_hits: int
    seconds: float
    channels: int

    @property
    def spikes_per_sample(self) -> float:
        """Mean number of spikes per file."""
        return float(np.mean([len(t) for t in self.times])) if self.times else 0.0

    @property
    def rate_per_channel(self) -> float:
        """Mean rate in Hz per channel: ``sum spikes / (channels * sum durations)``."""
        total = float(self.durations.sum()) * self.channels
        return sum(len(t) for t in self.times) / total if total > 0 else 0.0

    def summary(self) -> dict[str, float | int]:
        """The figures as a JSON-ready dict."""
        return {
            "files": len(self.times),
            "seconds": round(self.seconds, 2),
            "cache_hits": self.cache_hits,
            "channels": self.channels,
            "spikes_per_sample": round(self.spikes_per_sample, 1),
            "rate_per_channel_hz": round(self.rate_per_channel, 3),
            "audio_seconds_per_sample": round(float(np.mean(self.durations)), 4)
            if len(self.durations)
            else 0.0,
        }


def cache_key(wav_bytes: bytes, config: AnyEncoderConfig) -> str:
    """``sha256(wav bytes + config.key())`` as hex."""
    h = hashlib.sha256(wav_bytes)
    h.update(config.key().encode())
    return h.hexdigest()


def _encode_one(
    path: str, config: AnyEncoderConfig, cache_dir: str | None
) -> tuple[np.ndarray, np.ndarray, float, bool]:
    """Worker: ``(times, units, duration, cache_hit)`` of one WAV file."""
    data = Path(path).read_bytes()
    target = None
    key = cache_key(data, config)
    if cache_dir is not None:
        target = Path(cache_dir) / key[:2] / f"{key}.npz"
        if target.is_file():
            try:
                with np.load(target) as z:
                    return z["times"], z["units"].astype(np.int64), float(z["duration"]), True
            except (OSError, ValueError, KeyError):
                pass  # a torn or foreign file: encode again and overwrite it
    x, fs = read_wav(path)
    if isinstance(config, MelPoissonConfig):
        # the draw is seeded by the recording and the parameters: the same spikes each time
        times, units = mel_poisson_encode(x, fs, config, seed=int(key[:16], 16))
    else:
        times, units = encode_array(x, fs, config)
    duration = len(x) / fs
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        # write then rename, so a reader never sees half a file (parallel workers, crashes)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp.npz")
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f,
                times=times,
                units=units.astype(np.uint16 if config.channels <= 65535 else np.uint32),
                duration=duration,
            )
        os.replace(tmp, target)
    return times, units, duration, False


def encode_files(
    files: list[Path] | list[str],
    config: AnyEncoderConfig | None = None,
    workers: int | None = None,
    cache_dir: str | os.PathLike | None = DEFAULT_CACHE,
    progress: bool = False,
) -> EncodeResult:
    """Encode WAV files to spikes with ``workers`` processes and the content-hash cache.

    Parameters
    ----------
    files : list of path
        WAV files, encoded in this order.
    config : EncoderConfig or MelPoissonConfig, optional
        Encoder and its parameters (default ``EncoderConfig()``, the cochlea-like code).
    workers : int, optional
        Processes; default ``os.cpu_count()``; 1 encodes in this process.
    cache_dir : path or None, optional
        Cache folder (``None`` disables caching; default ``~/.cache/gpuspike/encode``).
    progress : bool, optional
        Show a tqdm progress bar on stderr.
    """
    config = EncoderConfig() if config is None else config
    config.validate()
    files = [str(f) for f in files]
    cache = None if cache_dir is None else str(Path(cache_dir).expanduser())
    workers = (os.cpu_count() or 1) if workers is None else max(1, int(workers))
    start = time.perf_counter()
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(files), unit="file", desc="encode")
    if workers == 1 or len(files) <= 1:
        results = []
        for f in files:
            results.append(_encode_one(f, config, cache))
            if progress:
                bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            chunk = max(1, min(32, len(files) // (8 * workers)))
            results = []
            for r in pool.map(
                _encode_one, files, [config] * len(files), [cache] * len(files), chunksize=chunk
            ):
                results.append(r)
                if progress:
                    bar.update()
    if progress:
        bar.close()
    return EncodeResult(
        times=[r[0] for r in results],
        units=[r[1] for r in results],
        durations=np.array([r[2] for r in results]),
        cache_hits=sum(r[3] for r in results),
        seconds=time.perf_counter() - start,
        channels=config.channels,
    )


def encode_directory(
    wav_dir: str | os.PathLike,
    out_h5: str | os.PathLike,
    channels: int = 700,
    dt: float = 1e-3,
    workers: int | None = None,
    cache_dir: str | os.PathLike | None = DEFAULT_CACHE,
    config: AnyEncoderConfig | None = None,
    progress: bool = False,
) -> EncodeResult:
    """Encode every ``.wav`` in ``wav_dir`` and write an SHD-format h5 file.

    Labels and speakers come from FSDD names ``{digit}_{speaker}_{index}.wav`` (speaker id =
    position in the sorted speaker names, stored in ``extra/meta_info/speaker_names``);
    other names get label and speaker ``-1``. As in the real SHD, ``extra/keys`` holds the
    class names (:data:`DIGIT_NAMES`, ``"zero"`` .. ``"nine"``); the file name of each sample
    goes to ``extra/files``. :func:`gpuspike.datasets.shd.read_shd` reads them back as the
    dataset's ``keys`` and ``files``.

    Parameters
    ----------
    wav_dir : path
        Folder of ``.wav`` files (not searched recursively).
    out_h5 : path
        Output file, overwritten.
    channels, dt : int, float
        Encoder channels and time step (ignored when ``config`` is given).
    workers, cache_dir, progress
        As in :func:`encode_files`.
    config : EncoderConfig or MelPoissonConfig, optional
        Full encoder parameters (a ``MelPoissonConfig`` selects the mel rate code).
    """
    from gpuspike.datasets.shd import write_shd

    root = Path(wav_dir)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder; give the folder that holds the .wav files")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() == ".wav")
    if not files:
        raise DatasetError(f"{root} holds no .wav files")
    config = EncoderConfig(channels=channels, dt=dt) if config is None else config
    result = encode_files(files, config, workers=workers, cache_dir=cache_dir, progress=progress)
    parsed = [parse_fsdd_name(f.name) for f in files]
    speaker_names = sorted({p.speaker for p in parsed if p is not None})
    sid = {s: i for i, s in enumerate(speaker_names)}
    dataset = SpikeDataset(
        times=result.times,
        units=result.units,
        labels=np.array([p.digit if p else -1 for p in parsed], dtype=np.int64),
        speakers=np.array([sid[p.speaker] if p else -1 for p in parsed], dtype=np.int64),
        n_channels=config.channels,
        keys=list(DIGIT_NAMES),
        files=[f.name for f in files],
    )
    write_shd(out_h5, dataset, meta_info={"speaker_names": speaker_names})
    return result
