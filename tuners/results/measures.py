"""Measures of a trial's trained model that can be objectives: its size and its speed.

`tuners.results.objectives.MEASURED` names them; both are minimized.

- `params`: the model's parameter count, `model.count_params()`;
- `latency_ms`: the median wall time, in milliseconds, of `model.predict_on_batch` on one
  batch of the validation data, over `LATENCY_REPEATS` calls after one warm-up call (which
  builds the prediction function). It is measured on the machine the trial runs on, with
  whatever else that machine is doing at the time, so compare it within one run.

`tuners.tuner.Tuner` measures each trained model at the end of its training and
adds the values to the metrics keras-tuner reports to the oracle (`with_measures`).
"""

from __future__ import annotations

import copy
import numbers
import statistics
import time
from collections.abc import Sequence
from typing import Any

from tuners.results.objectives import MEASURED

LATENCY_REPEATS = 7


def measure_model(model: Any, batch: Any, names: Sequence[str]) -> dict[str, float]:
    """Measures a trained model.

    Args:
        model: A built Keras model.
        batch: One batch of inputs, as `model.predict_on_batch` takes it; only needed for
            `latency_ms`.
        names: Which measures, a subset of `MEASURED`.

    Returns:
        `{name: value}` for each name.

    Raises:
        ValueError: For a name that is not a measure, or `latency_ms` without a batch.
    """
    unknown = [name for name in names if name not in MEASURED]
    if unknown:
        raise ValueError(f"unknown measure {unknown[0]!r}; use one of {', '.join(MEASURED)}")
    values: dict[str, float] = {}
    if "params" in names:
        values["params"] = float(model.count_params())
    if "latency_ms" in names:
        if batch is None:
            raise ValueError("latency_ms needs a batch of validation inputs to predict")
        model.predict_on_batch(batch)
        times = []
        for _ in range(LATENCY_REPEATS):
            started = time.perf_counter()
            model.predict_on_batch(batch)
            times.append(time.perf_counter() - started)
        values["latency_ms"] = 1000.0 * statistics.median(times)
    return values


def first_batch(validation_data: Any, batch_size: int = 32) -> Any:
    """The inputs of the first batch of `validation_data`, or None when there is none.

    Args:
        validation_data: What `model.fit` takes as `validation_data`: a `tf.data.Dataset`
            (or any iterable) of `(x, y)` batches, or a tuple `(x, y[, weights])` of arrays.
        batch_size: How many rows to take from arrays.
    """
    if validation_data is None:
        return None
    if isinstance(validation_data, (tuple, list)):
        inputs = validation_data[0]
        if isinstance(inputs, dict):
            return {name: value[:batch_size] for name, value in inputs.items()}
        return inputs[:batch_size]
    try:
        batch = next(iter(validation_data))
    except (StopIteration, TypeError):
        return None
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def with_measures(results: Any, values: dict[str, float], objective_name: str) -> Any:
    """keras-tuner's result of one training, with the measures added as metrics.

    A `History` gets each measure as a metric constant over its epochs, so keras-tuner
    still finds the best epoch (and its step) itself; a dict gets them added; a number (the
    objective's value) becomes a dict. The result given is not changed.
    """
    if not values:
        return results
    if isinstance(results, dict):
        return {**results, **values}
    if isinstance(results, numbers.Real):
        return {objective_name: float(results), **values}
    history = getattr(results, "history", None)
    if isinstance(history, dict):
        epochs = max((len(series) for series in history.values()), default=0)
        measured = copy.copy(results)
        measured.history = {**history, **{name: [value] * epochs
                                          for name, value in values.items()}}
        return measured
    return results


def last_values(trial: Any, names: Sequence[str]) -> dict[str, float | None]:
    """The last value a trial reported of each metric in `names`; None where it has none."""
    metrics = getattr(trial, "metrics", None)
    return {name: float(metrics.get_last_value(name))
            if metrics is not None and metrics.exists(name) else None for name in names}
