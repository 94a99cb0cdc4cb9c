"""Reading CSV files and the bundled data: formats, adjustments, and every bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import make_prices, yahoo_csv

from pipelines.data import sources
from pipelines.errors import DataError


def test_bundled_tickers_are_split_adjusted_daily_series():
    frame = sources.load_stock_frame("aapl")
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert len(frame) == 3270
    assert str(frame.index[0].date()) == "2000-03-01"
    assert str(frame.index[-1].date()) == "2013-03-01"
    # AAPL split 2:1 on 2005-02-28; unadjusted, the close halves overnight.
    change = frame["close"].pct_change().loc["2005-02-25":"2005-03-01"].abs().max()
    assert change < 0.05
    assert len(sources.load_stock_frame("GOOG")) == 2148


def test_yahoo_format_is_detected_and_adjusted(write_csv):
    prices = make_prices(40)
    path = write_csv(yahoo_csv(prices, adjust=0.5))
    frame = sources.load_stock_frame(path)
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    np.testing.assert_allclose(frame["close"].to_numpy(), prices["close"].to_numpy() * 0.5)
    np.testing.assert_allclose(frame["high"].to_numpy(), prices["high"].to_numpy() * 0.5)
    assert frame.index.equals(prices.index)


def test_alpha_vantage_format_newest_first_is_reversed(write_csv):
    prices = make_prices(30)
    lines = ["timestamp,open,high,low,close,volume"]
    for date, row in prices.iloc[::-1].iterrows():
        lines.append(f"{date.date()},{row.open},{row.high},{row.low},{row.close},"
                     f"{int(row.volume)}")
    frame = sources.load_stock_frame(write_csv("\n".join(lines)))
    assert frame.index.is_monotonic_increasing
    np.testing.assert_allclose(frame["close"].to_numpy(), prices["close"].to_numpy())


def test_custom_layout_with_named_columns(write_csv):
    text = "day,price,symbol,flow\n2020-01-01,10,X,1\n2020-01-02,11,X,2\n2020-01-03,12,X,3\n"
    frame = sources.load_stock_frame(write_csv(text), date_column="day", target_column="price")
    assert list(frame.columns) == ["close", "flow"]
    assert frame["close"].tolist() == [10.0, 11.0, 12.0]


BAD_INPUTS = [
    ("Date,Open\n2020-01-01,1\n", "prices.csv: missing required columns; expected Yahoo "
     "(Date,Open,High,Low,Close,Adj Close,Volume), Date,Open,High,Low,Close,Volume[,OpenInt] "
     "or Alpha Vantage "
     "(timestamp,open,high,low,close,volume) headers, found Date,Open; or pass --date-column "
     "and --target-column"),
    ("timestamp,open,high,low,close,volume\n2020-01-01,1,2,1,abc,5\n",
     "prices.csv: column 'close' has non-numeric value 'abc' on data row 1 (1 such values); "
     "fix or remove those cells"),
    ("timestamp,open,high,low,close,volume\n2020-01-01,1,2,1,1.5,5\n2020-01-02,1,2,1,,5\n",
     "prices.csv: 1 missing values (close: 1; first on 2020-01-02); fill them or pass --fill "
     "ffill or --fill drop"),
    ("timestamp,open,high,low,close,volume\n2020-01-01,1,2,1,1.5,5\n2020-01-01,1,2,1,1.5,5\n",
     "prices.csv: 1 duplicate dates (first 2020-01-01); keep one row per date"),
    ("timestamp,open,high,low,close,volume\n2020-01-01,1,2,1,1.5,5\n2020-01-03,1,2,1,1.5,5\n"
     "2020-01-02,1,2,1,1.5,5\n",
     "prices.csv: dates are not in order (2020-01-02 on data row 3 follows 2020-01-03); sort "
     "the file by date"),
    ("timestamp,open,high,low,close,volume\n2020-01-01,1,2,1,1.5,5\n2020-01-02,1,2,0,1.5,5\n",
     "prices.csv: 1 non-positive prices (first low=0.0 on 2020-01-02); prices must be > 0, fix "
     "those rows"),
    ("timestamp,open,high,low,close,volume\n2020-01-01,1,2,1,1.5,-5\n",
     "prices.csv: 1 negative volumes (first on 2020-01-01); volume must be >= 0"),
    ("timestamp,open,high,low,close,volume\nyesterday,1,2,1,1.5,5\n",
     "prices.csv: 'timestamp' value 'yesterday' on data row 1 is not a date; use YYYY-MM-DD"),
    ("timestamp,open,high,low,close,volume\n",
     "prices.csv has a header but no rows; add data rows"),
]


@pytest.mark.parametrize(("text", "message"), BAD_INPUTS)
def test_bad_csv_gets_one_line_naming_problem_and_fix(write_csv, text, message):
    with pytest.raises(DataError) as raised:
        sources.load_stock_frame(write_csv(text))
    assert str(raised.value) == message
    assert "\n" not in str(raised.value)


def test_missing_file_and_unreadable_csv(tmp_path, write_csv):
    with pytest.raises(DataError, match=r"data file .*nope.csv does not exist; check the path"):
        sources.load_stock_frame(tmp_path / "nope.csv")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\x1f\x8b\x08\x00\xff\xfe\x00\x00garbage")
    with pytest.raises(DataError, match=r"^cannot read binary.csv as CSV .*; save it as "
                                        r"comma-separated text with a header row$"):
        sources.load_stock_frame(binary)


def test_fill_policies_for_missing_values(write_csv):
    text = ("timestamp,open,high,low,close,volume\n2020-01-01,1,2,1,1.5,5\n"
            "2020-01-02,1,2,1,null,5\n2020-01-03,1,2,1,1.7,5\n")
    filled = sources.load_stock_frame(write_csv(text), fill="ffill")
    assert filled["close"].tolist() == [1.5, 1.5, 1.7]
    dropped = sources.load_stock_frame(write_csv(text), fill="drop")
    assert dropped["close"].tolist() == [1.5, 1.7]
    with pytest.raises(DataError, match="unknown fill policy 'zero'; use one of error, ffill, "
                                        "drop"):
        sources.load_stock_frame(write_csv(text), fill="zero")


def test_custom_layout_unknown_column(write_csv):
    path = write_csv("day,price\n2020-01-01,10\n")
    with pytest.raises(DataError, match="prices.csv: column 'close' not found; columns are "
                                        "day, price"):
        sources.load_stock_frame(path, date_column="day", target_column="close")


def test_tables_bundled_and_from_csv(write_csv):
    features, target = sources.load_table("breast_cancer")
    assert features.shape == (569, 30)
    assert sorted(target.unique()) == [0, 1]
    path = write_csv("a,b,label\n1,x,yes\n2,y,no\n", name="table.csv")
    table, labels = sources.load_table(path, "label")
    assert list(table.columns) == ["a", "b"]
    assert table["a"].dtype == np.float64
    assert labels.tolist() == ["yes", "no"]
    with pytest.raises(DataError, match="table.csv: target column 'price' not found; columns "
                                        "are a, b, label"):
        sources.load_table(path, "price")


def test_bundled_file_matches_its_readme():
    frame = pd.read_csv(sources.BUNDLED_STOCKS_FILE)
    assert sorted(frame["ticker"].unique()) == ["AAPL", "GOOG", "IBM", "MSFT"]
    assert list(frame.columns) == ["ticker", "date", "open", "high", "low", "close", "volume"]
    assert (frame[["open", "high", "low", "close"]] > 0).all().all()


def test_bundled_co2_series_matches_its_readme():
    series = sources.BUNDLED_SERIES["co2"]
    assert (series.date_column, series.target_column) == ("date", "co2_ppm")
    path = sources.bundled_series_path("co2")
    assert path == sources.DATA_DIR / "co2_weekly.csv"
    frame = pd.read_csv(path, parse_dates=[series.date_column])
    assert list(frame.columns) == ["date", "co2_ppm"]
    assert len(frame) == 2284
    assert str(frame["date"].iloc[0].date()) == "1958-03-29"
    assert str(frame["date"].iloc[-1].date()) == "2001-12-29"
    values = frame[series.target_column]
    # Weeks without a measurement are empty cells, not absent rows: all 2,284 Saturdays of
    # the span are present, and dropping the empty ones gives Scripps' 2,225 measured weeks.
    assert int(values.isna().sum()) == 59
    dates = pd.DatetimeIndex(frame["date"])
    assert dates.is_monotonic_increasing
    with warnings.catch_warnings():
        # pandas 3 warns that infer_freq will return an offset instead of a string;
        # to_offset reads either, so the check holds on pandas 2, 3 and 4.
        warnings.simplefilter("ignore", DeprecationWarning)
        frequency = pd.tseries.frequencies.to_offset(pd.infer_freq(dates))
    assert frequency.freqstr == "W-SAT"
    assert frame["date"].diff().mode()[0] == pd.Timedelta(days=7)
    weeks = pd.date_range(dates[0], dates[-1], freq="W-SAT")
    assert len(weeks.difference(dates)) == 0
    assert (values.min(), values.max()) == (313.0, 373.9)
    assert round(float(values.mean()), 4) == 340.1422
    with pytest.raises(DataError, match=r"^no bundled series 'CO2'; use one of co2 or pass a "
                                        r"CSV path$"):
        sources.bundled_series_path("CO2")


def test_bundled_series_missing_from_data_dir_gets_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "DATA_DIR", tmp_path)
    with pytest.raises(DataError, match=r"^bundled data .*co2_weekly.csv is missing; run ktlab "
                                        r"from a clone of the repository \(pip install -e \.\) "
                                        r"or pass a CSV path$"):
        sources.bundled_series_path("co2")


def test_headers_in_other_cases_and_with_underscores_are_recognised(write_csv):
    text = ("date,open,high,low,close,adj_close,volume\n2020-01-01,1,2,1,1.5,0.75,5\n"
            "2020-01-02,1,2,1,1.6,0.8,5\n")
    frame = sources.load_stock_frame(write_csv(text))
    assert frame["close"].tolist() == [0.75, 0.8]
    assert frame["high"].tolist() == [1.0, 1.0]


def test_custom_target_replaces_a_column_spelt_close(write_csv):
    text = ("Date,Open,High,Low,Close,Adj Close,Volume\n2020-01-01,1,2,1,1.5,0.75,5\n"
            "2020-01-02,1,2,1,1.6,0.8,5\n")
    frame = sources.load_stock_frame(write_csv(text), date_column="Date",
                                     target_column="Adj Close")
    assert list(frame.columns) == ["close", "open", "high", "low", "volume"]
    assert frame["close"].tolist() == [0.75, 0.8]


@pytest.mark.parametrize(("text", "columns", "message"), [
    ("day,v\n01/02/2020,1\n13/02/2020,2\n", ("day", "v"),
     "prices.csv: 'day' value '13/02/2020' on data row 2 is not a date; use YYYY-MM-DD"),
    ("day,v\n2020-01-01,1\n", ("day", "day"),
     "prices.csv: --date-column and --target-column are both 'day'; name two different "
     "columns"),
    ("day,v,w,W\n2020-01-01,1,2,3\n", ("day", "v"),
     "prices.csv: columns differ only in case (w); rename or drop one of each"),
])
def test_custom_layout_problems(write_csv, text, columns, message):
    with pytest.raises(DataError) as raised:
        sources.load_stock_frame(write_csv(text), date_column=columns[0],
                                 target_column=columns[1])
    assert str(raised.value) == message


def test_bundled_table_rejects_a_target_column():
    with pytest.raises(DataError, match="^the bundled table 'diabetes' has its own target; "
                                        "--target-column is for a CSV file$"):
        sources.load_table("diabetes", "progression")


def test_table_rows_with_missing_values_are_refused_or_dropped(write_csv):
    path = write_csv("a,b,label\n1,2,x\n,3,y\n4,5,x\n", name="table.csv")
    with pytest.raises(DataError, match=r"^table.csv: 1 missing values \(a: 1\); fill or drop "
                                        r"them, or pass --fill drop$"):
        sources.load_table(path, "label")
    table, labels = sources.load_table(path, "label", fill="drop")
    assert table["a"].tolist() == [1.0, 4.0]
    assert labels.tolist() == ["x", "x"]
    with pytest.raises(DataError, match="fill policy 'ffill' does not suit a table; use error "
                                        "or drop"):
        sources.load_table(path, "label", fill="ffill")


def ohlcv_csv(prices: pd.DataFrame, header: str = "Date,Open,High,Low,Close,Volume,OpenInt",
              ) -> str:
    """`prices` under `header`, the stooq/Kaggle layout; an OpenInt column is all 0."""
    rows = [header]
    for date, row in prices.iterrows():
        cells = [str(date.date()), *(str(row[column]) for column in sources.PRICE_COLUMNS),
                 str(int(row.volume))]
        rows.append(",".join(cells + ["0"] * (header.count(",") - 5)))
    return "\n".join(rows) + "\n"


@pytest.mark.parametrize(("header", "columns", "layout"), [
    ("Date,Open,High,Low,Close,Volume,OpenInt",
     ["open", "high", "low", "close", "volume", "openint"],
     "Date,Open,High,Low,Close,Volume,OpenInt"),
    ("Date,Open,High,Low,Close,Volume", ["open", "high", "low", "close", "volume"],
     "Date,Open,High,Low,Close,Volume"),
    ("date,open,high,low,close,volume", ["open", "high", "low", "close", "volume"],
     "Date,Open,High,Low,Close,Volume"),
    ("DATE,Open,High,Low,Close,Volume,open_int",
     ["open", "high", "low", "close", "volume"], "Date,Open,High,Low,Close,Volume"),
    ("date,open,high,low,close,volume,openint",
     ["open", "high", "low", "close", "volume", "openint"],
     "Date,Open,High,Low,Close,Volume,OpenInt"),
])
def test_ohlcv_layout_without_adj_close_uses_close_as_the_price(write_csv, header, columns,
                                                               layout):
    prices = make_prices(12)
    frame = sources.load_stock_frame(write_csv(ohlcv_csv(prices, header)))
    # A header that is not exactly OpenInt (open_int here) is not a recognised column and
    # is ignored, like any extra column of a recognised layout.
    assert list(frame.columns) == columns
    np.testing.assert_allclose(frame["close"].to_numpy(), prices["close"].to_numpy())
    np.testing.assert_allclose(frame["volume"].to_numpy(), prices["volume"].to_numpy())
    assert frame.index.equals(prices.index)
    if "openint" in columns:
        assert frame["openint"].tolist() == [0.0] * 12
    assert frame.attrs[sources.NOTICES_ATTR] == [
        f"layout: {layout} (no Adj Close): Close is the price"]


def test_layout_notices_of_yahoo_alpha_vantage_custom_and_bundled(write_csv):
    yahoo = sources.load_stock_frame(write_csv(yahoo_csv(make_prices(5), adjust=0.5)))
    # Yahoo's headers include the plain layout's, so Yahoo must still win.
    assert yahoo.attrs[sources.NOTICES_ATTR] == [
        "layout: Yahoo (Date,Open,High,Low,Close,Adj Close,Volume): Adj Close is the price, "
        "and Open, High, Low, Close are scaled to match it"]
    alpha = sources.load_stock_frame(write_csv("timestamp,open,high,low,close,volume\n"
                                               "2020-01-01,1,2,1,1.5,5\n"))
    assert alpha.attrs[sources.NOTICES_ATTR] == [
        "layout: Alpha Vantage (timestamp,open,high,low,close,volume): close is the price"]
    custom = sources.load_stock_frame(write_csv("day,price\n2020-01-01,10\n"),
                                      date_column="day", target_column="price")
    assert custom.attrs[sources.NOTICES_ATTR] == []
    assert sources.load_stock_frame("AAPL").attrs == {}


INFINITE_INPUTS = [
    ("timestamp,open,high,low,close,volume\n2020-01-01,1,2,1,1.5,5\n2020-01-02,1,2,1,1.5,5\n"
     "2020-01-03,1,2,1,1.5,inf\n", {},
     "prices.csv: column 'volume' has an infinite value 'inf' on data row 3; fix or remove "
     "those cells"),
    ("Date,Open,High,Low,Close,Volume,OpenInt\n2020-01-01,1,2,1,-Infinity,5,0\n", {},
     "prices.csv: column 'Close' has an infinite value '-Infinity' on data row 1; fix or "
     "remove those cells"),
    ("date,open,high,low,close,adj_close,volume\n2020-01-01,1,2,1,1.5,1e999,5\n", {},
     "prices.csv: column 'adj_close' has an infinite value '1e999' on data row 1; fix or "
     "remove those cells"),
    ("day,price,flow\n2020-01-01,10,1\n2020-01-02,11,INF\n",
     {"date_column": "day", "target_column": "price"},
     "prices.csv: column 'flow' has an infinite value 'INF' on data row 2; fix or remove "
     "those cells"),
]


@pytest.mark.parametrize(("text", "options", "message"), INFINITE_INPUTS)
def test_infinite_stock_values_get_one_line(write_csv, text, options, message):
    with pytest.raises(DataError) as raised:
        sources.load_stock_frame(write_csv(text), **options)
    assert str(raised.value) == message


def test_infinite_table_values_get_one_line(write_csv):
    path = write_csv("a,b,label\n1,2,x\n3,inf,y\n4,5,x\n", name="table.csv")
    with pytest.raises(DataError) as raised:
        sources.load_table(path, "label")
    assert str(raised.value) == ("table.csv: column 'b' has an infinite value 'inf' on data "
                                 "row 2; fix or remove those cells")
    # After --fill drop removes row 1, the message still counts the file's rows.
    path = write_csv("a,b,label\n1,,x\n3,4,y\n5,-Infinity,7\n", name="table.csv")
    with pytest.raises(DataError) as raised:
        sources.load_table(path, "a", fill="drop")
    assert str(raised.value) == ("table.csv: column 'b' has an infinite value '-Infinity' on "
                                 "data row 3; fix or remove those cells")
    # A text column may hold the word inf: only a column of numbers is refused.
    path = write_csv("a,name\n1,inf\n2,amy\n3,bob\n", name="table.csv")
    table, target = sources.load_table(path, "a")
    assert table["name"].tolist() == ["inf", "amy", "bob"]
    assert target.tolist() == [1.0, 2.0, 3.0]
