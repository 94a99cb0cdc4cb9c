"""Hypermodels: the search spaces ktlab tunes.

Each hypermodel takes its ranges as plain constructor arguments, so a configuration
file can override them, and tunes `batch_size` in its `fit()`.

```python
import keras_tuner

import hypermodels

hypermodel = hypermodels.LSTMHyperModel(input_shape=(30, 5), num_layers=[1, 3])
tuner = keras_tuner.Hyperband(hypermodel, objective="val_loss", max_epochs=9)
```
"""

from hypermodels.base import BatchSizeHyperModel, SearchSpaceError
from hypermodels.dense import DenseHyperModel
from hypermodels.lstm import LSTMHyperModel

__all__ = ["BatchSizeHyperModel", "DenseHyperModel", "LSTMHyperModel", "SearchSpaceError"]
