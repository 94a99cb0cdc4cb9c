"""Median pruning: stop a trial whose curve falls behind the trials before it.

A trial-budget tuner (random, Bayesian, genetic, grid) trains every configuration for all
its epochs, unless early stopping ends it. With a pruner, a trial also stops after epoch
`e` when its objective at epoch `e` is worse than the median of the earlier trials'
objective values at epoch `e`, the median stopping rule of Golovin et al. (2017, Google
Vizier) that Optuna's `MedianPruner` implements. A pruned trial keeps the score of its
best epoch so far, as keras-tuner scores any trial whose `fit()` ends early.

`median_rule` and `MedianPruner` are pure: they take numbers, train nothing and import
neither TensorFlow nor keras-tuner, so the rule is tested on synthetic curves and the
config checks name the pruners without that import. `Pruning` is the tuner's side, a
trial observer (`tuners.observers.trial_observer`): it asks the pruner after each epoch, and the
tuner then sets `model.stop_training`.

```python
pruner = MedianPruner(grace_epochs=2, startup_trials=3)
decision = pruner.decide(0.41, epoch=1, earlier=[{1: 0.30}, {1: 0.37}, {1: 0.50}],
                         direction="min")
decision.prune  # True: 0.41 is worse than the median 0.37.
```
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from tuners import registry
from tuners.errors import TunerConfigError
from tuners.observers import trial_observer
from tuners.results import records, trial_curves

# `none` keeps every trial to its last epoch; a new rule is one more entry here and a
# class with `decide()` like `MedianPruner`.
# The statuses of earlier trials whose curves count: the finished ones, pruned or not.
# A failed trial's curve may be cut by a NaN, and an incomplete one is still running.
COUNTED_STATUSES = ("completed", "stopped_early", "pruned")


@dataclasses.dataclass(frozen=True)
class Decision:
    """What the rule decided after one epoch, and on what numbers.

    Attributes:
        prune: Whether the trial stops now.
        epoch: The 0-based epoch just trained.
        value: The trial's objective at that epoch.
        median: The median of the earlier trials' values at that epoch; None when the
            rule did not get as far as computing it.
        trials: How many earlier trials had a finite value at that epoch.
        why: Why the trial goes on (`"grace"`, `"startup"`, `"better"`), or why it stops
            (`"worse"`, `"not_finite"`).
    """

    prune: bool
    epoch: int
    value: float
    median: float | None
    trials: int
    why: str

    def reason(self, objective: str) -> str:
        """The sentence the histories and `trials.csv` give for a pruned trial."""
        if self.why == "not_finite":
            return f"pruned after epoch {self.epoch + 1}: {objective} is {self.value}"
        plural = "trial" if self.trials == 1 else "trials"
        return (f"pruned after epoch {self.epoch + 1}: {objective} {self.value:.4g} worse "
                f"than the median {self.median:.4g} of {self.trials} earlier {plural}")


def median_rule(value: float, epoch: int, earlier_values: Sequence[float], *,
                direction: str, grace_epochs: int = 2, startup_trials: int = 3) -> Decision:
    """Decides whether a trial stops after `epoch`, by the median stopping rule.

    It mirrors Optuna's `MedianPruner(n_startup_trials, n_warmup_steps, n_min_trials=1)`
    with three differences, each said where it happens: the grace period counts epochs
    trained (`grace_epochs = n_warmup_steps + 1`); the earlier trials counted are those
    that reached this epoch, pruned ones included; and the trial's value at this epoch is
    compared, not its best value so far.

    Args:
        value: The trial's objective at `epoch`.
        epoch: The 0-based epoch just trained.
        earlier_values: The earlier trials' objective values at `epoch`, one per trial
            that reached it; NaN and infinite values are left out of the median.
        direction: `"min"` or `"max"`, the objective's direction.
        grace_epochs: Never prune before this many epochs were trained, at least 1.
        startup_trials: Never prune before this many earlier trials have a finite value
            at `epoch`, at least 1.

    Returns:
        The decision; a value equal to the median is not worse, so it goes on.

    Raises:
        ValueError: For an unknown direction, or a grace or startup count below 1.
    """
    if direction not in ("min", "max"):
        raise ValueError(f"direction must be 'min' or 'max', got {direction!r}")
    _check_count("grace_epochs", grace_epochs)
    _check_count("startup_trials", startup_trials)
    finite = [float(earlier) for earlier in earlier_values if math.isfinite(earlier)]
    value = float(value)
    # Optuna's n_warmup_steps: it skips steps `< n_warmup_steps` with 0-based steps, so
    # its first prunable step is the (n_warmup_steps + 1)-th epoch; ours is the
    # `grace_epochs`-th, which makes "never before 2 epochs" read as 2.
    if epoch + 1 < grace_epochs:
        return Decision(False, epoch, value, None, len(finite), "grace")
    # Optuna's n_startup_trials counts finished trials over the whole study, plus
    # n_min_trials values at the step; here one count does both, the earlier trials
    # with a finite value at this very epoch, since early stopping and pruning leave
    # curves of every length and a median of one or two curves is mostly noise.
    if len(finite) < startup_trials:
        return Decision(False, epoch, value, None, len(finite), "startup")
    # Optuna prunes a trial whose intermediate values are all NaN; a NaN or infinite
    # objective can only get worse, so it stops here too (the histories then mark the
    # trial failed, as they mark every trial whose objective went NaN).
    if not math.isfinite(value):
        return Decision(True, epoch, value, None, len(finite), "not_finite")
    median = statistics.median(finite)
    # Optuna compares the trial's best value so far; this compares the value at the
    # epoch, as the rule says, so a curve that turns upward after a good start
    # (overfitting) is stopped too. Its score still comes from its best epoch.
    worse = value > median if direction == "min" else value < median
    return Decision(worse, epoch, value, median, len(finite), "worse" if worse else "better")


class MedianPruner:
    """The median stopping rule with its settings; see `median_rule`.

    ```python
    pruner = MedianPruner(grace_epochs=1, startup_trials=2)
    earlier = [{0: 0.5, 1: 0.4}, {0: 0.6, 1: 0.3}]
    pruner.decide(0.7, epoch=0, earlier=earlier, direction="min").prune  # True
    ```

    Args:
        grace_epochs: Never prune before this many epochs were trained, at least 1.
        startup_trials: Never prune before this many earlier trials reached the epoch
            with a finite value, at least 1.

    Raises:
        ValueError: For a count below 1.
    """

    name = "median"

    def __init__(self, grace_epochs: int = 2, startup_trials: int = 3) -> None:
        _check_count("grace_epochs", grace_epochs)
        _check_count("startup_trials", startup_trials)
        self.grace_epochs = grace_epochs
        self.startup_trials = startup_trials

    def decide(self, value: float, epoch: int, earlier: Sequence[Mapping[int, float]],
               direction: str) -> Decision:
        """Decides after `epoch` given the earlier trials' curves, `{epoch: value}` each."""
        values = [curve[epoch] for curve in earlier if epoch in curve]
        return median_rule(value, epoch, values, direction=direction,
                           grace_epochs=self.grace_epochs, startup_trials=self.startup_trials)

    def __repr__(self) -> str:
        return (f"MedianPruner(grace_epochs={self.grace_epochs}, "
                f"startup_trials={self.startup_trials})")


def make_pruner(name: str, grace_epochs: int = 2, startup_trials: int = 3
                ) -> MedianPruner | None:
    """The pruner a config names: None for `"none"`.

    Raises:
        TunerConfigError: For an unknown name or a count below 1.
    """
    if name not in registry.PRUNERS:
        raise TunerConfigError(f"unknown pruner {name!r}; use one of {', '.join(registry.PRUNERS)}")
    if name == "none":
        return None
    try:
        return MedianPruner(grace_epochs=grace_epochs, startup_trials=startup_trials)
    except ValueError as error:
        raise TunerConfigError(str(error)) from None


def earlier_curves(histories: Any, objective: str, exclude: str | None = None
                   ) -> list[dict[int, float]]:
    """Each finished trial's objective per epoch, from `tuners.load_histories`' table.

    Args:
        histories: The table `records.load_histories` returns.
        objective: The metric column, such as `"val_loss"`.
        exclude: A trial id to leave out (the running trial).

    Returns:
        One `{epoch: value}` per trial whose status is in `COUNTED_STATUSES`, in the
        order the trials started; a trial trained several times (executions) gives the
        mean of its executions at each epoch, as keras-tuner averages its score.
    """
    if histories.empty or objective not in histories:
        return []
    counted = histories[histories["status"].isin(COUNTED_STATUSES)
                        & (histories["trial_id"] != exclude)]
    values = counted.astype({objective: "float64"}).groupby(
        ["trial_id", "epoch"], sort=False)[objective].mean()
    curves: dict[str, dict[int, float]] = {}
    for (trial_id, epoch), value in values.items():
        curves.setdefault(trial_id, {})[int(epoch)] = float(value)
    return list(curves.values())


class Pruning(trial_observer.TrialObserver):
    """Stops a trial after an epoch when its pruner says so; a trial observer of the tuner.

    The earlier trials' curves are kept in memory (`tuners.results.trial_curves`): the histories
    files are read whole once, when the rule first needs them, and after that only the
    lines appended since, so a resumed search and distributed workers (each writing its
    own `histories-<tuner_id>.jsonl`) see every finished trial without reading a file
    again for each trial. The trial's record then says `"pruned"` with the rule's numbers
    instead of `"stopped_early"`, and keras-tuner records it STOPPED.

    Args:
        pruner: An object with `decide(value, epoch, earlier, direction)` returning a
            `Decision`, such as `MedianPruner`.
    """

    def __init__(self, pruner: Any) -> None:
        self.pruner = pruner
        self._curves: trial_curves.TrialCurves | None = None
        self._earlier: list[dict[int, float]] | None = None

    def on_trial_begin(self, tuner: Any, trial: Any) -> None:
        """Forgets the last trial's view of the earlier curves."""
        self._earlier = None

    def on_epoch_end(self, tuner: Any, trial: Any, model: Any, epoch: int,
                     logs: dict[str, Any]) -> str | None:
        """The rule's sentence when the trial stops after this epoch, else None."""
        recording = tuner.recording
        objective = tuner.oracle.objective
        value = logs.get(objective.name)
        # Stopping after the last epoch would change nothing but the trial's status.
        if (value is None or recording is None or recording.trial_id != trial.trial_id
                or epoch + 1 >= recording.target_epochs):
            return None
        if self._earlier is None:
            if self._curves is None:
                self._curves = trial_curves.TrialCurves(tuner.history_path, objective.name)
            self._curves.update()
            self._earlier = self._curves.earlier(exclude=trial.trial_id,
                                                 statuses=COUNTED_STATUSES)
        decision = self.pruner.decide(records.to_float(value), int(epoch), self._earlier,
                                      objective.direction)
        return decision.reason(objective.name) if decision.prune else None


def _check_count(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
