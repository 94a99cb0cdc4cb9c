"""Models that forecast `horizon` steps at once: the built-in ones, and a user's class.

The parameter counts at horizon 1 are those the models had before horizons existed, so a
one-step model is unchanged; each extra step adds one output unit, its weights from the
last hidden layer and its bias.
"""

from __future__ import annotations

import pathlib
import types

import keras
import keras_tuner
import numpy as np
import pytest

import hypermodels
from hypermodels import registry
from pipelines.config import load_config
from pipelines.errors import ConfigError
from pipelines.run import build

USER_MODELS = pathlib.Path(__file__).resolve().parent / "models" / "user_models.py"
WINDOW, FEATURES = 8, 3
# Default hyperparameters: one LSTM layer of 16 units (4 * (16 * (3 + 16) + 16) = 1280
# weights), or one dense layer of 16 units on 4 features (4 * 16 + 16 = 80 weights); then
# `horizon` outputs of 16 weights and a bias each.
LSTM_PARAMETERS = {1: 1297, 4: 1348}
DENSE_PARAMETERS = {1: 97, 4: 148}


def built(hypermodel: keras_tuner.HyperModel) -> keras.Model:
    """`hypermodel` built with every hyperparameter at its default."""
    return hypermodel.build(keras_tuner.HyperParameters())


@pytest.mark.parametrize("horizon", [1, 4])
def test_the_lstm_has_one_output_per_step(horizon):
    model = built(hypermodels.LSTMHyperModel(input_shape=(WINDOW, FEATURES), horizon=horizon))

    assert model.output_shape == (None, horizon)
    assert model.count_params() == LSTM_PARAMETERS[horizon]
    assert [layer.name for layer in model.layers] == ["window", "lstm_0", "dropout_0",
                                                      "forecast"]
    assert model.get_layer("forecast").units == horizon


@pytest.mark.parametrize("horizon", [1, 4])
def test_the_dense_regression_has_one_output_per_step(horizon):
    model = built(hypermodels.DenseHyperModel(input_shape=(4,), horizon=horizon))

    assert model.output_shape == (None, horizon)
    assert model.count_params() == DENSE_PARAMETERS[horizon]
    assert [layer.name for layer in model.layers] == ["features", "dense_0", "dropout_0",
                                                      "prediction"]


def test_the_default_horizon_builds_the_one_step_models():
    lstm = built(hypermodels.LSTMHyperModel(input_shape=(WINDOW, FEATURES)))
    dense = built(hypermodels.DenseHyperModel(input_shape=(4,)))

    assert (lstm.output_shape, lstm.count_params()) == ((None, 1), LSTM_PARAMETERS[1])
    assert (dense.output_shape, dense.count_params()) == ((None, 1), DENSE_PARAMETERS[1])


def test_the_lstm_trains_on_three_steps_and_scores_every_step():
    rng = np.random.default_rng(3)
    windows = rng.normal(size=(64, 5, 2)).astype("float32")
    targets = rng.normal(size=(64, 3)).astype("float32")
    hypermodel = hypermodels.LSTMHyperModel(input_shape=(5, 2), units=[4], batch_size=[16],
                                            horizon=3)
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)

    history = hypermodel.fit(hp, model, windows, targets, epochs=1, verbose=0)
    scores = model.evaluate(windows, targets, verbose=0, return_dict=True)
    forecasts = model.predict(windows, verbose=0)

    assert set(history.history) == {"loss", "mae", "rmse"}
    assert len(history.history["loss"]) == 1
    assert np.isfinite(history.history["loss"][0])
    assert forecasts.shape == (64, 3)
    # Each metric is taken over all 64 * 3 errors at once.
    errors = forecasts - targets
    assert scores["mae"] == pytest.approx(float(np.mean(np.abs(errors))), rel=1e-4)
    assert scores["rmse"] == pytest.approx(float(np.sqrt(np.mean(errors ** 2))), rel=1e-4)


@pytest.mark.parametrize(("horizon", "message"), [
    (0, "horizon must be a whole number >= 1, got 0; for example horizon=4"),
    (2.5, "horizon must be a whole number >= 1, got 2.5; for example horizon=4"),
    (True, "horizon must be a whole number >= 1, got True; for example horizon=4"),
])
@pytest.mark.parametrize("model", ["lstm", "dense"])
def test_a_bad_horizon_is_one_line(model, horizon, message):
    with pytest.raises(hypermodels.SearchSpaceError) as refused:
        if model == "lstm":
            hypermodels.LSTMHyperModel(input_shape=(WINDOW, FEATURES), horizon=horizon)
        else:
            hypermodels.DenseHyperModel(input_shape=(4,), horizon=horizon)

    assert str(refused.value) == message


def test_a_classifier_forecasts_one_label_only():
    classifier = hypermodels.DenseHyperModel(input_shape=(4,), task="classification",
                                             n_classes=3, horizon=1)
    with pytest.raises(ValueError) as refused:
        hypermodels.DenseHyperModel(input_shape=(4,), task="classification", n_classes=3,
                                    horizon=2)

    assert built(classifier).output_shape == (None, 3)
    assert str(refused.value) == ("horizon=2 is for regression; a classifier predicts one "
                                  "label, so pass horizon=1 or task='regression'")


@pytest.mark.parametrize(("name", "shape", "extra"), [
    ("lstm", (5, 2), {}),
    ("dense", (4,), {"task": "regression", "n_classes": None}),
])
def test_the_registry_gives_the_built_in_models_the_horizon(name, shape, extra):
    spec = registry.MODELS[name]

    default = spec.build(shape, **extra)
    four = spec.build(shape, horizon=4, **extra)

    assert (default.horizon, four.horizon) == (1, 4)
    assert built(four).output_shape == (None, 4)


@pytest.mark.parametrize(("class_name", "given"), [
    ("TinyGRUModel", {1: 1, 2: 2}),
    ("KeywordsGRUModel", {1: 1, 2: 2}),
    ("OneStepGRUModel", {1: 1}),
])
def test_a_user_class_gets_the_horizon_its_init_takes(class_name, given):
    spec = registry.resolve(f"{USER_MODELS}:{class_name}")

    for horizon, outputs in given.items():
        hypermodel = spec.build((5, 2), horizon=horizon)
        assert built(hypermodel).output_shape == (None, outputs)


def test_a_user_class_without_horizon_is_refused_beyond_one_step():
    spec = registry.resolve(f"{USER_MODELS}:OneStepGRUModel")

    with pytest.raises(registry.HorizonError) as refused:
        spec.build((5, 2), horizon=2)

    assert isinstance(refused.value, ValueError)
    assert str(refused.value) == ("OneStepGRUModel: its __init__ must take horizon= to "
                                  "forecast 2 steps; add a horizon argument")


def test_a_kwargs_class_is_built_as_before_for_one_step():
    class Forwarding(keras_tuner.HyperModel):
        """Passes its keyword arguments on to keras_tuner.HyperModel, which has no horizon."""

        def __init__(self, input_shape, **kwargs):
            super().__init__(**kwargs)
            self.input_shape = input_shape

    hypermodel = registry.ModelSpec(Forwarding).build((5, 2), horizon=1)

    assert (hypermodel.input_shape, hypermodel.name) == ((5, 2), None)
    assert registry.horizon_keyword(Forwarding) == "**kwargs"
    assert registry.horizon_keyword(hypermodels.LSTMHyperModel) == "horizon"
    assert registry.horizon_keyword(keras_tuner.HyperModel) == ""


def test_make_hypermodel_passes_the_prepared_horizon():
    config = load_config(overrides={"model": {"search_space": {"units": [4]}}})
    with_horizon = types.SimpleNamespace(input_shape=(5, 2), task="regression",
                                         n_classes=None, horizon=3)
    without = types.SimpleNamespace(input_shape=(5, 2), task="regression", n_classes=None)

    assert build.make_hypermodel(config, with_horizon).horizon == 3
    assert build.make_hypermodel(config, without).horizon == 1


def test_make_hypermodel_says_in_one_line_that_a_class_needs_horizon():
    reference = f"{USER_MODELS}:OneStepGRUModel"
    config = load_config(overrides={"model": {"name": reference}})
    prepared = types.SimpleNamespace(input_shape=(5, 2), task="regression", n_classes=None,
                                     horizon=4)

    with pytest.raises(ConfigError) as refused:
        build.make_hypermodel(config, prepared)
    one_step = build.make_hypermodel(config, types.SimpleNamespace(
        input_shape=(5, 2), task="regression", n_classes=None, horizon=1))

    assert str(refused.value) == ("OneStepGRUModel: its __init__ must take horizon= to "
                                  "forecast 4 steps; add a horizon argument")
    assert built(one_step).output_shape == (None, 1)
