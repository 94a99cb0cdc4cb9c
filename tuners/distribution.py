"""keras-tuner's distributed settings, and what its failure limit leaves undone.

keras-tuner reads three environment variables when a tuner is built (`BaseTuner.__init__`
wraps a worker's oracle in an `OracleClient`) and in `search()`; `environment` sets them for
a worker, or clears them for a tuner of one process or a chief, and puts them back after.
`settle_failed_trial` finishes the bookkeeping that `Oracle.end_trial` skips when it raises
`--max-consecutive-failed-trials`' error. No TensorFlow is imported here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from typing import Any

ENVIRONMENT = ("KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID")
FAILURE_LIMIT_MESSAGE = "Number of consecutive failures exceeded the limit"


@dataclasses.dataclass(frozen=True)
class Worker:
    """Where a worker finds its chief, its id, and how long it waits for an answer."""

    host: str
    port: int
    tuner_id: str
    chief_timeout: float


@contextlib.contextmanager
def environment_restored(names: tuple[str, ...]) -> Iterator[None]:
    """Puts the environment variables `names` back as they were when the block ends."""
    saved = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def environment(worker: Worker | None = None) -> Iterator[None]:
    """Sets keras-tuner's variables for `worker`, or clears them, and restores them after."""
    with environment_restored(ENVIRONMENT):
        for name in ENVIRONMENT:
            os.environ.pop(name, None)
        timeout: contextlib.AbstractContextManager = contextlib.nullcontext()
        if worker is not None:
            os.environ["KERASTUNER_ORACLE_IP"] = worker.host
            os.environ["KERASTUNER_ORACLE_PORT"] = str(worker.port)
            os.environ["KERASTUNER_TUNER_ID"] = worker.tuner_id
            from tuners import keras_tuner_internals

            # keras-tuner waits an hour for each answer; a worker whose chief is gone gives
            # up after its chief timeout instead. The chief answers every request in
            # milliseconds.
            timeout = keras_tuner_internals.chief_timeout(worker.chief_timeout)
        with timeout:
            yield


def is_failure_limit(error: BaseException) -> bool:
    """Whether keras-tuner raised `error` because too many trials failed in a row."""
    return isinstance(error, RuntimeError) and str(error).startswith(FAILURE_LIMIT_MESSAGE)


def settle_failed_trial(oracle: Any, trial_id: str) -> None:
    """Finishes what `Oracle.end_trial` left undone when it raised the failure limit.

    keras-tuner 1.4.8 raises from inside `end_trial` before it saves the trial and lets
    go of it, and its `synchronized` decorator does not release the oracle's lock when
    the call raises. This saves the failed trial, lets it go and releases the lock, so
    that the oracle's state on disk is whole and other threads can use the oracle.
    """
    from tuners import keras_tuner_internals

    keras_tuner_internals.release_oracle_lock(oracle)
    _settle(oracle, trial_id)


def _settle(oracle: Any, trial_id: str) -> None:
    import keras_tuner

    from tuners import keras_tuner_internals

    def settle(oracle: Any) -> None:
        for tuner_id, trial in list(oracle.ongoing_trials.items()):
            if trial.trial_id == trial_id:
                oracle.ongoing_trials.pop(tuner_id)
        if trial_id in oracle.trials:
            keras_tuner_internals.save_trial(oracle, oracle.trials[trial_id])
        oracle.save()

    keras_tuner.synchronized(settle)(oracle)
