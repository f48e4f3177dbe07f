"""Parameter sweeps and LOSO cross-validation as Ray tasks (or in-process), resumable.

A sweep config (TOML or JSON, :mod:`gpuspike.sweep.config`) names fixed options, a grid,
seeds and optional leave-one-speaker-out folds; :mod:`gpuspike.sweep.trials` expands it into
trials with stable ids; :mod:`gpuspike.sweep.runner` runs the unfinished ones and
:mod:`gpuspike.sweep.aggregate` / :mod:`gpuspike.sweep.plot` write the results. The command
line is ``gpuspike sweep CONFIG`` (:mod:`gpuspike.sweep.cli`).

Ray is imported only when the Ray executor runs; install it with ``pip install
gpuspike[sweep]``.
"""

from __future__ import annotations

from gpuspike.sweep.config import (
    DEFAULT_TRIAL,
    LOSO_KEY,
    PlotSpec,
    Resources,
    SweepConfig,
    load_sweep_config,
    parse_sweep_config,
)
from gpuspike.sweep.errors import SweepError
from gpuspike.sweep.runner import SweepSummary, run_sweep
from gpuspike.sweep.trials import Trial, expand_trials, trial_id

__all__ = [
    "DEFAULT_TRIAL",
    "LOSO_KEY",
    "PlotSpec",
    "Resources",
    "SweepConfig",
    "SweepError",
    "SweepSummary",
    "Trial",
    "expand_trials",
    "load_sweep_config",
    "parse_sweep_config",
    "run_sweep",
    "trial_id",
]
