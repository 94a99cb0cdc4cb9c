"""Records every trial's learning curve to `histories.jsonl` while the search runs.

keras-tuner keeps only each trial's best-epoch metrics, and it deep-copies the callbacks
given to `search()` for every trial (keras-team/keras-tuner#392), so a callback that
collects history on itself fills copies that are thrown away. `HistoryMixin` records
from the tuner's own hooks instead, which see the trial, and appends one JSON object per
line, flushed as each epoch ends so that a crash keeps what ran. `tuners.records`
describes the records and reads them back; `tuners.walk_forward` trains a trial on each
fold.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import pathlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from keras_tuner.engine import trial as trial_module

from tuners import keras_tuner_internals, measures, trial_recording, walk_forward
from tuners.errors import TunerConfigError
from tuners.records import HISTORY_FILENAME, SUPERSEDED, _read_attempts, to_float, to_json_value

# How long a distributed worker waits before asking again when the chief has no trial for
# it yet (Hyperband waiting for a round to finish); keras-tuner asks again at once.
IDLE_WAIT_SECONDS = 0.5
VALIDATIONS = walk_forward.VALIDATIONS

class HistoryMixin(walk_forward.WalkForwardMixin):
    """Adds per-trial histories and walk-forward validation to a keras-tuner `Tuner`.

    Put it before the keras-tuner class: `class MyTuner(HistoryMixin, keras_tuner.Tuner)`.
    Only one process writes a file: give each distributed worker its own `history_path`
    (`histories-<tuner_id>.jsonl` beside the others); the readers merge them.

    On a resumed search (`overwrite=False` on an existing project), a trial that the file
    shows started but never ended, and that keras-tuner will run again, is marked
    superseded before the search continues.

    With `validation="walk_forward"`, each trial trains a model on every fold's data
    (which replaces any `x`, `y` or `validation_data` given to `search()`), its score is
    the mean over folds of each fold's best objective value, and the weights kept for
    `get_best_models()` are those of the last fold, the one nearest the present. A
    promoted trial of an epoch-budget tuner continues each fold from its parent's
    checkpoint of that fold (`tuners.walk_forward`).

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
        extra_objectives: Names of the search's objectives besides the oracle's; the
            measures among them (`tuners.measures`) are taken on each trained model and
            reported as metrics, and the `trial_end` record gives all their values.
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
        extra_objectives: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        if validation not in VALIDATIONS:
            raise TunerConfigError(
                f"unknown validation {validation!r}; use one of {', '.join(VALIDATIONS)}"
            )
        if validation == "walk_forward":
            walk_forward.check_folds(folds)
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
        self.extra_objectives = list(extra_objectives)
        self._recording: trial_recording.TrialRecording | None = None
        self._trial_summaries: dict[str, dict[str, Any]] = {}
        # The `trial_end` record of each trial this tuner ended, latest attempt last, for
        # the observers that keep counts in memory (`tuners.epoch_limit`).
        self.trial_end_records: dict[str, dict[str, Any]] = {}
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
        self._recording = trial_recording.TrialRecording(
            trial_id=trial.trial_id,
            started=time.perf_counter(),
            initial_epoch=initial_epoch,
            target_epochs=target_epochs,
        )
        summary = {
            "trial_id": trial.trial_id,
            "hyperparameters": trial_recording.plain_hyperparameters(values),
            "bracket": values.get("tuner/bracket"),
            "round": values.get("tuner/round"),
            "parent_trial_id": values.get("tuner/trial_id"),
            "initial_epoch": initial_epoch,
            "target_epochs": target_epochs,
            "validation": self.validation,
            "folds": len(self.folds) if self.folds is not None else None,
        }
        if "tuner/member" in values:
            # Population-based training (tuners.oracles.pbt): the member, and the member
            # whose checkpoint it copied after an exploit (None when it continued its own).
            summary["member"] = values["tuner/member"]
            summary["exploited_from"] = values.get("tuner/exploited_from")
        if "tuner/origin" in values:
            # BOHB (tuners.oracles.bohb): "model", "random" or "promoted".
            summary["origin"] = values["tuner/origin"]
        self._trial_summaries[trial.trial_id] = summary
        self._write({"event": "trial_start", **summary,
                     "time": datetime.datetime.now(datetime.UTC).isoformat()})
        if self.validation == "walk_forward":
            return self._run_walk_forward_trial(trial, **kwargs)
        return super().run_trial(trial, *args, **kwargs)

    def build_and_fit(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        # keras-tuner calls this once per execution, and the walk-forward loop once per
        # fold, so it marks where one training run ends and the next begins.
        recording = self._recording
        if recording is not None:
            recording.run += 1
            recording.model = None
        results = super().build_and_fit(trial, *args, **kwargs)
        measured = [name for name in self.extra_objectives if name in measures.MEASURED]
        if measured and recording is not None and recording.model is not None:
            values = measures.measure_model(
                recording.model, measures.first_batch(kwargs.get("validation_data")), measured)
            recording.model = None
            results = measures.with_measures(results, values, self.oracle.objective.name)
        return results

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
            metrics = {name: to_float(value) for name, value in (logs or {}).items()}
            record = trial_recording.EpochRecord(
                run=max(recording.run, 0), fold=recording.fold, epoch=int(epoch),
                seconds=seconds, metrics=metrics,
            )
            recording.epochs.append(record)
            recording.model = model
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
        self._settle_oracle_status(trial)
        try:
            super().on_trial_end(trial)
        except BaseException:
            # Do not ask a chief that may be gone: its answer would wait for the timeout.
            self._finish_trial(trial, ask_chief=False)
            raise
        self._finish_trial(trial)

    def stops_trial(self, trial_id: str) -> bool:
        """Whether an observer stopped the trial before its last epoch (a pruner does)."""
        return False

    def _settle_oracle_status(self, trial: Any) -> None:
        """Tells keras-tuner how the trial ended, before its `end_trial` records it.

        keras-tuner completes every trial whose `fit()` returned: one whose loss went NaN
        after its first epoch keeps the score of the epochs before it, and a pruned one
        reads as finished. keras-tuner's records (`trial.json`, `oracle.trials`,
        `get_best_trials`) are the record of how each trial ended, so such a trial is
        sent as INVALID (keras-tuner retries it `max_retries_per_trial` times, then
        fails it, as it does a trial that raised), and a pruned one as STOPPED, with the
        score of its best epoch so far.
        """
        recording = self._recording
        if (trial.status != trial_module.TrialStatus.COMPLETED or recording is None
                or recording.trial_id != trial.trial_id):
            return
        if recording.non_finite_epoch is not None:
            trial.status = trial_module.TrialStatus.INVALID
            trial.message = (f"loss or objective became NaN or infinite at epoch "
                             f"{recording.non_finite_epoch}")
        elif self.stops_trial(trial.trial_id):
            trial.status = trial_module.TrialStatus.STOPPED
            # In one process the trial is the oracle's own; a worker's chief scores its
            # copy when it hears of the trial (`keras_tuner_internals.make_chief_servicer`).
            oracle_trials = getattr(self.oracle, "trials", None)
            if oracle_trials is not None and trial.trial_id in oracle_trials:
                keras_tuner_internals.score_stopped_trial(
                    self.oracle, oracle_trials[trial.trial_id])

    # Walk-forward validation.

    def _finish_trial(self, trial: Any, ask_chief: bool = True) -> None:
        recording = self._recording
        self._recording = None
        oracle_trial = self._oracle_trial(trial.trial_id, ask_chief=ask_chief) or trial
        if recording is None or recording.trial_id != trial.trial_id:
            recording = trial_recording.TrialRecording(trial.trial_id, time.perf_counter(), 0, 0)
        if self.validation == "walk_forward":
            self._write_fold_means(recording)
        status, reason = self._trial_status(oracle_trial, recording)
        score = to_float(oracle_trial.score) if oracle_trial.score is not None else None
        if status == "failed":
            score = None
        trained = {record.epoch for record in recording.epochs}
        record = {
            "event": "trial_end",
            "trial_id": trial.trial_id,
            "status": status,
            "reason": reason,
            "score": score,
            "best_epoch": trial_recording.best_epoch(recording, self.oracle.objective),
            "epochs": len(trained),
            # The cost: every fold's and every execution's epochs, not only the curve's.
            "epochs_trained": len(recording.epochs),
            "target_epochs": recording.target_epochs,
            "seconds": time.perf_counter() - recording.started,
            "oracle_status": str(oracle_trial.status),
            "fold_scores": recording.fold_scores,
            "hyperparameters": trial_recording.plain_hyperparameters(
                oracle_trial.hyperparameters.values),
        }
        if self.extra_objectives:
            record["objectives"] = measures.last_values(oracle_trial, self.extra_objectives)
        self._write(record)
        self.trial_end_records[trial.trial_id] = record
        if self._trial_end_listener is not None:
            start = self._trial_summaries.get(trial.trial_id, {})
            context = {key: start.get(key) for key in
                       ("bracket", "round", "parent_trial_id", "initial_epoch")}
            self._trial_end_listener({**to_json_value(record), **context})

    def _trial_status(
        self, oracle_trial: Any, recording: trial_recording.TrialRecording
    ) -> tuple[str, str | None]:
        return trial_recording.trial_status(oracle_trial, recording)

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
