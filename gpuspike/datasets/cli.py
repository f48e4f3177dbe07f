"""The ``gpuspike encode-audio`` subcommand: WAV folder -> SHD-format spike file."""

from __future__ import annotations

import argparse
import json


def add_encode_audio_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``gpuspike encode-audio WAV_DIR OUT.h5``."""
    p.add_argument("wav_dir", metavar="WAV_DIR", help="folder of .wav files (e.g. FSDD recordings)")
    p.add_argument("out", metavar="OUT.h5", help="SHD-format h5 file to write")
    p.add_argument("--channels", type=int, default=700, help="filterbank channels (700 as SHD)")
    p.add_argument("--dt", type=float, default=1e-3, help="time step in seconds")
    p.add_argument("--encoder", choices=("cochlea", "mel"), default="cochlea",
                   help="cochlea: gammatone filterbank and LIF per channel (default); "
                        "mel: mel-spectrogram rate code with Poisson spikes")
    p.add_argument("--max-rate", type=float, default=60.0,
                   help="mel: rate in Hz of the loudest bin (default 60)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument(
        "--cache",
        default=None,
        help="cache folder (default ~/.cache/gpuspike/encode); 'none' disables it",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_encode_audio(args: argparse.Namespace) -> int:
    """Encode, write the file and print one JSON line with the figures."""
    from gpuspike.datasets.encode import DEFAULT_CACHE, encode_directory
    from gpuspike.datasets.melcode import MelPoissonConfig

    cache = (
        DEFAULT_CACHE
        if args.cache is None
        else (None if args.cache.lower() == "none" else args.cache)
    )
    result = encode_directory(
        args.wav_dir,
        args.out,
        channels=args.channels,
        dt=args.dt,
        config=MelPoissonConfig(channels=args.channels, dt=args.dt, max_rate=args.max_rate)
        if args.encoder == "mel" else None,
        workers=args.workers,
        cache_dir=cache,
        progress=not args.no_progress,
    )
    print(json.dumps({**result.summary(), "out": str(args.out)}))
    return 0
