"""Which finished trials BOHB's density model learns from, and which of them are good.

Two rules, both over the trials of a keras-tuner `HyperbandOracle` (their values hold
`tuner/epochs`, the budget each one trained to):

- `pooled_split`, BOHB's default here: every configuration counts once, with its result at
  the largest budget it reached, ranked first by that budget and then by its loss there.
  This is how Optuna's `TPESampler` ranks trials that a pruner stopped early
  (`_get_pruned_trial_score`: the step reached, then the value there).
- `largest_budget_split`: BOHB's paper and its reference implementation (hpbandster):
  only the largest budget with enough results, ranked by loss.

```python
split = observations.pooled_split(oracle.trials, "min", min_points=6, top_fraction=0.15)
split.budget, len(split.good), len(split.bad)
```
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any

from keras_tuner.engine import trial as trial_module


@dataclasses.dataclass(frozen=True)
class Split:
    """The configurations a density model is fitted on.

    Attributes:
        budget: The largest budget (`tuner/epochs`) among the good configurations.
        good: The values of the good configurations, best first.
        bad: The values of the other configurations, best first.
    """

    budget: int
    good: list[dict[str, Any]]
    bad: list[dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class _Result:
    values: dict[str, Any]
    budget: int
    loss: float


def pooled_split(
    trials: Mapping[str, Any], direction: str, min_points: int, top_fraction: float
) -> Split | None:
    """Splits every configuration into good and bad, each at the largest budget it reached.

    Hyperband promotes the best configurations of a round to the next budget, so a
    configuration that trained further has already been judged better than those its
    round left behind; as Optuna's TPE does with pruned trials, configurations rank by
    the largest budget they reached, then by their loss at that budget. The best
    `ceil(top_fraction * n)` of the `n` configurations, at least one, are good, as
    Optuna's `gamma` counts them; the rest are bad.

    Args:
        trials: The oracle's trials, by id.
        direction: `"min"` or `"max"`, the objective's direction.
        min_points: The fewest configurations with a result the split needs.
        top_fraction: The fraction of configurations counted as good.

    Returns:
        The split, or None while fewer than `min_points` configurations have a result.
    """
    latest: dict[str, _Result] = {}
    for result in _finished(trials, direction):
        key = _configuration_key(result.values)
        kept = latest.get(key)
        if kept is None or result.budget > kept.budget:
            latest[key] = result
    results = list(latest.values())
    if len(results) < max(min_points, 2):
        return None
    # A stable sort keeps ties in trial order, so runs are reproducible.
    ranked = sorted(results, key=lambda result: (-result.budget, result.loss))
    good_count = min(max(1, math.ceil(top_fraction * len(ranked))), len(ranked) - 1)
    return Split(
        budget=ranked[0].budget,
        good=[result.values for result in ranked[:good_count]],
        bad=[result.values for result in ranked[good_count:]],
    )


def largest_budget_split(
    trials: Mapping[str, Any], direction: str, min_points: int, top_fraction: float
) -> Split | None:
    """Splits the results of the largest budget that has enough of them (BOHB's paper).

    A budget qualifies when its best `max(min_points, int(top_fraction * n))` results
    (the good ones) leave at least `min_points` others (the bad ones), as in hpbandster.

    Args:
        trials: The oracle's trials, by id.
        direction: `"min"` or `"max"`, the objective's direction.
        min_points: The fewest good and the fewest bad results.
        top_fraction: The fraction of a budget's results counted as good.

    Returns:
        The split, or None while no budget has enough results.
    """
    by_budget: dict[int, list[_Result]] = {}
    for result in _finished(trials, direction):
        by_budget.setdefault(result.budget, []).append(result)
    for budget in sorted(by_budget, reverse=True):
        results = by_budget[budget]
        good_count = max(min_points, int(top_fraction * len(results)))
        if len(results) - good_count < min_points:
            continue
        ranked = sorted(results, key=lambda result: result.loss)
        return Split(
            budget=budget,
            good=[result.values for result in ranked[:good_count]],
            bad=[result.values for result in ranked[good_count:]],
        )
    return None


def _finished(trials: Mapping[str, Any], direction: str) -> list[_Result]:
    """The completed trials with a finite score and a budget, in trial order."""
    results = []
    # Trial ids sort numerically by length then text; sorting makes the model
    # independent of the order a reload reads trial files in.
    for trial_id in sorted(trials, key=lambda key: (len(key), key)):
        trial = trials[trial_id]
        values = trial.hyperparameters.values
        if (
            trial.status != trial_module.TrialStatus.COMPLETED
            or trial.score is None
            or not math.isfinite(trial.score)
            or "tuner/epochs" not in values
        ):
            continue
        loss = trial.score if direction == "min" else -trial.score
        results.append(_Result(values=values, budget=int(values["tuner/epochs"]), loss=loss))
    return results


def _configuration_key(values: Mapping[str, Any]) -> str:
    # A promotion copies its parent's values and changes only `tuner/*` entries.
    return json.dumps(
        {name: value for name, value in values.items() if not name.startswith("tuner/")},
        sort_keys=True,
        default=str,
    )
