"""What a finished search leaves in its run directory: trials, best model, scores, plots."""

from __future__ import annotations

import dataclasses
import json
import pathlib
import time
from typing import Any

import joblib
import keras
import pandas as pd

import tuners
from pipelines import plots, report
from pipelines.config import Config
from pipelines.data import PreparedData, score
from pipelines.errors import KtlabError
from tuners.records import to_json_value


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
        tuner: The keras-tuner tuner (its oracle holds every trial); None for a result
            read back from disk by `load_result`.
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


def finish_run(config: Config, prepared: PreparedData, tuner: Any, run_dir: pathlib.Path,
               started: float, *, verbose: bool = True) -> RunResult:
    """Writes trials, the best model, its scores, predictions and plots after a search."""
    trials = tuners.load_trials(run_dir)
    trials.to_csv(run_dir / "trials.csv", index=False)
    best_id = tuners.best_trial_id(trials, tuner.oracle.objective.direction)
    if best_id is None:
        plots.write_plots(run_dir)
        raise SearchFailedError(
            f"no trial completed (see {run_dir / 'trials.csv'} for the reasons); narrow the "
            f"search space or lower the learning-rate range")
    best_trial = tuner.oracle.trials[best_id]
    best_hyperparameters = best_trial.hyperparameters.values
    best_model = _best_model(tuner, best_trial, prepared, trials)
    best_model.save(run_dir / "best_model.keras")
    joblib.dump({"preprocessor": prepared.preprocessor, "target_scaler": prepared.target_scaler,
                 "feature_names": prepared.feature_names, "input_shape": prepared.input_shape,
                 "target": prepared.target, "task": prepared.task},
                run_dir / "preprocessor.joblib")
    write_json(run_dir / "best_hyperparameters.json", best_hyperparameters)
    test_predictions = prepared.to_original_units(
        best_model.predict(prepared.splits["test"].dataset, verbose=0), "test")
    _predictions_frame(prepared, test_predictions).to_csv(run_dir / "predictions.csv",
                                                          index=False)
    metrics = {
        "objective": config.tuner.objective,
        "best_trial_id": best_trial.trial_id,
        "best_score": best_trial.score,
        "validation": prepared.evaluate(best_model, "validation"),
        "test": score(prepared.task, prepared.splits["test"].actual, test_predictions),
        "baseline": {"name": prepared.baseline, **prepared.baselines},
        "units": prepared.units,
        "trials": int(len(trials)),
        "epochs": int(trials["epochs_trained"].sum()) if len(trials) else 0,
        "failed_trials": int((trials["status"] == "failed").sum()) if len(trials) else 0,
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_json(run_dir / "metrics.json", metrics)
    plots.write_plots(run_dir)
    if verbose:
        print(report.summary_table(trials, metrics, config.tuner.objective))
        print(f"run directory: {run_dir}")
    return RunResult(run_dir=run_dir, config=config, best_hyperparameters=best_hyperparameters,
                     metrics=metrics, trials=trials, seconds=metrics["seconds"],
                     prepared=prepared, tuner=tuner, best_model=best_model)


def _best_model(tuner: Any, trial: Any, prepared: PreparedData, trials: pd.DataFrame) -> Any:
    """The best trial's model: its checkpoint, or retrained after walk-forward validation.

    A walk-forward trial's checkpoint was fitted on its last fold's scaling, not on the
    holdout split's, so the best configuration is retrained on the holdout training split
    for the number of epochs that scored best.
    """
    if getattr(tuner, "validation", "holdout") != "walk_forward":
        return tuner.load_model(trial)
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


def load_result(config: Config, run_dir: pathlib.Path, prepared: PreparedData) -> RunResult:
    """Reads a finished search's results back from its run directory, training nothing.

    Notebooks run a search cell again after a lost session; a search that had finished
    is then shown again instead of refused or repeated.
    """
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return RunResult(
        run_dir=run_dir, config=config,
        best_hyperparameters=json.loads((run_dir / "best_hyperparameters.json").read_text()),
        metrics=metrics, trials=tuners.load_trials(run_dir), seconds=metrics["seconds"],
        prepared=prepared, tuner=None,
        best_model=keras.saving.load_model(run_dir / "best_model.keras"))


def write_json(path: pathlib.Path, data: Any) -> None:
    """Writes `data` as indented JSON, with NaN and infinity as null."""
    path.write_text(json.dumps(to_json_value(data), indent=2) + "\n")
