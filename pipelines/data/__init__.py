"""The data side of ktlab: files and tables in, scaled arrays and splits out.

Nothing here imports TensorFlow until a split's `dataset` is first built, so a bad file
is reported in well under a second.

- `sources`: reads the bundled data and users' CSV files, checking every value.
- `stock.StockPipeline`: daily prices to windows for a sequence model.
- `series.SeriesPipeline`: any regular series (`series_sources`, `frequency`) to windows
  and `horizon`-step targets, beside `baselines`' reference forecasts.
- `tabular.TabularPipeline`: a table to rows for a dense model.
- `prepared.PreparedData`: what both return: splits, scalers, baselines, folds.
- `volatility`: the volatility target (next day's |log return|, forecast in log space).
- `references`: the persistence and moving-average forecasts scored beside a stock model.
"""

from pipelines.data import series_sources
from pipelines.data.folds import WalkForward
from pipelines.data.prepared import Fold, PreparedData, Split, score
from pipelines.data.series import SeriesPipeline
from pipelines.data.stock import StockPipeline, make_stock_features
from pipelines.data.tabular import TabularPipeline

__all__ = [
    "Fold",
    "PreparedData",
    "SeriesPipeline",
    "Split",
    "StockPipeline",
    "TabularPipeline",
    "WalkForward",
    "make_stock_features",
    "score",
    "series_sources",
]
