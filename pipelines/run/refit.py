"""Retrains the chosen configuration on the training and validation rows together.

The search scores each configuration on the validation rows, so its checkpoint never
learnt from the most recent of them. As the keras-io tuning guide does, the best
configuration is trained again from scratch on training + validation rows (the scalers
refitted on those rows only) for the number of epochs at which its validation score was
best, and only then scored on the held-out test rows. With walk-forward validation the
training + validation rows are every row before the test split.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import keras
import pandas as pd

import hypermodels
from pipelines.data import PreparedData


@dataclasses.dataclass
class Refit:
    """A refitted model and what it was trained on.

    Attributes:
        model: The model, trained on `data.splits["train"]`.
        data: The refit data: its `train` split is training + validation rows, with its
            own scalers; its `test` split is the held-out rows.
        epochs: The epochs it trained: the best trial's best epoch, counted from 1.
        losses: Its training loss after each epoch.
    """

    model: Any
    data: PreparedData
    epochs: int
    losses: list[float]


def refit_epochs(trials: pd.DataFrame, trial_id: str) -> int:
    """The epochs to train: one past the best trial's best (absolute, 0-based) epoch.

    A Hyperband configuration continued across rounds counts its epochs from its first
    round, so the refit trains as long as the whole chain did up to its best epoch.
    """
    row = trials.set_index("trial_id").loc[trial_id]
    best_epoch = row["best_epoch"]
    if best_epoch is None or (isinstance(best_epoch, float) and math.isnan(best_epoch)):
        return max(int(row["epochs"]), 1)
    return int(best_epoch) + 1


def refit(hypermodel: Any, hyperparameters: Any, prepared: PreparedData, epochs: int,
          seed: int) -> Refit:
    """Trains a fresh model of `hyperparameters` on training + validation rows.

    Args:
        hypermodel: The search's `keras_tuner.HyperModel`.
        hyperparameters: The best trial's `keras_tuner.HyperParameters`.
        prepared: The search's data; its `refit_data()` is trained on.
        epochs: How many epochs to train.
        seed: Seeds the model's initial weights.

    Returns:
        The refitted model and its data.
    """
    data = prepared.refit_data()
    keras.utils.set_random_seed(seed)
    model = hypermodel.build(hyperparameters)
    history = hypermodel.fit(hyperparameters, model, **hypermodels.fit_data(hypermodel, data),
                             epochs=epochs, verbose=0, shuffle=False)
    losses = [float(value) for value in history.history.get("loss", [])]
    return Refit(model=model, data=data, epochs=epochs, losses=losses)
