"""Ends a search once its trials have trained a given number of epochs in all.

A trial-budget tuner (random, Bayesian, genetic, grid) plans `max_trials` trials of
`max_epochs` epochs, but early stopping and pruning end many trials sooner, so a plan that
matches Hyperband's epochs on paper trains fewer in fact (45 of 72 epochs in one
comparison). With `max_trained_epochs`, the tuner keeps asking for trials until the epochs
its trials trained (every fold's and execution's, as `trials.csv` counts them in
`epochs_trained`) reach that number; `max_trials` stays the hard cap on trials. The last
trial may overshoot by at most its own epochs.

```python
tuner = tuners.build_tuner("random", hypermodel, directory="runs/demo", max_epochs=9,
                           max_trials=30, max_trained_epochs=75)
# Stops at >= 75 epochs or 30 trials.
tuner.search(**hypermodels.fit_data(hypermodel, prepared), epochs=9)
tuner.observer(epoch_limit.EpochLimit).trained_epochs()
```

keras-tuner has no stop condition other than `max_trials` (its `Oracle.create_trial`
answers `STOPPED` once it holds `max_trials` trials), so the limit lowers the oracle's
`max_trials` to the trials it holds when the epochs are reached, and keras-tuner's own
check then ends the search. The oracle does not save `max_trials`, so a resumed search
starts with the cap again and the limit is checked afresh before its first trial. It
works in a single process; a distributed worker's oracle is the chief's, which it cannot
stop.
"""

from __future__ import annotations

import numbers
import os
from typing import Any

from tuners.errors import HistoryFileError, TunerConfigError
from tuners.observers import trial_observer
from tuners.results import records


class EpochLimit(trial_observer.TrialObserver):
    """Ends the search once its trials have trained `max_trained_epochs` epochs in all.

    Args:
        max_trained_epochs: The epochs, summed over trials, after which no new trial
            starts; None (the default) sets no limit.

    Raises:
        TunerConfigError: For a `max_trained_epochs` that is not a whole number >= 1.
    """

    def __init__(self, max_trained_epochs: int | None = None) -> None:
        if max_trained_epochs is not None and (
                isinstance(max_trained_epochs, bool)
                or not isinstance(max_trained_epochs, numbers.Integral)
                or max_trained_epochs < 1):
            raise TunerConfigError(f"max_trained_epochs must be a whole number >= 1, got "
                                   f"{max_trained_epochs!r}; raise it or leave it out")
        self.max_trained_epochs = None if max_trained_epochs is None else int(max_trained_epochs)
        # `{trial_id: epochs_trained}`: the trials before this search (read once), then
        # each trial as it ends; a trial run again replaces its count, as `trials.csv`
        # keeps a trial's latest attempt.
        self._epochs_by_trial: dict[str, int] | None = None
        self._history_path: str | None = None

    def attach(self, tuner: Any) -> None:
        """Notes where the histories are, to count the epochs of an earlier search."""
        self._history_path = tuner.history_path

    def trained_epochs(self) -> int:
        """The epochs trained so far, as `trials.csv` sums `epochs_trained`."""
        if self._epochs_by_trial is None:
            self._epochs_by_trial = self._read_trained_epochs()
        return sum(self._epochs_by_trial.values())

    def on_search_begin(self, tuner: Any) -> None:
        self._stop_when_spent(tuner.oracle)

    def on_trial_end(self, tuner: Any, trial: Any, recording: Any) -> None:
        if self._epochs_by_trial is not None:
            # The `epochs_trained` of the trial's `trial_end` record.
            self._epochs_by_trial[trial.trial_id] = len(recording.epochs)
        self._stop_when_spent(tuner.oracle)

    def _read_trained_epochs(self) -> dict[str, int]:
        # Read from the histories file once, so that a resumed search counts the epochs of
        # the trials that ran before it, exactly as the run's metrics will.
        if self._history_path is None or not os.path.exists(self._history_path):
            return {}
        try:
            trials = records.load_trials(self._history_path)
        except HistoryFileError:
            return {}
        return {str(trial_id): int(epochs) for trial_id, epochs
                in zip(trials["trial_id"], trials["epochs_trained"], strict=True)}

    def _stop_when_spent(self, oracle: Any) -> None:
        if self.max_trained_epochs is None:
            return
        if self.trained_epochs() >= self.max_trained_epochs and hasattr(oracle, "trials"):
            # keras-tuner's `create_trial` answers STOPPED once the oracle holds
            # `max_trials` trials; no trial is created after this one.
            oracle.max_trials = max(len(oracle.trials), 1)
