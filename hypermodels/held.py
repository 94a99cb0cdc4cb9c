"""Hyperparameters held in variables, so that a traced model can take new values.

A traced training step (a `tf.function` on TensorFlow, a `jax.jit` on JAX) bakes every
Python number it reads into its graph. Keras's `Dropout` reads its `rate` that way, and
its optimizers their `weight_decay` and `momentum`, so a model traced for one dropout rate
cannot train another without a new trace (about a second per model on a 2-core CPU, more
on JAX). The learning rate is already a variable of every Keras optimizer.

The layer and optimizers here hold those values in non-trainable variables that the
traced step reads, so that assigning a variable changes the value without a new trace.
`tuners.observers.model_pool` relies on it: it gives a new configuration of the same
structure (`structure(hp)` of a hypermodel) a model traced before, with the new
configuration's values assigned.

Each class names the constructor arguments it holds in `held_in_variables`; they are
absent from its checkpoints (`save_weights`), which store what Keras's own class stores,
so that loading a checkpoint never replaces the values the model was built with (a
population-based-training member that continues another's checkpoint with a perturbed
dropout rate keeps its own), and a `.keras` file records the current values in its config.

```python
layer = VariableDropout(0.2, name="dropout_0")
layer.rate = 0.4                 # the next traced step drops 40% of its inputs
optimizer = VariableAdam(learning_rate=1e-3, weight_decay=1e-4)
```
"""

from __future__ import annotations

from typing import Any

import keras

# The package under which the classes are registered, so that a saved `.keras` model
# loads wherever this module was imported (`keras.saving.load_model`).
PACKAGE = "ktlab"


@keras.saving.register_keras_serializable(package=PACKAGE)
class VariableDropout(keras.layers.Dropout):
    """Keras's `Dropout` whose rate is a variable: a new rate needs no new trace.

    It drops each input with probability `rate` while training and scales the rest by
    `1 / (1 - rate)`, as `Dropout` does; it draws its mask with `keras.random.uniform`
    from its own seed generator, because `keras.random.dropout` takes only a Python rate.
    It always has a seed generator (Keras's has none at a rate of 0), so that a model built
    at 0 can train at another rate. The rate is a hyperparameter, not a parameter, so it is
    left out of `weights` and `count_params()`, as `Dropout` has none.

    Args:
        rate: The fraction of inputs to drop, in [0, 1).
        seed: Optional seed of the dropout masks.
        **kwargs: Passed to `keras.layers.Dropout` (`name`, ...).
    """

    held_in_variables = ("rate",)

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
        if "noise_shape" in kwargs and kwargs["noise_shape"] is not None:
            raise ValueError("VariableDropout drops each input on its own; it takes no "
                             "noise_shape")
        kwargs.pop("noise_shape", None)
        super().__init__(rate, seed=seed, **kwargs)
        if not hasattr(self, "seed_generator"):
            self.seed_generator = keras.random.SeedGenerator(seed)
        self.rate_variable = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(float(rate)), trainable=False,
            name="rate")

    def build(self, input_shape: Any) -> None:
        # Its state is made in `__init__`. Defining `build` keeps Keras from marking the
        # layer built (and its state closed) inside `Dropout.__init__`, before that.
        del input_shape

    @property
    def rate(self) -> float:
        """The current rate; assigning it sets the variable the traced step reads."""
        variable = getattr(self, "rate_variable", None)
        return float(variable.numpy()) if variable is not None else self._initial_rate

    @rate.setter
    def rate(self, value: float) -> None:
        if not 0 <= value < 1:
            raise ValueError(f"rate must be in [0, 1), got {value}")
        variable = getattr(self, "rate_variable", None)
        if variable is None:
            # `Dropout.__init__` sets the rate before the variable exists.
            self._initial_rate = float(value)
        else:
            variable.assign(float(value))

    @property
    def weights(self) -> list[Any]:
        """The layer's weights: none, as for `Dropout` (the rate is not a parameter)."""
        return [weight for weight in super().weights if weight is not self.rate_variable]

    def call(self, inputs: Any, training: bool = False) -> Any:
        if not training:
            return inputs
        rate = keras.ops.cast(self.rate_variable, inputs.dtype)
        noise = keras.random.uniform(keras.ops.shape(inputs), dtype=inputs.dtype,
                                     seed=self.seed_generator)
        # Kept where the noise reaches the rate: at a rate of 0 every input is kept, and
        # divided by 1, unchanged.
        return keras.ops.where(noise >= rate, inputs / (1.0 - rate),
                               keras.ops.zeros_like(inputs))

    def save_own_variables(self, store: Any) -> None:
        """Stores nothing, as `Dropout` does: the rate belongs to the configuration."""

    def load_own_variables(self, store: Any) -> None:
        """Loads nothing, so a checkpoint never replaces the rate the model was built with."""

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("noise_shape", None)
        return config


class _HeldOptimizer:
    """Holds the optimizer's `held_in_variables` in non-trainable variables.

    A mixin of a Keras optimizer class: Keras's optimizer tracks a variable set as an
    attribute among its `variables`, which its traced step reads (on JAX, as part of the
    state it passes in), and its update reads the attribute as a number or a tensor alike.
    """

    held_in_variables: tuple[str, ...] = ()

    def _hold(self) -> None:
        for name in self.held_in_variables:
            value = getattr(self, name)
            if value is not None:
                # As Keras holds the learning rate (`BaseOptimizer.__init__`).
                setattr(self, name, keras.Variable(
                    float(value), name=name, dtype="float32", trainable=False,
                    aggregation="only_first_replica"))

    def _stored_variables(self) -> list[Any]:
        held = {id(getattr(self, name)) for name in self.held_in_variables}
        return [variable for variable in self.variables if id(variable) not in held]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        for name in self.held_in_variables:
            if isinstance(config.get(name), keras.Variable):
                config[name] = float(config[name].numpy())
        return config

    def save_own_variables(self, store: Any) -> None:
        """Stores the variables Keras's own class has, not the held values."""
        for index, variable in enumerate(self._stored_variables()):
            store[str(index)] = variable.numpy()

    def load_own_variables(self, store: Any) -> None:
        """Loads what `save_own_variables` stored, keeping the held values; as Keras's
        optimizer does, it loads nothing into an optimizer of another size (not built)."""
        stored = self._stored_variables()
        if len(store.keys()) != len(stored):
            return
        for index, variable in enumerate(stored):
            variable.assign(store[str(index)])


@keras.saving.register_keras_serializable(package=PACKAGE)
class VariableAdam(_HeldOptimizer, keras.optimizers.Adam):
    """Keras's `Adam` whose `weight_decay` is a variable: a new value needs no new trace."""

    held_in_variables = ("weight_decay",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hold()


@keras.saving.register_keras_serializable(package=PACKAGE)
class VariableSGD(_HeldOptimizer, keras.optimizers.SGD):
    """Keras's `SGD` whose `momentum` and `weight_decay` are variables.

    Keras's SGD keeps momentum slots only when `momentum` is not 0, and chooses its update
    in Python by that test. This one always keeps them and always takes the momentum
    update, so that one traced step serves every momentum. At a momentum of 0 that update
    is plain SGD's arithmetic (`m = 0 * m - g * lr`, then `w + m`, is `w - g * lr`): the
    same numbers bit for bit on TensorFlow; XLA on JAX may fuse the operations otherwise
    and round the last bit differently.
    """

    held_in_variables = ("momentum", "weight_decay")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hold()

    def build(self, variables: list[Any]) -> None:
        if self.built:
            return
        # Keras's `SGD.build` adds no momentum slots at a momentum of 0; skip past it.
        super(keras.optimizers.SGD, self).build(variables)
        self.momentums = self.add_optimizer_variables(variables, "momentum")

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        # Keras's `SGD.update_step` with momentum, reading the momentum variable.
        ops = keras.ops
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        momentum = ops.cast(self.momentum, variable.dtype)
        slot = self.momentums[self._get_variable_index(variable)]
        self.assign(slot, ops.subtract(ops.multiply(slot, momentum),
                                       ops.multiply(gradient, learning_rate)))
        if self.nesterov:
            self.assign_add(variable, ops.subtract(ops.multiply(slot, momentum),
                                                   ops.multiply(gradient, learning_rate)))
        else:
            self.assign_add(variable, slot)
