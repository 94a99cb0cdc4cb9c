"""The finished trials' learning curves, kept in memory as the histories files grow.

The histories files are the append-only log of curves (`tuners.observers.recorder`). The median
pruner needs every earlier trial's curve before each trial; reading the files whole each
time would cost the square of the trials. `TrialCurves` reads each file once: all of it
at the first `update()` (a resumed search's earlier trials, or the trials other
distributed workers already ran), then only the lines appended since, from where it
stopped. It applies the same rules as `tuners.results.records.load_histories`: a trial that
starts again replaces its earlier epochs, a superseded attempt no longer counts, and a
trial counts once its `trial_end` record says how it ended.

```python
curves = TrialCurves("runs/demo/histories.jsonl", objective="val_loss")
curves.update()
curves.earlier(exclude="7")  # [{0: 0.41, 1: 0.35}, ...], one per counted trial.
```
"""

from __future__ import annotations

import json
import math
import os
import pathlib
from collections.abc import Collection
from typing import Any

from tuners.errors import HistoryFileError
from tuners.results import records


class TrialCurves:
    """Each trial's objective per epoch, read incrementally from the histories files.

    Args:
        history_path: The tuner's histories file. When it is a run directory's own
            (`histories.jsonl` or a worker's `histories-<tuner_id>.jsonl`), every
            histories file of that directory is read, so that a worker sees the others'
            trials; a file of another name is read alone.
        objective: The metric whose curve is kept, such as `"val_loss"`.
    """

    def __init__(self, history_path: str | os.PathLike, objective: str) -> None:
        path = pathlib.Path(history_path)
        name = path.name
        own = name == records.HISTORY_FILENAME or (name.startswith("histories-")
                                                    and name.endswith(".jsonl"))
        self.source = path.parent if own else path
        self.objective = objective
        # How far each file has been read, in bytes: the next read starts there.
        self.offsets: dict[pathlib.Path, int] = {}
        self._values: dict[Any, dict[tuple[Any, int], float]] = {}
        self._statuses: dict[Any, str] = {}

    def update(self) -> None:
        """Reads the complete lines appended to the histories files since the last call."""
        try:
            files = records.find_history_files(self.source)
        except HistoryFileError:
            return
        for path in files:
            start = self.offsets.get(path, 0)
            with open(path, "rb") as handle:
                handle.seek(start)
                appended = handle.read()
            # A line without its newline is still being written; it is read next time.
            complete = appended[:appended.rfind(b"\n") + 1]
            self.offsets[path] = start + len(complete)
            for line in complete.decode("utf-8").splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    # A line cut short by a crash; `records.load_histories` warns of it.
                    continue
                if isinstance(record, dict):
                    self._apply(record)

    @property
    def statuses(self) -> dict[Any, str]:
        """Each ended trial's status, as its `trial_end` record gives it."""
        return dict(self._statuses)

    def earlier(self, exclude: Any = None,
                statuses: Collection[str] = ("completed", "stopped_early", "pruned")
                ) -> list[dict[int, float]]:
        """The curves of the ended trials whose status is in `statuses`, as `{epoch: value}`.

        Args:
            exclude: A trial id to leave out (the running trial).
            statuses: The statuses that count.

        Returns:
            One curve per trial, in the order the trials ended; a trial trained several
            times (executions) gives the mean of its executions' known values at each
            epoch (NaN when none is known), as `tuners.observers.pruning.earlier_curves` does.
        """
        curves = []
        for trial_id, status in self._statuses.items():
            if trial_id == exclude or status not in statuses:
                continue
            by_epoch: dict[int, list[float]] = {}
            for (_, epoch), value in self._values.get(trial_id, {}).items():
                by_epoch.setdefault(epoch, []).append(value)
            curves.append({epoch: _mean(values) for epoch, values in by_epoch.items()})
        return curves

    def _apply(self, record: dict[str, Any]) -> None:
        event = record.get("event")
        trial_id = record.get("trial_id")
        if event == "trial_start":
            # A trial run again (a retry, or a resumed search) replaces its earlier epochs.
            self._values[trial_id] = {}
            self._statuses.pop(trial_id, None)
        elif event == "epoch":
            value = (record.get("metrics") or {}).get(self.objective)
            key = (record.get("execution", 0), int(record.get("epoch", 0)))
            self._values.setdefault(trial_id, {})[key] = (
                math.nan if value is None else records.to_float(value))
        elif event == "trial_end":
            # Ended trials keep the order in which they ended.
            self._statuses.pop(trial_id, None)
            self._statuses[trial_id] = record.get("status")
        elif event == records.SUPERSEDED:
            self._values.pop(trial_id, None)
            self._statuses.pop(trial_id, None)


def _mean(values: list[float]) -> float:
    # As pandas' mean: NaN (a null in the file) is left out.
    known = [value for value in values if not math.isnan(value)]
    return math.fsum(known) / len(known) if known else math.nan
