"""Keeps trained models for the promotions that continue them; builds optimizers early.

Two per-trial costs of a search on TensorFlow are tracing, not training
(`benchmarks/overhead.py`):

- Keras builds a compiled model's optimizer lazily, inside the first trace of its training
  step. Creating variables inside a `tf.function` makes TensorFlow trace it a second time,
  so every trial traced its training step twice. `build_optimizer` builds the optimizer
  before `fit`, as Keras itself does under a distribution strategy
  (`Trainer._symbolic_build`): one trace, about 0.3 s less per trial on a 2-core CPU.
- keras-tuner builds a promoted configuration's model again, reloads its parent's best
  checkpoint and traces it again. `KeptModels` keeps each finished trial's model while
  its oracle may still promote it, and hands it to the promoted trial with its traced
  training and validation functions. The tuner then skips `keras.backend.clear_session()`
  too, which would empty TensorFlow's kernel cache that the kept model still uses. A
  hypermodel that declares its `structure(hp)` needs none of this: every run of it,
  promotions included, trains on a pooled traced model (`tuners.observers.model_pool`).

A kept model continues exactly as a rebuilt one would: it gets the parent's checkpoint
(the best epoch's weights, not the last epoch's), and its optimizer goes back to the
state it had when it was built (no Adam moments, iteration 0, the trial's learning rate),
which is where keras-tuner's rebuilt model starts. So a promoted trial's score means the
same whether its parent ran in this process or not (another worker, a resumed search).

```python
kept = KeptModels()
kept.built(model)                          # after build_optimizer(model)
kept.keep("0003", hp.values)               # after its trial trained it
model = kept.take("0003", child.values, "tuner/trial_0003/checkpoint.weights.h5")  # or None
kept.retain({"0003"})                      # forget the others
```
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

# The most models kept at once: Hyperband's largest first round at the defaults (9
# configurations). A search in one process keeps the best-scored of those its oracle may
# still promote (the ones a promotion picks); a worker, which cannot ask its chief which
# those are, keeps its latest.
LIMIT = 9


def build_optimizer(model: Any) -> bool:
    """Builds a compiled, built model's optimizer now, so its first trace creates no variables.

    A model whose layers are built only by its first call (some subclassed models) is
    left alone: its optimizer must see the variables that call creates.

    Returns:
        Whether it built the optimizer.
    """
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or optimizer.built or not model.built:
        return False
    if not model.trainable_variables:
        return False
    optimizer.build(model.trainable_variables)
    return True


def optimizer_state(model: Any) -> list[np.ndarray] | None:
    """A copy of the optimizer's variables, or None for a model without a built optimizer."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not optimizer.built:
        return None
    return [np.array(variable.numpy(), copy=True) for variable in optimizer.variables]


def restore_optimizer_state(model: Any, state: list[np.ndarray]) -> None:
    """Puts back a copy taken by `optimizer_state` on the same model."""
    for variable, value in zip(model.optimizer.variables, state, strict=True):
        variable.assign(value)


@dataclasses.dataclass
class _Kept:
    model: Any
    values: dict[str, Any]
    fresh_optimizer: list[np.ndarray]


class KeptModels:
    """Trained models by trial id, for the promoted trials that continue them.

    Args:
        limit: How many models to keep at most: `keep` forgets the oldest beyond it,
            `retain` the worst-ranked.
    """

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._kept: dict[str, _Kept] = {}
        self._last: tuple[Any, list[np.ndarray] | None] | None = None

    def __len__(self) -> int:
        return len(self._kept)

    def __contains__(self, trial_id: object) -> bool:
        return trial_id in self._kept

    def built(self, model: Any) -> None:
        """Notes the model a trial is about to train, with its optimizer's fresh state."""
        self._last = (model, optimizer_state(model))

    def forget_last(self) -> None:
        """Lets go of the model noted by `built` that no `keep` took, so it can be freed."""
        self._last = None

    def keep(self, trial_id: str, values: Mapping[str, Any]) -> None:
        """Keeps the model last noted by `built` as trial `trial_id`'s.

        Args:
            trial_id: The trial that trained it.
            values: The trial's hyperparameter values.
        """
        if self._last is None:
            return
        model, fresh = self._last
        self._last = None
        if fresh is None:
            # Its optimizer was built during training, so a promoted trial could not get
            # the fresh optimizer that a rebuilt model has.
            return
        self._kept.pop(trial_id, None)
        self._kept[trial_id] = _Kept(model, _own_values(values), fresh)
        while len(self._kept) > self.limit:
            del self._kept[next(iter(self._kept))]

    def can_take(self, parent_id: str, values: Mapping[str, Any]) -> bool:
        """Whether `take` would return the parent's model for these values.

        Not when the model's optimizer no longer matches the state noted when it was
        built (a hypermodel whose `fit` compiles the model again): a fresh optimizer
        could not be restored, so the promoted trial builds its model anew.
        """
        kept = self._kept.get(parent_id)
        if kept is None or kept.values != _own_values(values):
            return False
        variables = kept.model.optimizer.variables
        return len(variables) == len(kept.fresh_optimizer) and all(
            tuple(variable.shape) == value.shape
            for variable, value in zip(variables, kept.fresh_optimizer, strict=True))

    def take(self, parent_id: str, values: Mapping[str, Any],
             checkpoint: str | os.PathLike) -> Any | None:
        """The parent's model from its checkpoint, with a fresh optimizer; None when not kept.

        Args:
            parent_id: The trial the promoted one continues (`tuner/trial_id`).
            values: The promoted trial's hyperparameter values: apart from keras-tuner's
                own `tuner/` values, they must be the parent's, or None is returned.
            checkpoint: The parent's best-epoch weights (`keras_tuner_internals.checkpoint_path`).
        """
        if not self.can_take(parent_id, values):
            return None
        kept = self._kept.pop(parent_id)
        # With a built optimizer, load_weights also restores the checkpoint's optimizer
        # variables; a rebuilt model's optimizer would start afresh, so this one does too.
        kept.model.load_weights(checkpoint)
        restore_optimizer_state(kept.model, kept.fresh_optimizer)
        return kept.model

    def retain(self, trial_ids: Iterable[str],
               rank: Callable[[str], Any] | None = None) -> None:
        """Forgets every kept model but those of `trial_ids`, and the worst beyond `limit`.

        Args:
            trial_ids: The trials whose models may still be wanted.
            rank: Sort key of a trial id, best first; None keeps the latest.
        """
        promotable = set(trial_ids)
        wanted = [trial_id for trial_id in self._kept if trial_id in promotable]
        wanted = sorted(wanted, key=rank)[:self.limit] if rank else wanted[-self.limit:]
        for trial_id in [trial_id for trial_id in self._kept if trial_id not in wanted]:
            del self._kept[trial_id]

    def clear(self) -> None:
        """Forgets every kept model."""
        self._kept.clear()
        self._last = None


def _own_values(values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if not name.startswith("tuner/")}
