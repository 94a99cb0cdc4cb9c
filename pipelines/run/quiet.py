"""Imports TensorFlow without its C++ and absl start-up log, and ends a process without
TensorFlow's slow teardown (`end_process`).

On a machine without a GPU, `import tensorflow` writes lines such as "Could not find cuda
drivers on your machine" and "oneDNN custom operations are on" straight to the process's
standard error, before absl's logging is set up, so `TF_CPP_MIN_LOG_LEVEL` alone does not
hide them; the first tensor then logs "failed call to cuInit" as an error. The `ktlab`
command imports TensorFlow once, here, with file descriptor 2 pointed at the null device
for the length of the import and the look for GPUs; every later import is a lookup in
`sys.modules`, and warnings from our own code and from training still reach the user.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import pathlib
import sys
from collections.abc import Iterator
from typing import NoReturn

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


# JAX compiles a model's training and evaluation steps once per batch shape (0.9 s and
# 0.25 s for the default LSTM on a 2-core CPU, 2026-12-04), and forgets them when its
# process ends; its persistent cache keeps them on disk for the next process (worker
# processes, `--resume`, `ktlab compare`, a second run) only when a compilation took at
# least JAX's default of 1 s, which none of ours does.
JAX_CACHE_FOLDER = ".jax-cache"
JAX_CACHE_MIN_SECONDS = "0.1"
JAX_CACHE_VARIABLES = ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS")


def cache_jax_compilations(output_dir: str | os.PathLike) -> None:
    """Keeps JAX's compilations in `OUTPUT_DIR/.jax-cache` when Keras will run on JAX and
    the user named no cache of their own.

    Sets JAX's own environment variables, which JAX reads when it is imported, so it does
    nothing once JAX is (a notebook that already imported Keras keeps its settings), and
    nothing on TensorFlow (which may import JAX too, where it is installed). The default
    search on JAX took 55.4 s with an empty cache and 18.7 s with a full one (the whole
    command 65.9 s and 28.4 s; `python benchmarks/backends.py`, 2026-12-04).
    """
    if "jax" in sys.modules or _keras_backend() != "jax":
        return
    if JAX_CACHE_VARIABLES[0] in os.environ:
        return
    directory = pathlib.Path(output_dir).resolve() / JAX_CACHE_FOLDER
    os.environ[JAX_CACHE_VARIABLES[0]] = str(directory)
    os.environ.setdefault(JAX_CACHE_VARIABLES[1], JAX_CACHE_MIN_SECONDS)


def _keras_backend() -> str:
    """The backend Keras will load, read as Keras reads it (`KERAS_BACKEND`, else the
    `backend` of `KERAS_HOME/keras.json` or `~/.keras/keras.json`), without importing
    Keras, which would import TensorFlow."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = pathlib.Path(os.environ.get("KERAS_HOME") or pathlib.Path.home() / ".keras")
    try:
        return str(json.loads((home / "keras.json").read_text()).get("backend", "tensorflow"))
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


# The exit code `end_process` was given; None until a command line's process ends.
_exit_code: int | None = None


def end_process(code: int) -> NoReturn:
    """Ends a command line's process with `code`, without freeing TensorFlow's modules.

    Python frees every module and library when a process ends; once TensorFlow is loaded
    that takes 1.3 s on a 2-core machine (2026-12-04: a script that only imports
    TensorFlow ends 1.3 s after its last line, and 0.05 s with `os._exit`), added to every
    `ktlab tune`. Everything else Python runs at exit still runs: the threads are joined
    and the `atexit` functions called, this module's last, since it is imported before
    TensorFlow; only the freeing, which writes nothing, is skipped. Used where a process
    ends (`ktlab`, `python -m pipelines`, a worker process), never by a function that
    returns to its caller.
    """
    global _exit_code
    _exit_code = code
    sys.exit(code)


@atexit.register
def _end_without_teardown() -> None:
    # Not where a host process caught the SystemExit and lives on (`%run` in an IPython
    # shell, a test): its own exit must run as usual. Keras imports IPython's package
    # wherever it is installed, so a shell is told by `get_ipython()`.
    ipython = sys.modules.get("IPython")
    if (_exit_code is None or "tensorflow" not in sys.modules or "pytest" in sys.modules
            or (ipython is not None and getattr(ipython, "get_ipython", lambda: None)())):
        return
    logging.shutdown()
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        return  # A closed pipe: Python's own exit reports it, as without this hook.
    os._exit(_exit_code)
