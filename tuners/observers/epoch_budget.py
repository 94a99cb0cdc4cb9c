"""The part of a tuner for oracles that hand out epoch budgets, as Hyperband does.

`EpochBudget` does what `keras_tuner.Hyperband` does on top of `keras_tuner.Tuner`, for
any such oracle (Hyperband, BOHB, ASHA, PBT): train to `tuner/epochs` from
`tuner/initial_epoch`, starting from the best checkpoint of trial `tuner/trial_id` when
the oracle continues a configuration. Only the weights are reloaded and the optimizer
starts afresh, except for population-based training, which continues the optimizer's
state (`tuners.observers.optimizer_state`). With walk-forward validation each fold continues from
the parent's checkpoint of the same fold (`tuners.runners.walk_forward`).

With holdout validation, a promoted trial takes its parent's model from memory when this
process trained it (`tuners.observers.kept_models`): the same checkpoint and a fresh optimizer,
without building and tracing the model again. The part is also a trial observer
(`tuners.observers.trial_observer`), which keeps and forgets those models as trials end. A
hypermodel that declares its structure needs no kept models: its promoted trials build
their model, load the parent's checkpoint into it, and train on a pooled traced model
given that state (`tuners.observers.model_pool`), as every other trial of it does.

```python
oracle = keras_tuner.oracles.HyperbandOracle(objective="val_loss", max_epochs=9)
tuner = tuners.tuner.Tuner(oracle=oracle, hypermodel=hypermodel, directory="runs/demo",
                           epoch_budget=epoch_budget.EpochBudget())
tuner.search(train_dataset, validation_data=validation_dataset)
```
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import keras
import keras_tuner

from tuners.observers import checkpoints, kept_models, optimizer_state, trial_observer
from tuners.runners import walk_forward


class EpochBudget(trial_observer.TrialObserver):
    """Trains each trial to its `tuner/epochs`, continuing its parent's checkpoint.

    Args:
        keep_models: Whether to keep trained models in memory for their promotions;
            False builds every trial's model anew, as keras-tuner does.
    """

    def __init__(self, keep_models: bool = True) -> None:
        self.keep_models = keep_models
        self.kept_models = kept_models.KeptModels()

    def fit_kwargs(self, values: dict[str, Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        """`kwargs` with the trial's `epochs` and `initial_epoch` from the oracle's values."""
        if "tuner/epochs" in values:
            kwargs["epochs"] = values["tuner/epochs"]
            kwargs["initial_epoch"] = values["tuner/initial_epoch"]
        return kwargs

    def builds_anew(self, tuner: Any, hp: keras_tuner.HyperParameters) -> bool:
        """Whether the trial gets a new model, built after clearing Keras's session."""
        # `clear_session()` also empties TensorFlow's kernel cache, which a kept model's
        # next epoch would fill again: 0.3 s on a 2-core CPU.
        parent_id = hp.values.get("tuner/trial_id")
        return not (parent_id is not None and self._keeps_models(tuner, hp)
                    and self.kept_models.can_take(parent_id, hp.values))

    def build_model(self, tuner: Any, hp: keras_tuner.HyperParameters,
                    build: Callable[[keras_tuner.HyperParameters], keras.Model]) -> keras.Model:
        """The trial's model: its parent's, kept or loaded from its checkpoint, or `build`'s.

        Args:
            tuner: The tuner.
            hp: The trial's hyperparameters.
            build: keras-tuner's own build of a model (`Tuner.build_model`).
        """
        # What keras-tuner's Hyperband tuner does for a promoted trial, for any epoch-budget
        # oracle: the parent's checkpoint is loaded into the new model.
        parent_id = hp.values.get("tuner/trial_id")
        if parent_id is not None and self._keeps_models(tuner, hp):
            model = self.kept_models.take(parent_id, hp.values,
                                          tuner.checkpoint_path(parent_id))
            if model is not None:
                return model
        model = build(hp)
        if parent_id is not None:
            if not model.built:
                with open(tuner.build_config_path(parent_id), encoding="utf-8") as handle:
                    model.build_from_config(json.load(handle))
            # Population-based training (a trial with a `tuner/member`) continues the
            # optimizer's state too (`tuners.observers.optimizer_state`); the others only weights.
            load = (optimizer_state.load_with_optimizer_state if "tuner/member" in hp.values
                    else type(model).load_weights)
            active_fold = tuner.runner.active_fold
            if active_fold is None:
                load(model, tuner.checkpoint_path(parent_id))
            else:
                load(model, walk_forward.fold_checkpoint_path(tuner, parent_id, active_fold))
        return model

    # Its hooks as a trial observer: the kept models.

    def on_model_built(self, tuner: Any, hp: Any, model: Any) -> None:
        if self._keeps_models(tuner, hp):
            self.kept_models.built(model)

    def on_run_end(self, tuner: Any, trial: Any) -> None:
        if self._keeps_models(tuner, trial.hyperparameters):
            self.kept_models.keep(trial.trial_id, trial.hyperparameters.values)

    def on_trial_end(self, tuner: Any, trial: Any, recording: Any) -> None:
        # A model that was not kept (a failed trial's) must be free for the next trial's
        # collection.
        self.kept_models.forget_last()
        oracle = tuner.oracle
        # A worker's oracle is its chief's (an `OracleClient`), which cannot say which
        # trials may still be promoted: `KeptModels.keep` keeps its latest few instead.
        if isinstance(oracle, keras_tuner.Oracle):
            sign = 1.0 if oracle.objective.direction == "min" else -1.0

            def rank(trial_id: str) -> float:
                score = oracle.trials[trial_id].score
                return math.inf if score is None or math.isnan(score) else sign * score

            self.kept_models.retain(checkpoints.promotable_trial_ids(oracle), rank)

    def on_search_end(self, tuner: Any) -> None:
        self.kept_models.clear()

    def _keeps_models(self, tuner: Any, hp: keras_tuner.HyperParameters) -> bool:
        # Holdout only: a walk-forward trial trains one model per fold. Population-based
        # training continues the optimizer's state and may change the hyperparameters. A
        # pooled model (`tuners.observers.model_pool`) serves promotions itself: the fresh
        # model gets the parent's checkpoint, and the pooled one its state.
        return (self.keep_models and tuner.runner.folds is None
                and tuner.distribution_strategy is None and "tuner/member" not in hp.values
                and tuner.pool_key(hp) is None)
