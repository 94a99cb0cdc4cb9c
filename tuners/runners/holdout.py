"""The trial runner of holdout validation: keras-tuner's own trial on one split.

A trial runner trains one trial for `tuners.tuner.Tuner`; the tuner holds one, chosen
when it is built: this one, or `tuners.runners.walk_forward.WalkForward`. A runner has a `name`
(the `validation` the histories record), `folds` (None here), `active_fold` (the fold
being trained, None here) and `run_trial`.
"""

from __future__ import annotations

from typing import Any


class Holdout:
    """Trains each trial's executions on the data given to `search()`, as keras-tuner does."""

    name = "holdout"
    folds = None
    active_fold = None

    def run_trial(self, tuner: Any, trial: Any, *args: Any, **kwargs: Any) -> Any:
        """Runs keras-tuner's trial: `executions_per_trial` models on the search's data."""
        return tuner.run_executions(trial, *args, **kwargs)
