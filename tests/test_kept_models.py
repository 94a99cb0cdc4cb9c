"""A promoted trial continues its parent's model in memory, as it would from disk.

`tuners.observers.kept_models`: the optimizer is built before the first trace (one trace of the
training step, not two), and a Hyperband promotion takes its parent's trained model
instead of building and tracing a new one, with the parent's best-epoch checkpoint and a
fresh optimizer, so its training and score are what a rebuilt model gives.
"""

from __future__ import annotations

import keras
import keras_tuner
import numpy as np
import pandas
import pytest
import tensorflow as tf

import tuners
from tuners.observers import kept_models

TRAIN_STARTS: list[dict] = []


def table(count: int = 64, seed: int = 0) -> tf.data.Dataset:
    features = np.random.default_rng(seed).normal(size=(count, 4)).astype("float32")
    targets = features @ np.array([[1.0], [-2.0], [0.5], [0.0]], dtype="float32")
    return tf.data.Dataset.from_tensor_slices((features, targets)).batch(16).cache()


class SeededDense(keras_tuner.HyperModel):
    """A dense net whose initial weights depend only on its hyperparameters, without dropout.

    So two searches that run the same trials train the same models to the same scores,
    however many models each built before.
    """

    def __init__(self) -> None:
        super().__init__()
        self.builds = 0

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        self.builds += 1
        units = hp.Choice("units", [4, 8, 16])
        learning_rate = hp.Float("learning_rate", 1e-3, 3e-2, sampling="log")
        seeded = keras.initializers.GlorotUniform
        inputs = keras.Input(shape=(4,))
        hidden = keras.layers.Dense(units, activation="relu",
                                    kernel_initializer=seeded(seed=1))(inputs)
        outputs = keras.layers.Dense(1, kernel_initializer=seeded(seed=2))(hidden)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
        return model


class NoteTrainStart(keras.callbacks.Callback):
    """Notes the model, its weights and its optimizer's iterations as each fit begins."""

    def on_train_begin(self, logs=None) -> None:
        # A module-level list: keras-tuner deep-copies the callbacks of every trial.
        TRAIN_STARTS.append({"model": id(self.model), "weights": self.model.get_weights(),
                             "iterations": int(self.model.optimizer.iterations.numpy())})


def hyperband(tmp_path, hypermodel, keep_models: bool = True,
              validation: tf.data.Dataset | None = None, kept_counts: list | None = None):
    """A Hyperband search (max_epochs 4, factor 2: 15 trials, 5 promotions); its tuner, and
    each fit's start as `NoteTrainStart` noted it. `kept_counts` gets the number of models
    kept after each trial."""
    tuner = tuners.build_tuner("hyperband", hypermodel, directory=tmp_path, max_epochs=4,
                               factor=2, seed=11, keep_models=keep_models)
    if kept_counts is not None:
        retain = tuner.epoch_budget.kept_models.retain

        def retain_and_count(*args, **kwargs) -> None:
            retain(*args, **kwargs)
            kept_counts.append(len(tuner.epoch_budget.kept_models))

        tuner.epoch_budget.kept_models.retain = retain_and_count
    TRAIN_STARTS.clear()
    tuner.search(x=table(), validation_data=validation or table(32, seed=1), epochs=4,
                 callbacks=[*tuners.default_callbacks(patience=10), NoteTrainStart()], verbose=0)
    return tuner, list(TRAIN_STARTS)


def opposite_table(count: int = 32, seed: int = 1) -> tf.data.Dataset:
    """Validation rows whose targets are the negated rule: the more a model learns, the
    worse its validation loss, so a trial of two epochs or more has its best epoch first."""
    return table(count, seed).map(lambda features, targets: (features, -targets))


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="counts TensorFlow's traces of the training step")
def test_the_optimizer_is_built_before_the_training_step_is_traced(tmp_path) -> None:
    tuner = tuners.build_tuner("random", SeededDense(), directory=tmp_path, max_trials=1)
    model = tuner._try_build(keras_tuner.HyperParameters())
    assert model.optimizer.built
    # Adam: iterations, learning rate, and two moments for each of the 4 weights.
    assert len(model.optimizer.variables) == 2 + 2 * 4
    traces = []
    train_step = model.train_step
    model.train_step = lambda data: traces.append(1) or train_step(data)

    model.fit(table(), epochs=2, verbose=0)

    # Built inside the first trace, the optimizer made TensorFlow trace the step twice.
    assert len(traces) == 1


def test_a_promoted_trial_continues_its_parents_model_from_the_best_checkpoint(
        tmp_path, monkeypatch) -> None:
    hypermodel = SeededDense()
    clears = []
    clear_session = keras.backend.clear_session
    monkeypatch.setattr(keras.backend, "clear_session",
                        lambda **kwargs: clears.append(1) or clear_session(**kwargs))
    kept_counts = []
    tuner, starts = hyperband(tmp_path, hypermodel, validation=opposite_table(),
                              kept_counts=kept_counts)

    trials = tuners.load_trials(tmp_path).set_index("trial_id")
    assert len(trials) == 15
    children = trials[trials["parent_trial_id"].notna()]
    assert len(children) == 5
    # keras-tuner builds once to declare the search space, then the 10 new configurations;
    # the 5 promotions reused a model.
    assert hypermodel.builds == 1 + 10
    # A kept model keeps Keras's session and TensorFlow's kernel cache.
    assert len(clears) == 10
    # In one process, trials run one after another in the order of their ids.
    start_of = dict(zip(sorted(trials.index), starts, strict=True))
    for child_id, child in children.iterrows():
        parent_id = child["parent_trial_id"]
        start = start_of[child_id]
        assert start["model"] == start_of[parent_id]["model"]
        assert start["iterations"] == 0
        assert child["initial_epoch"] == trials.loc[parent_id, "target_epochs"]
        fresh = hypermodel.build(tuner.oracle.trials[parent_id].hyperparameters)
        fresh.load_weights(tuner._get_checkpoint_fname(parent_id))
        for loaded, started in zip(fresh.get_weights(), start["weights"], strict=True):
            np.testing.assert_array_equal(started, loaded)
    # The parents that trained two epochs had their best first: their children started
    # from that checkpoint, not from the weights the parent ended with.
    parents = trials.loc[children["parent_trial_id"]]
    two_epochs = parents[parents["target_epochs"] - parents["initial_epoch"] == 2]
    assert len(two_epochs) == 2
    assert list(two_epochs["best_epoch"]) == list(two_epochs["initial_epoch"])
    # Kept after each trial: a round's models while the next round is not full, then
    # only the next round's (brackets of 4 -> 2 -> 1, 3 -> 2, and 3 configurations).
    assert kept_counts == [1, 2, 3, 4, 4, 2, 0, 1, 2, 3, 2, 0, 0, 0, 0]


def test_keeping_models_changes_neither_the_trials_nor_their_scores(tmp_path) -> None:
    kept_model, _ = hyperband(tmp_path / "kept", SeededDense())
    rebuilt = SeededDense()
    rebuilt_model, _ = hyperband(tmp_path / "rebuilt", rebuilt, keep_models=False)

    assert rebuilt.builds == 1 + 15
    kept = tuners.load_trials(tmp_path / "kept")
    again = tuners.load_trials(tmp_path / "rebuilt")
    columns = ["trial_id", "parent_trial_id", "hp_units", "hp_learning_rate", "target_epochs"]
    pandas.testing.assert_frame_equal(kept[columns], again[columns])
    np.testing.assert_allclose(kept["score"], again["score"], rtol=1e-5)


def test_kept_models_are_forgotten_unless_promotable_and_within_the_limit() -> None:
    kept = kept_models.KeptModels(limit=3)
    assert kept_models.LIMIT == 9
    for number in range(4):
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(optimizer="adam", loss="mse")
        assert kept_models.build_optimizer(model)
        kept.built(model)
        kept.keep(str(number), {"units": number, "tuner/epochs": 1})
    # Beyond the limit, `keep` forgets the oldest.
    assert [str(number) in kept for number in range(4)] == [False, True, True, True]
    # Another configuration under the parent's id is not the parent's model.
    assert kept.take("1", {"units": 5}, "unused.weights.h5") is None
    kept.limit = 1
    kept.retain({"1", "2", "3"}, rank={"1": 0.5, "2": 0.1, "3": 0.9}.get)
    assert [str(number) in kept for number in range(4)] == [False, False, True, False]
    kept.retain(set())
    assert len(kept) == 0


def test_a_taken_model_has_the_checkpoints_weights_and_a_fresh_optimizer(tmp_path) -> None:
    values = {"units": 4, "learning_rate": 1e-3}
    model = SeededDense().build(keras_tuner.HyperParameters())
    kept = kept_models.KeptModels()
    assert kept_models.build_optimizer(model)
    kept.built(model)
    model.fit(table(), epochs=1, verbose=0)
    model.save_weights(tmp_path / "best.weights.h5")
    best = model.get_weights()
    model.fit(table(), epochs=2, verbose=0)
    kept.keep("0001", values)

    taken = kept.take("0001", {**values, "tuner/epochs": 4, "tuner/trial_id": "0001"},
                      tmp_path / "best.weights.h5")

    assert taken is model and len(kept) == 0
    for weights, expected in zip(taken.get_weights(), best, strict=True):
        np.testing.assert_array_equal(weights, expected)
    optimizer = taken.optimizer
    assert int(optimizer.iterations.numpy()) == 0
    assert float(optimizer.learning_rate.numpy()) == pytest.approx(1e-3)
    moments = [variable.numpy() for variable in optimizer.variables[2:]]
    assert len(moments) == 8 and all(not value.any() for value in moments)


def test_a_model_whose_optimizer_changed_or_was_never_built_is_not_taken(tmp_path) -> None:
    values = {"units": 4, "learning_rate": 1e-3}
    kept = kept_models.KeptModels()
    recompiled = SeededDense().build(keras_tuner.HyperParameters())
    kept_models.build_optimizer(recompiled)
    kept.built(recompiled)
    # A hypermodel's fit that compiles again, with another optimizer (1 + 1 * 4 variables).
    recompiled.compile(optimizer=keras.optimizers.SGD(momentum=0.9), loss="mse")
    recompiled.fit(table(), epochs=1, verbose=0)
    kept.keep("0001", values)
    assert "0001" in kept and not kept.can_take("0001", values)
    assert kept.take("0001", values, tmp_path / "unused.weights.h5") is None

    unbuilt = SeededDense().build(keras_tuner.HyperParameters())
    kept.built(unbuilt)
    unbuilt.fit(table(), epochs=1, verbose=0)
    kept.keep("0002", values)
    assert "0002" not in kept
