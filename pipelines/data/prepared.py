"""What every data pipeline returns: splits, scalers, baselines and folds, as one object.

`StockPipeline` (daily prices, windows for an LSTM) and `TabularPipeline` (rows for a
dense network) both return a `PreparedData` from `prepare()`. Every tuner receives the
same training and validation splits, at each trial's tuned batch size
(`hypermodels.fit_data`); the held-out test split never reaches it.

```python
prepared = pipelines.data.StockPipeline("AAPL", lookback=30).prepare()
tuner.search(**hypermodels.fit_data(hypermodel, prepared), epochs=10)
print(prepared.evaluate(best_model, "test"), prepared.baselines["test"])
```
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.data import volatility
from pipelines.errors import ConfigError

if TYPE_CHECKING:
    import sklearn.compose
    import sklearn.preprocessing

# The batch size of a split's `dataset` when its pipeline names none.
DEFAULT_BATCH_SIZE = 32

# scikit-learn (with the SciPy it loads) takes about a second to import, so it is
# imported where a fit happens: a file that fails its checks is reported before that.


@dataclasses.dataclass
class Split:
    """One split's samples: how to build its dataset, and its targets in both units.

    The split owns its batching: `batched(batch_size)` builds the split's `tf.data.Dataset`
    at that batch size once, cached and prefetched, and hands out the same object each
    time it is asked again, so a search whose trials tune the batch size reads each size
    from memory after its first epoch. `dataset` is the split at the pipeline's own
    `batch_size`.

    ```python
    split = prepared.splits["train"]
    assert split.batched(64) is split.batched(64)
    ```

    Attributes:
        name: `train`, `validation` or `test`.
        targets: Scaled targets as the model sees them.
        actual: Targets in the data's own units (prices, or the tabular target).
        index: The date (stocks: the day being forecast) or row label of each sample.
        anchor: For stocks, the last known close before each forecast day (the naive
            persistence forecast, and the base that a forecast return applies to).
        make_dataset: Builds the split's cached, prefetched dataset at the batch size it
            is given.
        batch_size: The batch size of `dataset`: the pipeline's `batch_size`.
    """

    name: str
    targets: np.ndarray
    actual: np.ndarray
    index: pd.Index
    anchor: np.ndarray | None
    make_dataset: Callable[[int], Any] = dataclasses.field(repr=False)
    batch_size: int = DEFAULT_BATCH_SIZE
    _datasets: dict[int, Any] = dataclasses.field(default_factory=dict, init=False,
                                                  repr=False, compare=False)

    @property
    def dataset(self) -> Any:
        """The split at the pipeline's batch size, built once (see `batched`)."""
        return self.batched(self.batch_size)

    def batched(self, batch_size: int | None = None) -> Any:
        """The split as a `tf.data.Dataset` of `batch_size` samples a batch, built once per size.

        Each size is built from the split's arrays, so its length, ceil(samples /
        batch_size) batches, is known without reading it.

        Args:
            batch_size: Samples per batch; by default the pipeline's `batch_size`.

        Returns:
            The cached, prefetched dataset; the same object every time for one size.

        Raises:
            ConfigError: If `batch_size` is not a whole number >= 1.
        """
        batch_size = positive_int("batch_size",
                                  self.batch_size if batch_size is None else batch_size)
        if batch_size not in self._datasets:
            self._datasets[batch_size] = self.make_dataset(batch_size)
        return self._datasets[batch_size]

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
        baseline: The naive forecast's name, for reports.
        units: What the target is measured in, for reports: `price` for stocks, `target`
            (its own units) for a table.
        held_out: What a held-out sample is called in reports: `days` or `rows`.
        make_folds: Builds the walk-forward folds (stocks only) when first asked for.
        notices: One-line notes for the user: the layout found, columns dropped.
        make_refit: Builds the data of `refit_data()`.
        references: Series: the reference forecasts by name (stocks: persistence and a
            moving average; any series: persistence, seasonal naive and a statistical
            model), as `pipelines.data.references.ReferenceForecast`, scored beside the model.
        best_reference: The reference forecast that `baseline` and `baselines` stand for:
            persistence for prices, the best on the validation rows for any series.
        horizon: Steps forecast from each window (series); targets and forecasts are
            `(samples, horizon)` when it is above 1.
        delta: The model forecasts the change from each sample's `anchor` (any series).
        frequency: A series' `pipelines.data.frequency.Frequency`, else None.
        scale_free: A series' scale-free scores of `(actual, predicted)` (MASE, sMAPE).
        notices: One-line notes for the user about what was detected or changed, such as
            the CSV layout and the columns dropped for being constant over the training
            rows; `summary()` and `ktlab tune` print each on its own line.
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
    units: str = "target"
    held_out: str = "rows"
    make_folds: Callable[[], list[Fold]] | None = dataclasses.field(default=None, repr=False)
    notices: list[str] = dataclasses.field(default_factory=list)
    make_refit: Callable[[], PreparedData] | None = dataclasses.field(default=None, repr=False)
    references: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    best_reference: str = "persistence"
    horizon: int = 1
    delta: bool = False
    frequency: Any = None
    scale_free: Callable[[np.ndarray, np.ndarray], dict[str, float]] | None = dataclasses.field(
        default=None, repr=False)

    def fit_kwargs(self, batch_size: int | None = None) -> dict[str, Any]:
        """The keyword arguments for `tuner.search()`: training and validation data only.

        Args:
            batch_size: Samples per batch; by default the pipeline's `batch_size`. A
                hypermodel that tunes its batch size asks for its trial's size here
                (`hypermodels.fit_data` hands it this method).

        Returns:
            `x`, and `validation_data` unless the data has no validation split (as
            `refit_data()` has not), each a `tf.data.Dataset` built once per batch size.
        """
        return _fit_kwargs(self.splits["train"], self.splits.get("validation"), batch_size)

    @functools.cached_property
    def _folds(self) -> list[Fold]:
        if self.make_folds is None:
            raise ConfigError("walk-forward validation needs time-ordered data; use holdout "
                              "validation for tabular data")
        return self.make_folds()

    def folds(self) -> list[Fold]:
        """Walk-forward folds, each with scalers fitted on its own training rows only."""
        return self._folds

    def refit_data(self) -> PreparedData:
        """The data to retrain the chosen configuration on before the held-out test.

        Returns:
            A `PreparedData` whose `train` split holds the training and validation rows
            together, with the feature and target scalers fitted on those rows only, and
            whose `test` split holds the same held-out rows as this one's. It has no
            `validation` split.
        """
        if self.make_refit is None:
            raise ValueError("this data was prepared without a refit split; prepare it with "
                             "StockPipeline or TabularPipeline")
        return self.make_refit()

    def to_original_units(self, predictions: np.ndarray, split: str) -> np.ndarray:
        """Turns model outputs for `split` into the data's own units (prices for stocks, the
        absolute log return for the volatility target)."""
        values = np.asarray(predictions, dtype="float64")
        if self.task == "classification":
            if self.n_classes == 2:
                return (values.reshape(-1) >= 0.5).astype("int64")
            return values.argmax(axis=-1)
        if self.delta:
            values = self.target_scaler.inverse_transform(values.reshape(-1, self.horizon))
            levels = values + self.splits[split].anchor[:, None]
            return levels if self.horizon > 1 else levels.reshape(-1)
        values = self.target_scaler.inverse_transform(values.reshape(-1, 1)).reshape(-1)
        if self.target == "return":
            return self.splits[split].anchor * (1.0 + values)
        if self.target == "volatility":
            return volatility.from_log_space(values)
        return values

    def evaluate(self, model: Any, split: str = "test") -> dict[str, float]:
        """Scores `model` on `split` in the data's own units (e.g. MSE in dollars squared)."""
        predictions = model.predict(self.splits[split].dataset, verbose=0)
        return self.score(split, self.to_original_units(predictions, split))

    def score(self, split: str, predicted: np.ndarray) -> dict[str, float]:
        """Scores forecasts of `split` in the data's own units, averaged over the horizon's
        steps, with a series' scale-free scores (MASE, sMAPE) beside them."""
        actual = self.splits[split].actual
        scores = score(self.task, actual, predicted)
        if self.scale_free is not None:
            scores.update(self.scale_free(actual, predicted))
        return scores

    def score_by_step(self, split: str, predicted: np.ndarray) -> list[dict[str, float]]:
        """The scores of each step of the horizon on `split`: step 1 first."""
        actual = np.asarray(self.splits[split].actual).reshape(len(predicted), -1)
        predicted = np.asarray(predicted).reshape(len(predicted), -1)
        return [score(self.task, actual[:, step], predicted[:, step])
                for step in range(actual.shape[1])]

    def summary(self) -> str:
        """A readable summary: notices, samples per split, features, input shape, baselines."""
        lines = [f"data: {self.description} ({self.task}, target {self.target})",
                 *self.notices]
        for name, split in self.splits.items():
            span = ""
            if isinstance(split.index, pd.DatetimeIndex) and len(split):
                span = f"  {split.index[0].date()} .. {split.index[-1].date()}"
            lines.append(f"  {name:<10} {len(split):>6} samples{span}")
        lines.append(f"input shape: {self.input_shape}")
        lines.append(f"features ({len(self.feature_names)}): {', '.join(self.feature_names)}")
        baselines = [(self.baseline, name, scores) for name, scores in self.baselines.items()]
        # The other reference forecasts (prices: the moving average), on the same rows.
        baselines += [(reference.description, name, reference.scores(self.splits[name]))
                      for key, reference in self.references.items()
                      if key != self.best_reference
                      for name in self.baselines]
        for description, name, scores in baselines:
            # Four significant digits: a volatility's MSE is of the order of 1e-4.
            text = ", ".join(f"{metric} {value:#.4g}" for metric, value in scores.items())
            lines.append(f"baseline ({description}) on {name}: {text}")
        return "\n".join(lines)


@dataclasses.dataclass
class Fold:
    """One walk-forward fold: its own training and validation splits and scalers."""

    index: int
    train: Split
    validation: Split
    preprocessor: sklearn.compose.ColumnTransformer
    target_scaler: sklearn.preprocessing.StandardScaler

    def fit_kwargs(self, batch_size: int | None = None) -> dict[str, Any]:
        """The keyword arguments for `model.fit()` on this fold, as `PreparedData.fit_kwargs`."""
        return _fit_kwargs(self.train, self.validation, batch_size)


def _fit_kwargs(train: Split, validation: Split | None, batch_size: int | None,
                ) -> dict[str, Any]:
    kwargs = {"x": train.batched(batch_size)}
    if validation is not None:
        kwargs["validation_data"] = validation.batched(batch_size)
    return kwargs


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


def constant_columns(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    """The `columns` of `frame` that hold a single value (the caller passes training rows).

    A column that never varies while the model trains carries no information, and its
    standardised value is 0 there but need not be elsewhere, so it is better dropped.
    """
    return [column for column in columns if frame[column].nunique(dropna=False) <= 1]


def dropped_notice(columns: list[str]) -> list[str]:
    """The notice for `columns` dropped as constant: one line, or none when none were."""
    if not columns:
        return []
    return [f"dropped columns constant over the training rows: {', '.join(columns)}"]


def make_preprocessor(numeric: list[str], categorical: list[str],
                      categories: list[list[Any]] | None = None,
                      ) -> sklearn.compose.ColumnTransformer:
    """Standard scaling of `numeric`, one-hot encoding of `categorical` columns.

    `categories` fixes each categorical column's values (else those of the rows it is
    fitted on), so that preprocessors fitted on different rows give the same columns;
    a value outside them encodes as all zeros.
    """
    import sklearn.compose
    import sklearn.preprocessing

    transformers = [("num", sklearn.preprocessing.StandardScaler(), numeric)]
    if categorical:
        transformers.append(("cat", sklearn.preprocessing.OneHotEncoder(
            categories=categories or "auto", handle_unknown="ignore", sparse_output=False),
            categorical))
    return sklearn.compose.ColumnTransformer(transformers, sparse_threshold=0.0,
                                             verbose_feature_names_out=False)


def positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")
    return value

