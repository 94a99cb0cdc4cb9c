"""Hyperparameter values for our oracles: sampling, mutation, validity and clipping.

The genetic algorithm and BOHB both draw and move values in keras-tuner's own way
(`prob_to_value` over each hyperparameter's range, step and choices), so that whatever
they propose is a value keras-tuner itself could have sampled.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras_tuner
import numpy as np
from keras_tuner.engine import hyperparameters as hyperparameter_types

from tuners import errors

# Probabilities map onto [min_value, max_value] through keras-tuner's
# `prob_to_value`; a probability of exactly 1.0 maps an `Int` without a step to
# `max_value + 1`, so samples stay just below it.
LARGEST_PROBABILITY = 1.0 - 1e-9


def sample_values(
    space: Sequence[hyperparameter_types.HyperParameter],
    choose: Callable[[hyperparameter_types.HyperParameter], Any],
) -> dict[str, Any]:
    """Builds the active values of a configuration, parents before children.

    It walks the search space the way keras-tuner's `Oracle._random_values` does:
    each hyperparameter joins a fresh `HyperParameters`, and only the ones whose
    conditions hold for the values chosen so far get a value.

    Args:
        space: The hyperparameters, in the order they were declared.
        choose: Called with each active hyperparameter; returns its value.

    Returns:
        A mapping of active hyperparameter names to values.
    """
    hyperparameters = keras_tuner.HyperParameters()
    for hyperparameter in space:
        hyperparameters.merge([hyperparameter])
        if hyperparameters.is_active(hyperparameter):
            if isinstance(hyperparameter, hyperparameter_types.Fixed):
                value = hyperparameter.value
            else:
                value = choose(hyperparameter)
            hyperparameters.values[hyperparameter.name] = value
    return hyperparameters.values


def random_value(
    hyperparameter: hyperparameter_types.HyperParameter, rng: np.random.Generator
) -> Any:
    """Draws a value uniformly in keras-tuner's probability space.

    Args:
        hyperparameter: A keras-tuner hyperparameter.
        rng: The random generator.

    Returns:
        A value of the hyperparameter's type, inside its range and on its step.
    """
    if isinstance(hyperparameter, hyperparameter_types.Fixed):
        return hyperparameter.value
    probability = min(float(rng.random()), LARGEST_PROBABILITY)
    return clip_value(hyperparameter, hyperparameter.prob_to_value(probability))


def mutate_value(
    hyperparameter: hyperparameter_types.HyperParameter,
    value: Any,
    rng: np.random.Generator,
    scale: float,
) -> Any:
    """Mutates one value, respecting the hyperparameter's type, range and step.

    Args:
        hyperparameter: A keras-tuner hyperparameter.
        value: Its current value.
        rng: The random generator.
        scale: The standard deviation of a numerical move, as a fraction of the
            range in keras-tuner's probability space.

    Returns:
        The mutated value: another choice for `Choice`, the other value for
        `Boolean`, a moved number for `Int` and `Float`, the same value for `Fixed`.
    """
    if isinstance(hyperparameter, hyperparameter_types.Boolean):
        return not value
    if isinstance(hyperparameter, hyperparameter_types.Choice):
        others = [choice for choice in hyperparameter.values if choice != value]
        if not others:
            return value
        return others[int(rng.integers(len(others)))]
    if isinstance(hyperparameter, (hyperparameter_types.Int, hyperparameter_types.Float)):
        if hyperparameter.step is not None:
            return _mutate_on_grid(hyperparameter, value, rng, scale)
        return _mutate_continuous(hyperparameter, value, rng, scale)
    return value


def is_valid_value(hyperparameter: hyperparameter_types.HyperParameter, value: Any) -> bool:
    """Tells whether a value is allowed for a hyperparameter.

    Args:
        hyperparameter: A keras-tuner hyperparameter.
        value: A candidate value.

    Returns:
        True when the value has the right type and lies in the range or choices.
    """
    if isinstance(hyperparameter, hyperparameter_types.Fixed):
        return value == hyperparameter.value
    if isinstance(hyperparameter, hyperparameter_types.Boolean):
        return isinstance(value, bool)
    if isinstance(hyperparameter, hyperparameter_types.Choice):
        return value in hyperparameter.values
    if isinstance(hyperparameter, (hyperparameter_types.Int, hyperparameter_types.Float)):
        if isinstance(value, bool) or not errors.is_real(value):
            return False
        return hyperparameter.min_value <= value <= hyperparameter.max_value
    return True


def _mutate_on_grid(
    hyperparameter: hyperparameter_types.HyperParameter,
    value: Any,
    rng: np.random.Generator,
    scale: float,
) -> Any:
    # keras-tuner's own grid: linear steps, or multiplicative ones for log sampling.
    grid = list(hyperparameter.values)
    if len(grid) < 2:
        return value
    index = int(np.argmin([abs(candidate - value) for candidate in grid]))
    steps = int(round(rng.normal(0.0, scale * len(grid))))
    if steps == 0:
        # A mutation that lands on the same value would waste the child.
        steps = 1 if rng.random() < 0.5 else -1
    new_index = min(max(index + steps, 0), len(grid) - 1)
    if new_index == index:
        # Clipped at an end of the range: step inwards instead.
        new_index = index - 1 if index == len(grid) - 1 else index + 1
    return clip_value(hyperparameter, grid[new_index])


def _mutate_continuous(
    hyperparameter: hyperparameter_types.HyperParameter,
    value: Any,
    rng: np.random.Generator,
    scale: float,
) -> Any:
    probability = hyperparameter.value_to_prob(value) + rng.normal(0.0, scale)
    probability = min(max(probability, 0.0), LARGEST_PROBABILITY)
    mutated = clip_value(hyperparameter, hyperparameter.prob_to_value(probability))
    if isinstance(hyperparameter, hyperparameter_types.Int) and mutated == value:
        # An integer needs a move of at least one to change at all.
        direction = 1 if probability >= hyperparameter.value_to_prob(value) else -1
        if not hyperparameter.min_value <= value + direction <= hyperparameter.max_value:
            direction = -direction
        mutated = value + direction
    return mutated


def clip_value(hyperparameter: hyperparameter_types.HyperParameter, value: Any) -> Any:
    """Makes a numerical value a plain Python number inside the range.

    Float powers can land a hair outside the range (log sampling computes
    `min * (max / min) ** p`), and values must be plain Python numbers so that trial
    files stay JSON and value hashes match keras-tuner's.

    Args:
        hyperparameter: A keras-tuner hyperparameter.
        value: A value from `prob_to_value` or a grid.

    Returns:
        An `int` for `Int`, a `float` for `Float`, clipped to the range; other
        values unchanged.
    """
    if isinstance(hyperparameter, hyperparameter_types.Int):
        value = int(round(value))
        return min(max(value, hyperparameter.min_value), hyperparameter.max_value)
    if isinstance(hyperparameter, hyperparameter_types.Float):
        value = float(value)
        return min(max(value, hyperparameter.min_value), hyperparameter.max_value)
    return value
