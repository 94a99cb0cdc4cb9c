"""Trains a new configuration on a model traced before, for hypermodels that say their structure.

Most of a trial's cost outside its epochs is tracing: Keras traces a new model's training
and validation steps in its first epoch (about a second per model for the default LSTM
search on a 2-core CPU; a compilation per batch shape on JAX), although a search's
configurations have few shapes: the default space has 6 (2 layer counts x 3 unit sizes)
among 17 configurations. A hypermodel whose `structure(hp)` names the hyperparameters
that shape its model (`hypermodels.base.BatchSizeHyperModel.structure`) holds the others
in variables (`hypermodels.held`), so a traced model of that structure can train them.

`ModelPool` keeps one traced model per structure, at most `LIMIT`, and hands it to the
next configuration of that structure with the exact state of a freshly built model:

1. The tuner builds the trial's model as it always does (the same draws from the random
   number generators, the same checkpoint of a parent trial), without tracing it: for the
   default LSTM that takes 0.02 s, against about a second for a trace.
2. `take` copies every variable of that fresh model into the pooled one: the weights, the
   dropout masks' seeds, the held hyperparameters, and the optimizer's variables (its
   iteration 0, learning rate, zeroed moments), then returns the pooled model.
3. `release` marks it free when the training run ends.

So a configuration trains on a reused model exactly as on its own fresh one: same
initial numbers, same traced computation. A promoted Hyperband trial is served the same
way, from its parent's checkpoint loaded into the fresh model, so the promotions need no
kept models (`tuners.observers.kept_models`) and every pooled model is free between runs.

A model is only reused when the fresh one has the same signature (`signature`): the same
classes and configurations of its layers, optimizer, loss and metrics, save for the
values held in variables, and variables of the same shapes. A `structure` that leaves out
a value the traced code reads (a plain `keras.layers.Dropout`'s rate) thus builds a new
model instead of training with a stale one.

```python
pool = ModelPool()
model = pool.take(("lstm", 2, 32), fresh_model)     # fresh_model, or a traced twin
model.fit(...)
pool.release()
```
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Hashable
from typing import Any

import keras

# The most traced models kept at once. The default LSTM space has 6 structures and the
# `article` space 25; the least recently used beyond this limit is dropped.
LIMIT = 9


def structure_key(hypermodel: Any, hp: Any) -> Hashable | None:
    """The hypermodel's `structure(hp)`, or None when it has none or returns None.

    Raises:
        TypeError: If `structure(hp)` returns a value that cannot be a dictionary key.
    """
    structure = getattr(hypermodel, "structure", None)
    if not callable(structure):
        return None
    key = structure(hp)
    if key is None:
        return None
    try:
        hash(key)
    except TypeError:
        raise TypeError(f"{type(hypermodel).__name__}.structure(hp) returned {key!r}, which "
                        f"cannot be a dictionary key; return a tuple of numbers and "
                        f"strings") from None
    return key


def signature(model: Any) -> str | None:
    """What a model's traced code depends on, as one string; None when it cannot be read.

    The model's configuration with its layers named by position (a model built without
    clearing Keras's session gets other automatic names) and the values that its layers
    hold in variables (`held_in_variables`) left out; the optimizer's class and
    configuration without its name, its learning rate and its held values; the loss and
    metrics; and the shapes and types of the model's and the optimizer's variables.
    A model whose configuration Keras cannot give (a subclassed model without
    `get_config`), or whose optimizer is not built, has none.
    """
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not optimizer.built or not model.built:
        return None
    try:
        config = model.get_config()
        compile_config = dict(model.get_compile_config() or {})
    except (NotImplementedError, TypeError, ValueError):
        return None
    layers = list(model.layers)
    held = {layer.name: getattr(layer, "held_in_variables", ()) for layer in layers}
    names = {layer.name: f"<layer {index}>" for index, layer in enumerate(layers)}
    names[model.name] = "<model>"
    config = _renamed(_without_held(config, held), names)
    optimizer_config = dict(optimizer.get_config())
    optimizer_config.pop("name", None)
    # Keras holds a learning rate given as a number in a variable; a schedule's numbers
    # are traced into the step, so they stay in the signature.
    for name in ("learning_rate", *getattr(optimizer, "held_in_variables", ())):
        if isinstance(getattr(optimizer, name, None), keras.Variable):
            optimizer_config[name] = "<held>"
    compile_config.pop("optimizer", None)
    variables = [(tuple(variable.shape), str(variable.dtype))
                 for variable in [*model.variables, *optimizer.variables]]
    return json.dumps([type(model).__qualname__, config, type(optimizer).__qualname__,
                       optimizer_config, compile_config, variables],
                      sort_keys=True, default=repr)


def copy_state(source: Any, target: Any) -> None:
    """Assigns every variable of `source` and its optimizer to `target`'s, in order.

    Both must have the same `signature`.
    """
    pairs = [*zip(source.variables, target.variables, strict=True),
             *zip(source.optimizer.variables, target.optimizer.variables, strict=True)]
    for origin, destination in pairs:
        destination.assign(origin.value)


@dataclasses.dataclass
class _Pooled:
    model: Any
    signature: str
    # The optimizer it was pooled with: a hypermodel whose `fit` compiles the model again
    # replaces it, and the signature no longer describes the model.
    optimizer: Any
    in_use: bool = True


class ModelPool:
    """Traced models by structure, each handed to one training run at a time.

    Args:
        limit: How many models to keep at most; the least recently used free one goes.

    Attributes:
        traced: Training runs that got their own fresh model, traced in its first epoch.
        reused: Training runs that got a pooled model.
    """

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self.traced = 0
        self.reused = 0
        self._models: dict[Hashable, _Pooled] = {}

    def __len__(self) -> int:
        return len(self._models)

    def take(self, key: Hashable, fresh: Any) -> Any:
        """The model to train: a free pooled model of `key` with `fresh`'s state, or `fresh`.

        Args:
            key: The configuration's structure (`structure_key`).
            fresh: The configuration's freshly built, compiled model, with its optimizer
                built (and its parent's checkpoint loaded, for a promoted trial).

        Returns:
            The pooled model holding every value of `fresh`, or `fresh` itself, which is
            then pooled under `key` (replacing a model of another signature).
        """
        fresh_signature = signature(fresh)
        pooled = self._models.get(key)
        if (pooled is not None and not pooled.in_use and pooled.signature == fresh_signature
                and pooled.model.optimizer is pooled.optimizer):
            try:
                copy_state(fresh, pooled.model)
            except ValueError:
                # Variables of other shapes or number than its signature said: not reused.
                del self._models[key]
            else:
                pooled.in_use = True
                # The most recently used last: `_evict` drops from the front.
                self._models[key] = self._models.pop(key)
                self.reused += 1
                return pooled.model
        self.traced += 1
        pooled = self._models.get(key)
        if fresh_signature is not None and (pooled is None or not pooled.in_use):
            self._models.pop(key, None)
            self._models[key] = _Pooled(fresh, fresh_signature, fresh.optimizer)
            self._evict()
        return fresh

    def release(self, reusable: bool = True) -> None:
        """Frees the models in use for the next `take`; drops them when not `reusable`.

        A run that raised may have left its model half-traced or its variables
        half-assigned, so the tuner drops it.
        """
        for key in [key for key, pooled in self._models.items() if pooled.in_use]:
            if reusable:
                self._models[key].in_use = False
            else:
                del self._models[key]

    def clear(self) -> None:
        """Forgets every model."""
        self._models.clear()

    def _evict(self) -> None:
        free = [key for key, pooled in self._models.items() if not pooled.in_use]
        while len(self._models) > self.limit and free:
            del self._models[free.pop(0)]


def _without_held(config: Any, held: dict[str, tuple[str, ...]]) -> Any:
    """`config` with the values that named layers hold in variables replaced by a mark."""
    if isinstance(config, list):
        return [_without_held(item, held) for item in config]
    if not isinstance(config, dict):
        return config
    inner = config.get("config")
    if isinstance(inner, dict) and held.get(inner.get("name")):
        inner = {**inner, **{name: "<held>" for name in held[inner["name"]] if name in inner}}
        config = {**config, "config": inner}
    return {name: _without_held(value, held) for name, value in config.items()}


def _renamed(config: Any, names: dict[str, str]) -> Any:
    """`config` with every string that is a layer's name replaced by its position."""
    if isinstance(config, str):
        return names.get(config, config)
    if isinstance(config, (list, tuple)):
        return [_renamed(item, names) for item in config]
    if isinstance(config, dict):
        return {name: _renamed(value, names) for name, value in config.items()}
    return config
