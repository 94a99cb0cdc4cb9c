"""What a finished search leaves in its run directory: trials, the chosen model, its scores.

The recipe (`pipelines.recipe`) calls these in order: `write_trials`, `best_choice`,
`final_model` and `write_run`; the report steps (`pipelines.reports`) come after.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import time
from typing import Any

import joblib
import keras
import pandas as pd

import hypermodels
import tuners
from pipelines.config import Config
from pipelines.data import PreparedData, references
from pipelines.errors import KtlabError, TooManyFailedTrialsError
from pipelines.run import refit
from pipelines.run.progress import LOGGER
from pipelines.run.selection import Choice
from tuners.results.records import to_json_value


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
        best_model: The best model, as saved to `best_model.keras`: refitted on
            training + validation rows unless `run.refit` is off.
        model_data: The data `best_model` was trained on and is scaled for: the refit
            data (`prepared.refit_data()`), or `prepared` without refit.
        seconds_by_step: The search's seconds and those of each step after it, in order
            (`summary.Stopwatch`); the steps still running add theirs as they end.
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
    model_data: PreparedData | None = None
    seconds_by_step: dict[str, float] = dataclasses.field(default_factory=dict)


def write_trials(run_dir: pathlib.Path) -> pd.DataFrame:
    """Writes `trials.csv`, one row per trial from the histories, and returns it."""
    trials = tuners.load_trials(run_dir)
    trials.to_csv(run_dir / "trials.csv", index=False)
    return trials


def best_choice(tuner: Any, run_dir: pathlib.Path) -> Choice:
    """keras-tuner's best trial: the one `tuner.get_best_hyperparameters()` and
    `tuner.get_best_models()` give, since keras-tuner's record ranks the trials.

    Raises:
        SearchFailedError: When no trial completed.
    """
    best_id = tuners.oracle_best_trial_id(tuner.oracle)
    if best_id is None:
        raise SearchFailedError(
            f"no trial completed (see {run_dir / 'trials.csv'} for the reasons); narrow the "
            f"search space or lower the learning-rate range")
    return Choice(best_id)


def stopped_by_failures(config: Config, run_dir: pathlib.Path) -> KtlabError:
    """Writes `trials.csv` of a search that too many failures ended; returns its error."""
    trials = write_trials(run_dir)
    limit = config.tuner.max_consecutive_failed_trials
    failed = int((trials["status"] == "failed").sum())
    return TooManyFailedTrialsError(
        f"{limit} trials in a row failed (the --max-consecutive-failed-trials limit), so the "
        f"search stopped after {len(trials)} trials, {failed} of them failed; see "
        f"{run_dir / 'trials.csv'} for the reasons, narrow the search space (e.g. the "
        f"learning-rate range) and rerun with --overwrite")


@dataclasses.dataclass
class SavedModel:
    """The model `best_model.keras` holds, the data it is scaled for, and where it came from."""

    model: Any
    data: PreparedData
    origin: dict[str, Any]
    search_model: Any


def final_model(config: Config, prepared: PreparedData, tuner: Any, trials: pd.DataFrame,
                choice: Choice) -> SavedModel:
    """The chosen configuration's model: refitted on training + validation rows with
    `run.refit` (the default), else the search's own (or the final pick's)."""
    trial = tuner.oracle.trials[choice.trial_id]
    origin: dict[str, Any] = {"source": "search", "trial_id": choice.trial_id}
    if choice.model is not None:
        search_model = choice.model
        origin.update(source="final_pick", seed=choice.seed)
    else:
        search_model = _search_model(tuner, trial, prepared, trials)
    if not config.run.refit:
        return SavedModel(search_model, prepared, origin, search_model)
    seed = origin.get("seed", config.run.seed)
    epochs = refit.refit_epochs(trials, choice.trial_id)
    LOGGER.info(f"ktlab: refitting trial {choice.trial_id}'s configuration on the training and "
                f"validation {prepared.held_out} for {epochs} epochs")
    refitted = refit.refit(tuner.hypermodel, trial.hyperparameters, prepared, epochs, seed)
    origin = {"source": "refit", "trial_id": choice.trial_id, "epochs": epochs,
              "train_samples": len(refitted.data.splits["train"]),
              "loss": refitted.losses, "seed": seed}
    return SavedModel(refitted.model, refitted.data, origin, search_model)


def write_run(config: Config, prepared: PreparedData, tuner: Any, trials: pd.DataFrame,
              choice: Choice, saved: SavedModel, run_dir: pathlib.Path,
              started: float, seconds_by_step: dict[str, float] | None = None) -> RunResult:
    """Writes the model, its preprocessing, predictions and `metrics.json` (the last file of
    a finished search) and returns the run's result (`seconds_by_step` is kept in it, as
    is, for the steps still to run)."""
    best_trial = tuner.oracle.trials[choice.trial_id]
    model, model_data = saved.model, saved.data
    model.save(run_dir / "best_model.keras")
    joblib.dump({"preprocessor": model_data.preprocessor,
                 "target_scaler": model_data.target_scaler,
                 "feature_names": model_data.feature_names,
                 "input_shape": model_data.input_shape, "target": model_data.target,
                 "task": model_data.task, "horizon": model_data.horizon,
                 "delta": model_data.delta,
                 "frequency": getattr(model_data.frequency, "alias", None)},
                run_dir / "preprocessor.joblib")
    write_json(run_dir / "best_hyperparameters.json", best_trial.hyperparameters.values)
    test_predictions = model_data.to_original_units(
        model.predict(model_data.splits["test"].dataset, verbose=0), "test")
    _predictions_frame(model_data, test_predictions).to_csv(run_dir / "predictions.csv",
                                                            index=False)
    metrics = {
        "objective": config.tuner.objective,
        "direction": config.direction,
        "best_trial_id": best_trial.trial_id,
        "best_score": best_trial.score,
        "best_model": saved.origin,
        "validation": prepared.evaluate(saved.search_model, "validation"),
        "search_test": prepared.evaluate(saved.search_model, "test"),
        "test": model_data.score("test", test_predictions),
        "baseline": {"name": prepared.baseline, **prepared.baselines},
        # Series: the reference forecasts (prices: persistence and a moving average; any
        # series: persistence, seasonal naive and a statistical model), on the same rows.
        "baselines": references.reference_scores(prepared.references, prepared.splits),
        "units": prepared.units,
        **_horizon_records(model_data, test_predictions),
        "trials": int(len(trials)),
        "epochs": int(trials["epochs_trained"].sum()) if len(trials) else 0,
        "failed_trials": int((trials["status"] == "failed").sum()) if len(trials) else 0,
        "seconds": round(time.perf_counter() - started, 1),
        "backend": keras.backend.backend(),
        **choice.records,
    }
    write_json(run_dir / "metrics.json", metrics)
    return RunResult(run_dir=run_dir, config=config,
                     best_hyperparameters=best_trial.hyperparameters.values, metrics=metrics,
                     trials=trials, seconds=metrics["seconds"], prepared=prepared, tuner=tuner,
                     best_model=model, model_data=model_data,
                     seconds_by_step={} if seconds_by_step is None else seconds_by_step)


def _search_model(tuner: Any, trial: Any, prepared: PreparedData, trials: pd.DataFrame) -> Any:
    """The search's own model of the best trial: its checkpoint, or retrained after
    walk-forward validation.

    A walk-forward trial's checkpoint was fitted on its last fold's scaling, not on the
    holdout split's, so the best configuration is retrained on the holdout training split
    for the number of epochs that scored best.
    """
    if getattr(tuner, "validation", "holdout") != "walk_forward":
        return tuner.load_model(trial)
    keras.utils.set_random_seed(tuner.oracle.seed)
    model = tuner.hypermodel.build(trial.hyperparameters)
    tuner.hypermodel.fit(trial.hyperparameters, model,
                         **hypermodels.fit_data(tuner.hypermodel, prepared),
                         epochs=refit.refit_epochs(trials, trial.trial_id), verbose=0)
    return model


def _horizon_records(prepared: PreparedData, test_predictions: Any) -> dict[str, Any]:
    """A series' frequency and horizon, and the test scores of each step ahead."""
    if prepared.frequency is None:
        return {}
    return {"frequency": prepared.frequency.name, "horizon": prepared.horizon,
            "test_by_step": prepared.score_by_step("test", test_predictions)}


def _predictions_frame(prepared: PreparedData, predictions: Any) -> pd.DataFrame:
    split = prepared.splits["test"]
    if prepared.horizon > 1:
        return _horizon_frame(prepared, predictions)
    frame = pd.DataFrame({"actual": split.actual, "predicted": predictions})
    if split.anchor is not None:
        frame.insert(0, "date", [day.date().isoformat() for day in split.index])
        # The naive forecast: persistence for prices, the best reference for any series.
        frame["baseline"] = (split.anchor if prepared.frequency is None else
                             prepared.references[prepared.best_reference].predictions(split))
        for name, reference in prepared.references.items():
            if name != prepared.best_reference:
                frame[name] = reference.predictions(split)
    return frame


def _horizon_frame(prepared: PreparedData, predictions: Any) -> pd.DataFrame:
    """One row per forecast origin, one column per step ahead: `actual_1`, `predicted_1`,
    ..., the last known value, and each reference forecast's steps (`baseline_1`, ... for
    the best on the validation rows)."""
    split = prepared.splits["test"]
    steps = range(1, prepared.horizon + 1)
    columns: dict[str, Any] = {"date": [day.date().isoformat() for day in split.index],
                               "last_value": split.anchor}
    for step in steps:
        columns[f"actual_{step}"] = split.actual[:, step - 1]
        columns[f"predicted_{step}"] = predictions[:, step - 1]
    for name, reference in prepared.references.items():
        forecast = reference.predictions(split)
        label = "baseline" if name == prepared.best_reference else name
        for step in steps:
            columns[f"{label}_{step}"] = forecast[:, step - 1]
    return pd.DataFrame(columns)


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
        best_model=keras.saving.load_model(run_dir / "best_model.keras"),
        model_data=(prepared.refit_data() if metrics.get("best_model", {}).get("source")
                    == "refit" else prepared))


def write_json(path: pathlib.Path, data: Any) -> None:
    """Writes `data` as indented JSON, with NaN and infinity as null."""
    path.write_text(json.dumps(to_json_value(data), indent=2) + "\n")
