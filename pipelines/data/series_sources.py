"""Reading any time series: a date column, a target of any sign, and other numeric columns.

Price files (the bundled tickers, Yahoo, Alpha Vantage and OHLCV layouts) are read by
`pipelines.data.sources.load_stock_frame`; every other series is read here, keeping its
columns' own names. Which of the two a source is follows its layout (`series_kind`), and
`data.kind` overrides it.

```python
frame, target, notices = load_series("co2", fill="interpolate")
target                  # "co2_ppm"
frame.attrs["frequency"].name   # "weekly"
```
"""

from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd

from pipelines.data import frequency as frequencies
from pipelines.data import sources
from pipelines.errors import DataError

KINDS = ("auto", "prices", "series")
# Headers taken as the date column when none is named.
DATE_NAMES = ("date", "datetime", "time", "timestamp", "ds", "period", "month", "week", "year")


def series_kind(source: str, date_column: str | None, target_column: str | None,
                kind: str = "auto") -> str:
    """Whether `source` is read as `prices` or as a general `series`.

    A bundled ticker and a file in a price layout (Yahoo, Alpha Vantage, OHLCV, or two or
    more of open, high, low and close) are prices;
    a bundled series, and a file read with `--date-column`/`--target-column` or in any other
    layout, are a series. `kind` other than `auto` decides instead.
    """
    if kind != "auto":
        return kind
    if sources.is_bundled_ticker(source):
        return "prices"
    if source in sources.BUNDLED_SERIES or date_column or target_column:
        return "series"
    path = pathlib.Path(source)
    try:
        header = pd.read_csv(path, nrows=0).columns
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError):
        # A missing or unreadable file: the price reader names the problem in its own words.
        return "prices"
    for layout in (sources.YAHOO_COLUMNS, sources.ALPHA_VANTAGE_COLUMNS, sources.OHLCV_COLUMNS):
        if sources.standard_headers(pd.DataFrame(columns=header), layout):
            return "prices"
    # Two or more of open, high, low and close: a price file, perhaps missing a column,
    # which the price reader then names.
    named = {str(column).strip().lower() for column in header}
    if len(named & set(sources.PRICE_COLUMNS)) >= 2:
        return "prices"
    return "series"


def load_series(source: str, *, date_column: str | None = None,
                target_column: str | None = None, fill: str = "error",
                feature_columns: list[str] | None = None, features: bool = True,
                ) -> tuple[pd.DataFrame, str, list[str]]:
    """Loads a series as a frame indexed by date, on a regular grid, gaps handled.

    Args:
        source: A bundled series (`co2`) or a CSV path.
        date_column: The date column; default: one named date, time, timestamp, ... or the
            first column.
        target_column: The column to forecast; default: the only other numeric column.
        fill: The gap policy (`pipelines.data.frequency.GAP_POLICIES`).
        feature_columns: Other numeric columns to keep as features; None: all of them.
        features: False keeps the target alone.

    Returns:
        The frame (the target first, then the features, all float, under their own names;
        `frame.attrs["frequency"]` holds its `Frequency`), the target's name, and one-line
        notices (the frequency, the gaps and what was done to them).

    Raises:
        DataError: For a file, column, value or date that cannot be used.
    """
    if source in sources.BUNDLED_SERIES:
        bundled = sources.BUNDLED_SERIES[source]
        path = sources.bundled_series_path(source)
        date_column = date_column or bundled.date_column
        target_column = target_column or bundled.target_column
    else:
        path = pathlib.Path(source)
    raw = sources.read_csv(path)
    name = path.name
    date_column = date_column or _date_column(raw)
    for column in (date_column, target_column):
        if column is not None and column not in raw.columns:
            raise DataError(f"{name}: column {column!r} not found; columns are "
                            f"{', '.join(map(str, raw.columns))}")
    numeric = [column for column in raw.columns if column != date_column and _numeric(raw[column])]
    if target_column is None:
        if len(numeric) != 1:
            raise DataError(f"{name}: cannot tell which column to forecast (numeric columns: "
                            f"{', '.join(numeric) or 'none'}); pass --target-column")
        target_column = numeric[0]
    if date_column == target_column:
        raise DataError(f"{name}: --date-column and --target-column are both {date_column!r}; "
                        f"name two different columns")
    others = [column for column in numeric if column != target_column]
    if feature_columns is not None:
        unknown = [column for column in feature_columns if column not in raw.columns]
        if unknown:
            raise DataError(f"{name}: feature column {unknown[0]!r} not found; columns are "
                            f"{', '.join(map(str, raw.columns))}")
        others = [column for column in feature_columns if column != target_column]
    if not features:
        others = []
    # The reader of price files parses dates and numbers and names the first bad cell.
    parsed = sources.from_columns(raw, name, date_column, [target_column, *others])
    parsed.columns = [target_column, *others]
    frame = _ordered(parsed, name)
    frequency = frequencies.infer_frequency(frame.index, name)
    frame, gaps = frequencies.apply_gap_policy(frame, frequency, fill, name)
    frame.attrs["frequency"] = frequency
    notices = [f"frequency: {frequency.name} ({frequency.alias}), {len(frame)} steps from "
               f"{frame.index[0].date()} to {frame.index[-1].date()}",
               *([gaps] if gaps else [])]
    return frame, target_column, notices


def _date_column(raw: pd.DataFrame) -> str:
    for column in raw.columns:
        if str(column).strip().lower() in DATE_NAMES:
            return column
    return raw.columns[0]


def _numeric(column: pd.Series) -> bool:
    """Whether nearly every cell of a text column reads as a number (missing cells aside)."""
    text = column.str.strip()
    present = ~text.isin(sources.MISSING_MARKERS)
    if not present.any():
        return False
    return bool(pd.to_numeric(text[present], errors="coerce").notna().mean() > 0.95)


def _ordered(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Refuses duplicate dates and dates out of order; a file listed newest first is turned
    around."""
    dates = frame.index
    duplicated = dates.duplicated()
    if duplicated.any():
        raise DataError(f"{name}: {duplicated.sum()} duplicate dates (first "
                        f"{dates[duplicated][0]}); keep one row per date")
    if dates.is_monotonic_increasing:
        return frame
    if dates.is_monotonic_decreasing:
        return frame.iloc[::-1]
    position = int(np.flatnonzero(np.diff(dates.as_unit("ns").asi8) < 0)[0]) + 1
    raise DataError(f"{name}: dates are not in order ({dates[position]} on data row "
                    f"{position + 1} follows {dates[position - 1]}); sort the file by date")
