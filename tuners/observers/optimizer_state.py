"""Continues a trial from a checkpoint with its optimizer's state, not only its weights.

keras-tuner checkpoints a trial with `model.save_weights`, and Keras 3 writes the
compiled optimizer's variables into that file too (Adam's moments, its iteration count,
its learning rate). `model.load_weights` only restores them into an optimizer that is
already built, which a freshly compiled model's is not: Keras then warns "Skipping
variable loading for optimizer" and the optimizer starts afresh, as Hyperband's
promotions do. Population-based training copies a member's whole training state, so its
trials build the optimizer first, load, and put back their own learning rate, which the
checkpoint's would otherwise replace.

```python
load_with_optimizer_state(model, "tuner/trial_0003/checkpoint.weights.h5")
```
"""

from __future__ import annotations

import os
from typing import Any

import keras


def load_with_optimizer_state(model: Any, path: str | os.PathLike) -> None:
    """Loads weights and optimizer state from `path`, keeping the model's learning rate.

    Args:
        model: A built, compiled `keras.Model` with the checkpoint's layers and the same
            kind of optimizer; an uncompiled one only gets its weights.
        path: A `.weights.h5` file written by `model.save_weights`.
    """
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        model.load_weights(path)
        return
    # A learning-rate schedule has no variable to overwrite; it follows the iterations.
    learning_rate = optimizer.learning_rate
    own_rate = float(learning_rate) if isinstance(learning_rate, keras.Variable) else None
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    model.load_weights(path)
    if own_rate is not None:
        optimizer.learning_rate = own_rate
