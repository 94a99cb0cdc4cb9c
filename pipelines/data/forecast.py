"""A finished run's data, read again for forecasting: new files to the arrays its model takes.

`ktlab tune` fits a preprocessor on its training rows and saves it beside the best model;
forecasting reads a file in any layout that `ktlab data` reads, builds the same features
as the run did, checks that they include every column the preprocessor was fitted on, and
scales them with the saved preprocessor. Nothing is refitted here, and nothing imports
TensorFlow: the windows are a numpy array that `model.predict` takes as it is.

```python
saved = joblib.load("runs/RUN/preprocessor.joblib")
settings = json.loads(pathlib.Path("runs/RUN/config.json").read_text())["data"]
prices = load_prices("AV.csv", settings, saved["preprocessor"])
windows = series_windows(prices, settings, saved["preprocessor"], 30, name="AV.csv")
outputs = model.predict(windows.windows)  # windows.dates: the days forecast
```
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.data import sources, volatility
from pipelines.data.stock import make_stock_features
from pipelines.errors import DataError

if TYPE_CHECKING:
    import sklearn.compose

CALENDAR_COLUMNS = ("year", "month", "day")
# A recognised layout's own price column, which stands for close in a file's header.
CLOSE_SPELLINGS = ("close", "adj close")


@dataclasses.dataclass
class SeriesWindows:
    """Every window of scaled features a price file allows, and what each one forecasts.

    Window i holds the rows up to and including day t, and forecasts day t+1; the last
    window ends on the file's last day, so it forecasts the business day after it.

    Attributes:
        windows: Scaled features, shape `(windows, lookback, features)`, float32.
        dates: The day each window forecasts.
        anchor: The close on each window's last day: the persistence forecast, and the
            base that a forecast return applies to.
        actual: The close on the day forecast; NaN for the last window.

    For a run with `target = "volatility"`, `anchor` and `actual` are the absolute log
    returns of those days instead.
    """

    windows: np.ndarray
    dates: pd.DatetimeIndex
    anchor: np.ndarray
    actual: np.ndarray

    def __len__(self) -> int:
        return len(self.windows)

    def tail(self, count: int) -> SeriesWindows:
        """The last `count` windows."""
        start = max(len(self) - count, 0)
        return SeriesWindows(self.windows[start:], self.dates[start:], self.anchor[start:],
                             self.actual[start:])


def used_columns(preprocessor: sklearn.compose.ColumnTransformer) -> tuple[list[str], list[str]]:
    """The numeric and categorical columns that a fitted preprocessor scales or encodes.

    Its `feature_names_in_` also hold the columns dropped as constant over the training
    rows (the `remainder`), which the model never sees and a new file need not have.
    """
    groups = {name: [str(column) for column in columns]
              for name, _, columns in preprocessor.transformers_ if name != "remainder"}
    return groups.get("num", []), groups.get("cat", [])


def missing_columns_error(name: str, missing: list[str]) -> DataError:
    """The one-line error for a file that lacks columns the run's model was trained on."""
    if len(missing) > 1:
        return DataError(f"{name}: missing columns {', '.join(missing)}, which the run's model "
                         f"takes as features; pass a file that has them (any layout that ktlab "
                         f"data reads)")
    return DataError(f"{name}: missing column {missing[0]}, which the run's model takes as a "
                     f"feature; pass a file that has it (any layout that ktlab data reads)")


def raw_price_columns(features: list[str], settings: Mapping[str, Any]) -> list[str]:
    """The columns of a price file that the features `features` are computed from.

    Args:
        features: Feature columns, as `make_stock_features` names them.
        settings: The run's `data` settings (its `config.json`'s `data` table).
    """
    derived = {f"{column}_mean_{settings['rolling_window']}": column
               for column in sources.PRICE_COLUMNS}
    derived.update({f"close_ma_{settings['moving_average_window']}": "close",
                    "log_return": "close", volatility.ABS_RETURN: "close",
                    f"{volatility.ABS_RETURN}_mean_{settings['rolling_window']}": "close",
                    f"{volatility.ABS_RETURN}_ma_{settings['moving_average_window']}": "close"})
    needed = [derived.get(feature, feature) for feature in features
              if not (settings["calendar"] and feature in CALENDAR_COLUMNS)]
    return list(dict.fromkeys(needed))


def load_prices(source: str | pathlib.Path, settings: Mapping[str, Any],
                preprocessor: sklearn.compose.ColumnTransformer) -> pd.DataFrame:
    """Reads a price series as `ktlab data` does, with the run's layout and fill settings.

    Raises:
        DataError: If the file cannot be read, or lacks a column the model needs; a file
            whose layout is not recognised because it lacks such a column is reported by
            that column's name rather than by the list of layouts.
    """
    try:
        return sources.load_stock_frame(source, date_column=settings.get("date_column"),
                                        target_column=settings.get("target_column"),
                                        fill=settings.get("fill", "error"))
    except DataError:
        custom = settings.get("date_column") or settings.get("target_column")
        path = pathlib.Path(source)
        if custom or sources.is_bundled_ticker(str(source)) or not path.is_file():
            raise
        header = {str(column).strip().lower().replace("_", " ")
                  for column in sources.read_csv(path).columns}
        if header & set(CLOSE_SPELLINGS):
            header.add("close")
        numeric, categorical = used_columns(preprocessor)
        missing = [column for column in raw_price_columns([*numeric, *categorical], settings)
                   if column not in header]
        if missing:
            raise missing_columns_error(path.name, missing) from None
        raise


def series_windows(prices: pd.DataFrame, settings: Mapping[str, Any],
                   preprocessor: sklearn.compose.ColumnTransformer, lookback: int,
                   name: str) -> SeriesWindows:
    """Builds the run's features from `prices` and cuts every window of `lookback` days.

    Args:
        prices: A frame as `sources.load_stock_frame` returns it.
        settings: The run's `data` settings: `rolling_window`, `moving_average_window`,
            `calendar`, `log_returns`.
        preprocessor: The run's fitted `ColumnTransformer`.
        lookback: Days in each window.
        name: The data's name, for messages.

    Raises:
        DataError: If the features lack a column the preprocessor scales, or the file has
            too few rows for one window.
    """
    numeric, categorical = used_columns(preprocessor)
    missing = [column for column in raw_price_columns([*numeric, *categorical], settings)
               if column not in prices.columns]
    if missing:
        raise missing_columns_error(name, missing)
    features, _, _ = make_stock_features(
        prices, rolling_window=settings["rolling_window"],
        moving_average_window=settings["moving_average_window"],
        calendar=settings["calendar"], log_returns=settings["log_returns"],
        volatility=settings.get("target") == "volatility")
    if len(features) < lookback:
        # Close's moving average, the rolling means and the day's log return each need
        # earlier rows, so the first of them never become features.
        warmup = max(settings["rolling_window"], settings["moving_average_window"],
                     2 if settings["log_returns"] else 1) - 1
        if settings.get("target") == "volatility":
            # The moving average of the absolute log return starts a day later.
            warmup = settings["moving_average_window"]
        raise DataError(f"{name}: {len(prices)} rows are too few for one window; the run needs "
                        f"at least {warmup + lookback} ({warmup} warm-up rows for the rolling "
                        f"features + lookback {lookback}), pass a longer file")
    rows = _scaled(features, preprocessor, name)
    # Window i covers rows i .. i+lookback-1, so its last day is t = i+lookback-1.
    windows = np.lib.stride_tricks.sliding_window_view(rows, lookback, axis=0)
    windows = np.ascontiguousarray(windows.transpose(0, 2, 1))
    close = features["close"].to_numpy(dtype="float64")
    if settings.get("target") == "volatility":
        # The forecast, its persistence forecast and the actual value are volatilities.
        close = features[volatility.ABS_RETURN].to_numpy(dtype="float64")
    last_days = np.arange(lookback - 1, len(features))
    next_day = features.index[-1] + pd.offsets.BDay(1)
    dates = pd.DatetimeIndex([*features.index[lookback:], next_day], name="date")
    return SeriesWindows(windows=windows, dates=dates, anchor=close[last_days],
                         actual=np.append(close[lookback:], np.nan))


def load_rows(source: str | pathlib.Path, preprocessor: sklearn.compose.ColumnTransformer,
              target: str, fill: str = "error") -> tuple[pd.DataFrame, pd.Series | None]:
    """Reads a table's rows for forecasting; the target column may be absent.

    Numeric features are read as numbers and categorical ones as text, as the preprocessor
    was fitted, whatever a few rows of a new file look like.

    Args:
        source: `diabetes`, `breast_cancer` or the path of a CSV file.
        preprocessor: The run's fitted `ColumnTransformer`.
        target: The run's target column; its values are returned when the file has it.
        fill: Rows with a missing feature value: `drop` drops them, anything else refuses.

    Returns:
        The feature rows, labelled by their 0-based data row in the file, and the target
        column (None when absent) on the same labels.

    Raises:
        DataError: If a feature column is missing or holds an unusable value.
    """
    numeric, categorical = used_columns(preprocessor)
    if str(source) in sources.BUNDLED_TABLES:
        table, actual = sources.load_table(source)
        name = str(source)
    else:
        path = pathlib.Path(source)
        table = sources.read_csv(path).replace(list(sources.MISSING_MARKERS), np.nan)
        name = path.name
        actual = table.pop(target) if target in table.columns else None
        if actual is not None:
            numbers = pd.to_numeric(actual, errors="coerce")
            actual = numbers if numbers.notna().all() else actual
    missing = [column for column in [*numeric, *categorical] if column not in table.columns]
    if missing:
        raise missing_columns_error(name, missing)
    frame = pd.DataFrame(index=table.index)
    for column in numeric:
        frame[column] = _numbers(table[column], name, column)
    for column in categorical:
        frame[column] = table[column].where(table[column].isna(), table[column].astype(str))
    absent = frame.isna()
    if absent.any().any():
        if fill != "drop":
            counts = absent.sum()
            where = ", ".join(f"{column}: {count}" for column, count in counts[counts > 0].items())
            raise DataError(f"{name}: {int(counts.sum())} missing values ({where}); fill them "
                            f"or remove those rows")
        frame = frame.dropna()
        if frame.empty:
            raise DataError(f"{name}: every row has a missing value; fill them before "
                            f"forecasting")
    return frame, None if actual is None else actual.loc[frame.index]


def table_rows(frame: pd.DataFrame, preprocessor: sklearn.compose.ColumnTransformer,
               name: str) -> np.ndarray:
    """Scales rows of a table (as `load_rows` returns them) with the run's preprocessor.

    Returns:
        The model's inputs, shape `(rows, features)`, float32.
    """
    return _scaled(frame, preprocessor, name)


def _numbers(column: pd.Series, name: str, header: str) -> pd.Series:
    """A feature column as floats, refusing text and infinite values with the first cell."""
    numbers = pd.to_numeric(column, errors="coerce")
    bad = numbers.isna() & column.notna()
    if bad.any():
        label = column.index[bad.to_numpy()][0]
        raise DataError(f"{name}: column {header!r} has non-numeric value {column.loc[label]!r} "
                        f"on data row {label + 1}; fix or remove those cells")
    infinite = np.isinf(numbers.to_numpy(dtype="float64"))
    if infinite.any():
        label = column.index[infinite][0]
        raise DataError(f"{name}: column {header!r} has an infinite value {column.loc[label]!r} "
                        f"on data row {label + 1}; fix or remove those cells")
    return numbers.astype("float64")


def _scaled(frame: pd.DataFrame, preprocessor: sklearn.compose.ColumnTransformer,
            name: str) -> np.ndarray:
    """Transforms `frame` with the fitted preprocessor, in the column order it was fitted on.

    Columns that the preprocessor dropped as constant are passed as zeros when `frame`
    lacks them: it ignores them, but still expects every column it was fitted on.
    """
    numeric, categorical = used_columns(preprocessor)
    missing = [column for column in [*numeric, *categorical] if column not in frame.columns]
    if missing:
        raise missing_columns_error(name, missing)
    columns = [str(column) for column in preprocessor.feature_names_in_]
    inputs = frame.reindex(columns=columns, fill_value=0.0)
    return preprocessor.transform(inputs).astype("float32")
