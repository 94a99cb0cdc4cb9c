"""Per-trial learning curves, written as JSON Lines while the search runs.

keras-tuner keeps only each trial's best-epoch metrics, and it deep-copies the callbacks
given to `search()` for every trial (keras-team/keras-tuner#392), so a callback that
collects history on itself fills copies that are thrown away. `HistoryMixin` records
from the tuner's own hooks instead, which see the trial, and appends one JSON object per
line to `histories.jsonl`, flushed as each epoch ends so that a crash keeps what ran.

Records, one per line, in the order they happen:

- `{"event": "trial_start", "trial_id", "hyperparameters", "bracket", "round",
  "parent_trial_id", "initial_epoch", "target_epochs", "validation", "folds", "time"}`
- `{"event": "epoch", "trial_id", "execution", "epoch", "seconds", "metrics"}`, where
  `epoch` is Keras's absolute, 0-based epoch index, so a Hyperband configuration resumed
  from its parent continues the parent's numbering; with walk-forward validation it is
  written when the trial ends, holds the mean over folds, and adds `"folds"` (how many
  folds reached that epoch) and `"metrics_by_fold"`.
- `{"event": "fold_epoch", "trial_id", "fold", "epoch", "seconds", "metrics"}`, written
  live for each fold of a walk-forward trial.
- `{"event": "trial_end", "trial_id", "status", "reason", "score", "best_epoch",
  "epochs", "target_epochs", "seconds", "oracle_status", "fold_scores",
  "hyperparameters"}`.
- `{"event": "superseded", "trial_id", "epochs", "reason", "time"}`, written when a
  resumed search (or a restarted distributed worker) is about to run again a trial that
  was interrupted: the records of that trial's attempt before it are left in the file
  but no longer count.

`status` is one of `"completed"`, `"stopped_early"` (fewer epochs than its budget, for
example by `EarlyStopping`) or `"failed"` (an exception, or a NaN or infinite loss, even
when keras-tuner kept the score of the epochs before it: `oracle_status` then says
`"COMPLETED"`). Non-finite numbers are written as `null`.

Each trial counts once: `load_histories` and `load_trials` keep only a trial's latest
attempt (the records from its last `trial_start`), so neither a resumed trial nor one that
keras-tuner retried shows its epochs twice. In distributed tuning each worker appends to
its own `histories-<tuner_id>.jsonl` in the run directory, so no two processes write one
file; the readers merge every such file and order the trials by when they first started.

```python
tuner.search(train_dataset, validation_data=validation_dataset, epochs=9)
curves = tuners.load_histories(tuner.history_path)
curves.pivot(index="epoch", columns="trial_id", values="val_loss")
```
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import pathlib
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import keras
import pandas

from tuners.errors import HistoryFileError, TunerConfigError

HISTORY_FILENAME = "histories.jsonl"
# One file per distributed worker: `histories-<tuner_id>.jsonl`.
WORKER_HISTORY_PATTERN = "histories-*.jsonl"
SUPERSEDED = "superseded"
# How long a distributed worker waits before asking again when the chief has no trial for
# it yet (Hyperband waiting for a round to finish); keras-tuner asks again at once.
IDLE_WAIT_SECONDS = 0.5
VALIDATIONS = ("holdout", "walk_forward")
STATUSES = ("completed", "stopped_early", "failed", "incomplete")
# Hyperband (and oracles built like it) pass their schedule as these hyperparameters.
SCHEDULE_KEYS = {
    "tuner/bracket": "bracket",
    "tuner/round": "round",
    "tuner/trial_id": "parent_trial_id",
    "tuner/initial_epoch": "initial_epoch",
    "tuner/epochs": "target_epochs",
}
HISTORY_COLUMNS = [
    "trial_id", "execution", "epoch", "seconds", "bracket", "round", "parent_trial_id",
    "initial_epoch", "target_epochs", "status",
]
FOLD_HISTORY_COLUMNS = [
    "trial_id", "fold", "epoch", "seconds", "bracket", "round", "parent_trial_id",
    "initial_epoch", "target_epochs", "status",
]
TRIAL_COLUMNS = [
    "trial_id", "status", "reason", "score", "best_epoch", "epochs", "target_epochs",
    "initial_epoch", "bracket", "round", "parent_trial_id", "promoted_to", "seconds",
    "oracle_status", "fold_scores",
]


@dataclasses.dataclass
class _EpochRecord:
    run: int
    fold: Any
    epoch: int
    seconds: float
    metrics: dict[str, float]


@dataclasses.dataclass
class _TrialRecording:
    """What the running trial has recorded so far; the tuner runs one trial at a time."""

    trial_id: str
    started: float
    initial_epoch: int
    target_epochs: int
    run: int = -1
    fold: Any = None
    epoch_started: float | None = None
    epochs: list[_EpochRecord] = dataclasses.field(default_factory=list)
    non_finite_epoch: int | None = None
    fold_scores: list[float] | None = None


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


class HistoryMixin:
    """Adds per-trial histories and walk-forward validation to a keras-tuner `Tuner`.

    Put it before the keras-tuner class: `class MyTuner(HistoryMixin, keras_tuner.Tuner)`.
    Only one process writes a file: give each distributed worker its own `history_path`
    (`histories-<tuner_id>.jsonl` beside the others); the readers merge them.

    On a resumed search (`overwrite=False` on an existing project), a trial that the file
    shows started but never ended, and that keras-tuner will run again, is marked
    superseded before the search continues.

    With `validation="walk_forward"`, each trial trains a fresh model on every fold's data
    (which replaces any `x`, `y` or `validation_data` given to `search()`), its score is
    the mean over folds of each fold's best objective value, and the weights kept for
    `get_best_models()` are those of the last fold, the one nearest the present.

    ```python
    class HistoryRandomSearch(HistoryMixin, keras_tuner.Tuner):
        pass

    oracle = keras_tuner.oracles.RandomSearchOracle(objective="val_loss", max_trials=5)
    tuner = HistoryRandomSearch(oracle=oracle, hypermodel=hypermodel, directory="runs",
                                history_path="runs/histories.jsonl")
    ```

    Args:
        *args: Passed to the keras-tuner class.
        history_path: Where to append the records; defaults to `histories.jsonl` in the
            tuner's project directory. With `overwrite=True` an existing file is emptied.
        validation: `"holdout"` or `"walk_forward"`.
        folds: For walk-forward validation, objects with `fit_kwargs()` (returning
            `x` and `validation_data`) and, optionally, `index`.
        trial_end_listener: Optional callable given each finished trial's summary: the
            `trial_end` record plus `bracket`, `round`, `parent_trial_id` and
            `initial_epoch`.
        **kwargs: Passed to the keras-tuner class.

    Raises:
        TunerConfigError: For an unknown validation, walk-forward without folds, or
            walk-forward with more than one execution per trial.
    """

    def __init__(
        self,
        *args: Any,
        history_path: str | os.PathLike | None = None,
        validation: str = "holdout",
        folds: Sequence[Any] | None = None,
        trial_end_listener: Callable[[dict[str, Any]], None] | None = None,
        **kwargs: Any,
    ) -> None:
        if validation not in VALIDATIONS:
            raise TunerConfigError(
                f"unknown validation {validation!r}; use one of {', '.join(VALIDATIONS)}"
            )
        if validation == "walk_forward":
            _check_folds(folds)
            if kwargs.get("executions_per_trial", 1) != 1:
                raise TunerConfigError(
                    "walk-forward validation already trains one model per fold; set "
                    "executions_per_trial to 1"
                )
        elif folds is not None:
            raise TunerConfigError(
                "folds are only used with validation='walk_forward'; pass folds=None for "
                "holdout validation"
            )
        self.validation = validation
        self.folds = list(folds) if folds is not None else None
        self._trial_end_listener = trial_end_listener
        self._recording: _TrialRecording | None = None
        self._trial_summaries: dict[str, dict[str, Any]] = {}
        self._history_checked = False
        self._awaiting_trial = False
        super().__init__(*args, **kwargs)
        if history_path is None:
            history_path = os.path.join(self.project_dir, HISTORY_FILENAME)
        self.history_path = os.fspath(history_path)
        if kwargs.get("overwrite", False) and os.path.exists(self.history_path):
            os.remove(self.history_path)
        elif os.path.exists(self.history_path):
            self._supersede_interrupted_trials()

    # Hooks that keras-tuner calls.

    def pre_create_trial(self) -> None:
        """Waits a moment before asking again when the last request got no trial.

        A distributed worker whose chief answers "idle" (Hyperband waiting for other
        workers to finish a round) would otherwise ask again at once, in a busy loop.
        """
        if self._awaiting_trial:
            time.sleep(IDLE_WAIT_SECONDS)
        self._awaiting_trial = True
        super().pre_create_trial()

    def on_trial_begin(self, trial: Any) -> None:
        """Notes that the last request got a trial."""
        self._awaiting_trial = False
        super().on_trial_begin(trial)

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        """Records the trial's start, then trains it on the holdout split or on each fold."""
        values = trial.hyperparameters.values
        initial_epoch = int(values.get("tuner/initial_epoch", kwargs.get("initial_epoch", 0)))
        target_epochs = int(values.get("tuner/epochs", kwargs.get("epochs", 1)))
        self._recording = _TrialRecording(
            trial_id=trial.trial_id,
            started=time.perf_counter(),
            initial_epoch=initial_epoch,
            target_epochs=target_epochs,
        )
        summary = {
            "trial_id": trial.trial_id,
            "hyperparameters": _plain_hyperparameters(values),
            "bracket": values.get("tuner/bracket"),
            "round": values.get("tuner/round"),
            "parent_trial_id": values.get("tuner/trial_id"),
            "initial_epoch": initial_epoch,
            "target_epochs": target_epochs,
            "validation": self.validation,
            "folds": len(self.folds) if self.folds is not None else None,
        }
        self._trial_summaries[trial.trial_id] = summary
        self._write({"event": "trial_start", **summary,
                     "time": datetime.datetime.now(datetime.UTC).isoformat()})
        if self.validation == "walk_forward":
            return self._run_walk_forward_trial(trial, **kwargs)
        return super().run_trial(trial, *args, **kwargs)

    def _build_and_fit_model(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        # keras-tuner calls this once per execution, and the walk-forward loop once per
        # fold, so it marks where one training run ends and the next begins.
        if self._recording is not None:
            self._recording.run += 1
        return super()._build_and_fit_model(trial, *args, **kwargs)

    def on_epoch_begin(self, trial: Any, model: Any, epoch: int, logs: dict | None = None) -> None:
        """Starts the epoch's clock."""
        if self._recording is not None:
            self._recording.epoch_started = time.perf_counter()
        super().on_epoch_begin(trial, model, epoch, logs=logs)

    def on_epoch_end(self, trial: Any, model: Any, epoch: int, logs: dict | None = None) -> None:
        """Appends the epoch's metrics and wall time to the histories file."""
        recording = self._recording
        if recording is not None and recording.trial_id == trial.trial_id:
            started = recording.epoch_started
            seconds = time.perf_counter() - started if started is not None else math.nan
            metrics = {name: _to_float(value) for name, value in (logs or {}).items()}
            record = _EpochRecord(
                run=max(recording.run, 0), fold=recording.fold, epoch=int(epoch),
                seconds=seconds, metrics=metrics,
            )
            recording.epochs.append(record)
            objective_name = self.oracle.objective.name
            watched = [metrics.get("loss"), metrics.get(objective_name)]
            if recording.non_finite_epoch is None and any(
                value is not None and not math.isfinite(value) for value in watched
            ):
                recording.non_finite_epoch = int(epoch)
            if self.validation == "walk_forward":
                self._write({"event": "fold_epoch", "trial_id": trial.trial_id,
                             "fold": record.fold, "epoch": record.epoch,
                             "seconds": seconds, "metrics": metrics})
            else:
                self._write({"event": "epoch", "trial_id": trial.trial_id,
                             "execution": record.run, "epoch": record.epoch,
                             "seconds": seconds, "metrics": metrics})
        super().on_epoch_end(trial, model, epoch, logs=logs)

    def on_trial_end(self, trial: Any) -> None:
        """Lets keras-tuner score the trial, then records how it ended.

        The record is written even when keras-tuner ends the search here because too many
        trials failed in a row, or a distributed worker loses its chief.
        """
        try:
            super().on_trial_end(trial)
        except BaseException:
            # Do not ask a chief that may be gone: its answer would wait for the timeout.
            self._finish_trial(trial, ask_chief=False)
            raise
        self._finish_trial(trial)

    # Walk-forward validation.

    def _run_walk_forward_trial(self, trial: Any, **kwargs: Any) -> dict[str, float]:
        objective = self.oracle.objective
        original_callbacks = kwargs.pop("callbacks", None) or []
        shared_kwargs = {
            name: value for name, value in kwargs.items()
            if name not in ("x", "y", "validation_data")
        }
        fold_metrics = []
        for position, fold in enumerate(self.folds):
            self._recording.fold = getattr(fold, "index", position)
            callbacks = self._deepcopy_callbacks(original_callbacks)
            self._configure_tensorboard_dir(callbacks, trial, position)
            callbacks.append(TrialEpochCallback(self, trial))
            if position == len(self.folds) - 1:
                # The last fold's model, trained nearest the present, is the one kept.
                callbacks.append(keras.callbacks.ModelCheckpoint(
                    self._get_checkpoint_fname(trial.trial_id), monitor=objective.name,
                    mode=objective.direction, save_best_only=True, save_weights_only=True,
                ))
            history = self._build_and_fit_model(
                trial, **shared_kwargs, **fold.fit_kwargs(), callbacks=callbacks
            )
            fold_metrics.append(_best_epoch_metrics(history.history, objective))
        self._recording.fold_scores = [metrics[objective.name] for metrics in fold_metrics]
        shared_names = [name for name in fold_metrics[0]
                        if all(name in metrics for metrics in fold_metrics)]
        return {name: statistics.fmean(metrics[name] for metrics in fold_metrics)
                for name in shared_names}

    def _write_fold_means(self, recording: _TrialRecording) -> None:
        by_epoch: dict[int, list[_EpochRecord]] = {}
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

    def _finish_trial(self, trial: Any, ask_chief: bool = True) -> None:
        recording = self._recording
        self._recording = None
        oracle_trial = self._oracle_trial(trial.trial_id, ask_chief=ask_chief) or trial
        if recording is None or recording.trial_id != trial.trial_id:
            recording = _TrialRecording(trial.trial_id, time.perf_counter(), 0, 0)
        if self.validation == "walk_forward":
            self._write_fold_means(recording)
        status, reason = self._trial_status(oracle_trial, recording)
        score = _to_float(oracle_trial.score) if oracle_trial.score is not None else None
        if status == "failed" and oracle_trial.status != "COMPLETED":
            score = None
        trained = {record.epoch for record in recording.epochs}
        record = {
            "event": "trial_end",
            "trial_id": trial.trial_id,
            "status": status,
            "reason": reason,
            "score": score,
            "best_epoch": self._best_epoch(recording),
            "epochs": len(trained),
            # The cost: every fold's and every execution's epochs, not only the curve's.
            "epochs_trained": len(recording.epochs),
            "target_epochs": recording.target_epochs,
            "seconds": time.perf_counter() - recording.started,
            "oracle_status": str(oracle_trial.status),
            "fold_scores": recording.fold_scores,
            "hyperparameters": _plain_hyperparameters(oracle_trial.hyperparameters.values),
        }
        self._write(record)
        if self._trial_end_listener is not None:
            start = self._trial_summaries.get(trial.trial_id, {})
            context = {key: start.get(key) for key in
                       ("bracket", "round", "parent_trial_id", "initial_epoch")}
            self._trial_end_listener({**to_json_value(record), **context})

    def _trial_status(
        self, oracle_trial: Any, recording: _TrialRecording
    ) -> tuple[str, str | None]:
        if recording.non_finite_epoch is not None:
            epoch = recording.non_finite_epoch
            reason = f"loss or objective became NaN or infinite at epoch {epoch}"
            if oracle_trial.status == "COMPLETED":
                reason += "; keras-tuner kept the score of the epochs before it"
            return "failed", reason
        if oracle_trial.status != "COMPLETED":
            return "failed", _last_line(oracle_trial.message) or "the objective was NaN"
        last_epochs: dict[Any, int] = {}
        for record in recording.epochs:
            key = (record.run, record.fold)
            last_epochs[key] = max(last_epochs.get(key, -1), record.epoch)
        short = [epoch + 1 for epoch in last_epochs.values() if epoch + 1 < recording.target_epochs]
        if short:
            return "stopped_early", (
                f"stopped after epoch {max(short)} of {recording.target_epochs}"
            )
        return "completed", None

    def _best_epoch(self, recording: _TrialRecording) -> int | None:
        objective = self.oracle.objective
        values: dict[int, list[float]] = {}
        for record in recording.epochs:
            value = record.metrics.get(objective.name)
            if value is not None:
                values.setdefault(record.epoch, []).append(value)
        means = {epoch: statistics.fmean(epoch_values)
                 for epoch, epoch_values in values.items()}
        finite = {epoch: value for epoch, value in means.items() if math.isfinite(value)}
        if not finite:
            return None
        choose = max if objective.direction == "max" else min
        return choose(finite, key=lambda epoch: (finite[epoch], -epoch))

    def _oracle_trial(self, trial_id: str, ask_chief: bool = True) -> Any:
        """The oracle's copy of a trial (with its score), or None when it has none.

        A distributed worker's oracle is keras-tuner's `OracleClient`, which has no
        `trials`; it asks the chief instead.
        """
        trials = getattr(self.oracle, "trials", None)
        if trials is not None:
            return trials.get(trial_id)
        if not ask_chief:
            return None
        import grpc

        try:
            return self.oracle.get_trial(trial_id)
        except grpc.RpcError:
            return None

    def _supersede_interrupted_trials(self) -> None:
        """Marks the attempts that a resumed search will run again as superseded.

        keras-tuner saves a trial as RUNNING when it starts and, on reloading, runs every
        trial still RUNNING again under the same id. A trial the oracle does not know (a
        file written by another search) keeps its records and reads as incomplete.
        """
        for attempt in _read_attempts([pathlib.Path(self.history_path)]):
            if attempt.superseded or attempt.ended or not attempt.latest_in_file:
                continue
            oracle_trial = self._oracle_trial(attempt.trial_id)
            if oracle_trial is None or oracle_trial.status != "RUNNING":
                continue
            self._write({
                "event": SUPERSEDED, "trial_id": attempt.trial_id,
                "epochs": attempt.epochs,
                "reason": "the search stopped during this trial; it runs again",
                "time": datetime.datetime.now(datetime.UTC).isoformat(),
            })

    # The file.

    def _write(self, record: dict[str, Any]) -> None:
        directory = os.path.dirname(self.history_path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        with open(self.history_path, "a+", encoding="utf-8") as handle:
            if not self._history_checked:
                # A crash can leave half a line; start on a fresh line so the next record
                # stays readable.
                handle.seek(0, os.SEEK_END)
                if handle.tell() > 0:
                    handle.seek(handle.tell() - 1)
                    if handle.read(1) != "\n":
                        handle.write("\n")
                self._history_checked = True
            handle.write(json.dumps(to_json_value(record), allow_nan=False) + "\n")
            handle.flush()


def load_histories(
    path_or_run_dir: str | os.PathLike, *, by_fold: bool = False
) -> pandas.DataFrame:
    """Reads the per-epoch records of every trial into one table.

    Args:
        path_or_run_dir: A `histories.jsonl` file, or a directory holding one (searched
            recursively when it is not at the top).
        by_fold: For walk-forward runs, one row per trial, fold and epoch (with a `fold`
            column) instead of the mean over folds.

    Returns:
        One row per trial and epoch (and execution, when there are several), with
        columns `trial_id`, `execution` (or `fold`), `epoch` (0-based, absolute),
        `seconds`, `bracket`, `round`, `parent_trial_id`, `initial_epoch`,
        `target_epochs`, `status`, then one column per metric (`loss`, `val_loss`, ...)
        and one `hp_<name>` column per hyperparameter. A trial without a `trial_end`
        record (the search stopped during it) has status `"incomplete"`.

    Raises:
        HistoryFileError: If no histories file is found, or files lie in several
            directories.
    """
    records = _read_records(path_or_run_dir)
    starts, ends = _starts_and_ends(records)
    event = "fold_epoch" if by_fold else "epoch"
    run_key = "fold" if by_fold else "execution"
    rows: dict[tuple, dict[str, Any]] = {}
    metric_names: list[str] = []
    hyperparameter_names: list[str] = []
    for record in records:
        if record.get("event") != event:
            continue
        trial_id = record.get("trial_id")
        start = starts.get(trial_id, {})
        row = {
            "trial_id": trial_id,
            run_key: record.get(run_key, 0),
            "epoch": record.get("epoch"),
            "seconds": record.get("seconds"),
            **{key: start.get(key) for key in
               ("bracket", "round", "parent_trial_id", "initial_epoch", "target_epochs")},
            "status": ends.get(trial_id, {}).get("status", "incomplete"),
        }
        for name, value in (record.get("metrics") or {}).items():
            if name not in metric_names:
                metric_names.append(name)
            row[name] = value
        hyperparameters = _hyperparameters_of(trial_id, starts, ends)
        for name, value in hyperparameters.items():
            if name not in hyperparameter_names:
                hyperparameter_names.append(name)
            row[f"hp_{name}"] = value
        # A trial run again (a retry, or a resumed search) replaces its earlier epochs.
        rows[(trial_id, row[run_key], row["epoch"])] = row
    base_columns = FOLD_HISTORY_COLUMNS if by_fold else HISTORY_COLUMNS
    columns = base_columns + metric_names + [f"hp_{name}" for name in hyperparameter_names]
    return pandas.DataFrame(list(rows.values()), columns=columns)


def load_trials(path_or_run_dir: str | os.PathLike) -> pandas.DataFrame:
    """Reads one row per trial: how it ended, its score and its hyperparameters.

    Args:
        path_or_run_dir: A `histories.jsonl` file, or a directory holding one.

    Returns:
        One row per trial in the order the trials started, with columns `trial_id`,
        `status`, `reason`, `score`, `best_epoch`, `epochs` (epochs trained in this
        trial), `target_epochs`, `initial_epoch`, `bracket`, `round`,
        `parent_trial_id`, `promoted_to` (the trial that continued this one, for
        Hyperband), `seconds`, `oracle_status`, `fold_scores`, `epochs_trained` (every
        fold's and execution's epochs: the trial's cost), `outcome`, then one `hp_<name>`
        column per hyperparameter. `outcome` is the status, except that a
        Hyperband trial that ended below the largest budget is `promoted` (another trial
        continued it) or `not_promoted` (its bracket went on without it).

    Raises:
        HistoryFileError: If no histories file is found, or files lie in several
            directories.
    """
    records = _read_records(path_or_run_dir)
    starts, ends = _starts_and_ends(records)
    children: dict[str, str] = {}
    for trial_id, start in starts.items():
        parent = start.get("parent_trial_id")
        if parent is not None and parent not in children:
            children[parent] = trial_id
    epochs_seen: dict[str, set] = {}
    for record in records:
        if record.get("event") == "epoch":
            epochs_seen.setdefault(record.get("trial_id"), set()).add(record.get("epoch"))
    rows = []
    hyperparameter_names: list[str] = []
    for trial_id, start in starts.items():
        end = ends.get(trial_id, {})
        row = {
            "trial_id": trial_id,
            "status": end.get("status", "incomplete"),
            "reason": end.get("reason"),
            "score": end.get("score"),
            "best_epoch": end.get("best_epoch"),
            "epochs": end.get("epochs", len(epochs_seen.get(trial_id, ()))),
            "target_epochs": start.get("target_epochs"),
            "initial_epoch": start.get("initial_epoch"),
            "bracket": start.get("bracket"),
            "round": start.get("round"),
            "parent_trial_id": start.get("parent_trial_id"),
            "promoted_to": children.get(trial_id),
            "seconds": end.get("seconds"),
            "oracle_status": end.get("oracle_status"),
            "fold_scores": end.get("fold_scores"),
        }
        for name, value in _hyperparameters_of(trial_id, starts, ends).items():
            if name not in hyperparameter_names:
                hyperparameter_names.append(name)
            row[f"hp_{name}"] = value
        rows.append(row)
    largest_budget = max((row["target_epochs"] or 0 for row in rows), default=0)
    for row in rows:
        row["outcome"] = _outcome(row, largest_budget)
        row["epochs_trained"] = ends.get(row["trial_id"], {}).get("epochs_trained",
                                                                  row["epochs"])
    columns = (TRIAL_COLUMNS + ["epochs_trained", "outcome"]
               + [f"hp_{name}" for name in hyperparameter_names])
    return pandas.DataFrame(rows, columns=columns)


def _outcome(row: dict[str, Any], largest_budget: int) -> str:
    below_largest = row["bracket"] is not None and (row["target_epochs"] or 0) < largest_budget
    if row["status"] in ("completed", "stopped_early") and below_largest:
        return "promoted" if row["promoted_to"] is not None else "not_promoted"
    return row["status"]


def find_history_files(path_or_run_dir: str | os.PathLike) -> list[pathlib.Path]:
    """Returns the histories files at `path_or_run_dir`, or those inside that directory.

    A run directory holds `histories.jsonl`, or one `histories-<tuner_id>.jsonl` per
    distributed worker, or both; a directory without any at its top is searched
    recursively.

    Raises:
        HistoryFileError: If there is none, or they lie in several directories.
    """
    path = pathlib.Path(path_or_run_dir)
    if path.is_file():
        return [path]
    if path.is_dir():
        found = _history_files_in(path)
        if found:
            return found
        nested = sorted({candidate.parent for pattern in (HISTORY_FILENAME,
                                                          WORKER_HISTORY_PATTERN)
                         for candidate in path.rglob(pattern) if candidate.is_file()})
        if len(nested) == 1:
            return _history_files_in(nested[0])
        if len(nested) > 1:
            listed = ", ".join(str(directory) for directory in nested)
            raise HistoryFileError(
                f"{path} holds {HISTORY_FILENAME} files in several directories ({listed}); "
                f"pass one of them"
            )
    raise HistoryFileError(
        f"no {HISTORY_FILENAME} at {path}; pass a run directory or the file itself"
    )


def _history_files_in(directory: pathlib.Path) -> list[pathlib.Path]:
    single = [directory / HISTORY_FILENAME] if (directory / HISTORY_FILENAME).is_file() else []
    return single + sorted(candidate for candidate in directory.glob(WORKER_HISTORY_PATTERN)
                           if candidate.is_file())


@dataclasses.dataclass
class _Attempt:
    """One run of one trial in one file: its records from its `trial_start` on."""

    trial_id: Any
    time: str
    position: tuple[int, int]
    records: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    superseded: bool = False
    latest_in_file: bool = True

    @property
    def ended(self) -> bool:
        return any(record.get("event") == "trial_end" for record in self.records)

    @property
    def epochs(self) -> int:
        return sum(record.get("event") in ("epoch", "fold_epoch") for record in self.records)


def _read_attempts(files: Sequence[pathlib.Path]) -> list[_Attempt]:
    """Splits each file's records into attempts, in file order."""
    attempts: list[_Attempt] = []
    for file_index, path in enumerate(files):
        current: dict[Any, _Attempt] = {}
        for line_number, record in _read_file(path):
            trial_id = record.get("trial_id")
            event = record.get("event")
            if event == SUPERSEDED:
                if trial_id in current:
                    current[trial_id].superseded = True
                continue
            if event == "trial_start" or trial_id not in current:
                if trial_id in current:
                    current[trial_id].latest_in_file = False
                started = record.get("time") if event == "trial_start" else None
                current[trial_id] = _Attempt(trial_id, str(started or ""),
                                             (file_index, line_number))
                attempts.append(current[trial_id])
            current[trial_id].records.append(record)
    return attempts


def _read_records(path_or_run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of each trial's latest attempt, trial by trial as they first started.

    Within one file the later line wins; across files (distributed workers) the later
    `trial_start` time does, then the file order.
    """
    files = find_history_files(path_or_run_dir)
    attempts = _read_attempts(files)

    def order(attempt: _Attempt) -> tuple:
        return (attempt.time, attempt.position) if len(files) > 1 else attempt.position

    first: dict[Any, tuple] = {}
    latest: dict[Any, _Attempt] = {}
    for attempt in attempts:
        key = order(attempt)
        if attempt.trial_id not in first or key < first[attempt.trial_id]:
            first[attempt.trial_id] = key
        if attempt.superseded:
            continue
        if attempt.trial_id not in latest or key > order(latest[attempt.trial_id]):
            latest[attempt.trial_id] = attempt
    trial_ids = sorted(latest, key=lambda trial_id: first[trial_id])
    return [record for trial_id in trial_ids for record in latest[trial_id].records]


def _read_file(path: pathlib.Path) -> list[tuple[int, dict[str, Any]]]:
    lines = path.read_text(encoding="utf-8").split("\n")
    last_line = max((number for number, line in enumerate(lines) if line.strip()), default=-1)
    records = []
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            # The last line is cut short when the search crashes while writing it.
            if number != last_line:
                warnings.warn(
                    f"{path}:{number + 1}: skipped a line that is not valid JSON (a record "
                    f"cut short by a crash)",
                    stacklevel=5,
                )
            continue
        if isinstance(record, dict):
            records.append((number, record))
    return records


def _starts_and_ends(
    records: list[dict[str, Any]],
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    starts: dict[str, dict[str, Any]] = {}
    ends: dict[str, dict[str, Any]] = {}
    for record in records:
        if record.get("event") == "trial_start":
            starts[record.get("trial_id")] = record
            # A trial that starts again (a retry) has not ended yet.
            ends.pop(record.get("trial_id"), None)
        elif record.get("event") == "trial_end":
            ends[record.get("trial_id")] = record
    return starts, ends


def _hyperparameters_of(
    trial_id: str, starts: dict[str, dict[str, Any]], ends: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    hyperparameters = dict(starts.get(trial_id, {}).get("hyperparameters") or {})
    hyperparameters.update(ends.get(trial_id, {}).get("hyperparameters") or {})
    return hyperparameters


def _check_folds(folds: Sequence[Any] | None) -> None:
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
    values = [_to_float(value) for value in history[objective.name]]
    finite = [epoch for epoch, value in enumerate(values) if math.isfinite(value)]
    if not finite:
        best = 0
    elif objective.direction == "max":
        best = max(finite, key=lambda epoch: values[epoch])
    else:
        best = min(finite, key=lambda epoch: values[epoch])
    return {name: _to_float(epoch_values[best]) for name, epoch_values in history.items()
            if len(epoch_values) > best}


def _mean_metrics(metrics_list: list[dict[str, float]]) -> dict[str, float]:
    names: list[str] = []
    for metrics in metrics_list:
        names.extend(name for name in metrics if name not in names)
    return {
        name: statistics.fmean(metrics[name] for metrics in metrics_list if name in metrics)
        for name in names
    }


def _plain_hyperparameters(values: dict[str, Any]) -> dict[str, Any]:
    return {name: to_json_value(value) for name, value in values.items()
            if not name.startswith("tuner/")}


def _to_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def to_json_value(value: Any) -> Any:
    """Converts to what `json.dumps(allow_nan=False)` accepts: NaN and infinity become None."""
    if isinstance(value, dict):
        return {str(key): to_json_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(item) for item in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _last_line(message: str | None) -> str | None:
    if not message:
        return None
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return lines[-1] if lines else None
