"""The `volatility` target: next day's realised volatility, forecast in log space.

Daily prices are close to a random walk: with `target = "close"` or `"return"` every tuned
model ties with the persistence forecast. Next-day volatility is more predictable (large
moves cluster), so there a tuned model can win or lose against simple rules
(`pipelines.data.references`).

Here a day's realised volatility is its absolute log return,
`v_t = |log(close_t / close_{t-1})|`. The model forecasts it in log space,
`log(FLOOR + v_{t+1})`: the floor of one basis point (0.0001) keeps a day with an
unchanged close (`v = 0`, up to 1.4% of a bundled ticker's days) finite, at `log(0.0001) = -9.2`
(the median day's value is about -4.4), instead of at minus infinity. Forecasts are
turned back with `exp(y) - FLOOR` (never below 0), and every score is in volatility units.

```python
volatility = absolute_log_returns(prices["close"])   # v_t, NaN on the first day
targets = to_log_space(volatility.shift(-1))          # what the model is trained on
forecast = from_log_space(targets)                    # back in volatility units
```
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# One basis point: about the bundled data's 1% quantile of absolute log returns (0 to
# 0.0002 by ticker), so it moves only the days of (nearly) unchanged close.
FLOOR = 1e-4
ABS_RETURN = "abs_log_return"


def absolute_log_returns(close: pd.Series) -> pd.Series:
    """Each day's realised volatility `|log(close_t / close_{t-1})|`; NaN on the first day."""
    return np.log(close.astype("float64")).diff().abs()


def to_log_space(volatility: np.ndarray | pd.Series) -> np.ndarray:
    """`log(FLOOR + volatility)`: the scale the model is trained on."""
    return np.log(FLOOR + np.asarray(volatility, dtype="float64"))


def from_log_space(values: np.ndarray) -> np.ndarray:
    """The inverse of `to_log_space`, `exp(values) - FLOOR`, clipped at 0.

    A forecast below `log(FLOOR)` would otherwise be a negative volatility.
    """
    return np.maximum(np.exp(np.asarray(values, dtype="float64")) - FLOOR, 0.0)


def volatility_features(features: pd.DataFrame, close: pd.Series, rolling_window: int,
                        moving_average_window: int) -> None:
    """Adds the day's absolute log return and its two rolling means to `features`.

    The means span the same windows as the price features (`rolling_window` and
    `moving_average_window` days, ending today), so the moving-average reference forecast
    is one of the model's inputs.
    """
    volatility = absolute_log_returns(close)
    features[ABS_RETURN] = volatility
    features[f"{ABS_RETURN}_mean_{rolling_window}"] = volatility.rolling(rolling_window).mean()
    features[f"{ABS_RETURN}_ma_{moving_average_window}"] = (
        volatility.rolling(moving_average_window).mean())


def volatility_targets(features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row t's model target, actual value and persistence forecast for the volatility target.

    Args:
        features: Feature rows with the `abs_log_return` column (`volatility_features`).

    Returns:
        `log(FLOOR + v_{t+1})`, `v_{t+1}` and `v_t` per row; the last row has no next day,
        so its first two are NaN.
    """
    today = features[ABS_RETURN].to_numpy(dtype="float64")
    tomorrow = np.append(today[1:], np.nan)
    return to_log_space(tomorrow), tomorrow, today
