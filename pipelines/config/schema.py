"""Every setting of a run, declared once: type, default, range or allowed values, one sentence
of help, its flag and its `--help` group.

The command-line flags (`pipelines.cli.flags`), file loading and `--set`
(`pipelines.config.loading`), `ktlab init`, `configs/default.toml` and the reference page
(`pipelines.config.reference`) are all derived from these classes. Adding a setting is one
`setting(...)` line in its section, plus the code that uses it.

The classes are pydantic models: pydantic checks types and ranges, and says which key failed.
It was chosen over jsonargparse, tyro and Hydra because Colab already has it installed (so
`pip install` adds nothing there), it keeps the schema plain Python classes, and it leaves
ktlab's flag names (`--max-epochs`, not `--tuner.max_epochs`) and one-line errors to us.
Nothing here imports TensorFlow, a registry or a user's file: reading a setting is reading
data.
"""

from __future__ import annotations

import pathlib
from typing import Any, Literal

import pydantic

GROUPS = {
    "data": "data",
    "model": "model and search space",
    "strategy": "strategy and budget",
    "evaluation": "evaluation",
    "output": "output",
    "parallel": "parallel",
}

# Names whose allowed values live in a registry (`pipelines.config.checks.REGISTRY_NAMES`),
# so that a user's registry line extends them.
REGISTRY_CHOICES = ("tuner", "pruner", "model")


def setting(default: Any, help: str, *, group: str, flag: str | None = None,
            aliases: tuple[str, ...] = (), choices_from: str | None = None,
            metavar: str | None = None, **constraints: Any) -> Any:
    """Declares one setting.

    Args:
        default: Its default value.
        help: One sentence for `--help`, `ktlab init` and the reference page.
        group: Its `--help` group, a key of `GROUPS`.
        flag: Its command-line flag; default `--` and the key with dashes.
        aliases: Older flags that still set it; `--help` does not show them.
        choices_from: A registry whose names are its allowed values (`REGISTRY_CHOICES`).
        metavar: The value's name in `--help`.
        **constraints: pydantic's range constraints: `ge`, `gt`, `le`, `lt`.
    """
    extra = {"group": group, "flag": flag, "aliases": list(aliases),
             "choices_from": choices_from, "metavar": metavar}
    if isinstance(default, (list, dict)):
        kind = type(default)
        return pydantic.Field(default_factory=kind, description=help, json_schema_extra=extra,
                              **constraints)
    return pydantic.Field(default, description=help, json_schema_extra=extra, **constraints)


class Section(pydantic.BaseModel):
    """A table of a config file. Unknown keys and values of the wrong type are refused."""

    model_config = pydantic.ConfigDict(extra="forbid", strict=True)


class DataConfig(Section):
    """Where the data comes from and how the pipeline prepares it.

    The default target is the next day's return, not the article's next-day close: the
    held-out years trade far above the training years' prices, and a network that forecasts
    the scaled close must extrapolate there (on AAPL its test MSE was over 1,000 times the
    persistence baseline's). A forecast return is turned back into a price.
    """

    source: str = setting(
        "", "A bundled ticker (AAPL, MSFT, IBM, GOOG), a bundled table (diabetes, "
        "breast_cancer) or a CSV path; empty: AAPL for lstm, diabetes for dense.",
        group="data", flag="--data", metavar="SOURCE")
    lookback: int = setting(30, "Steps in each input window.", group="data", ge=1)
    test_size: int | float | None = setting(
        None, "Held out at the end: whole steps, or a fraction (of all steps; of a table's "
        "rows); empty: 800 days for prices, 0.2 for a series or a table.", group="data",
        metavar="SIZE")
    validation_size: int | float | None = setting(
        None, "Validation before the test: whole steps, or a fraction of the steps before the "
        "test; empty: 500 days for prices, 0.25 for a series, 0.2 for a table.", group="data",
        metavar="SIZE")
    kind: Literal["auto", "prices", "series"] = setting(
        "auto", "What the source is: daily prices (bundled tickers, Yahoo, Alpha Vantage and "
        "OHLCV files) or any other series; auto tells by the file's layout.", group="data")
    horizon: int = setting(1, "Series: steps forecast from each window, directly (one output "
                           "per step).", group="data", ge=1)
    season: int | None = setting(
        None, "Series: steps in one season, for the seasonal naive forecast and MASE; empty: "
        "from the frequency (24 hourly, 7 daily, 52 weekly, 12 monthly, 4 quarterly).",
        group="data", metavar="STEPS", ge=1)
    feature_columns: list[str] | None = setting(
        None, "Series: the file's other numeric columns to use as features; empty: all of "
        "them.", group="data", metavar="COLUMNS")
    features: bool = setting(True, "Series: use the file's other numeric columns as features "
                             "(--no-features: the target's own past alone).", group="data")
    target: Literal["close", "return", "volatility"] = setting(
        "return", "What a price series forecasts: the next return, the next close (as the "
        "article) or the next |log return|.", group="data")
    rolling_window: int = setting(5, "Window of the rolling-mean features.", group="data",
                                  ge=1)
    moving_average_window: int = setting(
        30, "Window of the moving-average baseline.", group="data", ge=1)
    calendar: bool = setting(False, "Add one-hot year, month and day features.",
                             group="data")
    log_returns: bool = setting(True, "Add the step's log return as a feature.", group="data")
    fill: Literal["error", "ffill", "interpolate", "drop"] = setting(
        "error", "Missing values (and a series' missing timestamps): refuse, carry the last "
        "value forward, interpolate in time (series), or drop the rows.", group="data",
        flag="--fill")
    date_column: str | None = setting(None, "The date column of a CSV in another layout.",
                                      group="data", metavar="COLUMN")
    target_column: str | None = setting(
        None, "The target column of a custom CSV or a table.", group="data", metavar="COLUMN")
    task: Literal["auto", "regression", "classification"] = setting(
        "auto", "A table's task; auto infers it from the target column.", group="data")
    batch_size: int = setting(32, "Rows per training batch.", group="data", ge=1)
    train_window: int = setting(
        1500, "Walk-forward validation: training steps of each fold.", group="evaluation",
        flag="--walk-forward-train", aliases=("--train-window",), metavar="STEPS")
    validation_window: int = setting(
        250, "Walk-forward validation: validation steps of each fold.", group="evaluation",
        flag="--walk-forward-validation", aliases=("--validation-window",), metavar="STEPS")
    step: int = setting(
        250, "Walk-forward validation: steps between the starts of two folds.",
        group="evaluation", flag="--walk-forward-step", aliases=("--step",), metavar="STEPS",
        ge=1)


class ModelConfig(Section):
    """Which hypermodel to tune, and its search space."""

    name: str = setting(
        "lstm", "A registered model (lstm for series, dense for tables) or your "
        "keras_tuner.HyperModel as FILE.py:CLASS or package.module:CLASS.",
        group="model", flag="--model", choices_from="model", metavar="NAME|FILE.py:CLASS")
    space: str = setting(
        "quick", "The model's search-space preset: quick (CPU-sized) or article (the "
        "reference article's LSTM space).", group="model", flag="--preset",
        aliases=("--space",))
    search_space: dict[str, Any] = setting(
        {}, "Ranges on top of the preset, by hyperparameter: {choices = [32, 64]}, "
        "{min = 0.0, max = 0.5}, {min = 1e-4, max = 1e-2, log = true} or {value = 64}.",
        group="model",
        metavar="JSON")


class TunerConfig(Section):
    """Which search strategy to run, its budget, and what it optimises."""

    name: str = setting("hyperband", "The search strategy.", group="strategy", flag="--tuner",
                        choices_from="tuner")
    max_epochs: int = setting(
        9, "Hyperband's largest budget per configuration; the epochs of each trial for the "
        "other strategies.", group="strategy", ge=1)
    factor: int = setting(3, "Hyperband's reduction factor between rounds.",
                          group="strategy", flag="--hyperband-factor", aliases=("--factor",),
                          ge=2)
    hyperband_iterations: int = setting(1, "How many times Hyperband runs its brackets.",
                                        group="strategy", ge=1)
    max_trials: int = setting(10, "Trials of the trial-budget strategies (bayesian, random, "
                              "grid, genetic).", group="strategy", ge=1)
    num_initial_points: int | None = setting(
        None, "bayesian: random trials before the model of the objective; empty: keras-tuner's "
        "default.", group="strategy", metavar="N")
    executions_per_trial: int = setting(1, "Models trained per trial, their scores averaged.",
                                        group="strategy", ge=1)
    objective: str = setting("val_loss", "The metric every strategy optimises.",
                             group="strategy", metavar="METRIC")
    direction: Literal["", "min", "max"] = setting(
        "", "Whether the objective is minimised or maximised; empty: inferred from its name "
        "(loss, mae: min; accuracy, auc: max).", group="strategy")
    objectives: list[str] = setting(
        [], "Several objectives, such as val_loss,params: the first replaces objective, "
        "genetic selects by NSGA-II, and every run writes their Pareto front.",
        group="strategy", flag="--pareto-objectives", aliases=("--objectives",),
        metavar="NAMES")
    pareto_tolerance: float = setting(
        0.01, "With several objectives: save the trial best in the last one among those "
        "within this fraction of the best first one.", group="evaluation", ge=0, le=1)
    patience: int = setting(3, "Early-stopping patience in epochs.", group="strategy", ge=0)
    options: dict[str, Any] = setting(
        {}, "Arguments of our own strategies' oracles beyond the budget, such as genetic's "
        "population_size or bohb's random_fraction (tuners/oracles/).", group="strategy",
        flag="--tuner-options", metavar="JSON")
    validation: Literal["holdout", "walk_forward"] = setting(
        "holdout", "How a trial is scored: one validation split, or walk-forward folds.",
        group="evaluation")
    max_consecutive_failed_trials: int = setting(
        3, "Failed trials in a row that end the search.", group="strategy", ge=1)
    pruner: str = setting(
        "none", "median stops a trial of a trial-budget strategy whose objective at an epoch "
        "is worse than the median of the earlier trials' there.", group="strategy",
        choices_from="pruner")
    pruner_grace: int = setting(2, "Epochs every trial trains before it can be pruned.",
                                group="strategy", ge=1)
    pruner_startup_trials: int = setting(
        3, "Earlier trials that must reach an epoch before a trial can be pruned there.",
        group="strategy", ge=1)

    @pydantic.model_validator(mode="after")
    def _first_objective(self) -> TunerConfig:
        # The first of several objectives becomes the objective when that is left at its
        # default; `pipelines.config.checks` refuses an objective set to something else.
        if self.objectives and self.objective == "val_loss":
            self.objective = self.objectives[0]
        return self


class RunConfig(Section):
    """Seed, where the run directory goes, what it keeps, and the work after the search."""

    seed: int = setting(42, "Seed of the search and the models.", group="strategy", ge=1)
    output_dir: str = setting("runs", "Parent folder of run directories.", group="output",
                              metavar="DIR")
    run_name: str = setting("", "The run directory's name; empty: model-tuner-data-seed.",
                            group="output", metavar="NAME")
    overwrite: bool = setting(False, "Replace an existing run directory of the same name.",
                              group="output")
    keep_checkpoints: bool = setting(
        False, "Keep every trial's checkpoint, not only those a trial or a report still needs.",
        group="output")
    refit: bool = setting(
        True, "Retrain the best configuration on the training and validation rows before the "
        "held-out test.", group="evaluation")
    deterministic: bool = setting(
        False, "Deterministic TensorFlow ops: the same seed gives the same scores (slower).",
        group="strategy")
    tensorboard: bool = setting(False, "Write TensorBoard logs with HParams under "
                                "RUN_DIR/tensorboard/.", group="output")
    callbacks: list[str] = setting(
        [], "Factories of Keras callbacks added to every trial, as file.py:factory or "
        "package.module:factory.", group="strategy", metavar="REFS")
    workers: int = setting(1, "Worker processes on this machine, with this one as "
                           "keras-tuner's chief.", group="parallel", metavar="N", ge=1)
    recycle_after: int = setting(
        0, "Restart each worker process after this many trials, which frees the memory "
        "TensorFlow keeps of every model; 0: never.", group="parallel", metavar="K", ge=0)
    max_worker_restarts: int = setting(
        3, "How many worker processes of --workers N that die mid-search (killed or crashed) "
        "are replaced by a new one under the same name, per search; 0: a death stops the "
        "search.", group="parallel", metavar="N", ge=0)
    final_top: int = setting(
        0, "After the search, retrain this many best configurations with new seeds and save "
        "the best mean; 0: off.", group="evaluation", metavar="K", ge=0)
    final_seeds: int = setting(3, "Seeds per configuration for final_top.",
                               group="evaluation", metavar="S", ge=2)


class Config(pydantic.BaseModel):
    """A whole run: data, model, tuner and run settings."""

    model_config = pydantic.ConfigDict(extra="forbid", strict=True)

    data: DataConfig = pydantic.Field(default_factory=DataConfig)
    model: ModelConfig = pydantic.Field(default_factory=ModelConfig)
    tuner: TunerConfig = pydantic.Field(default_factory=TunerConfig)
    run: RunConfig = pydantic.Field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain data, as written to the run directory."""
        return self.model_dump()

    @property
    def source(self) -> str:
        """The data source, with the model's default filled in.

        A registered model's default comes from its registry line, a name table that imports
        nothing; a user's class fills `data.source` where the run starts
        (`pipelines.run.build.model_spec`).
        """
        if self.data.source:
            return self.data.source
        from hypermodels import registry
        from pipelines.errors import ConfigError

        if self.model.name not in registry.MODELS:
            raise ConfigError(f"--model {self.model.name} names its data once its class is "
                              f"imported, where the run starts; pass --data SOURCE to name it "
                              f"before that")
        return registry.MODELS[self.model.name].default_source

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
        from pipelines.errors import ConfigError
        from tuners.results import objectives

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


SECTIONS: dict[str, type[Section]] = {"data": DataConfig, "model": ModelConfig,
                                      "tuner": TunerConfig, "run": RunConfig}


def fields() -> list[tuple[str, str, pydantic.fields.FieldInfo]]:
    """Every setting as `(section, key, field)`, in declaration order."""
    return [(section, key, field) for section, cls in SECTIONS.items()
            for key, field in cls.model_fields.items()]


def extra(field: pydantic.fields.FieldInfo) -> dict[str, Any]:
    """A setting's ktlab metadata: group, flag, aliases, choices_from, metavar."""
    return field.json_schema_extra  # type: ignore[return-value]


def flag_of(section: str, key: str) -> str:
    """A setting's command-line flag: declared, or `--` and its key with dashes."""
    field = SECTIONS[section].model_fields[key]
    return extra(field)["flag"] or "--" + key.replace("_", "-")
