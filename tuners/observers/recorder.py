"""Records every trial's learning curve to `histories.jsonl` while the search runs.

keras-tuner keeps only each trial's best-epoch metrics, and it deep-copies the callbacks
given to `search()` for every trial (keras-team/keras-tuner#392), so a callback that
collects history on itself fills copies that are thrown away. `Recorder` is a trial
observer (`tuners.observers.trial_observer`) of `tuners.tuner.Tuner`, whose hooks see the trial; it
appends one JSON object per line, flushed as each epoch ends so that a crash keeps what
ran. `tuners.results.records` describes the records and reads them back.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import time
from collections.abc import Callable
from typing import Any

from tuners.observers import trial_observer, trial_recording
from tuners.results import measures
from tuners.results.records import (
    HISTORY_FILENAME,
    SUPERSEDED,
    _read_attempts,
    to_float,
    to_json_value,
)
from tuners.runners import walk_forward


class Recorder(trial_observer.TrialObserver):
    """Writes each trial's start, epochs and end to the histories file.

    Only one process writes a file: give each distributed worker its own `history_path`
    (`histories-<tuner_id>.jsonl` beside the others); the readers merge them.

    On a resumed search (`overwrite=False` on an existing project), a trial that the file
    shows started but never ended, and that keras-tuner will run again, is marked
    superseded before the search continues.

    ```python
    tuner = tuners.tuner.Tuner(oracle=oracle, hypermodel=hypermodel, directory="runs",
                               recorder=Recorder(history_path="runs/histories.jsonl"))
    ```

    Args:
        history_path: Where to append the records; defaults to `histories.jsonl` in the
            tuner's project directory. With `overwrite=True` an existing file is emptied.
        trial_end_listener: Optional callable given each finished trial's summary: the
            `trial_end` record plus `bracket`, `round`, `parent_trial_id` and
            `initial_epoch`.
    """

    def __init__(
        self,
        history_path: str | os.PathLike | None = None,
        trial_end_listener: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.history_path = None if history_path is None else os.fspath(history_path)
        self._trial_end_listener = trial_end_listener
        self._trial_summaries: dict[str, dict[str, Any]] = {}
        self._history_checked = False

    def attach(self, tuner: Any) -> None:
        """Settles the file's path; empties it on `overwrite`, else supersedes the unfinished."""
        if self.history_path is None:
            self.history_path = os.path.join(tuner.project_dir, HISTORY_FILENAME)
        if tuner.overwrite and os.path.exists(self.history_path):
            os.remove(self.history_path)
        elif os.path.exists(self.history_path):
            self._supersede_interrupted_trials(tuner)

    def on_trial_begin(self, tuner: Any, trial: Any) -> None:
        """Writes the trial's `trial_start` record."""
        values = trial.hyperparameters.values
        recording = tuner.recording
        runner = tuner.runner
        summary = {
            "trial_id": trial.trial_id,
            "hyperparameters": trial_recording.plain_hyperparameters(values),
            "bracket": values.get("tuner/bracket"),
            "round": values.get("tuner/round"),
            "parent_trial_id": values.get("tuner/trial_id"),
            "initial_epoch": recording.initial_epoch,
            "target_epochs": recording.target_epochs,
            "validation": runner.name,
            "folds": len(runner.folds) if runner.folds is not None else None,
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

    def on_epoch_end(self, tuner: Any, trial: Any, model: Any, epoch: int,
                     logs: dict[str, Any]) -> str | None:
        """Appends the epoch's metrics and wall time, as the tuner recorded them."""
        recording = tuner.recording
        if recording is None or recording.trial_id != trial.trial_id:
            return None
        record = recording.epochs[-1]
        if tuner.runner.name == "walk_forward":
            self._write({"event": "fold_epoch", "trial_id": trial.trial_id,
                         "fold": record.fold, "epoch": record.epoch,
                         "seconds": record.seconds, "metrics": record.metrics})
        else:
            self._write({"event": "epoch", "trial_id": trial.trial_id,
                         "execution": record.run, "epoch": record.epoch,
                         "seconds": record.seconds, "metrics": record.metrics})
        return None

    def on_trial_end(self, tuner: Any, trial: Any, recording: Any,
                     ask_chief: bool = True) -> None:
        """Writes the trial's `trial_end` record and tells the listener.

        The tuner calls it even when keras-tuner ends the search at this trial, because
        too many trials failed in a row or a distributed worker lost its chief; then
        with `ask_chief=False`, so as not to wait for a chief that may be gone.
        """
        oracle_trial = oracle_trial_of(tuner, trial.trial_id, ask_chief=ask_chief) or trial
        if tuner.runner.name == "walk_forward":
            for record in walk_forward.fold_mean_records(recording):
                self._write(record)
        status, reason = trial_recording.trial_status(oracle_trial, recording)
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
            "best_epoch": trial_recording.best_epoch(recording, tuner.oracle.objective),
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
        if tuner.extra_objectives:
            record["objectives"] = measures.last_values(oracle_trial, tuner.extra_objectives)
        self._write(record)
        if self._trial_end_listener is not None:
            start = self._trial_summaries.get(trial.trial_id, {})
            context = {key: start.get(key) for key in
                       ("bracket", "round", "parent_trial_id", "initial_epoch")}
            self._trial_end_listener({**to_json_value(record), **context})

    def _supersede_interrupted_trials(self, tuner: Any) -> None:
        """Marks the attempts that a resumed search will run again as superseded.

        keras-tuner saves a trial as RUNNING when it starts and, on reloading, runs every
        trial still RUNNING again under the same id. A trial the oracle does not know (a
        file written by another search) keeps its records and reads as incomplete.
        """
        for attempt in _read_attempts([pathlib.Path(self.history_path)]):
            if attempt.superseded or attempt.ended or not attempt.latest_in_file:
                continue
            oracle_trial = oracle_trial_of(tuner, attempt.trial_id)
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


def oracle_trial_of(tuner: Any, trial_id: str, ask_chief: bool = True) -> Any:
    """The oracle's copy of a trial (with its score), or None when it has none.

    A distributed worker's oracle is keras-tuner's `OracleClient`, which has no
    `trials`; it asks the chief instead.
    """
    trials = getattr(tuner.oracle, "trials", None)
    if trials is not None:
        return trials.get(trial_id)
    if not ask_chief:
        return None
    import grpc

    try:
        return tuner.oracle.get_trial(trial_id)
    except grpc.RpcError:
        return None
