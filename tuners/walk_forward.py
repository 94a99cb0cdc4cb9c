"""Walk-forward validation inside a keras-tuner trial: one model per fold.

`HistoryMixin` (in `tuners.recorder`) inherits this: with `validation="walk_forward"`,
each trial trains a model on every fold's data (which replaces any `x`, `y` or
`validation_data` given to `search()`), its score is the mean over folds of each fold's
best objective value among the epochs the trial trained, and the weights kept for
`get_best_models()` are those of the last fold, the one nearest the present.

A tuner that continues configurations from their checkpoints (Hyperband, BOHB, ASHA:
`tuners.tuner_classes.EpochBudgetTuner`) does so fold by fold: each trial also keeps one
checkpoint per fold, `trial_<id>/checkpoint_fold<k>.weights.h5` (that fold's best epoch,
as keras-tuner keeps for a holdout trial), and a promoted trial's fold k starts from its
parent's fold-k checkpoint at epoch `tuner/initial_epoch`, trains to `tuner/epochs`, and
is scored on those epochs, so the folds' epochs add up as they do with holdout data.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Sequence
from typing import Any

import keras

from tuners.errors import TunerConfigError
from tuners.records import to_float

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


class WalkForwardMixin:
    """Trains a trial on each walk-forward fold and writes the mean curve over folds.

    It expects the attributes `HistoryMixin` sets: `folds`, `_recording` and `_write`.
    A tuner whose trials continue a parent trial's checkpoints sets
    `continues_checkpoints = True`: it then keeps a checkpoint per fold, and while a fold
    trains, `active_fold` holds its position so that the tuner loads the parent's
    checkpoint of that fold.
    """

    continues_checkpoints = False
    active_fold: int | None = None

    def fold_checkpoint_fname(self, trial_id: str, position: int) -> str:
        """Where the checkpoint of the fold at `position` of trial `trial_id` is kept."""
        return os.path.join(self.get_trial_dir(trial_id), FOLD_CHECKPOINT.format(fold=position))

    def _run_walk_forward_trial(self, trial: Any, **kwargs: Any) -> dict[str, float]:
        objective = self.oracle.objective
        original_callbacks = kwargs.pop("callbacks", None) or []
        shared_kwargs = {
            name: value for name, value in kwargs.items()
            if name not in ("x", "y", "validation_data", "batched_data")
        }
        fold_metrics = []
        for position, fold in enumerate(self.folds):
            self._recording.fold = getattr(fold, "index", position)
            callbacks = self.copy_callbacks(original_callbacks)
            self.configure_tensorboard(callbacks, trial, position)
            callbacks.append(TrialEpochCallback(self, trial))
            kept = []
            if self.continues_checkpoints:
                kept.append(self.fold_checkpoint_fname(trial.trial_id, position))
            if position == len(self.folds) - 1:
                # The last fold's model, trained nearest the present, is the one kept.
                kept.append(self.checkpoint_path(trial.trial_id))
            callbacks += [keras.callbacks.ModelCheckpoint(
                path, monitor=objective.name, mode=objective.direction, save_best_only=True,
                save_weights_only=True) for path in kept]
            fold_kwargs = fold.fit_kwargs()
            if "batched_data" in kwargs:
                # A hypermodel that applies its tuned batch size asks the data for it
                # (`hypermodels.fit_data`): this fold's data, not the search's.
                fold_kwargs["batched_data"] = fold.fit_kwargs
            # `EpochBudgetTuner.build_model` reads it to load this fold's parent.
            self.active_fold = position
            try:
                history = self.build_and_fit(
                    trial, **shared_kwargs, **fold_kwargs, callbacks=callbacks
                )
            finally:
                self.active_fold = None
            fold_metrics.append(_best_epoch_metrics(history.history, objective))
        self._recording.fold_scores = [metrics[objective.name] for metrics in fold_metrics]
        shared_names = [name for name in fold_metrics[0]
                        if all(name in metrics for metrics in fold_metrics)]
        return {name: statistics.fmean(metrics[name] for metrics in fold_metrics)
                for name in shared_names}

    def _write_fold_means(self, recording: Any) -> None:
        by_epoch: dict[int, list[Any]] = {}
        for record in recording.epochs:
            by_epoch.setdefault(record.epoch, []).append(record)
        for epoch in sorted(by_epoch):
            records = by_epoch[epoch]
            self._write({
                "event": "epoch", "trial_id": recording.trial_id, "execution": 0,
                "epoch": epoch, "seconds": sum(record.seconds for record in records),
                "metrics": _mean_metrics([record.metrics for record in records]),
                "folds": len(records),
                "metrics_by_fold": [
                    {"fold": record.fold, "seconds": record.seconds, "metrics": record.metrics}
                    for record in records
                ],
            })

    # The end of a trial.

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
