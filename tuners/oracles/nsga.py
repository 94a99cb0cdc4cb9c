"""NSGA-II's ranking of trials with several objectives (Deb et al., 2002).

Non-dominated sorting, which splits the points into fronts (the first is the Pareto
front), lives beside the records (`tuners.results.pareto_front`). The
crowding distance of a point within its front measures the room around it, so that
between two points of one front the lonelier one is preferred and the front stays spread.

The rules are Optuna's (`optuna.samplers.NSGAIISampler`, constraints aside):

- sorting (`tuners.results.pareto_front`): equal points dominate neither one the other, so they
  share a front;
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
select_survivors(points, ["min", "min"], 3)  # [0, 1, 3]: the whole first front
```
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tuners.results import pareto_front


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
    for rank, front in enumerate(pareto_front.non_dominated_sort(points, directions)):
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
    for front in pareto_front.non_dominated_sort(points, directions):
        if len(survivors) + len(front) <= size:
            survivors.extend(front)
            continue
        distances = crowding_distance(values[front])
        by_distance = sorted(range(len(front)), key=lambda position: -distances[position])
        survivors.extend(front[position] for position in by_distance[:size - len(survivors)])
        break
    return survivors
