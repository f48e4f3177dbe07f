"""Expand a sweep config into trials, each with a stable id from its canonical JSON."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any

from gpuspike.sweep.config import LOSO_KEY, SEED_KEY, SweepConfig

#: hex digits of a trial id (48 bits: collisions are negligible for any sweep)
ID_LENGTH = 12


def canonical_json(value: Any) -> str:
    """The one JSON text of ``value``: sorted keys, no spaces, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def trial_id(trial: str, config: dict[str, Any]) -> str:
    """Stable id of a trial: a short SHA-256 of the trial function and its config.

    Parameters
    ----------
    trial : str
        ``"module:function"`` of the trial callable.
    config : dict
        The trial's flat config.

    Returns
    -------
    str
        :data:`ID_LENGTH` hex digits; equal configs give equal ids in any process.
    """
    text = canonical_json({"trial": trial, "config": config})
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:ID_LENGTH]


@dataclass(frozen=True)
class Trial:
    """One run of the trial function.

    Parameters
    ----------
    id : str
        Stable id (:func:`trial_id`); names the result file ``trials/<id>.json``.
    trial : str
        ``"module:function"`` to call.
    config : dict
        The flat dict passed to the trial function.
    params : dict
        The grid values of this trial (the group it is averaged in).
    seed : int, optional
        The seed when the sweep lists ``seeds``.
    fold : str or int, optional
        The held-out speaker when ``folds = "loso"``.
    """

    id: str
    trial: str
    config: dict[str, Any]
    params: dict[str, Any]
    seed: Any = None
    fold: Any = None

    @property
    def group(self) -> str:
        """Canonical JSON of :attr:`params`: trials of one group differ only in seed/fold."""
        return canonical_json(self.params)


def expand_trials(config: SweepConfig) -> list[Trial]:
    """All trials of a sweep: grid combinations x LOSO folds x seeds, in that nesting.

    Parameters
    ----------
    config : SweepConfig
        The sweep.

    Returns
    -------
    list of Trial
        In a deterministic order (grid keys and values as written, then speakers, then
        seeds); ids are unique.
    """
    keys = list(config.grid)
    combos = itertools.product(*(config.grid[k] for k in keys))
    folds: tuple[Any, ...] = config.speakers if config.folds == "loso" else (None,)
    seeds: tuple[Any, ...] = config.seeds if config.seeds is not None else (None,)
    trials = []
    for combo in combos:
        params = dict(zip(keys, combo))
        for fold in folds:
            for seed in seeds:
                flat = {**config.base, **params}
                if fold is not None:
                    flat[LOSO_KEY] = fold
                if seed is not None:
                    flat[SEED_KEY] = seed
                trials.append(
                    Trial(
                        id=trial_id(config.trial, flat),
                        trial=config.trial,
                        config=flat,
                        params=params,
                        seed=seed,
                        fold=fold,
                    )
                )
    return trials
