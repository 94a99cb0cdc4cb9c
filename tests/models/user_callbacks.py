"""A Keras callback that a user would write in their own file, named in `run.callbacks`.

keras-tuner deep-copies callbacks for every trial, so this one writes what it sees to the
file named by `KTLAB_EPOCH_LOG` rather than keeping it on itself.
"""

from __future__ import annotations

import os

import keras


class EpochLogger(keras.callbacks.Callback):
    """Appends `epoch val_loss` to the file `KTLAB_EPOCH_LOG` names, once per epoch."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        with open(os.environ["KTLAB_EPOCH_LOG"], "a", encoding="utf-8") as handle:
            handle.write(f"{epoch} {(logs or {}).get('val_loss')}\n")


def make_loggers() -> list[keras.callbacks.Callback]:
    """A factory, as `run.callbacks = ["user_callbacks.py:make_loggers"]` names it."""
    return [EpochLogger()]
