"""A table to scaled rows for a dense network: a seeded, stratified three-way split."""

from __future__ import annotations

import dataclasses
import functools
import pathlib
from typing import Any

import numpy as np
import pandas as pd

from pipelines.data import sources
from pipelines.data.prepared import (
    PreparedData,
    Split,
    constant_columns,
    dropped_notice,
    make_preprocessor,
    positive_int,
    score,
)
from pipelines.errors import ConfigError, DataError

TASKS = ("auto", "regression", "classification")

# scikit-learn (with the SciPy it loads) takes about a second to import, so it is
# imported where a fit happens: a file that fails its checks is reported before that.


def _row_dataset(rows: np.ndarray, targets: np.ndarray, shuffle_seed: int | None,
                 batch_size: int) -> Any:
    """Rows in batches of `batch_size`; the training rows are shuffled every epoch."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((rows, targets)).cache()
    if shuffle_seed is not None:
        # A table may come sorted by its target or class; training batches should not.
        dataset = dataset.shuffle(len(rows), seed=shuffle_seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


class TabularPipeline:
    """Splits and scales a table for a dense network.

    Rows are shuffled with `seed` and split into train, validation and test (stratified
    for classification). Numbers are standardised and categories one-hot encoded with
    statistics of the training rows only; numeric columns that are constant over the
    training rows are dropped.

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
        batch_size: Batch size of each split's `dataset` (see `Split.batched`).
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
        self.batch_size = positive_int("batch_size", batch_size)
        self.fill = fill

    def prepare(self) -> PreparedData:
        """Loads, splits and scales the table.

        Raises:
            DataError: If the data cannot be used.
        """
        table, target = sources.load_table(self.source, self.target_column, fill=self.fill)
        import sklearn.model_selection
        import sklearn.preprocessing

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
        dropped = constant_columns(table.iloc[train], numeric)
        numeric = [column for column in numeric if column not in dropped]
        if task == "regression" and np.ptp(labels[train]) == 0:
            raise DataError(f"{name}: target {target.name!r} is constant over the {len(train)} "
                            f"training rows; a model needs a target that varies")
        if not numeric and not categorical:
            raise DataError(f"{name}: every feature column is constant over the {len(train)} "
                            f"training rows ({', '.join(map(str, dropped))}); add columns "
                            f"that vary")
        split_rows = {"train": train, "validation": validation, "test": test}
        preprocessor, target_scaler, splits = self._scaled_splits(
            table, numeric, categorical, labels, task, classes, split_rows, fit_on=("train",))
        if task == "classification":
            majority = np.bincount(labels[train]).argmax()
            predict = lambda split: np.full(len(splits[split]), majority)  # noqa: E731
        else:
            mean = labels[train].mean()
            predict = lambda split: np.full(len(splits[split]), mean)  # noqa: E731
        baselines = {split: score(task, splits[split].actual, predict(split))
                     for split in ("validation", "test")}
        def make_refit() -> PreparedData:
            # Training and validation rows together, scaled with their own statistics.
            refit_positions = {"train": np.concatenate([train, validation]), "test": test}
            refit_preprocessor, refit_scaler, refit_splits = self._scaled_splits(
                table, numeric, categorical, labels, task, classes, refit_positions,
                fit_on=("train",))
            return dataclasses.replace(prepared, splits=refit_splits,
                                       preprocessor=refit_preprocessor,
                                       target_scaler=refit_scaler, make_refit=None)

        prepared = PreparedData(
            task=task, input_shape=(len(preprocessor.get_feature_names_out()),),
            feature_names=[str(name) for name in preprocessor.get_feature_names_out()],
            splits=splits, baselines=baselines, preprocessor=preprocessor,
            target_scaler=target_scaler, n_classes=classes, target=str(target.name),
            description=f"{name} table",
            baseline="majority class" if task == "classification" else "training mean",
            notices=dropped_notice([str(column) for column in dropped]), make_refit=make_refit)
        return prepared

    def _scaled_splits(self, table: pd.DataFrame, numeric: list[str], categorical: list[str],
                       labels: np.ndarray, task: str, classes: int | None,
                       positions: dict[str, np.ndarray], fit_on: tuple[str, ...],
                       ) -> tuple[Any, Any, dict[str, Split]]:
        """Fits the scalers on the `fit_on` splits' rows only and builds every split."""
        import sklearn.preprocessing

        fitted_rows = np.concatenate([positions[name] for name in fit_on])
        preprocessor = make_preprocessor(numeric, categorical)
        preprocessor.fit(table.iloc[fitted_rows])
        rows = preprocessor.transform(table).astype("float32")
        target_scaler = None
        if task == "classification":
            model_targets = (labels.reshape(-1, 1).astype("float32") if classes == 2
                             else labels.astype("int32"))
        else:
            target_scaler = sklearn.preprocessing.StandardScaler().fit(
                labels[fitted_rows].reshape(-1, 1))
            model_targets = target_scaler.transform(labels.reshape(-1, 1)).astype("float32")
        splits = {}
        for split_name, positions_in_split in positions.items():
            ordered = np.sort(positions_in_split)
            splits[split_name] = Split(
                name=split_name, targets=model_targets[ordered], actual=labels[ordered],
                index=table.index[ordered], anchor=None,
                make_dataset=functools.partial(
                    _row_dataset, rows[ordered], model_targets[ordered],
                    self.seed if split_name == "train" else None),
                batch_size=self.batch_size)
        return preprocessor, target_scaler, splits


def _infer_task(target: pd.Series) -> str:
    if target.dtype.kind in "fc":
        whole = np.all(np.mod(target.to_numpy(dtype="float64"), 1) == 0)
        return "classification" if whole and target.nunique() <= 20 else "regression"
    if target.dtype.kind in "iu":
        return "classification" if target.nunique() <= 20 else "regression"
    return "classification"

