"""Encode the Free Spoken Digit Dataset to spikes and report the figures and ridge baseline.

    python examples/datasets/encode_fsdd.py /path/to/free-spoken-digit-dataset/recordings \
        [--out /tmp/fsdd_spikes.h5] [--channels 700] [--workers N] [--cache DIR]

Prints JSON lines: the encoding (files, seconds, spikes per sample, rate per channel, which
SHD puts at about 10 Hz), the spread of rates over channels, and the closed-form ridge
classifier's accuracy on the official split (takes 0-4 = test) and its mean
leave-one-speaker-out accuracy, its ridge strength chosen by leave-one-speaker-out on the
training speakers only. A second run reads the spikes from the cache.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from gpuspike.datasets.audio import EncoderConfig
from gpuspike.datasets.baseline import count_features, ridge_baseline
from gpuspike.datasets.encode import DEFAULT_CACHE, DIGIT_NAMES, encode_files
from gpuspike.datasets.events import SpikeDataset
from gpuspike.datasets.fsdd import labels_speakers_takes, list_fsdd, official_split
from gpuspike.datasets.shd import write_shd


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "recordings",
        nargs="?",
        default=None,
        help="FSDD recordings folder (default: $GPUSPIKE_FSDD)",
    )
    p.add_argument("--out", default=None, help="also write the spikes as SHD-format h5")
    p.add_argument("--channels", type=int, default=700)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--cache", default=str(DEFAULT_CACHE))
    p.add_argument("--time-bins", type=int, default=10)
    p.add_argument("--channel-groups", type=int, default=35)
    args = p.parse_args()

    files = list_fsdd(args.recordings)
    config = EncoderConfig(channels=args.channels)
    result = encode_files(files, config, workers=args.workers, cache_dir=args.cache, progress=True)
    labels, speakers, takes = labels_speakers_takes(files)
    data = SpikeDataset(
        result.times, result.units, labels, speakers, config.channels,
        keys=list(DIGIT_NAMES), files=[f.name for f in files],
    )
    if args.out:
        write_shd(args.out, data)
    print(json.dumps({"encoding": result.summary()}))

    per_channel = np.bincount(np.concatenate(data.units), minlength=config.channels)
    rate = per_channel / result.durations.sum()
    print(
        json.dumps(
            {
                "rate_per_channel_hz": {
                    "mean": round(float(rate.mean()), 3),
                    "median": round(float(np.median(rate)), 3),
                    "p5": round(float(np.percentile(rate, 5)), 3),
                    "p95": round(float(np.percentile(rate, 95)), 3),
                    "silent_channels": int((per_channel == 0).sum()),
                }
            }
        )
    )

    start = time.perf_counter()
    x = count_features(data, args.time_bins, args.channel_groups)
    train, test = official_split(takes)
    report = ridge_baseline(x, labels, speakers, train, test)
    report = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in report.items()}
    report["loso_per_speaker"] = [round(a, 4) for a in report["loso_per_speaker"]]
    features = f"{args.time_bins} time bins x {args.channel_groups} channel groups, log(1+n)"
    seconds = round(time.perf_counter() - start, 2)
    print(json.dumps({"ridge": {"features": features, **report, "seconds": seconds}}))


if __name__ == "__main__":
    main()
