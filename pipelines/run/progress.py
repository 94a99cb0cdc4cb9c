"""Progress of a search, through the `logging` module: one line per finished trial.

```
trial 7/23 · 3 epochs · 4.1 s · best val_loss 0.2267 · elapsed 0:41 · left ~1:12
```

The number of trials and epochs is known beforehand: Hyperband's from its schedule, the
others' from `max_trials` (an upper bound when early stopping ends trials sooner). The
time left is the epochs left times the mean time of an epoch so far.

Every line goes to the `ktlab` logger, so a notebook or a library user can redirect or
silence it; `ktlab --quiet` shows only errors and the final summary.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import sys
import time
from collections.abc import Iterator
from typing import Any

from pipelines.run import summary as report
from tuners.registry import TUNERS
from tuners.results import objectives

LOGGER = logging.getLogger("ktlab")


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever `sys.stdout` is when a record is emitted (notebooks, capsys)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, value: Any) -> None:
        # `logging.StreamHandler` sets it once; the property always follows sys.stdout.
        pass


@contextlib.contextmanager
def muted(mute: bool = True) -> Iterator[None]:
    """Raises the `ktlab` logger to warnings for a while (`run_search(verbose=False)`)."""
    if not mute:
        yield
        return
    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)
    try:
        yield
    finally:
        LOGGER.setLevel(level)


@contextlib.contextmanager
def logging_restored() -> Iterator[None]:
    """Puts the root and `ktlab` loggers' handlers, levels and propagation back on exit.

    A search shows its progress through the `ktlab` logger (`show_progress`); a notebook
    that runs it keeps the logging it had before.
    """
    root = logging.getLogger()
    saved = [(logger, list(logger.handlers), logger.level, logger.propagate)
             for logger in (root, LOGGER)]
    try:
        yield
    finally:
        for logger, handlers, level, propagate in saved:
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate


def show_progress(level: int | None = None, *, to_stdout: bool = False) -> None:
    """Shows ktlab's progress lines on standard output, unless logging is set up already.

    A program that configured logging itself (a handler on the root logger or on
    `ktlab`) keeps its own handlers.

    Args:
        level: The level to show (`logging.WARNING` for `--quiet`); None keeps a level
            set before, or shows `logging.INFO` when none was.
        to_stdout: Write to standard output even when logging is set up (the `ktlab`
            command, whose output is the terminal's).
    """
    if level is not None:
        LOGGER.setLevel(level)
    elif LOGGER.level == logging.NOTSET:
        LOGGER.setLevel(logging.INFO)
    ours = any(isinstance(handler, _StdoutHandler) for handler in LOGGER.handlers)
    if not ours and (to_stdout or not (LOGGER.handlers or logging.getLogger().handlers)):
        handler = _StdoutHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        LOGGER.addHandler(handler)
        LOGGER.propagate = False


@dataclasses.dataclass
class Plan:
    """How many trials and epochs a search plans."""

    trials: int
    epochs: int

    @classmethod
    def of(cls, tuner: Any, folds: int = 1) -> Plan:
        """The plan of a `pipelines.config.TunerConfig`; each fold trains its own epochs."""
        if TUNERS[tuner.name].budget == "epochs":
            # Hyperband's schedule, or the oracle's own plan (population-based training).
            trials, epochs = TUNERS[tuner.name].planned_budget(
                tuner.max_epochs, tuner.factor, tuner.hyperband_iterations, tuner.options)
            return cls(trials, epochs * tuner.executions_per_trial * folds)
        runs = tuner.executions_per_trial * folds
        return cls(tuner.max_trials, tuner.max_trials * tuner.max_epochs * runs)


class Progress:
    """Logs a line per finished trial, with the count, the best score and the time left.

    Args:
        plan: The trials and epochs the search plans.
        objective: The objective's name.
        direction: `min` or `max`.
        done_trials: Trials that had finished before (a resumed search).
        done_epochs: Epochs those trials trained.
        best: The best score among them, or None.
    """

    def __init__(self, plan: Plan, objective: str, direction: str, *, done_trials: int = 0,
                 done_epochs: int = 0, best: float | None = None) -> None:
        self.plan = plan
        self.objective = objective
        self.direction = direction
        self.trials = done_trials
        self.epochs = done_epochs
        self.new_epochs = 0
        self.best = best
        self.started = time.perf_counter()

    def __call__(self, record: dict[str, Any]) -> None:
        """Takes a `trial_end` record (see `tuners.results.records`) and logs its line."""
        self.trials += 1
        trained = int(record.get("epochs_trained") or record.get("epochs") or 0)
        self.epochs += trained
        self.new_epochs += trained
        score = record.get("score")
        if (record.get("status") in objectives.RANKED_STATUSES
                and score is not None
                and math.isfinite(score) and (self.best is None or self._better(score))):
            self.best = score
        LOGGER.info(self.line(record))

    def line(self, record: dict[str, Any]) -> str:
        """`trial 7/23 · 3 epochs · 4.1 s · best val_loss 0.2267 · elapsed 0:41 · left ~1:12`."""
        elapsed = time.perf_counter() - self.started
        parts = [f"trial {self.trials}/{max(self.plan.trials, self.trials)}",
                 f"{record.get('epochs')} epochs", f"{record.get('seconds') or 0:.1f} s"]
        status = record.get("status")
        if status == "failed":
            parts.append(f"failed ({record.get('reason')})")
        elif status == "stopped_early":
            parts.append("stopped early")
        elif status == "pruned":
            parts.append(f"pruned ({record.get('reason')})")
        best = "n/a" if self.best is None else report.format_value(float(self.best))
        parts += [f"best {self.objective} {best}", f"elapsed {_clock(elapsed)}"]
        left = self.seconds_left(elapsed)
        if left is not None:
            parts.append(f"left ~{_clock(left)}")
        hyperparameters = report.format_hyperparameters(record.get("hyperparameters") or {})
        return " · ".join(parts) + (f" | {hyperparameters}" if hyperparameters else "")

    def seconds_left(self, elapsed: float) -> float | None:
        """Epochs left times the mean epoch time of this process so far."""
        if self.new_epochs == 0:
            return None
        return max(self.plan.epochs - self.epochs, 0) * elapsed / self.new_epochs

    def _better(self, score: float) -> bool:
        return score < self.best if self.direction == "min" else score > self.best


def _clock(seconds: float) -> str:
    """`0:41`, `12:05`, `1:02:03`."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
