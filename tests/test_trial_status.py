"""keras-tuner's record of how each trial ended agrees with ktlab's: real searches.

A trial whose loss goes NaN ends FAILED in keras-tuner's `trial.json`, a pruned one
STOPPED (`tests/test_pruning.py` runs that search and asserts it with `keras_tuners_view`),
and the best trial that `ktlab tune` saves is keras-tuner's `oracle.get_best_trials(1)`.
"""

from __future__ import annotations

import json
import pathlib

import keras
import keras_tuner
import pandas as pd
from conftest import make_prices, yahoo_csv

from pipelines.cli import main


def keras_tuners_view(run_dir: pathlib.Path) -> keras_tuner.Tuner:
    """The run's trials as keras-tuner reloads them from disk, as a notebook would."""
    # The model function is never called: the tuner only reloads its saved oracle.
    return keras_tuner.RandomSearch(
        hypermodel=lambda hp: keras.Sequential(), objective="val_loss", max_trials=100,
        directory=str(run_dir), project_name="tuner", overwrite=False)


def trial_statuses(run_dir: pathlib.Path) -> dict[str, str]:
    """`{trial_id: status}` from each trial's `trial.json`."""
    return {path.parent.name.removeprefix("trial_"): json.loads(path.read_text())["status"]
            for path in sorted((run_dir / "tuner").glob("trial_*/trial.json"))}


# A model whose weights turn NaN when its second epoch begins, for the trials with
# `poison=True`: keras-tuner alone would complete such a trial with its first epoch's
# score.
POISONED_MODEL = """
import math

import keras

from hypermodels.lstm import LSTMHyperModel


class PoisonAtSecondEpoch(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            for weight in self.model.trainable_weights:
                weight.assign(weight * math.nan)


class PoisonedLSTM(LSTMHyperModel):
    def build(self, hp):
        hp.Boolean("poison")
        return super().build(hp)

    def fit(self, hp, model, *args, **kwargs):
        if hp.get("poison"):
            kwargs["callbacks"] = [*kwargs.get("callbacks", []), PoisonAtSecondEpoch()]
        return super().fit(hp, model, *args, **kwargs)
"""


def test_a_trial_whose_loss_goes_nan_ends_failed_in_keras_tuners_record(tmp_path, write_csv):
    path = write_csv(yahoo_csv(make_prices(120)))
    model_file = tmp_path / "poisoned_model.py"
    model_file.write_text(POISONED_MODEL)
    # Grid search over `poison`: one trial learns, the other's loss is NaN from epoch 1.
    code = main(["tune", "--data", str(path), "--lookback", "5", "--test-size", "20",
                 "--validation-size", "20", "--target", "close",
                 "--model", f"{model_file}:PoisonedLSTM",
                 "--output-dir", str(tmp_path / "runs"), "--search-space",
                 '{"units": [4], "num_layers": [1, 1], "batch_size": [16], '
                 '"dropout": [0.0, 0.0], "learning_rate": [1e-2, 1e-2]}',
                 "--tuner", "grid", "--max-trials", "2", "--max-epochs", "3",
                 "--no-refit", "--deterministic", "--seed", "3", "--run-name", "nan",
                 "--quiet"])
    assert code == 0
    run_dir = tmp_path / "runs" / "nan"
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
    poisoned = trials["hp_poison"].map(bool).tolist().index(True)
    healthy = 1 - poisoned
    assert trials["status"].tolist()[poisoned] == "failed"
    assert trials["status"].tolist()[healthy] == "completed"
    assert trials["reason"].tolist()[poisoned] == (
        "loss or objective became NaN or infinite at epoch 1")
    assert pd.isna(trials["score"].tolist()[poisoned])
    poisoned_id = trials["trial_id"].tolist()[poisoned]
    healthy_id = trials["trial_id"].tolist()[healthy]
    assert trial_statuses(run_dir) == {poisoned_id: "FAILED", healthy_id: "COMPLETED"}
    view = keras_tuners_view(run_dir)
    assert view.oracle.trials[poisoned_id].score is None
    best = view.oracle.get_best_trials(1)[0]
    saved = json.loads((run_dir / "best_hyperparameters.json").read_text())
    assert best.trial_id == healthy_id
    assert best.hyperparameters.values == saved
    assert view.get_best_hyperparameters(1)[0].values == saved
    assert json.loads((run_dir / "metrics.json").read_text())["best_trial_id"] == healthy_id
