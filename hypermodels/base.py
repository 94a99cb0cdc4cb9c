"""What every ktlab hypermodel shares: range checks and the tuned batch size.

Nothing here imports TensorFlow, so the hypermodels run on any Keras backend (the JAX
extra included). The tuned batch size reaches the data in one place: `BatchSizeHyperModel.fit`
asks the data for it (`batched_data`, which `fit_data` passes), or hands arrays to
`model.fit(batch_size=...)`.

A hypermodel's constructor takes its search space as plain numbers, so that a
configuration file can override any range with a list: a continuous range is a pair
`(min, max)` and a discrete set is a list of choices. The checks here turn a bad range
into one line that names the argument and the fix.

```python
import keras_tuner

import hypermodels

hypermodel = hypermodels.LSTMHyperModel(input_shape=(30, 5), units=[32, 64])
model = hypermodel.build(keras_tuner.HyperParameters())
```
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import keras
import keras_tuner

# Adam's usual learning rate, the value a fresh `HyperParameters()` builds with.
DEFAULT_LEARNING_RATE_VALUE = 1e-3


class SearchSpaceError(ValueError):
    """A search-space argument that cannot be used; the message names it and the fix."""


def check_range(
    name: str,
    bounds: Sequence[float],
    *,
    lowest: float | None = None,
    highest: float | None = None,
    highest_inclusive: bool = True,
    integer: bool = False,
) -> tuple[float, float]:
    """Checks a `(min, max)` pair and returns it as a tuple.

    Args:
        name: The constructor argument, used in the error message.
        bounds: Two numbers, the smallest and the largest value to try.
        lowest: The smallest value allowed, exclusive when it is 0 for log ranges.
        highest: The largest value allowed.
        highest_inclusive: Whether `highest` itself is allowed.
        integer: Whether both bounds must be whole numbers.

    Returns:
        The pair as `(min, max)`.

    Raises:
        SearchSpaceError: If `bounds` is not two numbers in order within the limits.
    """
    if isinstance(bounds, (str, bytes)) or not isinstance(bounds, Sequence) or len(bounds) != 2:
        raise SearchSpaceError(
            f"{name} must be a pair [min, max], got {bounds!r}; for example {name}=[1, 3]"
        )
    for value in bounds:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(
            value
        ):
            raise SearchSpaceError(f"{name} must hold two finite numbers, got {bounds!r}")
        if integer and int(value) != value:
            raise SearchSpaceError(f"{name} must hold whole numbers, got {bounds!r}")
    minimum, maximum = bounds
    if minimum > maximum:
        raise SearchSpaceError(
            f"{name} has min {minimum} > max {maximum}; write it as [{maximum}, {minimum}]"
        )
    if lowest is not None and minimum < lowest:
        raise SearchSpaceError(f"{name} min must be >= {lowest}, got {minimum}")
    above = highest is not None and (
        maximum > highest or (maximum == highest and not highest_inclusive)
    )
    if above:
        relation = "<=" if highest_inclusive else "<"
        raise SearchSpaceError(f"{name} max must be {relation} {highest}, got {maximum}")
    if integer:
        return int(minimum), int(maximum)
    return float(minimum), float(maximum)


def check_positive_range(name: str, bounds: Sequence[float]) -> tuple[float, float]:
    """Checks a `(min, max)` pair sampled on a log scale, so both ends must be above 0.

    Raises:
        SearchSpaceError: If `bounds` is not two positive numbers in order.
    """
    minimum, maximum = check_range(name, bounds)
    if minimum <= 0:
        raise SearchSpaceError(
            f"{name} is sampled on a log scale, so min must be > 0, got {minimum}"
        )
    return minimum, maximum


def check_choices(name: str, choices: Sequence[Any], *, positive_integers: bool = False) -> list:
    """Checks a non-empty list of distinct choices and returns it as a list.

    Raises:
        SearchSpaceError: If `choices` is empty, repeats a value, or (with
            `positive_integers`) holds anything but whole numbers >= 1.
    """
    if isinstance(choices, (str, bytes)) or not isinstance(choices, Sequence):
        raise SearchSpaceError(f"{name} must be a list of choices, got {choices!r}")
    if len(choices) == 0:
        raise SearchSpaceError(f"{name} is empty; give at least one choice")
    if len(set(choices)) != len(choices):
        raise SearchSpaceError(f"{name} repeats a value in {list(choices)!r}; list each once")
    if positive_integers:
        for value in choices:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise SearchSpaceError(
                    f"{name} must hold whole numbers >= 1, got {value!r} in {list(choices)!r}"
                )
    if positive_integers:
        return [int(value) for value in choices]
    return list(choices)


def check_horizon(horizon: int) -> int:
    """Checks how many steps ahead a model forecasts at once, and returns it as an int.

    Raises:
        SearchSpaceError: If `horizon` is not a whole number >= 1.
    """
    if isinstance(horizon, bool) or not isinstance(horizon, numbers.Integral) or horizon < 1:
        raise SearchSpaceError(
            f"horizon must be a whole number >= 1, got {horizon!r}; for example horizon=4"
        )
    return int(horizon)


def check_step(name: str, step: float | None, *, log: bool) -> float | None:
    """Checks the optional grid step of a continuous range.

    Raises:
        SearchSpaceError: If the step is not a positive number (greater than 1 on a log
            scale, where it multiplies).
    """
    if step is None:
        return None
    if isinstance(step, bool) or not isinstance(step, numbers.Real) or not math.isfinite(step):
        raise SearchSpaceError(f"{name} must be a number or None, got {step!r}")
    if log and step <= 1:
        raise SearchSpaceError(
            f"{name} multiplies on a log scale, so it must be > 1, got {step}; for example 10"
        )
    if step <= 0:
        raise SearchSpaceError(f"{name} must be > 0, got {step}")
    return float(step)


def float_hyperparameter(
    hp: keras_tuner.HyperParameters,
    name: str,
    bounds: tuple[float, float],
    *,
    step: float | None = None,
    log: bool = False,
    default: float | None = None,
) -> float:
    """Declares a float range, or a fixed value when both ends are equal.

    keras-tuner divides by `log(max / min)` on a log scale, so a range of one value is
    declared with `hp.Fixed` instead.

    Args:
        hp: The hyperparameters to declare it in.
        name: The hyperparameter's name.
        bounds: `(min, max)`, already checked.
        step: Optional grid step (a multiplier on a log scale).
        log: Whether to sample on a log scale.
        default: The value a fresh `HyperParameters()` gives; used only when it lies in
            the range and there is no step, and otherwise `min`.

    Returns:
        The trial's value, or None inside an inactive conditional scope.
    """
    minimum, maximum = bounds
    if minimum == maximum:
        return hp.Fixed(name, minimum)
    if default is None or step is not None or not minimum <= default <= maximum:
        default = minimum
    return hp.Float(
        name, minimum, maximum, step=step, sampling="log" if log else "linear", default=default
    )


def int_hyperparameter(
    hp: keras_tuner.HyperParameters, name: str, bounds: tuple[int, int]
) -> int:
    """Declares an integer range, or a fixed value when both ends are equal."""
    minimum, maximum = bounds
    if minimum == maximum:
        return hp.Fixed(name, minimum)
    return hp.Int(name, minimum, maximum)


def holds_arrays(data: Any) -> bool:
    """Whether `data` is arrays that `model.fit()` batches itself, not batches already.

    Arrays are NumPy arrays, backend tensors and pandas frames, or lists, tuples and dicts
    of them (or of numbers); a `tf.data.Dataset`, a generator or a `keras.utils.PyDataset`
    yields batches. Keras's own test of this is private (`keras.src`), and this one needs
    no TensorFlow, so that the hypermodels run on any Keras backend.
    """
    if isinstance(data, (list, tuple)):
        return len(data) > 0 and all(holds_arrays(item) for item in data)
    if isinstance(data, dict):
        return len(data) > 0 and all(holds_arrays(item) for item in data.values())
    if isinstance(data, numbers.Number):
        return True
    return hasattr(data, "__array__") or keras.ops.is_tensor(data)


def fit_data(hypermodel: keras_tuner.HyperModel, data: Any) -> dict[str, Any]:
    """The data arguments of `tuner.search()`, or of `hypermodel.fit()`, for `hypermodel`.

    Every hypermodel gets `data.fit_kwargs()`: `x` and `validation_data` at the data's own
    batch size, which a plain `keras_tuner.HyperModel` passes to `model.fit()` as they
    are. A `BatchSizeHyperModel` also gets `batched_data=data.fit_kwargs`, through which
    its `fit` asks for the data at each trial's batch size.

    ```python
    tuner.search(**hypermodels.fit_data(tuner.hypermodel, prepared), epochs=10)
    ```

    Args:
        hypermodel: The hypermodel that will train on the data.
        data: An object whose `fit_kwargs(batch_size=None)` returns keyword arguments of
            `model.fit()` (`x`, and `validation_data` if there is one) at that batch
            size: a `pipelines.data.PreparedData` or one of its walk-forward folds.

    Returns:
        Keyword arguments for `tuner.search()` or `hypermodel.fit()`.
    """
    kwargs = dict(data.fit_kwargs())
    if isinstance(hypermodel, BatchSizeHyperModel):
        kwargs["batched_data"] = data.fit_kwargs
    return kwargs


class BatchSizeHyperModel(keras_tuner.HyperModel):
    """A hypermodel whose `fit` trains with the tuned `batch_size` hyperparameter.

    Subclasses declare `batch_size` in `build()` with `self.declare_batch_size(hp)`,
    so that it is part of the search space from the first trial on: keras-tuner only
    learns of a hyperparameter declared in `fit()` after the first trial has run.

    Its `fit` asks the data for each trial's batch size through `batched_data`, which
    `fit_data` passes along with the data:

    ```python
    tuner = keras_tuner.RandomSearch(hypermodel, objective="val_loss", max_trials=5)
    tuner.search(**hypermodels.fit_data(hypermodel, prepared), epochs=10)
    ```

    Args:
        batch_size: The batch sizes to try.
        name: Optional name of the hypermodel.
        tunable: Whether the hyperparameters it declares are tuned.

    Raises:
        SearchSpaceError: If `batch_size` is empty or holds anything but whole numbers.
    """

    def __init__(
        self,
        batch_size: Sequence[int],
        *,
        name: str | None = None,
        tunable: bool = True,
    ) -> None:
        super().__init__(name=name, tunable=tunable)
        self.batch_size = check_choices("batch_size", batch_size, positive_integers=True)

    def structure(self, hp: keras_tuner.HyperParameters) -> Hashable | None:
        """The values of `hp` that change the model's shapes or traced code; None: unknown.

        A hypermodel that returns a key here lets ktlab's tuner train a configuration on a
        model traced before for another one with the same key, after giving it the state
        a fresh build would have (`tuners.observers.model_pool`). Every value the key
        leaves out must then be held in a variable (`hypermodels.held`), or be the data's
        (the batch size). None, the default, builds and traces every model anew.
        """
        del hp
        return None

    def declare_learning_rate(self, hp: keras_tuner.HyperParameters) -> float:
        """Declares (or reads) the log-uniform `learning_rate` from `self.learning_rate`.

        A fresh `HyperParameters()` builds with Adam's usual 1e-3 when the range holds it.
        """
        return float_hyperparameter(
            hp,
            "learning_rate",
            self.learning_rate,
            step=self.learning_rate_step,
            log=True,
            default=DEFAULT_LEARNING_RATE_VALUE,
        )

    def declare_batch_size(self, hp: keras_tuner.HyperParameters) -> int:
        """Declares (or reads) the `batch_size` hyperparameter."""
        return hp.Choice("batch_size", self.batch_size)

    def fit(
        self,
        hp: keras_tuner.HyperParameters,
        model: Any,
        *args: Any,
        batched_data: Callable[[int], dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Trains `model` with the trial's batch size, passing everything else to `fit()`.

        The batch size is applied in one place, as keras-io's tuning guide does: either
        `batched_data` builds the data at that size, or, for arrays, `model.fit()` batches
        them with `batch_size=`. A dataset given without `batched_data` keeps its own
        batches, which is only right when the search space holds one batch size.

        Args:
            hp: The trial's hyperparameters.
            model: The model that `build(hp)` returned.
            *args: Passed to `model.fit()`; the first is `x`.
            batched_data: A function that takes a batch size and returns the data at that
                size as `model.fit()` keyword arguments (`x`, `validation_data`), which
                replace any given: `prepared.fit_kwargs` of a
                `pipelines.data.PreparedData`, which builds each size once and caches it.
                `fit_data(hypermodel, prepared)` passes it.
            **kwargs: Passed to `model.fit()`.

        Returns:
            The `keras.callbacks.History` of `model.fit()`.

        Raises:
            ValueError: If the data comes in batches (not arrays) without `batched_data`
                while the search space holds several batch sizes, so the trial's could
                not be applied.
        """
        batch_size = self.declare_batch_size(hp)
        args = list(args)
        if batched_data is not None:
            data = dict(batched_data(batch_size))
            if args:
                args[0] = data.pop("x")
            kwargs.update(data)
        training_data = args[0] if args else kwargs.get("x")
        if holds_arrays(training_data):
            kwargs["batch_size"] = batch_size
            return model.fit(*args, **kwargs)
        if batched_data is None and len(self.batch_size) > 1:
            raise ValueError(
                f"{type(self).__name__} tunes batch_size over {self.batch_size}, but its data "
                f"comes already batched; pass batched_data (for example "
                f"tuner.search(**hypermodels.fit_data(hypermodel, prepared))), arrays, or "
                f"a single batch_size"
            )
        # Keras ignores `batch_size` with batched data, which carries its own, and ignores
        # `shuffle` with a warning on every trial: such data is shuffled, if at all, where
        # it is built.
        kwargs.pop("batch_size", None)
        kwargs.setdefault("shuffle", False)
        return model.fit(*args, **kwargs)
