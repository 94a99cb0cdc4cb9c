"""Every check of a user's settings that a type cannot express, in one place.

`pipelines.config.load_config` runs `validate` on every configuration it builds, so the
command line, notebooks and `ktlab compare` all get the same one-line `ConfigError`. It
imports no TensorFlow: a bad value is reported at once. A user's model class
(`FILE.py:CLASS`) is only checked for its form and file here, and `check_data_kind` runs
once the model, and so the data it takes, is known.
"""

from __future__ import annotations

import types
import typing
from typing import TYPE_CHECKING, Any

from hypermodels import registry as model_registry
from pipelines.config import search_space
from pipelines.data import sources
from pipelines.errors import ConfigError
from tuners import errors as tuner_errors
from tuners import registry as tuner_registry
from tuners.results import objectives as tuner_objectives

if TYPE_CHECKING:
    import pydantic

    from pipelines.config import Config, DataConfig, ModelConfig

# The settings whose allowed values are a registry's names (`schema.setting(choices_from=)`).
REGISTRY_NAMES = {
    "tuner": lambda: tuple(tuner_registry.TUNERS),
    "pruner": lambda: tuple(tuner_registry.PRUNERS),
    "model": lambda: tuple(model_registry.MODELS),
}


def choices(field: pydantic.fields.FieldInfo) -> tuple[Any, ...]:
    """A setting's allowed values: its `Literal` type's, or its registry's names; () if free."""
    choices_from = (field.json_schema_extra or {}).get("choices_from")  # type: ignore[union-attr]
    if choices_from:
        return REGISTRY_NAMES[choices_from]()
    if typing.get_origin(field.annotation) is typing.Literal:
        return typing.get_args(field.annotation)
    return ()


def type_name(hint: Any) -> str:
    """A type in words, for messages and the reference page: "a whole number"."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(type_name(option) for option in typing.get_args(hint))
    if typing.get_origin(hint) is typing.Literal:
        return "one of " + ", ".join(repr(value) for value in typing.get_args(hint))
    if hint is type(None):
        return "empty"
    if typing.get_origin(hint) is dict:
        return "a table"
    if typing.get_origin(hint) is list:
        return f"a list of {type_name(typing.get_args(hint)[0])}"
    return {int: "a whole number", float: "a decimal number", str: "text",
            bool: "true or false"}.get(hint, str(hint))


def validate(config: Config) -> None:
    """Checks every name of `config` that lives in a registry, and every rule that joins
    two settings; the schema has checked each value's type and range.

    Raises:
        ConfigError: Naming the key or flag and the fix.
    """
    tuner, data, model = config.tuner, config.data, config.model
    _check_model(model)
    _check_choice("tuner", tuner.name, tuner_registry.TUNERS)
    _check_choice("pruner", tuner.pruner, tuner_registry.PRUNERS)
    for name, flag, value, minimum in (
            ("walk-forward train", "--walk-forward-train", data.train_window,
             data.lookback + 1),
            ("walk-forward validation", "--walk-forward-validation", data.validation_window,
             data.lookback + 1)):
        if value < minimum:
            raise ConfigError(f"{name} must be >= {minimum} (lookback + 1), got {value}; fix "
                              f"{flag}")
    _check_sizes(data)
    spec = tuner_registry.TUNERS[tuner.name]
    if spec.budget == "epochs":
        # An epoch-budget strategy's plan checks its options (ASHA's rungs, PBT's population)
        # without TensorFlow, so a bad one is refused here rather than mid-run.
        try:
            spec.planned_budget(tuner.max_epochs, tuner.factor, tuner.hyperband_iterations,
                                tuner.options)
        except tuner_errors.TunerConfigError as error:
            raise ConfigError(f"tuner settings: {error}") from None
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
        for key in ("test_size", "validation_size"):
            value = getattr(config.data, key)
            # A table's sizes are fractions; empty stands for 0.2.
            if value is not None and not (isinstance(value, float) and 0 < value < 1):
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
            # A built-in model's arguments are known now, so a search-space form that does
            # not suit one is refused before TensorFlow is imported; a user's class is
            # checked when it is built (`pipelines.run.build`).
            search_space.to_arguments(model.search_space, spec.argument_kinds, model.name)
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
    """Checks `--objectives` (`pipelines.reports.pareto`)."""
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
            raise ConfigError(f"{key.replace('_', ' ')} must be a whole number of steps or a "
                              f"fraction in (0, 1), got {value}; fix {flag}")
        if isinstance(value, int) and not isinstance(value, bool) and value < 1:
            raise ConfigError(f"{key.replace('_', ' ')} must be >= 1, got {value}; fix {flag}")
