"""Search strategies, per-trial histories and the tuner factory.

```python
import tuners

tuner = tuners.build_tuner("hyperband", hypermodel, directory="runs/demo", max_epochs=9)
tuner.search(**prepared.fit_kwargs(), epochs=9, callbacks=tuners.default_callbacks())
curves = tuners.load_histories("runs/demo")
```
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tuners.errors import HistoryFileError, TunerConfigError
    from tuners.factory import (
        TUNERS,
        EpochBudgetTuner,
        HistoryTuner,
        TunerSpec,
        build_tuner,
        default_callbacks,
        make_objective,
        objective_direction,
    )
    from tuners.history import HistoryMixin, load_histories, load_trials

# The factory imports TensorFlow (seconds); `tuners.schedule` and `tuners.errors` need
# none of it, so the exports below load on first use.
_EXPORTS = {
    "TUNERS": "tuners.factory",
    "EpochBudgetTuner": "tuners.factory",
    "HistoryTuner": "tuners.factory",
    "TunerSpec": "tuners.factory",
    "build_tuner": "tuners.factory",
    "default_callbacks": "tuners.factory",
    "make_objective": "tuners.factory",
    "objective_direction": "tuners.factory",
    "HistoryMixin": "tuners.history",
    "load_histories": "tuners.history",
    "load_trials": "tuners.history",
    "HistoryFileError": "tuners.errors",
    "TunerConfigError": "tuners.errors",
}

__all__ = [
    "TUNERS",
    "EpochBudgetTuner",
    "HistoryFileError",
    "HistoryMixin",
    "HistoryTuner",
    "TunerConfigError",
    "TunerSpec",
    "build_tuner",
    "default_callbacks",
    "load_histories",
    "load_trials",
    "make_objective",
    "objective_direction",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tuners' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
