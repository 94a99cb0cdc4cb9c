"""The parts of one search that the recipe (`pipelines.recipe`) calls in order.

- `named_after`, `prepare_data`: the configuration that names a user's hypermodel, and the
  data its registry entry (or its `data_kind`) asks for;
- `check_search`: what the tuner or the model would refuse, before anything is written;
- `open_run`: the run directory, started, resumed or refused, with the trial listener;
- `build_tuner`: the tuner, built once;
- `search_here`: keras-tuner's search in this process (`pipelines.parallel.workers` has the
  chief's, which serves the same tuner to workers);
- `session`: the logging and warnings of a search, restored when it ends.
"""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import keras
import keras_tuner
import tensorflow as tf

import hypermodels
import tuners
from hypermodels import registry as model_registry
from pipelines.config import Config
from pipelines.data import PreparedData
from pipelines.errors import ConfigError
from pipelines.run import artifacts, progress
from pipelines.run.build import make_hypermodel, make_pipeline
from pipelines.run.listener import TrialEndListener
from pipelines.run.progress import LOGGER
from pipelines.run.run_dir import RUN_MARKER, prepare_run_dir, set_aside_path
from tuners import distribution as tuner_distribution
from tuners.observers import pruning
from tuners.results.objectives import MEASURED

# Whether this process was told that deterministic ops stay on (said once, in one line).
_DETERMINISM_SAID = False


@dataclasses.dataclass
class Run:
    """An opened run directory: where it is, whether a search resumes there, its listener."""

    dir: pathlib.Path
    resuming: bool
    listener: TrialEndListener
    # The old run that `--overwrite` set aside until the tuner is built, or None.
    aside: pathlib.Path | None = None


@contextlib.contextmanager
def session(verbose: bool) -> Iterator[None]:
    """Shows progress (or mutes it) and quiets known warnings for the length of a search.

    The warning filters and the root and `ktlab` loggers are put back as they were when the
    search ends, however it ends (an error, Ctrl-C), so that a notebook that runs two
    searches gets the same behaviour from both. keras-tuner's environment variables and
    module globals are put back by `tuners.distribution.environment`, and the garbage collector's
    freeze by the tuner (`tuners.tuner.Tuner.search`).
    """
    with progress.logging_restored(), warnings.catch_warnings():
        if verbose:
            progress.show_progress()
        with progress.muted(not verbose):
            quiet_known_warnings()
            yield


def named_after(config: Config, hypermodel: keras_tuner.HyperModel | None) -> Config:
    """The configuration with `model.name` naming a user's hypermodel class, if one is given.

    The run directory's config.json names the class that was tuned, so that a resumed
    search with the same class is recognised, and no other is.
    """
    if hypermodel is None:
        return config
    model_class = type(hypermodel)
    # A deep copy: the run may fill in the copy's data source, never the caller's.
    copy = config.model_copy(deep=True)
    copy.model.name = f"{model_class.__module__}:{model_class.__qualname__}"
    return copy


def prepare_data(config: Config, hypermodel: keras_tuner.HyperModel | None) -> PreparedData:
    """The data the model takes: windows of a series, or rows of a table.

    A user's hypermodel instance says which by its `data_kind` attribute (a series unless
    it says `"table"`); a configured model by its registry entry.
    """
    spec = None
    if hypermodel is not None:
        spec = model_registry.ModelSpec(type(hypermodel),
                                        data_kind=getattr(hypermodel, "data_kind", "series"))
    return make_pipeline(config, spec).prepare()


def build_hypermodel(config: Config, data: PreparedData) -> Any:
    """The configured model for the data's input shape (`pipelines.run.build`)."""
    return make_hypermodel(config, data)


def read_back(config: Config, data: PreparedData) -> artifacts.RunResult:
    """The results of the finished search with these settings in the run directory."""
    LOGGER.info(f"ktlab: {config.run_dir} holds this finished search; its results are "
                f"read back (pass overwrite to run it again)")
    return artifacts.load_result(config, config.run_dir, data)


def announce(config: Config, data: PreparedData, run: Run) -> None:
    """Logs what is about to run, the data's notices, and how far a resumed search got."""
    action = "resuming the" if run.resuming else "a"
    LOGGER.info(f"ktlab: {action} {config.tuner.name} search of the {config.model_label} "
                f"model on {data.description}; run directory {run.dir}")
    for notice in data.notices:
        LOGGER.info(f"ktlab: {notice}")
    if run.resuming:
        LOGGER.info(f"ktlab: {run.listener.progress.trials} trials had finished; an "
                    f"interrupted one runs again")


def folds_of(config: Config, data: PreparedData) -> Any:
    """The walk-forward folds, or None for holdout validation."""
    return data.folds() if config.tuner.validation == "walk_forward" else None


def open_run(config: Config, data: PreparedData, *, resume: bool) -> Run:
    """Opens the run directory: a new one, or an unfinished search to resume.

    Raises:
        ConfigError: For a run directory that cannot be used (`prepare_run_dir`).
    """
    aside = set_aside_path(config.run_dir)
    # Only a run that `--overwrite` sets aside now is put back when the tuner refuses.
    replacing = (config.run.overwrite and config.run_dir.is_dir()
                 and any(config.run_dir.iterdir()))
    run_dir, resuming = prepare_run_dir(config, resume=resume)
    listener = TrialEndListener(config, run_dir, folds_of(config, data), resuming=resuming)
    return Run(run_dir, resuming, listener, aside if replacing and aside.exists() else None)


def search_here(tuner: Any, data: PreparedData, config: Config,
                callbacks: Sequence[keras.callbacks.Callback], run: Run, *,
                progress_bars: bool = False) -> None:
    """Runs keras-tuner's search in this process.

    Raises:
        TooManyFailedTrialsError: When keras-tuner stopped after too many failed trials in
            a row (`trials.csv` then says why).
    """
    try:
        # The hypermodel asks the data for each trial's tuned batch size (`fit_data`).
        tuner.search(**hypermodels.fit_data(tuner.hypermodel, data),
                     epochs=config.tuner.max_epochs,
                     callbacks=list(callbacks), shuffle=False,
                     verbose=1 if progress_bars else 0)
    except RuntimeError as error:
        if not tuner_distribution.is_failure_limit(error):
            raise
        tuner_distribution.settle_failed_trial(tuner.oracle, tuner.oracle.end_order[-1])
        raise artifacts.stopped_by_failures(config, run.dir) from None


def seed_everything(config: Config) -> None:
    """Seeds Python, NumPy and the backend; with `run.deterministic`, TensorFlow's ops too.

    Deterministic ops give the same scores for the same seed on the same machine, at a
    cost in speed that depends on the model (some kernels have no deterministic version).
    """
    if config.run.deterministic:
        global _DETERMINISM_SAID
        tf.config.experimental.enable_op_determinism()
        if not _DETERMINISM_SAID:
            _DETERMINISM_SAID = True
            LOGGER.warning("ktlab: deterministic ops stay on in this process after the search "
                           "(TensorFlow cannot turn them off); restart it to train without")
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


def check_search(config: Config, hypermodel: Any) -> None:
    """Refuses settings the tuner or the model would refuse, before anything is written.

    The objective must be one of the model's metrics; the tuner's own checks run when it is
    built (`build_tuner`). A hypermodel with a `metrics()` method (ktlab's) names them
    without a model being built; any other is built once, with default hyperparameters.

    Raises:
        ConfigError: Naming the setting and the fix.
    """

    declared = getattr(hypermodel, "metrics", None)
    if callable(declared):
        metrics = ["loss", *(metric.name for metric in declared())]
    else:
        metrics = ["loss", *metric_names(hypermodel.build(keras_tuner.HyperParameters()))]
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


def metric_names(model: Any) -> list[str]:
    """The names of the metrics a compiled model reports, besides its loss."""
    names = []
    for metric in (model.get_compile_config() or {}).get("metrics") or []:
        if isinstance(metric, str):
            names.append(metric)
        elif isinstance(metric, dict):
            names.append(metric.get("config", {}).get("name") or metric.get("class_name"))
    return [name for name in names if name]


def build_tuner(config: Config, hypermodel: Any, data: PreparedData, run: Run, *,
                mirrored: bool = False) -> Any:
    """Builds the search's tuner in the run directory, once, and marks the directory as a run.

    keras-tuner checks some settings only when a tuner is built (a grid over a continuous
    range, too few trials for the genetic algorithm, an unknown oracle option); a new run
    directory that such a setting stopped is removed again, so bad input leaves nothing.

    Raises:
        ConfigError: Naming the setting and the fix.
    """
    if not run.resuming:
        # The marker comes first, so that a search killed at any later moment leaves a run
        # directory that a rerun recognises and resumes.
        run.dir.mkdir(parents=True, exist_ok=True)
        artifacts.write_json(run.dir / RUN_MARKER, config.to_dict())
    try:
        # Built as an ordinary tuner, also by the distributed chief
        # (`tuners.distribution.environment`).
        with tuner_distribution.environment(None):
            tuner = make_tuner(config, hypermodel, folds_of(config, data), run.dir,
                               run.dir / "histories.jsonl", run.listener,
                               resuming=run.resuming, mirrored=mirrored)
    except BaseException as error:
        if run.resuming:
            raise
        # A new run that did not get its tuner (a refused setting, Ctrl-C) leaves nothing,
        # and `--overwrite` puts the old run back.
        shutil.rmtree(run.dir, ignore_errors=True)
        if run.aside is not None:
            run.aside.rename(run.dir)
        if isinstance(error, ConfigError) or not isinstance(error, (TypeError, ValueError)):
            raise
        raise _settings_error(error) from None
    if run.aside is not None:
        shutil.rmtree(run.aside, ignore_errors=True)
    run.listener.tuner = tuner
    return tuner


def check_tuner(config: Config, hypermodel: Any, folds: Any) -> None:
    """Builds the tuner once in a scratch folder, for settings only a tuner build checks.

    `ktlab compare` checks every run's settings this way before it starts the first run.

    Raises:
        ConfigError: Naming the setting and the fix.
    """
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as scratch:
        scratch_dir = pathlib.Path(scratch) / "check"
        try:
            with tuner_distribution.environment(None):
                make_tuner(config, hypermodel, folds, scratch_dir, scratch_dir / "h.jsonl",
                           None, resuming=False, mirrored=False)
        except (TypeError, ValueError) as error:
            if isinstance(error, ConfigError):
                raise
            raise _settings_error(error) from None


def _settings_error(error: Exception) -> ConfigError:
    """One line for an argument that neither keras-tuner's oracle nor its tuner takes."""
    reason = str(error).strip().splitlines()[0]
    return ConfigError(f"tuner settings: {reason}; check tuner.options against the oracle's "
                       f"arguments in tuners/")


def make_tuner(config: Config, hypermodel: Any, folds: Any, run_dir: pathlib.Path,
               history_path: pathlib.Path, on_trial_end: Any, *, resuming: bool,
               mirrored: bool) -> Any:
    """The configured tuner over `run_dir`, from the registry of strategies (`tuners`).

    A worker builds its tuner here too, with its own histories file and trial listener.

    Raises:
        ConfigError: For a setting the tuner refuses, or a search state that cannot be
            reloaded.
    """
    tuner_config = config.tuner
    extra: dict[str, Any] = {}
    if mirrored:
        extra["distribution_strategy"] = tf.distribute.MirroredStrategy()
    objective = keras_tuner.Objective(tuner_config.objective, config.direction)
    try:
        return tuners.build_tuner(
            tuner_config.name, hypermodel, directory=run_dir, project_name="tuner",
            objective=objective, max_epochs=tuner_config.max_epochs,
            factor=tuner_config.factor,
            hyperband_iterations=tuner_config.hyperband_iterations,
            max_trials=tuner_config.max_trials,
            num_initial_points=tuner_config.num_initial_points, seed=config.run.seed,
            executions_per_trial=tuner_config.executions_per_trial, overwrite=False,
            history_path=history_path,
            max_consecutive_failed_trials=tuner_config.max_consecutive_failed_trials,
            validation=tuner_config.validation, folds=folds, on_trial_end=on_trial_end,
            pruner=pruning.make_pruner(tuner_config.pruner, tuner_config.pruner_grace,
                                       tuner_config.pruner_startup_trials),
            objectives=[objective, *tuner_config.objectives[1:]]
            if tuner_config.objectives else (),
            **tuner_config.options, **extra)
    except tuners.TunerConfigError as error:
        raise ConfigError(str(error)) from None
    except (ValueError, RuntimeError, KeyError) as error:
        if not resuming:
            raise
        # A search killed while keras-tuner wrote its state leaves a file cut short.
        reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise ConfigError(f"cannot reload the search state in {run_dir / 'tuner'} ({reason}); "
                          f"pass --overwrite to start afresh") from None
