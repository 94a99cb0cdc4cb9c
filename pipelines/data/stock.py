"""Daily prices to leakage-safe windows for an LSTM: features, chronological splits, folds."""

from __future__ import annotations

import dataclasses
import functools
import pathlib
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.data import references, sources
from pipelines.data.folds import WalkForward, walk_forward_folds
from pipelines.data.prepared import (
    Fold,
    PreparedData,
    Split,
    constant_columns,
    dropped_notice,
    make_preprocessor,
    positive_int,
    score,
)
from pipelines.data.volatility import volatility_features, volatility_targets
from pipelines.errors import ConfigError, DataError

TARGETS = ("close", "return", "volatility")
MIN_TRAIN_SAMPLES = 10

if TYPE_CHECKING:
    import sklearn.compose
    import sklearn.preprocessing

# scikit-learn (with the SciPy it loads) takes about a second to import, so it is
# imported where a fit happens: a file that fails its checks is reported before that.


def make_stock_features(
    prices: pd.DataFrame,
    *,
    rolling_window: int = 5,
    moving_average_window: int = 30,
    calendar: bool = False,
    log_returns: bool = False,
    volatility: bool = False,
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Builds the reference article's features; row t uses only rows <= t.

    Features: the price columns and volume, rolling means of open/high/low/close over
    `rolling_window` days, the `moving_average_window`-day moving average of close, and
    optionally the day's log return, one-hot year/month/day (as the article does) and,
    for the volatility target, the day's absolute log return with its means over the same
    two windows (`pipelines.data.volatility`). Rows that the rolling windows cannot fill
    yet are dropped.

    Returns:
        The feature frame, its numeric column names and its categorical column names.
    """
    features = prices.copy()
    prices_present = [column for column in sources.PRICE_COLUMNS if column in prices.columns]
    for column in prices_present:
        features[f"{column}_mean_{rolling_window}"] = (
            prices[column].rolling(rolling_window).mean())
    features[f"close_ma_{moving_average_window}"] = (
        prices["close"].rolling(moving_average_window).mean())
    if log_returns:
        features["log_return"] = np.log(prices["close"] / prices["close"].shift(1))
    if volatility:
        volatility_features(features, prices["close"], rolling_window, moving_average_window)
    categorical = []
    if calendar:
        dates = prices.index
        for name, values in (("year", dates.year), ("month", dates.month), ("day", dates.day)):
            features[name] = np.asarray(values).astype(str)
            categorical.append(name)
    features = features.dropna()
    numeric = [column for column in features.columns if column not in categorical]
    return features, numeric, categorical


class _Windows:
    """A split's windows: cut once and cached one by one, then batched and cached per size.

    Cutting the windows is the costly step (about 0.2 s for the bundled training split), so
    it runs once per split, not once per batch size that a search tries; each size then
    reads the cached windows once and its own cached batches after that.
    """

    def __init__(self, rows: np.ndarray, targets: np.ndarray, lookback: int) -> None:
        self.rows = rows
        self.targets = targets
        self.lookback = lookback

    @functools.cached_property
    def windows(self) -> Any:
        import keras

        return keras.utils.timeseries_dataset_from_array(
            self.rows, self.targets, sequence_length=self.lookback, batch_size=None,
            shuffle=False).cache()

    def __call__(self, batch_size: int) -> Any:
        import tensorflow as tf

        return self.windows.batch(batch_size).cache().prefetch(tf.data.AUTOTUNE)


class StockPipeline:
    """Turns a daily price series into leakage-safe windows for an LSTM.

    The target for day t is the next day's close (or return, or volatility); day t's
    window holds rows t-lookback+1..t. Splits are chronological: train, validation, then
    the last `test_size` days held out. Each split's windows and targets lie inside its
    own rows, so the last training target precedes the first validation input. Features
    and targets are scaled with statistics of the training rows only, and numeric features
    that are constant over the training rows (such as a CSV's all-zero OpenInt column) are
    dropped, from the walk-forward folds too.

    ```python
    prepared = StockPipeline("AAPL", lookback=30, test_size=800).prepare()
    print(prepared.summary())
    ```

    Args:
        source: A bundled ticker (AAPL, MSFT, IBM, GOOG) or a CSV path.
        lookback: Days in each input window.
        test_size: Days held out at the end; tuning never sees them.
        validation_size: Days before the test split used for validation (an int), or a
            fraction of the days before the test split (a float in (0, 1)).
        target: `return` (next day's return, turned back into a price for every score),
            `close` (next day's close, the reference article's target, which must
            extrapolate when test prices leave the training range) or `volatility` (next
            day's absolute log return, forecast in log space and scored in its own units;
            see `pipelines.data.volatility`).
        rolling_window: Days in the rolling means of open/high/low/close.
        moving_average_window: Days in the moving average of close.
        calendar: Add one-hot year, month and day features.
        log_returns: Add the day's log return as a feature.
        batch_size: Batch size of each split's `dataset`; a hypermodel that tunes its
            batch size asks a split for its own (`Split.batched`).
        walk_forward: Window sizes for walk-forward folds.
        fill: Missing-value policy: `error`, `ffill` or `drop`.
        date_column: Date column of a CSV in a custom layout.
        target_column: Column to forecast in a custom layout.
    """

    def __init__(
        self,
        source: str | pathlib.Path = "AAPL",
        *,
        lookback: int = 30,
        test_size: int = 800,
        validation_size: int | float = 500,
        target: str = "return",
        rolling_window: int = 5,
        moving_average_window: int = 30,
        calendar: bool = False,
        log_returns: bool = True,
        batch_size: int = 32,
        walk_forward: WalkForward | None = None,
        fill: str = "error",
        date_column: str | None = None,
        target_column: str | None = None,
    ) -> None:
        self.source = source
        self.lookback = positive_int("lookback", lookback)
        self.test_size = positive_int("test_size", test_size)
        self.validation_size = validation_size
        if target not in TARGETS:
            raise ConfigError(f"unknown target {target!r}; use one of {', '.join(TARGETS)}")
        self.target = target
        self.rolling_window = positive_int("rolling_window", rolling_window)
        self.moving_average_window = positive_int("moving_average_window",
                                                   moving_average_window)
        self.calendar = calendar
        self.log_returns = log_returns
        self.batch_size = positive_int("batch_size", batch_size)
        self.walk_forward = walk_forward or WalkForward()
        self.fill = fill
        self.date_column = date_column
        self.target_column = target_column

    def prepare(self, prices: pd.DataFrame | None = None) -> PreparedData:
        """Loads (unless `prices` is given), checks, featurises, splits and scales.

        Args:
            prices: A frame as `pipelines.data.sources.load_stock_frame` returns, to skip
                loading (notebooks and tests use this).

        Raises:
            DataError: If the data cannot be used; the message says why and what to do.
        """
        name = (str(self.source).upper() if sources.is_bundled_ticker(self.source)
                else pathlib.Path(self.source).name)
        if prices is None:
            prices = sources.load_stock_frame(self.source, date_column=self.date_column,
                                              target_column=self.target_column,
                                              fill=self.fill)
        features, numeric, categorical = make_stock_features(
            prices, rolling_window=self.rolling_window,
            moving_average_window=self.moving_average_window, calendar=self.calendar,
            log_returns=self.log_returns, volatility=self.target == "volatility")
        close = features["close"].to_numpy(dtype="float64")
        rows = len(features)
        test_start, validation_start = self._split_points(name, len(prices), rows)
        # Row t's target is day t+1's value, so the last row has none and is never a sample.
        next_close = np.append(close[1:], np.nan)
        targets = next_close if self.target == "close" else next_close / close - 1.0
        # What the model's outputs are scored against, and the persistence forecast.
        actual, anchor = next_close, close
        if self.target == "volatility":
            targets, actual, anchor = volatility_targets(features)
        # The training samples' targets are rows lookback-1 .. validation_start-2.
        if np.ptp(targets[self.lookback - 1:validation_start - 1]) == 0:
            raise DataError(f"{name}: the target ({self.target}) is constant over the "
                            f"{validation_start} training rows; use a series whose close "
                            f"price changes")
        # Decided once, from the main training rows, so that every fold and the final
        # model see the same columns; close stays because the windows and targets use it.
        dropped = [column for column in constant_columns(
            features.iloc[:validation_start], numeric) if column != "close"]
        numeric = [column for column in numeric if column not in dropped]
        # So are the calendar's one-hot columns: a fold or the refit that saw other years
        # would otherwise give the model another number of inputs. A year the main
        # training rows never saw is all zeros, as in the test rows.
        categories = [sorted(features[column].iloc[:validation_start].unique())
                      for column in categorical]
        builder = _WindowBuilder(features, numeric, categorical, targets, actual, anchor,
                                 self.lookback, self.batch_size, categories)
        fitted = builder.fit(0, validation_start)
        splits = {
            "train": fitted.split("train", 0, validation_start),
            "validation": fitted.split("validation", validation_start, test_start),
            "test": fitted.split("test", test_start, rows),
        }
        baselines = {name: score("regression", splits[name].actual, splits[name].anchor)
                     for name in ("validation", "test")}
        forecasts = references.reference_forecasts(self.target, features,
                                                   self.moving_average_window)

        def make_folds() -> list[Fold]:
            return self._folds(builder, test_start)

        def make_refit() -> PreparedData:
            # Training and validation rows together, scaled with their own statistics.
            refitted = builder.fit(0, test_start)
            return dataclasses.replace(
                prepared, splits={"train": refitted.split("train", 0, test_start),
                                  "test": refitted.split("test", test_start, rows)},
                preprocessor=refitted.preprocessor, target_scaler=refitted.target_scaler,
                make_folds=None, make_refit=None)

        prepared = PreparedData(
            task="regression", input_shape=(self.lookback, len(fitted.feature_names)),
            feature_names=fitted.feature_names, splits=splits, baselines=baselines,
            preprocessor=fitted.preprocessor, target_scaler=fitted.target_scaler,
            n_classes=None, target=self.target, description=f"{name} daily prices",
            baseline=forecasts["persistence"].description,
            units="volatility" if self.target == "volatility" else "price", held_out="days",
            references=forecasts,
            make_folds=make_folds, make_refit=make_refit,
            notices=[*prices.attrs.get(sources.NOTICES_ATTR, []), *dropped_notice(dropped)])
        return prepared

    def _split_points(self, name: str, raw_rows: int, rows: int) -> tuple[int, int]:
        warmup = raw_rows - rows
        if self.test_size >= rows:
            raise DataError(f"{name}: test size {self.test_size} is not smaller than the "
                            f"{rows} rows left after {warmup} warm-up rows; lower --test-size")
        if isinstance(self.validation_size, float) and 0 < self.validation_size < 1:
            validation_rows = round((rows - self.test_size) * self.validation_size)
        elif isinstance(self.validation_size, int) and self.validation_size > 0:
            validation_rows = self.validation_size
        else:
            raise ConfigError(f"validation_size must be a whole number of days > 0 or a "
                              f"fraction in (0, 1), got {self.validation_size!r}")
        minimum_split = self.lookback + 1
        needed = warmup + self.lookback + MIN_TRAIN_SAMPLES + max(validation_rows,
                                                                   minimum_split) + max(
            self.test_size, minimum_split)
        if (raw_rows < needed or validation_rows < minimum_split
                or self.test_size < minimum_split):
            raise DataError(
                f"{name}: too few rows for lookback {self.lookback}: have {raw_rows}, need "
                f"{needed} ({warmup} warm-up, >= {self.lookback + MIN_TRAIN_SAMPLES} train, "
                f">= {minimum_split} each for validation ({validation_rows}) and test "
                f"({self.test_size})); use more data or lower --lookback, --validation-size "
                f"or --test-size")
        test_start = rows - self.test_size
        return test_start, test_start - validation_rows

    def _folds(self, builder: _WindowBuilder, test_start: int) -> list[Fold]:
        return walk_forward_folds(builder, test_start, self.walk_forward, self.lookback + 1,
                                  "days")


class _WindowBuilder:
    """Scales rows with statistics of a chosen training range and cuts split windows."""

    def __init__(self, features: pd.DataFrame, numeric: list[str], categorical: list[str],
                 targets: np.ndarray, next_close: np.ndarray, close: np.ndarray,
                 lookback: int, batch_size: int, categories: list[list[str]] | None = None,
                 ) -> None:
        self.features = features
        self.numeric = numeric
        self.categorical = categorical
        self.categories = categories
        self.targets = targets
        self.next_close = next_close
        self.close = close
        self.lookback = lookback
        self.batch_size = batch_size

    def fit(self, start: int, stop: int) -> _FittedWindows:
        """Fits the feature and target scalers on rows [start, stop) only."""
        preprocessor = make_preprocessor(self.numeric, self.categorical, self.categories)
        preprocessor.fit(self.features.iloc[start:stop])
        import sklearn.preprocessing

        target_scaler = sklearn.preprocessing.StandardScaler()
        # The training samples' targets are rows start+lookback-1 .. stop-2 (see split()).
        target_scaler.fit(self.targets[start + self.lookback - 1:stop - 1].reshape(-1, 1))
        scaled_rows = preprocessor.transform(self.features).astype("float32")
        scaled_targets = target_scaler.transform(
            np.nan_to_num(self.targets).reshape(-1, 1)).astype("float32")
        return _FittedWindows(self, preprocessor, target_scaler, scaled_rows, scaled_targets)


@dataclasses.dataclass
class _FittedWindows:
    builder: _WindowBuilder
    preprocessor: sklearn.compose.ColumnTransformer
    target_scaler: sklearn.preprocessing.StandardScaler
    scaled_rows: np.ndarray
    scaled_targets: np.ndarray

    @property
    def feature_names(self) -> list[str]:
        return [str(name) for name in self.preprocessor.get_feature_names_out()]

    def split(self, name: str, start: int, stop: int) -> Split:
        """The windows that lie, with their targets, inside rows [start, stop).

        A sample's last input row is t and its target is row t+1's value, so t runs from
        start+lookback-1 to stop-2.
        """
        builder = self.builder
        lookback = builder.lookback
        last_inputs = np.arange(start + lookback - 1, stop - 1)
        rows = self.scaled_rows[start:stop - 1]
        targets = self.scaled_targets[last_inputs]
        dates = builder.features.index
        return Split(
            name=name, targets=targets, actual=builder.next_close[last_inputs],
            index=dates[last_inputs + 1], anchor=builder.close[last_inputs],
            make_dataset=_Windows(rows, targets, lookback),
            batch_size=builder.batch_size)

