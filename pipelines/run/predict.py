"""`predict_run(run_dir)`: forecasts with a finished run's best model (`ktlab predict`).

A run directory holds the best model, the preprocessor it was trained with and the
resolved configuration, so forecasting needs nothing else: the run's own data (its test
rows, as `predictions.csv` has them) or any file in a layout that `ktlab data` reads; a
run tuned on a Yahoo file forecasts from an Alpha Vantage one. A price series gets one
extra row, the forecast of the business day after its last date; any other series, the
`horizon` steps after its last row, dated in its own frequency (`predict_series`).

```python
frame = predict_run("runs/lstm-hyperband-AAPL-seed42")                 # its test days
frame = predict_run("runs/lstm-hyperband-AAPL-seed42", data="AV.csv")  # a new file
```

Every check of the run directory and the data happens before TensorFlow is imported, so
bad input is reported in well under a second.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

import joblib
import numpy as np
import pandas as pd

from hypermodels import registry as model_registry
from pipelines import config
from pipelines.data import forecast, sources
from pipelines.data.prepared import PreparedData, Split
from pipelines.errors import ConfigError, DataError
from pipelines.run import build, predict_series, quiet, run_dir

MODEL_FILE = "best_model.keras"
PREPROCESSOR_FILE = "preprocessor.joblib"
SAVED_KEYS = ("preprocessor", "target_scaler", "feature_names", "input_shape", "target", "task")
SERIES_COLUMNS = ["date", "forecast", "actual", "last_close"]


def predict_run(run_directory: str | pathlib.Path, data: str | None = None,
                output: str | pathlib.Path | None = None) -> pd.DataFrame:
    """Forecasts with a finished run's best model and writes the forecasts as a CSV.

    A run whose saved input shape is `(lookback, features)` forecasts a price series from
    windows of `lookback` days; one whose input shape is `(features,)` forecasts table
    rows. The shape is read from the run's own files, so a user's model class need not be
    importable.

    Args:
        run_directory: A run directory that `ktlab tune` finished.
        data: A CSV file in any layout that `ktlab data` reads, or a bundled ticker or
            table. None forecasts the run's own test rows, from the data it was tuned on.
        output: Where to write the CSV. Defaults to `RUN_DIR/forecast.csv` for the run's
            own data and `RUN_DIR/forecast-<file stem>.csv` for a file.

    Returns:
        For a series: `date` (the ISO date of the day forecast), `forecast` (in price
        units), `actual` (the close that day; NaN for the day after the last date) and
        `last_close` (the persistence forecast); one row per window of `lookback` days,
        the last of them forecasting the business day after the last date. For a table:
        `row` (the row's 0-based index among the file's data rows), `forecast` (the value
        in the target's units, or the class label) and `actual` when the file has the
        target column.

    Raises:
        ConfigError: If the run directory is missing or unfinished, or `output` cannot be
            written.
        DataError: If the data cannot be read, lacks a feature the model was trained on,
            or has too few rows for one window.
    """
    run = _read_run(pathlib.Path(run_directory))
    path = forecast_path(run.directory, data, output)
    if not path.parent.is_dir():
        raise ConfigError(f"cannot write {path}: folder {path.parent} does not exist; create "
                          f"it or choose another --output")
    source = data if data is not None else _own_source(run)
    if run.saved.get("delta"):
        # Any series (not prices): the data is read and checked before the model is loaded.
        frame = predict_series.series_forecast(
            run.data, run.saved, source, own=data is None,
            predict=lambda windows: _load_model(run.directory).predict(windows, verbose=0))
        _write(frame, path)
        return frame
    if run.is_series:
        inputs, frame, anchor = _series_inputs(run, source, own=data is None)
    else:
        inputs, frame, anchor = _table_inputs(run, source, own=data is None)
    model = _load_model(run.directory)
    outputs = np.asarray(model.predict(inputs, verbose=0), dtype="float64")
    values = _to_original_units(outputs, run.saved, anchor)
    if run.saved["task"] == "classification":
        labels = _class_labels(run)
        values = values if labels is None else labels[values]
    frame.insert(1, "forecast", values)
    _write(frame, path)
    return frame


def _write(frame: pd.DataFrame, path: pathlib.Path) -> None:
    try:
        frame.to_csv(path, index=False)
    except OSError as error:
        raise ConfigError(f"cannot write {path} ({error.strerror}); choose another "
                          f"--output") from None


def forecast_path(run_directory: str | pathlib.Path, data: str | None = None,
                  output: str | pathlib.Path | None = None) -> pathlib.Path:
    """Where `predict_run` writes its CSV: `output`, or its default in the run directory.

    Returns:
        `output` when given; else `RUN_DIR/forecast.csv` for the run's own data, or
        `RUN_DIR/forecast-<stem>.csv` for `data` (`forecast-AV.csv` for `AV.csv`).
    """
    if output is not None:
        return pathlib.Path(output)
    if data is None:
        return pathlib.Path(run_directory) / "forecast.csv"
    stem = pathlib.Path(str(data)).name.split(".")[0]
    return pathlib.Path(run_directory) / f"forecast-{stem}.csv"


@dataclasses.dataclass
class _Run:
    """What a finished run directory holds, besides its model.

    Attributes:
        directory: The run directory.
        config: Its `config.json`, as plain data.
        data: Its `data` settings, with this version's defaults for any it lacks.
        saved: Its `preprocessor.joblib`: the fitted preprocessor, target scaler, feature
            names, input shape, target and task of the saved model.
    """

    directory: pathlib.Path
    config: dict[str, Any]
    data: dict[str, Any]
    saved: dict[str, Any]

    @property
    def is_series(self) -> bool:
        """Whether the model reads windows of a series: its input is (lookback, features).

        The saved input shape is the one the saved model takes; a model's registry entry
        would say the same, but a user's class would have to be imported to read it.
        """
        return len(self.saved["input_shape"]) == 2

    @property
    def model_name(self) -> str:
        return (self.config.get("model") or {}).get("name", "lstm")


def _read_run(directory: pathlib.Path) -> _Run:
    """Reads and checks a run directory's `config.json` and `preprocessor.joblib`.

    Raises:
        ConfigError: If the directory, either file or the model is missing or unreadable.
    """
    if not directory.is_dir():
        raise ConfigError(f"run directory {directory} does not exist; pass a run directory "
                          f"that ktlab tune wrote")
    saved_config = run_dir.read_saved_config(directory)
    for name in (MODEL_FILE, PREPROCESSOR_FILE):
        if not (directory / name).is_file():
            raise ConfigError(f"{directory} has no {name}: its search has not finished; finish "
                              f"it with ktlab tune --resume {directory}")
    try:
        saved = joblib.load(directory / PREPROCESSOR_FILE)
    except Exception as error:  # noqa: BLE001 (unpickling raises almost anything)
        raise ConfigError(f"cannot read {directory / PREPROCESSOR_FILE} ({type(error).__name__})"
                          f"; rerun the search with ktlab tune --overwrite") from None
    if not isinstance(saved, dict) or any(key not in saved for key in SAVED_KEYS):
        raise ConfigError(f"{directory / PREPROCESSOR_FILE} lacks the keys "
                          f"{', '.join(SAVED_KEYS)}; rerun the search with ktlab tune "
                          f"--overwrite")
    data = {**config.DataConfig().model_dump(), **(saved_config.get("data") or {})}
    return _Run(directory=directory, config=saved_config, data=data, saved=saved)


def _own_source(run: _Run) -> str:
    """The data the run was tuned on: its configured source, or its model's default."""
    if run.data["source"]:
        source = run.data["source"]
    elif run.model_name in model_registry.MODELS:
        source = model_registry.MODELS[run.model_name].default_source
    else:
        source = model_registry.DEFAULT_SOURCES["series" if run.is_series else "table"]
    bundled = (sources.is_bundled_ticker(source) or source in sources.BUNDLED_TABLES
               or source in sources.BUNDLED_SERIES)
    if not bundled and not pathlib.Path(source).is_file():
        raise DataError(f"the run's data file {source} is not there any more; pass --data FILE "
                        f"to forecast from a file")
    return source


def _series_inputs(run: _Run, source: str, *, own: bool,
                   ) -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:
    """The windows to forecast, the output frame without forecasts, and the windows' closes."""
    lookback = int(run.saved["input_shape"][0])
    name = (str(source).upper() if sources.is_bundled_ticker(str(source))
            else pathlib.Path(str(source)).name)
    preprocessor = run.saved["preprocessor"]
    prices = forecast.load_prices(source, run.data, preprocessor)
    windows = forecast.series_windows(prices, run.data, preprocessor, lookback, name)
    if own:
        # The test split's windows lie inside its last `test_size` feature rows, so they
        # forecast the last test_size - lookback days; the extra window forecasts the next.
        # Runs written before the sizes could be left empty hold the number itself.
        test_size = run.data["test_size"] or build.PRICE_SIZES["test_size"]
        if not isinstance(test_size, int) or test_size > len(windows) + lookback - 1:
            raise ConfigError(f"{run.directory / run_dir.RUN_MARKER}: data.test_size "
                              f"{test_size!r} does not fit the run's data; pass --data FILE to "
                              f"forecast from a file")
        windows = windows.tail(test_size - lookback + 1)
    frame = pd.DataFrame({"date": [day.date().isoformat() for day in windows.dates],
                          "actual": windows.actual, "last_close": windows.anchor})
    return windows.windows, frame, windows.anchor


def _table_inputs(run: _Run, source: str, *, own: bool,
                  ) -> tuple[np.ndarray, pd.DataFrame, None]:
    """The rows to forecast, scaled, and the output frame without forecasts."""
    preprocessor = run.saved["preprocessor"]
    rows, actual = forecast.load_rows(source, preprocessor, run.saved["target"],
                                      run.data["fill"])
    if own:
        # The run's own test rows: its seeded (and for classes stratified) split, rebuilt
        # by the pipeline that made it.
        test_index = build.make_pipeline(_run_config(run, source), _table_spec()
                                         ).prepare().splits["test"].index
        rows = rows.loc[test_index]
        actual = None if actual is None else actual.loc[test_index]
    name = str(source) if str(source) in sources.BUNDLED_TABLES else pathlib.Path(
        str(source)).name
    frame = pd.DataFrame({"row": rows.index.to_numpy()})
    if actual is not None:
        frame["actual"] = actual.to_numpy()
    return forecast.table_rows(rows, preprocessor, name), frame, None


def _run_config(run: _Run, source: str) -> config.Config:
    """The run's configuration as a `Config`, with `source` (its own data) filled in.

    With the source filled in, a user's model class is never imported to find its default
    data.
    """
    overrides = {section: dict(run.config.get(section) or {}) for section in config.SECTIONS}
    overrides["data"]["source"] = source
    return config.load_config(None, overrides)


def _table_spec() -> model_registry.ModelSpec:
    """A registry entry that feeds table rows, without importing the run's model class."""
    return model_registry.ModelSpec(model_registry.MODELS["dense"].hypermodel, data_kind="table")


def _class_labels(run: _Run) -> np.ndarray | None:
    """The run's class labels by class index, read from its own data; None if unreadable.

    The tabular pipeline numbers the classes as `LabelEncoder` does, in the sorted order
    of the target's values as text; the labels are given back as the values themselves.
    """
    try:
        source = _own_source(run)
        _, target = sources.load_table(source, run.data["target_column"]
                                       if source not in sources.BUNDLED_TABLES else None,
                                       fill=run.data["fill"])
    except DataError:
        return None
    values = {str(value): value for value in target.drop_duplicates()}
    return np.array([values[text] for text in sorted(values)])


def _to_original_units(outputs: np.ndarray, saved: dict[str, Any],
                       anchor: np.ndarray | None) -> np.ndarray:
    """Model outputs in the target's units (prices for a series), as the run scored them."""
    width = outputs.shape[-1] if outputs.ndim > 1 else 1
    n_classes = (2 if width == 1 else width) if saved["task"] == "classification" else None
    split = Split(name="forecast", targets=np.empty(0), actual=np.empty(0), index=pd.Index([]),
                  anchor=anchor, make_dataset=lambda: None)
    prepared = PreparedData(
        task=saved["task"], input_shape=tuple(saved["input_shape"]),
        feature_names=list(saved["feature_names"]), splits={"forecast": split}, baselines={},
        preprocessor=saved["preprocessor"], target_scaler=saved["target_scaler"],
        n_classes=n_classes, target=saved["target"], description="", baseline="")
    return prepared.to_original_units(outputs, "forecast")


def _load_model(directory: pathlib.Path) -> Any:
    """Loads the best model, importing TensorFlow quietly the first time."""
    quiet.import_tensorflow()
    import keras

    # The built-in models' dropout layers and optimizers are ktlab's own classes; importing
    # their module registers them, so that Keras can load a model that uses them.
    from hypermodels import held  # noqa: F401

    try:
        return keras.saving.load_model(directory / MODEL_FILE)
    except (ValueError, OSError, TypeError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise ConfigError(f"cannot load {directory / MODEL_FILE} ({reason}); import the "
                          f"module that defines its custom layers first, or rerun the search"
                          ) from None
