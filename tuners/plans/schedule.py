"""Hyperband schedules: what keras-tuner 1.4.8 runs, and what Li et al. (2018) describe.

A Hyperband run is a list of brackets; each bracket is a successive-halving run whose
rounds train fewer configurations for more epochs. keras-tuner's `HyperbandOracle`
computes its own sizes, which differ from the paper's table, so this module computes
both, without training anything, and `tuners.plans.schedule_report` says where they differ.

```python
from tuners.plans import schedule, schedule_report

ours = schedule.keras_tuner_schedule(max_epochs=81, factor=3)
paper = schedule.paper_schedule(max_epochs=81, factor=3)
print(schedule_report.format_schedule(ours))
print("\n".join(schedule_report.compare_schedules(ours, paper)))
```
"""

from __future__ import annotations

import dataclasses
import fractions
import math

from tuners import errors

KERAS_TUNER_SOURCE = "keras-tuner 1.4.8"
PAPER_SOURCE = "Li et al. (2018)"

# keras-tuner's `HyperbandOracle` fixes the smallest budget at one epoch.
KERAS_TUNER_MIN_EPOCHS = 1


@dataclasses.dataclass(frozen=True)
class Round:
    """One successive-halving round of a bracket.

    Attributes:
        index: The round number within its bracket, from 0.
        configurations: How many configurations (trials) this round trains.
        initial_epoch: The epoch each configuration starts from: 0 when trained from
            scratch, the previous round's `epochs` when resumed from a checkpoint.
        epochs: The cumulative epoch each configuration is trained to.
    """

    index: int
    configurations: int
    initial_epoch: float
    epochs: float

    @property
    def epochs_trained(self) -> float:
        """The epochs each configuration of this round actually trains."""
        return self.epochs - self.initial_epoch

    @property
    def total_epochs(self) -> float:
        """The epochs this round trains over all its configurations."""
        return self.configurations * self.epochs_trained


@dataclasses.dataclass(frozen=True)
class Bracket:
    """One bracket: a successive-halving run starting from new configurations.

    Attributes:
        index: The bracket number `s`: the widest bracket has the largest number and
            `index + 1` rounds.
        iteration: Which pass over all brackets this is, from 0 (keras-tuner's
            `hyperband_iterations` repeats the brackets).
        rounds: The rounds, first (most configurations, fewest epochs) to last.
    """

    index: int
    iteration: int
    rounds: tuple[Round, ...]

    @property
    def configurations(self) -> int:
        """The new configurations this bracket samples (its first round)."""
        return self.rounds[0].configurations

    @property
    def trials(self) -> int:
        """The trials this bracket runs; keras-tuner counts each promotion as a trial."""
        return sum(round_.configurations for round_ in self.rounds)

    @property
    def total_epochs(self) -> float:
        """The epochs this bracket trains over all its rounds."""
        return sum(round_.total_epochs for round_ in self.rounds)


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A full Hyperband schedule.

    Attributes:
        source: Where the numbers come from, `keras-tuner 1.4.8` or `Li et al. (2018)`.
        max_epochs: The largest budget `R`, in epochs.
        factor: The reduction factor `eta`.
        warm_start: Whether promoted configurations resume from the previous round's
            checkpoint (train `epochs - initial_epoch`) or start from scratch.
        brackets: The brackets in the order they run.

    Example:

    ```python
    plan = keras_tuner_schedule(max_epochs=9, factor=3)
    plan.total_trials  # 9 + 3 + 1 + 5 + 2 + 3 = 23
    ```
    """

    source: str
    max_epochs: int
    factor: int
    warm_start: bool
    brackets: tuple[Bracket, ...]

    @property
    def total_trials(self) -> int:
        """All trials over all brackets, promotions included."""
        return sum(bracket.trials for bracket in self.brackets)

    @property
    def total_configurations(self) -> int:
        """Distinct configurations sampled: the first rounds of all brackets."""
        return sum(bracket.configurations for bracket in self.brackets)

    @property
    def total_epochs(self) -> float:
        """All epochs trained over all brackets."""
        return sum(bracket.total_epochs for bracket in self.brackets)


def keras_tuner_schedule(max_epochs: int, factor: int, hyperband_iterations: int = 1) -> Schedule:
    """Computes the schedule keras-tuner 1.4.8's `HyperbandOracle` runs.

    The formulas are keras-tuner's own, floating point included: the number of
    brackets divides `max_epochs` by `factor` until it falls below one epoch; a round
    has `ceil(ceil(1 + log(max_epochs, factor)) / (bracket + 1) * factor ** (bracket -
    round))` configurations trained to `ceil(max_epochs / factor ** (bracket - round))`
    epochs; brackets run from the widest down to 0, `hyperband_iterations` times.
    Promoted configurations resume from their parent's checkpoint, so they train
    from `tuner/initial_epoch` (the previous round's epochs) to `tuner/epochs`.

    Args:
        max_epochs: The largest number of epochs one configuration trains, at least 1.
        factor: The reduction factor, an integer of at least 2.
        hyperband_iterations: How many times all brackets run, at least 1.

    Returns:
        The schedule, brackets in the order the oracle runs them, when trials run one
        after the other.

    Raises:
        errors.TunerConfigError: (a ValueError) If an argument is not an integer in its
            range.
    """
    errors.check_integer("max_epochs", max_epochs, minimum=1)
    errors.check_integer("factor", factor, minimum=2)
    errors.check_integer("hyperband_iterations", hyperband_iterations, minimum=1)

    # This loop is keras-tuner's `_get_num_brackets`, float division included.
    num_brackets = 0
    epochs = max_epochs
    while epochs >= KERAS_TUNER_MIN_EPOCHS:
        epochs = epochs / factor
        num_brackets += 1
    # keras-tuner's `_get_size` takes a float logarithm, so a power of `factor` can
    # land just above an integer (log(125, 5) is 3.0000000000000004) and add a
    # configuration to every round; reproducing the float keeps the numbers exact.
    last_round_size = math.ceil(1 + math.log(max_epochs, factor))

    def size(bracket_index: int, round_index: int) -> int:
        return math.ceil(
            last_round_size / (bracket_index + 1) * factor ** (bracket_index - round_index)
        )

    def epochs_at(bracket_index: int, round_index: int) -> int:
        return math.ceil(max_epochs / factor ** (bracket_index - round_index))

    brackets = []
    for iteration in range(hyperband_iterations):
        for bracket_index in reversed(range(num_brackets)):
            rounds = tuple(
                Round(
                    index=round_index,
                    configurations=size(bracket_index, round_index),
                    initial_epoch=(
                        0 if round_index == 0 else epochs_at(bracket_index, round_index - 1)
                    ),
                    epochs=epochs_at(bracket_index, round_index),
                )
                for round_index in range(bracket_index + 1)
            )
            brackets.append(Bracket(index=bracket_index, iteration=iteration, rounds=rounds))
    return Schedule(
        source=KERAS_TUNER_SOURCE,
        max_epochs=max_epochs,
        factor=factor,
        warm_start=True,
        brackets=tuple(brackets),
    )


def paper_schedule(max_epochs: int, factor: int, warm_start: bool = False) -> Schedule:
    """Computes Hyperband's schedule as Li et al. (2018), Algorithm 1, defines it.

    With `R = max_epochs` and `eta = factor`: `s_max = floor(log_eta(R))`,
    `B = (s_max + 1) R`; bracket `s` starts `n = ceil(B / R * eta**s / (s + 1))`
    configurations at `r = R * eta**-s` epochs, and round `i` keeps
    `floor(n * eta**-i)` configurations at `r * eta**i` epochs. Everything is
    computed with integers and exact fractions, so `R = 81, eta = 3` gives
    `s_max = 4`, not 3 from a float logarithm a hair below 4.

    Args:
        max_epochs: The largest budget `R`, at least 1.
        factor: The reduction factor `eta`, an integer of at least 2.
        warm_start: False (the default) trains each round's configurations for the
            full `r_i` epochs, as Algorithm 1 is written; True resumes them from the
            previous round, as keras-tuner does.

    Returns:
        The schedule, brackets from `s_max` down to 0. Epochs that are not whole
        numbers (when `R` is not a power of `eta`) are floats.

    Raises:
        errors.TunerConfigError: (a ValueError) If an argument is not an integer in its
            range.
    """
    errors.check_integer("max_epochs", max_epochs, minimum=1)
    errors.check_integer("factor", factor, minimum=2)
    if not isinstance(warm_start, bool):
        raise errors.TunerConfigError(f"warm_start must be True or False, got {warm_start!r}.")

    # The largest s with factor**s <= max_epochs, without a float logarithm.
    largest_bracket = 0
    while factor ** (largest_bracket + 1) <= max_epochs:
        largest_bracket += 1

    brackets = []
    for bracket_index in reversed(range(largest_bracket + 1)):
        # n = ceil((s_max + 1) * eta**s / (s + 1)), by integer ceiling division.
        first_size = -(-(largest_bracket + 1) * factor**bracket_index // (bracket_index + 1))
        first_epochs = fractions.Fraction(max_epochs, factor**bracket_index)
        rounds = []
        previous_epochs = fractions.Fraction(0)
        for round_index in range(bracket_index + 1):
            round_epochs = first_epochs * factor**round_index
            rounds.append(
                Round(
                    index=round_index,
                    configurations=first_size // factor**round_index,
                    initial_epoch=_plain_number(previous_epochs if warm_start else 0),
                    epochs=_plain_number(round_epochs),
                )
            )
            previous_epochs = round_epochs
        brackets.append(Bracket(index=bracket_index, iteration=0, rounds=tuple(rounds)))
    return Schedule(
        source=PAPER_SOURCE,
        max_epochs=max_epochs,
        factor=factor,
        warm_start=warm_start,
        brackets=tuple(brackets),
    )


def _plain_number(value: fractions.Fraction | int) -> float:
    # Whole epochs stay integers so tables and comparisons read `27`, not `27.0`.
    value = fractions.Fraction(value)
    if value.denominator == 1:
        return int(value)
    return float(value)
