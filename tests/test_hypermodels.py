"""Tests of the LSTM and dense hypermodels: their search spaces, layers, heads and checks."""

from __future__ import annotations

import warnings

import keras
import keras_tuner
import numpy as np
import pytest
import tensorflow as tf

import hypermodels

WINDOW, FEATURES = 8, 3


def sine_windows(count: int = 48, batch_size: int = 16) -> tf.data.Dataset:
    """`count` windows of a three-channel sine, each forecasting the next first channel."""
    steps = np.arange(count + WINDOW, dtype="float32")
    series = np.stack([np.sin(steps * (channel + 1) / 7) for channel in range(FEATURES)], axis=1)
    inputs = np.stack([series[start:start + WINDOW] for start in range(count)])
    targets = series[WINDOW:WINDOW + count, :1]
    return tf.data.Dataset.from_tensor_slices((inputs, targets)).batch(batch_size).cache()


class BatchCounter(keras.callbacks.Callback):
    """Counts training batches."""

    def __init__(self) -> None:
        super().__init__()
        self.batches = 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.batches += 1


def build_with(hypermodel: keras_tuner.HyperModel, **values: object) -> tuple[
        keras.Model, keras_tuner.HyperParameters]:
    """Builds `hypermodel` with some hyperparameters set beforehand, the rest defaults."""
    hp = keras_tuner.HyperParameters()
    hp.values.update(values)
    return hypermodel.build(hp), hp


def test_lstm_builds_with_defaults() -> None:
    model, hp = build_with(hypermodels.LSTMHyperModel(input_shape=(WINDOW, FEATURES)))

    assert hp.values == {"num_layers": 1, "units": 16, "dropout": 0.1,
                         "learning_rate": 1e-3, "batch_size": 16}
    assert model.output_shape == (None, 1)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)
    assert isinstance(model.loss, keras.losses.MeanSquaredError)


def test_lstm_hyperparameter_names_follow_the_article() -> None:
    _, hp = build_with(hypermodels.LSTMHyperModel(input_shape=(WINDOW, FEATURES)))
    _, hp_with_lookback = build_with(
        hypermodels.LSTMHyperModel(input_shape=(WINDOW, FEATURES), lookbacks=[4, 8])
    )

    assert [parameter.name for parameter in hp.space] == [
        "num_layers", "units", "dropout", "learning_rate", "batch_size"]
    assert [parameter.name for parameter in hp_with_lookback.space] == [
        "lookback", "num_layers", "units", "dropout", "learning_rate", "batch_size"]
    ranges = {parameter.name: parameter for parameter in hp.space}
    assert (ranges["learning_rate"].min_value, ranges["learning_rate"].max_value) == (1e-6, 1e-1)
    assert ranges["learning_rate"].sampling == "log"
    assert list(ranges["units"].values) == [16, 32, 64, 128, 256]
    assert (ranges["num_layers"].min_value, ranges["num_layers"].max_value) == (1, 5)
    assert (ranges["dropout"].min_value, ranges["dropout"].max_value) == (0.1, 0.6)
    assert list(ranges["batch_size"].values) == [16, 32, 64, 128, 256]


def test_stacked_lstm_returns_sequences_on_all_but_the_last_layer() -> None:
    hypermodel = hypermodels.LSTMHyperModel(input_shape=(WINDOW, FEATURES), units=[8, 16])
    model, _ = build_with(hypermodel, num_layers=3, units=8)

    lstm_layers = [layer for layer in model.layers if isinstance(layer, keras.layers.LSTM)]
    assert [layer.output.shape for layer in lstm_layers] == [
        (None, WINDOW, 8), (None, WINDOW, 8), (None, 8)]
    assert [layer.return_sequences for layer in lstm_layers] == [True, True, False]
    dropout_layers = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert len(dropout_layers) == 3
    for layer in lstm_layers:
        # The arguments that keep the fused cuDNN kernel usable on a GPU.
        cell = layer.cell
        assert cell.activation is keras.activations.tanh
        assert cell.recurrent_activation is keras.activations.sigmoid
        assert cell.recurrent_dropout == 0
        assert cell.use_bias is True
        assert layer.unroll is False


def test_lookback_crops_the_window_to_its_last_steps() -> None:
    hypermodel = hypermodels.LSTMHyperModel(input_shape=(WINDOW, FEATURES), lookbacks=[3, 8])
    model, hp = build_with(hypermodel, lookback=3)
    full_model, full_hp = build_with(hypermodel)

    assert hp.values["lookback"] == 3
    assert model.input_shape == (None, WINDOW, FEATURES)
    assert model.get_layer("lstm_0").input.shape == (None, 3, FEATURES)
    assert full_hp.values["lookback"] == WINDOW
    assert full_model.get_layer("lstm_0").input.shape == (None, WINDOW, FEATURES)
    # The crop keeps the most recent steps: a window whose last 3 steps are zero
    # predicts the same as an all-zero window.
    zeros = np.zeros((1, WINDOW, FEATURES), dtype="float32")
    old_steps_only = zeros.copy()
    old_steps_only[0, :WINDOW - 3] = 5.0
    np.testing.assert_allclose(model.predict(zeros, verbose=0),
                               model.predict(old_steps_only, verbose=0), rtol=1e-6)


def test_fit_trains_with_the_tuned_batch_size() -> None:
    hypermodel = hypermodels.LSTMHyperModel(input_shape=(WINDOW, FEATURES), units=[4],
                                            batch_size=[8, 16])
    model, hp = build_with(hypermodel, batch_size=8)
    counter = BatchCounter()

    asked = []

    def batched_data(batch_size: int) -> dict[str, tf.data.Dataset]:
        asked.append(batch_size)
        return {"x": sine_windows(48, batch_size=batch_size),
                "validation_data": sine_windows(16, batch_size=batch_size)}

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = hypermodel.fit(hp, model, x=sine_windows(48, batch_size=16),
                                 validation_data=sine_windows(16, batch_size=16), epochs=2,
                                 callbacks=[counter], verbose=0, batched_data=batched_data)

    assert asked == [8]
    assert counter.batches == 2 * 48 // 8
    # The data built at the trial's batch size has a known length, so Keras does not
    # guess it.
    assert not [warning for warning in caught if "ran out of data" in str(warning.message)]
    assert set(history.history) == {"loss", "mae", "rmse", "val_loss", "val_mae", "val_rmse"}


def test_fit_passes_the_batch_size_for_arrays() -> None:
    hypermodel = hypermodels.DenseHyperModel(input_shape=(4,), units=[4], num_layers=[1, 1],
                                             batch_size=[12])
    model, hp = build_with(hypermodel)
    counter = BatchCounter()
    features = np.random.default_rng(0).normal(size=(48, 4)).astype("float32")

    hypermodel.fit(hp, model, features, features[:, :1], epochs=1, callbacks=[counter],
                   verbose=0)

    assert counter.batches == 48 // 12


def test_dense_declares_per_layer_units_active_only_for_existing_layers() -> None:
    hypermodel = hypermodels.DenseHyperModel(input_shape=(4,))
    model, hp = build_with(hypermodel, num_layers=3, units_0=64, units_1=32, units_2=16)

    assert [parameter.name for parameter in hp.space] == [
        "num_layers", "units_0", "units_1", "units_2", "units_3", "activation", "dropout",
        "optimizer", "momentum", "learning_rate", "weight_decay", "batch_size"]
    dense_layers = [layer for layer in model.layers if layer.name.startswith("dense_")]
    assert [layer.units for layer in dense_layers] == [64, 32, 16]
    assert "units_3" not in hp.values
    assert not hp.is_active("units_3")
    _, shallow_hp = build_with(hypermodel)
    assert sorted(name for name in shallow_hp.values if name.startswith("units_")) == ["units_0"]


def test_momentum_is_a_hyperparameter_only_with_sgd() -> None:
    hypermodel = hypermodels.DenseHyperModel(input_shape=(4,))
    sgd_model, sgd_hp = build_with(hypermodel, optimizer="sgd", momentum=0.5)
    adam_model, adam_hp = build_with(hypermodel, optimizer="adam")

    assert sgd_hp.values["momentum"] == 0.5
    assert isinstance(sgd_model.optimizer, keras.optimizers.SGD)
    assert float(sgd_model.optimizer.momentum) == pytest.approx(0.5)
    assert "momentum" not in adam_hp.values
    assert isinstance(adam_model.optimizer, keras.optimizers.Adam)
    _, adam_only_hp = build_with(hypermodels.DenseHyperModel(input_shape=(4,),
                                                             optimizers=["adam"]))
    assert "momentum" not in [parameter.name for parameter in adam_only_hp.space]


@pytest.mark.parametrize(
    ("task", "n_classes", "output_units", "activation", "loss_class", "metric_names"),
    [
        ("regression", None, 1, "linear", keras.losses.MeanSquaredError,
         {"loss", "mae", "rmse"}),
        ("classification", 2, 1, "sigmoid", keras.losses.BinaryCrossentropy,
         {"loss", "accuracy", "auc"}),
        ("classification", 4, 4, "softmax", keras.losses.SparseCategoricalCrossentropy,
         {"loss", "accuracy"}),
    ],
)
def test_dense_head_follows_the_task(task, n_classes, output_units, activation, loss_class,
                                     metric_names) -> None:
    hypermodel = hypermodels.DenseHyperModel(input_shape=(4,), task=task, n_classes=n_classes,
                                             units=[4])
    model, _ = build_with(hypermodel)
    features = np.random.default_rng(1).normal(size=(8, 4)).astype("float32")
    if n_classes is None:
        targets = features[:, :1]
    elif n_classes == 2:
        targets = (features[:, :1] > 0).astype("float32")
    else:
        targets = np.arange(8, dtype="int32") % n_classes

    scores = model.evaluate(features, targets, verbose=0, return_dict=True)

    assert model.layers[-1].units == output_units
    assert model.layers[-1].activation.__name__ == activation
    assert isinstance(model.loss, loss_class)
    assert set(scores) == metric_names


def test_grid_steps_make_the_continuous_ranges_finite() -> None:
    hypermodel = hypermodels.LSTMHyperModel(input_shape=(WINDOW, FEATURES),
                                            learning_rate=(1e-4, 1e-2), learning_rate_step=10,
                                            dropout=(0.1, 0.3), dropout_step=0.1)
    _, hp = build_with(hypermodel)

    ranges = {parameter.name: parameter for parameter in hp.space}
    assert ranges["learning_rate"].step == 10
    assert ranges["dropout"].step == pytest.approx(0.1)
    assert hp.values["learning_rate"] == pytest.approx(1e-4)


def test_a_range_of_one_value_is_fixed() -> None:
    _, hp = build_with(hypermodels.LSTMHyperModel(input_shape=(WINDOW, FEATURES),
                                                  num_layers=[2, 2], dropout=[0.2, 0.2]))

    ranges = {parameter.name: parameter for parameter in hp.space}
    assert isinstance(ranges["num_layers"], keras_tuner.engine.hyperparameters.Fixed)
    assert hp.values["num_layers"] == 2
    assert hp.values["dropout"] == 0.2


@pytest.mark.parametrize(
    ("model_class", "arguments", "message"),
    [
        ("lstm", {"learning_rate": (1e-1, 1e-6)}, r"learning_rate has min 0.1 > max 1e-06"),
        ("lstm", {"learning_rate": (0.0, 1e-1)}, r"log scale, so min must be > 0"),
        ("lstm", {"learning_rate": (1e-3,)}, r"learning_rate must be a pair \[min, max\]"),
        ("lstm", {"learning_rate_step": 1}, r"learning_rate_step .* must be > 1"),
        ("lstm", {"units": []}, r"units is empty"),
        ("lstm", {"units": [16, 16]}, r"units repeats a value"),
        ("lstm", {"num_layers": (0, 2)}, r"num_layers min must be >= 1"),
        ("lstm", {"num_layers": (1.5, 2)}, r"num_layers must hold whole numbers"),
        ("lstm", {"dropout": (0.1, 1.0)}, r"dropout max must be < 1.0"),
        ("lstm", {"batch_size": [0, 32]}, r"batch_size must hold whole numbers >= 1"),
        ("lstm", {"lookbacks": [4, 9]}, r"lookbacks \[9\] exceed the window of 8 steps"),
        ("lstm", {"input_shape": (8,)}, r"input_shape must be \(window, features\)"),
        ("dense", {"task": "ranking"}, r"unknown task 'ranking'"),
        ("dense", {"task": "classification"}, r"classification needs n_classes >= 2"),
        ("dense", {"task": "regression", "n_classes": 3}, r"n_classes=3 is for classification"),
        ("dense", {"optimizers": ["rmsprop"]}, r"unknown optimizers \['rmsprop'\]"),
        ("dense", {"activations": []}, r"activations is empty"),
        ("dense", {"momentum": (0.5, 0.1)}, r"momentum has min 0.5 > max 0.1"),
    ],
)
def test_bad_search_space_arguments_are_refused(model_class, arguments, message) -> None:
    if model_class == "lstm":
        arguments = {"input_shape": (WINDOW, FEATURES), **arguments}
        model_class = hypermodels.LSTMHyperModel
    else:
        arguments = {"input_shape": (4,), **arguments}
        model_class = hypermodels.DenseHyperModel

    with pytest.raises(hypermodels.SearchSpaceError, match=message) as raised:
        model_class(**arguments)

    assert isinstance(raised.value, ValueError)
    assert "\n" not in str(raised.value)
