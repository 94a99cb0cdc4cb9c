"""The Keras callbacks every trial gets: ktlab's own, TensorBoard's, and the user's.

ktlab's own (early stopping on the objective, stopping on a NaN loss) always stay; the
per-epoch history is recorded by the tuner's hooks, not by a callback. `--tensorboard`
adds `keras.callbacks.TensorBoard`, which keras-tuner gives a folder per trial under
`RUN_DIR/tensorboard/` and an HParams callback, so TensorBoard's HParams dashboard
compares the trials. A user's callbacks come from `run_search(callbacks=[...])` or from
`run.callbacks = ["package.module:factory"]`: each factory is called with no argument
and returns a callback or a list of them.

keras-tuner deep-copies the callbacks for every trial (keras-team/keras-tuner#392), so a
callback that keeps state on itself starts each trial afresh; one that must see the whole
search writes to a file or a module-level object.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from typing import Any

import keras
import keras_tuner

import tuners
from hypermodels import registry as model_registry
from pipelines.config import Config
from pipelines.errors import ConfigError

TENSORBOARD_DIR = "tensorboard"


def trial_callbacks(config: Config, run_dir: pathlib.Path,
                    extra: Sequence[keras.callbacks.Callback] = ()) -> list[Any]:
    """The callbacks for `tuner.search()`: ktlab's, TensorBoard's if asked, the user's.

    Raises:
        ConfigError: For a `run.callbacks` factory that cannot be loaded or called, or
            that returns something other than Keras callbacks.
    """
    tuner = config.tuner
    callbacks: list[Any] = tuners.default_callbacks(
        _objective(config), tuner.patience)
    if config.run.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run_dir / TENSORBOARD_DIR)))
    callbacks += user_callbacks(config.run.callbacks)
    callbacks += list(extra)
    return callbacks


def user_callbacks(references: Sequence[str]) -> list[keras.callbacks.Callback]:
    """Calls each `"module:factory"` and returns the callbacks they make."""
    made: list[keras.callbacks.Callback] = []
    for reference in references:
        try:
            factory = model_registry.load_object(reference, what="run.callbacks")
        except model_registry.ModelNotFoundError as error:
            raise ConfigError(str(error)) from None
        try:
            result = factory()
        except Exception as error:  # noqa: BLE001 (a user's factory may raise anything)
            raise ConfigError(f"run.callbacks {reference}: calling it failed "
                              f"({type(error).__name__}: {error}); it must take no "
                              f"argument") from None
        items = result if isinstance(result, (list, tuple)) else [result]
        for item in items:
            if not isinstance(item, keras.callbacks.Callback):
                raise ConfigError(f"run.callbacks {reference} returned "
                                  f"{type(item).__name__}, not a keras.callbacks.Callback; "
                                  f"return a callback or a list of them")
        made += items
    return made


def _objective(config: Config) -> Any:
    return keras_tuner.Objective(config.tuner.objective, direction=config.direction)
