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

import hypermodels
import tuners
from pipelines import final_pick, final_retrain, importance, pareto, plots, refit, report
from pipelines.config import Config
from pipelines.data import PreparedData, references, score
from pipelines.errors import KtlabError
from pipelines.progress import LOGGER
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
        best_model: The best model, as saved to `best_model.keras`: refitted on
            training + validation rows unless `run.refit` is off.
        model_data: The data `best_model` was trained on and is scaled for: the refit
            data (`prepared.refit_data()`), or `prepared` without refit.
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


def finish_run(config: Config, prepared: PreparedData, tuner: Any, run_dir: pathlib.Path,
               started: float) -> RunResult:
    """Writes trials, the best model, its scores, predictions and plots after a search.

    With `run.refit` (the default) the best configuration is retrained on training +
    validation rows (`pipelines.refit`); `best_model.keras`, `preprocessor.joblib` and
    `predictions.csv` are then the refitted model's, and `metrics.json` gives the test
    scores of both the search's model (`search_test`) and the refitted one (`test`).
    With several objectives the saved configuration is the one `pipelines.pareto` picks;
    with `run.final_top` it is the one `pipelines.final_pick` picks across seeds.
    """
    trials = tuners.load_trials(run_dir)
    trials.to_csv(run_dir / "trials.csv", index=False)
    best_id = tuners.best_trial_id(trials, config.direction)
    if best_id is None:
        plots.write_plots(run_dir)
        raise SearchFailedError(
            f"no trial completed (see {run_dir / 'trials.csv'} for the reasons); narrow the "
            f"search space or lower the learning-rate range")
    choice = None
    if len(config.tuner.objectives) >= 2:
        names = config.tuner.objectives
        choice = pareto.write_pareto(run_dir, trials, names, pareto.objective_directions(
            config.direction, names), config.tuner.pareto_tolerance)
        best_id = choice["trial_id"] or best_id
    final = None
    if config.run.final_top:
        final = final_retrain.run_final_pick(config, prepared, tuner, trials, run_dir)
        best_id = final.trial_id or best_id
    best_trial = tuner.oracle.trials[best_id]
    best_hyperparameters = best_trial.hyperparameters.values
    origin: dict[str, Any] = {"source": "search", "trial_id": best_id}
    if final is not None and final.model is not None:
        search_model = final.model
        origin.update(source="final_pick", seed=final.seed)
    else:
        search_model = _search_model(tuner, best_trial, prepared, trials)
    search_test = prepared.evaluate(search_model, "test")
    best_model, model_data = search_model, prepared
    refit_seed = origin.get("seed", config.run.seed)
    if config.run.refit:
        epochs = refit.refit_epochs(trials, best_id)
        LOGGER.info(f"ktlab: refitting trial {best_id}'s configuration on the training and "
                    f"validation {prepared.held_out} for {epochs} epochs")
        refitted = refit.refit(tuner.hypermodel, best_trial.hyperparameters, prepared, epochs,
                               refit_seed)
        best_model, model_data = refitted.model, refitted.data
        origin = {"source": "refit", "trial_id": best_id, "epochs": epochs,
                  "train_samples": len(refitted.data.splits["train"]),
                  "loss": refitted.losses, "seed": refit_seed}
    best_model.save(run_dir / "best_model.keras")
    joblib.dump({"preprocessor": model_data.preprocessor,
                 "target_scaler": model_data.target_scaler,
                 "feature_names": model_data.feature_names,
                 "input_shape": model_data.input_shape, "target": model_data.target,
                 "task": model_data.task}, run_dir / "preprocessor.joblib")
    write_json(run_dir / "best_hyperparameters.json", best_hyperparameters)
    test_predictions = model_data.to_original_units(
        best_model.predict(model_data.splits["test"].dataset, verbose=0), "test")
    _predictions_frame(model_data, test_predictions).to_csv(run_dir / "predictions.csv",
                                                            index=False)
    metrics = {
        "objective": config.tuner.objective,
        "direction": config.direction,
        "best_trial_id": best_trial.trial_id,
        "best_score": best_trial.score,
        "best_model": origin,
        "validation": prepared.evaluate(search_model, "validation"),
        "search_test": search_test,
        "test": score(prepared.task, model_data.splits["test"].actual, test_predictions),
        "baseline": {"name": prepared.baseline, **prepared.baselines},
        # Stocks: persistence and moving-average forecasts, on the same rows as `test`.
        "baselines": references.reference_scores(prepared.references, prepared.splits),
        "units": prepared.units,
        "trials": int(len(trials)),
        "epochs": int(trials["epochs_trained"].sum()) if len(trials) else 0,
        "failed_trials": int((trials["status"] == "failed").sum()) if len(trials) else 0,
        "seconds": round(time.perf_counter() - started, 1),
        "backend": keras.backend.backend(),
    }
    if choice is not None:
        metrics["pareto"] = choice
    if final is not None:
        metrics["final_pick"] = final.record
    summary = report.summary_table(trials, metrics)
    if final is not None:
        final_pick.write_report(run_dir, summary)
    write_json(run_dir / "metrics.json", metrics)
    plots.write_plots(run_dir)
    _write_importance(run_dir)
    LOGGER.info(summary)
    LOGGER.info(f"run directory: {run_dir}")
    return RunResult(run_dir=run_dir, config=config, best_hyperparameters=best_hyperparameters,
                     metrics=metrics, trials=trials, seconds=metrics["seconds"],
                     prepared=prepared, tuner=tuner, best_model=best_model,
                     model_data=model_data)


def _write_importance(run_dir: pathlib.Path) -> None:
    """Writes the hyperparameter importances when there are enough trials; never fails.

    A short search has too few usable trials (a `KtlabError`): it is skipped silently. Any
    other error is logged as a warning, since the search's results are already written.
    """
    try:
        importance.write_importance(run_dir)
    except KtlabError:
        pass
    except Exception as error:
        LOGGER.warning(f"ktlab: hyperparameter importances skipped ({error}); run ktlab "
                       f"importance {run_dir} to see why")


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


def _predictions_frame(prepared: PreparedData, predictions: Any) -> pd.DataFrame:
    split = prepared.splits["test"]
    frame = pd.DataFrame({"actual": split.actual, "predicted": predictions})
    if split.anchor is not None:
        frame.insert(0, "date", [day.date().isoformat() for day in split.index])
        frame["baseline"] = split.anchor
        for name, reference in prepared.references.items():
            if name != "persistence":
                frame[name] = reference.predictions(split)
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
        best_model=keras.saving.load_model(run_dir / "best_model.keras"),
        model_data=(prepared.refit_data() if metrics.get("best_model", {}).get("source")
                    == "refit" else prepared))


def write_json(path: pathlib.Path, data: Any) -> None:
    """Writes `data` as indented JSON, with NaN and infinity as null."""
    path.write_text(json.dumps(to_json_value(data), indent=2) + "\n")
