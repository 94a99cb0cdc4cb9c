"""The size and intervals of a population-based training run, without TensorFlow.

Population-based training (PBT; Jaderberg et al., 2017) trains a population of members
side by side in intervals of a few epochs; `tuners.oracles.pbt.PBTOracle` runs it. This
module holds the arithmetic that the oracle, the progress lines and `ktlab compare`
share, so that they plan the same trials and epochs and none needs keras-tuner to do so.

```python
from tuners.plans import population

plan = population.population_plan(max_epochs=9, factor=3)
plan.population_size, plan.interval_ends  # 8, (2, 4, 6, 8, 9)
plan.total_trials, plan.total_epochs      # 40, 72 (Hyperband: 23 trials, 75 epochs)
```
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from tuners import errors
from tuners.plans import schedule


@dataclasses.dataclass(frozen=True)
class PopulationPlan:
    """How many members train, and where their intervals end.

    Attributes:
        population_size: The members, at least 2.
        interval: The epochs of every interval but maybe the last, which ends at
            `max_epochs`.
        max_epochs: The epochs each member trains in all.
    """

    population_size: int
    interval: int
    max_epochs: int

    @property
    def interval_ends(self) -> tuple[int, ...]:
        """The epoch each generation trains to: `interval, 2 * interval, ..., max_epochs`."""
        ends = list(range(self.interval, self.max_epochs, self.interval))
        return (*ends, self.max_epochs)

    @property
    def generations(self) -> int:
        """The intervals each member trains; one trial per member and interval."""
        return len(self.interval_ends)

    @property
    def total_trials(self) -> int:
        """All trials: one per member and generation."""
        return self.population_size * self.generations

    @property
    def total_epochs(self) -> int:
        """All epochs: each member trains `max_epochs`, whatever it exploited."""
        return self.population_size * self.max_epochs


def population_plan(
    max_epochs: int,
    factor: int,
    hyperband_iterations: int = 1,
    population_size: int | None = None,
    perturbation_interval: int | None = None,
    epoch_budget: int | None = None,
) -> PopulationPlan:
    """Sizes a PBT run so that it trains about as many epochs as Hyperband would.

    Each member trains `max_epochs` epochs in all, so the population is the epoch budget
    over `max_epochs`, rounded, at least 2: by default the budget is the epochs of
    Hyperband's schedule for the same `max_epochs`, `factor` and `hyperband_iterations`
    (`tuners.plans.schedule.keras_tuner_schedule`), which is also how `ktlab compare` sizes the
    trial-budget tuners, so PBT plans exactly their epochs (72 against Hyperband's 75 for
    `max_epochs=9, factor=3`). The interval defaults to `ceil(max_epochs / (2 * factor))`
    epochs: about `2 * factor` intervals, each a chance for the weakest members to copy
    a strong one.

    Args:
        max_epochs: The epochs each member trains, at least 1.
        factor: Hyperband's reduction factor, at least 2; it sizes the default budget
            and interval.
        hyperband_iterations: Hyperband's iterations in the default budget, at least 1.
        population_size: The members; None derives it from the budget.
        perturbation_interval: The epochs between two exploit steps, from 1 to
            `max_epochs`; None for the default above.
        epoch_budget: The epochs the population should train in all (used only when
            `population_size` is None); None for Hyperband's.

    Returns:
        The plan.

    Raises:
        errors.TunerConfigError: (a ValueError) If an argument is out of its range.
    """
    errors.check_integer("max_epochs", max_epochs, minimum=1)
    errors.check_integer("factor", factor, minimum=2)
    errors.check_integer("hyperband_iterations", hyperband_iterations, minimum=1)
    if population_size is None:
        if epoch_budget is None:
            hyperband = schedule.keras_tuner_schedule(max_epochs, factor, hyperband_iterations)
            population_size = max(2, round(hyperband.total_epochs / max_epochs))
        else:
            errors.check_integer("epoch_budget", epoch_budget, minimum=1)
            population_size = round(epoch_budget / max_epochs)
            if population_size < 2:
                raise errors.TunerConfigError(
                    f"epoch_budget ({epoch_budget}) trains fewer than 2 members of "
                    f"max_epochs ({max_epochs}) each; raise it to at least "
                    f"{math.ceil(1.5 * max_epochs)} or set population_size")
    errors.check_integer("population_size", population_size, minimum=2)
    if perturbation_interval is None:
        perturbation_interval = math.ceil(max_epochs / (2 * factor))
    errors.check_integer("perturbation_interval", perturbation_interval, minimum=1)
    if perturbation_interval > max_epochs:
        raise errors.TunerConfigError(
            f"perturbation_interval ({perturbation_interval}) exceeds max_epochs "
            f"({max_epochs}), which leaves no interval to exploit; lower it")
    return PopulationPlan(population_size, perturbation_interval, max_epochs)


def quantile_size(count: int, fraction: float) -> int:
    """How many members make the top (and the bottom) quantile of `count` ranked ones.

    Ray Tune's rule (`PopulationBasedTraining._quantiles`): `ceil(count * fraction)`,
    at most half the members, and none when fewer than two are ranked.

    Args:
        count: The members with a score.
        fraction: The quantile fraction, in (0, 0.5].

    Returns:
        The size of each quantile.
    """
    if count <= 1:
        return 0
    return min(math.ceil(count * fraction), count // 2)


def planned_budget(max_epochs: int, factor: int, hyperband_iterations: int,
                   options: Mapping[str, Any] | None = None) -> tuple[int, int]:
    """The trials and epochs a PBT search plans, for progress lines and comparisons.

    Args:
        max_epochs: As for `population_plan`.
        factor: As for `population_plan`.
        hyperband_iterations: As for `population_plan`.
        options: The oracle's options (`[tuner.options]`); `population_size`,
            `perturbation_interval` and `epoch_budget` count, the others are ignored.

    Returns:
        `(trials, epochs)`.
    """
    options = options or {}
    plan = population_plan(max_epochs, factor, hyperband_iterations,
                           population_size=options.get("population_size"),
                           perturbation_interval=options.get("perturbation_interval"),
                           epoch_budget=options.get("epoch_budget"))
    return plan.total_trials, plan.total_epochs
