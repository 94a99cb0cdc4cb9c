"""Trials that fail: an exception, a NaN loss from the first epoch or a later one.

Real searches on tiny data (`test_tuners.table`): each way a trial ends is recorded in
the histories and in keras-tuner's own record, and the search goes on until too many
trials fail in a row.
"""

from __future__ import annotations

import math

import keras
import keras_tuner
import pandas
import pytest
from test_tuners import table

import tuners


class FaultyHyperModel(keras_tuner.HyperModel):
    """A linear model that, depending on `mode`, breaks in one of the ways trials end."""

    modes = ["nan", "raise", "ok", "diverge", "early"]

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        mode = hp.Choice("mode", self.modes)
        if mode == "raise":
            raise ValueError("this configuration cannot be built")
        inputs = keras.Input(shape=(4,))
        outputs = keras.layers.Dense(1)(inputs)
        if mode == "nan":
            outputs = keras.layers.Lambda(lambda tensor: tensor * math.nan)(outputs)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer="adam", loss="mse")
        return model

    def fit(self, hp, model, *args, **kwargs):
        callbacks = list(kwargs.pop("callbacks", []))
        if hp.get("mode") == "diverge":
            callbacks.append(PoisonWeightsAtEpoch(1))
        if hp.get("mode") == "early":
            callbacks.append(keras.callbacks.EarlyStopping(patience=0, min_delta=1e9))
        return model.fit(*args, callbacks=callbacks, **kwargs)


class PoisonWeightsAtEpoch(keras.callbacks.Callback):
    """Turns every weight into NaN when the given epoch begins."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if epoch == self.epoch:
            for weight in self.model.trainable_weights:
                weight.assign(weight * math.nan)


def test_failed_trials_are_recorded_and_the_search_goes_on(tmp_path) -> None:
    tuner = tuners.build_tuner("grid", FaultyHyperModel(), directory=tmp_path, max_trials=5)
    tuner.search(x=table(), validation_data=table(16, seed=1), epochs=3,
                 callbacks=tuners.default_callbacks(patience=5), verbose=0)

    trials = tuners.load_trials(tmp_path).set_index("hp_mode")

    assert trials.loc["nan", "status"] == "failed"
    assert "NaN or infinite at epoch 0" in trials.loc["nan", "reason"]
    assert trials.loc["nan", "oracle_status"] == "FAILED"
    assert trials.loc["raise", "status"] == "failed"
    assert trials.loc["raise", "reason"] == "ValueError: this configuration cannot be built"
    assert trials.loc["raise", "epochs"] == 0
    assert trials.loc["ok", "status"] == "completed"
    assert trials.loc["ok", "epochs"] == 3
    # keras-tuner alone would complete it with the score of the epoch before the NaN; the
    # tuner tells it the trial failed, so both records say so and neither keeps a score.
    assert trials.loc["diverge", "status"] == "failed"
    assert trials.loc["diverge", "oracle_status"] == "FAILED"
    assert trials.loc["diverge", "reason"] == (
        "loss or objective became NaN or infinite at epoch 1")
    assert pandas.isna(trials.loc["diverge", "score"])
    assert trials.loc["diverge", "best_epoch"] == 0
    assert trials.loc["early", "status"] == "stopped_early"
    assert trials.loc["early", "reason"] == "stopped after epoch 2 of 3"
    assert trials.loc["early", "epochs"] == 2
    assert len(tuner.oracle.trials) == 5


def test_the_last_failure_is_recorded_when_failures_end_the_search(tmp_path) -> None:
    tuner = tuners.build_tuner("grid", FaultyHyperModel(), directory=tmp_path, max_trials=5,
                               max_consecutive_failed_trials=2)

    with pytest.raises(RuntimeError, match="Number of consecutive failures exceeded"):
        tuner.search(x=table(), validation_data=table(16, seed=1), epochs=1,
                     callbacks=tuners.default_callbacks(), verbose=0)

    trials = tuners.load_trials(tmp_path)
    assert trials["hp_mode"].tolist() == ["nan", "raise"]
    assert trials["status"].tolist() == ["failed", "failed"]
