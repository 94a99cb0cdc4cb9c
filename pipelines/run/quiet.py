"""Imports TensorFlow without its C++ and absl start-up log.

On a machine without a GPU, `import tensorflow` writes lines such as "Could not find cuda
drivers on your machine" and "oneDNN custom operations are on" straight to the process's
standard error, before absl's logging is set up, so `TF_CPP_MIN_LOG_LEVEL` alone does not
hide them; the first tensor then logs "failed call to cuInit" as an error. The `ktlab`
command imports TensorFlow once, here, with file descriptor 2 pointed at the null device
for the length of the import and the look for GPUs; every later import is a lookup in
`sys.modules`, and warnings from our own code and from training still reach the user.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

# TensorFlow reads these when it loads: errors only from its C++ runtime, and no absl
# start-up banner from the logging it sets up later.
QUIET_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "2", "ABSL_MIN_LOG_LEVEL": "2"}


def set_environment() -> None:
    """Sets TensorFlow's log levels, unless the user set them."""
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


@contextlib.contextmanager
def stderr_silenced() -> Iterator[None]:
    """Points file descriptor 2 at the null device, and restores it after."""
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def import_tensorflow() -> None:
    """Imports TensorFlow, Keras and keras-tuner quietly, once; later calls return at once.

    An import that fails is tried again with standard error open, so that the user sees
    why.
    """
    if "keras_tuner" in sys.modules:
        return
    set_environment()
    # keras-tuner imports TensorFlow even on another Keras backend, so it is imported
    # here too.
    try:
        with stderr_silenced():
            import keras_tuner  # noqa: F401 (imported for its side effect)
            import tensorflow as tf

            # Looking for GPUs is what logs "failed call to cuInit" on a machine without
            # one, as an error, when the first tensor is made; it is done here instead.
            tf.config.list_physical_devices("GPU")
    except ImportError:
        import keras_tuner  # noqa: F401
    logging.getLogger("tensorflow").addFilter(_drop_retracing_warnings)


def _drop_retracing_warnings(record: logging.LogRecord) -> bool:
    """Drops TensorFlow's "triggered tf.function retracing" warning.

    Every trial builds a new model, whose training function is traced anew by design;
    TensorFlow counts those as retracings of one function and warns a few times a search.
    """
    return "triggered tf.function retracing" not in record.getMessage()
