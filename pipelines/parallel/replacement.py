"""`ktlab tune --workers N`: a local worker process that dies mid-search is replaced.

A worker killed by a signal (SIGKILL from the out-of-memory killer or a user, a crash in
native code), or one that crashed once it had reached the chief, is replaced by its chief
(`pipelines.parallel.local_workers.WorkerPool`): a new process starts under the dead one's
name, as `--recycle-after` restarts a worker (`pipelines.parallel.recycling`), at most
`run.max_worker_restarts` times per search (`--max-worker-restarts`, 3 by default). A
worker that stopped with ktlab's own one-line error (exit code 2: settings that differ
from the chief's, a chief it cannot reach) is not replaced, since a new process would stop
the same way, nor is one that failed before it reached the chief.

The dead worker's trial is trained again from its start, under the same trial id, and
recorded once:

- keras-tuner's oracle keeps the trial it handed out in `oracle.ongoing_trials[tuner_id]`
  until that tuner ends it, and `Oracle.create_trial` hands the same trial back to a tuner
  id that asks again while it holds one (there for several workers of one distribution
  strategy that share a trial). The new process asks under the dead one's name, so it
  gets that trial first, and the chief, which ends a search only when no trial is
  ongoing, waits for it.
- keras-tuner keeps only a trial's best epoch's weights, without the optimizer's state,
  so there is no checkpoint to continue the trial from exactly: it starts again.
- The new process's recorder writes a `superseded` record for the dead attempt before it
  writes anything else (`tuners.observers.recorder.Recorder`, which asks the chief whether
  the trial still runs), so every reader of the histories (`tuners.load_histories`,
  `trials.csv`, the pruners) counts the trial once, with the epochs of its last attempt.
  The dead attempt's lines stay in the file: the chief and the other workers read each
  histories file from where they stopped (`tuners.results.trial_curves`), so the files
  only ever grow.

The chief logs each replacement when it happens (which worker, how it ended, how many
seconds into the search, during which trial), writes the same line into the worker's
log, and lists the replacements again after the search's summary. Once the limit is
reached, the next death stops the search with the one line of a worker that failed.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

# The exit code of a worker that stopped with ktlab's one-line error (`worker_process.main`).
REFUSED_CODE = 2


@dataclasses.dataclass(frozen=True)
class Death:
    """A worker process that ended before the search did, and was replaced.

    Attributes:
        name: The worker's name (its keras-tuner tuner id), which its replacement takes.
        how: How it ended: `"was killed by signal 9"`, `"exited with code 1"`.
        seconds: Seconds since the chief began serving the search.
        trial_id: The trial it was training, which its replacement trains again; None
            when it held none.
    """

    name: str
    how: str
    seconds: float
    trial_id: str | None

    @property
    def when(self) -> str:
        """`"14.2 s into the search, during trial 3"`."""
        during = f"during trial {self.trial_id}" if self.trial_id is not None else (
            "between trials")
        return f"{self.seconds:.1f} s into the search, {during}"


def how_it_ended(code: int) -> str:
    """`"was killed by signal 9"` or `"exited with code 1"`, from a `Popen.returncode`."""
    return f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"


def is_replaceable(code: int, reached_chief: bool) -> bool:
    """Whether a worker that ended with `code` before the search did may be replaced.

    Args:
        code: Its `Popen.returncode`, not 0: negative for a signal.
        reached_chief: Whether it had reached the chief (it writes its log in the run
            directory from then on).
    """
    if code < 0:
        return True
    return reached_chief and code != REFUSED_CODE


def held_trial(oracle: Any, tuner_id: str) -> str | None:
    """The id of the trial the oracle holds for `tuner_id`, which it will hand out again.

    Read under the oracle's lock, as its gRPC thread may be answering a request. A trial
    that its dead worker had already reported (`update_trial`) but not ended loses those
    metrics, so that the new attempt's epochs are not averaged with the old one's.
    """
    import keras_tuner

    def read(oracle: Any) -> str | None:
        trial = oracle.ongoing_trials.get(tuner_id)
        if trial is None:
            return None
        # A new tracker of the same class: keras-tuner exports none under a public path.
        trial.metrics = type(trial.metrics)()
        return trial.trial_id

    return keras_tuner.synchronized(read)(oracle)


class Replacements:
    """The workers replaced during one search, and how many more may be.

    Args:
        limit: How many replacements the search allows (`run.max_worker_restarts`).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.deaths: list[Death] = []

    def allows_another(self) -> bool:
        """Whether one more dead worker may be replaced."""
        return len(self.deaths) < self.limit

    def record(self, death: Death) -> str:
        """Counts a replacement; returns the line that announces it."""
        self.deaths.append(death)
        again = (f"which trains trial {death.trial_id} again" if death.trial_id is not None
                 else "which asks for a trial")
        return (f"ktlab: {death.name} {death.how} {death.when}; a new {death.name} takes its "
                f"place, {again} (replacement {len(self.deaths)} of at most {self.limit})")

    def refusal(self) -> str:
        """Why a replaceable worker was not replaced: the limit, for the error's line."""
        replaced = len(self.deaths)
        return (f" (not replaced: this search has replaced {replaced} worker"
                f"{'s' * (replaced != 1)} already, the most that --max-worker-restarts "
                f"allows)")

    def summary_step(self, result: Any) -> None:
        """A report step after the recipe's summary: lists the workers replaced."""
        if not self.deaths:
            return
        logger = logging.getLogger("ktlab")
        count = len(self.deaths)
        logger.info(f"ktlab: {count} worker{'s' * (count != 1)} replaced during the search "
                    f"(at most {self.limit}):")
        for death in self.deaths:
            trial = (f"; trial {death.trial_id} ran again" if death.trial_id is not None
                     else "")
            logger.info(f"  {death.name} {death.how} {death.when}{trial}")
