"""Readers of `histories.jsonl`: the per-trial records that `tuners.observers.recorder` writes.

This module needs neither TensorFlow nor keras-tuner, so reports, plots and notebooks
read a run directory quickly.

Records, one per line, in the order they happen:

- `{"event": "trial_start", "trial_id", "hyperparameters", "bracket", "round",
  "parent_trial_id", "initial_epoch", "target_epochs", "validation", "folds", "time"}`,
  plus `"member"` and `"exploited_from"` for population-based training, and `"origin"`
  for BOHB (`"model"`, `"random"` or `"promoted"`).
- `{"event": "epoch", "trial_id", "execution", "epoch", "seconds", "metrics"}`, where
  `epoch` is Keras's absolute, 0-based epoch index, so a Hyperband configuration resumed
  from its parent continues the parent's numbering; with walk-forward validation it is
  written when the trial ends, holds the mean over folds, and adds `"folds"` (how many
  folds reached that epoch) and `"metrics_by_fold"`.
- `{"event": "fold_epoch", "trial_id", "fold", "epoch", "seconds", "metrics"}`, written
  live for each fold of a walk-forward trial.
- `{"event": "trial_end", "trial_id", "status", "reason", "score", "best_epoch",
  "epochs", "target_epochs", "seconds", "oracle_status", "fold_scores",
  "hyperparameters"}`, and, in a search with several objectives, `"objectives"`: the
  value of each objective after the first (`{"params": 1234, "latency_ms": 0.8}`).
- `{"event": "superseded", "trial_id", "epochs", "reason", "time"}`, written when a
  resumed search (or a restarted distributed worker) is about to run again a trial that
  was interrupted: the records of that trial's attempt before it are left in the file
  but no longer count.

`status` is one of `"completed"`, `"stopped_early"` (fewer epochs than its budget, for
example by `EarlyStopping`), `"pruned"` (stopped by a pruner, `tuners.observers.pruning`; `reason`
gives the rule's numbers) or `"failed"` (an exception, or a NaN or infinite loss).
keras-tuner's own record agrees (`oracle_status`, `trial.json`): a completed or
stopped-early trial is `"COMPLETED"`, a pruned one `"STOPPED"` and a failed one
`"FAILED"`. Non-finite numbers are written as `null`.

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
import json
import os
import pathlib
import warnings
from collections.abc import Sequence
from typing import Any

import pandas

from tuners.errors import HistoryFileError
from tuners.results.json_values import to_float, to_json_value  # noqa: F401  (ktlab's callers import them from here)

HISTORY_FILENAME = "histories.jsonl"
# One file per distributed worker: `histories-<tuner_id>.jsonl`.
WORKER_HISTORY_PATTERN = "histories-*.jsonl"
SUPERSEDED = "superseded"
STATUSES = ("completed", "stopped_early", "pruned", "failed", "incomplete")
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
        column per hyperparameter; a search with several objectives adds one column per
        objective after the first (`params`, `latency_ms`, ...) before them. `outcome` is
        the status, except that a
        Hyperband trial that ended below the largest budget is `promoted` (another trial
        continued it) or `not_promoted` (its bracket went on without it). A
        population-based training run adds `member` and `exploited_from` (the member
        whose checkpoint the trial copied, empty when it continued its own) after
        `outcome`; a BOHB run adds `origin` there: `model` (a configuration its density
        model proposed), `random` or `promoted` (a Hyperband promotion).

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
    objective_names: list[str] = []
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
        if "member" in start:
            # Population-based training: the member and whom it copied (tuners.oracles.pbt).
            row.update(member=start["member"], exploited_from=start.get("exploited_from"))
        if "origin" in start:
            # BOHB: whether the configuration came from its model, at random, or is a
            # promotion (tuners.oracles.bohb).
            row["origin"] = start["origin"]
        for name, value in (end.get("objectives") or {}).items():
            if name not in objective_names and name not in row:
                objective_names.append(name)
            row.setdefault(name, value)
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
    population = (["member", "exploited_from"]
                  if any("member" in start for start in starts.values()) else [])
    population += ["origin"] if any("origin" in start for start in starts.values()) else []
    columns = (TRIAL_COLUMNS + ["epochs_trained", "outcome"] + population + objective_names
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
