"""Walk-forward validation inside a keras-tuner trial: one model per fold.

`WalkForward` is the trial runner that `tuners.tuner.Tuner` holds with
`validation="walk_forward"` (`Holdout`, in `tuners.runners.holdout`, is the other): each trial
trains a model on every fold's data (which replaces any `x`, `y` or `validation_data`
given to `search()`), its score is the mean over folds of each fold's best objective value
among the epochs the trial trained, and the weights kept for `get_best_models()` are those
of the last fold, the one nearest the present.

A tuner that continues configurations from their checkpoints (Hyperband, BOHB, ASHA: one
with an `epoch_budget`, `tuners.observers.epoch_budget`) does so fold by fold: each trial also keeps
one checkpoint per fold, `trial_<id>/checkpoint_fold<k>.weights.h5` (that fold's best
epoch, as keras-tuner keeps for a holdout trial), and a promoted trial's fold k starts from
its parent's fold-k checkpoint at epoch `tuner/initial_epoch`, trains to `tuner/epochs`,
and is scored on those epochs, so the folds' epochs add up as they do with holdout data.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Sequence
from typing import Any

import keras

from tuners.errors import TunerConfigError
from tuners.results.records import to_float
from tuners.runners import holdout

VALIDATIONS = ("holdout", "walk_forward")
# Each fold's checkpoint in a trial's directory, for tuners that continue configurations.
FOLD_CHECKPOINT = "checkpoint_fold{fold}.weights.h5"
FOLD_CHECKPOINT_PATTERN = "checkpoint_fold*.weights.h5"


class TrialEpochCallback(keras.callbacks.Callback):
    """Forwards epoch events to the tuner's hooks, like keras-tuner's own `TunerCallback`.

    Args:
        tuner: The tuner whose `on_epoch_begin` and `on_epoch_end` to call.
        trial: The running trial.
    """

    def __init__(self, tuner: Any, trial: Any) -> None:
        super().__init__()
        self.tuner = tuner
        self.trial = trial

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.tuner.on_epoch_begin(self.trial, self.model, epoch, logs=logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.tuner.on_epoch_end(self.trial, self.model, epoch, logs=logs)


def make_runner(validation: str, folds: Sequence[Any] | None,
                executions_per_trial: int = 1) -> holdout.Holdout | WalkForward:
    """The trial runner of a validation: `Holdout`, or `WalkForward` over `folds`.

    Raises:
        TunerConfigError: For an unknown validation, walk-forward without folds, or
            walk-forward with more than one execution per trial.
    """
    if validation not in VALIDATIONS:
        raise TunerConfigError(
            f"unknown validation {validation!r}; use one of {', '.join(VALIDATIONS)}"
        )
    if validation == "walk_forward":
        check_folds(folds)
        if executions_per_trial != 1:
            raise TunerConfigError(
                "walk-forward validation already trains one model per fold; set "
                "executions_per_trial to 1"
            )
        return WalkForward(folds)
    if folds is not None:
        raise TunerConfigError(
            "folds are only used with validation='walk_forward'; pass folds=None for "
            "holdout validation"
        )
    return holdout.Holdout()


def fold_checkpoint_path(tuner: Any, trial_id: str, position: int) -> str:
    """Where the checkpoint of the fold at `position` of trial `trial_id` is kept."""
    return os.path.join(tuner.get_trial_dir(trial_id), FOLD_CHECKPOINT.format(fold=position))


class WalkForward:
    """Trains a trial on each walk-forward fold; the trial's score is the mean over folds.

    While a fold trains, `active_fold` holds its position, so that a tuner continuing a
    parent trial (`tuners.observers.epoch_budget.EpochBudget`) loads the parent's checkpoint of
    that fold.

    Args:
        folds: Objects with `fit_kwargs()` (returning `x` and `validation_data`) and,
            optionally, `index`.
    """

    name = "walk_forward"

    def __init__(self, folds: Sequence[Any]) -> None:
        self.folds = list(folds)
        self.active_fold: int | None = None

    def run_trial(self, tuner: Any, trial: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
        """Trains one model per fold; returns the mean over folds of each best-epoch metric.

        Positional arguments are ignored, as are `x`, `y` and `validation_data`: each fold
        brings its own data.
        """
        objective = tuner.oracle.objective
        recording = tuner.recording
        original_callbacks = kwargs.pop("callbacks", None) or []
        shared_kwargs = {
            name: value for name, value in kwargs.items()
            if name not in ("x", "y", "validation_data", "batched_data")
        }
        fold_metrics = []
        for position, fold in enumerate(self.folds):
            recording.fold = getattr(fold, "index", position)
            callbacks = tuner.copy_callbacks(original_callbacks)
            tuner.configure_tensorboard(callbacks, trial, position)
            callbacks.append(TrialEpochCallback(tuner, trial))
            kept = []
            if tuner.epoch_budget is not None:
                kept.append(fold_checkpoint_path(tuner, trial.trial_id, position))
            if position == len(self.folds) - 1:
                # The last fold's model, trained nearest the present, is the one kept.
                kept.append(tuner.checkpoint_path(trial.trial_id))
            callbacks += [keras.callbacks.ModelCheckpoint(
                path, monitor=objective.name, mode=objective.direction, save_best_only=True,
                save_weights_only=True) for path in kept]
            fold_kwargs = fold.fit_kwargs()
            if "batched_data" in kwargs:
                # A hypermodel that applies its tuned batch size asks the data for it
                # (`hypermodels.fit_data`): this fold's data, not the search's.
                fold_kwargs["batched_data"] = fold.fit_kwargs
            # `EpochBudget.build_model` reads it to load this fold's parent.
            self.active_fold = position
            try:
                history = tuner.build_and_fit(
                    trial, **shared_kwargs, **fold_kwargs, callbacks=callbacks
                )
            finally:
                self.active_fold = None
            fold_metrics.append(_best_epoch_metrics(history.history, objective))
        recording.fold_scores = [metrics[objective.name] for metrics in fold_metrics]
        shared_names = [name for name in fold_metrics[0]
                        if all(name in metrics for metrics in fold_metrics)]
        return {name: statistics.fmean(metrics[name] for metrics in fold_metrics)
                for name in shared_names}


def fold_mean_records(recording: Any) -> list[dict[str, Any]]:
    """The histories' `epoch` records of a walk-forward trial: each epoch's mean over folds."""
    by_epoch: dict[int, list[Any]] = {}
    for record in recording.epochs:
        by_epoch.setdefault(record.epoch, []).append(record)
    return [{
        "event": "epoch", "trial_id": recording.trial_id, "execution": 0,
        "epoch": epoch, "seconds": sum(record.seconds for record in records),
        "metrics": _mean_metrics([record.metrics for record in records]),
        "folds": len(records),
        "metrics_by_fold": [
            {"fold": record.fold, "seconds": record.seconds, "metrics": record.metrics}
            for record in records
        ],
    } for epoch, records in sorted(by_epoch.items())]


def check_folds(folds: Sequence[Any] | None) -> None:
    if not folds:
        raise TunerConfigError(
            "validation='walk_forward' needs folds; pass folds=prepared.folds() (a non-empty "
            "list of objects with fit_kwargs())"
        )
    for fold in folds:
        if not callable(getattr(fold, "fit_kwargs", None)):
            raise TunerConfigError(
                f"each fold needs a fit_kwargs() method returning x and validation_data; got "
                f"{type(fold).__name__}"
            )


def _best_epoch_metrics(history: dict[str, list], objective: Any) -> dict[str, float]:
    if objective.name not in history:
        raise TunerConfigError(
            f"objective {objective.name!r} is not among the metrics {sorted(history)}; "
            f"choose one of them"
        )
    values = [to_float(value) for value in history[objective.name]]
    finite = [epoch for epoch, value in enumerate(values) if math.isfinite(value)]
    if not finite:
        best = 0
    elif objective.direction == "max":
        best = max(finite, key=lambda epoch: values[epoch])
    else:
        best = min(finite, key=lambda epoch: values[epoch])
    return {name: to_float(epoch_values[best]) for name, epoch_values in history.items()
            if len(epoch_values) > best}


def _mean_metrics(metrics_list: list[dict[str, float]]) -> dict[str, float]:
    names: list[str] = []
    for metrics in metrics_list:
        names.extend(name for name in metrics if name not in names)
    return {
        name: statistics.fmean(metrics[name] for metrics in metrics_list if name in metrics)
        for name in names
    }
