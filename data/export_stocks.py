"""Regenerate `data/stocks.csv.gz` from the `bokeh-sampledata` package.

Run once, offline, in any environment that has `bokeh-sampledata` and `pandas`:

```
pip install bokeh-sampledata pandas
python data/export_stocks.py
```

`bokeh-sampledata` is needed by this script only; ktlab reads the exported file.
"""

from __future__ import annotations

import pathlib

import pandas as pd
from bokeh_sampledata import stocks

TICKERS = ("AAPL", "MSFT", "IBM", "GOOG")
OUTPUT = pathlib.Path(__file__).resolve().parent / "stocks.csv.gz"


def export(output: pathlib.Path = OUTPUT) -> pd.DataFrame:
    """Writes split-adjusted daily OHLCV for `TICKERS` to a gzipped CSV.

    The source's open, high, low and close are unadjusted, so a 2:1 split looks like a
    50% crash. Every price is multiplied by the day's `adj_close / close` ratio (the
    source's own adjustment, which also folds in dividends) and volume is divided by it,
    so that price times volume is unchanged.

    Args:
        output: Where to write the file.

    Returns:
        The exported frame.
    """
    frames = []
    for ticker in TICKERS:
        raw = pd.DataFrame(getattr(stocks, ticker))
        ratio = raw["adj_close"] / raw["close"]
        frames.append(
            pd.DataFrame(
                {
                    "ticker": ticker,
                    "date": raw["date"],
                    "open": (raw["open"] * ratio).round(4),
                    "high": (raw["high"] * ratio).round(4),
                    "low": (raw["low"] * ratio).round(4),
                    "close": raw["adj_close"].round(4),
                    "volume": (raw["volume"] / ratio).round().astype("int64"),
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True)
    # A fixed mtime keeps the gzip bytes identical between runs.
    frame.to_csv(output, index=False, compression={"method": "gzip", "mtime": 0})
    return frame


if __name__ == "__main__":
    exported = export()
    summary = exported.groupby("ticker")["date"].agg(["count", "min", "max"])
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size:,} bytes)")
    print(summary.to_string())
