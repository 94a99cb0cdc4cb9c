"""A fully connected hypermodel for tabular regression and classification."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import keras
import keras_tuner

from hypermodels import base, held

TASKS = ("regression", "classification")
ACTIVATIONS = ("relu", "gelu", "swish")
OPTIMIZERS = ("adam", "sgd")
DEFAULT_UNITS = (16, 32, 64, 128, 256)
DEFAULT_NUM_LAYERS = (1, 4)
DEFAULT_DROPOUT = (0.0, 0.5)
DEFAULT_LEARNING_RATE = (1e-4, 1e-1)
DEFAULT_WEIGHT_DECAY = (1e-6, 1e-2)
DEFAULT_MOMENTUM = (0.0, 0.95)
DEFAULT_BATCH_SIZE = (16, 32, 64, 128, 256)


class DenseHyperModel(base.BatchSizeHyperModel):
    """A stack of dense layers with a regression or classification head.

    Each hidden layer has its own width, `units_0`, `units_1`, ..., because tabular
    networks often narrow with depth. `units_{i}` is declared for every possible layer
    but inside `hp.conditional_scope("num_layers", ...)`, so it is active only when the
    trial has more than `i` layers: inactive widths are left out of the trial's values and
    do not add noise to Bayesian optimization. `momentum` is likewise active only when
    `optimizer` is `"sgd"`.

    The head follows the task: `horizon` linear units (one, unless it forecasts several
    steps of a series directly) on mean squared error (metrics `mae` and `rmse`, over
    every output) for regression; one sigmoid unit on binary cross-entropy (metrics `accuracy`
    and `auc`) for two classes, with targets of 0 and 1; `n_classes` softmax units on
    sparse categorical cross-entropy (metric `accuracy`) for more, with integer targets.

    Hyperparameters, in the order they are declared: `num_layers`, `units_0` ..
    `units_{max-1}`, `activation`, `dropout`, `optimizer`, `momentum` (sgd only),
    `learning_rate`, `weight_decay`, `batch_size`.

    ```python
    hypermodel = DenseHyperModel(input_shape=(12,), task="classification", n_classes=3,
                                 num_layers=[1, 2], optimizers=["adam"])
    tuner = keras_tuner.BayesianOptimization(hypermodel, objective="val_accuracy",
                                             max_trials=10)
    tuner.search(**hypermodels.fit_data(hypermodel, prepared), epochs=20)
    ```

    Args:
        input_shape: The shape of one input row, usually `(features,)`.
        task: `"regression"` or `"classification"`.
        n_classes: The number of classes (at least 2) for classification; None for
            regression.
        units: The layer widths to try, for each layer.
        num_layers: `(min, max)` of hidden layers.
        activations: The hidden activations to try.
        dropout: `(min, max)` of the dropout rate after each hidden layer.
        dropout_step: Optional distance between dropout rates, for grid search.
        optimizers: The optimizers to try, from `"adam"` and `"sgd"`.
        momentum: `(min, max)` of SGD's momentum.
        momentum_step: Optional distance between momentums, for grid search.
        learning_rate: `(min, max)` of the learning rate, sampled on a log scale.
        learning_rate_step: Optional multiplier between learning rates, for grid search.
        weight_decay: `(min, max)` of the decoupled weight decay, on a log scale.
        weight_decay_step: Optional multiplier between weight decays, for grid search.
        batch_size: The batch sizes to try.
        horizon: The number of regression outputs, one per step ahead; the data pipeline
            sets it, it is not tuned. Classification predicts one label, so it must be 1.
        name: Optional name of the hypermodel.
        tunable: Whether the hyperparameters it declares are tuned.

    Raises:
        SearchSpaceError: For an unknown task, activation or optimizer, a missing or
            wrong `n_classes`, a range out of order, an empty list of choices, or a
            horizon below 1 (or above 1 for classification).
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        task: str = "regression",
        n_classes: int | None = None,
        *,
        units: Sequence[int] = DEFAULT_UNITS,
        num_layers: Sequence[int] = DEFAULT_NUM_LAYERS,
        activations: Sequence[str] = ACTIVATIONS,
        dropout: Sequence[float] = DEFAULT_DROPOUT,
        dropout_step: float | None = None,
        optimizers: Sequence[str] = OPTIMIZERS,
        momentum: Sequence[float] = DEFAULT_MOMENTUM,
        momentum_step: float | None = None,
        learning_rate: Sequence[float] = DEFAULT_LEARNING_RATE,
        learning_rate_step: float | None = None,
        weight_decay: Sequence[float] = DEFAULT_WEIGHT_DECAY,
        weight_decay_step: float | None = None,
        batch_size: Sequence[int] = DEFAULT_BATCH_SIZE,
        horizon: int = 1,
        name: str | None = None,
        tunable: bool = True,
    ) -> None:
        super().__init__(batch_size, name=name, tunable=tunable)
        self.input_shape = _check_input_shape(input_shape)
        if task not in TASKS:
            raise base.SearchSpaceError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
        self.task = task
        self.n_classes = _check_n_classes(task, n_classes)
        self.horizon = base.check_horizon(horizon)
        if task == "classification" and self.horizon > 1:
            raise base.SearchSpaceError(
                f"horizon={self.horizon} is for regression; a classifier predicts one label, "
                f"so pass horizon=1 or task='regression'"
            )
        self.units = base.check_choices("units", units, positive_integers=True)
        self.num_layers = base.check_range("num_layers", num_layers, lowest=1, integer=True)
        self.activations = _check_names("activations", activations, ACTIVATIONS)
        self.dropout = base.check_range(
            "dropout", dropout, lowest=0.0, highest=1.0, highest_inclusive=False
        )
        self.dropout_step = base.check_step("dropout_step", dropout_step, log=False)
        self.optimizers = _check_names("optimizers", optimizers, OPTIMIZERS)
        self.momentum = base.check_range(
            "momentum", momentum, lowest=0.0, highest=1.0, highest_inclusive=False
        )
        self.momentum_step = base.check_step("momentum_step", momentum_step, log=False)
        self.learning_rate = base.check_positive_range("learning_rate", learning_rate)
        self.learning_rate_step = base.check_step(
            "learning_rate_step", learning_rate_step, log=True
        )
        self.weight_decay = base.check_positive_range("weight_decay", weight_decay)
        self.weight_decay_step = base.check_step(
            "weight_decay_step", weight_decay_step, log=True
        )

    def structure(self, hp: keras_tuner.HyperParameters) -> tuple[Any, ...]:
        """The values that shape the model: `num_layers`, the active `units_{i}`,
        `activation` and `optimizer`.

        The dropout rate (held by `hypermodels.held.VariableDropout`), the learning rate,
        weight decay and momentum (variables of `hypermodels.held.VariableAdam` and
        `VariableSGD`) and the batch size (the data's) change no shape, so a model traced
        for one configuration trains another of the same structure without a new trace
        (`tuners.observers.model_pool`).
        """
        num_layers, layer_units, activation = self._shape(hp)
        return num_layers, tuple(layer_units[:num_layers]), activation, hp.Choice(
            "optimizer", self.optimizers)

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        """Builds and compiles one dense model for the trial's hyperparameters.

        Args:
            hp: The trial's hyperparameters; a fresh `keras_tuner.HyperParameters()`
                gives every default.

        Returns:
            A compiled `keras.Model`.
        """
        inputs = keras.Input(shape=self.input_shape, name="features")
        features = inputs
        if len(self.input_shape) > 1:
            features = keras.layers.Flatten(name="flatten")(features)
        # ---- REPLACE WITH YOUR OWN SEARCH SPACE ----
        num_layers, layer_units, activation = self._shape(hp)
        dropout_rate = base.float_hyperparameter(
            hp, "dropout", self.dropout, step=self.dropout_step
        )
        optimizer_name = hp.Choice("optimizer", self.optimizers)
        momentum = None
        if "sgd" in self.optimizers:
            with hp.conditional_scope("optimizer", ["sgd"]):
                momentum = base.float_hyperparameter(
                    hp, "momentum", self.momentum, step=self.momentum_step
                )
        learning_rate = self.declare_learning_rate(hp)
        weight_decay = base.float_hyperparameter(
            hp, "weight_decay", self.weight_decay, step=self.weight_decay_step, log=True
        )
        self.declare_batch_size(hp)
        for layer_index in range(num_layers):
            features = keras.layers.Dense(
                layer_units[layer_index], activation=activation, name=f"dense_{layer_index}"
            )(features)
            # Keras's `Dropout` whose rate is a variable, so that a traced model takes
            # another configuration's rate without a new trace.
            features = held.VariableDropout(dropout_rate, name=f"dropout_{layer_index}")(
                features
            )
        # ---- END REPLACE ----
        outputs, loss, metrics = self._head(features)
        # Keras's SGD and Adam, with momentum and weight decay held in variables.
        if optimizer_name == "sgd":
            optimizer = held.VariableSGD(
                learning_rate=learning_rate, momentum=momentum, weight_decay=weight_decay
            )
        else:
            optimizer = held.VariableAdam(
                learning_rate=learning_rate, weight_decay=weight_decay
            )
        model = keras.Model(inputs, outputs, name=f"dense_{self.task}")
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
        return model

    def _shape(self, hp: keras_tuner.HyperParameters) -> tuple[int, list[int], str]:
        """Declares (or reads) `num_layers`, every `units_{i}` and `activation`.

        `units_{i}` is declared for every possible layer, active only in stacks of more
        than `i` layers; the returned list holds the active ones' values first.
        """
        num_layers = base.int_hyperparameter(hp, "num_layers", self.num_layers)
        minimum_layers, maximum_layers = self.num_layers
        layer_units = []
        for layer_index in range(maximum_layers):
            if layer_index < minimum_layers:
                layer_units.append(hp.Choice(f"units_{layer_index}", self.units))
                continue
            # Layer `layer_index` exists only in stacks of more than `layer_index` layers.
            deeper_stacks = list(range(layer_index + 1, maximum_layers + 1))
            with hp.conditional_scope("num_layers", deeper_stacks):
                layer_units.append(hp.Choice(f"units_{layer_index}", self.units))
        activation = hp.Choice("activation", self.activations)
        return num_layers, layer_units, activation

    def metrics(self) -> list[keras.metrics.Metric]:
        """The metrics every model reports besides its loss, known without building one."""
        if self.task == "regression":
            return [keras.metrics.MeanAbsoluteError(name="mae"),
                    keras.metrics.RootMeanSquaredError(name="rmse")]
        if self.n_classes == 2:
            return [keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")]
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def _head(self, features: keras.KerasTensor) -> tuple[keras.KerasTensor, keras.losses.Loss,
                                                           list[keras.metrics.Metric]]:
        if self.task == "regression":
            outputs = keras.layers.Dense(self.horizon, name="prediction")(features)
            return outputs, keras.losses.MeanSquaredError(), self.metrics()
        if self.n_classes == 2:
            outputs = keras.layers.Dense(1, activation="sigmoid", name="probability")(features)
            return outputs, keras.losses.BinaryCrossentropy(), self.metrics()
        outputs = keras.layers.Dense(self.n_classes, activation="softmax", name="probabilities")(
            features
        )
        return outputs, keras.losses.SparseCategoricalCrossentropy(), self.metrics()


def _check_input_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    if (
        isinstance(input_shape, (str, bytes))
        or not isinstance(input_shape, Sequence)
        or len(input_shape) == 0
        or any(isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1
               for size in input_shape)
    ):
        raise base.SearchSpaceError(
            f"input_shape must be a tuple of whole numbers >= 1 such as (12,), got "
            f"{input_shape!r}; pass the pipeline's input_shape"
        )
    return tuple(int(size) for size in input_shape)


def _check_n_classes(task: str, n_classes: int | None) -> int | None:
    if task == "regression":
        if n_classes is not None:
            raise base.SearchSpaceError(
                f"n_classes={n_classes} is for classification; pass task='classification' "
                f"or n_classes=None"
            )
        return None
    if isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral) or n_classes < 2:
        raise base.SearchSpaceError(
            f"classification needs n_classes >= 2, got {n_classes!r}; pass the pipeline's n_classes"
        )
    return int(n_classes)


def _check_names(name: str, values: Sequence[str], known: Sequence[str]) -> list[str]:
    values = base.check_choices(name, values)
    unknown = [value for value in values if value not in known]
    if unknown:
        raise base.SearchSpaceError(
            f"unknown {name} {unknown}; use some of {', '.join(known)}"
        )
    return values
