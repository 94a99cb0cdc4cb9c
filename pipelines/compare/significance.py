"""Tests behind the comparison's verdicts: tuners against each other, models against naive.

Two questions decide what a comparison may claim:

- Does one tuner's best objective differ from another's by more than the spread over
  seeds? Runs with the same seed are paired, and `compare_paired` gives the mean paired
  difference, its 95% bootstrap interval (`scipy.stats.bootstrap`), the paired t-test
  (`scipy.stats.ttest_rel`) and, from 6 seeds, the Wilcoxon signed-rank test
  (`scipy.stats.wilcoxon`; with fewer pairs no outcome reaches p < 0.05).
- Does a chosen model forecast the held-out rows better than the naive forecast?
  `diebold_mariano` tests the difference of squared errors, row by row.

```python
paired = compare_paired([0.010, 0.012, 0.011], [0.020, 0.021, 0.019])
paired.differ, paired.t_test_p            # True, 0.00409 (3 seeds)
test = diebold_mariano(actual, predicted, naive)
test.statistic, test.p_value, test.verdict
```
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

ALPHA = 0.05
CONFIDENCE = 0.95
# The Wilcoxon signed-rank test's smallest two-sided p-value with n pairs is 2 / 2**n:
# 0.0625 with 5 pairs, 0.03125 with 6, so below 6 seeds it could never say "differ".
WILCOXON_MIN_SEEDS = 6
BOOTSTRAP_RESAMPLES = 9999
# The bootstrap resamples with a fixed seed, so that a report is the same when rewritten.
BOOTSTRAP_SEED = 0
PREDICTIONS_FILE = "predictions.csv"


@dataclasses.dataclass(frozen=True)
class PairedComparison:
    """Two tuners' best objective values over the same seeds, and whether they differ.

    Attributes:
        seeds: How many seeds both have a value for.
        mean_difference: The mean over seeds of `second - first`.
        interval: The 95% bootstrap interval of that mean (BCa), or None when the
            differences do not vary enough for one.
        t_test_p: The paired t-test's two-sided p-value; NaN when every difference is 0.
        wilcoxon_p: The Wilcoxon signed-rank test's two-sided p-value, from 6 seeds on;
            else None.
    """

    seeds: int
    mean_difference: float
    interval: tuple[float, float] | None
    t_test_p: float
    wilcoxon_p: float | None

    @property
    def differ(self) -> bool:
        """Whether every test run says p < 0.05 and the interval leaves out 0."""
        if not (self.t_test_p < ALPHA):  # False for NaN too.
            return False
        if self.wilcoxon_p is not None and not self.wilcoxon_p < ALPHA:
            return False
        return self.interval is None or not self.interval[0] <= 0.0 <= self.interval[1]


def compare_paired(first: Sequence[float], second: Sequence[float]) -> PairedComparison:
    """Compares two tuners' values, paired by seed: `first[i]` and `second[i]` share one.

    Args:
        first: One value per seed, for instance the best tuner's best validation losses.
        second: The other tuner's values for the same seeds, in the same order.

    Returns:
        The paired comparison of `second - first`.

    Raises:
        ValueError: For lists of different lengths or fewer than 2 pairs.
    """
    from scipy import stats

    first_values = np.asarray(first, dtype="float64")
    second_values = np.asarray(second, dtype="float64")
    if first_values.shape != second_values.shape or first_values.ndim != 1:
        raise ValueError(f"compare_paired needs two lists of the same length, got "
                         f"{first_values.shape} and {second_values.shape}")
    if len(first_values) < 2:
        raise ValueError(f"compare_paired needs at least 2 pairs, got {len(first_values)}")
    differences = second_values - first_values
    with warnings.catch_warnings():
        # Constant differences make the t statistic infinite (p = 0) or undefined (all 0),
        # and the BCa interval degenerate; those cases are read from the results below.
        warnings.simplefilter("ignore")
        t_test_p = float(stats.ttest_rel(second_values, first_values).pvalue)
        wilcoxon_p = None
        if len(differences) >= WILCOXON_MIN_SEEDS:
            wilcoxon_p = (float(stats.wilcoxon(differences).pvalue)
                          if np.any(differences != 0) else math.nan)
        interval = None
        if np.ptp(differences) > 0:
            result = stats.bootstrap((differences,), np.mean, confidence_level=CONFIDENCE,
                                     n_resamples=BOOTSTRAP_RESAMPLES,
                                     rng=np.random.default_rng(BOOTSTRAP_SEED))
            low, high = result.confidence_interval
            if math.isfinite(low) and math.isfinite(high):
                interval = (float(low), float(high))
    return PairedComparison(seeds=len(differences), mean_difference=float(differences.mean()),
                            interval=interval, t_test_p=t_test_p, wilcoxon_p=wilcoxon_p)


@dataclasses.dataclass(frozen=True)
class DieboldMariano:
    """A model's forecasts against the naive forecast's, on the same rows.

    Attributes:
        statistic: The Diebold–Mariano statistic with the Harvey–Leybourne–Newbold
            correction; below 0 when the model's squared errors are the smaller.
        p_value: Its two-sided p-value, from Student's t with `rows - 1` degrees of freedom.
        rows: How many rows were compared.
        model_mse: The model's mean squared error on those rows.
        naive_mse: The naive forecast's.
    """

    statistic: float
    p_value: float
    rows: int
    model_mse: float
    naive_mse: float

    @property
    def verdict(self) -> str:
        """`"beats"`, `"loses to"` or `"does not beat"` (no difference at p < 0.05)."""
        return naive_verdict(self.statistic, self.p_value)


def naive_verdict(statistic: float, p_value: float) -> str:
    """`"beats"`, `"loses to"` or `"does not beat"`: a model against the naive forecast."""
    if not p_value < ALPHA:  # NaN when the errors are the same on every row.
        return "does not beat"
    return "beats" if statistic < 0 else "loses to"


def diebold_mariano(actual: Sequence[float], predicted: Sequence[float],
                    naive: Sequence[float], horizon: int = 1) -> DieboldMariano:
    """The Diebold–Mariano test of equal squared errors, with the HLN correction.

    With `d_t = (predicted_t - actual_t)**2 - (naive_t - actual_t)**2` over T rows, the
    statistic is `mean(d) / sqrt(V / T)`, where V is the long-run variance of d: its
    autocovariances up to lag `horizon - 1` (the lag-0 variance alone for one-step
    forecasts). Harvey, Leybourne and Newbold (1997) multiply it by
    `sqrt((T + 1 - 2h + h (h - 1) / T) / T)` and read it against Student's t with T - 1
    degrees of freedom, which holds its size on short test sets.

    Args:
        actual: The observed values.
        predicted: The model's forecasts of them.
        naive: The naive forecasts of them.
        horizon: The forecast horizon h in rows. Each argument may hold one column per
            step ahead; a row's loss is then its mean squared error over the steps.

    Returns:
        The test's statistic, p-value and both mean squared errors.

    Raises:
        ValueError: For inputs of different lengths, fewer than 2 rows, or a horizon out
            of range.
    """
    # Hand-written: neither SciPy nor scikit-learn has the Diebold–Mariano test, and the
    # few lines below are the whole of it.
    from scipy import stats

    # A row of several steps ahead (a horizon) is one loss: its mean squared error.
    actual_values, predicted_values, naive_values = (
        np.asarray(values, dtype="float64").reshape(len(values), -1)
        for values in (actual, predicted, naive))
    rows = len(actual_values)
    if len(predicted_values) != rows or len(naive_values) != rows:
        raise ValueError(f"diebold_mariano needs series of one length, got {rows}, "
                         f"{len(predicted_values)} and {len(naive_values)}")
    if rows < 2:
        raise ValueError(f"diebold_mariano needs at least 2 rows, got {rows}")
    if isinstance(horizon, bool) or not isinstance(horizon, int) or not 1 <= horizon < rows:
        raise ValueError(f"horizon must be a whole number from 1 to {rows - 1}, got "
                         f"{horizon!r}")
    model_errors = np.mean((predicted_values - actual_values) ** 2, axis=1)
    naive_errors = np.mean((naive_values - actual_values) ** 2, axis=1)
    differences = model_errors - naive_errors
    centred = differences - differences.mean()
    # Autocovariances divide by T at every lag, as Diebold and Mariano's estimator does.
    long_run_variance = float(np.mean(centred**2)) + 2.0 * sum(
        float(np.sum(centred[lag:] * centred[:-lag])) / rows for lag in range(1, horizon))
    if long_run_variance > 0:
        statistic = differences.mean() / math.sqrt(long_run_variance / rows)
        statistic *= math.sqrt((rows + 1 - 2 * horizon + horizon * (horizon - 1) / rows)
                               / rows)
        p_value = float(2.0 * stats.t.sf(abs(statistic), df=rows - 1))
    else:
        statistic = p_value = math.nan
    return DieboldMariano(statistic=float(statistic), p_value=p_value, rows=rows,
                          model_mse=float(model_errors.mean()),
                          naive_mse=float(naive_errors.mean()))


def naive_forecast(predictions: pd.DataFrame, prepared: Any) -> np.ndarray | None:
    """The naive forecast of each row of a run's `predictions.csv`, or None.

    A series' predictions carry it in their `baseline` column (prices: the persistence
    forecast; any series: the reference forecast best on the validation rows), one column
    per step of a horizon (`baseline_1`, ...); a regression table's is the training rows'
    mean, as `prepared.baselines` scores it. Classes have none that squared errors could
    compare.
    """
    steps = _steps(predictions)
    if steps:
        return predictions[[f"baseline_{step}" for step in steps]].to_numpy(dtype="float64")
    if "baseline" in predictions:
        return predictions["baseline"].to_numpy(dtype="float64")
    if prepared.task != "regression":
        return None
    mean = float(np.mean(np.asarray(prepared.splits["train"].actual, dtype="float64")))
    return np.full(len(predictions), mean)


def compare_with_naive(run_dir: pathlib.Path, prepared: Any) -> DieboldMariano | None:
    """The Diebold–Mariano test of a finished run's chosen model on its test rows.

    Args:
        run_dir: A run directory with `predictions.csv` (`actual`, `predicted` and, for a
            series, `baseline`).
        prepared: The data the run was tuned on (for a table's training mean).

    Returns:
        The test, or None for classes or when the file is not there.
    """
    path = pathlib.Path(run_dir) / PREDICTIONS_FILE
    if not path.is_file():
        return None
    predictions = pd.read_csv(path)
    naive = naive_forecast(predictions, prepared)
    if naive is None or len(predictions) < 2:
        return None
    steps = _steps(predictions)
    if steps:
        columns = {kind: predictions[[f"{kind}_{step}" for step in steps]]
                   for kind in ("actual", "predicted")}
        return diebold_mariano(columns["actual"], columns["predicted"], naive,
                               horizon=min(len(steps), len(predictions) - 1))
    return diebold_mariano(predictions["actual"], predictions["predicted"], naive)


def _steps(predictions: pd.DataFrame) -> list[int]:
    """The steps ahead of a horizon's `predictions.csv` (`actual_1`, ...); [] for one step."""
    return [int(column.rpartition("_")[2]) for column in predictions.columns
            if column.startswith("actual_")]
