"""The search's trial listener: a line per finished trial, and checkpoints let go of.

The recorder (`tuners.observers.recorder`) hands it each trial's `trial_end` record; the
distributed chief, whose workers write their own histories files, asks it to read what
they appended (`update_statuses`).
"""

from __future__ import annotations

import pathlib
import warnings
from typing import Any

import tuners
from pipelines.config import Config
from pipelines.run import progress
from tuners.observers import checkpoints
from tuners.results import trial_curves


class TrialEndListener:
    """Logs each finished trial and deletes the checkpoints no one will load again.

    It keeps each trial's status as the histories record it, from the `trial_end` record
    it is given, so it never reads the histories again; a resumed search (and the
    distributed chief, whose workers write their own files) reads them.
    """

    def __init__(self, config: Config, run_dir: pathlib.Path, folds: Any, *,
                 resuming: bool = False) -> None:
        self.run_dir = run_dir
        self.prune = not config.run.keep_checkpoints
        self.tuner: Any = None
        self.statuses: dict[str, str] = {}
        self.objective = config.tuner.objective
        self._curves: trial_curves.TrialCurves | None = None
        plan = progress.Plan.of(config.tuner, folds=len(folds) if folds else 1)
        self.progress = progress.Progress(plan, config.tuner.objective, config.direction)
        if resuming:
            trials = self.read_statuses()
            if trials is not None:
                ended = trials[trials["status"] != "incomplete"]
                best = tuners.best_trial_id(ended, config.direction)
                self.progress = progress.Progress(
                    plan, config.tuner.objective, config.direction, done_trials=len(ended),
                    done_epochs=int(ended["epochs_trained"].sum()),
                    best=None if best is None else float(
                        ended.set_index("trial_id").loc[best, "score"]))

    def __call__(self, record: dict[str, Any]) -> None:
        self.statuses[record["trial_id"]] = record["status"]
        self.progress(record)
        self.prune_now()

    def update_statuses(self) -> None:
        """Adds the statuses of the trials ended since the last call, from every histories
        file, reading only what was appended (the distributed chief, after each poll)."""
        if self._curves is None:
            self._curves = trial_curves.TrialCurves(self.run_dir / "histories.jsonl",
                                                    self.objective)
        self._curves.update()
        self.statuses.update(self._curves.statuses)

    def read_statuses(self) -> Any:
        """Reads every trial's status from the histories files; returns the trials."""
        try:
            trials = tuners.load_trials(self.run_dir)
        except tuners.HistoryFileError:
            return None
        self.statuses.update(zip(trials["trial_id"], trials["status"], strict=True))
        return trials

    def prune_now(self) -> None:
        if not self.prune or self.tuner is None:
            return
        try:
            checkpoints.prune_checkpoints(self.tuner, self.statuses)
        except OSError as error:
            # A checkpoint that cannot be deleted costs disk space, not the search.
            warnings.warn(f"could not delete a checkpoint ({error})", stacklevel=2)
