"""A stacked-LSTM hypermodel for forecasting the next steps of a series from a window of it."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import keras
import keras_tuner

from hypermodels import base, held

DEFAULT_LEARNING_RATE = (1e-6, 1e-1)
DEFAULT_UNITS = (16, 32, 64, 128, 256)
DEFAULT_NUM_LAYERS = (1, 5)
DEFAULT_DROPOUT = (0.1, 0.6)
DEFAULT_BATCH_SIZE = (16, 32, 64, 128, 256)


class LSTMHyperModel(base.BatchSizeHyperModel):
    """Stacked LSTM layers with dropout, then one linear output per step, trained on MSE.

    The search space follows the reference article: one `units` shared by every LSTM
    layer, a `num_layers` stack, one `dropout` rate after each layer, a log-uniform
    `learning_rate` for Adam, and the `batch_size`. Sharing `units` keeps the space small
    and free of per-layer hyperparameters that would be inactive noise for short stacks.

    Every LSTM layer keeps the arguments that let Keras use the fused cuDNN kernel on a
    GPU (tanh, sigmoid, no recurrent dropout, no unrolling, with bias), so dropout is a
    separate layer after each LSTM layer: a `keras.layers.Dropout` whose rate is a variable
    (`hypermodels.held.VariableDropout`), so that one traced model serves every
    configuration of the same `structure(hp)`.

    When `lookbacks` is given, the model also tunes `lookback`: how many of the window's
    last time steps it reads. The data windows are built once at the longest length, and
    a `keras.layers.Cropping1D` layer drops the oldest `window - lookback` steps.

    The model forecasts the next `horizon` steps directly: its output layer has one linear
    unit per step, all trained at once on their mean squared error, rather than feeding
    one-step forecasts back in, which would compound their errors. With `horizon=1` it is
    the one-step model of the reference article.

    Hyperparameters, in the order they are declared: `lookback` (only with `lookbacks`),
    `num_layers`, `units`, `dropout`, `learning_rate`, `batch_size`. A range whose two
    ends are equal is declared as a fixed value.

    ```python
    hypermodel = LSTMHyperModel(input_shape=(30, 5), units=[32, 64], num_layers=[1, 2],
                                lookbacks=[10, 20, 30])
    tuner = keras_tuner.RandomSearch(hypermodel, objective="val_loss", max_trials=5)
    tuner.search(**hypermodels.fit_data(hypermodel, prepared), epochs=10)
    ```

    Args:
        input_shape: `(window, features)`, the shape of one input window.
        learning_rate: `(min, max)` of Adam's learning rate, sampled on a log scale.
        learning_rate_step: Optional multiplier between learning rates (e.g. 10), which
            makes the range finite for grid search.
        units: The numbers of LSTM units to try, shared by all layers.
        num_layers: `(min, max)` of stacked LSTM layers.
        dropout: `(min, max)` of the dropout rate after each LSTM layer.
        dropout_step: Optional distance between dropout rates (e.g. 0.1), which makes the
            range finite for grid search.
        batch_size: The batch sizes to try.
        lookbacks: Optional window lengths to try, each at most `input_shape[0]`. When
            None, the model reads the whole window and `lookback` is not tuned.
        horizon: How many steps ahead it forecasts, the number of outputs; the data
            pipeline sets it, it is not tuned.
        name: Optional name of the hypermodel.
        tunable: Whether the hyperparameters it declares are tuned.

    Raises:
        SearchSpaceError: For a range out of order or out of bounds, an empty list of
            choices, a lookback longer than the window, or a horizon below 1.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        *,
        learning_rate: Sequence[float] = DEFAULT_LEARNING_RATE,
        learning_rate_step: float | None = None,
        units: Sequence[int] = DEFAULT_UNITS,
        num_layers: Sequence[int] = DEFAULT_NUM_LAYERS,
        dropout: Sequence[float] = DEFAULT_DROPOUT,
        dropout_step: float | None = None,
        batch_size: Sequence[int] = DEFAULT_BATCH_SIZE,
        lookbacks: Sequence[int] | None = None,
        horizon: int = 1,
        name: str | None = None,
        tunable: bool = True,
    ) -> None:
        super().__init__(batch_size, name=name, tunable=tunable)
        self.input_shape = _check_window_shape(input_shape)
        self.horizon = base.check_horizon(horizon)
        self.learning_rate = base.check_positive_range("learning_rate", learning_rate)
        self.learning_rate_step = base.check_step(
            "learning_rate_step", learning_rate_step, log=True
        )
        self.units = base.check_choices("units", units, positive_integers=True)
        self.num_layers = base.check_range("num_layers", num_layers, lowest=1, integer=True)
        self.dropout = base.check_range(
            "dropout", dropout, lowest=0.0, highest=1.0, highest_inclusive=False
        )
        self.dropout_step = base.check_step("dropout_step", dropout_step, log=False)
        self.lookbacks = None
        if lookbacks is not None:
            self.lookbacks = base.check_choices("lookbacks", lookbacks, positive_integers=True)
            window = self.input_shape[0]
            too_long = [lookback for lookback in self.lookbacks if lookback > window]
            if too_long:
                raise base.SearchSpaceError(
                    f"lookbacks {too_long} exceed the window of {window} steps; build windows "
                    f"of at least {max(too_long)} steps or drop those lookbacks"
                )

    def structure(self, hp: keras_tuner.HyperParameters) -> tuple[Any, ...]:
        """The values that shape the model: `lookback`, `num_layers` and `units`.

        The dropout rate (held by `hypermodels.held.VariableDropout`), the learning rate
        (a variable of Adam) and the batch size (the data's, not the model's) change no
        shape, so a model traced for one configuration trains another of the same
        structure without a new trace (`tuners.observers.model_pool`).
        """
        return self._shape(hp)

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        """Builds and compiles one stacked-LSTM model for the trial's hyperparameters.

        Args:
            hp: The trial's hyperparameters; a fresh `keras_tuner.HyperParameters()`
                gives every default.

        Returns:
            A compiled `keras.Model` mapping `[batch, window, features]` to
            `[batch, horizon]`.
        """
        window, _ = self.input_shape
        inputs = keras.Input(shape=self.input_shape, name="window")
        features = inputs
        # ---- REPLACE WITH YOUR OWN SEARCH SPACE ----
        lookback, num_layers, units = self._shape(hp)
        if lookback is not None:
            # Cropping keeps the last `lookback` steps, the ones closest to the forecast.
            features = keras.layers.Cropping1D((window - lookback, 0), name="lookback_crop")(
                features
            )
        dropout_rate = base.float_hyperparameter(
            hp, "dropout", self.dropout, step=self.dropout_step
        )
        learning_rate = self.declare_learning_rate(hp)
        self.declare_batch_size(hp)
        for layer_index in range(num_layers):
            features = keras.layers.LSTM(
                units,
                activation="tanh",
                recurrent_activation="sigmoid",
                recurrent_dropout=0.0,
                unroll=False,
                use_bias=True,
                # Every layer but the last passes its whole sequence to the next one.
                return_sequences=layer_index < num_layers - 1,
                name=f"lstm_{layer_index}",
            )(features)
            # Keras's `Dropout` whose rate is a variable, so that a traced model takes
            # another configuration's rate without a new trace.
            features = held.VariableDropout(dropout_rate, name=f"dropout_{layer_index}")(
                features
            )
        outputs = keras.layers.Dense(self.horizon, name="forecast")(features)
        # ---- END REPLACE ----
        model = keras.Model(inputs, outputs, name="lstm_forecaster")
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
            loss=keras.losses.MeanSquaredError(),
            metrics=self.metrics(),
        )
        return model

    def _shape(self, hp: keras_tuner.HyperParameters) -> tuple[int | None, int, int]:
        """Declares (or reads) `lookback` (None when not tuned), `num_layers` and `units`."""
        lookback = None
        if self.lookbacks is not None:
            lookback = hp.Choice("lookback", self.lookbacks, default=max(self.lookbacks))
        num_layers = base.int_hyperparameter(hp, "num_layers", self.num_layers)
        units = hp.Choice("units", self.units)
        return lookback, num_layers, units

    def metrics(self) -> list[keras.metrics.Metric]:
        """The metrics every model reports besides its loss, known without building one.

        With a horizon above 1 each is taken over every step's error at once.
        """
        return [
            keras.metrics.MeanAbsoluteError(name="mae"),
            keras.metrics.RootMeanSquaredError(name="rmse"),
        ]


def _check_window_shape(input_shape: Sequence[int]) -> tuple[int, int]:
    if (
        isinstance(input_shape, (str, bytes))
        or not isinstance(input_shape, Sequence)
        or len(input_shape) != 2
        or any(isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1
               for size in input_shape)
    ):
        raise base.SearchSpaceError(
            f"input_shape must be (window, features) with whole numbers >= 1, got "
            f"{input_shape!r}; pass the pipeline's input_shape"
        )
    return int(input_shape[0]), int(input_shape[1])
