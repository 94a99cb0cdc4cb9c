"""`run_search(config)`: the work behind `ktlab tune`, callable from notebooks.

Data flows one way: pipeline -> splits -> tuner.search -> histories on disk -> reports.
Every check of the input happens before the run directory is created (`pipelines.run_dir`),
so bad input leaves nothing half-written; `pipelines.artifacts` writes what a finished
search leaves. A distributed chief serves the search to workers (`pipelines.workers`).
"""

from __future__ import annotations

import dataclasses
import pathlib
import shutil
import tempfile
import time
import warnings
from collections.abc import Sequence
from typing import Any

import keras
import keras_tuner
import tensorflow as tf

import hypermodels
import tuners
from hypermodels import registry as model_registry
from pipelines import callbacks as trial_callbacks
from pipelines import distributed, plots, progress
from pipelines.artifacts import RunResult, finish_run, load_result, write_json
from pipelines.build import make_hypermodel, make_pipeline
from pipelines.config import Config
from pipelines.data import PreparedData
from pipelines.errors import ConfigError, KtlabError
from pipelines.progress import LOGGER
from pipelines.run_dir import RUN_MARKER, finished_search, prepare_run_dir
from tuners import checkpoints, pruning
from tuners.objectives import MEASURED


def run_search(config: Config, *, hypermodel: keras_tuner.HyperModel | None = None,
               callbacks: Sequence[keras.callbacks.Callback] = (), verbose: bool = True,
               progress_bars: bool = False, resume: bool = False,
               reuse_finished: bool = False,
               distribution: distributed.Distribution | None = None,
               mirrored: bool = False, prepared: PreparedData | None = None) -> RunResult:
    """Runs one search end to end and writes its run directory.

    The run directory holds `config.json`, `histories.jsonl`, `trials.csv`,
    `best_hyperparameters.json`, `best_model.keras`, `preprocessor.joblib` and
    `metrics.json`, plus keras-tuner's own files under `tuner/`. An unfinished search in
    the run directory, with the same settings, is resumed (see `prepare_run_dir`). Unless
    `config.run.refit` is off, `best_model.keras` is the best configuration retrained on
    training + validation rows (`pipelines.refit`).

    ```python
    result = run_search(load_config("configs/default.toml"))
    print(result.metrics["test"], result.metrics["baseline"]["test"])
    # Any keras_tuner.HyperModel of your own, fed by the pipeline its data_kind names:
    result = run_search(config, hypermodel=MyHyperModel(input_shape=(30, 11)))
    ```

    Args:
        config: The run's configuration.
        hypermodel: A `keras_tuner.HyperModel` instance to tune instead of the one
            `config.model` names. The data still comes from `config`: a series of windows,
            unless the instance's `data_kind` attribute says `"table"`.
        callbacks: Keras callbacks added to every trial, beside ktlab's own and those of
            `config.run.callbacks` (`pipelines.callbacks`).
        verbose: Log a line per finished trial and a summary (the `ktlab` logger; shown
            on standard output unless logging is set up already).
        progress_bars: Show Keras's per-epoch progress bars.
        resume: Require a search to resume (`ktlab tune --resume`).
        reuse_finished: When the run directory holds a finished search with the same
            settings, read its results back instead of refusing (notebooks, whose cells
            run again after a lost session). An unfinished one is resumed either way.
        distribution: For the distributed chief: it serves the oracle to the workers
            instead of training, then writes the results as a single process does.
        mirrored: Spread each trial over this machine's GPUs with
            `tf.distribute.MirroredStrategy`.
        prepared: Data already prepared from `config.data` (`ktlab compare` prepares it
            once for all its runs); None prepares it here.

    Returns:
        The run's results.

    Raises:
        KtlabError: For bad input, before anything is written; and, after the search,
            `SearchFailedError` when no trial completed, or
            `distributed.TooManyFailedTrialsError` when too many failed in a row (both
            leave `histories.jsonl` and `trials.csv` in the run directory).
    """
    if distribution is not None and distribution.role != "chief":
        raise ConfigError("run_search runs a search in one process or the distributed chief; "
                          "a worker runs run_worker")
    if verbose:
        progress.show_progress()
    with progress.muted(not verbose):
        return _search(config, hypermodel, callbacks, progress_bars=progress_bars,
                       resume=resume, reuse_finished=reuse_finished,
                       distribution=distribution, mirrored=mirrored, prepared=prepared)


def _search(config: Config, hypermodel: keras_tuner.HyperModel | None,
            callbacks: Sequence[keras.callbacks.Callback], *, progress_bars: bool,
            resume: bool, reuse_finished: bool,
            distribution: distributed.Distribution | None, mirrored: bool,
            prepared: PreparedData | None) -> RunResult:
    started = time.perf_counter()
    if hypermodel is not None:
        # The run directory's config.json names the class that was tuned, so that a
        # resumed search with the same class is recognised, and no other is.
        model_class = type(hypermodel)
        config = dataclasses.replace(config, model=dataclasses.replace(
            config.model, name=f"{model_class.__module__}:{model_class.__qualname__}"))
    if prepared is None:
        spec = None
        if hypermodel is not None:
            spec = model_registry.ModelSpec(type(hypermodel),
                                            data_kind=getattr(hypermodel, "data_kind", "series"))
        prepared = make_pipeline(config, spec).prepare()
    folds = prepared.folds() if config.tuner.validation == "walk_forward" else None
    if hypermodel is None:
        hypermodel = make_hypermodel(config, prepared)
    check_search(config, hypermodel, folds)
    if distribution is not None:
        distributed.check_port_free(distribution)
    if reuse_finished and not config.run.overwrite and finished_search(config):
        LOGGER.info(f"ktlab: {config.run_dir} holds this finished search; its results are "
                    f"read back (pass overwrite to run it again)")
        return load_result(config, config.run_dir, prepared)
    search_callbacks = trial_callbacks.trial_callbacks(config, config.run_dir, callbacks)
    run_dir, resuming = prepare_run_dir(config, resume=resume)
    if not resuming:
        # The marker comes first, so that a search killed at any later moment leaves a
        # run directory that a rerun recognises and resumes.
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / RUN_MARKER, config.to_dict())
    listener = TrialEndListener(config, run_dir, folds, resuming=resuming)
    with distributed.environment(None):
        tuner = build_search_tuner(config, hypermodel, folds, run_dir,
                                   run_dir / "histories.jsonl", listener, resuming=resuming,
                                   mirrored=mirrored)
    listener.tuner = tuner
    seed_everything(config)
    action = "resuming the" if resuming else "a"
    LOGGER.info(f"ktlab: {action} {config.tuner.name} search of the {config.model_label} "
                f"model on {prepared.description}; run directory {run_dir}")
    for notice in prepared.notices:
        LOGGER.info(f"ktlab: {notice}")
    if resuming:
        LOGGER.info(f"ktlab: {listener.progress.trials} trials had finished; an interrupted "
                    f"one runs again")
    quiet_known_warnings()
    try:
        if distribution is None:
            tuner.search(**hypermodels.fit_data(hypermodel, prepared),
                         epochs=config.tuner.max_epochs,
                         callbacks=search_callbacks, shuffle=False,
                         verbose=1 if progress_bars else 0)
        else:
            from pipelines import workers

            workers.serve_chief(tuner, distribution, listener)
    except RuntimeError as error:
        if not distributed.is_failure_limit(error):
            raise
        distributed.settle_failed_trial(tuner.oracle, tuner.oracle.end_order[-1])
        raise _stopped_by_failures(config, run_dir) from None
    except distributed.TooManyFailedTrialsError:
        raise _stopped_by_failures(config, run_dir) from None
    listener.prune_now()
    return finish_run(config, prepared, tuner, run_dir, started)


def seed_everything(config: Config) -> None:
    """Seeds Python, NumPy and the backend; with `run.deterministic`, TensorFlow's ops too.

    Deterministic ops give the same scores for the same seed on the same machine, at a
    cost in speed that depends on the model (some kernels have no deterministic version).
    """
    if config.run.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.run.seed)


def quiet_known_warnings() -> None:
    """Hides warnings that repeat every trial and change nothing a user can do."""
    # Hyperband reloads a promoted configuration's weights but not its optimizer state
    # (keras-tuner's design); Keras warns about it in every promoted trial.
    warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
    # keras-tuner takes the best of a diverged trial's all-NaN scores; the trial's record
    # already says that it failed and why.
    warnings.filterwarnings("ignore", message="All-NaN (slice|axis) encountered",
                            category=RuntimeWarning)
    # The Bayesian oracle's Gaussian process often hits its length-scale bound on small
    # spaces; the warning repeats every trial.
    warnings.filterwarnings("ignore", message="The optimal value found for dimension",
                            module="sklearn")


class TrialEndListener:
    """Logs each finished trial and deletes the checkpoints no one will load again.

    It keeps each trial's status as the histories record it, from the `trial_end` record
    it is given, so it never reads the histories again; a resumed search (and the
    distributed chief, whose workers write their own files) reads them.
    """

    def __init__(self, config: Config, run_dir: pathlib.Path, folds: Any, *,
                 resuming: bool = False) -> None:
        self.run_dir = run_dir
        self.prune = not config.run.keep_checkpoints
        self.tuner: Any = None
        self.statuses: dict[str, str] = {}
        plan = progress.Plan.of(config.tuner, folds=len(folds) if folds else 1)
        self.progress = progress.Progress(plan, config.tuner.objective, config.direction)
        if resuming:
            trials = self.read_statuses()
            if trials is not None:
                ended = trials[trials["status"] != "incomplete"]
                best = tuners.best_trial_id(ended, config.direction)
                self.progress = progress.Progress(
                    plan, config.tuner.objective, config.direction, done_trials=len(ended),
                    done_epochs=int(ended["epochs_trained"].sum()),
                    best=None if best is None else float(
                        ended.set_index("trial_id").loc[best, "score"]))

    def __call__(self, record: dict[str, Any]) -> None:
        self.statuses[record["trial_id"]] = record["status"]
        self.progress(record)
        self.prune_now()

    def read_statuses(self) -> Any:
        """Reads every trial's status from the histories files; returns the trials."""
        try:
            trials = tuners.load_trials(self.run_dir)
        except tuners.HistoryFileError:
            return None
        self.statuses.update(zip(trials["trial_id"], trials["status"], strict=True))
        return trials

    def prune_now(self) -> None:
        if not self.prune or self.tuner is None:
            return
        try:
            checkpoints.prune_checkpoints(self.tuner, self.statuses)
        except OSError as error:
            # A checkpoint that cannot be deleted costs disk space, not the search.
            warnings.warn(f"could not delete a checkpoint ({error})", stacklevel=2)


def check_search(config: Config, hypermodel: Any, folds: Any) -> None:
    """Refuses settings the tuner or the model would refuse, before anything is written.

    keras-tuner checks some settings only when a tuner is built (a grid over a continuous
    range, walk-forward validation with Hyperband, too few trials for the genetic
    algorithm, an unknown oracle option), so the tuner is built once in a scratch folder
    that is thrown away.

    Raises:
        ConfigError: Naming the setting and the fix.
    """

    model = hypermodel.build(keras_tuner.HyperParameters())
    metrics = ["loss", *metric_names(model)]
    objective = config.tuner.objective
    allowed = [*(f"val_{name}" for name in metrics), *metrics]
    if objective not in allowed:
        raise ConfigError(f"objective {objective!r} is not a metric of the {config.model_label} "
                          f"model; use one of {', '.join(allowed)}")
    allowed += MEASURED
    for name in config.tuner.objectives:
        if name not in allowed:
            raise ConfigError(f"objective {name!r} in --objectives is not a metric of the "
                              f"{config.model_label} model; use {', '.join(allowed)}")
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as scratch:
        scratch_dir = pathlib.Path(scratch) / "check"
        with distributed.environment(None):
            try:
                build_search_tuner(config, hypermodel, folds, scratch_dir, scratch_dir / "h.jsonl",
                             None, resuming=False, mirrored=False)
            except (TypeError, ValueError) as error:
                # keras-tuner rejects an argument that neither the oracle nor the tuner takes.
                reason = str(error).strip().splitlines()[0]
                raise ConfigError(f"tuner settings: {reason}; check tuner.options against the "
                                  f"oracle's arguments in tuners/") from None


def metric_names(model: Any) -> list[str]:
    """The names of the metrics a compiled model reports, besides its loss."""
    names = []
    for metric in (model.get_compile_config() or {}).get("metrics") or []:
        if isinstance(metric, str):
            names.append(metric)
        elif isinstance(metric, dict):
            names.append(metric.get("config", {}).get("name") or metric.get("class_name"))
    return [name for name in names if name]


def build_search_tuner(config: Config, hypermodel: Any, folds: Any, run_dir: pathlib.Path,
                 history_path: pathlib.Path, on_trial_end: Any, *, resuming: bool,
                 mirrored: bool) -> Any:

    tuner_config = config.tuner
    extra: dict[str, Any] = {}
    if mirrored:
        extra["distribution_strategy"] = tf.distribute.MirroredStrategy()
    try:
        return tuners.build_tuner(
            tuner_config.name, hypermodel, directory=run_dir, project_name="tuner",
            objective=keras_tuner.Objective(tuner_config.objective, config.direction),
            max_epochs=tuner_config.max_epochs,
            factor=tuner_config.factor, hyperband_iterations=tuner_config.hyperband_iterations,
            max_trials=tuner_config.max_trials,
            num_initial_points=tuner_config.num_initial_points, seed=config.run.seed,
            executions_per_trial=tuner_config.executions_per_trial, overwrite=False,
            history_path=history_path,
            max_consecutive_failed_trials=tuner_config.max_consecutive_failed_trials,
            validation=tuner_config.validation, folds=folds, on_trial_end=on_trial_end,
            pruner=pruning.make_pruner(tuner_config.pruner, tuner_config.pruner_grace,
                                       tuner_config.pruner_startup_trials),
            objectives=[keras_tuner.Objective(tuner_config.objective, config.direction),
                        *tuner_config.objectives[1:]] if tuner_config.objectives else (),
            **tuner_config.options, **extra)
    except tuners.TunerConfigError as error:
        if not resuming:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise ConfigError(str(error)) from None
    except (ValueError, RuntimeError, KeyError) as error:
        if not resuming:
            raise
        # A search killed while keras-tuner wrote its state leaves a file cut short.
        reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise ConfigError(f"cannot reload the search state in {run_dir / 'tuner'} ({reason}); "
                          f"pass --overwrite to start afresh") from None


def _stopped_by_failures(config: Config, run_dir: pathlib.Path) -> KtlabError:
    """Writes `trials.csv` and the plots of a search that too many failures ended."""

    trials = tuners.load_trials(run_dir)
    trials.to_csv(run_dir / "trials.csv", index=False)
    plots.write_plots(run_dir)
    limit = config.tuner.max_consecutive_failed_trials
    failed = int((trials["status"] == "failed").sum())
    return distributed.TooManyFailedTrialsError(
        f"{limit} trials in a row failed (the --max-consecutive-failed-trials limit), so the "
        f"search stopped after {len(trials)} trials, {failed} of them failed; see "
        f"{run_dir / 'trials.csv'} for the reasons, narrow the search space (e.g. the "
        f"learning-rate range) and rerun with --overwrite")

