"""The parts a search is built from, chosen by the configuration: data pipeline and model.

The model's registry entry (`hypermodels.registry`) says which data feeds it; nothing
here branches on a model's name. Every error a model's constructor raises for a user's
setting becomes one `ConfigError` here.
"""

from __future__ import annotations

from typing import Any

from hypermodels import registry
from pipelines.config import Config, search_space
from pipelines.config.checks import check_data_kind
from pipelines.data import (
    PreparedData,
    SeriesPipeline,
    StockPipeline,
    TabularPipeline,
    WalkForward,
    series_sources,
)
from pipelines.errors import ConfigError

# The split sizes that `data.test_size` and `data.validation_size` left empty stand for:
# the reference article's days for prices, fractions for a table (a series' are its own).
PRICE_SIZES = {"test_size": 800, "validation_size": 500}
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
    walk_forward = WalkForward(data.train_window, data.validation_window, data.step)
    if spec.data_kind == "series" and series_kind(config) == "series":
        return SeriesPipeline(
            config.source, date_column=data.date_column, target_column=data.target_column,
            lookback=data.lookback, horizon=data.horizon, test_size=data.test_size,
            validation_size=data.validation_size, season=data.season, fill=data.fill,
            feature_columns=data.feature_columns, features=data.features,
            calendar=data.calendar, batch_size=data.batch_size, walk_forward=walk_forward)
    if spec.data_kind == "series":
        if data.horizon != 1:
            raise ConfigError(f"--horizon {data.horizon} forecasts a general series; "
                              f"{config.source} is read as daily prices, which forecast one "
                              f"day (pass --kind series to read it as a series)")
        sizes = {key: PRICE_SIZES[key] if getattr(data, key) is None else getattr(data, key)
                 for key in PRICE_SIZES}
        return StockPipeline(
            config.source, lookback=data.lookback, target=data.target,
            rolling_window=data.rolling_window,
            moving_average_window=data.moving_average_window, calendar=data.calendar,
            log_returns=data.log_returns, batch_size=data.batch_size, walk_forward=walk_forward,
            fill=data.fill, date_column=data.date_column, target_column=data.target_column,
            **sizes)
    sizes = {key: TABLE_SIZES[key] if getattr(data, key) is None else getattr(data, key)
             for key in TABLE_SIZES}
    return TabularPipeline(config.source, target_column=data.target_column, task=data.task,
                           fill=data.fill, seed=config.run.seed, batch_size=data.batch_size,
                           **sizes)


def series_kind(config: Config) -> str:
    """Whether a series model's source is read as `prices` or as a general `series`."""
    return series_sources.series_kind(config.source, config.data.date_column,
                                      config.data.target_column, config.data.kind)


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
