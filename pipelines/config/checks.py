"""Every check of a user's settings that a type cannot express, in one place.

`pipelines.config.load_config` runs `validate` on every configuration it builds, so the
command line, notebooks and `ktlab compare` all get the same one-line `ConfigError`. It
imports no TensorFlow: a bad value is reported at once. A user's model class
(`FILE.py:CLASS`) is only checked for its form and file here, and `check_data_kind` runs
once the model, and so the data it takes, is known.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hypermodels import registry as model_registry
from pipelines.data import sources
from pipelines.errors import ConfigError
from tuners import registry as tuner_registry
from tuners.results import objectives as tuner_objectives

if TYPE_CHECKING:
    from pipelines.config import Config, DataConfig, ModelConfig

VALIDATIONS = ("holdout", "walk_forward")
TARGETS = ("close", "return", "volatility")
TASKS = ("auto", "regression", "classification")
FILLS = ("error", "ffill", "drop")
DIRECTIONS = ("min", "max")


def validate(config: Config) -> None:
    """Checks every name and range of `config` that a type cannot express.

    Raises:
        ConfigError: Naming the key or flag and the fix.
    """
    tuner, data, model = config.tuner, config.data, config.model
    _check_model(model)
    _check_choice("tuner", tuner.name, tuner_registry.TUNERS)
    _check_choice("validation", tuner.validation, VALIDATIONS)
    _check_choice("pruner", tuner.pruner, tuner_registry.PRUNERS)
    _check_choice("target", data.target, TARGETS)
    _check_choice("task", data.task, TASKS)
    _check_choice("fill policy", data.fill, FILLS)
    checks = (
        ("max epochs", "--max-epochs", tuner.max_epochs, 1),
        ("factor", "--factor", tuner.factor, 2),
        ("max trials", "--max-trials", tuner.max_trials, 1),
        ("hyperband iterations", "--hyperband-iterations", tuner.hyperband_iterations, 1),
        ("executions per trial", "--executions-per-trial", tuner.executions_per_trial, 1),
        ("patience", "--patience", tuner.patience, 0),
        ("pruner grace", "--pruner-grace", tuner.pruner_grace, 1),
        ("pruner startup trials", "--pruner-startup-trials", tuner.pruner_startup_trials, 1),
        ("max consecutive failed trials", "--max-consecutive-failed-trials",
         tuner.max_consecutive_failed_trials, 1),
        ("lookback", "--lookback", data.lookback, 1),
        ("rolling window", "data.rolling_window", data.rolling_window, 1),
        ("moving average window", "data.moving_average_window", data.moving_average_window, 1),
        ("seed", "--seed", config.run.seed, 1),
        ("workers", "--workers", config.run.workers, 1),
        ("recycle after", "--recycle-after", config.run.recycle_after, 0),
        ("final top", "--final-top", config.run.final_top, 0),
        ("final seeds", "--final-seeds", config.run.final_seeds, 2),
        ("batch size", "--batch-size", data.batch_size, 1),
        ("train window", "--train-window", data.train_window, data.lookback + 1),
        ("validation window", "--validation-window", data.validation_window,
         data.lookback + 1),
        ("step", "--step", data.step, 1),
    )
    for name, flag, value, minimum in checks:
        if value < minimum:
            raise ConfigError(f"{name} must be >= {minimum}, got {value}; fix {flag}")
    _check_sizes(data)
    spec = tuner_registry.TUNERS[tuner.name]
    if tuner.num_initial_points is not None:
        if not spec.tunes_initial_points:
            raise ConfigError(f"num_initial_points applies to bayesian, not {tuner.name}; "
                              f"remove --num-initial-points")
        if not 1 <= tuner.num_initial_points <= tuner.max_trials:
            raise ConfigError(f"num initial points must be from 1 to max trials "
                              f"({tuner.max_trials}), got {tuner.num_initial_points}; fix "
                              f"--num-initial-points")
    if tuner.pruner != "none":
        _check_pruner(tuner.pruner, tuner.name, tuner.validation)
    if tuner.validation == "walk_forward" and tuner.executions_per_trial != 1:
        raise ConfigError("walk-forward validation already trains one model per fold; "
                          "set --executions-per-trial 1")
    if tuner.direction and tuner.direction not in DIRECTIONS:
        raise ConfigError(f"unknown direction {tuner.direction!r}; use min or max")
    config.direction  # noqa: B018 (raises ConfigError when it cannot be inferred)
    _check_objectives(tuner)
    if config.run.final_top and tuner.objectives:
        raise ConfigError(f"--final-top {config.run.final_top} picks by the mean of one "
                          f"objective, --objectives by the Pareto rule; pass one of them")
    for reference in config.run.callbacks:
        try:
            model_registry.check_reference(reference, what="run.callbacks")
        except model_registry.ModelNotFoundError as error:
            raise ConfigError(str(error)) from None
    run_name = config.run.run_name
    if run_name and (run_name in (".", "..") or "/" in run_name or "\\" in run_name):
        raise ConfigError(f"run name {run_name!r} must be a plain name without path separators "
                          f"or '..'; use --output-dir to choose the parent folder")


def check_data_kind(config: Config, data_kind: str) -> None:
    """Checks the settings that depend on the model's data kind (a series or a table).

    Called once the model is known, which for a user's class means once it is imported.

    Raises:
        ConfigError: For a source or validation that does not suit the model.
    """
    source = config.source
    name = config.model.name
    if data_kind == "series" and source in sources.BUNDLED_TABLES:
        raise ConfigError(f"the {name} model forecasts a time series, but {source!r} is a "
                          f"table; use --model dense or --data AAPL")
    if data_kind == "table":
        if sources.is_bundled_ticker(source):
            raise ConfigError(f"the {name} model takes a table, but {source!r} is a price "
                              f"series; use --model lstm or --data diabetes")
        if config.tuner.validation == "walk_forward":
            raise ConfigError("walk-forward validation needs time-ordered data; use "
                              "--validation holdout for a table")
        defaults = type(config.data)()
        for key in ("test_size", "validation_size"):
            value = getattr(config.data, key)
            # A table's sizes are fractions; the series defaults (days) stand for 0.2.
            if value != getattr(defaults, key) and not (isinstance(value, float)
                                                        and 0 < value < 1):
                raise ConfigError(f"a table's {key.replace('_', ' ')} is a fraction in (0, 1), "
                                  f"got {value!r}; fix --{key.replace('_', '-')}")


def _check_model(model: ModelConfig) -> None:
    try:
        if model_registry.is_reference(model.name):
            model_registry.check_reference(model.name)
        else:
            spec = model_registry.resolve(model.name)
            if spec.presets and model.space not in spec.presets:
                raise ConfigError(f"unknown search space {model.space!r}; use one of "
                                  f"{', '.join(spec.presets)}")
    except model_registry.ModelNotFoundError as error:
        raise ConfigError(str(error)) from None


def _check_pruner(pruner: str, tuner_name: str, validation: str) -> None:
    trial_budget = [name for name, spec in tuner_registry.TUNERS.items()
                    if spec.budget == "trials"]
    if tuner_name not in trial_budget:
        raise ConfigError(f"--pruner {pruner} works with the trial-budget tuners "
                          f"({', '.join(trial_budget)}); {tuner_name} already stops trials "
                          f"by its own schedule, so use --pruner none or one of those tuners")
    if validation == "walk_forward":
        raise ConfigError(f"--pruner {pruner} compares holdout curves epoch by epoch; use "
                          f"--validation holdout or --pruner none")


def _check_objectives(tuner: Any) -> None:
    """Checks `--objectives` and `--pareto-tolerance` (`pipelines.reports.pareto`)."""
    if not 0 <= tuner.pareto_tolerance <= 1:
        raise ConfigError(f"pareto tolerance must be a fraction from 0 to 1, got "
                          f"{tuner.pareto_tolerance}; fix --pareto-tolerance")
    names = tuner.objectives
    if not names:
        return
    if len(names) == 1:
        raise ConfigError(f"--objectives {names[0]} names one objective; name two or more, "
                          f"such as val_loss,params, or use --objective")
    if len(set(names)) != len(names):
        raise ConfigError(f"--objectives {','.join(names)} names one twice; name each once")
    measured = tuner_objectives.MEASURED
    if names[0] in measured:
        raise ConfigError(f"the first of --objectives is the one every tuner trains towards, "
                          f"so it must be a metric such as val_loss, not {names[0]}; put "
                          f"{names[0]} later")
    if names[0] != tuner.objective:
        raise ConfigError(f"--objective {tuner.objective} and the first of --objectives "
                          f"({names[0]}) differ; leave out --objective")
    for name in names[1:]:
        try:
            tuner_objectives.objective_direction(name)
        except ValueError:
            raise ConfigError(f"unknown objective {name!r} in --objectives; use a metric of "
                              f"the model (val_loss, val_mae, val_accuracy, ...), "
                              f"{' or '.join(measured)}") from None


def _check_choice(name: str, value: str, choices: Any) -> None:
    if value not in choices:
        raise ConfigError(f"unknown {name} {value!r}; use one of {', '.join(choices)}")


def _check_sizes(data: DataConfig) -> None:
    for key in ("test_size", "validation_size"):
        value = getattr(data, key)
        flag = "--" + key.replace("_", "-")
        if isinstance(value, float) and not 0 < value < 1:
            raise ConfigError(f"{key.replace('_', ' ')} must be a whole number of days or a "
                              f"fraction in (0, 1), got {value}; fix {flag}")
        if isinstance(value, int) and value < 1:
            raise ConfigError(f"{key.replace('_', ' ')} must be >= 1, got {value}; fix {flag}")
