"""Closed-form ridge classifier on binned spike counts: the reference a trained SNN must beat.

Features of a sample: spike counts in ``time_bins`` time bins x ``channel_groups`` groups of
neighbouring channels, ``log(1 + count)``, flattened. With the features standardised on the
training set (``z = (x - mean) / std``) and a bias column appended, the weights solve the
ridge problem against one-hot targets ``Y``::

    W = (Z^T Z + lambda I)^-1 Z^T Y,      predicted class = argmax_c (z W)_c

(the bias is penalised too; with standardised features that changes little).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gpuspike.bridge.errors import ModelError
from gpuspike.datasets.events import SpikeDataset


def count_features(
    dataset: SpikeDataset,
    time_bins: int = 10,
    channel_groups: int = 35,
    duration: float | None = None,
    relative_time: bool = True,
    log: bool = True,
) -> np.ndarray:
    """Binned spike counts ``(samples, time_bins * channel_groups)``.

    Parameters
    ----------
    dataset : SpikeDataset
        Events.
    time_bins, channel_groups : int
        Number of time bins and of equal channel groups (channel ``u`` is in group
        ``floor(u * channel_groups / n_channels)``).
    duration : float, optional
        With ``relative_time=False``: bins tile ``[0, duration)`` (default: the latest
        spike of the dataset); later spikes are dropped.
    relative_time : bool, optional
        Bins tile each sample's own span from its first to its last spike, making the
        features invariant to leading silence and speaking rate (default).
    log : bool, optional
        Return ``log(1 + count)``.
    """
    if time_bins < 1 or channel_groups < 1:
        raise ModelError("time_bins and channel_groups must be >= 1")
    n_ch = dataset.n_channels
    if not relative_time and duration is None:
        duration = max((float(t.max()) for t in dataset.times if len(t)), default=1.0)
        duration = np.nextafter(duration, np.inf)
    out = np.zeros((len(dataset), time_bins * channel_groups), dtype=np.float64)
    for i, (t, u) in enumerate(zip(dataset.times, dataset.units)):
        if len(t) == 0:
            continue
        t = np.asarray(t, dtype=np.float64)
        if relative_time:
            start = t.min()
            span = np.nextafter(t.max() - start, np.inf)
        else:
            start, span = 0.0, duration
        tb = np.floor((t - start) / span * time_bins).astype(np.int64)
        keep = (tb >= 0) & (tb < time_bins)
        g = np.asarray(u, dtype=np.int64)[keep] * channel_groups // n_ch
        np.add.at(out[i], tb[keep] * channel_groups + g, 1.0)
    return np.log1p(out) if log else out


@dataclass(frozen=True)
class RidgeClassifier:
    """A fitted ridge classifier: standardisation, weights ``(features + 1, classes)``."""

    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray
    classes: np.ndarray

    def decision(self, x: np.ndarray) -> np.ndarray:
        """Scores ``(samples, classes)``."""
        z = (x - self.mean) / self.std
        return np.hstack([z, np.ones((len(z), 1))]) @ self.weights

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted class of each row of ``x``."""
        return self.classes[np.argmax(self.decision(x), axis=1)]


def fit_ridge(x: np.ndarray, y: np.ndarray, lam: float = 10.0) -> RidgeClassifier:
    """Fit ``W = (Z^T Z + lam I)^-1 Z^T Y`` (see the module docstring)."""
    x = np.asarray(x, dtype=np.float64)
    classes, yi = np.unique(np.asarray(y), return_inverse=True)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std < 1e-12] = 1.0  # constant features carry nothing; keep them finite
    z = np.hstack([(x - mean) / std, np.ones((len(x), 1))])
    target = np.eye(len(classes))[yi]
    gram = z.T @ z + lam * np.eye(z.shape[1])
    weights = np.linalg.solve(gram, z.T @ target)
    return RidgeClassifier(mean, std, weights, classes)


def ridge_accuracy(
    features: np.ndarray,
    labels: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    lam: float = 10.0,
) -> float:
    """Accuracy on ``test`` of a ridge classifier fitted on ``train`` (index arrays)."""
    model = fit_ridge(features[train], labels[train], lam)
    return float(np.mean(model.predict(features[test]) == labels[test]))


def choose_lambda(
    features: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    lams: tuple[float, ...] = (1.0, 10.0, 100.0, 1000.0, 10000.0),
) -> float:
    """The ``lam`` of best mean leave-one-group-out accuracy on these samples only.

    Call it on a training set (groups = speakers) so that the test set never picks it.
    """
    scores = [loso_accuracy(features, labels, groups, lam)[0] for lam in lams]
    return float(lams[int(np.argmax(scores))])


def loso_accuracy(
    features: np.ndarray,
    labels: np.ndarray,
    speakers: np.ndarray,
    lam: float = 10.0,
) -> tuple[float, np.ndarray]:
    """Mean and per-speaker accuracy over leave-one-speaker-out folds."""
    accs = []
    for s in np.unique(speakers):
        held = speakers == s
        accs.append(
            ridge_accuracy(features, labels, np.flatnonzero(~held), np.flatnonzero(held), lam)
        )
    accs = np.array(accs)
    return float(accs.mean()), accs


def ridge_baseline(
    features: np.ndarray,
    labels: np.ndarray,
    speakers: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    lams: tuple[float, ...] = (1.0, 10.0, 100.0, 1000.0, 10000.0),
) -> dict[str, object]:
    """Official-split and LOSO accuracy with ``lam`` chosen without the evaluated samples.

    Official split: ``lam`` by leave-one-speaker-out on ``train``, then fit on ``train`` and
    score ``test``. LOSO: for each held-out speaker, ``lam`` by leave-one-speaker-out on the
    other speakers (nested), fit on them, score the held-out one.
    """
    lam = choose_lambda(features[train], labels[train], speakers[train], lams)
    official = ridge_accuracy(features, labels, train, test, lam)
    per, chosen = [], []
    for s in np.unique(speakers):
        rest, held = np.flatnonzero(speakers != s), np.flatnonzero(speakers == s)
        lam_s = choose_lambda(features[rest], labels[rest], speakers[rest], lams)
        chosen.append(lam_s)
        per.append(ridge_accuracy(features, labels, rest, held, lam_s))
    return {
        "official_split_accuracy": official,
        "official_lambda": lam,
        "loso_mean_accuracy": float(np.mean(per)),
        "loso_per_speaker": [float(a) for a in per],
        "loso_lambdas": chosen,
    }
