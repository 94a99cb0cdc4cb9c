"""ktlab's one `Tuner`: a trial runner, a recorder and trial observers, chosen when built.

`tuners.factory.build_tuner` composes it; each part does one job and none depends on the
order of the others' classes:

- the trial runner (`tuners.runners`: `holdout.Holdout` or `walk_forward.WalkForward`)
  trains a trial on the holdout split or on each walk-forward fold;
- the recorder (`tuners.observers.recorder.Recorder`) writes every trial's curve to
  `histories.jsonl`;
- the observers (`tuners.observers.trial_observer.TrialObserver`): an epoch limit
  (`epoch_limit`), a pruner (`pruning`), and for oracles that hand out epoch budgets the
  `epoch_budget` part (`tuners.observers.epoch_budget`), which continues a parent
  trial's checkpoint and keeps models for promotions.

The tuner itself keeps what the running trial has recorded (`recording`), tells
keras-tuner how each trial ended, builds each model after one garbage collection with its
optimizer built before the first trace, and freezes the objects alive before the search
for the collector. For a hypermodel that declares its `structure(hp)`, it trains each
configuration on a model of that structure traced before, given the fresh model's state
(`tuners.observers.model_pool`): one trace per structure instead of one per configuration.

```python
oracle = keras_tuner.oracles.RandomSearchOracle(objective="val_loss", max_trials=5)
tuner = Tuner(oracle=oracle, hypermodel=hypermodel, directory="runs/demo",
              observers=[pruning.Pruning(pruning.MedianPruner())])
tuner.search(train_dataset, validation_data=validation_dataset, epochs=10)
```
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Sequence
from typing import Any

import keras
import keras_tuner
from keras_tuner.engine import trial as trial_module

from tuners import keras_tuner_internals
from tuners.observers import kept_models, model_pool, trial_recording
from tuners.observers import recorder as history_recorder
from tuners.results import json_values, measures
from tuners.runners import holdout

# How long a distributed worker waits before asking again when the chief has no trial for
# it yet (Hyperband waiting for a round to finish); keras-tuner asks again at once.
IDLE_WAIT_SECONDS = 0.5


class Tuner(keras_tuner_internals.Tuner):
    """A keras-tuner `Tuner` made of a trial runner, a recorder and trial observers.

    Args:
        *args: Passed to `keras_tuner.Tuner`.
        runner: Trains each trial: `Holdout()` (the default) or `WalkForward(folds)`.
        recorder: Writes the histories; a `Recorder()` by default.
        observers: Further trial observers, called after the recorder in this order.
        epoch_budget: For oracles that hand out epoch budgets, an `EpochBudget`; it
            also observes trials, after the others.
        extra_objectives: Names of the search's objectives besides the oracle's; the
            measures among them (`tuners.results.measures`) are taken on each trained model and
            reported as metrics, and the `trial_end` record gives all their values.
        reuse_models: Whether a configuration whose hypermodel declares its structure
            trains on a pooled model of that structure (`model_pool`); False builds and
            traces every model anew, as keras-tuner does.
        **kwargs: Passed to `keras_tuner.Tuner`.
    """

    def __init__(self, *args: Any, runner: Any = None, recorder: Any = None,
                 observers: Sequence[Any] = (), epoch_budget: Any = None,
                 extra_objectives: Sequence[str] = (), reuse_models: bool = True,
                 **kwargs: Any) -> None:
        self.runner = runner if runner is not None else holdout.Holdout()
        self.recorder = recorder if recorder is not None else history_recorder.Recorder()
        self.epoch_budget = epoch_budget
        self.observers = [self.recorder, *observers,
                          *([epoch_budget] if epoch_budget is not None else [])]
        self.extra_objectives = list(extra_objectives)
        self.overwrite = bool(kwargs.get("overwrite", False))
        self.recording: trial_recording.TrialRecording | None = None
        self.model_pool = model_pool.ModelPool() if reuse_models else None
        self._awaiting_trial = False
        super().__init__(*args, **kwargs)
        for observer in self.observers:
            observer.attach(self)

    @property
    def history_path(self) -> str:
        """Where the recorder writes the histories."""
        return self.recorder.history_path

    @property
    def validation(self) -> str:
        """The validation its runner does: `"holdout"` or `"walk_forward"`."""
        return self.runner.name

    def observer(self, kind: type) -> Any:
        """The first observer of class `kind`, or None."""
        return next((item for item in self.observers if isinstance(item, kind)), None)

    def search(self, *args: Any, **kwargs: Any) -> None:
        """Runs keras-tuner's search with the objects that outlive it frozen for the collector.

        Every trial starts with a full garbage collection (`build_trial_model`), which walks every
        tracked object: about 480,000 once TensorFlow, Keras and the data are loaded, so
        0.25 s a trial on a 2-core CPU. `gc.freeze()` moves the objects alive now to a
        generation the collector does not walk, and `gc.unfreeze()` puts them back when
        the search ends, however it ends, so the collection before a trial walks only
        what the search created (0.02 s; the same memory: `benchmarks/overhead.py`,
        `benchmarks/memory.py`). Garbage is collected first, so none is frozen. Objects
        frozen before the search stay so, and the search then freezes nothing.
        """
        try:
            # Only the outermost freeze is ours to undo: a host that froze objects itself
            # (a server that forks, or a search inside a search) keeps its own.
            owned = gc.get_freeze_count() == 0
            if owned:
                gc.collect()
                gc.freeze()
            try:
                super().search(*args, **kwargs)
            finally:
                if owned:
                    gc.unfreeze()
        finally:
            if self.model_pool is not None:
                self.model_pool.clear()
            for observer in self.observers:
                observer.on_search_end(self)

    # keras-tuner's hooks, in the order a trial meets them.

    def on_search_begin(self) -> None:
        super().on_search_begin()
        for observer in self.observers:
            observer.on_search_begin(self)

    def pre_create_trial(self) -> None:
        """Waits a moment before asking again when the last request got no trial.

        A distributed worker whose chief answers "idle" (Hyperband waiting for other
        workers to finish a round) would otherwise ask again at once, in a busy loop.
        """
        if self._awaiting_trial:
            time.sleep(IDLE_WAIT_SECONDS)
        self._awaiting_trial = True
        super().pre_create_trial()

    def on_trial_begin(self, trial: Any) -> None:
        """Notes that the last request got a trial."""
        self._awaiting_trial = False
        super().on_trial_begin(trial)

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        """Starts the trial's recording, then lets the runner train it."""
        values = trial.hyperparameters.values
        if self.epoch_budget is not None:
            kwargs = self.epoch_budget.fit_kwargs(values, kwargs)
        self.recording = trial_recording.TrialRecording(
            trial_id=trial.trial_id,
            started=time.perf_counter(),
            initial_epoch=int(values.get("tuner/initial_epoch", kwargs.get("initial_epoch", 0))),
            target_epochs=int(values.get("tuner/epochs", kwargs.get("epochs", 1))),
        )
        for observer in self.observers:
            observer.on_trial_begin(self, trial)
        return self.runner.run_trial(self, trial, *args, **kwargs)

    def run_executions(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        """keras-tuner's own `run_trial`: `executions_per_trial` models on the given data."""
        return super().run_trial(trial, *args, **kwargs)

    def build_and_fit(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        """Builds and trains one model of the trial, then measures it for the objectives."""
        # keras-tuner calls this once per execution, and the walk-forward runner once per
        # fold, so it marks where one training run ends and the next begins.
        recording = self.recording
        if recording is not None:
            recording.run += 1
            recording.model = None
        try:
            results = super().build_and_fit(trial, *args, **kwargs)
        except BaseException:
            if self.model_pool is not None:
                self.model_pool.release(reusable=False)
            raise
        measured = [name for name in self.extra_objectives if name in measures.MEASURED]
        if measured and recording is not None and recording.model is not None:
            values = measures.measure_model(
                recording.model, measures.first_batch(kwargs.get("validation_data")), measured)
            recording.model = None
            results = measures.with_measures(results, values, self.oracle.objective.name)
        # After the measures, which read the trained model: the next run may reuse it.
        if self.model_pool is not None:
            self.model_pool.release()
        for observer in self.observers:
            observer.on_run_end(self, trial)
        return results

    def pool_key(self, hp: keras_tuner.HyperParameters) -> Any:
        """The structure under which the running trial's model is pooled, or None.

        None without a pool, outside a trial (`get_best_models` builds its own), under a
        distribution strategy, and for a hypermodel that declares no structure.
        """
        if (self.model_pool is None or self.recording is None
                or self.distribution_strategy is not None):
            return None
        return model_pool.structure_key(self.hypermodel, hp)

    def build_trial_model(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        """Builds a trial's model after one garbage collection, not keras-tuner's two.

        It replaces keras-tuner's own build step (`keras_tuner_internals.Tuner`).

        keras-tuner calls `keras.backend.clear_session()`, which already runs Python's
        garbage collector, and then `gc.collect()` again. Each full collection takes longer
        as TensorFlow's traced graphs pile up over a search (0.2 s early, 0.6 s after a
        few dozen trials on a 2-core CPU: `benchmarks/overhead.py`), so one is kept.
        A model that continues in memory needs neither (`EpochBudget.builds_anew`).

        A configuration of a declared structure (`pool_key`) is built afresh without
        clearing the session, which would empty TensorFlow's kernel cache that the pooled
        models use, and then trains on the pooled model of its structure given the fresh
        model's state (`model_pool.ModelPool.take`).
        """
        key = self.pool_key(hp)
        if key is not None:
            gc.collect()
        elif self.epoch_budget is None or self.epoch_budget.builds_anew(self, hp):
            keras.backend.clear_session(free_memory=True)
        model = self.build_model(hp)
        if not isinstance(model, keras.Model):
            raise keras_tuner.errors.FatalTypeError(
                f"Expected the model-building function, or HyperModel.build() to return a "
                f"valid Keras Model instance. Received: {model} of type {type(model)}.")
        size = keras_tuner_internals.model_size(model)
        if self.max_model_size and size > self.max_model_size:
            raise keras_tuner.errors.FailedTrialError(
                f"Oversized model: {size} parameters. Skip model.")
        # One trace of the training step instead of two (`tuners.observers.kept_models`); under a
        # distribution strategy Keras builds the optimizer in the strategy's scope itself.
        if self.distribution_strategy is None:
            kept_models.build_optimizer(model)
        if key is not None:
            model = self.model_pool.take(key, model)
        for observer in self.observers:
            observer.on_model_built(self, hp, model)
        return model

    def build_model(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        """keras-tuner's build, or the epoch budget's, which continues a parent trial."""
        if self.epoch_budget is not None:
            return self.epoch_budget.build_model(self, hp, super().build_model)
        return super().build_model(hp)

    def on_epoch_begin(self, trial: Any, model: Any, epoch: int, logs: dict | None = None) -> None:
        """Starts the epoch's clock."""
        if self.recording is not None:
            self.recording.epoch_started = time.perf_counter()
        super().on_epoch_begin(trial, model, epoch, logs=logs)

    def on_epoch_end(self, trial: Any, model: Any, epoch: int, logs: dict | None = None) -> None:
        """Records the epoch, tells the observers, and stops the trial when one says so."""
        logs = logs or {}
        recording = self.recording
        if recording is not None and recording.trial_id == trial.trial_id:
            started = recording.epoch_started
            seconds = time.perf_counter() - started if started is not None else math.nan
            metrics = {name: json_values.to_float(value) for name, value in logs.items()}
            recording.epochs.append(trial_recording.EpochRecord(
                run=max(recording.run, 0), fold=recording.fold, epoch=int(epoch),
                seconds=seconds, metrics=metrics))
            recording.model = model
            watched = [metrics.get("loss"), metrics.get(self.oracle.objective.name)]
            if recording.non_finite_epoch is None and any(
                value is not None and not math.isfinite(value) for value in watched
            ):
                recording.non_finite_epoch = int(epoch)
        super().on_epoch_end(trial, model, epoch, logs=logs)
        for observer in self.observers:
            reason = observer.on_epoch_end(self, trial, model, epoch, logs)
            if reason is not None:
                model.stop_training = True
                if recording is not None and recording.stopped_reason is None:
                    recording.stopped_reason = reason

    def on_trial_end(self, trial: Any) -> None:
        """Tells keras-tuner how the trial ended, lets it record that, then the observers.

        The recorder writes the trial's record even when keras-tuner ends the search here
        because too many trials failed in a row, or a distributed worker loses its chief.
        """
        recording = self.recording
        self.recording = None
        if recording is None or recording.trial_id != trial.trial_id:
            recording = trial_recording.TrialRecording(trial.trial_id, time.perf_counter(), 0, 0)
        self._settle_oracle_status(trial, recording)
        try:
            super().on_trial_end(trial)
        except BaseException:
            # Do not ask a chief that may be gone: its answer would wait for the timeout.
            self.recorder.on_trial_end(self, trial, recording, ask_chief=False)
            raise
        for observer in self.observers:
            observer.on_trial_end(self, trial, recording)

    def _settle_oracle_status(self, trial: Any,
                              recording: trial_recording.TrialRecording) -> None:
        """Tells keras-tuner how the trial ended, before its `end_trial` records it.

        keras-tuner completes every trial whose `fit()` returned: one whose loss went NaN
        after its first epoch keeps the score of the epochs before it, and a pruned one
        reads as finished. keras-tuner's records (`trial.json`, `oracle.trials`,
        `get_best_trials`) are the record of how each trial ended, so such a trial is
        sent as INVALID (keras-tuner retries it `max_retries_per_trial` times, then
        fails it, as it does a trial that raised), and a pruned one as STOPPED, with the
        score of its best epoch so far.
        """
        if trial.status != trial_module.TrialStatus.COMPLETED:
            return
        if recording.non_finite_epoch is not None:
            trial.status = trial_module.TrialStatus.INVALID
            trial.message = (f"loss or objective became NaN or infinite at epoch "
                             f"{recording.non_finite_epoch}")
        elif recording.stopped_reason is not None:
            trial.status = trial_module.TrialStatus.STOPPED
            # In one process the trial is the oracle's own; a worker's chief scores its
            # copy when it hears of the trial (`keras_tuner_internals.make_chief_servicer`).
            oracle_trials = getattr(self.oracle, "trials", None)
            if oracle_trials is not None and trial.trial_id in oracle_trials:
                keras_tuner_internals.score_stopped_trial(
                    self.oracle, oracle_trials[trial.trial_id])
