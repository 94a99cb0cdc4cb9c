"""Every use of keras-tuner's private code, in one place, each with why.

keras-tuner's public API (`Tuner.run_trial`, the `on_*` hooks, `Oracle.populate_space`,
`Oracle.score_trial`) covers most of what ktlab does; a few things it does not reach:
building a trial's model with one garbage collection instead of two, continuing a
parent trial's checkpoint, knowing where a trial's checkpoint lies, letting Bayesian
optimization see a STOPPED (pruned) trial, and serving the oracle to distributed workers
with a timeout and a stop on too many failures, and writing its state files whole. Those
uses sit
here and nowhere else, so that an upgrade of keras-tuner past 1.4.x breaks in this module
and in `tests/test_keras_tuner_internals.py`, which pins each behaviour relied on, not
silently in the middle of a search.

`Tuner` overrides keras-tuner's private hooks once and calls public-named hooks that our
tuner classes implement:

| keras-tuner calls             | `Tuner` calls            | default       |
|-------------------------------|--------------------------|---------------|
| `_build_and_fit_model(trial)` | `build_and_fit(trial)`   | keras-tuner's |
| `_try_build(hp)`              | `build_trial_model(hp)`  | keras-tuner's |
| `_build_hypermodel(hp)`       | `build_model(hp)`        | keras-tuner's |

```python
class MyTuner(keras_tuner_internals.Tuner):
    def build_model(self, hp):
        model = super().build_model(hp)
        model.load_weights(self.checkpoint_path(hp.values["tuner/trial_id"]))
        return model
```
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import keras_tuner
from keras_tuner.engine import trial as trial_module
from keras_tuner.src import utils as keras_tuner_utils

# `keras_tuner.src.engine.tuner.maybe_compute_model_size`: keras-tuner's count of a model's
# parameters for `max_model_size`, which it does not export; our `_try_build` copy must
# count the same way so that `max_model_size` keeps its meaning.
from keras_tuner.src.engine import tuner as tuner_module


class Tuner(keras_tuner.Tuner):
    """keras-tuner's `Tuner` whose private hooks call public-named ones.

    Subclasses override `build_and_fit`, `build_trial_model` and `build_model` and call
    `super()` for keras-tuner's behaviour; they read paths with `checkpoint_path` and
    `build_config_path`, and copy callbacks with `copy_callbacks` and
    `configure_tensorboard`.
    """

    # keras-tuner's private hooks, overridden once.

    def _build_and_fit_model(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        # `Tuner._build_and_fit_model(trial, *args, **kwargs)`: keras-tuner calls it once
        # per execution from `run_trial`, between its checkpoint callback and the metrics
        # it averages. Its docstring says "DO NOT REMOVE ... AutoKeras overrides" it; the
        # public `run_trial` is one level too high to see each training run (executions,
        # walk-forward folds) and the model each one trained.
        return self.build_and_fit(trial, *args, **kwargs)

    def _try_build(self, hp: keras_tuner.HyperParameters) -> Any:
        # `Tuner._try_build(hp)`: keras-tuner builds every model through it, for a trial
        # (`_build_and_fit_model`) and for `load_model` (`get_best_models`). It runs
        # `clear_session()` and then `gc.collect()`; our override collects once and can
        # skip both for a model continued in memory. `HyperModel.build` is too late for
        # that: it cannot see whether the session was cleared.
        return self.build_trial_model(hp)

    def _build_hypermodel(self, hp: keras_tuner.HyperParameters) -> Any:
        # `Tuner._build_hypermodel(hp)`: the one place a model is built under the tuner's
        # distribution strategy with its compile overrides. `keras_tuner.Hyperband`
        # overrides it to load a promoted trial's parent checkpoint; our epoch-budget
        # tuner does the same for every oracle that hands out `tuner/trial_id`.
        return self.build_model(hp)

    # The public-named hooks, with keras-tuner's behaviour by default.

    def build_and_fit(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        """Builds and fits one model of a trial; keras-tuner's `_build_and_fit_model`."""
        return super()._build_and_fit_model(trial, *args, **kwargs)

    def build_trial_model(self, hp: keras_tuner.HyperParameters) -> Any:
        """Builds a trial's model after clearing the session; keras-tuner's `_try_build`."""
        return super()._try_build(hp)

    def build_model(self, hp: keras_tuner.HyperParameters) -> Any:
        """Builds the hypermodel under the distribution strategy; `_build_hypermodel`."""
        return super()._build_hypermodel(hp)

    # keras-tuner's private helpers, under public names.

    def checkpoint_path(self, trial_id: str) -> str:
        """Where keras-tuner keeps trial `trial_id`'s best-epoch weights."""
        return checkpoint_path(self, trial_id)

    def build_config_path(self, trial_id: str) -> str:
        """Where keras-tuner keeps trial `trial_id`'s model build config."""
        # `Tuner._get_build_config_fname(trial_id)`: keras-tuner writes the build config
        # there after each fit (multi-backend Keras) and `load_model` reads it back; a
        # continued trial whose model is not built yet must read the same file.
        return self._get_build_config_fname(trial_id)

    def copy_callbacks(self, callbacks: list[Any]) -> list[Any]:
        """Deep copies of the search's callbacks for one training run."""
        # `Tuner._deepcopy_callbacks(callbacks)`: keras-tuner copies the callbacks for
        # each execution (and says which cannot be copied); a walk-forward fold is one
        # more execution and must get copies the same way.
        return self._deepcopy_callbacks(callbacks)

    def configure_tensorboard(self, callbacks: list[Any], trial: Any, execution: int) -> None:
        """Points each TensorBoard callback at the trial's own log folder."""
        # `Tuner._configure_tensorboard_dir(callbacks, trial, execution)`: keras-tuner's
        # per-trial, per-execution TensorBoard folder layout (and its hyperparameter
        # logging), which a walk-forward fold uses with the fold as the execution.
        self._configure_tensorboard_dir(callbacks, trial, execution)


def checkpoint_path(tuner: Any, trial_id: str) -> str:
    """Where a keras-tuner tuner keeps trial `trial_id`'s best-epoch weights.

    Args:
        tuner: Any `keras_tuner.Tuner`.
        trial_id: The trial's id.

    Returns:
        The path of `trial_<id>/checkpoint.weights.h5` under the tuner's project.
    """
    # `Tuner._get_checkpoint_fname(trial_id)`: keras-tuner saves the best epoch there
    # (`SaveBestEpoch`) and `load_model` reads it; the file name differs between Keras 2
    # and 3, so we ask keras-tuner instead of spelling it.
    return tuner._get_checkpoint_fname(trial_id)


def set_oracle_directory(oracle: keras_tuner.Oracle, directory: str,
                         project_name: str) -> None:
    """Gives an oracle used without a tuner the project directory it saves trials in."""
    # `Oracle._set_project_dir(directory, project_name)`: keras-tuner calls it only from
    # `BaseTuner.__init__`; an oracle driven alone (benchmarks, synthetic objectives)
    # needs it to save `oracle.json` and each `trial.json`.
    oracle._set_project_dir(directory, project_name)


def model_size(model: Any) -> int:
    """A model's parameter count as keras-tuner counts it for `max_model_size`."""
    return tuner_module.maybe_compute_model_size(model)


def is_duplicate(oracle: keras_tuner.Oracle, values: dict[str, Any]) -> bool:
    """Whether the oracle already holds a trial with these values."""
    # `Oracle._duplicate(values)`: checks the oracle's record of the configurations its
    # trials hold (`_tried_so_far`, kept in its saved state), as its own `_random_values`
    # does; an oracle that breeds or samples configurations itself checks the same one.
    return oracle._duplicate(values)


def hyperband_brackets(oracle: keras_tuner.oracles.HyperbandOracle) -> list[dict[str, Any]]:
    """The brackets still running in a Hyperband oracle: `bracket_num` and its `rounds`,
    each round a list of `{"id": trial_id, "past_id": parent_id or None}`."""
    # `HyperbandOracle.get_state()["brackets"]` is public, but its layout (keras-tuner's
    # private `_brackets`) is not documented; which trials may still be promoted, so which
    # checkpoints must stay, can only be read from it.
    return oracle.get_state()["brackets"]


def save_trial(oracle: keras_tuner.Oracle, trial: Any) -> None:
    """Writes a trial's `trial.json`, as `Oracle.end_trial` does."""
    # `Oracle._save_trial(trial)`: the only writer of `trial.json`; the public
    # `end_trial` also scores, retries and lets go of the trial, which the trial that
    # raised the failure limit has already been through.
    oracle._save_trial(trial)


def release_oracle_lock(oracle: keras_tuner.Oracle) -> None:
    """Releases the oracle's lock when this thread holds it after a call raised.

    keras-tuner 1.4's `synchronized` decorator does not release the lock when the call
    it wraps raises (`Oracle.end_trial` raising the failure limit), so the next call from
    another thread would wait forever.
    """
    # `keras_tuner.src.engine.oracle.THREADS` and `LOCKS`: the module globals in which
    # `synchronized` keeps each oracle's lock and its holder; there is no public way to
    # release it.
    from keras_tuner.src.engine import oracle as oracle_module

    if oracle_module.THREADS[oracle] == threading.current_thread().name:
        oracle_module.THREADS[oracle] = None
        oracle_module.LOCKS[oracle].release()


def score_stopped_trial(oracle: keras_tuner.Oracle, trial: Any) -> None:
    """Scores a trial that ends STOPPED, as `Oracle.end_trial` scores a COMPLETED one.

    keras-tuner's `end_trial` scores only COMPLETED trials; a pruned trial, which ends
    STOPPED, keeps the score of its best epoch so far in `trial.json`, for the reader who
    wants to see it. `get_best_trials` still ranks only COMPLETED trials. Call it before
    `end_trial`, with the oracle's own copy of the trial.

    Args:
        oracle: The oracle that holds the trial (not a worker's `OracleClient`).
        trial: The oracle's trial, with the metrics it was sent.
    """
    # `Oracle.score_trial` is public; only its use on a STOPPED trial is ours.
    if trial.status == trial_module.TrialStatus.STOPPED and trial.score is None:
        oracle.score_trial(trial)


class BayesianOptimizationOracle(keras_tuner.oracles.BayesianOptimizationOracle):
    """keras-tuner's Bayesian optimization oracle, which also learns from stopped trials.

    Same arguments as `keras_tuner.oracles.BayesianOptimizationOracle`.
    """

    def _vectorize_trials(self) -> Any:
        # `BayesianOptimizationOracle._vectorize_trials()` in keras-tuner 1.4 handles
        # ongoing, COMPLETED, FAILED and INVALID trials; a STOPPED one (a pruned trial,
        # `tuners.observers.pruning`) falls through and is given the score of the trial before it,
        # or raises UnboundLocalError when it comes first. While it runs, a stopped trial
        # with a finite score reads as completed, so the Gaussian process learns that its
        # region did badly, and one without reads as failed and is left out. Statuses are
        # set back at once, so `trial.json` and `get_best_trials` never see the change.
        stopped = [trial for trial in self.trials.values()
                   if trial.status == trial_module.TrialStatus.STOPPED]
        for trial in stopped:
            finite = trial.score is not None and math.isfinite(trial.score)
            trial.status = (trial_module.TrialStatus.COMPLETED if finite
                            else trial_module.TrialStatus.FAILED)
        try:
            return super()._vectorize_trials()
        finally:
            for trial in stopped:
                trial.status = trial_module.TrialStatus.STOPPED


@contextlib.contextmanager
def chief_timeout(seconds: float) -> Iterator[None]:
    """Makes a distributed worker wait at most `seconds` for each answer of its chief."""
    # `keras_tuner.src.distribute.oracle_client.TIMEOUT`: the gRPC deadline of every
    # request, one hour in keras-tuner and not a parameter of `OracleClient`; a worker
    # whose chief is gone gives up after `--chief-timeout` instead.
    from keras_tuner.src.distribute import oracle_client

    saved = oracle_client.TIMEOUT
    oracle_client.TIMEOUT = seconds
    try:
        yield
    finally:
        oracle_client.TIMEOUT = saved


def make_chief_servicer(oracle: keras_tuner.Oracle,
                        is_failure_limit: Callable[[BaseException], bool],
                        settle_failed_trial: Callable[[Any, str], None]) -> Any:
    """keras-tuner's gRPC servicer of the oracle, which stops when too many trials fail.

    Args:
        oracle: The chief's oracle.
        is_failure_limit: Whether an error from `Oracle.end_trial` is keras-tuner's
            "too many consecutive failures".
        settle_failed_trial: Called with the oracle and the trial id after such an error,
            to save the trial and release the lock.

    Returns:
        The servicer: its `failure` is the failure-limit message once the search stopped
        for it, and `stop_triggered` says that a worker was told to stop.
    """
    # `keras_tuner.src.distribute.oracle_chief.OracleServicer` and
    # `keras_tuner.src.protos`: keras-tuner's chief (`oracle_chief.start_server`) takes
    # its address from environment variables and serves until the process ends; ours
    # listens where `--oracle-address` says, polls, and stops. The servicer and the
    # generated gRPC messages have no public path.
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    class ChiefServicer(oracle_chief.OracleServicer):
        """keras-tuner's servicer, which stops the search when too many trials fail."""

        def __init__(self, oracle: Any) -> None:
            super().__init__(oracle)
            self.failure: str | None = None

        def CreateTrial(self, request: Any, context: Any) -> Any:  # noqa: N802 (gRPC name)
            if self.failure is None:
                return super().CreateTrial(request, context)
            keras_tuner.synchronized(
                lambda oracle: oracle.tuner_ids.discard(request.tuner_id))(self.oracle)
            self.stop_triggered = True
            stopped = trial_module.Trial(self.oracle.get_space(),
                                         status=trial_module.TrialStatus.STOPPED)
            return protos.get_service().CreateTrialResponse(trial=stopped.to_proto())

        def EndTrial(self, request: Any, context: Any) -> Any:  # noqa: N802 (gRPC name)
            # A worker's pruned trial ends STOPPED; the chief scores its own copy, which
            # holds the metrics, as a search in one process does before `end_trial`.
            if trial_module.TrialStatus.from_proto(
                    request.trial.status) == trial_module.TrialStatus.STOPPED:
                keras_tuner.synchronized(_score_stopped)(self.oracle, request.trial.trial_id)
            try:
                return super().EndTrial(request, context)
            except RuntimeError as error:
                if not is_failure_limit(error):
                    raise
                self.failure = str(error).splitlines()[0]
                settle_failed_trial(self.oracle, request.trial.trial_id)
                return protos.get_service().EndTrialResponse()

    return ChiefServicer(oracle)


def _score_stopped(oracle: Any, trial_id: str) -> None:
    # The chief's copy is still RUNNING; `end_trial` copies the worker's status after.
    trial = oracle.trials[trial_id]
    trial.status = trial_module.TrialStatus.STOPPED
    score_stopped_trial(oracle, trial)


def add_servicer_to_server(servicer: Any, server: Any) -> None:
    """Registers the oracle's servicer with a `grpc.server`."""
    # `keras_tuner.src.protos.get_service_grpc()`: the generated gRPC module, which
    # picks keras-tuner's proto version for the installed protobuf.
    from keras_tuner.src import protos

    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)


def chief_may_exit(oracle: keras_tuner.Oracle) -> bool:
    """Whether no trial runs and every worker has been told to stop."""
    # `keras_tuner.src.distribute.oracle_chief.exit_chief(oracle)`: keras-tuner's own rule
    # for when its chief stops, under the oracle's lock.
    from keras_tuner.src.distribute import oracle_chief

    return oracle_chief.exit_chief(oracle)


def _save_json_whole(path: str, obj: Any) -> str:
    """keras-tuner's `utils.save_json`, written to a temporary file and renamed into place.

    keras-tuner writes `oracle.json` and each `trial.json` in place, so a process stopped
    mid-write (Ctrl-C on a chief, a killed worker) leaves a file cut short that no resume
    can read. A rename is atomic on one file system, so a reader sees the old file or the
    new one, never half of one. Run directories are local paths.
    """
    text = json.dumps(obj)
    temporary = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(temporary, "w", encoding="utf-8") as file:
        file.write(text)
    os.replace(temporary, path)
    return text


def write_state_files_whole() -> None:
    """Makes keras-tuner write its state files whole (`_save_json_whole`); idempotent.

    `keras_tuner.src.utils.save_json` is the one writer that `Stateful.save` (the oracle,
    every trial) and `Tuner.save` call, through the module attribute.
    """
    keras_tuner_utils.save_json = _save_json_whole


# Every process that imports ktlab's tuners (the search, the chief, each worker) writes
# keras-tuner's state whole from then on.
write_state_files_whole()
