"""Walk-forward validation with the epoch-budget tuners: each fold continues its own model.

Hyperband, BOHB and ASHA continue a promoted configuration from its parent's checkpoint;
with walk-forward validation they do so fold by fold (`tuners.runners.walk_forward`). The tuner
tests train a linear model whose learning rate is 0, so that a checkpoint's weights are
exactly the weights a fold started from and the losses show which one a fold loaded;
the command-line tests run the article's configuration on a tiny budget.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import keras
import keras_tuner
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from conftest import make_prices, yahoo_csv

import tuners
from hypermodels import registry as model_registry
from pipelines.cli import main
from pipelines.config import load_config
from pipelines.run.build import make_pipeline
from tuners.observers import checkpoints
from tuners.plans import schedule
from tuners.runners import walk_forward

ARTICLE = pathlib.Path(__file__).resolve().parents[1] / "configs" / "article.toml"


def table(count: int, seed: int) -> tf.data.Dataset:
    """`count` rows of four features and a linear target."""
    features = np.random.default_rng(seed).normal(size=(count, 4)).astype("float32")
    targets = features @ np.array([[1.0], [-2.0], [0.5], [0.0]], dtype="float32")
    return tf.data.Dataset.from_tensor_slices((features, targets)).batch(16)


@dataclasses.dataclass
class TinyFold:
    index: int
    train: tf.data.Dataset
    validation: tf.data.Dataset

    def fit_kwargs(self) -> dict[str, tf.data.Dataset]:
        return {"x": self.train, "validation_data": self.validation}


class FrozenLinear(keras_tuner.HyperModel):
    """A linear model trained with a learning rate of 0: its weights never move."""

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        hp.Choice("seed_offset", [0, 1, 2, 3, 4, 5, 6, 7])
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="mse")
        return model


def by_trial_and_fold(histories: pd.DataFrame) -> dict[tuple[str, int], pd.Series]:
    """`{(trial_id, fold): val_loss by epoch}`."""
    return {(trial_id, int(fold)): group.set_index("epoch")["val_loss"]
            for (trial_id, fold), group in histories.groupby(["trial_id", "fold"])}


# BOHB runs Hyperband's schedule through the same tuner; the command-line test runs it.
@pytest.mark.parametrize("name", ["hyperband"])
def test_each_fold_continues_from_its_parents_checkpoint_of_that_fold(tmp_path, name):
    folds = [TinyFold(0, table(32, 0), table(16, 1)), TinyFold(1, table(32, 2), table(16, 3))]
    tuner = tuners.build_tuner(name, FrozenLinear(), directory=tmp_path, max_epochs=3,
                               factor=3, seed=5, validation="walk_forward", folds=folds)
    tuner.search(epochs=3, verbose=0, shuffle=False)

    trials = tuners.load_trials(tmp_path).set_index("trial_id")
    curves = by_trial_and_fold(tuners.load_histories(tmp_path, by_fold=True))
    children = trials[trials["parent_trial_id"].notna()]
    assert len(children) >= 1
    for child_id, child in children.iterrows():
        parent = trials.loc[child["parent_trial_id"]]
        assert child["initial_epoch"] == parent["target_epochs"] == 1
        assert child["target_epochs"] == 3
        for fold in (0, 1):
            child_curve = curves[(child_id, fold)]
            parent_curve = curves[(child["parent_trial_id"], fold)]
            # Fold k starts where the parent's fold k stopped, and trains to the budget.
            assert child_curve.index.tolist() == [1, 2]
            assert parent_curve.index.tolist() == [0]
            # Unchanged weights give the parent's loss: the child loaded the parent's
            # checkpoint of this fold, not the other fold's nor fresh weights.
            assert child_curve.tolist() == pytest.approx([parent_curve.iloc[0]] * 2, rel=1e-6)
        other = curves[(child["parent_trial_id"], 1)].iloc[0]
        assert curves[(child_id, 0)].iloc[0] != pytest.approx(other, rel=1e-3)
    for trial_id, trial in trials.iterrows():
        fold_scores = [curves[(trial_id, fold)].min() for fold in (0, 1)]
        assert trial["fold_scores"] == pytest.approx(fold_scores)
        assert trial["score"] == pytest.approx(np.mean(fold_scores))
        assert tuner.oracle.trials[trial_id].score == pytest.approx(np.mean(fold_scores))
    # Every trial kept one checkpoint per fold, plus its last fold's as its own.
    for trial_id in trials.index:
        trial_dir = pathlib.Path(tuner.get_trial_dir(trial_id))
        assert sorted(path.name for path in trial_dir.glob("checkpoint*.h5")) == [
            "checkpoint.weights.h5", "checkpoint_fold0.weights.h5",
            "checkpoint_fold1.weights.h5"]

    # Pruning deletes a trial's fold checkpoints with its own, and keeps both together.
    statuses = dict(zip(trials.index, trials["status"], strict=True))
    needed = checkpoints.needed_checkpoints(tuner.oracle, statuses)
    removed = checkpoints.prune_checkpoints(tuner, statuses)
    assert len(removed) == 3 * (len(trials) - len(needed))
    for trial_id in trials.index:
        kept = sorted(path.name for path in pathlib.Path(tuner.get_trial_dir(trial_id)).glob(
            walk_forward.FOLD_CHECKPOINT_PATTERN))
        expected = ["checkpoint_fold0.weights.h5", "checkpoint_fold1.weights.h5"]
        assert kept == (expected if trial_id in needed else [])


def tiny_article_flags(tmp_path: pathlib.Path) -> list[str]:
    """The article's configuration shrunk to seconds: 160 days, 2 folds, 3 epochs."""
    path = tmp_path / "prices.csv"
    path.write_text(yahoo_csv(make_prices(160)))
    # 160 days less 29 warm-up days and 20 test days leave 111: folds start at 0 and 30.
    return ["--config", str(ARTICLE), "--data", str(path), "--lookback", "5",
            "--test-size", "20", "--validation-size", "20", "--train-window", "60",
            "--validation-window", "20", "--step", "30", "--max-epochs", "3", "--no-refit",
            "--output-dir", str(tmp_path / "runs"),
            "--search-space", '{"units": [4], "num_layers": [1, 1], "batch_size": [32], '
                              '"learning_rate": [0.001, 0.01]}']


@pytest.mark.parametrize("name", ["hyperband", "bohb"])
def test_tune_walk_forward_with_an_epoch_budget_tuner(tmp_path, name, capsys):
    flags = tiny_article_flags(tmp_path)
    assert main(["tune", *flags, "--tuner", name, "--validation", "walk_forward",
                 "--run-name", name]) == 0
    run_dir = tmp_path / "runs" / name

    planned = schedule.keras_tuner_schedule(3, 3)
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str,
                                                       "parent_trial_id": str})
    assert len(trials) == planned.total_trials == 6
    assert (trials["status"] == "completed").all()
    trials = trials.set_index("trial_id")
    by_fold = tuners.load_histories(run_dir, by_fold=True)
    curves = by_trial_and_fold(by_fold)
    assert sorted(by_fold["fold"].unique()) == [0, 1]
    children = trials[trials["parent_trial_id"].notna()]
    assert len(children) == 1
    for child_id, child in children.iterrows():
        parent_id = child["parent_trial_id"]
        for fold in (0, 1):
            # Fold k of the promoted trial starts at its parent's epoch count.
            assert curves[(child_id, fold)].index.tolist() == [1, 2]
            assert curves[(parent_id, fold)].index.tolist() == [0]
    for trial_id, trial in trials.iterrows():
        # The score: the mean over folds of each fold's best epoch among this trial's.
        fold_best = [curves[(trial_id, fold)].min() for fold in (0, 1)]
        assert json.loads(trial["fold_scores"]) == pytest.approx(fold_best)
        assert trial["score"] == pytest.approx(np.mean(fold_best))
    # The mean curve over folds, one point per epoch.
    mean = tuners.load_histories(run_dir)
    for trial_id in trials.index:
        curve = mean[mean["trial_id"] == trial_id].set_index("epoch")["val_loss"]
        expected = by_fold[by_fold["trial_id"] == trial_id].groupby("epoch")["val_loss"].mean()
        assert curve.tolist() == pytest.approx(expected.tolist())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == 2 * planned.total_epochs == 22
    # Pruned during the search, the finished run keeps the fold checkpoints only with a
    # trial's own checkpoint: the best trial's, and its parent's when it was promoted.
    tuner_dir = run_dir / "tuner"
    own = set(checkpoints.checkpoint_files(tuner_dir))
    assert metrics["best_trial_id"] in own
    for trial_dir in tuner_dir.glob("trial_*"):
        fold_files = sorted(path.name for path in trial_dir.glob("checkpoint_fold*"))
        trial_id = trial_dir.name.removeprefix("trial_")
        assert fold_files == (["checkpoint_fold0.weights.h5", "checkpoint_fold1.weights.h5"]
                              if trial_id in own else [])
    assert (run_dir / "best_model.keras").exists()


def test_compare_walk_forward_with_hyperband_and_random(tmp_path, capsys):
    flags = tiny_article_flags(tmp_path)
    # One epoch: Hyperband plans a single trial, and random search as many epochs.
    flags[flags.index("--max-epochs") + 1] = "1"
    assert main(["compare", *flags, "--tuners", "hyperband,random", "--seeds", "1",
                 "--run-name", "cmp"]) == 0
    table = pd.read_csv(tmp_path / "runs" / "cmp" / "comparison.csv")
    assert list(zip(table["tuner"], table["seed"], strict=True)) == [
        ("hyperband", 42), ("random", 42)]
    # Each trains its one epoch on each of the two folds.
    assert table["trials"].tolist() == [1, 1]
    assert table["epochs"].tolist() == [2, 2]
    for tuner_name in ("hyperband", "random"):
        saved = json.loads((tmp_path / "runs" / "cmp" / f"{tuner_name}-seed42" /
                            "config.json").read_text())
        assert saved["tuner"]["validation"] == "walk_forward"


def test_article_config_is_the_articles_setup():
    config = load_config(ARTICLE)

    assert (config.source, config.data.target, config.data.calendar) == ("AAPL", "close", True)
    assert config.data.log_returns is False
    assert config.data.moving_average_window == 30
    assert config.data.test_size == 800
    assert (config.data.validation_window, config.data.step) == (500, 500)
    assert config.data.train_window == 1400
    tuner = config.tuner
    assert (tuner.name, tuner.max_epochs, tuner.factor) == ("hyperband", 100, 3)
    assert tuner.validation == "walk_forward"
    assert tuner.patience >= tuner.max_epochs
    assert (config.model.name, config.model.space) == ("lstm", "article")
    spec = model_registry.resolve("lstm")
    hypermodel = spec.build(input_shape=(30, 61),
                            **spec.arguments(config.model.space, config.model.search_space))
    assert hypermodel.units == [16, 32, 64, 128, 256]
    assert hypermodel.num_layers == (1, 5)
    assert hypermodel.dropout == (0.1, 0.6)
    assert hypermodel.learning_rate == (1e-6, 1e-1)
    assert hypermodel.batch_size == [16, 32, 64, 128, 256]
    # The article's Hyperband schedule, as keras-tuner runs it.
    assert schedule.keras_tuner_schedule(100, 3).total_epochs == 2672
    # On the bundled AAPL prices: two folds of 1,400 training and 500 validation days,
    # each cut into windows of 30 days.
    prepared = make_pipeline(config).prepare()
    folds = prepared.folds()
    assert [(len(fold.train), len(fold.validation)) for fold in folds] == [(1370, 470)] * 2
    assert all(list(fold.preprocessor.get_feature_names_out()) == prepared.feature_names
               for fold in folds)
    assert prepared.input_shape == (30, 61)



def test_a_walk_forward_tuner_is_composed_of_its_runner_and_the_epoch_budget(tmp_path):
    folds = [TinyFold(0, table(32, 0), table(16, 1)), TinyFold(1, table(32, 2), table(16, 3))]
    tuner = tuners.build_tuner("hyperband", FrozenLinear(), directory=tmp_path, max_epochs=3,
                               factor=3, validation="walk_forward", folds=folds)

    # `pipelines.run.artifacts` reads `tuner.validation` to retrain the best walk-forward
    # trial on the holdout split instead of loading its last fold's checkpoint.
    assert tuner.validation == "walk_forward"
    assert type(tuner.runner) is walk_forward.WalkForward
    assert [fold.index for fold in tuner.runner.folds] == [0, 1]
    assert [type(observer).__name__ for observer in tuner.observers] == [
        "Recorder", "EpochLimit", "EpochBudget"]
    assert tuner.observers[-1] is tuner.epoch_budget
