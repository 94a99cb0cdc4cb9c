"""`run_search(config)`: the work behind `ktlab tune`, callable from notebooks.

Data flows one way: pipeline -> splits -> tuner.search -> histories on disk -> reports.
Every check of the input happens before the run directory is created, so bad input
leaves nothing half-written.

Nothing is lost to an interruption: keras-tuner saves its oracle after every trial, so
running the same command again (or `ktlab tune --resume RUN_DIR`) continues the search
where it stopped, running again only the trial that was interrupted. `run_worker` is a
distributed worker's part; `run_search` also runs the distributed chief
(`pipelines/distributed.py`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import time
import warnings
from typing import Any

import pandas as pd

from pipelines import distributed, sources
from pipelines.config import Config, search_differences
from pipelines.data import PreparedData, StockPipeline, TabularPipeline, WalkForward, score
from pipelines.errors import ConfigError, KtlabError

RUN_MARKER = "config.json"
# Written last by `finish_run`: a run directory that holds it holds a finished search.
FINISHED_MARKER = "metrics.json"


class SearchFailedError(KtlabError):
    """No trial of the search completed."""


@dataclasses.dataclass
class RunResult:
    """What a finished search leaves behind, for notebooks and reports.

    Attributes:
        run_dir: The run directory with every artifact.
        config: The resolved configuration.
        best_hyperparameters: The best trial's hyperparameter values.
        metrics: The contents of `metrics.json`.
        trials: One row per trial, as in `trials.csv`.
        seconds: Wall time of the search and the final evaluation.
        prepared: The prepared data the search used.
        tuner: The keras-tuner tuner (its oracle holds every trial).
        best_model: The best model, as saved to `best_model.keras`.
    """

    run_dir: pathlib.Path
    config: Config
    best_hyperparameters: dict[str, Any]
    metrics: dict[str, Any]
    trials: pd.DataFrame
    seconds: float
    prepared: PreparedData
    tuner: Any
    best_model: Any


def make_pipeline(config: Config) -> StockPipeline | TabularPipeline:
    """The pipeline that `config` asks for: stock windows for the LSTM, a table for dense.

    Raises:
        ConfigError: If the data source does not suit the model.
    """
    data = config.data
    source = config.source
    if config.model.name == "lstm":
        if source in sources.BUNDLED_TABLES:
            raise ConfigError(f"the lstm model forecasts a price series, but {source!r} is a "
                              f"table; use --model dense or --data AAPL")
        return StockPipeline(
            source, lookback=data.lookback, test_size=data.test_size,
            validation_size=data.validation_size, target=data.target,
            rolling_window=data.rolling_window,
            moving_average_window=data.moving_average_window, calendar=data.calendar,
            log_returns=data.log_returns, batch_size=data.batch_size,
            walk_forward=WalkForward(data.train_window, data.validation_window, data.step),
            fill=data.fill, date_column=data.date_column, target_column=data.target_column)
    if sources.is_bundled_ticker(source):
        raise ConfigError(f"the dense model takes a table, but {source!r} is a price series; "
                          f"use --model lstm or --data diabetes")
    table_sizes = {"test_size": data.test_size, "validation_size": data.validation_size}
    defaults = {"test_size": 0.2, "validation_size": 0.2}
    for key, value in table_sizes.items():
        # Stock defaults are counted in days; a table takes fractions.
        if value == getattr(type(data)(), key):
            table_sizes[key] = defaults[key]
    return TabularPipeline(source, target_column=data.target_column, task=data.task,
                           fill=data.fill, seed=config.run.seed, batch_size=data.batch_size,
                           **table_sizes)


def make_hypermodel(config: Config, prepared: PreparedData) -> Any:
    """The hypermodel that `config` names, with its search-space overrides.

    Raises:
        ConfigError: For an unknown override or an invalid range.
    """
    import hypermodels

    overrides = config.model.hypermodel_arguments()
    try:
        if config.model.name == "lstm":
            return hypermodels.LSTMHyperModel(input_shape=prepared.input_shape, **overrides)
        return hypermodels.DenseHyperModel(input_shape=prepared.input_shape, task=prepared.task,
                                           n_classes=prepared.n_classes, **overrides)
    except TypeError as error:
        raise ConfigError(f"model.search_space: {error}; see the hypermodel's arguments in "
                          f"hypermodels/{config.model.name}.py") from None
    except ValueError as error:
        raise ConfigError(f"model.search_space: {error}") from None


def prepare_run_dir(config: Config, *, resume: bool = False) -> tuple[pathlib.Path, bool]:
    """Checks that the run directory can be written; clears it, or finds a search to resume.

    An existing run directory is cleared with `overwrite`; without it, one that holds an
    unfinished search with the same data, model, search space, tuner and seed is resumed,
    and any other is refused: a finished search (it has `metrics.json`), an unfinished
    one with other settings, or a folder that ktlab did not write.

    Args:
        config: The run's configuration.
        resume: Whether the user asked to resume (`--resume`): then there must be a
            search to resume.

    Returns:
        The run directory, and whether it holds a search to resume.

    Raises:
        ConfigError: If the output directory cannot be written, or the run directory
            cannot be used as described above.
    """
    output_dir = pathlib.Path(config.run.output_dir)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot create output directory {output_dir} ({error.strerror}); "
                          f"choose another --output-dir") from None
    if not output_dir.is_dir() or not os.access(output_dir, os.W_OK | os.X_OK):
        raise ConfigError(f"output directory {output_dir} is not writable; choose another "
                          f"--output-dir")
    run_dir = config.run_dir
    marked = (run_dir / RUN_MARKER).is_file()
    if resume and not marked:
        raise ConfigError(f"{run_dir} holds no search to resume (no {RUN_MARKER}); pass a run "
                          f"directory that ktlab tune wrote")
    if not (run_dir.exists() and any(run_dir.iterdir())):
        return run_dir, False
    if config.run.overwrite:
        if not marked:
            raise ConfigError(f"{run_dir} is not a ktlab run directory (no {RUN_MARKER}); "
                              f"refusing to overwrite it, choose another --run-name")
        shutil.rmtree(run_dir)
        return run_dir, False
    if not marked:
        raise ConfigError(f"run directory {run_dir} already exists; pass --overwrite to "
                          f"replace it or --run-name to keep both")
    if (run_dir / FINISHED_MARKER).exists():
        raise ConfigError(f"run directory {run_dir} holds a finished search; pass --overwrite "
                          f"to start afresh or --run-name to keep both")
    limit = config.tuner.max_consecutive_failed_trials
    if _failure_streak(run_dir / "tuner") >= limit:
        # keras-tuner looks for the streak in the whole search, so a resumed search would
        # stop again as soon as its next trial ends.
        raise ConfigError(f"run directory {run_dir} holds a search that stopped because {limit} "
                          f"trials in a row failed; narrow the search space and pass "
                          f"--overwrite to start afresh, or --run-name to keep both")
    differences = search_differences(read_saved_config(run_dir), config)
    if differences:
        raise ConfigError(f"run directory {run_dir} holds an unfinished search with other "
                          f"settings: {_first_differences(differences)}; resume it with its "
                          f"own (ktlab tune --resume {run_dir}), or pass --overwrite or "
                          f"--run-name")
    return run_dir, True


def read_saved_config(run_dir: pathlib.Path) -> dict[str, Any]:
    """A run directory's `config.json`, as plain data.

    Raises:
        ConfigError: If it is missing or unreadable.
    """
    path = run_dir / RUN_MARKER
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{run_dir} is not a ktlab run directory (no {RUN_MARKER}); pass "
                          f"a run directory that ktlab tune wrote") from None
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read {path} ({error}); pass --overwrite to start "
                          f"afresh") from None
    if not isinstance(saved, dict):
        raise ConfigError(f"{path} does not hold a ktlab configuration; pass --overwrite to "
                          f"start afresh")
    return saved


def run_search(config: Config, *, verbose: bool = True, resume: bool = False,
               distribution: distributed.Distribution | None = None,
               mirrored: bool = False, prepared: PreparedData | None = None) -> RunResult:
    """Runs one search end to end and writes its run directory.

    The run directory holds `config.json`, `histories.jsonl`, `trials.csv`,
    `best_hyperparameters.json`, `best_model.keras`, `preprocessor.joblib` and
    `metrics.json`, plus keras-tuner's own files under `tuner/`. An unfinished search in
    the run directory, with the same settings, is resumed (see `prepare_run_dir`).

    ```python
    result = run_search(load_config("configs/default.toml"))
    print(result.metrics["test"], result.metrics["baseline"]["test"])
    ```

    Args:
        config: The run's configuration.
        verbose: Print a line per finished trial and a summary table.
        resume: Require a search to resume (`ktlab tune --resume`).
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
    import keras

    import tuners
    from pipelines import report

    if distribution is not None and distribution.role != "chief":
        raise ConfigError("run_search runs a search in one process or the distributed chief; "
                          "a worker runs run_worker")
    started = time.perf_counter()
    if prepared is None:
        prepared = make_pipeline(config).prepare()
    folds = prepared.folds() if config.tuner.validation == "walk_forward" else None
    hypermodel = make_hypermodel(config, prepared)
    check_search(config, hypermodel, folds)
    if distribution is not None:
        distributed.check_port_free(distribution)
    run_dir, resuming = prepare_run_dir(config, resume=resume)
    if not resuming:
        # The marker comes first, so that a search killed at any later moment leaves a
        # run directory that a rerun recognises and resumes.
        run_dir.mkdir(parents=True, exist_ok=True)
        _write_json(run_dir / RUN_MARKER, config.to_dict())
    tuner_config = config.tuner
    listener = _TrialEndListener(report.TrialPrinter(enabled=verbose), run_dir,
                                 prune=not config.run.keep_checkpoints)
    with distributed.environment(None):
        tuner = _build_tuner(config, hypermodel, folds, run_dir, run_dir / "histories.jsonl",
                             listener, resuming=resuming, mirrored=mirrored)
    listener.tuner = tuner
    keras.utils.set_random_seed(config.run.seed)
    if verbose:
        action = "resuming the" if resuming else "a"
        print(f"ktlab: {action} {tuner_config.name} search of the {config.model.name} model "
              f"on {prepared.description}; run directory {run_dir}")
        if resuming:
            finished = sum(trial.status in ("COMPLETED", "FAILED")
                           for trial in tuner.oracle.trials.values())
            print(f"ktlab: {finished} trials had finished; an interrupted one runs again")
    # Hyperband reloads a promoted configuration's weights but not its optimizer state
    # (keras-tuner's design); Keras warns about it in every promoted trial.
    warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
    # keras-tuner takes the best of a diverged trial's all-NaN scores; the trial's record
    # already says that it failed and why.
    warnings.filterwarnings("ignore", message="All-NaN (slice|axis) encountered",
                            category=RuntimeWarning)
    # The Bayesian oracle's Gaussian process often hits its length-scale bound on small
    # spaces; the warning repeats every trial and changes nothing a user can do.
    warnings.filterwarnings("ignore", message="The optimal value found for dimension",
                            module="sklearn")
    try:
        if distribution is None:
            tuner.search(**prepared.fit_kwargs(), epochs=tuner_config.max_epochs,
                         callbacks=tuners.default_callbacks(tuner_config.objective,
                                                            tuner_config.patience),
                         verbose=0)
        else:
            _serve_chief(tuner, distribution, listener, verbose=verbose)
    except RuntimeError as error:
        if not distributed.is_failure_limit(error):
            raise
        distributed.settle_failed_trial(tuner.oracle, tuner.oracle.end_order[-1])
        raise _stopped_by_failures(config, run_dir) from None
    except distributed.TooManyFailedTrialsError:
        raise _stopped_by_failures(config, run_dir) from None
    listener.prune_now()
    return finish_run(config, prepared, tuner, run_dir, started, verbose=verbose)


def run_worker(config: Config, distribution: distributed.Distribution, *,
               verbose: bool = True, mirrored: bool = False) -> int:
    """Runs a distributed worker: trains the trials the chief hands out, until it says stop.

    The worker appends its histories to `histories-<tuner_id>.jsonl` in the chief's run
    directory, which it must see (a shared filesystem); the chief writes the results.

    Args:
        config: The search's configuration: the chief's, as in its `config.json`.
        distribution: The worker's id, the chief's address and how long to wait for it.
        verbose: Print a line per finished trial.
        mirrored: Spread each trial over this machine's GPUs.

    Returns:
        How many trials this worker ran.

    Raises:
        KtlabError: If no chief answers within the timeout, the run directory is not the
            chief's, or the settings differ from the chief's.
    """
    import grpc
    import keras

    import tuners
    from pipelines import report

    if distribution.role != "worker":
        raise ConfigError("run_worker runs a distributed worker; the chief runs run_search")
    distributed.wait_for_chief(distribution)
    run_dir = config.run_dir
    if not (run_dir / RUN_MARKER).is_file():
        raise ConfigError(f"no {RUN_MARKER} in {run_dir}: a worker writes into the chief's run "
                          f"directory, so give it the chief's --output-dir and --run-name on a "
                          f"filesystem both see")
    differences = search_differences(read_saved_config(run_dir), config)
    if differences:
        raise ConfigError(f"this worker's settings differ from the chief's: "
                          f"{_first_differences(differences)}; start it with the chief's "
                          f"(ktlab tune --resume {run_dir} --distributed worker ...)")
    prepared = make_pipeline(config).prepare()
    folds = prepared.folds() if config.tuner.validation == "walk_forward" else None
    hypermodel = make_hypermodel(config, prepared)
    printer = report.TrialPrinter(enabled=verbose)
    tuner_config = config.tuner
    warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
    try:
        with distributed.environment(distribution):
            tuner = _build_tuner(config, hypermodel, folds, run_dir,
                                 run_dir / distribution.history_filename, printer,
                                 resuming=True, mirrored=mirrored)
            keras.utils.set_random_seed(config.run.seed)
            if verbose:
                print(f"ktlab: worker {distribution.tuner_id} of the chief at "
                      f"{distribution.address}; run directory {run_dir}", flush=True)
            tuner.search(**prepared.fit_kwargs(), epochs=tuner_config.max_epochs,
                         callbacks=tuners.default_callbacks(tuner_config.objective,
                                                            tuner_config.patience),
                         verbose=0)
    except grpc.RpcError as error:
        raise distributed.chief_error(distribution, error) from None
    if verbose:
        print(f"ktlab: worker {distribution.tuner_id} ran {printer.count} trials; the chief "
              f"writes the results to {run_dir}")
    return printer.count


class _TrialEndListener:
    """Prints each finished trial and deletes the checkpoints no one will load again."""

    def __init__(self, printer: Any, run_dir: pathlib.Path, prune: bool) -> None:
        self.printer = printer
        self.run_dir = run_dir
        self.prune = prune
        self.tuner: Any = None

    def __call__(self, record: dict[str, Any]) -> None:
        self.printer(record)
        self.prune_now()

    def prune_now(self) -> None:
        if not self.prune or self.tuner is None:
            return
        import tuners
        from tuners import checkpoints

        try:
            trials = tuners.load_trials(self.run_dir)
        except tuners.HistoryFileError:
            return
        statuses = dict(zip(trials["trial_id"], trials["status"], strict=True))
        try:
            checkpoints.prune_checkpoints(self.tuner, statuses)
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
    import tempfile

    import keras_tuner

    model = hypermodel.build(keras_tuner.HyperParameters())
    metrics = ["loss", *metric_names(model)]
    objective = config.tuner.objective
    allowed = [*(f"val_{name}" for name in metrics), *metrics]
    if objective not in allowed:
        raise ConfigError(f"objective {objective!r} is not a metric of the {config.model.name} "
                          f"model; use one of {', '.join(allowed)}")
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as scratch:
        scratch_dir = pathlib.Path(scratch) / "check"
        with distributed.environment(None):
            try:
                _build_tuner(config, hypermodel, folds, scratch_dir, scratch_dir / "h.jsonl",
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


def _build_tuner(config: Config, hypermodel: Any, folds: Any, run_dir: pathlib.Path,
                 history_path: pathlib.Path, on_trial_end: Any, *, resuming: bool,
                 mirrored: bool) -> Any:
    import tuners

    tuner_config = config.tuner
    extra = {}
    if mirrored:
        import tensorflow as tf

        extra["distribution_strategy"] = tf.distribute.MirroredStrategy()
    try:
        return tuners.build_tuner(
            tuner_config.name, hypermodel, directory=run_dir, project_name="tuner",
            objective=tuner_config.objective, max_epochs=tuner_config.max_epochs,
            factor=tuner_config.factor, hyperband_iterations=tuner_config.hyperband_iterations,
            max_trials=tuner_config.max_trials,
            num_initial_points=tuner_config.num_initial_points, seed=config.run.seed,
            executions_per_trial=tuner_config.executions_per_trial, overwrite=False,
            history_path=history_path,
            max_consecutive_failed_trials=tuner_config.max_consecutive_failed_trials,
            validation=tuner_config.validation, folds=folds, on_trial_end=on_trial_end,
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


def _serve_chief(tuner: Any, distribution: distributed.Distribution,
                 listener: _TrialEndListener, *, verbose: bool) -> None:
    from pipelines import report

    oracle = tuner.oracle
    # The chief trains nothing; the workers print their trials, the chief one line each.
    oracle.verbose = 0
    tuner.save()
    seen = len(oracle.end_order)

    def on_poll() -> None:
        nonlocal seen
        ended = oracle.end_order[seen:]
        if not ended:
            return
        seen += len(ended)
        # keras-tuner's `end_trial` saves the oracle before it lets go of the trial, and a
        # worker never saves the chief's oracle; saving again here means a chief killed now
        # does not run a finished trial again when it resumes.
        oracle.save()
        for trial_id in ended:
            trial = oracle.trials[trial_id]
            if verbose:
                score = "nan" if trial.score is None else report.format_value(trial.score)
                print(f"trial {trial_id} {str(trial.status).lower()}: score {score}", flush=True)
        listener.prune_now()

    if verbose:
        print(f"ktlab: chief listening on {distribution.address}; start workers with "
              f"`ktlab tune --distributed worker --oracle-address {distribution.address} "
              f"--tuner-id NAME` and the same settings", flush=True)
    distributed.serve(tuner, distribution, on_poll=on_poll)


def _stopped_by_failures(config: Config, run_dir: pathlib.Path) -> KtlabError:
    """Writes `trials.csv` and the plots of a search that too many failures ended."""
    import tuners
    from pipelines import plots

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


def _failure_streak(project_dir: pathlib.Path) -> int:
    """The longest run of failed trials, in the order they ended, in keras-tuner's files."""
    try:
        end_order = json.loads((project_dir / "oracle.json").read_text()).get("end_order", [])
    except (OSError, ValueError, AttributeError):
        return 0
    streak = longest = 0
    for trial_id in end_order:
        try:
            trial = json.loads((project_dir / f"trial_{trial_id}" / "trial.json").read_text())
        except (OSError, ValueError):
            trial = {}
        streak = streak + 1 if trial.get("status") == "FAILED" else 0
        longest = max(longest, streak)
    return longest


def _first_differences(differences: list[str], shown: int = 3) -> str:
    text = ", ".join(differences[:shown])
    if len(differences) > shown:
        text += f" and {len(differences) - shown} more"
    return text


def finish_run(config: Config, prepared: PreparedData, tuner: Any, run_dir: pathlib.Path,
               started: float, *, verbose: bool = True) -> RunResult:
    """Writes trials, the best model, its scores, predictions and plots after a search."""
    import joblib

    import tuners
    from pipelines import plots, report

    trials = tuners.load_trials(run_dir)
    trials.to_csv(run_dir / "trials.csv", index=False)
    best_trial = _best_trial(tuner, trials)
    if best_trial is None:
        plots.write_plots(run_dir)
        raise SearchFailedError(
            f"no trial completed (see {run_dir / 'trials.csv'} for the reasons); narrow the "
            f"search space or lower the learning-rate range")
    best_hyperparameters = best_trial.hyperparameters.values
    best_model = _best_model(tuner, best_trial, prepared, trials)
    best_model.save(run_dir / "best_model.keras")
    joblib.dump({"preprocessor": prepared.preprocessor, "target_scaler": prepared.target_scaler,
                 "feature_names": prepared.feature_names, "input_shape": prepared.input_shape,
                 "target": prepared.target, "task": prepared.task},
                run_dir / "preprocessor.joblib")
    _write_json(run_dir / "best_hyperparameters.json", best_hyperparameters)
    test_predictions = prepared.to_original_units(
        best_model.predict(prepared.splits["test"].dataset, verbose=0), "test")
    _predictions_frame(prepared, test_predictions).to_csv(run_dir / "predictions.csv",
                                                          index=False)
    metrics = {
        "objective": config.tuner.objective,
        "best_trial_id": best_trial.trial_id,
        "best_score": best_trial.score,
        "validation": prepared.evaluate(best_model, "validation"),
        "test": score(prepared.task, prepared.splits["test"].actual, test_predictions),
        "baseline": {"name": prepared.baseline, **prepared.baselines},
        "units": "price" if prepared.target in ("close", "return") else prepared.target,
        "trials": int(len(trials)),
        "epochs": int(trials["epochs_trained"].sum()) if len(trials) else 0,
        "failed_trials": int((trials["status"] == "failed").sum()) if len(trials) else 0,
        "seconds": round(time.perf_counter() - started, 1),
    }
    _write_json(run_dir / "metrics.json", metrics)
    plots.write_plots(run_dir)
    if verbose:
        print(report.summary_table(trials, metrics, config.tuner.objective))
        print(f"run directory: {run_dir}")
    return RunResult(run_dir=run_dir, config=config, best_hyperparameters=best_hyperparameters,
                     metrics=metrics, trials=trials, seconds=metrics["seconds"],
                     prepared=prepared, tuner=tuner, best_model=best_model)


def _best_trial(tuner: Any, trials: pd.DataFrame) -> Any:
    """The oracle's best trial among those that did not fail.

    keras-tuner ranks a trial whose loss went NaN after its first epoch by the score of
    the epochs before, so its own best trial can be one that diverged.
    """
    failed = set(trials.loc[trials["status"] == "failed", "trial_id"])
    ranked = tuner.oracle.get_best_trials(num_trials=len(tuner.oracle.trials))
    usable = [trial for trial in ranked if trial.trial_id not in failed]
    return usable[0] if usable else None


def _best_model(tuner: Any, trial: Any, prepared: PreparedData, trials: pd.DataFrame) -> Any:
    """The best trial's model: its checkpoint, or retrained after walk-forward validation.

    A walk-forward trial's checkpoint was fitted on its last fold's scaling, not on the
    holdout split's, so the best configuration is retrained on the holdout training split
    for the number of epochs that scored best.
    """
    if getattr(tuner, "validation", "holdout") != "walk_forward":
        return tuner.load_model(trial)
    import keras

    row = trials.set_index("trial_id").loc[trial.trial_id]
    epochs = int(row["best_epoch"]) + 1 if not pd.isna(row["best_epoch"]) else int(
        row["epochs"])
    keras.utils.set_random_seed(tuner.oracle.seed)
    model = tuner.hypermodel.build(trial.hyperparameters)
    tuner.hypermodel.fit(trial.hyperparameters, model, **prepared.fit_kwargs(), epochs=epochs,
                         verbose=0)
    return model


def _predictions_frame(prepared: PreparedData, predictions: Any) -> pd.DataFrame:
    split = prepared.splits["test"]
    frame = pd.DataFrame({"actual": split.actual, "predicted": predictions})
    if split.anchor is not None:
        frame.insert(0, "date", [day.date().isoformat() for day in split.index])
        frame["baseline"] = split.anchor
    return frame


def _write_json(path: pathlib.Path, data: Any) -> None:
    from tuners.history import to_json_value

    path.write_text(json.dumps(to_json_value(data), indent=2) + "\n")
