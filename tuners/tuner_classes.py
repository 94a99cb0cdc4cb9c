"""The tuner classes that `tuners.factory.build_tuner` builds, on top of `keras_tuner.Tuner`.

- `HistoryTuner`: records per-trial histories (`tuners.recorder`), stops at a number of
  epochs trained (`tuners.epoch_limit`), builds each trial's optimizer before its first
  trace and skips already-living objects in its garbage collections.
- `PruningTuner`: a `HistoryTuner` with a pruner (`tuners.pruning`).
- `EpochBudgetTuner`: for oracles that hand out epoch budgets (Hyperband, BOHB, ASHA,
  PBT); it continues a promoted configuration, in memory when it can
  (`tuners.kept_models`).

```python
oracle = keras_tuner.oracles.HyperbandOracle(objective="val_loss", max_epochs=9)
tuner = EpochBudgetTuner(oracle=oracle, hypermodel=hypermodel, directory="runs/demo")
tuner.search(train_dataset, validation_data=validation_dataset)
```
"""

from __future__ import annotations

import gc
import json
import math
from typing import Any

import keras
import keras_tuner

from tuners import (
    checkpoints,
    epoch_limit,
    kept_models,
    keras_tuner_internals,
    optimizer_state,
    pruning,
    recorder,
)


class HistoryTuner(epoch_limit.EpochLimitMixin, recorder.HistoryMixin,
                   keras_tuner_internals.Tuner):
    """A keras-tuner `Tuner` that records per-trial histories; for `max_trials` oracles.

    `max_trained_epochs=N` ends the search once its trials have trained N epochs in all
    (`tuners.epoch_limit`); `max_trials` stays the cap on trials.

    ```python
    oracle = keras_tuner.oracles.RandomSearchOracle(objective="val_loss", max_trials=5)
    tuner = HistoryTuner(oracle=oracle, hypermodel=hypermodel, directory="runs/demo")
    tuner.search(train_dataset, validation_data=validation_dataset, epochs=10)
    ```
    """

    def search(self, *args: Any, **kwargs: Any) -> None:
        """Runs keras-tuner's search with the objects that outlive it frozen for the collector.

        Every trial starts with a full garbage collection (`build_trial_model`), which walks every
        tracked object: about 480,000 once TensorFlow, Keras and the data are loaded, so
        0.25 s a trial on a 2-core CPU. `gc.freeze()` moves the objects alive now to a
        generation the collector does not walk, and `gc.unfreeze()` puts them back when
        the search ends, however it ends, so the collection before a trial walks only
        what the search created (0.02 s; the same memory: `benchmarks/overhead.py`,
        `benchmarks/memory.py`). Garbage is collected first, so none is frozen. Objects
        frozen before the search stay so, and the search then freezes nothing.
        """
        # Only the outermost freeze is ours to undo: a host that froze objects itself (a
        # server that forks, or a search inside a search) keeps its own.
        owned = gc.get_freeze_count() == 0
        if owned:
            gc.collect()
            gc.freeze()
        try:
            super().search(*args, **kwargs)
        finally:
            if owned:
                gc.unfreeze()

    def build_trial_model(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        """Builds a trial's model after one garbage collection, not keras-tuner's two.

        It replaces keras-tuner's own build step (`keras_tuner_internals.Tuner`).

        keras-tuner calls `keras.backend.clear_session()`, which already runs Python's
        garbage collector, and then `gc.collect()` again. Each full collection takes longer
        as TensorFlow's traced graphs pile up over a search (0.2 s early, 0.6 s after a
        few dozen trials on a 2-core CPU: `benchmarks/overhead.py`), so one is kept.
        A model that continues in memory needs neither (`_builds_anew`).
        """
        if self._builds_anew(hp):
            keras.backend.clear_session(free_memory=True)
        model = self.build_model(hp)
        if not isinstance(model, keras.Model):
            raise keras_tuner.errors.FatalTypeError(
                f"Expected the model-building function, or HyperModel.build() to return a "
                f"valid Keras Model instance. Received: {model} of type {type(model)}.")
        size = keras_tuner_internals.model_size(model)
        if self.max_model_size and size > self.max_model_size:
            raise keras_tuner.errors.FailedTrialError(
                f"Oversized model: {size} parameters. Skip model.")
        # One trace of the training step instead of two (`tuners.kept_models`); under a
        # distribution strategy Keras builds the optimizer in the strategy's scope itself.
        if self.distribution_strategy is None:
            kept_models.build_optimizer(model)
        return model

    def _builds_anew(self, hp: keras_tuner.HyperParameters) -> bool:
        """Whether the trial gets a new model, built after clearing Keras's session."""
        return True


class PruningTuner(pruning.PruningMixin, HistoryTuner):
    """A `HistoryTuner` that stops trials by a pruner's rule (`tuners.pruning`)."""


class EpochBudgetTuner(HistoryTuner):
    """A `HistoryTuner` for oracles that hand out epoch budgets, as Hyperband does.

    It does what `keras_tuner.Hyperband` does on top of `keras_tuner.Tuner`, for any
    such oracle: train to `tuner/epochs` from `tuner/initial_epoch`, starting from the
    best checkpoint of trial `tuner/trial_id` when the oracle continues a configuration.
    Only the weights are reloaded and the optimizer starts afresh, except for
    population-based training, which continues the optimizer's state. With walk-forward
    validation each fold continues from the parent's checkpoint of the same fold
    (`tuners.walk_forward`).

    With holdout validation, a promoted trial takes its parent's model from memory when
    this process trained it (`tuners.kept_models`): the same checkpoint and a fresh
    optimizer, without building and tracing the model again.

    Args:
        *args: Passed to `HistoryTuner`.
        keep_models: Whether to keep trained models in memory for their promotions;
            False builds every trial's model anew, as keras-tuner does.
        **kwargs: Passed to `HistoryTuner`.
    """

    continues_checkpoints = True

    def __init__(self, *args: Any, keep_models: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keep_models = keep_models
        self.kept_models = kept_models.KeptModels()

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        values = trial.hyperparameters.values
        if "tuner/epochs" in values:
            kwargs["epochs"] = values["tuner/epochs"]
            kwargs["initial_epoch"] = values["tuner/initial_epoch"]
        return super().run_trial(trial, *args, **kwargs)

    def build_trial_model(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        model = super().build_trial_model(hp)
        if self._keeps_models(hp):
            self.kept_models.built(model)
        return model

    def _builds_anew(self, hp: keras_tuner.HyperParameters) -> bool:
        # `clear_session()` also empties TensorFlow's kernel cache, which a kept model's
        # next epoch would fill again: 0.3 s on a 2-core CPU.
        parent_id = hp.values.get("tuner/trial_id")
        return not (parent_id is not None and self._keeps_models(hp)
                    and self.kept_models.can_take(parent_id, hp.values))

    def build_and_fit(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        results = super().build_and_fit(trial, *args, **kwargs)
        if self._keeps_models(trial.hyperparameters):
            self.kept_models.keep(trial.trial_id, trial.hyperparameters.values)
        return results

    def on_trial_end(self, trial: Any) -> None:
        super().on_trial_end(trial)
        # A model that was not kept (a failed trial's) must be free for the next trial's
        # collection.
        self.kept_models.forget_last()
        oracle = self.oracle
        # A worker's oracle is its chief's (an `OracleClient`), which cannot say which
        # trials may still be promoted: `KeptModels.keep` keeps its latest few instead.
        if isinstance(oracle, keras_tuner.Oracle):
            sign = 1.0 if oracle.objective.direction == "min" else -1.0

            def rank(trial_id: str) -> float:
                score = oracle.trials[trial_id].score
                return math.inf if score is None or math.isnan(score) else sign * score

            self.kept_models.retain(checkpoints.promotable_trial_ids(oracle), rank)

    def search(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().search(*args, **kwargs)
        finally:
            self.kept_models.clear()

    def _keeps_models(self, hp: keras_tuner.HyperParameters) -> bool:
        # Holdout only: a walk-forward trial trains one model per fold. Population-based
        # training continues the optimizer's state and may change the hyperparameters.
        return (self.keep_models and self.folds is None and self.distribution_strategy is None
                and "tuner/member" not in hp.values)

    def build_model(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        # What keras-tuner's Hyperband tuner does for a promoted trial, for any epoch-budget
        # oracle: the parent's checkpoint is loaded into the new model.
        parent_id = hp.values.get("tuner/trial_id")
        if parent_id is not None and self._keeps_models(hp):
            model = self.kept_models.take(parent_id, hp.values,
                                          self.checkpoint_path(parent_id))
            if model is not None:
                return model
        model = super().build_model(hp)
        if parent_id is not None:
            if not model.built:
                with open(self.build_config_path(parent_id), encoding="utf-8") as handle:
                    model.build_from_config(json.load(handle))
            # Population-based training (a trial with a `tuner/member`) continues the
            # optimizer's state too (`tuners.optimizer_state`); the others only weights.
            load = (optimizer_state.load_with_optimizer_state if "tuner/member" in hp.values
                    else type(model).load_weights)
            if self.active_fold is None:
                load(model, self.checkpoint_path(parent_id))
            else:
                load(model, self.fold_checkpoint_fname(parent_id, self.active_fold))
        return model
