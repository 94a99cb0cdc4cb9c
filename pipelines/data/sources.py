"""Reading price series and tables from the bundled data or a user's CSV file.

Every reader returns a clean frame or raises a `DataError` whose message names the
problem and the fix. Nothing here scales or splits: that is `pipelines.data`'s job.
"""

from __future__ import annotations

import pathlib
import typing

import numpy as np
import pandas as pd

from pipelines.errors import DataError

DATA_DIR = pathlib.Path(__file__).resolve().parents[2] / "data"
BUNDLED_STOCKS_FILE = DATA_DIR / "stocks.csv.gz"
BUNDLED_TICKERS = ("AAPL", "MSFT", "IBM", "GOOG")
BUNDLED_TABLES = ("diabetes", "breast_cancer")


class BundledSeries(typing.NamedTuple):
    """A bundled non-price series: its file under `data/` and the columns to pass."""

    file: str
    date_column: str
    target_column: str


# Non-price series shipped in data/ (source, licence and counts in data/README.md).
BUNDLED_SERIES = {"co2": BundledSeries("co2_weekly.csv", "date", "co2_ppm")}
PRICE_COLUMNS = ("open", "high", "low", "close")
FILL_POLICIES = ("error", "ffill", "drop")

# Header layouts that are recognised without being told which column is which.
YAHOO_COLUMNS = ("Date", "Open", "High", "Low", "Close", "Adj Close", "Volume")
ALPHA_VANTAGE_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
# Stooq and Kaggle's "Huge Stock Market Dataset" have no Adj Close; Kaggle adds OpenInt.
OHLCV_COLUMNS = ("Date", "Open", "High", "Low", "Close", "Volume")
OHLCV_OPENINT_COLUMNS = (*OHLCV_COLUMNS, "OpenInt")
# `load_stock_frame` leaves one-line notes for the user (the detected layout) in
# `frame.attrs[NOTICES_ATTR]`, so that they travel with the frame into `StockPipeline`.
NOTICES_ATTR = "notices"
MISSING_MARKERS = ("", "null", "NULL", "NaN", "nan", "NA", "N/A")


def is_bundled_ticker(source: str) -> bool:
    """Tells whether `source` names one of the bundled tickers (case-insensitive)."""
    return str(source).upper() in BUNDLED_TICKERS


def bundled_series_path(name: str) -> pathlib.Path:
    """Returns the path of the bundled series `name` (a key of `BUNDLED_SERIES`).

    Raises:
        DataError: If no series has that name, or its file is missing from data/.
    """
    if name not in BUNDLED_SERIES:
        raise DataError(f"no bundled series {name!r}; use one of {', '.join(BUNDLED_SERIES)} "
                        f"or pass a CSV path")
    path = DATA_DIR / BUNDLED_SERIES[name].file
    if not path.exists():
        raise DataError(f"bundled data {path} is missing; run ktlab from a clone of the "
                        f"repository (pip install -e .) or pass a CSV path")
    return path


def load_stock_frame(
    source: str | pathlib.Path = "AAPL",
    *,
    date_column: str | None = None,
    target_column: str | None = None,
    fill: str = "error",
) -> pd.DataFrame:
    """Loads a daily price series as a frame indexed by date.

    Args:
        source: A bundled ticker (`AAPL`, `MSFT`, `IBM`, `GOOG`) or the path of a CSV file
            in Yahoo format (`Date,Open,High,Low,Close,Adj Close,Volume`), Alpha Vantage
            format (`timestamp,open,high,low,close,volume`), the plain layout of stooq and
            Kaggle (`Date,Open,High,Low,Close,Volume`, optionally with `OpenInt`), or any
            layout when `date_column` and `target_column` are given. Headers of the
            recognised layouts match in any case and with `_` for a space.
        date_column: The date column of a CSV in another layout.
        target_column: The column to forecast in another layout; it becomes `close`.
        fill: What to do with missing values: `error` (default), `ffill` (carry the
            last known value forward) or `drop` (drop those rows).

    Returns:
        A frame indexed by ascending, unique dates, with float columns: `close` always,
        and whichever of `open`, `high`, `low`, `volume`, `openint` the source has (plus
        any other numeric columns of a custom layout). For a recognised CSV layout,
        `frame.attrs[NOTICES_ATTR]` is a list holding one line that names the layout and
        its price column, e.g. `layout: Date,Open,High,Low,Close,Volume (no Adj Close):
        Close is the price`.

    Raises:
        DataError: If the file is missing or unreadable, or its columns or values are
            unusable; the message names the problem and the fix.
    """
    if fill not in FILL_POLICIES:
        raise DataError(f"unknown fill policy {fill!r}; use one of {', '.join(FILL_POLICIES)}")
    if is_bundled_ticker(source) and date_column is None and target_column is None:
        return _load_bundled_ticker(str(source).upper())
    path = pathlib.Path(source)
    raw = read_csv(path)
    name = path.name
    notices = []
    if date_column is not None or target_column is not None:
        frame = _from_custom_layout(raw, name, date_column, target_column)
    elif yahoo := standard_headers(raw, YAHOO_COLUMNS):
        frame = _from_yahoo(raw.rename(columns=yahoo), name, _spellings(yahoo))
        notices.append(f"layout: Yahoo ({','.join(YAHOO_COLUMNS)}): Adj Close is the price, "
                       f"and Open, High, Low, Close are scaled to match it")
    elif alpha_vantage := standard_headers(raw, ALPHA_VANTAGE_COLUMNS):
        frame = from_columns(raw.rename(columns=alpha_vantage), name, "timestamp",
                             ALPHA_VANTAGE_COLUMNS[1:], _spellings(alpha_vantage))
        notices.append(f"layout: Alpha Vantage ({','.join(ALPHA_VANTAGE_COLUMNS)}): close is "
                       f"the price")
    # Yahoo's headers contain these too, so this layout is only tried after Yahoo's; the
    # longer variant comes first so that OpenInt is kept rather than silently ignored.
    elif ohlcv := (standard_headers(raw, OHLCV_OPENINT_COLUMNS)
                   or standard_headers(raw, OHLCV_COLUMNS)):
        layout = OHLCV_OPENINT_COLUMNS if len(ohlcv) == len(OHLCV_OPENINT_COLUMNS) else (
            OHLCV_COLUMNS)
        frame = from_columns(raw.rename(columns=ohlcv), name, "Date", layout[1:],
                             _spellings(ohlcv))
        notices.append(f"layout: {','.join(layout)} (no Adj Close): Close is the price")
    else:
        raise DataError(
            f"{name}: missing required columns; expected Yahoo ({','.join(YAHOO_COLUMNS)}), "
            f"{','.join(OHLCV_COLUMNS)}[,OpenInt] or Alpha Vantage "
            f"({','.join(ALPHA_VANTAGE_COLUMNS)}) headers, found "
            f"{','.join(map(str, raw.columns))}; or pass --date-column and --target-column"
        )
    frame = _validate_series(frame, name, fill)
    frame.attrs[NOTICES_ATTR] = notices
    return frame


def read_csv(path: pathlib.Path) -> pd.DataFrame:
    """Reads a CSV file with every value as text, so that checks can name bad cells.

    Raises:
        DataError: If the file does not exist, is empty, or is not a CSV.
    """
    if not path.exists():
        raise DataError(f"data file {path} does not exist; check the path or use a bundled "
                        f"ticker ({', '.join(BUNDLED_TICKERS)})")
    if path.is_dir():
        raise DataError(f"data path {path} is a directory; pass the path of a CSV file")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError,
            EOFError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
        raise DataError(f"cannot read {path.name} as CSV ({first_line}); save it as "
                        f"comma-separated text with a header row") from None
    if frame.empty:
        raise DataError(f"{path.name} has a header but no rows; add data rows")
    frame.columns = [str(column).strip() for column in frame.columns]
    return frame


def _load_bundled_ticker(ticker: str) -> pd.DataFrame:
    if not BUNDLED_STOCKS_FILE.exists():
        raise DataError(f"bundled data {BUNDLED_STOCKS_FILE} is missing; run ktlab from a "
                        f"clone of the repository (pip install -e .) or pass a CSV path")
    frame = pd.read_csv(BUNDLED_STOCKS_FILE, parse_dates=["date"])
    frame = frame[frame["ticker"] == ticker].drop(columns="ticker")
    return frame.set_index("date").astype("float64")


def _from_yahoo(raw: pd.DataFrame, name: str, spellings: dict[str, str]) -> pd.DataFrame:
    frame = from_columns(raw, name, "Date", YAHOO_COLUMNS[1:], spellings)
    # Yahoo's open/high/low/close are not split-adjusted; its Adj Close is. Scaling every
    # price by the same ratio keeps a split from looking like a crash.
    ratio = frame.pop("adj close") / frame["close"]
    for column in PRICE_COLUMNS:
        frame[column] = frame[column] * ratio
    return frame


def standard_headers(raw: pd.DataFrame, layout: tuple[str, ...]) -> dict[str, str]:
    """Maps headers such as `adj_close` or `DATE` to `layout`'s spelling.

    Returns the renaming when every column of `layout` is present exactly once, else {}.
    `load_stock_frame` uses it to recognise the Yahoo, Alpha Vantage and OHLCV layouts, and
    `series_sources.series_kind` to tell a price file from any other series.
    """
    known = {header.lower(): header for header in layout}
    mapping = {}
    for column in raw.columns:
        key = str(column).strip().lower().replace("_", " ")
        if key in known:
            mapping[column] = known[key]
    complete = sorted(mapping.values()) == sorted(layout)
    return mapping if complete else {}


def _spellings(mapping: dict[str, str]) -> dict[str, str]:
    """Inverts a `standard_headers` renaming, so that messages name the file's own header."""
    return {standard: header for header, standard in mapping.items()}


def _from_custom_layout(raw: pd.DataFrame, name: str, date_column: str | None,
                        target_column: str | None) -> pd.DataFrame:
    if date_column is None or target_column is None:
        raise DataError("a custom CSV layout needs both --date-column and --target-column")
    if date_column == target_column:
        raise DataError(f"{name}: --date-column and --target-column are both {date_column!r}; "
                        f"name two different columns")
    for column in (date_column, target_column):
        if column not in raw.columns:
            raise DataError(f"{name}: column {column!r} not found; columns are "
                            f"{', '.join(map(str, raw.columns))}")
    # The target becomes `close`; another column spelt close (Close when the target is
    # Adj Close) would overwrite it, so it is left out.
    others = [column for column in raw.columns
              if column not in (date_column, target_column) and column.lower() != "close"]
    lowered = [column.lower() for column in others]
    clashing = sorted({column for column in lowered if lowered.count(column) > 1})
    if clashing:
        raise DataError(f"{name}: columns differ only in case ({', '.join(clashing)}); rename "
                        f"or drop one of each")
    renamed = raw[[date_column, target_column, *others]].rename(
        columns={target_column: "close"})
    # Other columns are features only when they are numeric; text columns such as a ticker
    # symbol are left out rather than rejected.
    numeric_others = [column for column in others
                      if pd.to_numeric(renamed[column].replace(list(MISSING_MARKERS), np.nan),
                                       errors="coerce").notna().mean() > 0.95]
    return from_columns(renamed, name, date_column, ["close", *numeric_others])


def from_columns(raw: pd.DataFrame, name: str, date_column: str,
                 value_columns: tuple[str, ...] | list[str],
                 spellings: dict[str, str] | None = None) -> pd.DataFrame:
    """Parses the dates and the numbers of `raw`, naming the first bad cell of each kind.

    Returns a float frame indexed by the dates (`date`), one lower-case column per value
    column; a cell that cannot be read raises a `DataError` naming it. The price readers
    here use it for every layout, and `series_sources.load_series` for any other series.

    Args:
        raw: The file's text, with the recognised headers renamed to a layout's spelling.
        name: The file's name, for messages.
        date_column: The date column's (renamed) header.
        value_columns: The (renamed) headers of the numeric columns; each becomes a float
            column named in lower case.
        spellings: Maps a renamed header back to the file's own, for messages.
    """
    spellings = spellings or {}
    # One format inferred for the whole column: a day-first date that a month-first reading
    # cannot parse is reported, rather than each row guessed on its own.
    try:
        dates = pd.to_datetime(raw[date_column], errors="coerce")
    except (ValueError, TypeError) as error:
        raise DataError(f"{name}: cannot read {spellings.get(date_column, date_column)!r} as "
                        f"dates ({error}); use YYYY-MM-DD without time zones") from None
    if dates.isna().any():
        row = int(np.flatnonzero(dates.isna().to_numpy())[0])
        raise DataError(f"{name}: {spellings.get(date_column, date_column)!r} value "
                        f"{raw[date_column].iloc[row]!r} on data row {row + 1} is not a date; "
                        f"use YYYY-MM-DD")
    values = {}
    for column in value_columns:
        text = raw[column].str.strip()
        numbers = pd.to_numeric(text.replace(list(MISSING_MARKERS), np.nan), errors="coerce")
        bad = numbers.isna() & ~text.isin(MISSING_MARKERS)
        header = spellings.get(column, column)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"{name}: column {header!r} has non-numeric value {text.iloc[row]!r} "
                            f"on data row {row + 1} ({bad.sum()} such values); fix or remove "
                            f"those cells")
        _refuse_infinite(numbers, text, name, header)
        values[column.lower()] = numbers.to_numpy(dtype="float64")
    return pd.DataFrame(values, index=pd.DatetimeIndex(dates, name="date"))


def _refuse_infinite(numbers: pd.Series, text: pd.Series, name: str, header: str) -> None:
    """Raises a `DataError` naming the first cell that pandas read as plus or minus infinity.

    pandas reads `inf`, `-Infinity` and overflowing numbers such as `1e999` as floats, so
    they pass the non-numeric check and would only fail later, inside a scaler.

    Args:
        numbers: The column as floats, in the file's row order.
        text: The column's cells as written, for the message.
        name: The file's name.
        header: The column's header as the file spells it.
    """
    infinite = np.isinf(numbers.to_numpy(dtype="float64"))
    if infinite.any():
        row = int(np.flatnonzero(infinite)[0])
        raise DataError(f"{name}: column {header!r} has an infinite value {text.iloc[row]!r} "
                        f"on data row {row + 1}; fix or remove those cells")


def _validate_series(frame: pd.DataFrame, name: str, fill: str) -> pd.DataFrame:
    dates = frame.index
    duplicated = dates.duplicated()
    if duplicated.any():
        raise DataError(f"{name}: {duplicated.sum()} duplicate dates (first "
                        f"{dates[duplicated][0].date()}); keep one row per date")
    if not dates.is_monotonic_increasing:
        if dates.is_monotonic_decreasing:
            # Alpha Vantage and several other exports list the newest day first.
            frame = frame.iloc[::-1]
        else:
            position = int(np.flatnonzero(np.diff(dates.asi8) < 0)[0]) + 1
            raise DataError(f"{name}: dates are not in order ({dates[position].date()} on data "
                            f"row {position + 1} follows {dates[position - 1].date()}); sort the "
                            f"file by date")
    missing = frame.isna()
    if missing.any().any():
        counts = missing.sum()
        where = ", ".join(f"{column}: {count}" for column, count in counts[counts > 0].items())
        first = frame.index[missing.any(axis=1).to_numpy()][0].date()
        if fill == "error":
            raise DataError(f"{name}: {int(counts.sum())} missing values ({where}; first on "
                            f"{first}); fill them or pass --fill ffill or --fill drop")
        frame = frame.ffill().dropna() if fill == "ffill" else frame.dropna()
    prices = [column for column in PRICE_COLUMNS if column in frame.columns]
    non_positive = (frame[prices] <= 0).to_numpy()
    if non_positive.any():
        row, column = (int(axis[0]) for axis in np.nonzero(non_positive))
        raise DataError(f"{name}: {int(non_positive.sum())} non-positive prices (first "
                        f"{prices[column]}={frame[prices[column]].iloc[row]} on "
                        f"{frame.index[row].date()}); prices must be > 0, fix those rows")
    if "volume" in frame.columns and (frame["volume"] < 0).any():
        negative = frame["volume"] < 0
        raise DataError(f"{name}: {int(negative.sum())} negative volumes (first on "
                        f"{frame.index[negative.to_numpy()][0].date()}); volume must be >= 0")
    return frame


def load_table(source: str | pathlib.Path, target_column: str | None = None,
               fill: str = "error") -> tuple[pd.DataFrame, pd.Series]:
    """Loads a tabular data set as features and a target.

    Args:
        source: `diabetes` or `breast_cancer` (scikit-learn's bundled sets, offline) or
            the path of a CSV file.
        target_column: The target column of a CSV file (required for a file).
        fill: Rows with missing values: `error` (default) or `drop`. Rows of a table
            have no order, so there is nothing to carry forward.

    Returns:
        The feature frame and the target series.

    Raises:
        DataError: If the file or the target column is unusable.
    """
    if str(source) in BUNDLED_TABLES:
        if target_column is not None:
            raise DataError(f"the bundled table {source!r} has its own target; --target-column "
                            f"is for a CSV file")
        import sklearn.datasets

        loader = getattr(sklearn.datasets, f"load_{source}")
        bunch = loader(as_frame=True)
        return bunch.data, bunch.target.rename("target")
    path = pathlib.Path(source)
    raw = read_csv(path)
    if target_column is None:
        raise DataError(f"{path.name}: name the target column with --target-column; columns "
                        f"are {', '.join(raw.columns)}")
    if target_column not in raw.columns:
        raise DataError(f"{path.name}: target column {target_column!r} not found; columns are "
                        f"{', '.join(raw.columns)}")
    table = raw.replace(list(MISSING_MARKERS), np.nan)
    if fill not in ("error", "drop"):
        raise DataError(f"fill policy {fill!r} does not suit a table; use error or drop")
    missing = table.isna().sum()
    if missing.any() and fill == "drop":
        table = table.dropna()
        if table.empty:
            raise DataError(f"{path.name}: every row has a missing value; fill them before "
                            f"tuning")
    elif missing.any():
        where = ", ".join(f"{column}: {count}" for column, count in missing[missing > 0].items())
        raise DataError(f"{path.name}: {int(missing.sum())} missing values ({where}); fill or "
                        f"drop them, or pass --fill drop")
    for column in table.columns:
        numbers = pd.to_numeric(table[column], errors="coerce")
        if numbers.notna().all():
            # Dropping rows keeps the others' labels, which count the file's data rows from
            # 0, so the message names the row by label rather than by position.
            infinite = np.isinf(numbers.to_numpy(dtype="float64"))
            if infinite.any():
                label = table.index[infinite][0]
                raise DataError(f"{path.name}: column {column!r} has an infinite value "
                                f"{table[column].loc[label]!r} on data row {label + 1}; fix or "
                                f"remove those cells")
            table[column] = numbers.astype("float64")
    target = table.pop(target_column)
    return table, target
