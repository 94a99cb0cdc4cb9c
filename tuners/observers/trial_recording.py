"""What the running trial has recorded, and how ktlab reads how it ended.

`tuners.tuner.Tuner` fills a `TrialRecording` from keras-tuner's hooks while a trial
trains (one trial at a time), and its observers read it; the recorder
(`tuners.observers.recorder`) reads it when the trial ends: the status and reason that
`histories.jsonl` and `trials.csv` give (`trial_status`), and the best epoch
(`best_epoch`).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from typing import Any

from keras_tuner.engine import trial as trial_module

from tuners.results.records import to_json_value


@dataclasses.dataclass
class EpochRecord:
    """One epoch of one training run (an execution, or a walk-forward fold)."""

    run: int
    fold: Any
    epoch: int
    seconds: float
    metrics: dict[str, float]


@dataclasses.dataclass
class TrialRecording:
    """What the running trial has recorded so far; the tuner runs one trial at a time."""

    trial_id: str
    started: float
    initial_epoch: int
    target_epochs: int
    run: int = -1
    fold: Any = None
    epoch_started: float | None = None
    epochs: list[EpochRecord] = dataclasses.field(default_factory=list)
    non_finite_epoch: int | None = None
    fold_scores: list[float] | None = None
    model: Any = None
    # Why an observer stopped the trial before its last epoch (a pruner's sentence).
    stopped_reason: str | None = None


def trial_status(oracle_trial: Any, recording: TrialRecording) -> tuple[str, str | None]:
    """The status and reason the histories give a trial that ended.

    Args:
        oracle_trial: The oracle's copy of the trial, with keras-tuner's status.
        recording: What the trial recorded.

    Returns:
        `("failed", reason)`, `("pruned", reason)` for a trial an observer stopped
        (`tuners.observers.pruning`), `("stopped_early", reason)` or `("completed", None)`.
    """
    status, reason = _ended(oracle_trial, recording)
    # A failure (a NaN objective, an exception) says more than the pruning.
    if recording.stopped_reason is not None and status in ("stopped_early", "completed"):
        return "pruned", recording.stopped_reason
    return status, reason


def _ended(oracle_trial: Any, recording: TrialRecording) -> tuple[str, str | None]:
    if recording.non_finite_epoch is not None:
        epoch = recording.non_finite_epoch
        return "failed", f"loss or objective became NaN or infinite at epoch {epoch}"
    if oracle_trial.status not in (trial_module.TrialStatus.COMPLETED,
                                   trial_module.TrialStatus.STOPPED):
        return "failed", last_line(oracle_trial.message) or "the objective was NaN"
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


def best_epoch(recording: TrialRecording, objective: Any) -> int | None:
    """The epoch whose objective, averaged over runs, is best; the earliest of a tie."""
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


def plain_hyperparameters(values: dict[str, Any]) -> dict[str, Any]:
    """The trial's own hyperparameters as JSON values, without keras-tuner's `tuner/` ones."""
    return {name: to_json_value(value) for name, value in values.items()
            if not name.startswith("tuner/")}


def last_line(message: str | None) -> str | None:
    """The last non-empty line of keras-tuner's message (a traceback's error line)."""
    if not message:
        return None
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return lines[-1] if lines else None
