"""The rungs of asynchronous successive halving (ASHA), and its plan, without TensorFlow.

`tuners.oracles.asha.ASHAOracle` runs ASHA; this module holds the arithmetic that the
oracle, the progress lines and `ktlab compare` share, so that none needs keras-tuner for
it (the registry's `plan` hook, `tuners.registry.TunerSpec.planned_budget`).

```python
from tuners.plans import rungs

rungs.rung_epochs(max_epochs=9, factor=3)   # (1, 3, 9)
rungs.planned_budget(9, 3, 1)               # (49, 75): Hyperband's 75 epochs in 49 trials
```
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tuners import errors
from tuners.plans import schedule


def rung_epochs(max_epochs: int, factor: int, min_epochs: int = 1) -> tuple[int, ...]:
    """The epoch budget of each rung: `r, r*eta, r*eta**2, ...`, ending at `max_epochs`.

    The top rung always trains to `max_epochs`. A geometric budget below it is kept only
    when the last step up to `max_epochs` is at least `sqrt(factor)`, so the rungs stay
    about `factor` apart: `max_epochs=10, factor=3` gives 1, 3, 10 rather than a 9 -> 10
    rung that would promote a third of its configurations for a single epoch.

    Args:
        max_epochs: The top rung's budget, at least `min_epochs`.
        factor: The reduction factor `eta`, at least 2.
        min_epochs: The bottom rung's budget `r`, at least 1.

    Returns:
        The budgets, bottom rung first: `(1, 3, 9)` for `max_epochs=9, factor=3`.

    Raises:
        errors.TunerConfigError: (a ValueError) If an argument is out of its range.
    """
    errors.check_integer("max_epochs", max_epochs, minimum=1)
    errors.check_integer("factor", factor, minimum=2)
    errors.check_integer("min_epochs", min_epochs, minimum=1)
    if min_epochs > max_epochs:
        raise errors.TunerConfigError(
            f"min_epochs ({min_epochs}) exceeds max_epochs ({max_epochs}); lower min_epochs."
        )
    budgets = []
    budget = min_epochs
    # Squares keep the sqrt(factor) test in integers, free of floating-point logarithms.
    while budget < max_epochs and (not budgets or budget**2 * factor <= max_epochs**2):
        budgets.append(budget)
        budget *= factor
    return (*budgets, max_epochs)


def default_epoch_budget(max_epochs: int, factor: int, hyperband_iterations: int = 1) -> int:
    """The epochs of Hyperband's schedule for the same settings, ASHA's default budget."""
    plan = schedule.keras_tuner_schedule(max_epochs, factor, hyperband_iterations)
    return int(plan.total_epochs)


def rung_sizes(max_epochs: int, factor: int, hyperband_iterations: int = 1,
               min_epochs: int = 1, epoch_budget: int | None = None,
               max_trials: int | None = None) -> list[int]:
    """The configurations each rung trains when ASHA runs its trials one after another.

    It replays `ASHAOracle`'s choices with results that keep their rank (a later result
    never beats one already promoted): each time a trial is asked for, the highest rung
    that has promoted fewer than `floor(n / factor)` of its `n` results promotes one, if
    the budget pays for the step; otherwise a new configuration starts at the bottom
    rung, if the budget pays for it; otherwise the search stops. Real scores can lift a
    late result above an already promoted one, and pending trials on other workers
    change the order, so a real search may run a few more or fewer trials.

    Args:
        max_epochs: As for `ASHAOracle`.
        factor: As for `ASHAOracle`.
        hyperband_iterations: As for `ASHAOracle`.
        min_epochs: As for `ASHAOracle`.
        epoch_budget: As for `ASHAOracle`; None means Hyperband's epochs.
        max_trials: As for `ASHAOracle`.

    Returns:
        The number of trials of each rung, bottom rung first: `[35, 11, 3]` for
        `max_epochs=9, factor=3`.

    Raises:
        errors.TunerConfigError: (a ValueError) If an argument is out of its range.
    """
    budgets = rung_epochs(max_epochs, factor, min_epochs)
    errors.check_integer("hyperband_iterations", hyperband_iterations, minimum=1)
    if epoch_budget is None:
        epoch_budget = default_epoch_budget(max_epochs, factor, hyperband_iterations)
    errors.check_integer("epoch_budget", epoch_budget, minimum=min_epochs)
    if max_trials is not None:
        errors.check_integer("max_trials", max_trials, minimum=1)
    sizes = [0] * len(budgets)
    promoted = [0] * len(budgets)
    left = epoch_budget
    while max_trials is None or sum(sizes) < max_trials:
        for rung in reversed(range(len(budgets) - 1)):
            step = budgets[rung + 1] - budgets[rung]
            if step <= left and promoted[rung] < sizes[rung] // factor:
                promoted[rung] += 1
                sizes[rung + 1] += 1
                left -= step
                break
        else:
            if budgets[0] > left:
                break
            sizes[0] += 1
            left -= budgets[0]
    return sizes


def planned_budget(max_epochs: int, factor: int, hyperband_iterations: int,
                   options: Mapping[str, Any] | None = None) -> tuple[int, int]:
    """The trials and epochs an ASHA search plans, for progress lines and comparisons.

    Args:
        max_epochs: As for `ASHAOracle`.
        factor: As for `ASHAOracle`.
        hyperband_iterations: As for `ASHAOracle`.
        options: The oracle's options (`[tuner.options]`); `min_epochs`, `epoch_budget`
            and `max_trials` count, the others are ignored.

    Returns:
        `(trials, epochs)`: the trials of `rung_sizes`, and the epochs they train.
    """
    options = options or {}
    min_epochs = options.get("min_epochs", 1)
    sizes = rung_sizes(max_epochs, factor, hyperband_iterations, min_epochs=min_epochs,
                       epoch_budget=options.get("epoch_budget"),
                       max_trials=options.get("max_trials"))
    budgets = rung_epochs(max_epochs, factor, min_epochs)
    steps = [budgets[0], *(high - low for low, high in zip(budgets, budgets[1:], strict=False))]
    return sum(sizes), sum(size * step for size, step in zip(sizes, steps, strict=True))
