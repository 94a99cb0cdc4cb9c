"""Which way an objective points, and the one rule that picks the best trial.

Neither needs TensorFlow: reports, plots and `ktlab compare` use them on what a run
wrote to disk.
"""

from __future__ import annotations

import math
from typing import Any

import pandas

# Substrings of a metric's name that tell which way is better; the first match wins.
MINIMIZED = ("loss", "mae", "mse", "rmse", "mape", "error", "crossentropy")
MAXIMIZED = ("acc", "auc", "precision", "recall")
# What the tuner measures on each trial's trained model (`tuners.results.measures`), not a Keras
# metric: the parameter count and the median time to predict one batch. Both minimized.
MEASURED = ("params", "latency_ms")
# The `trials.csv` statuses whose scores are ranked: keras-tuner's COMPLETED trials.
RANKED_STATUSES = ("completed", "stopped_early")


def objective_direction(name: str) -> str:
    """Infers whether a metric is minimized or maximized from its name.

    Args:
        name: A metric name such as `"val_loss"`, `"val_rmse"` or `"val_accuracy"`, or a
            measure of the model (`MEASURED`: `"params"`, `"latency_ms"`), minimized.

    Returns:
        `"min"` or `"max"`.

    Raises:
        ValueError: If the name says neither.
    """
    lowered = name.lower()
    if lowered in MEASURED or any(part in lowered for part in MINIMIZED):
        return "min"
    if any(part in lowered for part in MAXIMIZED):
        return "max"
    raise ValueError(
        f"cannot tell whether objective {name!r} is minimized or maximized; pass "
        f"keras_tuner.Objective({name!r}, direction='min' or 'max')"
    )


def usable_scores(trials: pandas.DataFrame) -> pandas.Series:
    """Each trial's score where it may count, NaN where it may not.

    A score counts when it is finite and its trial completed or stopped early: the trials
    keras-tuner records as COMPLETED and ranks in `oracle.get_best_trials()`, so that
    ktlab's best trial is keras-tuner's. A pruned trial (`tuners.observers.pruning`, STOPPED in
    keras-tuner) keeps the score of its best epoch for the reader, but it is not ranked,
    as Optuna ranks only complete trials; a failed one has no score.
    """
    scores = pandas.to_numeric(trials["score"], errors="coerce").astype("float64")
    finished = trials["status"].isin(RANKED_STATUSES)
    finite = scores.map(lambda value: math.isfinite(value))
    return scores.where(finished & finite)


def rank_trials(trials: pandas.DataFrame, direction: str = "min") -> pandas.DataFrame:
    """The trials whose score counts (see `usable_scores`), best first; ties keep their order."""
    if direction not in ("min", "max"):
        raise ValueError(f"direction must be 'min' or 'max', got {direction!r}")
    scores = usable_scores(trials)
    usable = trials[scores.notna()]
    order = scores[scores.notna()].sort_values(ascending=direction == "min", kind="stable")
    return usable.loc[order.index]


def best_trial_id(trials: pandas.DataFrame, direction: str = "min") -> str | None:
    """The one rule for "the best trial": the best score that counts (see `usable_scores`).

    The run, the report, `ktlab compare`, the plots and the checkpoint pruning all ask
    this function.

    Args:
        trials: One row per trial, as `tuners.load_trials` returns.
        direction: `"min"` or `"max"`, the objective's direction.

    Returns:
        The best trial's id, or None when no trial has a score that counts.
    """
    ranked = rank_trials(trials, direction)
    return None if ranked.empty else str(ranked["trial_id"].iloc[0])


def oracle_best_trial_id(oracle: Any) -> str | None:
    """The best trial as keras-tuner ranks it: `oracle.get_best_trials(1)`.

    `tuner.get_best_hyperparameters()` and `tuner.get_best_models()` read the same list;
    keras-tuner pads it with unfinished trials when none completed, so None is returned
    then, and when the best score is not finite.

    Args:
        oracle: A keras-tuner `Oracle` (not a worker's `OracleClient`).

    Returns:
        The trial id, or None.
    """
    best = oracle.get_best_trials(1)
    if not best or best[0].status != "COMPLETED" or best[0].score is None:
        return None
    return best[0].trial_id if math.isfinite(best[0].score) else None
