"""Hyperparameters held in variables (`hypermodels.held`), and the pool's own rules.

The built-in models' dropout layers and optimizers hold their rate, weight decay and
momentum in variables, so a traced model takes new values; those are no parameters and
no part of a checkpoint. The pool (`tuners.observers.model_pool`) reuses a model only for
the same structure and signature, keeps a bounded number, and drops a model whose run
failed.
"""

from __future__ import annotations

import h5py
import keras
import keras_tuner
import numpy as np
import pytest

import hypermodels
import tuners
from hypermodels import held
from tuners.observers import kept_models, model_pool

WINDOW, FEATURES = 8, 3


def small_model(dropout: keras.layers.Layer, optimizer: keras.optimizers.Optimizer
                ) -> keras.Model:
    """Features -> dense 4 -> `dropout` -> dense 1, compiled with `optimizer`."""
    inputs = keras.Input(shape=(FEATURES,), name="features")
    hidden = keras.layers.Dense(4, name="hidden")(inputs)
    outputs = keras.layers.Dense(1, name="output")(dropout(hidden))
    model = keras.Model(inputs, outputs, name="small")
    model.compile(optimizer=optimizer, loss="mse")
    kept_models.build_optimizer(model)
    return model


def test_the_dropout_rate_is_a_variable_but_not_a_parameter():
    variable_model = small_model(held.VariableDropout(0.2, name="dropout"),
                                 keras.optimizers.Adam())
    keras_model = small_model(keras.layers.Dropout(0.2, name="dropout"), keras.optimizers.Adam())
    layer = variable_model.get_layer("dropout")
    assert isinstance(layer, keras.layers.Dropout)
    assert variable_model.count_params() == keras_model.count_params() == 3 * 4 + 4 + 4 + 1
    assert layer.weights == []
    assert [variable.name for variable in layer.non_trainable_variables] == [
        "rate", "seed_generator_state"]
    layer.rate = 0.75
    assert float(layer.rate_variable.numpy()) == pytest.approx(0.75)
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\), got 1"):
        layer.rate = 1


def test_dropout_drops_at_the_variables_rate_and_scales_the_rest():
    layer = held.VariableDropout(0.0, seed=4)
    inputs = np.ones((200, 50), dtype="float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(inputs, training=True)),
                                  inputs)
    layer.rate = 0.5
    outputs = keras.ops.convert_to_numpy(layer(inputs, training=True))
    assert set(np.unique(outputs)) == {0.0, 2.0}
    assert np.mean(outputs == 0) == pytest.approx(0.5, abs=0.02)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(inputs, training=False)),
                                  inputs)


def test_checkpoints_leave_out_the_held_values(tmp_path):
    path = tmp_path / "checkpoint.weights.h5"
    saved = small_model(held.VariableDropout(0.1, name="dropout"),
                        held.VariableSGD(learning_rate=0.1, momentum=0.2, weight_decay=1e-3))
    saved.save_weights(path)
    with h5py.File(path) as stored:
        # What Keras's own Dropout and SGD store: no dropout variable; the iterations, the
        # learning rate and a momentum slot for each of the 4 weights.
        assert list(stored["layers/variable_dropout/vars"]) == []
        assert len(stored["optimizer/vars"]) == 2 + 4
    loaded = small_model(held.VariableDropout(0.4, name="dropout"),
                         held.VariableSGD(learning_rate=0.3, momentum=0.6, weight_decay=1e-2))
    loaded.load_weights(path)
    for left, right in zip(saved.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(left.numpy(), right.numpy())
    # The loaded model keeps the values it was built with (a population-based-training
    # member continuing another's checkpoint keeps its perturbed ones).
    assert loaded.get_layer("dropout").rate == pytest.approx(0.4)
    assert float(loaded.optimizer.momentum.numpy()) == pytest.approx(0.6)
    assert float(loaded.optimizer.weight_decay.numpy()) == pytest.approx(1e-2)


def test_a_saved_model_records_the_current_values(tmp_path):
    model = small_model(held.VariableDropout(0.1, name="dropout"),
                        held.VariableAdam(learning_rate=0.01, weight_decay=1e-4))
    model.get_layer("dropout").rate = 0.3
    model.optimizer.weight_decay.assign(1e-3)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    assert type(loaded.get_layer("dropout")) is held.VariableDropout
    assert loaded.get_layer("dropout").rate == pytest.approx(0.3)
    assert type(loaded.optimizer) is held.VariableAdam
    assert float(loaded.optimizer.weight_decay.numpy()) == pytest.approx(1e-3)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="bit for bit on TensorFlow")
@pytest.mark.parametrize("momentum", [0.0, 0.7])
def test_variable_sgd_trains_as_keras_sgd(momentum):
    features = np.random.default_rng(0).normal(size=(64, FEATURES)).astype("float32")
    targets = features[:, :1] * 2.0

    def trained(optimizer_class: type) -> list[np.ndarray]:
        keras.utils.set_random_seed(5)
        model = small_model(keras.layers.Dropout(0.0), optimizer_class(
            learning_rate=0.05, momentum=momentum, weight_decay=1e-3))
        model.fit(features, targets, batch_size=16, epochs=3, shuffle=False, verbose=0)
        return [weight.numpy() for weight in model.weights]

    for left, right in zip(trained(keras.optimizers.SGD), trained(held.VariableSGD),
                           strict=True):
        np.testing.assert_array_equal(left, right)


def lstm_model(hypermodel: hypermodels.LSTMHyperModel, **values) -> keras.Model:
    hp = keras_tuner.HyperParameters()
    hypermodel.build(hp)
    hp.values.update(values)
    model = hypermodel.build(hp)
    kept_models.build_optimizer(model)
    return model


def test_the_pool_reuses_only_a_free_model_of_the_same_signature():
    hypermodel = hypermodels.LSTMHyperModel(input_shape=(WINDOW, FEATURES), units=[4, 8],
                                            num_layers=[1, 2])
    pool = model_pool.ModelPool(limit=2)
    first = pool.take((1, 4), lstm_model(hypermodel, num_layers=1, units=4, dropout=0.2))
    # In use until released: a second run of the structure gets its own model.
    busy = pool.take((1, 4), lstm_model(hypermodel, num_layers=1, units=4, dropout=0.3))
    assert busy is not first
    pool.release()
    reused = pool.take((1, 4), lstm_model(hypermodel, num_layers=1, units=4, dropout=0.5,
                                          learning_rate=0.05))
    assert reused is first
    assert reused.get_layer("dropout_0").rate == pytest.approx(0.5)
    assert float(reused.optimizer.learning_rate.numpy()) == pytest.approx(0.05)
    # A key that names the wrong structure: the signatures differ, so no reuse.
    pool.release()
    other = pool.take((1, 4), lstm_model(hypermodel, num_layers=1, units=8))
    assert other is not first
    assert (pool.traced, pool.reused) == (3, 1)
    pool.release()
    for units in (4, 8):
        pool.take((2, units), lstm_model(hypermodel, num_layers=2, units=units))
        pool.release()
    # At most `limit` models: the least recently used went first.
    assert len(pool) == 2
    assert pool.take((1, 4), lstm_model(hypermodel, num_layers=1, units=8)) is not other
    pool.release(reusable=False)
    assert len(pool) == 1


def test_a_plain_keras_dropout_is_not_reused_across_rates():
    pool = model_pool.ModelPool()
    first = pool.take("same", small_model(keras.layers.Dropout(0.2, name="dropout"),
                                          keras.optimizers.Adam()))
    pool.release()
    second = pool.take("same", small_model(keras.layers.Dropout(0.4, name="dropout"),
                                           keras.optimizers.Adam()))
    assert second is not first
    pool.release()
    third = pool.take("same", small_model(keras.layers.Dropout(0.4, name="dropout"),
                                          keras.optimizers.Adam(learning_rate=0.1)))
    assert third is second


def test_a_hypermodel_without_a_structure_is_built_anew(tmp_path):
    class Plain(keras_tuner.HyperModel):
        def build(self, hp):
            return small_model(keras.layers.Dropout(0.1), keras.optimizers.Adam())

    class Unhashable(Plain):
        def structure(self, hp):
            return [1, 2]

    tuner = tuners.build_tuner("random", Plain(), directory=tmp_path / "plain", max_trials=1)
    tuner.recording = object()
    assert tuner.pool_key(keras_tuner.HyperParameters()) is None
    lstm = hypermodels.LSTMHyperModel(input_shape=(WINDOW, FEATURES))
    assert lstm.structure(keras_tuner.HyperParameters()) == (None, 1, 16)
    with pytest.raises(TypeError, match=r"Unhashable.structure\(hp\) returned \[1, 2\]"):
        model_pool.structure_key(Unhashable(), keras_tuner.HyperParameters())
