"""The parts a search is built from, chosen by the configuration: data pipeline and model.

The model's registry entry (`hypermodels.registry`) says which data feeds it; nothing
here branches on a model's name. Every error a model's constructor raises for a user's
setting becomes one `ConfigError` here.
"""

from __future__ import annotations

from typing import Any

from hypermodels import registry
from pipelines.config import Config, DataConfig, search_space
from pipelines.config.checks import check_data_kind
from pipelines.data import PreparedData, StockPipeline, TabularPipeline, WalkForward
from pipelines.errors import ConfigError

# A table's split sizes are fractions; the series defaults are days.
TABLE_SIZES = {"test_size": 0.2, "validation_size": 0.2}


def model_spec(config: Config) -> registry.ModelSpec:
    """The configured model's registry entry; a user's class is imported here.

    Raises:
        ConfigError: For a class that cannot be found, imported or used.
    """
    try:
        spec = registry.resolve(config.model.name)
    except registry.ModelNotFoundError as error:
        raise ConfigError(str(error)) from None
    if not config.data.source and registry.is_reference(config.model.name):
        # A user's class names its data once imported; the run goes on from here with it.
        config.data.source = spec.default_source
    return spec


def make_pipeline(config: Config, spec: registry.ModelSpec | None = None,
                  ) -> StockPipeline | TabularPipeline:
    """The pipeline that feeds the configured model: windows of a series, or table rows.

    Raises:
        ConfigError: If the data source does not suit the model.
    """
    spec = spec or model_spec(config)
    check_data_kind(config, spec.data_kind)
    data = config.data
    if spec.data_kind == "series":
        return StockPipeline(
            config.source, lookback=data.lookback, test_size=data.test_size,
            validation_size=data.validation_size, target=data.target,
            rolling_window=data.rolling_window,
            moving_average_window=data.moving_average_window, calendar=data.calendar,
            log_returns=data.log_returns, batch_size=data.batch_size,
            walk_forward=WalkForward(data.train_window, data.validation_window, data.step),
            fill=data.fill, date_column=data.date_column, target_column=data.target_column)
    defaults = DataConfig()
    sizes = {key: (TABLE_SIZES[key] if getattr(data, key) == getattr(defaults, key)
                   else getattr(data, key)) for key in TABLE_SIZES}
    return TabularPipeline(config.source, target_column=data.target_column, task=data.task,
                           fill=data.fill, seed=config.run.seed, batch_size=data.batch_size,
                           **sizes)


def make_hypermodel(config: Config, prepared: PreparedData,
                    spec: registry.ModelSpec | None = None) -> Any:
    """The configured model for `prepared`'s input shape and horizon, with its search space.

    Raises:
        ConfigError: For an unknown override, an invalid range, or a user's class that
            cannot be built or cannot be told a horizon above 1.
    """
    spec = spec or model_spec(config)
    # Converted outside the `try`: its `ConfigError` already names the key and the fix.
    arguments = search_space.arguments(config.model, spec)
    # Prepared data without a horizon (a table's) is forecast one step, or one row, ahead.
    horizon = getattr(prepared, "horizon", 1)
    try:
        return spec.build(prepared.input_shape, task=prepared.task,
                          n_classes=prepared.n_classes, horizon=horizon, **arguments)
    except registry.HorizonError as error:
        # Already one line naming the class and the fix; the generic advice below about
        # input_shape= would mislead.
        raise ConfigError(str(error)) from None
    except (TypeError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        if registry.is_reference(config.model.name):
            raise ConfigError(f"cannot build {config.model.name} with input_shape="
                              f"{prepared.input_shape} ({reason}); its __init__ must take "
                              f"input_shape= (tables: also task= and n_classes=)") from None
        raise ConfigError(f"model.search_space: {reason}") from None
