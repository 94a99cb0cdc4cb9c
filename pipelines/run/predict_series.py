"""`ktlab predict` for a run tuned on any series (`pipelines.data.series`): the next
`horizon` steps from every window, dated in the series' own frequency.

The last window ends at the file's last row, so the last forecasts are of the `horizon`
steps after it, whose actual values are not known yet (empty in the CSV).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pipelines.data import series, series_sources
from pipelines.errors import DataError


def series_forecast(data: dict[str, Any], saved: dict[str, Any], source: str, *, own: bool,
                    predict: Any) -> pd.DataFrame:
    """Forecasts from the windows of `source` with a run's saved model.

    Args:
        data: The run's `data` settings.
        saved: Its `preprocessor.joblib` (with `horizon`).
        source: A bundled series or a CSV with the run's columns.
        own: Forecast only the run's test steps (and the steps after the last row).
        predict: The loaded model's `predict`, called once on every window.

    Returns:
        One row per window: `origin` (its last known step), then per step ahead h
        `date_h`, `forecast_h` and `actual_h`, and `last_value`; for one step, `date` (the
        step forecast), `forecast`, `actual` and `last_value`.

    Raises:
        DataError: If the file lacks the run's columns or has too few rows for one window.
    """
    frame, target, _ = series_sources.load_series(
        source, date_column=data["date_column"], target_column=data["target_column"],
        fill=data["fill"], feature_columns=data["feature_columns"], features=data["features"])
    frequency = frame.attrs["frequency"]
    features, _, _ = series.make_series_features(frame, frequency.name, data["calendar"])
    preprocessor = saved["preprocessor"]
    missing = [column for column in preprocessor.feature_names_in_ if column not in features]
    if missing:
        raise DataError(f"{source}: lacks the column(s) the run's model reads: "
                        f"{', '.join(map(str, missing))}; pass a file with them")
    lookback, horizon = int(saved["input_shape"][0]), int(saved.get("horizon", 1))
    rows = preprocessor.transform(features).astype("float32")
    if len(rows) < lookback:
        raise DataError(f"{source}: {len(rows)} rows are fewer than the lookback of "
                        f"{lookback}; pass a longer series")
    origins = np.arange(lookback - 1, len(rows))
    if own:
        test = series.size(data["test_size"] if data["test_size"] is not None
                           else series.DEFAULT_TEST, len(rows), "test_size")
        origins = origins[origins >= len(rows) - test + lookback - 1]
    windows = np.stack([rows[origin - lookback + 1:origin + 1] for origin in origins])
    outputs = np.asarray(predict(windows), dtype="float64").reshape(len(origins), horizon)
    values = frame[target].to_numpy(dtype="float64")
    forecasts = saved["target_scaler"].inverse_transform(outputs) + values[origins][:, None]
    dates = frame.index
    step = frequency.offset()
    result = pd.DataFrame({"date": [dates[origin].date().isoformat() for origin in origins]})
    for ahead in range(1, horizon + 1):
        suffix = f"_{ahead}" if horizon > 1 else ""
        if horizon > 1:
            result[f"date{suffix}"] = [(dates[origin] + ahead * step).date().isoformat()
                                       for origin in origins]
        result[f"forecast{suffix}"] = forecasts[:, ahead - 1]
        known = origins + ahead < len(values)
        result[f"actual{suffix}"] = np.where(known, values[np.minimum(origins + ahead,
                                                                      len(values) - 1)], np.nan)
    if horizon == 1:
        result["date"] = [(dates[origin] + step).date().isoformat() for origin in origins]
    else:
        result = result.rename(columns={"date": "origin"})
    result["last_value"] = values[origins]
    return result
