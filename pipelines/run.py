"""`run_search(config)`: the work behind `ktlab tune`, callable from notebooks.

Data flows one way: pipeline -> splits -> tuner.search -> histories on disk -> reports.
Every check of the input happens before the run directory is created, so bad input
leaves nothing half-written.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import time
import warnings
from typing import Any

import pandas as pd

from pipelines import sources
from pipelines.config import Config
from pipelines.data import PreparedData, StockPipeline, TabularPipeline, WalkForward
from pipelines.errors import ConfigError, KtlabError

RUN_MARKER = "config.json"


class SearchFailedError(KtlabError):
    """No trial of the search completed."""


@dataclasses.dataclass
class RunResult:
    """What a finished search leaves behind, for notebooks and reports.

    Attributes:
        run_dir: The run directory with every artifact.
        config: The resolved configuration.
        best_hyperparameters: The best trial's hyperparameter values.
        metrics: The contents of `metrics.json`.
        trials: One row per trial, as in `trials.csv`.
        seconds: Wall time of the search and the final evaluation.
        prepared: The prepared data the search used.
        tuner: The keras-tuner tuner (its oracle holds every trial).
        best_model: The best model, as saved to `best_model.keras`.
    """

    run_dir: pathlib.Path
    config: Config
    best_hyperparameters: dict[str, Any]
    metrics: dict[str, Any]
    trials: pd.DataFrame
    seconds: float
    prepared: PreparedData
    tuner: Any
    best_model: Any


def make_pipeline(config: Config) -> StockPipeline | TabularPipeline:
    """The pipeline that `config` asks for: stock windows for the LSTM, a table for dense.

    Raises:
        ConfigError: If the data source does not suit the model.
    """
    data = config.data
    source = config.source
    if config.model.name == "lstm":
        if source in sources.BUNDLED_TABLES:
            raise ConfigError(f"the lstm model forecasts a price series, but {source!r} is a "
                              f"table; use --model dense or --data AAPL")
        return StockPipeline(
            source, lookback=data.lookback, test_size=data.test_size,
            validation_size=data.validation_size, target=data.target,
            rolling_window=data.rolling_window,
            moving_average_window=data.moving_average_window, calendar=data.calendar,
            log_returns=data.log_returns, batch_size=data.batch_size,
            walk_forward=WalkForward(data.train_window, data.validation_window, data.step),
            fill=data.fill, date_column=data.date_column, target_column=data.target_column)
    if sources.is_bundled_ticker(source):
        raise ConfigError(f"the dense model takes a table, but {source!r} is a price series; "
                          f"use --model lstm or --data diabetes")
    table_sizes = {"test_size": data.test_size, "validation_size": data.validation_size}
    defaults = {"test_size": 0.2, "validation_size": 0.2}
    for key, value in table_sizes.items():
        # Stock defaults are counted in days; a table takes fractions.
        if value == getattr(type(data)(), key):
            table_sizes[key] = defaults[key]
    return TabularPipeline(source, target_column=data.target_column, task=data.task,
                           seed=config.run.seed, batch_size=data.batch_size, **table_sizes)


def make_hypermodel(config: Config, prepared: PreparedData) -> Any:
    """The hypermodel that `config` names, with its search-space overrides.

    Raises:
        ConfigError: For an unknown override or an invalid range.
    """
    import hypermodels

    overrides = config.model.hypermodel_arguments()
    try:
        if config.model.name == "lstm":
            return hypermodels.LSTMHyperModel(input_shape=prepared.input_shape, **overrides)
        return hypermodels.DenseHyperModel(input_shape=prepared.input_shape, task=prepared.task,
                                           n_classes=prepared.n_classes, **overrides)
    except TypeError as error:
        raise ConfigError(f"model.search_space: {error}; see the hypermodel's arguments in "
                          f"hypermodels/{config.model.name}.py") from None
    except ValueError as error:
        raise ConfigError(f"model.search_space: {error}") from None


def prepare_run_dir(config: Config) -> pathlib.Path:
    """Checks that the run directory can be written, and clears it when overwriting.

    Raises:
        ConfigError: If the output directory cannot be written, or the run directory
            exists and `overwrite` is not set.
    """
    output_dir = pathlib.Path(config.run.output_dir)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot create output directory {output_dir} ({error.strerror}); "
                          f"choose another --output-dir") from None
    if not output_dir.is_dir() or not os.access(output_dir, os.W_OK | os.X_OK):
        raise ConfigError(f"output directory {output_dir} is not writable; choose another "
                          f"--output-dir")
    run_dir = config.run_dir
    if run_dir.exists() and any(run_dir.iterdir()):
        if not config.run.overwrite:
            raise ConfigError(f"run directory {run_dir} already exists; pass --overwrite to "
                              f"replace it or --run-name to keep both")
        if not (run_dir / RUN_MARKER).exists():
            raise ConfigError(f"{run_dir} is not a ktlab run directory (no {RUN_MARKER}); "
                              f"refusing to overwrite it, choose another --run-name")
        shutil.rmtree(run_dir)
    return run_dir


def run_search(config: Config, *, verbose: bool = True) -> RunResult:
    """Runs one search end to end and writes its run directory.

    The run directory holds `config.json`, `histories.jsonl`, `trials.csv`,
    `best_hyperparameters.json`, `best_model.keras`, `preprocessor.joblib` and
    `metrics.json`, plus keras-tuner's own files under `tuner/`.

    ```python
    result = run_search(load_config("configs/default.toml"))
    print(result.metrics["test"], result.metrics["baseline"]["test"])
    ```

    Args:
        config: The run's configuration.
        verbose: Print a line per finished trial and a summary table.

    Returns:
        The run's results.

    Raises:
        KtlabError: For bad input, before anything is written.
    """
    import keras

    import tuners
    from pipelines import report

    started = time.perf_counter()
    prepared = make_pipeline(config).prepare()
    folds = prepared.folds() if config.tuner.validation == "walk_forward" else None
    hypermodel = make_hypermodel(config, prepared)
    run_dir = prepare_run_dir(config)
    tuner_config = config.tuner
    printer = report.TrialPrinter(enabled=verbose)
    try:
        tuner = tuners.build_tuner(
            tuner_config.name, hypermodel, directory=run_dir, project_name="tuner",
            objective=tuner_config.objective, max_epochs=tuner_config.max_epochs,
            factor=tuner_config.factor, hyperband_iterations=tuner_config.hyperband_iterations,
            max_trials=tuner_config.max_trials,
            num_initial_points=tuner_config.num_initial_points, seed=config.run.seed,
            executions_per_trial=tuner_config.executions_per_trial, overwrite=True,
            history_path=run_dir / "histories.jsonl",
            max_consecutive_failed_trials=tuner_config.max_consecutive_failed_trials,
            validation=tuner_config.validation, folds=folds, on_trial_end=printer)
    except ValueError as error:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise ConfigError(str(error)) from None
    _write_json(run_dir / RUN_MARKER, config.to_dict())
    keras.utils.set_random_seed(config.run.seed)
    if verbose:
        print(f"ktlab: {tuner_config.name} search of the {config.model.name} model on "
              f"{prepared.description}; run directory {run_dir}")
    # Hyperband reloads a promoted configuration's weights but not its optimizer state
    # (keras-tuner's design); Keras warns about it in every promoted trial.
    warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
    tuner.search(**prepared.fit_kwargs(), epochs=tuner_config.max_epochs,
                 callbacks=tuners.default_callbacks(tuner_config.objective,
                                                    tuner_config.patience),
                 verbose=0)
    return finish_run(config, prepared, tuner, run_dir, started, verbose=verbose)


def finish_run(config: Config, prepared: PreparedData, tuner: Any, run_dir: pathlib.Path,
               started: float, *, verbose: bool = True) -> RunResult:
    """Writes trials, the best model, its scores, predictions and plots after a search."""
    import joblib

    import tuners
    from pipelines import plots, report

    trials = tuners.load_trials(run_dir)
    trials.to_csv(run_dir / "trials.csv", index=False)
    best_trial = _best_trial(tuner, trials)
    if best_trial is None:
        raise SearchFailedError(
            f"no trial completed (see {run_dir / 'trials.csv'} for the reasons); narrow the "
            f"search space or lower the learning-rate range")
    best_hyperparameters = best_trial.hyperparameters.values
    best_model = _best_model(tuner, best_trial, prepared, trials)
    best_model.save(run_dir / "best_model.keras")
    joblib.dump({"preprocessor": prepared.preprocessor, "target_scaler": prepared.target_scaler,
                 "feature_names": prepared.feature_names, "input_shape": prepared.input_shape,
                 "target": prepared.target, "task": prepared.task},
                run_dir / "preprocessor.joblib")
    _write_json(run_dir / "best_hyperparameters.json", best_hyperparameters)
    test_predictions = prepared.to_original_units(
        best_model.predict(prepared.splits["test"].dataset, verbose=0), "test")
    _predictions_frame(prepared, test_predictions).to_csv(run_dir / "predictions.csv",
                                                          index=False)
    metrics = {
        "objective": config.tuner.objective,
        "best_trial_id": best_trial.trial_id,
        "best_score": best_trial.score,
        "validation": prepared.evaluate(best_model, "validation"),
        "test": data_score(prepared, "test", test_predictions),
        "baseline": {"name": prepared.baseline, **prepared.baselines},
        "units": "price" if prepared.target in ("close", "return") else prepared.target,
        "trials": int(len(trials)),
        "epochs": int(trials["epochs"].sum()) if len(trials) else 0,
        "failed_trials": int((trials["status"] == "failed").sum()) if len(trials) else 0,
        "seconds": round(time.perf_counter() - started, 1),
    }
    _write_json(run_dir / "metrics.json", metrics)
    plots.write_plots(run_dir)
    if verbose:
        print(report.summary_table(trials, metrics, config.tuner.objective))
        print(f"run directory: {run_dir}")
    return RunResult(run_dir=run_dir, config=config, best_hyperparameters=best_hyperparameters,
                     metrics=metrics, trials=trials, seconds=metrics["seconds"],
                     prepared=prepared, tuner=tuner, best_model=best_model)


def data_score(prepared: PreparedData, split: str, predictions: Any) -> dict[str, float]:
    """Scores predictions already in the data's own units against `split`'s targets."""
    from pipelines.data import score

    return score(prepared.task, prepared.splits[split].actual, predictions)


def _best_trial(tuner: Any, trials: pd.DataFrame) -> Any:
    """The oracle's best trial among those that did not fail.

    keras-tuner ranks a trial whose loss went NaN after its first epoch by the score of
    the epochs before, so its own best trial can be one that diverged.
    """
    failed = set(trials.loc[trials["status"] == "failed", "trial_id"])
    ranked = tuner.oracle.get_best_trials(num_trials=len(tuner.oracle.trials))
    usable = [trial for trial in ranked if trial.trial_id not in failed]
    return usable[0] if usable else None


def _best_model(tuner: Any, trial: Any, prepared: PreparedData, trials: pd.DataFrame) -> Any:
    """The best trial's model: its checkpoint, or retrained after walk-forward validation.

    A walk-forward trial's checkpoint was fitted on its last fold's scaling, not on the
    holdout split's, so the best configuration is retrained on the holdout training split
    for the number of epochs that scored best.
    """
    if getattr(tuner, "validation", "holdout") != "walk_forward":
        return tuner.load_model(trial)
    import keras

    row = trials.set_index("trial_id").loc[trial.trial_id]
    epochs = int(row["best_epoch"]) + 1 if not pd.isna(row["best_epoch"]) else int(
        row["epochs"])
    keras.utils.set_random_seed(tuner.oracle.seed)
    model = tuner.hypermodel.build(trial.hyperparameters)
    tuner.hypermodel.fit(trial.hyperparameters, model, **prepared.fit_kwargs(), epochs=epochs,
                         verbose=0)
    return model


def _predictions_frame(prepared: PreparedData, predictions: Any) -> pd.DataFrame:
    split = prepared.splits["test"]
    frame = pd.DataFrame({"actual": split.actual, "predicted": predictions})
    if split.anchor is not None:
        frame.insert(0, "date", [day.date().isoformat() for day in split.index])
        frame["baseline"] = split.anchor
    return frame


def _write_json(path: pathlib.Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=_plain) + "\n")


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)
