"""The Pareto front of trials with several objectives: the records' side of NSGA-II.

A point dominates another when it is no worse in every objective and better in at least
one. Non-dominated sorting splits the points into fronts: the first front (the Pareto
front) is dominated by no point, the second only by points of the first, and so on.
Equal points dominate neither one the other, so they share a front, as in Optuna
(`optuna.samplers.NSGAIISampler`). A trial's point is its score, then the last reported
value of each further objective (`trial_values`).

It lives beside the records, not in an oracle: the run's Pareto front
(`pipelines.reports.pareto`) and the checkpoints it keeps
(`tuners.observers.checkpoints`) read it without loading any search strategy, and
NSGA-II's selection (`tuners.oracles.nsga`) builds on it. It imports neither TensorFlow
nor keras-tuner until a further objective is named.

The sort is written by hand because it is short and ktlab needs no other part of Optuna
or pymoo, which would each add a large dependency for it.

```python
points = [(0.10, 5000), (0.12, 800), (0.20, 900), (0.09, 9000)]
non_dominated_sort(points, ["min", "min"])  # [[0, 1, 3], [2]]
```
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tuners import errors
from tuners.results import objectives

if TYPE_CHECKING:
    import keras_tuner

DIRECTIONS = ("min", "max")


def non_dominated_sort(points: Sequence[Sequence[float]],
                       directions: Sequence[str]) -> list[list[int]]:
    """Splits points into NSGA-II's fronts, best first (Deb et al.'s fast sorting).

    Args:
        points: One sequence of objective values per point, all of the same length; no
            NaN (infinities are allowed).
        directions: `"min"` or `"max"` for each objective.

    Returns:
        The fronts, each a list of indices into `points` in increasing order; the first
        is the Pareto front. Every index appears once.

    Raises:
        ValueError: For a NaN, points of different lengths, or a direction that is
            neither `"min"` nor `"max"`.
    """
    values = _minimized(points, directions)
    if len(values) == 0:
        return []
    no_worse = np.all(values[:, None, :] <= values[None, :, :], axis=2)
    better = np.any(values[:, None, :] < values[None, :, :], axis=2)
    # dominates[i, j]: point i dominates point j.
    dominates = no_worse & better
    dominated_by = dominates.sum(axis=0)
    fronts = []
    front = [int(index) for index in np.flatnonzero(dominated_by == 0)]
    while front:
        fronts.append(front)
        following = []
        for index in front:
            for dominated in np.flatnonzero(dominates[index]):
                dominated_by[dominated] -= 1
                if dominated_by[dominated] == 0:
                    following.append(int(dominated))
        front = sorted(following)
    return fronts


def as_objectives(extra: Sequence[Any]) -> list[keras_tuner.Objective]:
    """Further objectives as `keras_tuner.Objective`s, inferring a name's direction.

    Raises:
        errors.TunerConfigError: For a name whose direction cannot be inferred, another
            type, or a name given twice.
    """
    # Imported here: the front of a finished run is read without keras-tuner's import.
    import keras_tuner

    result = []
    for objective in extra:
        if isinstance(objective, str) and objective:
            try:
                objective = keras_tuner.Objective(objective,
                                                  objectives.objective_direction(objective))
            except ValueError as error:
                raise errors.TunerConfigError(str(error)) from None
        if not isinstance(objective, keras_tuner.Objective):
            raise errors.TunerConfigError(
                f"each further objective must be a metric name such as 'params' or a "
                f"keras_tuner.Objective, got {objective!r}")
        if objective.name in [known.name for known in result]:
            raise errors.TunerConfigError(f"objective {objective.name!r} is given twice; "
                                          f"name each objective once")
        result.append(objective)
    return result


def trial_values(trial: Any, extra: Sequence[keras_tuner.Objective]) -> list[float] | None:
    """A trial's point: its score, then the last reported value of each further objective.

    Returns:
        The values, or None when one is missing or not finite (the trial cannot be ranked).
    """
    values = [trial.score]
    for objective in extra:
        if not trial.metrics.exists(objective.name):
            return None
        values.append(trial.metrics.get_last_value(objective.name))
    if any(value is None or not math.isfinite(value) for value in values):
        return None
    return [float(value) for value in values]


def _minimized(points: Sequence[Sequence[float]], directions: Sequence[str]) -> np.ndarray:
    unknown = [direction for direction in directions if direction not in DIRECTIONS]
    if unknown:
        raise ValueError(f"direction must be 'min' or 'max', got {unknown[0]!r}")
    values = np.asarray(points, dtype="float64")
    if values.size == 0:
        return values.reshape(0, len(directions))
    if values.ndim != 2 or values.shape[1] != len(directions):
        raise ValueError(f"each point needs {len(directions)} values, one per direction")
    if np.isnan(values).any():
        raise ValueError("points must not hold NaN; leave out the trials without a value")
    signs = np.array([1.0 if direction == "min" else -1.0 for direction in directions])
    return values * signs
