"""Spoken digits end to end: encode FSDD audio to spikes, train a recurrent SNN with EventProp.

The seed's pipeline on the Free Spoken Digit Dataset (3000 recordings, 6 speakers):

1. encode every recording with the cochlea-like encoder into an SHD-format file (cached by
   content hash, so a rerun skips it);
2. split: the official split (takes 0-4 test) or one leave-one-speaker-out fold;
3. augment the training set: blends of same-class pairs aligned on their centres of mass
   (``--blend`` extra examples) and a random channel shift per example and epoch
   (``--shift``, in pooled channels);
4. pool each 5 neighbouring channels (``--pool``; 700 -> 140 inputs) and train
   140 -> 256 (recurrent LIF) -> 10 (LI) with the exponentially weighted voltage loss,
   spike-count regularisation and AutoClip gradient clipping (the ``shd`` defaults of
   ``gpuspike train``);
5. print one JSON line with the test accuracy.

Measured on 2 CPU cores (NumPy engine), official split, the defaults below (no blends, no
shift, encoder v2) with the 5 ms synapse of that time: 97.0 % test after 90 epochs (~17-20 s
per epoch on one core; 94.3 % after 60). With the 40 ms synapse (the SHD default since
2026-12-08), cpp engine: EventProp 98.7 % after 90 epochs; after 30, 97.0 % with EventProp,
99.3 % with ``--rule bptt``, 98.0 % with ``--rule eprop`` (measured through ``gpuspike
train`` with this recipe); see README and benchmarks/RESULTS.md.

The same training runs on the real SHD with
``gpuspike train --dataset shd --train shd_train.h5 --test shd_test.h5``, and the LOSO sweep
over all 6 speakers with ``gpuspike sweep examples/sweeps/loso_fsdd.toml``.

    python examples/datasets/train_fsdd.py --recordings ../shared/data/fsdd/recordings \
        --epochs 90
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from gpuspike.datasets.encode import encode_directory
from gpuspike.datasets.fsdd import fsdd_takes, official_split
from gpuspike.datasets.shd import read_shd, write_shd
from gpuspike.training_cli import RULES, run_training


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recordings", required=True, help="FSDD recordings/ folder")
    p.add_argument("--work", default="fsdd_out", help="folder for the h5 files and plots")
    p.add_argument("--channels", type=int, default=700)
    p.add_argument("--loso-speaker", type=int, help="hold this speaker out (default: official)")
    p.add_argument("--blend", type=int, default=0, help="blended extra training examples")
    p.add_argument("--shift", type=int, default=0,
                   help="random channel shift (+- pooled channels) per example and epoch")
    p.add_argument("--align-onset", type=float, default=None, metavar="Q",
                   help="move each sample's Q-quantile spike time to 10 ms (LOSO: 0.05)")
    p.add_argument("--time-scale", type=float, default=0.0,
                   help="random time scaling by U[1-X, 1+X] per example and epoch")
    p.add_argument("--pool", type=int, default=5, help="merge each K neighbouring channels")
    p.add_argument("--epochs", type=int, default=90)
    p.add_argument("--dt", type=float, default=5e-3)
    p.add_argument("--duration", type=float, default=0.6,
                   help="trial length in s (FSDD: 98 %% of the recordings are shorter)")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--lr-decay", type=float, default=0.98, help="learning-rate factor per epoch")
    p.add_argument("--engine", default="auto")
    p.add_argument("--rule", default="eventprop", choices=RULES,
                   help="training rule (each with its SHD defaults; see gpuspike train)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    encoded = work / f"fsdd_{args.channels}.h5"
    if not encoded.exists():
        encode_directory(args.recordings, encoded, channels=args.channels, progress=True)
    data = read_shd(encoded)
    if args.loso_speaker is None:
        train_idx, test_idx = official_split(fsdd_takes(data))
    else:
        held = data.speakers == args.loso_speaker
        train_idx, test_idx = np.flatnonzero(~held), np.flatnonzero(held)
    train, test = data.subset(train_idx), data.subset(test_idx)
    write_shd(work / "train.h5", train)
    write_shd(work / "test.h5", test)
    result = run_training(dict(
        dataset="shd", train=str(work / "train.h5"), test=str(work / "test.h5"),
        epochs=args.epochs, dt=args.dt, duration=args.duration, hidden=args.hidden,
        lr=args.lr, lr_decay=args.lr_decay, engine=args.engine, pool_channels=args.pool,
        rule=args.rule,
        init_in=(0.01, 0.01),  # pooled inputs fire ~5x as often: a 5x smaller mean
        seed=args.seed, augment_shift=args.shift, augment_blend=args.blend,
        augment_time_scale=args.time_scale, align_onset=args.align_onset,
        plots=str(work / "plots"),
        checkpoint=str(work / "checkpoint"), resume=True))
    print(json.dumps({"task": "fsdd", "split": "official" if args.loso_speaker is None
                      else f"loso:{args.loso_speaker}", **result}, default=str))


if __name__ == "__main__":
    main()
