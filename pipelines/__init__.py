"""The application around a search, and (in `pipelines.data`) the data side.

- `pipelines.data`: files and tables to scaled arrays and splits.
- `config` (settings, checked in one place), `build` (the pipeline and model a config
  names), `search` (`run_search`), `run_dir`, `artifacts`, `distributed`, `compare`,
  `report`, `plots` and `cli` (`ktlab`): one job each.

Nothing imported here loads TensorFlow; `run_search` and `run_compare` load it on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pipelines.data import (
    Fold,
    PreparedData,
    Split,
    StockPipeline,
    TabularPipeline,
    WalkForward,
)
from pipelines.errors import ConfigError, DataError, KtlabError

if TYPE_CHECKING:
    from pipelines.compare.comparison import run_compare
    from pipelines.recipe import run_search

_EXPORTS = {"run_search": "pipelines.recipe", "run_compare": "pipelines.compare.comparison"}

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
    "run_compare",
    "run_search",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'pipelines' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
