"""The hooks through which a part of the search watches, and may stop, each trial.

`tuners.tuner.Tuner` calls every observer it holds, in order, at the same points of a
search; an observer implements the hooks it needs and inherits the others, which do
nothing. The tuner keeps the running trial's `TrialRecording` (`tuner.recording`), which
every observer may read.

| hook                                   | when                                      |
|----------------------------------------|-------------------------------------------|
| `attach(tuner)`                        | once, after keras-tuner built the tuner   |
| `on_search_begin(tuner)`               | before the first trial of `search()`      |
| `on_trial_begin(tuner, trial)`         | a trial starts (its recording is new)     |
| `on_model_built(tuner, hp, model)`     | a model is built for one training run     |
| `on_run_end(tuner, trial)`             | one training run (execution, fold) ended  |
| `on_epoch_end(tuner, trial, model, epoch, logs)` | may return a reason to stop    |
| `on_trial_end(tuner, trial, recording)`| keras-tuner has recorded how it ended     |
| `on_search_end(tuner)`                 | `search()` returns or raises              |

```python
class CountEpochs(trial_observer.TrialObserver):
    def __init__(self) -> None:
        self.epochs = 0

    def on_epoch_end(self, tuner, trial, model, epoch, logs):
        self.epochs += 1
        return None  # A sentence here would stop the trial.
```
"""

from __future__ import annotations

from typing import Any


class TrialObserver:
    """A part of the search that the tuner calls at each step of each trial."""

    def attach(self, tuner: Any) -> None:
        """Called once, when keras-tuner has built the tuner (its project exists)."""

    def on_search_begin(self, tuner: Any) -> None:
        """Called when `search()` begins, before its first trial."""

    def on_trial_begin(self, tuner: Any, trial: Any) -> None:
        """Called when a trial starts, after `tuner.recording` was made for it."""

    def on_model_built(self, tuner: Any, hp: Any, model: Any) -> None:
        """Called with each model built for a training run of the trial."""

    def on_run_end(self, tuner: Any, trial: Any) -> None:
        """Called when one training run (an execution or a walk-forward fold) ends."""

    def on_epoch_end(self, tuner: Any, trial: Any, model: Any, epoch: int,
                     logs: dict[str, Any]) -> str | None:
        """Called after each epoch; returns the reason to stop the trial, or None."""
        return None

    def on_trial_end(self, tuner: Any, trial: Any, recording: Any) -> None:
        """Called when keras-tuner has ended the trial, with what the trial recorded."""

    def on_search_end(self, tuner: Any) -> None:
        """Called when `search()` ends, however it ends."""
