"""Multi-step baselines for any regular series, and the scale-free scores that compare them.

Every forecast is made from an origin `t`, the last known row: `values[: t + 1]` is known,
and row `h - 1` of the answer forecasts `values[t + h]` for `h = 1 .. horizon`.

- `persistence`: every step repeats `values[t]`.
- `seasonal_naive`: each step repeats the same step one season earlier.
- `statistical`: an exponential smoothing (ETS) state-space model from statsmodels, fitted
  on the training rows only, then run over the whole series with those parameters.
- `mase` and `smape`: scores that do not depend on the series' units.
- `season_of`: the season that a frequency implies.

```python
origins = np.arange(train_stop - 1, len(values) - horizon)
forecasts, description = statistical(values, train_stop, origins, horizon, season=12)
print(description, mase(actual, forecasts, values[:train_stop], season=12))
```
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

# A day's season is its week, an hour's its day; a year has none (1: the naive forecast).
SEASONS = {"hourly": 24, "daily": 7, "business-daily": 5, "weekly": 52, "monthly": 12,
           "quarterly": 4, "yearly": 1}

# pandas' offsets by our names. BusinessDay comes before Day so that a business day (and a
# custom one, its subclass) is not read as a calendar day.
_OFFSETS = (
    ("hourly", (pd.offsets.Hour,)),
    ("business-daily", (pd.offsets.BusinessDay,)),
    ("daily", (pd.offsets.Day,)),
    ("weekly", (pd.offsets.Week,)),
    ("monthly", (pd.offsets.MonthEnd, pd.offsets.MonthBegin, pd.offsets.BusinessMonthEnd,
                 pd.offsets.BusinessMonthBegin)),
    ("quarterly", (pd.offsets.QuarterEnd, pd.offsets.QuarterBegin, pd.offsets.BQuarterEnd,
                   pd.offsets.BQuarterBegin)),
    ("yearly", (pd.offsets.YearEnd, pd.offsets.YearBegin, pd.offsets.BYearEnd,
                pd.offsets.BYearBegin)),
)

# statsmodels' heuristic initial states (Hyndman et al. 2008, section 2.6) need 10 rows.
MIN_STATISTICAL_ROWS = 10


def season_of(frequency: str | pd.DateOffset) -> int:
    """The season (steps per cycle) of a frequency, for the seasonal naive forecast and ETS.

    | frequency      | our name         | pandas aliases (examples)  | season |
    |----------------|------------------|----------------------------|--------|
    | hourly         | `hourly`         | `h`                        | 24     |
    | daily          | `daily`          | `D`                        | 7      |
    | business days  | `business-daily` | `B`, `C`                   | 5      |
    | weekly         | `weekly`         | `W`, `W-SUN`, `W-MON`      | 52     |
    | monthly        | `monthly`        | `ME`, `MS`, `BME`, `BMS`   | 12     |
    | quarterly      | `quarterly`      | `QE`, `QS-OCT`, `BQE`      | 4      |
    | yearly         | `yearly`         | `YE`, `YS`, `YE-DEC`       | 1      |

    Args:
        frequency: One of our names, or a pandas alias or offset (as `pandas.infer_freq`).

    Returns:
        The number of steps in one season; 1 means no season.

    Raises:
        ValueError: A frequency not in the table, multiples (`2h`) included.
    """
    if isinstance(frequency, str) and frequency.strip().lower() in SEASONS:
        return SEASONS[frequency.strip().lower()]
    try:
        offset = pd.tseries.frequencies.to_offset(frequency)
    except ValueError:
        offset = None
    if offset is not None and offset.n == 1:
        for name, classes in _OFFSETS:
            if isinstance(offset, classes):
                return SEASONS[name]
    raise ValueError(f"no season is known for the frequency {str(frequency)!r}: use one of "
                     f"{', '.join(SEASONS)} (or its pandas alias), or give the season")


def _origins(values: np.ndarray, origins: np.ndarray, horizon: int, earliest: int) -> np.ndarray:
    """`origins` as integers, checked against the series and the earliest usable origin."""
    origins = np.asarray(origins, dtype=np.int64)
    if horizon < 1:
        raise ValueError(f"the horizon must be at least 1, not {horizon}")
    if origins.size and (origins.min() < earliest or origins.max() >= len(values)):
        raise ValueError(f"forecast origins must lie in [{earliest}, {len(values) - 1}]; "
                         f"got {origins.min()} to {origins.max()}")
    return origins


def persistence(values: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """Every step forecast as the last known value: `values[t]`, shape `(origins, horizon)`."""
    origins = _origins(values, origins, horizon, earliest=0)
    return np.repeat(np.asarray(values, dtype=np.float64)[origins][:, None], horizon, axis=1)


def seasonal_naive(values: np.ndarray, origins: np.ndarray, horizon: int,
                   season: int) -> np.ndarray:
    """Each step forecast as the last known value one or more whole seasons earlier.

    The forecast of `t + h` is `values[t + h - season * ceil(h / season)]`: the same point
    of the season in the last known cycle. With `season = 1` it is persistence.

    Args:
        values: The whole series.
        origins: The last known row of each forecast. The first step of origin `t` reads
            row `t + 1 - season`, so origins before `season - 1` have no forecast.
        horizon: Steps forecast from each origin.
        season: Steps per season (`season_of`).

    Returns:
        Forecasts of shape `(len(origins), horizon)`.

    Raises:
        ValueError: An origin before `season - 1` or past the end, or a season below 1.
    """
    if season < 1:
        raise ValueError(f"the season must be at least 1, not {season}")
    origins = _origins(values, origins, horizon, earliest=season - 1)
    steps = np.arange(1, horizon + 1)
    # `t + h - season * ceil(h / season)` in integers, so a long horizon stays exact.
    offsets = steps - season * (-(-steps // season))
    return np.asarray(values, dtype=np.float64)[origins[:, None] + offsets[None, :]]


def statistical(values: np.ndarray, train_stop: int, origins: np.ndarray, horizon: int,
                season: int | None) -> tuple[np.ndarray, str]:
    """Forecasts of an additive ETS model fitted on the training rows only.

    Three ETS models from statsmodels' state-space `ExponentialSmoothing` are fitted on
    `values[:train_stop]` (no trend, a trend, a damped trend; with an additive season of
    `season` steps where the training rows hold enough seasons for its initial values),
    and the one with the lowest AICc is kept, as Hyndman's automatic ETS does. Its fixed
    parameters then filter the whole series once, and every origin's forecasts come from
    its predicted state with the model's own matrices: step `h` from origin `t` is
    `Z @ T ** (h - 1) @ a[t + 1 | t]`. Each origin therefore forecasts from the rows up to
    it, with no refit; origins inside the training rows are in-sample.

    Args:
        values: The whole series (finite).
        train_stop: The number of training rows at the start of `values`.
        origins: The last known row of each forecast.
        horizon: Steps forecast from each origin.
        season: Steps per season; None or 1 for none.

    Returns:
        The forecasts, of shape `(len(origins), horizon)`, and a one-line description.

    Raises:
        ValueError: Fewer than 10 training rows, an origin past the end, or no model that
            statsmodels could fit.
    """
    # statsmodels takes about a second to import, so it is imported only when a statistical
    # baseline is asked for: a bad file is reported before that, and tuning never waits.
    from statsmodels.tools import sm_exceptions
    from statsmodels.tsa.statespace import exponential_smoothing

    values = np.asarray(values, dtype=np.float64)
    origins = _origins(values, origins, horizon, earliest=0)
    if not MIN_STATISTICAL_ROWS <= train_stop <= len(values):
        raise ValueError(f"a statistical baseline needs {MIN_STATISTICAL_ROWS} to "
                         f"{len(values)} training rows, not {train_stop}")
    train = values[:train_stop]
    seasonal, note = None, ""
    if season is not None and season > 1:
        # statsmodels' heuristic initial seasons need two full seasons and 10 rows beyond
        # half a season at each end.
        needed = max(2 * season, MIN_STATISTICAL_ROWS + 2 * (season // 2))
        if train_stop >= needed:
            seasonal = season
        else:
            note = f"season {season} left out: fewer than {needed:,} training rows; "

    best, best_aicc = None, math.inf
    for trend, damped in ((False, False), (True, False), (True, True)):
        model = exponential_smoothing.ExponentialSmoothing(
            train, trend=trend, damped_trend=damped, seasonal=seasonal,
            initialization_method="heuristic")
        # A fit that stops short of convergence still has usable parameters and competes on
        # AICc; its warning would only interrupt the run's console with nothing to act on.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sm_exceptions.ConvergenceWarning)
            try:
                fitted = model.fit(disp=False)
            except (ValueError, np.linalg.LinAlgError):
                continue
        if np.isfinite(fitted.aicc) and fitted.aicc < best_aicc:
            best, best_aicc = fitted, fitted.aicc
    if best is None:
        raise ValueError(f"statsmodels could not fit an ETS model to the {train_stop:,} "
                         "training rows")

    # The heuristic initial states are recomputed from whatever series a model is given, so
    # the whole series is filtered from the training fit's own initial states, as known
    # values: nothing after the training rows reaches the parameters or the start.
    initial = np.asarray(best.initial_state, dtype=np.float64)
    known = {"initial_level": initial[0]}
    if best.model.trend:
        known["initial_trend"] = initial[1]
    if seasonal:
        known["initial_seasonal"] = initial[-seasonal:]
    whole = best.apply(values, initialization_method="known", **known)

    design = np.asarray(whole.model["design"], dtype=np.float64)[0]
    transition = np.asarray(whole.model["transition"], dtype=np.float64)
    intercept = float(np.asarray(whole.model["obs_intercept"]).ravel()[0])
    # Row h - 1 of `loadings` is Z @ T ** (h - 1): how step h reads the predicted state.
    loadings = np.empty((horizon, transition.shape[0]))
    loadings[0] = design
    for step in range(1, horizon):
        loadings[step] = loadings[step - 1] @ transition
    # Column t + 1 of `predicted_state` is a[t + 1 | t], the state known at origin t.
    forecasts = (loadings @ whole.predicted_state[:, origins + 1]).T + intercept

    trend_code = "Ad" if best.model.damped_trend else "A" if best.model.trend else "N"
    name = f"ETS(A,{trend_code},{'A' if seasonal else 'N'})"
    season_note = f"season {seasonal}, " if seasonal else note
    description = (f"{name} fitted on {train_stop:,} training rows (statsmodels; "
                   f"{season_note}trend chosen by AICc)")
    return forecasts, description


def mase(actual: np.ndarray, forecast: np.ndarray, train_values: np.ndarray,
         season: int) -> float:
    """The mean absolute scaled error: the forecasts' MAE over a seasonal naive's in-sample MAE.

    The scale is `mean(|y[t] - y[t - season]|)` over the training values (Hyndman and
    Koehler 2006); with `season = 1` it is the one-step naive forecast's error. Below 1,
    the forecasts beat that in-sample seasonal naive forecast.

    Args:
        actual: The values forecast, of any shape.
        forecast: Their forecasts, of the same shape.
        train_values: The training rows of the series, in order.
        season: Steps per season of the scale's seasonal naive forecast.

    Returns:
        The MASE.

    Raises:
        ValueError: Shapes that differ, too few training values, or training values that
            repeat exactly every `season` steps (constant ones included), whose scale is 0.
    """
    actual = np.asarray(actual, dtype=np.float64)
    forecast = np.asarray(forecast, dtype=np.float64)
    train_values = np.asarray(train_values, dtype=np.float64)
    if actual.shape != forecast.shape:
        raise ValueError(f"actual values {actual.shape} and forecasts {forecast.shape} "
                         "differ in shape")
    if season < 1 or len(train_values) <= season:
        raise ValueError(f"MASE with season {season} needs more than {season} training values, "
                         f"not {len(train_values)}")
    scale = np.mean(np.abs(train_values[season:] - train_values[:-season]))
    if scale == 0:
        raise ValueError(f"MASE is undefined: the training values repeat exactly every "
                         f"{season} step(s) (or are constant), so the seasonal naive forecast's "
                         "in-sample error that scales it is 0")
    return float(np.mean(np.abs(forecast - actual)) / scale)


def smape(actual: np.ndarray, forecast: np.ndarray) -> float | None:
    """The symmetric mean absolute percentage error, 0 to 200, where the target is positive.

    `100 * mean(2 |F - A| / (|A| + |F|))`. A percentage of a value near or below zero says
    little, so it is given only when every actual value is above 0.

    Returns:
        The sMAPE, or None when any actual value is 0 or below.
    """
    actual = np.asarray(actual, dtype=np.float64)
    forecast = np.asarray(forecast, dtype=np.float64)
    if not np.all(actual > 0):
        return None
    return float(100.0 * np.mean(2.0 * np.abs(forecast - actual)
                                 / (np.abs(actual) + np.abs(forecast))))
