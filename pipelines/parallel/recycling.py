"""`ktlab tune --recycle-after K`: a local worker process exits after K trials, and is restarted.

TensorFlow keeps part of every model's memory after `del model`, `clear_session()` and
`gc.collect()` (tensorflow/tensorflow#61791, keras-team/tf-keras#286, both open): measured
on TensorFlow 2.21 with Keras 3.15, about 11 MiB per small LSTM and about 30 traced graphs
that stay alive, which `malloc_trim` does not return. A search in one process therefore
grows with every trial. ktlab cannot free that memory; it can end the process that holds
it. With `run.recycle_after = K`, each local worker of `ktlab tune --workers N`
(`pipelines.parallel.local_workers`) exits after K trials, between two trials, and its chief starts
it again under the same name; a fresh process starts from a fresh TensorFlow.

The worker stops in keras-tuner's `pre_create_trial` hook, before it asks the oracle for
its next trial, so no trial is left half-done and the oracle hands nothing to a worker that
is gone; the restarted worker takes the same tuner id and appends to the same histories
file. The worker exits with `EXIT_CODE`, which tells its chief to start it again; any other
early exit still stops the search.

```python
from pipelines.parallel import recycling

recycling.stop_after(tuner, 10)  # tuner.search(...) raises WorkerRecycled after 10 trials
```
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, NoReturn

from pipelines.run import quiet

# The exit code of a worker that ran its trials and wants a fresh process: sysexits.h's
# EX_TEMPFAIL ("try again"), which neither Python nor TensorFlow exits with on an error.
EXIT_CODE = 75


class WorkerRecycled(Exception):  # noqa: N818 (not an error: the planned end of a process)
    """Raised by a worker's `tuner.search()` once it has run its share of trials.

    Attributes:
        trials: How many trials this process ran.
    """

    def __init__(self, trials: int) -> None:
        super().__init__(f"ran {trials} trials; exits so that a fresh process takes over")
        self.trials = trials


def stop_after(tuner: Any, trials: int) -> None:
    """Makes `tuner.search()` raise `WorkerRecycled` once `tuner` has run `trials` trials.

    It wraps the tuner's own `on_trial_end` (to count trials, whatever their outcome) and
    `pre_create_trial` (to stop before the next request for a trial) on this one instance,
    as keras-tuner's search loop calls them through `self`. A worker that the chief keeps
    waiting (Hyperband finishing a round) calls `pre_create_trial` again without a trial,
    which counts nothing.

    Args:
        tuner: A keras-tuner tuner, before its `search()`.
        trials: Trials to run before stopping; 0 never stops.
    """
    if trials <= 0:
        return
    ran = 0
    on_trial_end = tuner.on_trial_end
    pre_create_trial = tuner.pre_create_trial

    def counting_on_trial_end(trial: Any) -> None:
        nonlocal ran
        ran += 1
        on_trial_end(trial)

    def pre_create_trial_or_stop() -> None:
        if ran >= trials:
            raise WorkerRecycled(ran)
        pre_create_trial()

    tuner.on_trial_end = counting_on_trial_end
    tuner.pre_create_trial = pre_create_trial_or_stop


def exit_process(code: int) -> NoReturn:
    """Ends a worker process with `code`: at once when it is `EXIT_CODE`, otherwise as a
    command line ends (`quiet.end_process`, without TensorFlow's teardown).

    Python's own shutdown after TensorFlow has trained takes seconds (4.6 s against 0.2 s
    measured on a busy 2-core machine), all of it added to the restart. A recycled worker
    has closed everything it wrote (histories, checkpoints, keras-tuner's state) before it
    stops, so only the log's buffers are left to flush.
    """
    if code != EXIT_CODE:
        quiet.end_process(code)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
