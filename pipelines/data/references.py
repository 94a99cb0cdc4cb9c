"""Reference forecasts that every stock report scores beside the model: persistence and a
moving average, on the same rows and in the same units as the model.

- persistence: tomorrow's value = today's (the close; for `target = "volatility"`, today's
  absolute log return). It is also the `baseline` that `metrics.json` has always had.
- moving average: tomorrow's value = the mean of the last `moving_average_window` days'
  values (`data.moving_average_window`, 30 by default), today included.

For `close` and `return` both forecast the close (a forecast return is scored as a price);
for `volatility` both forecast the absolute log return.

```python
references = reference_forecasts("volatility", features, moving_average_window=30)
scores = reference_scores(references, prepared.splits)  # metrics.json's "baselines"
```
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from pipelines.data.prepared import Split, score
from pipelines.data.volatility import ABS_RETURN


@dataclasses.dataclass
class ReferenceForecast:
    """A rule that forecasts the next steps from the steps up to now, as the model does.

    Attributes:
        description: What the rule forecasts, for reports.
        forecasts: The forecast of each sample, indexed by the first step it forecasts (one
            column per step of a horizon above 1).
        extra: More scores of `(actual, predicted)`: a series' MASE and sMAPE.
    """

    description: str
    forecasts: pd.Series | pd.DataFrame
    extra: Callable[[np.ndarray, np.ndarray], dict[str, float]] | None = dataclasses.field(
        default=None, repr=False)

    def predictions(self, split: Split) -> np.ndarray:
        """The forecasts of `split`'s samples, in their order (one column per step of a
        horizon above 1)."""
        return self.forecasts.reindex(split.index).to_numpy(dtype="float64")

    def scores(self, split: Split) -> dict[str, float]:
        """MSE, MAE and RMSE on `split`'s samples, as the model is scored (and a series'
        scale-free scores, MASE and sMAPE)."""
        predicted = self.predictions(split)
        scores = score("regression", split.actual, predicted)
        if self.extra is not None:
            scores.update(self.extra(split.actual, predicted))
        return scores


def reference_forecasts(target: str, features: pd.DataFrame,
                        moving_average_window: int) -> dict[str, ReferenceForecast]:
    """The persistence and moving-average forecasts of a stock target, in its own units.

    Args:
        target: `close`, `return` (both scored as prices) or `volatility`.
        features: The feature rows, indexed by date, as `make_stock_features` returns
            them (with `volatility=True` for the volatility target).
        moving_average_window: Days in the moving average.

    Returns:
        `{"persistence": ..., "moving_average": ...}`.
    """
    # The moving averages are the features of the same name, computed on every row
    # before the warm-up rows were dropped.
    if target == "volatility":
        today = features[ABS_RETURN]
        means = features[f"{ABS_RETURN}_ma_{moving_average_window}"]
        persistence = "tomorrow's volatility = today's |log return|"
        average = "tomorrow's volatility = mean |log return|"
    else:
        today = features["close"]
        means = features[f"close_ma_{moving_average_window}"]
        persistence = "tomorrow's close = today's close"
        average = "tomorrow's close = mean close"
    values = today.to_numpy(dtype="float64")
    means = means.to_numpy(dtype="float64")
    # Row t's values forecast the day of row t+1.
    days = features.index[1:]
    return {
        "persistence": ReferenceForecast(f"persistence: {persistence}",
                                         pd.Series(values[:-1], index=days)),
        "moving_average": ReferenceForecast(
            f"moving average: {average} of the last {moving_average_window} days "
            f"(data.moving_average_window)", pd.Series(means[:-1], index=days)),
    }


def reference_scores(references: dict[str, ReferenceForecast],
                     splits: dict[str, Split]) -> dict[str, dict[str, Any]]:
    """Each reference forecast's description and scores on the validation and test splits.

    Returns:
        `{name: {"name": description, "validation": scores, "test": scores}}`: the
        `baselines` entry of `metrics.json`.
    """
    return {name: {"name": reference.description,
                   **{split: reference.scores(splits[split])
                      for split in ("validation", "test") if split in splits}}
            for name, reference in references.items()}
