"""Read and check a sweep config (TOML or JSON) into frozen dataclasses.

A sweep config is a table with these keys (only ``base`` or ``grid`` is needed)::

    name = "loso_fsdd"                      # label of plots and summaries (default: file stem)
    trial = "gpuspike.training_cli:run_training"   # "module:function", called with one dict
    output = "sweeps/loso_fsdd"             # result folder, relative to the working directory
    address = "auto"                        # Ray cluster address; omit for a local Ray
    metric = "test_acc"                     # metric of the summary and the plot
    mode = "max"                            # "max" or "min": which value of metric is best
    max_concurrent = 4                      # trials in flight at once (default: no limit)
    seeds = [0, 1, 2]                       # one trial per seed (or an int n: seeds 0..n-1)
    folds = "loso"                          # one trial per held-out speaker ...
    speakers = [0, 1, 2]                    # ... of these ids/names (or an int n: ids 0..n-1)

    [base]                                  # fixed options of every trial
    epochs = 20

    [grid]                                  # cartesian product: one trial per combination
    lr = [1e-3, 3e-3]
    hidden = [128, 256]

    [resources]                             # per trial; GPUs are asked only where Ray has some
    gpus_per_trial = 1
    cpus_per_trial = 1

    [plot]                                  # all optional
    x = "lr"                                # swept key on the x axis (default: first grid key)
    metric = "test_acc"                     # default: the sweep's metric
    logx = true                             # default: log axis when x spans >= 2 decades

    [runtime_env]                           # passed to ray.init (e.g. working_dir on a cluster)

Each trial calls ``trial`` with one flat dict: ``base``, then one value of each ``grid`` key,
then ``seed = s`` (when ``seeds`` is given) and ``loso_speaker = k`` (when ``folds = "loso"``).
A held-out speaker ``k`` is passed as written in ``speakers``: an integer id (the position in
the sorted speaker names, as :class:`gpuspike.datasets.events.SpikeDataset` and the encoded
SHD-format files store them; what the default trial function expects) or, for trial
functions that take them, a name. A key may appear in only one
place, so ``seed`` may not also be a ``base`` or ``grid`` key when ``seeds`` is given.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpuspike.sweep.errors import SweepError

#: trial function used when the config names none
DEFAULT_TRIAL = "gpuspike.training_cli:run_training"
#: key of the held-out speaker in a LOSO trial's config
LOSO_KEY = "loso_speaker"
#: key of the seed in a trial's config when the sweep lists ``seeds``
SEED_KEY = "seed"
#: the values ``folds`` may take
FOLD_KINDS = ("loso",)

_TOP_KEYS = (
    "name",
    "trial",
    "base",
    "grid",
    "seeds",
    "folds",
    "speakers",
    "resources",
    "address",
    "output",
    "metric",
    "mode",
    "max_concurrent",
    "runtime_env",
    "plot",
)


@dataclass(frozen=True)
class Resources:
    """What one trial asks of Ray.

    Parameters
    ----------
    gpus_per_trial : float
        GPUs per trial where the cluster has GPUs (fractions share a GPU); ignored on a
        cluster without GPUs, where trials run on CPUs.
    cpus_per_trial : float
        CPU cores per trial.
    """

    gpus_per_trial: float = 1.0
    cpus_per_trial: float = 1.0


@dataclass(frozen=True)
class PlotSpec:
    """What the sweep's plot shows; ``None`` fields take the defaults of :mod:`.plot`.

    Parameters
    ----------
    x : str, optional
        Grid key on the x axis (default: the first grid key).
    metric : str, optional
        Metric on the y axis (default: the sweep's ``metric``).
    logx : bool, optional
        Log-scaled x axis (default: when the numeric x values span two decades or more).
    """

    x: str | None = None
    metric: str | None = None
    logx: bool | None = None


@dataclass(frozen=True)
class SweepConfig:
    """A checked sweep config; see the module docstring for the file format.

    Parameters
    ----------
    name : str
        Label of the sweep.
    trial : str
        ``"module:function"`` of the trial callable.
    base : dict
        Options shared by every trial.
    grid : dict of str to tuple
        Swept keys and their values, in file order.
    seeds : tuple, optional
        One trial per seed (key ``seed``).
    folds : str, optional
        ``"loso"``: one trial per held-out speaker (key ``loso_speaker``).
    speakers : tuple, optional
        The held-out speakers of the LOSO folds (names or integer ids).
    resources : Resources
        Per-trial resources.
    address : str, optional
        Ray cluster address; ``None`` starts (or joins) a local Ray.
    output : pathlib.Path
        Result folder.
    metric : str
        Metric of the summary and the plot.
    mode : str
        ``"max"`` or ``"min"``: which value of ``metric`` is best.
    max_concurrent : int, optional
        Trials in flight at once; ``None`` leaves it to Ray's resource scheduling.
    runtime_env : dict, optional
        Ray runtime environment of the trials.
    plot : PlotSpec
        What the plot shows.
    source : pathlib.Path, optional
        File the config came from.
    """

    name: str
    trial: str = DEFAULT_TRIAL
    base: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    seeds: tuple[Any, ...] | None = None
    folds: str | None = None
    speakers: tuple[Any, ...] | None = None
    resources: Resources = field(default_factory=Resources)
    address: str | None = None
    output: Path = Path("sweeps/sweep")
    metric: str = "test_acc"
    mode: str = "max"
    max_concurrent: int | None = None
    runtime_env: dict[str, Any] | None = None
    plot: PlotSpec = field(default_factory=PlotSpec)
    source: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-ready data (what ``results.json`` records)."""
        return {
            "name": self.name,
            "trial": self.trial,
            "base": dict(self.base),
            "grid": {k: list(v) for k, v in self.grid.items()},
            "seeds": None if self.seeds is None else list(self.seeds),
            "folds": self.folds,
            "speakers": None if self.speakers is None else list(self.speakers),
            "resources": {
                "gpus_per_trial": self.resources.gpus_per_trial,
                "cpus_per_trial": self.resources.cpus_per_trial,
            },
            "address": self.address,
            "output": str(self.output),
            "metric": self.metric,
            "mode": self.mode,
            "max_concurrent": self.max_concurrent,
            "runtime_env": self.runtime_env,
            "plot": {"x": self.plot.x, "metric": self.plot.metric, "logx": self.plot.logx},
            "source": None if self.source is None else str(self.source),
        }


def load_sweep_config(path: str | os.PathLike) -> SweepConfig:
    """Read a sweep config from a ``.toml`` or ``.json`` file.

    Parameters
    ----------
    path : str or path-like
        The config file.

    Returns
    -------
    SweepConfig
        The checked config; ``name`` defaults to the file stem.

    Raises
    ------
    SweepError
        The file is missing, unreadable, of another format, or its content is wrong.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise SweepError(f"sweep config {p} does not exist; pass the path of a .toml or .json")
    suffix = p.suffix.lower()
    try:
        if suffix == ".toml":
            data = _load_toml(p)
        elif suffix == ".json":
            data = json.loads(p.read_text(encoding="utf-8"))
        else:
            raise SweepError(
                f"sweep config {p} has suffix {p.suffix!r}; write it as .toml or .json"
            )
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, SweepError):
            raise
        raise SweepError(f"sweep config {p} is not valid {suffix[1:].upper()}: {exc}") from exc
    if not isinstance(data, dict):
        raise SweepError(f"sweep config {p} must hold a table (JSON object) at the top level")
    return parse_sweep_config(data, source=p)


def _load_toml(p: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError as exc:
            raise SweepError(
                f"reading {p} needs tomllib (Python >= 3.11) or `pip install tomli`; or "
                "write the config as JSON"
            ) from exc
    with p.open("rb") as fh:
        return tomllib.load(fh)


def parse_sweep_config(
    data: Mapping[str, Any], source: str | os.PathLike | None = None
) -> SweepConfig:
    """Check a sweep config already read into a mapping.

    Parameters
    ----------
    data : mapping
        The top-level table (see the module docstring).
    source : str or path-like, optional
        Where it came from (for messages; its stem is the default ``name``).

    Returns
    -------
    SweepConfig
        The checked config.

    Raises
    ------
    SweepError
        Naming the bad key and what to write instead.
    """
    where = f"sweep config {source}" if source is not None else "sweep config"
    for key in data:
        if key not in _TOP_KEYS:
            raise SweepError(f"{where}: unknown key {key!r}{_did_you_mean(key, _TOP_KEYS)}")

    name = data.get("name", Path(source).stem if source is not None else "sweep")
    _check_str(where, "name", name)
    trial = data.get("trial", DEFAULT_TRIAL)
    _check_trial_path(where, trial)

    base = _table(where, data, "base")
    for key, value in base.items():
        _check_jsonable(where, f"base.{key}", value)
    grid_table = _table(where, data, "grid")
    grid: dict[str, tuple[Any, ...]] = {}
    for key, values in grid_table.items():
        if not isinstance(values, list) or not values:
            raise SweepError(
                f"{where}: grid.{key} must be a non-empty list of values, e.g. {key} = [{values!r}]"
            )
        for value in values:
            _check_jsonable(where, f"grid.{key}", value)
        if len({_canonical(v) for v in values}) != len(values):
            raise SweepError(f"{where}: grid.{key} lists a value twice; list each value once")
        if key in base:
            raise SweepError(
                f"{where}: key {key!r} is both in base and in grid; remove it from one of them"
            )
        grid[key] = tuple(values)

    seeds = _seeds(where, data.get("seeds"))
    if seeds is not None and SEED_KEY in {**base, **grid}:
        raise SweepError(
            f"{where}: 'seeds' sets the key {SEED_KEY!r}, which base or grid sets too; drop "
            f"{SEED_KEY!r} from base/grid or drop 'seeds'"
        )
    folds, speakers = _folds(where, data.get("folds"), data.get("speakers"))
    if folds is not None and LOSO_KEY in {**base, **grid}:
        raise SweepError(
            f"{where}: folds = 'loso' sets the key {LOSO_KEY!r}, which base or grid sets too; "
            f"drop {LOSO_KEY!r} from base/grid"
        )

    resources = _resources(where, _table(where, data, "resources"))
    address = data.get("address")
    if address is not None:
        _check_str(where, "address", address)
        address = address or None
    output = data.get("output", str(Path("sweeps") / name))
    _check_str(where, "output", output)
    metric = data.get("metric", "test_acc")
    _check_str(where, "metric", metric)
    mode = data.get("mode", "max")
    if mode not in ("max", "min"):
        raise SweepError(f"{where}: mode must be 'max' or 'min', got {mode!r}")
    max_concurrent = data.get("max_concurrent")
    if max_concurrent is not None and (
        not isinstance(max_concurrent, int)
        or isinstance(max_concurrent, bool)
        or max_concurrent < 1
    ):
        raise SweepError(
            f"{where}: max_concurrent must be a positive integer, got {max_concurrent!r}; "
            "omit it to let Ray schedule by resources"
        )
    runtime_env = data.get("runtime_env")
    if runtime_env is not None and not isinstance(runtime_env, dict):
        raise SweepError(f"{where}: runtime_env must be a table, e.g. [runtime_env]")
    plot = _plot(where, _table(where, data, "plot"), grid)

    return SweepConfig(
        name=name,
        trial=trial,
        base=dict(base),
        grid=grid,
        seeds=seeds,
        folds=folds,
        speakers=speakers,
        resources=resources,
        address=address,
        output=Path(output).expanduser(),
        metric=metric,
        mode=mode,
        max_concurrent=max_concurrent,
        runtime_env=None if runtime_env is None else dict(runtime_env),
        plot=plot,
        source=None if source is None else Path(source),
    )


def _did_you_mean(key: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, choices, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint} (known keys: {', '.join(choices)})"


def _check_str(where: str, key: str, value: Any) -> None:
    if not isinstance(value, str):
        raise SweepError(f"{where}: {key} must be a string, got {value!r}")


def _check_trial_path(where: str, trial: Any) -> None:
    _check_str(where, "trial", trial)
    module, sep, func = trial.partition(":")
    if not sep or not module or not func.isidentifier():
        raise SweepError(
            f"{where}: trial must be 'module:function' (e.g. {DEFAULT_TRIAL!r}), got {trial!r}"
        )


def _table(where: str, data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise SweepError(f"{where}: {key} must be a table ([{key}] in TOML), got {value!r}")
    return value


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _check_jsonable(where: str, key: str, value: Any) -> None:
    try:
        _canonical(value)
    except (TypeError, ValueError) as exc:
        raise SweepError(
            f"{where}: {key} = {value!r} is not plain data (numbers, strings, booleans, lists, "
            f"tables; no dates, NaN or infinity): {exc}"
        ) from exc


def _seeds(where: str, seeds: Any) -> tuple[Any, ...] | None:
    if seeds is None:
        return None
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise SweepError(f"{where}: seeds = {seeds} must be >= 1 (or a list of seeds)")
        return tuple(range(seeds))
    if not isinstance(seeds, list) or not seeds:
        raise SweepError(
            f"{where}: seeds must be a non-empty list of integers (e.g. seeds = [0, 1, 2]) or "
            f"a count, got {seeds!r}"
        )
    if any(not isinstance(s, int) or isinstance(s, bool) for s in seeds):
        raise SweepError(f"{where}: seeds must be integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise SweepError(f"{where}: seeds lists a seed twice; list each seed once")
    return tuple(seeds)


def _folds(where: str, folds: Any, speakers: Any) -> tuple[str | None, tuple[Any, ...] | None]:
    if folds is None:
        if speakers is not None:
            raise SweepError(
                f"{where}: speakers is used only with folds = 'loso'; add folds = 'loso' or "
                "drop speakers"
            )
        return None, None
    if folds not in FOLD_KINDS:
        raise SweepError(f"{where}: folds must be one of {FOLD_KINDS}, got {folds!r}")
    if speakers is None:
        raise SweepError(
            f"{where}: folds = 'loso' needs speakers: their ids (speakers = [0, 1, 2]), names "
            "or their count (speakers = 6 for ids 0..5)"
        )
    if isinstance(speakers, int) and not isinstance(speakers, bool):
        if speakers < 2:
            raise SweepError(f"{where}: LOSO needs at least 2 speakers, got speakers = {speakers}")
        return folds, tuple(range(speakers))
    if not isinstance(speakers, list) or len(speakers) < 2:
        raise SweepError(
            f"{where}: speakers must be a list of at least 2 names or ids, or a count, got "
            f"{speakers!r}"
        )
    for s in speakers:
        if isinstance(s, bool) or not isinstance(s, (str, int)) or s == "":
            raise SweepError(f"{where}: speaker {s!r} must be a non-empty name or an integer id")
    if len(set(speakers)) != len(speakers):
        raise SweepError(f"{where}: speakers lists a speaker twice; list each speaker once")
    return folds, tuple(speakers)


def _resources(where: str, table: dict[str, Any]) -> Resources:
    allowed = ("gpus_per_trial", "cpus_per_trial")
    for key in table:
        if key not in allowed:
            raise SweepError(f"{where}: unknown key resources.{key}{_did_you_mean(key, allowed)}")
    values = {}
    for key in allowed:
        value = table.get(key, getattr(Resources, key))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise SweepError(f"{where}: resources.{key} must be a number >= 0, got {value!r}")
        values[key] = float(value)
    if values["gpus_per_trial"] > 1 and not values["gpus_per_trial"].is_integer():
        raise SweepError(
            f"{where}: resources.gpus_per_trial above 1 must be whole, got "
            f"{values['gpus_per_trial']}"
        )
    return Resources(**values)


def _plot(where: str, table: dict[str, Any], grid: dict[str, tuple[Any, ...]]) -> PlotSpec:
    allowed = ("x", "metric", "logx")
    for key in table:
        if key not in allowed:
            raise SweepError(f"{where}: unknown key plot.{key}{_did_you_mean(key, allowed)}")
    x = table.get("x")
    if x is not None:
        _check_str(where, "plot.x", x)
        if x not in grid:
            raise SweepError(f"{where}: plot.x = {x!r} is not a grid key; use one of {list(grid)}")
    metric = table.get("metric")
    if metric is not None:
        _check_str(where, "plot.metric", metric)
    logx = table.get("logx")
    if logx is not None and not isinstance(logx, bool):
        raise SweepError(f"{where}: plot.logx must be true or false, got {logx!r}")
    return PlotSpec(x=x, metric=metric, logx=logx)
