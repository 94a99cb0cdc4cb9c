"""NSGA-II's ranking of trials with several objectives (Deb et al., 2002).

A point dominates another when it is no worse in every objective and better in at least
one. Non-dominated sorting splits the points into fronts: the first front (the Pareto
front) is dominated by no point, the second only by points of the first, and so on. The
crowding distance of a point within its front measures the room around it, so that
between two points of one front the lonelier one is preferred and the front stays spread.

The rules are Optuna's (`optuna.samplers.NSGAIISampler`, constraints aside):

- sorting: equal points dominate neither one the other, so they share a front;
- crowding distance: the sum over objectives of the gap between a point's two
  neighbours along that objective, divided by the objective's range in the front; the
  lowest and highest points of an objective get an infinite distance, and an objective
  on which the whole front is equal adds nothing;
- survival (`select_survivors`): whole fronts, best first, while they fit, then the
  points of the front that does not fit, by crowding distance, largest first.

Parents are picked by Deb's crowded comparison (lower front first, then larger crowding
distance: `rank_and_crowding`), where Optuna's tournament compares dominance only.

These functions are written by hand because they are short and ktlab's search needs no
other part of Optuna or pymoo, which would each add a large dependency for them.

```python
points = [(0.10, 5000), (0.12, 800), (0.20, 900), (0.09, 9000)]
non_dominated_sort(points, ["min", "min"])  # [[0, 1, 3], [2]]
```
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import keras_tuner
import numpy as np

from tuners import errors, objectives

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


def crowding_distance(points: Sequence[Sequence[float]]) -> np.ndarray:
    """The crowding distance of each point of one front (the directions do not matter).

    Args:
        points: One sequence of objective values per point; no NaN.

    Returns:
        One distance per point, `inf` for the lowest and highest point of an objective
        that varies. Ties along an objective are ordered by index.
    """
    values = np.asarray(points, dtype="float64")
    distances = np.zeros(len(values))
    if values.size == 0:
        return distances
    for column in values.T:
        order = np.argsort(column, kind="stable")
        ordered = column[order]
        if ordered[0] == ordered[-1]:
            continue
        finite = ordered[np.isfinite(ordered)]
        width = float(finite[-1] - finite[0]) if finite.size else 0.0
        if width <= 0:
            width = 1.0
        padded = np.concatenate([[-math.inf], ordered, [math.inf]])
        for position, index in enumerate(order):
            low, high = padded[position], padded[position + 2]
            # inf - inf counts as no gap, as in Optuna.
            distances[index] += 0.0 if low == high else (high - low) / width
    return distances


def rank_and_crowding(points: Sequence[Sequence[float]],
                      directions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each point's front (0 is the Pareto front) and its crowding distance in that front.

    Deb et al.'s crowded comparison prefers the lower front, then the larger distance:
    sort by `(rank, -distance)`.
    """
    ranks = np.zeros(len(points), dtype=int)
    distances = np.zeros(len(points))
    values = np.asarray(points, dtype="float64")
    for rank, front in enumerate(non_dominated_sort(points, directions)):
        ranks[front] = rank
        distances[front] = crowding_distance(values[front])
    return ranks, distances


def crowded_key(names: Sequence[Any], points: Sequence[Sequence[float]],
                 directions: Sequence[str]) -> Callable[[Any], tuple[int, float]]:
    """A sort key over `names` (one per point) for Deb et al.'s crowded comparison.

    `min(names, key=crowded_key(names, points, directions))` is the name of the point of
    the lowest front with the largest crowding distance.
    """
    ranks, distances = rank_and_crowding(points, directions)
    keys = {name: (int(rank), -float(distance))
            for name, rank, distance in zip(names, ranks, distances, strict=True)}
    return keys.__getitem__


def select_survivors(points: Sequence[Sequence[float]], directions: Sequence[str],
                     size: int) -> list[int]:
    """NSGA-II's elitist survival: the `size` best points by front, then crowding distance.

    Returns:
        Indices into `points`: whole fronts in order while they fit, then the front that
        does not fit sorted by crowding distance, largest first (ties by index).
    """
    survivors: list[int] = []
    values = np.asarray(points, dtype="float64")
    for front in non_dominated_sort(points, directions):
        if len(survivors) + len(front) <= size:
            survivors.extend(front)
            continue
        distances = crowding_distance(values[front])
        by_distance = sorted(range(len(front)), key=lambda position: -distances[position])
        survivors.extend(front[position] for position in by_distance[:size - len(survivors)])
        break
    return survivors


def as_objectives(extra: Sequence[Any]) -> list[keras_tuner.Objective]:
    """Further objectives as `keras_tuner.Objective`s, inferring a name's direction.

    Raises:
        errors.TunerConfigError: For a name whose direction cannot be inferred, another
            type, or a name given twice.
    """
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
