"""A series' frequency, its season, and its gaps: missing timestamps and missing values.

pandas infers the frequency of an evenly spaced index (`pd.infer_freq`); a series with a
missing week is no longer evenly spaced, so we fall back on the most common step between
two dates and check that every date lies on that step's grid. A series whose dates fit no
grid, or fill less than half of one, is irregular and refused.

```python
frequency = infer_frequency(frame.index, "co2_weekly.csv")
frequency.name, frequency.season        # ("weekly", 52)
frame, notice = apply_gap_policy(frame, frequency, "interpolate", "co2_weekly.csv")
```
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd

from pipelines.errors import DataError

# What `fill` does with a series' gaps: `error` refuses them, `ffill` carries the last
# value forward, `interpolate` draws a straight line in time, `drop` drops the rows with a
# missing value (and leaves missing timestamps missing).
GAP_POLICIES = ("error", "ffill", "interpolate", "drop")


@dataclasses.dataclass(frozen=True)
class Frequency:
    """A series' frequency.

    Attributes:
        name: `hourly`, `daily`, `business-daily`, `weekly`, `monthly`, `quarterly` or
            `yearly`.
        alias: The pandas offset alias of its grid, such as `W-SAT` or `MS`.
        season: Steps in one season: 24 hourly, 7 daily, 5 business-daily, 52 weekly,
            12 monthly, 4 quarterly, 1 yearly (no season).
        unit: One step in words, for reports: `hour`, `day`, `week`, ...
    """

    name: str
    alias: str
    season: int
    unit: str

    def offset(self) -> pd.DateOffset:
        """The step as a pandas offset, to date the steps after a series' last row."""
        return pd.tseries.frequencies.to_offset(self.alias)


# By the prefix of pandas' alias: name, season, unit.
_KINDS = {
    "h": ("hourly", 24, "hour"),
    "D": ("daily", 7, "day"),
    "B": ("business-daily", 5, "business day"),
    "W": ("weekly", 52, "week"),
    "M": ("monthly", 12, "month"),
    "Q": ("quarterly", 4, "quarter"),
    "Y": ("yearly", 1, "year"),
}


def _kind(alias: str) -> tuple[str, int, str] | None:
    head = alias.split("-")[0].rstrip("SE").upper()
    head = {"H": "h", "BM": "M", "BQ": "Q", "BY": "Y", "A": "Y", "BA": "Y"}.get(head, head)
    return _KINDS.get(head)


def _candidates(dates: pd.DatetimeIndex) -> list[str]:
    """Grids that the most common step between two dates suggests, most likely first."""
    steps = pd.Series(np.diff(dates.as_unit("ns").asi8)).value_counts()
    step = pd.Timedelta(int(steps.index[0]))
    if step == pd.Timedelta(hours=1):
        return ["h"]
    if step == pd.Timedelta(days=1):
        return ["B", "D"] if not (dates.day_of_week >= 5).any() else ["D"]
    if step == pd.Timedelta(days=7):
        return [f"W-{dates[0].day_name()[:3].upper()}"]
    if pd.Timedelta(days=28) <= step <= pd.Timedelta(days=31):
        return ["MS", "ME", "BMS", "BME"]
    if pd.Timedelta(days=89) <= step <= pd.Timedelta(days=92):
        return [f"QS-{dates[0].month_name()[:3].upper()}", "QE", "QS", "BQE"]
    if pd.Timedelta(days=365) <= step <= pd.Timedelta(days=366):
        return ["YS", "YE", f"YS-{dates[0].month_name()[:3].upper()}"]
    return []


def infer_frequency(dates: pd.DatetimeIndex, name: str) -> Frequency:
    """The frequency of ascending, unique `dates`, gaps allowed.

    Raises:
        DataError: If the dates fit no hourly, daily, business-daily, weekly, monthly,
            quarterly or yearly grid.
    """
    if len(dates) < 3:
        raise DataError(f"{name}: {len(dates)} rows cannot show a frequency; use a series "
                        f"of many more rows")
    with warnings.catch_warnings():
        # pandas 3 warns that infer_freq will return an offset; its string is read the same.
        warnings.simplefilter("ignore", DeprecationWarning)
        inferred = pd.infer_freq(dates)
    aliases = [pd.tseries.frequencies.to_offset(inferred).freqstr] if inferred else []
    aliases += _candidates(dates)
    for alias in aliases:
        kind = _kind(alias)
        if kind is None:
            continue
        try:
            grid = pd.date_range(dates[0], dates[-1], freq=alias)
        except ValueError:
            continue
        # A grid that the dates fill less than half of is not the series' frequency: its
        # dates are irregular, not a regular series with gaps.
        if len(grid) and dates.isin(grid).all() and len(dates) * 2 > len(grid):
            return Frequency(kind[0], alias, kind[1], kind[2])
    steps = pd.Series(np.diff(dates.as_unit("ns").asi8)).map(pd.Timedelta).value_counts()
    shown = ", ".join(f"{str(step).removesuffix(' 00:00:00')} ({count}x)"
                      for step, count in steps.head(3).items())
    raise DataError(f"{name}: the dates are irregular (steps {shown}) and fit no hourly, daily, "
                    f"weekly, monthly, quarterly or yearly grid; resample the series to one "
                    f"frequency first")


def apply_gap_policy(frame: pd.DataFrame, frequency: Frequency, policy: str, name: str,
                     ) -> tuple[pd.DataFrame, str | None]:
    """Counts missing timestamps and missing values and applies `policy` to them.

    Returns:
        The frame, and one line saying what was found and done (None if there were no gaps).

    Raises:
        DataError: For gaps under the `error` policy, or a value still missing (a series
            that starts with a gap, under `ffill`).
    """
    if policy not in GAP_POLICIES:
        raise DataError(f"unknown fill policy {policy!r}; use one of {', '.join(GAP_POLICIES)}")
    grid = pd.date_range(frame.index[0], frame.index[-1], freq=frequency.alias)
    absent = grid.difference(frame.index)
    empty = frame.isna().any(axis=1)
    if not len(absent) and not empty.any():
        return frame, None
    found = []
    if len(absent):
        found.append(f"{len(absent)} missing {frequency.unit}s (first {absent[0].date()})")
    if empty.any():
        found.append(f"{int(frame.isna().sum().sum())} missing values in {int(empty.sum())} rows "
                     f"(first {frame.index[empty.to_numpy()][0].date()})")
    what = " and ".join(found)
    if policy == "error":
        raise DataError(f"{name}: {what}; pass --fill interpolate, ffill or drop")
    if policy == "drop":
        kept = frame.dropna()
        absent_note = f"; {len(absent)} missing {frequency.unit}s stay missing" if len(
            absent) else ""
        return kept, (f"gaps: {what}: dropped {len(frame) - len(kept)} rows with a missing "
                      f"value{absent_note} (--fill drop)")
    full = frame.reindex(grid)
    touched = int(full.isna().any(axis=1).sum())
    if policy == "ffill":
        full = full.ffill()
        done = "carried the last value forward"
    else:
        full = full.interpolate(method="time", limit_area="inside")
        done = "interpolated in time"
    if full.isna().any().any():
        first = full.index[full.isna().any(axis=1).to_numpy()][0].date()
        raise DataError(f"{name}: a value is still missing on {first} after --fill {policy} "
                        f"(the series starts with a gap); drop the first rows or pass --fill "
                        f"drop")
    full.index.name = frame.index.name
    return full, f"gaps: {what}: {done} on {touched} rows (--fill {policy})"
