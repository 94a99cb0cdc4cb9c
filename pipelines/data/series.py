"""Any time series to leakage-safe windows: the next `horizon` steps, forecast directly.

The price pipeline (`pipelines.data.stock`) knows daily prices; this one knows nothing of
prices. The target may be any finite number; the file's other numeric columns are
features; calendar features follow the frequency; the model forecasts the change from the
last known value over each of the next `horizon` steps (so a trending series need not be
extrapolated in its own units), and every score is in the target's own units.

```python
prepared = SeriesPipeline("co2", horizon=4, fill="interpolate").prepare()
print(prepared.summary())
```
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

import numpy as np
import pandas as pd

from pipelines.data import baselines as forecasts
from pipelines.data import series_sources
from pipelines.data.folds import WalkForward, walk_forward_folds
from pipelines.data.prepared import (
    Fold,
    PreparedData,
    Split,
    constant_columns,
    dropped_notice,
    make_preprocessor,
    positive_int,
)
from pipelines.data.references import ReferenceForecast
from pipelines.data.stock import MIN_TRAIN_SAMPLES, _Windows
from pipelines.errors import ConfigError, DataError

# The default split: the last 20% of the steps are the test, and 25% of those before it
# (20% of all) the validation; it suits 200 quarters as well as 10,000 hours.
DEFAULT_TEST, DEFAULT_VALIDATION = 0.2, 0.25
# Calendar features by frequency: the attributes of a date that a season lives in.
CALENDAR = {"hourly": ("hour", "day_of_week"), "daily": ("day_of_week", "month"),
            "business-daily": ("day_of_week", "month"), "weekly": ("month",),
            "monthly": ("month",), "quarterly": ("quarter",), "yearly": ()}


class SeriesPipeline:
    """Turns any regular time series into windows and `horizon`-step targets.

    Sample t's window holds rows t-lookback+1..t (the target and the features), and its
    targets are the target's values at t+1..t+horizon, less its value at t. Splits are
    chronological and each split's windows and targets lie inside its own rows; scalers
    see training rows only.

    Args:
        source: A bundled series (`co2`) or a CSV path.
        date_column, target_column: The columns to read (`series_sources.load_series`).
        lookback: Steps in each input window.
        horizon: Steps forecast from each window.
        test_size, validation_size: Whole steps, or fractions (of all steps; of the steps
            before the test); None: 0.2 and 0.25.
        season: Steps in a season, for the seasonal naive forecast and MASE; None: from
            the frequency.
        fill: The gap policy.
        feature_columns, features: Which other numeric columns are features.
        calendar: Add one-hot calendar features that follow the frequency.
        batch_size: Batch size of each split's `dataset`.
        walk_forward: Window sizes for walk-forward folds.
    """

    def __init__(self, source: str | pathlib.Path, *, date_column: str | None = None,
                 target_column: str | None = None, lookback: int = 30, horizon: int = 1,
                 test_size: int | float | None = None,
                 validation_size: int | float | None = None, season: int | None = None,
                 fill: str = "error", feature_columns: list[str] | None = None,
                 features: bool = True, calendar: bool = False, batch_size: int = 32,
                 walk_forward: WalkForward | None = None) -> None:
        self.source = str(source)
        self.date_column, self.target_column = date_column, target_column
        self.lookback = positive_int("lookback", lookback)
        self.horizon = positive_int("horizon", horizon)
        self.test_size = DEFAULT_TEST if test_size is None else test_size
        self.validation_size = DEFAULT_VALIDATION if validation_size is None else validation_size
        self.season = season
        self.fill = fill
        self.feature_columns, self.features = feature_columns, features
        self.calendar = calendar
        self.batch_size = positive_int("batch_size", batch_size)
        self.walk_forward = walk_forward or WalkForward()

    def load(self) -> tuple[pd.DataFrame, str, list[str]]:
        """The series as `series_sources.load_series` reads it."""
        return series_sources.load_series(
            self.source, date_column=self.date_column, target_column=self.target_column,
            fill=self.fill, feature_columns=self.feature_columns, features=self.features)

    def prepare(self) -> PreparedData:
        """Loads, checks, splits and scales the series, and scores the reference forecasts.

        Raises:
            DataError: If the series cannot be used; the message says why and what to do.
        """
        frame, target, notices = self.load()
        frequency = frame.attrs["frequency"]
        season = self.season or frequency.season
        name = pathlib.Path(self.source).name
        values = frame[target].to_numpy(dtype="float64")
        rows, horizon = len(frame), self.horizon
        test_start, validation_start = self._split_points(name, rows)
        # Row t's targets are the changes to rows t+1..t+horizon; the last rows have none.
        ahead = np.full((rows, horizon), np.nan)
        for step in range(1, horizon + 1):
            ahead[:rows - step, step - 1] = values[step:]
        deltas = ahead - values[:, None]
        train_values = values[:validation_start]
        if np.ptp(train_values) == 0:
            raise DataError(f"{name}: {target} is constant over the {validation_start} training "
                            f"steps; forecast a series that changes")
        features, numeric, categorical = make_series_features(frame, frequency.name,
                                                              self.calendar)
        dropped = [column for column in constant_columns(features.iloc[:validation_start],
                                                         numeric) if column != target]
        numeric = [column for column in numeric if column not in dropped]
        categories = [sorted(features[column].iloc[:validation_start].unique())
                      for column in categorical]
        builder = _Builder(features, numeric, categorical, categories, deltas, ahead, values,
                           self.lookback, horizon, self.batch_size)
        fitted = builder.fit(0, validation_start)
        splits = {"train": fitted.split("train", 0, validation_start),
                  "validation": fitted.split("validation", validation_start, test_start),
                  "test": fitted.split("test", test_start, rows)}
        scale_free = _scale_free(train_values, season)
        references = _references(values, frame.index, validation_start, horizon, season,
                                 self.lookback, scale_free)
        # The naive forecast that the model must beat is the best reference on the
        # validation rows: chosen before the test rows are looked at. Each reference is
        # scored on them once; the best one's scores are its validation baseline.
        validation = {key: reference.scores(splits["validation"])
                      for key, reference in references.items()}
        best = min(validation, key=lambda key: validation[key]["mse"])
        baselines = {"validation": validation[best],
                     "test": references[best].scores(splits["test"])}

        def make_refit() -> PreparedData:
            refitted = builder.fit(0, test_start)
            return dataclasses.replace(
                prepared, splits={"train": refitted.split("train", 0, test_start),
                                  "test": refitted.split("test", test_start, rows)},
                preprocessor=refitted.preprocessor, target_scaler=refitted.target_scaler,
                make_folds=None, make_refit=None)

        steps = f"next {horizon} {frequency.unit}s" if horizon > 1 else f"next {frequency.unit}"
        prepared = PreparedData(
            task="regression", input_shape=(self.lookback, len(fitted.feature_names)),
            feature_names=fitted.feature_names, splits=splits, baselines=baselines,
            preprocessor=fitted.preprocessor, target_scaler=fitted.target_scaler,
            n_classes=None, target=target,
            description=f"{name}: {target}, {frequency.name}, the {steps}",
            baseline=f"{references[best].description} (the best reference on the "
                     f"validation rows)", units=target,
            held_out=f"{frequency.unit}s", references=references,
            make_folds=lambda: self._folds(builder, test_start), make_refit=make_refit,
            notices=[*notices, f"season: {season} steps"
                     f"{'' if self.season else ' (from the frequency; --season to change)'}",
                     *dropped_notice(dropped)],
            best_reference=best, horizon=horizon, delta=True, frequency=frequency,
            scale_free=scale_free)
        return prepared

    def _split_points(self, name: str, rows: int) -> tuple[int, int]:
        test = size(self.test_size, rows, "test_size")
        validation = size(self.validation_size, rows - test, "validation_size")
        # A split holds at least one sample: lookback + horizon of its own rows.
        minimum = self.lookback + self.horizon
        if self.horizon >= test:
            raise DataError(f"{name}: horizon {self.horizon} is not smaller than the test split "
                            f"({test} steps); lower --horizon or raise --test-size")
        needed = minimum + MIN_TRAIN_SAMPLES + max(validation, minimum) + max(test, minimum)
        if rows < needed or validation < minimum or test < minimum:
            raise DataError(
                f"{name}: too few steps for lookback {self.lookback} and horizon "
                f"{self.horizon}: have {rows}, need {needed} (>= {minimum + MIN_TRAIN_SAMPLES} "
                f"train, >= {minimum} each for validation ({validation}) and test ({test})); "
                f"use a longer series or lower --lookback, --horizon, --validation-size or "
                f"--test-size")
        return rows - test, rows - test - validation

    def _folds(self, builder: _Builder, test_start: int) -> list[Fold]:
        return walk_forward_folds(builder, test_start, self.walk_forward,
                                  self.lookback + self.horizon, "steps")


def size(value: int | float, rows: int, key: str) -> int:
    """The steps that a split setting (`key`) gives out of `rows`.

    Returns whole steps as given, or a fraction in (0, 1) of `rows`, rounded; a float
    outside (0, 1) raises a `ConfigError`. `SeriesPipeline` uses it to place the test and
    validation splits, and `pipelines.run.predict_series` to find a run's own test steps
    again.
    """
    if isinstance(value, float):
        if not 0 < value < 1:
            raise ConfigError(f"{key} must be whole steps or a fraction in (0, 1), got {value}")
        return round(rows * value)
    return value


def make_series_features(frame: pd.DataFrame, frequency: str, calendar: bool,
                         ) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The feature rows of a series, as the model reads them.

    Returns a copy of `frame` (the target and the other numeric columns) with, when
    `calendar` is set, one text column per calendar attribute of `frequency` (`CALENDAR`),
    together with the numeric column names and the calendar (categorical) column names.
    `SeriesPipeline.prepare` builds its windows from them, and
    `pipelines.run.predict_series` rebuilds them to forecast with a saved run.
    """
    features = frame.copy()
    categorical = []
    if calendar:
        for attribute in CALENDAR[frequency]:
            features[attribute] = np.asarray(getattr(frame.index, attribute)).astype(str)
            categorical.append(attribute)
    return features, [column for column in frame.columns], categorical


def _scale_free(train_values: np.ndarray, season: int) -> Any:
    """MASE against the seasonal naive forecast on the training steps, and sMAPE."""
    # Fewer training steps than a season: MASE falls back on the one-step naive forecast.
    period = season if len(train_values) > season else 1

    def scores(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
        result = {"mase": forecasts.mase(actual, predicted, train_values, period)}
        smape = forecasts.smape(actual, predicted)
        if smape is not None:
            result["smape"] = smape
        return result

    return scores


def _references(values: np.ndarray, dates: pd.DatetimeIndex, train_stop: int, horizon: int,
                season: int, lookback: int, scale_free: Any) -> dict[str, ReferenceForecast]:
    """Persistence, seasonal naive and a statistical model, dated by the first step forecast.

    The seasonal naive forecast needs a season of history, so the first origins (inside
    the training rows' warm-up) have none; scores are only taken on validation and test.
    """
    origins = np.arange(max(season - 1, lookback - 1), len(values) - horizon)
    statistical, fitted = forecasts.statistical(values, train_stop, origins, horizon, season)
    rules = {
        "persistence": ("persistence: every step ahead = the last value",
                        forecasts.persistence(values, origins, horizon)),
        "seasonal_naive": (f"seasonal naive: each step = the same step one season ({season} "
                           f"steps) earlier", forecasts.seasonal_naive(values, origins, horizon,
                                                                        season)),
        "statistical": (f"statistical: {fitted}", statistical),
    }
    index = dates[origins + 1]
    return {key: ReferenceForecast(description, pd.DataFrame(predicted, index=index)
                                   if horizon > 1 else pd.Series(predicted[:, 0], index=index),
                                   extra=scale_free)
            for key, (description, predicted) in rules.items()}


class _Builder:
    """Scales rows with statistics of a chosen training range and cuts split windows."""

    def __init__(self, features: pd.DataFrame, numeric: list[str], categorical: list[str],
                 categories: list[list[str]], deltas: np.ndarray, ahead: np.ndarray,
                 values: np.ndarray, lookback: int, horizon: int, batch_size: int) -> None:
        self.features, self.numeric, self.categorical = features, numeric, categorical
        self.categories = categories
        self.deltas, self.ahead, self.values = deltas, ahead, values
        self.lookback, self.horizon, self.batch_size = lookback, horizon, batch_size

    def origins(self, start: int, stop: int) -> np.ndarray:
        """The last input rows t of the samples inside rows [start, stop): every target
        t+1..t+horizon lies before stop."""
        return np.arange(start + self.lookback - 1, stop - self.horizon)

    def fit(self, start: int, stop: int) -> _Fitted:
        """Fits the feature and target scalers on rows [start, stop) only."""
        import sklearn.preprocessing

        preprocessor = make_preprocessor(self.numeric, self.categorical, self.categories)
        preprocessor.fit(self.features.iloc[start:stop])
        target_scaler = sklearn.preprocessing.StandardScaler()
        target_scaler.fit(self.deltas[self.origins(start, stop)])
        rows = preprocessor.transform(self.features).astype("float32")
        targets = target_scaler.transform(np.nan_to_num(self.deltas)).astype("float32")
        return _Fitted(self, preprocessor, target_scaler, rows, targets)


@dataclasses.dataclass
class _Fitted:
    builder: _Builder
    preprocessor: Any
    target_scaler: Any
    rows: np.ndarray
    targets: np.ndarray

    @property
    def feature_names(self) -> list[str]:
        return [str(name) for name in self.preprocessor.get_feature_names_out()]

    def split(self, name: str, start: int, stop: int) -> Split:
        builder = self.builder
        origins = builder.origins(start, stop)
        targets = self.targets[origins]
        actual = builder.ahead[origins]
        if builder.horizon == 1:
            targets, actual = targets[:, 0], actual[:, 0]
        return Split(
            name=name, targets=targets, actual=actual,
            index=builder.features.index[origins + 1], anchor=builder.values[origins],
            make_dataset=_Windows(self.rows[start:stop - builder.horizon], targets,
                                  builder.lookback),
            batch_size=builder.batch_size)

