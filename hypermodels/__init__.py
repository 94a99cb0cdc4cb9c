"""Hypermodels: the search spaces ktlab tunes, and the registry that names them.

Each hypermodel takes its ranges as plain constructor arguments, so a configuration
file can override them, and tunes `batch_size` in its `fit()`, which asks the data for
each trial's batch size (`fit_data`). They import Keras, never TensorFlow, so they run on
any Keras backend. `registry.MODELS` names each one with the data it takes; add a model
with one file here and one line there.

```python
import keras_tuner

import hypermodels

hypermodel = hypermodels.LSTMHyperModel(input_shape=(30, 5), num_layers=[1, 3])
tuner = keras_tuner.Hyperband(hypermodel, objective="val_loss", max_epochs=9)
tuner.search(**hypermodels.fit_data(hypermodel, prepared), epochs=9)
```
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hypermodels.base import BatchSizeHyperModel, SearchSpaceError, fit_data
    from hypermodels.dense import DenseHyperModel
    from hypermodels.lstm import LSTMHyperModel
    from hypermodels.registry import MODELS, ModelSpec

# The hypermodels import Keras (seconds); the registry does not, so that the command
# line can check a model's name at once. Every export loads on first use.
_EXPORTS = {
    "BatchSizeHyperModel": "hypermodels.base",
    "SearchSpaceError": "hypermodels.base",
    "fit_data": "hypermodels.base",
    "DenseHyperModel": "hypermodels.dense",
    "LSTMHyperModel": "hypermodels.lstm",
    "MODELS": "hypermodels.registry",
    "ModelSpec": "hypermodels.registry",
}

__all__ = ["MODELS", "BatchSizeHyperModel", "DenseHyperModel", "LSTMHyperModel", "ModelSpec",
           "SearchSpaceError", "fit_data"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'hypermodels' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
