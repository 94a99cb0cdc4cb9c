"""The one data pipeline that every tuner shares.

`StockPipeline` (daily prices, windows for an LSTM) and `TabularPipeline` (rows for a dense
network) both return a `PreparedData` from `prepare()`. Every tuner receives the same
`prepared.fit_kwargs()`; the held-out test split never reaches it.

```python
prepared = pipelines.StockPipeline("AAPL", lookback=30).prepare()
tuner.search(**prepared.fit_kwargs(), epochs=10)
print(prepared.evaluate(best_model, "test"), prepared.baselines["test"])
```
"""

from __future__ import annotations

import dataclasses
import functools
import math
import pathlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import sklearn.compose
import sklearn.model_selection
import sklearn.preprocessing

from pipelines import sources
from pipelines.errors import ConfigError, DataError

TARGETS = ("close", "return")
TASKS = ("auto", "regression", "classification")
MIN_TRAIN_SAMPLES = 10


@dataclasses.dataclass(frozen=True)
class WalkForward:
    """Walk-forward validation: a training window followed by a validation window, moved
    forward by `step` rows until the validation window reaches the held-out test rows.

    The reference article uses 3,000 / 500 / 500 on 6,500 days of NVDA; the defaults fit
    the bundled 13 years of daily prices (about 2,400 rows before the test split).
    """

    train_window: int = 1500
    validation_window: int = 250
    step: int = 250


@dataclasses.dataclass
class Split:
    """One split's samples: how to build its dataset, and its targets in both units.

    Attributes:
        name: `train`, `validation` or `test`.
        targets: Scaled targets as the model sees them.
        actual: Targets in the data's own units (prices, or the tabular target).
        index: The date (stocks: the day being forecast) or row label of each sample.
        anchor: For stocks, the last known close before each forecast day (the naive
            persistence forecast, and the base that a forecast return applies to).
    """

    name: str
    targets: np.ndarray
    actual: np.ndarray
    index: pd.Index
    anchor: np.ndarray | None
    make_dataset: Callable[[], Any] = dataclasses.field(repr=False)

    @functools.cached_property
    def dataset(self) -> Any:
        """The split as a batched, cached, prefetched `tf.data.Dataset`, built once."""
        return self.make_dataset()

    def __len__(self) -> int:
        return len(self.targets)


@dataclasses.dataclass
class PreparedData:
    """Everything that tuning, evaluation and reports need from the data.

    Attributes:
        task: `regression` or `classification`.
        input_shape: Shape of one model input, `(lookback, features)` or `(features,)`.
        feature_names: Names of the model's input features after preprocessing.
        splits: `train`, `validation` and `test` splits.
        baselines: Per evaluated split, the naive forecast's scores in the data's own units
            (persistence for prices, the training mean or majority class for tables).
        preprocessor: The `ColumnTransformer` fitted on training rows only.
        target_scaler: The `StandardScaler` fitted on training targets (regression only).
        n_classes: Number of classes for classification, else None.
        target: `close`, `return` or the tabular target's name.
        description: A short name of the data for reports.
        folds: Walk-forward folds (stocks only), built when first asked for.
    """

    task: str
    input_shape: tuple[int, ...]
    feature_names: list[str]
    splits: dict[str, Split]
    baselines: dict[str, dict[str, float]]
    preprocessor: sklearn.compose.ColumnTransformer
    target_scaler: sklearn.preprocessing.StandardScaler | None
    n_classes: int | None
    target: str
    description: str
    baseline: str
    make_folds: Callable[[], list[Fold]] | None = dataclasses.field(default=None, repr=False)

    def fit_kwargs(self) -> dict[str, Any]:
        """The keyword arguments for `tuner.search()`: training and validation data only."""
        return {"x": self.splits["train"].dataset,
                "validation_data": self.splits["validation"].dataset}

    @functools.cached_property
    def _folds(self) -> list[Fold]:
        if self.make_folds is None:
            raise ConfigError("walk-forward validation needs time-ordered data; use holdout "
                              "validation for tabular data")
        return self.make_folds()

    def folds(self) -> list[Fold]:
        """Walk-forward folds, each with scalers fitted on its own training rows only."""
        return self._folds

    def to_original_units(self, predictions: np.ndarray, split: str) -> np.ndarray:
        """Turns model outputs for `split` into the data's own units (prices for stocks)."""
        values = np.asarray(predictions, dtype="float64")
        if self.task == "classification":
            if self.n_classes == 2:
                return (values.reshape(-1) >= 0.5).astype("int64")
            return values.argmax(axis=-1)
        values = self.target_scaler.inverse_transform(values.reshape(-1, 1)).reshape(-1)
        if self.target == "return":
            return self.splits[split].anchor * (1.0 + values)
        return values

    def evaluate(self, model: Any, split: str = "test") -> dict[str, float]:
        """Scores `model` on `split` in the data's own units (e.g. MSE in dollars squared)."""
        predictions = model.predict(self.splits[split].dataset, verbose=0)
        return score(self.task, self.splits[split].actual,
                     self.to_original_units(predictions, split))

    def summary(self) -> str:
        """A readable summary: samples per split, features, input shape, baselines."""
        lines = [f"data: {self.description} ({self.task}, target {self.target})"]
        for name, split in self.splits.items():
            span = ""
            if isinstance(split.index, pd.DatetimeIndex) and len(split):
                span = f"  {split.index[0].date()} .. {split.index[-1].date()}"
            lines.append(f"  {name:<10} {len(split):>6} samples{span}")
        lines.append(f"input shape: {self.input_shape}")
        lines.append(f"features ({len(self.feature_names)}): {', '.join(self.feature_names)}")
        for name, scores in self.baselines.items():
            text = ", ".join(f"{metric} {value:.4f}" for metric, value in scores.items())
            lines.append(f"baseline ({self.baseline}) on {name}: {text}")
        return "\n".join(lines)


@dataclasses.dataclass
class Fold:
    """One walk-forward fold: its own training and validation splits and scalers."""

    index: int
    train: Split
    validation: Split
    preprocessor: sklearn.compose.ColumnTransformer
    target_scaler: sklearn.preprocessing.StandardScaler

    def fit_kwargs(self) -> dict[str, Any]:
        """The keyword arguments for `model.fit()` on this fold."""
        return {"x": self.train.dataset, "validation_data": self.validation.dataset}


def score(task: str, actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Scores predictions in the data's own units.

    Returns:
        `mse`, `mae`, `rmse` for regression; `accuracy` for classification.
    """
    actual = np.asarray(actual, dtype="float64").reshape(-1)
    predicted = np.asarray(predicted, dtype="float64").reshape(-1)
    if task == "classification":
        return {"accuracy": float(np.mean(actual == predicted))}
    errors = predicted - actual
    mse = float(np.mean(errors**2))
    return {"mse": mse, "mae": float(np.mean(np.abs(errors))), "rmse": math.sqrt(mse)}


def make_stock_features(
    prices: pd.DataFrame,
    *,
    rolling_window: int = 5,
    moving_average_window: int = 30,
    calendar: bool = False,
    log_returns: bool = False,
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Builds the reference article's features; row t uses only rows <= t.

    Features: the price columns and volume, rolling means of open/high/low/close over
    `rolling_window` days, the `moving_average_window`-day moving average of close, and
    optionally the day's log return and one-hot year/month/day (as the article does).
    Rows that the rolling windows cannot fill yet are dropped.

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
    categorical = []
    if calendar:
        dates = prices.index
        for name, values in (("year", dates.year), ("month", dates.month), ("day", dates.day)):
            features[name] = np.asarray(values).astype(str)
            categorical.append(name)
    features = features.dropna()
    numeric = [column for column in features.columns if column not in categorical]
    return features, numeric, categorical


def _make_preprocessor(numeric: list[str], categorical: list[str],
                       ) -> sklearn.compose.ColumnTransformer:
    transformers = [("num", sklearn.preprocessing.StandardScaler(), numeric)]
    if categorical:
        transformers.append(("cat", sklearn.preprocessing.OneHotEncoder(
            handle_unknown="ignore", sparse_output=False), categorical))
    return sklearn.compose.ColumnTransformer(transformers, sparse_threshold=0.0,
                                             verbose_feature_names_out=False)


def _window_dataset(rows: np.ndarray, targets: np.ndarray, lookback: int, batch_size: int,
                    ) -> Any:
    import keras
    import tensorflow as tf

    dataset = keras.utils.timeseries_dataset_from_array(
        rows, targets, sequence_length=lookback, batch_size=batch_size, shuffle=False)
    return dataset.cache().prefetch(tf.data.AUTOTUNE)


def _row_dataset(rows: np.ndarray, targets: np.ndarray, batch_size: int,
                 shuffle_seed: int | None = None) -> Any:
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((rows, targets)).cache()
    if shuffle_seed is not None:
        # A table may come sorted by its target or class; training batches should not.
        dataset = dataset.shuffle(len(rows), seed=shuffle_seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


class StockPipeline:
    """Turns a daily price series into leakage-safe windows for an LSTM.

    The target for day t is the next day's close (or return); day t's window holds rows
    t-lookback+1..t. Splits are chronological: train, validation, then the last
    `test_size` days held out. Each split's windows and targets lie inside its own rows,
    so the last training target precedes the first validation input. Features and
    targets are scaled with statistics of the training rows only.

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
        target: `return` (next day's return, turned back into a price for every score) or
            `close` (next day's close, the reference article's target, which must
            extrapolate when test prices leave the training range).
        rolling_window: Days in the rolling means of open/high/low/close.
        moving_average_window: Days in the moving average of close.
        calendar: Add one-hot year, month and day features.
        log_returns: Add the day's log return as a feature.
        batch_size: Batch size of the datasets; a hypermodel may re-batch them.
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
        self.lookback = _positive_int("lookback", lookback)
        self.test_size = _positive_int("test_size", test_size)
        self.validation_size = validation_size
        if target not in TARGETS:
            raise ConfigError(f"unknown target {target!r}; use one of {', '.join(TARGETS)}")
        self.target = target
        self.rolling_window = _positive_int("rolling_window", rolling_window)
        self.moving_average_window = _positive_int("moving_average_window",
                                                   moving_average_window)
        self.calendar = calendar
        self.log_returns = log_returns
        self.batch_size = _positive_int("batch_size", batch_size)
        self.walk_forward = walk_forward or WalkForward()
        self.fill = fill
        self.date_column = date_column
        self.target_column = target_column

    def prepare(self, prices: pd.DataFrame | None = None) -> PreparedData:
        """Loads (unless `prices` is given), checks, featurises, splits and scales.

        Args:
            prices: A frame as `pipelines.sources.load_stock_frame` returns, to skip
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
            log_returns=self.log_returns)
        close = features["close"].to_numpy(dtype="float64")
        rows = len(features)
        test_start, validation_start = self._split_points(name, len(prices), rows)
        # Row t's target is day t+1's value, so the last row has none and is never a sample.
        next_close = np.append(close[1:], np.nan)
        targets = next_close if self.target == "close" else next_close / close - 1.0
        builder = _WindowBuilder(features, numeric, categorical, targets, next_close, close,
                                 self.lookback, self.batch_size)
        fitted = builder.fit(0, validation_start)
        splits = {
            "train": fitted.split("train", 0, validation_start),
            "validation": fitted.split("validation", validation_start, test_start),
            "test": fitted.split("test", test_start, rows),
        }
        baselines = {name: score("regression", splits[name].actual, splits[name].anchor)
                     for name in ("validation", "test")}

        def make_folds() -> list[Fold]:
            return self._folds(builder, test_start)

        return PreparedData(
            task="regression", input_shape=(self.lookback, len(fitted.feature_names)),
            feature_names=fitted.feature_names, splits=splits, baselines=baselines,
            preprocessor=fitted.preprocessor, target_scaler=fitted.target_scaler,
            n_classes=None, target=self.target, description=f"{name} daily prices",
            baseline="persistence: tomorrow's close = today's close",
            make_folds=make_folds)

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
        windows = self.walk_forward
        for field in ("train_window", "validation_window", "step"):
            _positive_int(f"walk_forward.{field}", getattr(windows, field))
        minimum = self.lookback + 1
        if windows.validation_window < minimum or windows.train_window < minimum:
            raise ConfigError(f"walk-forward windows must each exceed the lookback "
                              f"({self.lookback}); raise --train-window/--validation-window")
        folds = []
        start = 0
        while start + windows.train_window + windows.validation_window <= test_start:
            middle = start + windows.train_window
            fitted = builder.fit(start, middle)
            folds.append(Fold(
                index=len(folds), train=fitted.split("train", start, middle),
                validation=fitted.split("validation", middle,
                                        middle + windows.validation_window),
                preprocessor=fitted.preprocessor, target_scaler=fitted.target_scaler))
            start += windows.step
        if not folds:
            raise ConfigError(
                f"walk-forward windows ({windows.train_window} + {windows.validation_window} "
                f"days) do not fit in the {test_start} days before the test split; lower "
                f"--train-window or --validation-window")
        return folds


class _WindowBuilder:
    """Scales rows with statistics of a chosen training range and cuts split windows."""

    def __init__(self, features: pd.DataFrame, numeric: list[str], categorical: list[str],
                 targets: np.ndarray, next_close: np.ndarray, close: np.ndarray,
                 lookback: int, batch_size: int) -> None:
        self.features = features
        self.numeric = numeric
        self.categorical = categorical
        self.targets = targets
        self.next_close = next_close
        self.close = close
        self.lookback = lookback
        self.batch_size = batch_size

    def fit(self, start: int, stop: int) -> _FittedWindows:
        """Fits the feature and target scalers on rows [start, stop) only."""
        preprocessor = _make_preprocessor(self.numeric, self.categorical)
        preprocessor.fit(self.features.iloc[start:stop])
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
            make_dataset=functools.partial(_window_dataset, rows, targets, lookback,
                                           builder.batch_size))


class TabularPipeline:
    """Splits and scales a table for a dense network.

    Rows are shuffled with `seed` and split into train, validation and test (stratified
    for classification). Numbers are standardised and categories one-hot encoded with
    statistics of the training rows only.

    ```python
    prepared = TabularPipeline("breast_cancer").prepare()
    ```

    Args:
        source: `diabetes`, `breast_cancer` or a CSV path.
        target_column: The target column of a CSV file.
        task: `regression`, `classification`, or `auto` (classification when the target
            is text, boolean, or whole numbers with at most 20 distinct values).
        test_size: Fraction of rows held out for the final test.
        validation_size: Fraction of the remaining rows used for validation.
        seed: Seed of the shuffled split.
        batch_size: Batch size of the datasets.
        fill: Rows of a CSV with missing values: `error` or `drop`.
    """

    def __init__(self, source: str | pathlib.Path = "diabetes", *,
                 target_column: str | None = None, task: str = "auto",
                 test_size: float = 0.2, validation_size: float = 0.2, seed: int = 42,
                 batch_size: int = 32, fill: str = "error") -> None:
        if task not in TASKS:
            raise ConfigError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
        for field, value in (("test_size", test_size), ("validation_size", validation_size)):
            if not 0 < value < 1:
                raise ConfigError(f"tabular {field} must be a fraction in (0, 1), got {value!r}")
        self.source = source
        self.target_column = target_column
        self.task = task
        self.test_size = test_size
        self.validation_size = validation_size
        self.seed = seed
        self.batch_size = _positive_int("batch_size", batch_size)
        self.fill = fill

    def prepare(self) -> PreparedData:
        """Loads, splits and scales the table.

        Raises:
            DataError: If the data cannot be used.
        """
        table, target = sources.load_table(self.source, self.target_column, fill=self.fill)
        name = str(self.source) if str(self.source) in sources.BUNDLED_TABLES else (
            pathlib.Path(self.source).name)
        task = self.task if self.task != "auto" else _infer_task(target)
        labels: np.ndarray
        classes = None
        if task == "classification":
            encoder = sklearn.preprocessing.LabelEncoder()
            labels = encoder.fit_transform(target.astype(str))
            classes = len(encoder.classes_)
            if classes < 2:
                raise DataError(f"{name}: target {target.name!r} has one class; a classifier "
                                f"needs at least two")
        else:
            labels = pd.to_numeric(target, errors="coerce").to_numpy(dtype="float64")
            if np.isnan(labels).any():
                raise DataError(f"{name}: target {target.name!r} is not numeric; pass --task "
                                f"classification for a class label")
        positions = np.arange(len(table))
        stratify = labels if task == "classification" else None
        try:
            rest, test = sklearn.model_selection.train_test_split(
                positions, test_size=self.test_size, random_state=self.seed, stratify=stratify)
            train, validation = sklearn.model_selection.train_test_split(
                rest, test_size=self.validation_size, random_state=self.seed,
                stratify=None if stratify is None else stratify[rest])
        except ValueError as error:
            raise DataError(f"{name}: cannot split {len(table)} rows ({error}); use more rows "
                            f"or a smaller --test-size") from None
        categorical = [column for column in table.columns if table[column].dtype.kind not in "fiub"]
        numeric = [column for column in table.columns if column not in categorical]
        preprocessor = _make_preprocessor(numeric, categorical)
        preprocessor.fit(table.iloc[train])
        rows = preprocessor.transform(table).astype("float32")
        target_scaler = None
        if task == "classification":
            model_targets = (labels.reshape(-1, 1).astype("float32") if classes == 2
                             else labels.astype("int32"))
        else:
            target_scaler = sklearn.preprocessing.StandardScaler().fit(
                labels[train].reshape(-1, 1))
            model_targets = target_scaler.transform(labels.reshape(-1, 1)).astype("float32")
        splits = {}
        for split_name, positions_in_split in (("train", train), ("validation", validation),
                                               ("test", test)):
            ordered = np.sort(positions_in_split)
            splits[split_name] = Split(
                name=split_name, targets=model_targets[ordered], actual=labels[ordered],
                index=table.index[ordered], anchor=None,
                make_dataset=functools.partial(
                    _row_dataset, rows[ordered], model_targets[ordered], self.batch_size,
                    self.seed if split_name == "train" else None))
        if task == "classification":
            majority = np.bincount(labels[train]).argmax()
            predict = lambda split: np.full(len(splits[split]), majority)  # noqa: E731
        else:
            mean = labels[train].mean()
            predict = lambda split: np.full(len(splits[split]), mean)  # noqa: E731
        baselines = {split: score(task, splits[split].actual, predict(split))
                     for split in ("validation", "test")}
        return PreparedData(
            task=task, input_shape=(rows.shape[1],),
            feature_names=[str(name) for name in preprocessor.get_feature_names_out()],
            splits=splits, baselines=baselines, preprocessor=preprocessor,
            target_scaler=target_scaler, n_classes=classes, target=str(target.name),
            description=f"{name} table",
            baseline="majority class" if task == "classification" else "training mean")


def _infer_task(target: pd.Series) -> str:
    if target.dtype.kind in "fc":
        whole = np.all(np.mod(target.to_numpy(dtype="float64"), 1) == 0)
        return "classification" if whole and target.nunique() <= 20 else "regression"
    if target.dtype.kind in "iu":
        return "classification" if target.nunique() <= 20 else "regression"
    return "classification"


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")
    return value
