"""The application around a search. Read `pipelines/recipe.py` first: `run_search` is
`ktlab tune` on one screen, and each of its lines names the room below that does the work.

- `config`: the settings and their checks; `data`: files to scaled splits and baselines;
- `run`: one run's parts (its directory, the tuner, artifacts, refit, final pick, predict);
- `reports`: plots, importances, the Pareto front; `parallel`: chief and workers;
- `compare`: strategies side by side; `cli`: the `ktlab` command;
- `notebook`: what the notebooks share (`setup`, the leaderboard, schedule and importances).

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
