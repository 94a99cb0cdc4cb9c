"""Search strategies, per-trial histories and the tuner factory.

```python
import tuners

tuner = tuners.build_tuner("hyperband", hypermodel, directory="runs/demo", max_epochs=9)
tuner.search(**hypermodels.fit_data(hypermodel, prepared), epochs=9,
             callbacks=tuners.default_callbacks())
curves = tuners.load_histories("runs/demo")
```
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tuners.errors import HistoryFileError, TunerConfigError
    from tuners.factory import build_tuner, default_callbacks, make_objective
    from tuners.registry import TUNERS, TunerSpec
    from tuners.results.objectives import best_trial_id, objective_direction, oracle_best_trial_id
    from tuners.results.records import load_histories, load_trials
    from tuners.tuner import Tuner

# The factory and the tuner import TensorFlow (seconds); the registry, the records'
# readers, `tuners.plans.schedule` and `tuners.errors` need none of it, so every export loads on
# first use.
_EXPORTS = {
    "TUNERS": "tuners.registry",
    "TunerSpec": "tuners.registry",
    "Tuner": "tuners.tuner",
    "build_tuner": "tuners.factory",
    "default_callbacks": "tuners.factory",
    "make_objective": "tuners.factory",
    "objective_direction": "tuners.results.objectives",
    "best_trial_id": "tuners.results.objectives",
    "oracle_best_trial_id": "tuners.results.objectives",
    "load_histories": "tuners.results.records",
    "load_trials": "tuners.results.records",
    "HistoryFileError": "tuners.errors",
    "TunerConfigError": "tuners.errors",
}

__all__ = [
    "TUNERS",
    "HistoryFileError",
    "Tuner",
    "TunerConfigError",
    "TunerSpec",
    "best_trial_id",
    "build_tuner",
    "default_callbacks",
    "load_histories",
    "load_trials",
    "make_objective",
    "objective_direction",
    "oracle_best_trial_id",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tuners' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
