"""The data pipeline every tuner shares, the `ktlab` command line, reports and plots."""

from pipelines.data import (
    Fold,
    PreparedData,
    Split,
    StockPipeline,
    TabularPipeline,
    WalkForward,
)
from pipelines.errors import ConfigError, DataError, KtlabError

__all__ = [
    "ConfigError",
    "DataError",
    "Fold",
    "KtlabError",
    "PreparedData",
    "Split",
    "StockPipeline",
    "TabularPipeline",
    "WalkForward",
]
