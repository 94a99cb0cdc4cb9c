"""Tests of the tuner factory and the per-trial histories, on real keras-tuner searches."""

from __future__ import annotations

import dataclasses
import shutil

import keras
import keras_tuner
import numpy as np
import pandas
import pytest
import tensorflow as tf

import hypermodels
import tuners
from tuners import keras_tuner_internals
from tuners import tuner as tuner_module
from tuners.observers import epoch_budget
from tuners.runners import walk_forward

WINDOW, FEATURES = 8, 3


def sine_windows(count: int = 48, offset: int = 0, batch_size: int = 16) -> tf.data.Dataset:
    """`count` windows of a three-channel sine, each forecasting the next first channel."""
    steps = np.arange(offset, offset + count + WINDOW, dtype="float32")
    series = np.stack([np.sin(steps * (channel + 1) / 7) for channel in range(FEATURES)], axis=1)
    inputs = np.stack([series[start:start + WINDOW] for start in range(count)])
    targets = series[WINDOW:WINDOW + count, :1]
    return tf.data.Dataset.from_tensor_slices((inputs, targets)).batch(batch_size).cache()


def table(count: int = 48, seed: int = 0) -> tf.data.Dataset:
    """`count` rows of four features and a linear target."""
    features = np.random.default_rng(seed).normal(size=(count, 4)).astype("float32")
    targets = features @ np.array([[1.0], [-2.0], [0.5], [0.0]], dtype="float32")
    return tf.data.Dataset.from_tensor_slices((features, targets)).batch(16).cache()


def tiny_lstm(**arguments: object) -> hypermodels.LSTMHyperModel:
    return hypermodels.LSTMHyperModel(
        input_shape=(WINDOW, FEATURES), units=[4, 8], num_layers=[1, 2],
        learning_rate=(1e-3, 1e-2), batch_size=[16], **arguments)


def tiny_dense(**arguments: object) -> hypermodels.DenseHyperModel:
    space = {"units": [4, 8], "num_layers": [1, 2], "learning_rate": (1e-3, 1e-2),
             "batch_size": [16], **arguments}
    return hypermodels.DenseHyperModel(input_shape=(4,), **space)


def finite_dense() -> hypermodels.DenseHyperModel:
    """Two widths times two learning rates: a grid of exactly four configurations."""
    return hypermodels.DenseHyperModel(
        input_shape=(4,), units=[4, 8], num_layers=[1, 1], activations=["relu"],
        dropout=[0.0, 0.0], optimizers=["adam"], learning_rate=(1e-3, 1e-2),
        learning_rate_step=10, weight_decay=(1e-4, 1e-4), batch_size=[16])


@dataclasses.dataclass
class TinyFold:
    """What walk-forward validation needs of a fold: `index` and `fit_kwargs()`."""

    index: int
    train: tf.data.Dataset
    validation: tf.data.Dataset

    def fit_kwargs(self) -> dict[str, tf.data.Dataset]:
        return {"x": self.train, "validation_data": self.validation}


def epochs_by_trial(histories: pandas.DataFrame) -> dict[str, list[int]]:
    return {trial_id: sorted(group["epoch"].tolist())
            for trial_id, group in histories.groupby("trial_id")}


# The registry and its checks; these build tuners but train nothing.


@pytest.mark.parametrize(
    ("name", "oracle_class", "budget_class"),
    [
        ("hyperband", keras_tuner.oracles.HyperbandOracle, epoch_budget.EpochBudget),
        ("bayesian", keras_tuner_internals.BayesianOptimizationOracle, type(None)),
        ("random", keras_tuner.oracles.RandomSearchOracle, type(None)),
        ("grid", keras_tuner.oracles.GridSearchOracle, type(None)),
    ],
)
def test_each_name_builds_its_oracle(tmp_path, name, oracle_class, budget_class) -> None:
    tuner = tuners.build_tuner(name, finite_dense(), directory=tmp_path, max_epochs=9,
                               factor=3, max_trials=4)

    assert type(tuner.oracle) is oracle_class
    assert type(tuner) is tuner_module.Tuner
    assert type(tuner.epoch_budget) is budget_class
    assert tuner.oracle.objective.name == "val_loss"
    assert tuner.oracle.objective.direction == "min"
    assert tuner.history_path == str(tmp_path / "tuner" / "histories.jsonl")
    if name == "hyperband":
        assert (tuner.oracle.max_epochs, tuner.oracle.factor) == (9, 3)
    else:
        assert tuner.oracle.max_trials == 4


def test_registering_an_oracle_is_one_entry(tmp_path, monkeypatch) -> None:
    class FirstChoiceOracle(keras_tuner.oracles.RandomSearchOracle):
        """A stand-in for our own oracles, taking the same budget as random search."""

    monkeypatch.setitem(tuners.TUNERS, "first_choice",
                        tuners.TunerSpec(FirstChoiceOracle, budget="trials"))

    tuner = tuners.build_tuner("first_choice", finite_dense(), directory=tmp_path, max_trials=2)

    assert type(tuner.oracle) is FirstChoiceOracle
    assert tuner.oracle.max_trials == 2


def test_unknown_name_lists_the_valid_ones(tmp_path) -> None:
    with pytest.raises(tuners.TunerConfigError,
                       match=r"unknown tuner 'annealing'; use one of hyperband, bayesian, "
                             r"random, grid"):
        tuners.build_tuner("annealing", finite_dense(), directory=tmp_path)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"max_epochs": 0}, r"max_epochs must be >= 1, got 0"),
        ({"factor": 1}, r"factor must be >= 2, got 1"),
        ({"max_trials": 0}, r"max_trials must be >= 1, got 0"),
        ({"max_trials": 2.5}, r"max_trials must be a whole number"),
        ({"seed": 0}, r"seed must be >= 1 \(keras-tuner treats 0 as no seed\)"),
        ({"name": "bayesian", "num_initial_points": 5, "max_trials": 3},
         r"num_initial_points \(5\) exceeds max_trials \(3\)"),
        ({"name": "random", "num_initial_points": 2}, r"num_initial_points applies to bayesian"),
        ({"objective": "val_r2"}, r"cannot tell whether objective 'val_r2' is minimized"),
        ({"validation": "k_fold"}, r"unknown validation 'k_fold'; use one of holdout, "
                                   r"walk_forward"),
        ({"name": "random", "validation": "walk_forward"}, r"walk_forward' needs folds"),
        ({"name": "hyperband", "validation": "walk_forward", "folds": ["fold"]},
         r"each fold needs a fit_kwargs\(\) method returning x and validation_data; got str"),
    ],
)
def test_bad_budgets_are_refused_with_one_line(tmp_path, arguments, message) -> None:
    arguments = {"name": "hyperband", **arguments}

    with pytest.raises(tuners.TunerConfigError, match=message) as raised:
        tuners.build_tuner(hypermodel=finite_dense(), directory=tmp_path, **arguments)

    assert isinstance(raised.value, ValueError)
    assert "\n" not in str(raised.value)


def test_grid_refuses_a_continuous_range(tmp_path) -> None:
    with pytest.raises(tuners.TunerConfigError,
                       match=r"grid search needs finitely many values, but dropout, "
                             r"learning_rate are continuous"):
        tuners.build_tuner("grid", hypermodels.LSTMHyperModel(input_shape=(WINDOW, FEATURES)),
                           directory=tmp_path)


@pytest.mark.parametrize("max_trials", [1, 3, 10, 40])
def test_bayesian_initial_points_never_exceed_max_trials(tmp_path, max_trials) -> None:
    # The LSTM space has five tuned hyperparameters; keras-tuner's default would be 15.
    tuner = tuners.build_tuner("bayesian", hypermodels.LSTMHyperModel(input_shape=(8, 3)),
                               directory=tmp_path, max_trials=max_trials)

    expected = {1: 1, 3: 1, 10: 5, 40: 5}[max_trials]
    assert tuner.oracle.num_initial_points == expected
    assert tuner.oracle.num_initial_points <= max_trials


def test_oracle_and_tuner_arguments_are_routed(tmp_path) -> None:
    tuner = tuners.build_tuner("bayesian", finite_dense(), directory=tmp_path, max_trials=4,
                               num_initial_points=2, beta=3.5, max_model_size=10_000)

    assert tuner.oracle.num_initial_points == 2
    assert tuner.oracle.beta == 3.5
    assert tuner.max_model_size == 10_000


@pytest.mark.parametrize(
    ("objective", "direction"),
    [("val_loss", "min"), ("val_mae", "min"), ("val_rmse", "min"), ("mse", "min"),
     ("val_mean_absolute_error", "min"), ("val_accuracy", "max"), ("val_auc", "max"),
     ("val_precision", "max"), ("recall", "max")],
)
def test_objective_direction_is_inferred(objective, direction) -> None:
    assert tuners.objective_direction(objective) == direction


def test_default_callbacks_stop_early_in_the_objective_direction() -> None:
    early_stopping, terminate_on_nan = tuners.default_callbacks("val_auc", patience=2)

    assert isinstance(early_stopping, keras.callbacks.EarlyStopping)
    assert (early_stopping.monitor, early_stopping.patience) == ("val_auc", 2)
    assert early_stopping.mode == "max"
    assert isinstance(terminate_on_nan, keras.callbacks.TerminateOnNaN)


def test_same_seed_gives_the_same_trials(tmp_path) -> None:
    def proposed_values(seed: int, directory: str) -> list[dict]:
        tuner = tuners.build_tuner("random", tiny_lstm(), directory=tmp_path / directory,
                                   max_trials=4, seed=seed)
        values = []
        for _ in range(4):
            # Report a score without training: the oracle only needs the trial ended.
            trial = tuner.oracle.create_trial("tuner0")
            tuner.oracle.update_trial(trial.trial_id, {"val_loss": 1.0})
            trial.status = "COMPLETED"
            tuner.oracle.end_trial(trial)
            values.append(dict(trial.hyperparameters.values))
        return values

    first = proposed_values(11, "first")
    again = proposed_values(11, "again")
    other = proposed_values(12, "other")

    assert first == again
    assert first != other
    assert len({value["learning_rate"] for value in first}) == 4


# Real searches on tiny data.


@pytest.fixture(scope="module")
def random_run(tmp_path_factory):
    """A random search of three LSTM trials of two epochs, shared by several tests."""
    directory = tmp_path_factory.mktemp("random")
    finished = []
    tuner = tuners.build_tuner("random", tiny_lstm(), directory=directory, max_trials=3,
                               seed=7, on_trial_end=finished.append)
    tuner.search(x=sine_windows(), validation_data=sine_windows(16, offset=48), epochs=2,
                 callbacks=tuners.default_callbacks(), verbose=0)
    return tuner, directory, finished


def test_random_search_records_every_trial(random_run) -> None:
    tuner, directory, finished = random_run

    trials = tuners.load_trials(directory)
    histories = tuners.load_histories(directory)

    assert set(trials["trial_id"]) == set(tuner.oracle.trials) == {"0", "1", "2"}
    assert trials["status"].tolist() == ["completed"] * 3
    assert trials["epochs"].tolist() == [2, 2, 2]
    assert epochs_by_trial(histories) == {"0": [0, 1], "1": [0, 1], "2": [0, 1]}
    assert {"loss", "val_loss", "mae", "val_mae", "rmse", "val_rmse"} <= set(histories.columns)
    assert (histories["seconds"] > 0).all()
    assert {"hp_units", "hp_num_layers", "hp_learning_rate"} <= set(trials.columns)
    assert [summary["trial_id"] for summary in finished] == ["0", "1", "2"]
    assert [summary["status"] for summary in finished] == ["completed"] * 3


def test_recorded_scores_match_the_oracle(random_run) -> None:
    tuner, directory, _ = random_run

    trials = tuners.load_trials(directory).set_index("trial_id")
    histories = tuners.load_histories(directory)

    for trial_id, trial in tuner.oracle.trials.items():
        curve = histories[histories["trial_id"] == trial_id].set_index("epoch")["val_loss"]
        assert trials.loc[trial_id, "score"] == pytest.approx(trial.score)
        assert trials.loc[trial_id, "score"] == pytest.approx(curve.min())
        assert trials.loc[trial_id, "best_epoch"] == curve.idxmin()
        assert trials.loc[trial_id, "hp_units"] == trial.hyperparameters.values["units"]


def test_load_histories_tolerates_a_truncated_last_line(random_run, tmp_path) -> None:
    tuner, _, _ = random_run
    copy = tmp_path / "histories.jsonl"
    shutil.copy(tuner.history_path, copy)
    complete = tuners.load_histories(copy)
    text = copy.read_text()
    # Cut the last record (the last trial's end) in the middle, as a crash would.
    copy.write_text(text[:len(text) - 40])

    histories = tuners.load_histories(tmp_path)
    trials = tuners.load_trials(copy)

    assert len(histories) == len(complete) == 6
    assert trials["status"].tolist() == ["completed", "completed", "incomplete"]


def test_a_missing_histories_file_is_named(tmp_path) -> None:
    with pytest.raises(tuners.HistoryFileError, match=r"no histories.jsonl at .*; pass a run"):
        tuners.load_histories(tmp_path)


def test_hyperband_chains_are_stitched_in_absolute_epochs(tmp_path) -> None:
    tuner = tuners.build_tuner("hyperband", tiny_lstm(), directory=tmp_path, max_epochs=3,
                               factor=3, seed=3)
    tuner.search(x=sine_windows(), validation_data=sine_windows(16, offset=48), epochs=3,
                 callbacks=tuners.default_callbacks(patience=5), verbose=0)

    trials = tuners.load_trials(tmp_path).set_index("trial_id")
    histories = tuners.load_histories(tmp_path)
    epochs = epochs_by_trial(histories)

    assert set(trials.index) == set(tuner.oracle.trials)
    assert len(trials) == 6
    assert sorted(trials["target_epochs"]) == [1, 1, 1, 3, 3, 3]
    assert (trials["status"] == "completed").all()
    for trial_id, trial in trials.iterrows():
        assert epochs[trial_id] == list(range(trial["initial_epoch"], trial["target_epochs"]))
        assert trial["epochs"] == trial["target_epochs"] - trial["initial_epoch"]
    children = trials[trials["parent_trial_id"].notna()]
    assert len(children) == 1
    for child_id, child in children.iterrows():
        parent = trials.loc[child["parent_trial_id"]]
        assert epochs[child_id][0] == child["initial_epoch"] == parent["target_epochs"] == 1
        assert parent["promoted_to"] == child_id
        assert child["round"] == parent["round"] + 1
        assert child["hp_units"] == parent["hp_units"]


def test_bayesian_search_runs_to_completion(tmp_path) -> None:
    tuner = tuners.build_tuner("bayesian", tiny_dense(), directory=tmp_path, max_trials=3,
                               seed=5)
    tuner.search(x=table(), validation_data=table(16, seed=1), epochs=2,
                 callbacks=tuners.default_callbacks(), verbose=0)

    trials = tuners.load_trials(tmp_path)
    histories = tuners.load_histories(tmp_path)

    assert tuner.oracle.num_initial_points == 1
    assert set(trials["trial_id"]) == set(tuner.oracle.trials) == {"0", "1", "2"}
    assert trials["status"].tolist() == ["completed"] * 3
    assert epochs_by_trial(histories) == {"0": [0, 1], "1": [0, 1], "2": [0, 1]}


def test_grid_search_tries_each_combination_once(tmp_path) -> None:
    tuner = tuners.build_tuner("grid", finite_dense(), directory=tmp_path, max_trials=10)
    tuner.search(x=table(), validation_data=table(16, seed=1), epochs=1, verbose=0)

    trials = tuners.load_trials(tmp_path)

    assert set(trials["trial_id"]) == set(tuner.oracle.trials)
    combinations = {(row.hp_units_0, round(row.hp_learning_rate, 6))
                    for row in trials.itertuples()}
    assert len(trials) == 4
    assert combinations == {(4, 0.001), (4, 0.01), (8, 0.001), (8, 0.01)}
    assert trials["epochs"].tolist() == [1, 1, 1, 1]


def test_walk_forward_scores_the_mean_over_folds(tmp_path) -> None:
    folds = [TinyFold(0, table(32, seed=0), table(16, seed=1)),
             TinyFold(1, table(48, seed=2), table(16, seed=3))]
    tuner = tuners.build_tuner("random", tiny_dense(), directory=tmp_path, max_trials=2,
                               seed=9, validation="walk_forward", folds=folds)
    # Holdout data given to search() is replaced by each fold's own.
    tuner.search(x=table(8, seed=4), validation_data=table(8, seed=5), epochs=2, verbose=0)

    trials = tuners.load_trials(tmp_path).set_index("trial_id")
    by_fold = tuners.load_histories(tmp_path, by_fold=True)
    mean = tuners.load_histories(tmp_path)

    assert set(trials.index) == set(tuner.oracle.trials) == {"0", "1"}
    for trial_id, trial in trials.iterrows():
        fold_curves = by_fold[by_fold["trial_id"] == trial_id]
        fold_scores = fold_curves.groupby("fold")["val_loss"].min()
        assert trial["fold_scores"] == pytest.approx(fold_scores.tolist())
        assert trial["score"] == pytest.approx(fold_scores.mean())
        assert tuner.oracle.trials[trial_id].score == pytest.approx(fold_scores.mean())
        mean_curve = mean[mean["trial_id"] == trial_id].set_index("epoch")["val_loss"]
        expected = fold_curves.groupby("epoch")["val_loss"].mean()
        assert mean_curve.tolist() == pytest.approx(expected.tolist())
        assert sorted(fold_curves["fold"].unique()) == [0, 1]
        # The cost counts both folds' epochs; the curve has one point per epoch.
        assert trial["epochs_trained"] == len(fold_curves)
        assert trial["epochs"] == len(mean_curve)


def test_histories_file_is_appended_on_resume_and_emptied_on_overwrite(tmp_path) -> None:
    path = tmp_path / "histories.jsonl"
    # An earlier search that crashed while writing its second record.
    path.write_text('{"event": "trial_start", "trial_id": "earlier"}\n{"event": "epo')

    resumed = tuners.build_tuner("random", finite_dense(), directory=tmp_path, max_trials=1,
                                 history_path=path)
    resumed.search(x=table(), validation_data=table(16, seed=1), epochs=1, verbose=0)
    with pytest.warns(UserWarning, match=r"histories.jsonl:2: skipped a line"):
        trials = tuners.load_trials(path)

    assert trials["trial_id"].tolist() == ["earlier", "0"]
    assert trials["status"].tolist() == ["incomplete", "completed"]

    tuners.build_tuner("random", finite_dense(), directory=tmp_path, max_trials=1,
                       history_path=path, overwrite=True)
    assert not path.exists()


def test_history_mixin_refuses_folds_with_holdout(tmp_path) -> None:
    with pytest.raises(tuners.TunerConfigError, match=r"folds are only used with validation"):
        tuners.build_tuner("random", finite_dense(), directory=tmp_path,
                           folds=[TinyFold(0, table(), table())])
    assert walk_forward.VALIDATIONS == ("holdout", "walk_forward")
