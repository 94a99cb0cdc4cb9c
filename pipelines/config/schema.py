"""Typed run configuration, read from TOML or YAML and overridden by command-line flags.

A config file has up to four tables, each optional: `[data]`, `[model]`, `[tuner]` and
`[run]`. Their keys are the fields of the dataclasses below; `configs/default.toml` lists
them all with their defaults.
"""

from __future__ import annotations

import dataclasses
import pathlib
import tomllib
import types
import typing
from typing import Any

import yaml

from hypermodels import registry as model_registry
from pipelines.config import checks
from pipelines.errors import ConfigError
from tuners.results import objectives


@dataclasses.dataclass
class DataConfig:
    """Where the data comes from and how the pipeline prepares it.

    `source` is a bundled ticker (AAPL, MSFT, IBM, GOOG), a bundled table (diabetes,
    breast_cancer) or a CSV path; empty means AAPL for the LSTM and diabetes for the
    dense network. Sizes of stock splits are in days; tabular ones are fractions.

    The default target is the next day's return, not the article's next-day close: the
    held-out years trade far above the training years' prices, and a network that
    forecasts the scaled close must extrapolate there (on AAPL its test MSE was over 1,000
    times the persistence baseline's). A forecast return is turned back into a price.
    `target = "volatility"` forecasts the next day's absolute log return instead, in log
    space (`pipelines.data.volatility`), beside a persistence and a
    `moving_average_window`-day moving-average baseline.
    """

    source: str = ""
    lookback: int = 30
    test_size: int | float = 800
    validation_size: int | float = 500
    target: str = "return"
    rolling_window: int = 5
    moving_average_window: int = 30
    calendar: bool = False
    log_returns: bool = True
    fill: str = "error"
    date_column: str | None = None
    target_column: str | None = None
    task: str = "auto"
    batch_size: int = 32
    train_window: int = 1500
    validation_window: int = 250
    step: int = 250


@dataclasses.dataclass
class ModelConfig:
    """Which hypermodel to tune, and its search space.

    `name` is an entry of `hypermodels.registry.MODELS` (`lstm`, `dense`) or a user's
    class, `FILE.py:CLASS` or `package.module:CLASS`. `space` picks one of the model's
    presets (`quick` or `article` for ours); `search_space` maps constructor arguments of
    the hypermodel to new ranges on top of it, e.g. `{"units": [32, 64], "num_layers":
    [1, 3]}` (see `hypermodels/` for the names).
    """

    name: str = "lstm"
    space: str = "quick"
    search_space: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def spec(self) -> model_registry.ModelSpec:
        """The model's registry entry; a user's class is imported on first use."""
        return model_registry.resolve(self.name)

    def hypermodel_arguments(self) -> dict[str, Any]:
        """The preset's ranges for this model, overridden by `search_space`."""
        return self.spec.arguments(self.space, self.search_space)


@dataclasses.dataclass
class TunerConfig:
    """Which search strategy to run and its budget.

    `max_epochs` is Hyperband's largest budget per configuration and the epochs of each
    trial for the other tuners.
    """

    name: str = "hyperband"
    max_epochs: int = 9
    factor: int = 3
    hyperband_iterations: int = 1
    max_trials: int = 10
    num_initial_points: int | None = None
    executions_per_trial: int = 1
    objective: str = "val_loss"
    # "min" or "max"; empty infers it from the objective's name (loss, mae: min; acc, auc:
    # max).
    direction: str = ""
    # Several objectives, e.g. ["val_loss", "params"] or ["val_loss", "latency_ms"]: the
    # first replaces `objective` and is what every tuner optimises; the genetic tuner
    # selects by NSGA-II on all of them, and the run writes their Pareto front
    # (pipelines/reports/pareto.py). The saved model is then the trial best in the last objective
    # among those within `pareto_tolerance` (a fraction) of the best first objective.
    objectives: list[str] = dataclasses.field(default_factory=list)
    pareto_tolerance: float = 0.01
    patience: int = 3
    # Arguments of the tuner's oracle beyond its budget, e.g. the genetic algorithm's
    # population_size or BOHB's random_fraction (see tuners/oracles/).
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    validation: str = "holdout"
    max_consecutive_failed_trials: int = 3
    # Trial-budget tuners: "median" stops a trial after an epoch at which its objective is
    # worse than the median of the earlier trials' there (tuners/observers/pruning.py), but never
    # before pruner_grace epochs, nor before pruner_startup_trials earlier trials reached
    # that epoch.
    pruner: str = "none"
    pruner_grace: int = 2
    pruner_startup_trials: int = 3

    def __post_init__(self) -> None:
        # The first of several objectives becomes the objective when that is left at its
        # default; `pipelines.config.checks` refuses an objective set to something else.
        if self.objectives and self.objective == "val_loss":
            self.objective = self.objectives[0]


@dataclasses.dataclass
class RunConfig:
    """Seed, where the run directory goes, and what it keeps.

    `keep_checkpoints` keeps every trial's checkpoint under `tuner/`; by default a
    checkpoint is deleted once no trial and no report will load it again (see
    `tuners/observers/checkpoints.py`). `refit` retrains the best configuration on the training and
    validation rows before the held-out test; `deterministic` makes TensorFlow's ops
    deterministic (slower); `tensorboard` writes TensorBoard logs with HParams under
    `RUN_DIR/tensorboard/`; `callbacks` names factories of Keras callbacks added to every
    trial, as `"package.module:factory"` or `"file.py:factory"`. `workers` above 1 runs the
    search on that many worker processes of this machine, each on its share of the cores,
    with this process as keras-tuner's chief (`pipelines.parallel.local_workers`); `recycle_after`
    above 0 makes each worker process exit after that many trials and the chief start it
    again, which returns the memory TensorFlow keeps of every model
    (`pipelines.parallel.recycling`);
    with `workers = 1` the search then runs in one worker process beside the chief.
    `final_top` above 0 retrains that many of the best configurations `final_seeds` times
    each with new seeds after the search and saves the one with the best mean validation
    score (`pipelines.run.final_pick`).
    """

    seed: int = 42
    output_dir: str = "runs"
    run_name: str = ""
    overwrite: bool = False
    keep_checkpoints: bool = False
    refit: bool = True
    deterministic: bool = False
    tensorboard: bool = False
    callbacks: list[str] = dataclasses.field(default_factory=list)
    workers: int = 1
    recycle_after: int = 0
    final_top: int = 0
    final_seeds: int = 3


@dataclasses.dataclass
class Config:
    """A whole run: data, model, tuner and run settings."""

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    tuner: TunerConfig = dataclasses.field(default_factory=TunerConfig)
    run: RunConfig = dataclasses.field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain data, as written to the run directory."""
        return dataclasses.asdict(self)

    @property
    def source(self) -> str:
        """The data source, with the model's default filled in."""
        return self.data.source or self.model.spec.default_source

    @property
    def model_label(self) -> str:
        """The model's short name for folder names: `lstm`, or a user's class name."""
        return self.model.name.rpartition(":")[2]

    @property
    def direction(self) -> str:
        """The objective's direction, `min` or `max`: given, or inferred from its name.

        Raises:
            ConfigError: If it is not given and the name does not tell.
        """
        if self.tuner.direction:
            return self.tuner.direction
        try:
            return objectives.objective_direction(self.tuner.objective)
        except ValueError:
            raise ConfigError(f"cannot tell whether objective {self.tuner.objective!r} is "
                              f"minimised or maximised; pass --direction min or --direction "
                              f"max") from None

    @property
    def run_name(self) -> str:
        """The run directory's name: given, or derived from model, tuner, data and seed."""
        if self.run.run_name:
            return self.run.run_name
        return f"{self.model_label}-{self.tuner.name}-{self.data_name}-seed{self.run.seed}"

    @property
    def data_name(self) -> str:
        """The data source's short name for folder names: AAPL, diabetes, prices."""
        return pathlib.Path(self.source).stem.split(".")[0]

    @property
    def run_dir(self) -> pathlib.Path:
        """Where this run's files go."""
        return pathlib.Path(self.run.output_dir) / self.run_name


SECTIONS = {"data": DataConfig, "model": ModelConfig, "tuner": TunerConfig, "run": RunConfig}


def load_config(path: str | pathlib.Path | None = None,
                overrides: dict[str, dict[str, Any]] | None = None) -> Config:
    """Builds a `Config` from an optional TOML/YAML file and flag overrides.

    Args:
        path: A `.toml`, `.yaml` or `.yml` file, or None for the defaults.
        overrides: `{section: {field: value}}` applied after the file (command-line flags).

    Returns:
        The checked configuration.

    Raises:
        ConfigError: For a missing or unparsable file, an unknown section or key, a value
            of the wrong type, or a value out of range.
    """
    raw: dict[str, Any] = {}
    if path is not None:
        raw = _read_file(pathlib.Path(path))
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"unknown config section {unknown[0]!r}; use {', '.join(SECTIONS)}")
    sections = {}
    for section, cls in SECTIONS.items():
        values = raw.get(section)
        if values is None:
            values = {}
        if not isinstance(values, dict):
            raise ConfigError(f"config section [{section}] must be a table of keys, got "
                              f"{values!r}")
        values = dict(values)
        for key, value in (overrides or {}).get(section, {}).items():
            # A table given by a flag (--search-space) adds to the file's table.
            if isinstance(value, dict) and isinstance(values.get(key), dict):
                value = {**values[key], **value}
            values[key] = value
        sections[section] = _build(section, cls, values)
    config = Config(**sections)
    checks.validate(config)
    return config


def _read_file(path: pathlib.Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; check the path")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path.name} is not UTF-8 text; save it as UTF-8") from None
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        else:
            raise ConfigError(f"config file {path.name} must end in .toml, .yaml or .yml")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise ConfigError(f"cannot parse {path.name}: {first_line}; fix the syntax") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path.name} must hold tables such as [tuner]")
    return data


def _build(section: str, cls: type, values: dict[str, Any]) -> Any:
    fields = {field.name: field for field in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"unknown config key {section}.{key}; valid keys: "
                              f"{', '.join(fields)}")
        if not _matches(value, hints[key]):
            raise ConfigError(f"config key {section}.{key} must be {_type_name(hints[key])}, "
                              f"got {value!r}")
    return cls(**values)


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, option) for option in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is dict:
        return isinstance(value, dict)
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_matches(element, item) for element in value)
    if hint is float:
        return isinstance(value, float)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(option) for option in typing.get_args(hint))
    if hint is type(None):
        return "empty"
    if typing.get_origin(hint) is dict:
        return "a table"
    if typing.get_origin(hint) is list:
        return f"a list of {_type_name(typing.get_args(hint)[0])}"
    return {int: "a whole number", float: "a decimal number", str: "text",
            bool: "true or false"}.get(hint, str(hint))
