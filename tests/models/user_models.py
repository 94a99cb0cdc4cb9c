"""HyperModels that a user would write in their own file, outside the ktlab packages.

`tests/test_models.py` tunes them through `ktlab tune --model tests/models/user_models.py:CLASS`.
"""

from __future__ import annotations

import keras
import keras_tuner


class TinyGRUModel(keras_tuner.HyperModel):
    """One GRU layer whose width is tuned; reads windows of a series (the default kind).

    ktlab passes `horizon=` (`--horizon`, default 1), the number of steps to forecast at
    once, because `__init__` takes it; the output layer has one unit per step.
    """

    data_kind = "series"

    def __init__(self, input_shape: tuple[int, ...], units: tuple[int, ...] = (4, 8),
                 horizon: int = 1) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.units = list(units)
        self.horizon = horizon

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        inputs = keras.Input(shape=self.input_shape)
        features = keras.layers.GRU(hp.Choice("units", self.units))(inputs)
        model = keras.Model(inputs, keras.layers.Dense(self.horizon)(features))
        model.compile(optimizer=keras.optimizers.Adam(hp.Float("learning_rate", 1e-3, 1e-2,
                                                                sampling="log")),
                      loss="mse")
        return model


class KeywordsGRUModel(TinyGRUModel):
    """Takes its options, horizon among them, through `**kwargs`."""

    def __init__(self, input_shape: tuple[int, ...], **options: object) -> None:
        super().__init__(input_shape, **options)


class OneStepGRUModel(TinyGRUModel):
    """Written before horizons: `__init__` takes no horizon, so it forecasts one step only."""

    def __init__(self, input_shape: tuple[int, ...], units: tuple[int, ...] = (4, 8)) -> None:
        super().__init__(input_shape, units)


class TinyTableModel(keras_tuner.HyperModel):
    """A one-layer dense network for a table, regression or classification."""

    data_kind = "table"

    def __init__(self, input_shape: tuple[int, ...], task: str, n_classes: int | None) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.task = task
        self.n_classes = n_classes

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        inputs = keras.Input(shape=self.input_shape)
        features = keras.layers.Dense(hp.Choice("units", [4, 8]), activation="relu")(inputs)
        model = keras.Model(inputs, keras.layers.Dense(1)(features))
        model.compile(optimizer="adam", loss="mse")
        return model


class NeedsMoreArguments(keras_tuner.HyperModel):
    """A class whose constructor ktlab cannot call: it wants an argument ktlab does not give."""

    def __init__(self, input_shape: tuple[int, ...], vocabulary: list[str]) -> None:
        super().__init__()
        self.input_shape = input_shape

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        raise NotImplementedError


class NotAHyperModel:
    """A plain class: not a keras_tuner.HyperModel."""
