"""The `ktlab` command line (also `python -m pipelines`).

```
ktlab data                    # summary of the prepared bundled AAPL data
ktlab tune                    # the main job: Hyperband on the LSTM, bundled AAPL data
ktlab tune --tuner bayesian --max-trials 20 --config configs/default.toml
ktlab brackets --max-epochs 81 --factor 3
ktlab tune --resume runs/lstm-hyperband-AAPL-seed42   # continue an interrupted search
ktlab predict runs/lstm-hyperband-AAPL-seed42 --data new_prices.csv   # forecast with a run
ktlab tune --distributed chief --oracle-address 127.0.0.1:8470   # then workers:
ktlab tune --distributed worker --oracle-address 127.0.0.1:8470 --tuner-id worker1
ktlab tune --workers 2        # a chief and 2 worker processes on this machine
```

Bad input prints one `ktlab: error: ...` line and exits with code 2, before TensorFlow
is imported: the command line, the config file and the data file are all checked first,
and TensorFlow is imported quietly (`pipelines.run.quiet`) only when a search is about to run.
"""

from __future__ import annotations

import argparse
import logging
import os
import pathlib
import sys
import warnings
from typing import Any

from hypermodels import registry as model_registry
from pipelines import config
from pipelines.cli import flags
from pipelines.data import PreparedData
from pipelines.errors import ConfigError, KtlabError
from pipelines.parallel import distributed
from pipelines.run import build, progress, quiet, run_dir
from tuners import distribution as tuner_distribution
from tuners.plans import schedule, schedule_report


def _flag_overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The settings given as flags, as `{section: {key: value}}`."""
    overrides: dict[str, dict[str, Any]] = {}
    for destination, (section, key) in flags.FLAG_KEYS.items():
        value = getattr(args, destination, None)
        if value is not None:
            overrides.setdefault(section, {})[key] = value
    return overrides


def _config_from_args(args: argparse.Namespace) -> config.Config:
    return config.load_config(args.config, _flag_overrides(args), args.sets)


def _prepare(settings: config.Config) -> PreparedData:
    """Reads and checks the data before TensorFlow is imported (unless a user's model
    class must be imported to know which data it takes)."""
    quiet.cache_jax_compilations(settings.run.output_dir)  # Before JAX is imported.
    if model_registry.is_reference(settings.model.name):
        quiet.import_tensorflow()
    prepared = build.make_pipeline(settings).prepare()
    if settings.tuner.validation == "walk_forward":
        # Cutting the folds now reports windows that do not fit the data before TensorFlow
        # is imported; the search reuses them.
        prepared.folds()
    return prepared


def _command_data(args: argparse.Namespace) -> int:
    prepared = _prepare(_config_from_args(args))
    print(prepared.summary())
    return 0


def _resumed_config(args: argparse.Namespace) -> config.Config:
    """The settings saved in `--resume RUN_DIR`, with any flags given on top."""
    if args.config is not None:
        raise ConfigError("--resume takes its settings from RUN_DIR/config.json; leave out "
                          "--config")
    if args.overwrite:
        raise ConfigError("--resume continues a search and --overwrite deletes it; pass one "
                          "of them")
    directory = pathlib.Path(args.resume).resolve()
    if not directory.is_dir():
        raise ConfigError(f"--resume {args.resume}: no such directory; pass a run directory "
                          f"that ktlab tune wrote")
    saved = run_dir.read_saved_config(directory)
    overrides = {section: dict(saved.get(section) or {}) for section in config.SECTIONS}
    for section, values in _flag_overrides(args).items():
        overrides[section].update(values)
    # The run directory is where it is now, whatever folder the search started from.
    overrides["run"].update(output_dir=str(directory.parent), run_name=directory.name,
                            overwrite=False)
    return config.load_config(None, overrides, args.sets)


def _command_tune(args: argparse.Namespace) -> int:
    distribution = distributed.resolve(args.distributed, args.oracle_address, args.tuner_id,
                                       args.chief_timeout)
    settings = _resumed_config(args) if args.resume else _config_from_args(args)
    _check_workers(args, settings, distribution)
    if args.dry_run:
        from pipelines.cli import plan

        print(plan.describe_plan(settings, resume=bool(args.resume)))
        return 0
    if distribution is not None and distribution.role == "worker":
        quiet.import_tensorflow()
        from pipelines.parallel import workers

        workers.run_worker(settings, distribution, mirrored=args.mirrored)
        return 0
    prepared = _prepare(settings)
    if settings.run.workers > 1 or settings.run.recycle_after:
        # Imported before TensorFlow, which it imports itself once the worker processes
        # have started: they import it at the same time.
        from pipelines.parallel import local_workers

        result = local_workers.run_with_workers(settings, resume=bool(args.resume),
                                                prepared=prepared)
    else:
        quiet.import_tensorflow()
        from pipelines import recipe
        from pipelines.parallel import workers

        searcher = None if distribution is None else workers.chief_searcher(distribution)
        result = recipe.run_search(settings, resume=bool(args.resume), searcher=searcher,
                                   mirrored=args.mirrored, prepared=prepared,
                                   progress_bars=args.verbose)
    from pipelines.run import summary as report

    if args.quiet:
        print(report.summary_table(result.trials, result.metrics,
                                   seconds=result.seconds_by_step))
        print(f"run directory: {result.run_dir}")
    return 0


def _check_workers(args: argparse.Namespace, settings: config.Config,
                   distribution: distributed.Distribution | None) -> None:
    """Refuses `--workers N` or `--recycle-after K` beside a role of its own or `--mirrored`.

    A worker's `config.json` holds the chief's `workers` and `recycle_after`, which are the
    chief's business: only a flag given to the worker itself is refused.
    """
    workers = settings.run.workers
    if workers > 1:
        if distribution is not None and (args.workers is not None
                                         or distribution.role == "chief"):
            raise ConfigError(f"--workers {workers} starts its own chief and workers on this "
                              f"machine; leave out --distributed {distribution.role} (or "
                              f"--workers)")
        if args.mirrored:
            raise ConfigError(f"--mirrored spreads every trial over all GPUs, which {workers} "
                              f"workers would share; pass --mirrored or --workers, not both")
    recycle = settings.run.recycle_after
    if not recycle:
        return
    if distribution is not None and (args.recycle_after is not None
                                     or distribution.role == "chief"):
        raise ConfigError(f"--recycle-after {recycle} restarts the worker processes that "
                          f"ktlab tune starts itself; leave out --distributed "
                          f"{distribution.role} (or --recycle-after)")
    if args.mirrored:
        raise ConfigError(f"--recycle-after {recycle} trains in worker processes, which "
                          f"--mirrored does not reach; pass --mirrored or --recycle-after, "
                          f"not both")


def _command_compare(args: argparse.Namespace) -> int:
    # Matplotlib takes a third of a second to import; only these two commands draw.
    from pipelines.compare import comparison as compare

    tuner_names = [name.strip() for name in args.tuners.split(",") if name.strip()]
    if args.tuner is None and tuner_names:
        # The settings are checked for one tuner; without --tuner, the first compared one
        # (so `--pruner median --tuners random,bayesian` is not refused for Hyperband).
        args.tuner = tuner_names[0]
    settings = _config_from_args(args)
    compare.check_tuner_names(settings, tuner_names)
    seeds = compare.seeds_from(args.seeds, settings.run.seed)
    prepared = _prepare(settings)
    quiet.import_tensorflow()
    result = compare.run_compare(settings, tuner_names, seeds, prepared=prepared)
    print(result.report)
    print(f"comparison directory: {result.out_dir}")
    return 0


def _command_plot(args: argparse.Namespace) -> int:
    from pipelines.compare import comparison as compare
    from pipelines.reports import plots

    directory = pathlib.Path(args.run_dir)
    if (directory / "comparison.csv").exists():
        written = compare.redraw(directory)
    elif any(directory.glob("histories*.jsonl")):
        written = plots.write_plots(directory)
    else:
        raise KtlabError(f"{directory} is neither a run directory (no histories.jsonl) nor a "
                         f"comparison (no comparison.csv); pass a folder that ktlab wrote")
    for path in written:
        print(path)
    return 0


def _command_importance(args: argparse.Namespace) -> int:
    # Reads the run's files only: scikit-learn and matplotlib, no TensorFlow.
    from pipelines.reports import importance

    directory = pathlib.Path(args.run_dir)
    if not directory.is_dir():
        raise KtlabError(f"{args.run_dir}: no such directory; pass a run directory that "
                         f"ktlab tune wrote")
    table = importance.run_importances(directory)
    written = importance.write_importance(directory, table)
    print(f"hyperparameter importance over {table.attrs['trials']} trials (random forest, "
          f"permutation importance; in-sample, indicative only):")
    print(importance.format_table(table))
    for path in written:
        print(path)
    return 0


def _command_predict(args: argparse.Namespace) -> int:
    # The run directory and the data are checked before TensorFlow is imported.
    from pipelines.run import predict

    frame = predict.predict_run(args.run_dir, data=args.data, output=args.output)
    print(frame.tail(5).to_string(index=False))
    print(f"{len(frame)} forecasts written to "
          f"{predict.forecast_path(args.run_dir, args.data, args.output)}")
    return 0


def _command_brackets(args: argparse.Namespace) -> int:
    for name, value, minimum in (("--max-epochs", args.max_epochs, 1),
                                 ("--factor", args.factor, 2),
                                 ("--hyperband-iterations", args.hyperband_iterations, 1)):
        if value < minimum:
            raise KtlabError(f"{name} must be >= {minimum}, got {value}")
    ours = schedule.keras_tuner_schedule(args.max_epochs, args.factor,
                                         args.hyperband_iterations)
    paper = schedule.paper_schedule(args.max_epochs, args.factor)
    print("keras-tuner's Hyperband (what `ktlab tune --tuner hyperband` runs):")
    print(schedule_report.format_schedule(ours))
    print()
    print("Li et al. (2018), Hyperband paper:")
    print(schedule_report.format_schedule(paper))
    print()
    print("Differences:")
    for line in schedule_report.compare_schedules(ours, paper) or ["none"]:
        print(f"  {line}")
    return 0


def _command_config(args: argparse.Namespace) -> int:
    from pipelines.cli import views

    settings, origins = config.resolve(args.config, _flag_overrides(args), args.sets)
    print(views.format_settings(settings, origins))
    return 0


def _command_init(args: argparse.Namespace) -> int:
    from pipelines.config import reference

    path = pathlib.Path(args.path)
    if path.exists():
        raise KtlabError(f"{path} already exists; pass another PATH or delete it first")
    path.write_text(reference.commented_toml(), encoding="utf-8")
    print(f"wrote {path}: every setting at its default; edit it, then ktlab tune --config "
          f"{path}")
    return 0


def _command_list(args: argparse.Namespace) -> int:
    from pipelines.cli import views

    print(views.format_catalogue())
    return 0


def _command_show(args: argparse.Namespace) -> int:
    from pipelines.cli import views

    print(views.format_run(pathlib.Path(args.run_dir), top=args.top))
    return 0


COMMANDS = {"data": _command_data, "tune": _command_tune, "compare": _command_compare,
            "plot": _command_plot, "predict": _command_predict, "brackets": _command_brackets,
            "importance": _command_importance, "config": _command_config,
            "init": _command_init, "list": _command_list, "show": _command_show}


def main(argv: list[str] | None = None) -> int:
    """Runs `ktlab` with `argv` (default: the process arguments) and returns the exit code."""
    quiet.set_environment()
    parser = flags.build_parser()
    if "_ARGCOMPLETE" in os.environ:
        # Shell completion (docs/getting-started.md): argcomplete answers and exits here.
        import argcomplete

        argcomplete.autocomplete(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_request:
        # argparse exits for --help and for bad flags; callers of main() get the code.
        return int(exit_request.code or 0)
    if args.command is None:
        parser.print_help()
        return 2
    if getattr(args, "verbose", False) and getattr(args, "quiet", False):
        print(f"ktlab {args.command}: error: --verbose and --quiet exclude each other; pass "
              f"one", file=sys.stderr)
        return 2
    # Called in-process (tests, notebooks), the command leaves logging, warnings and the
    # environment as it found them.
    with (progress.logging_restored(), warnings.catch_warnings(),
          tuner_distribution.environment_restored(quiet.JAX_CACHE_VARIABLES)):
        progress.show_progress(logging.WARNING if getattr(args, "quiet", False)
                               else logging.INFO, to_stdout=True)
        try:
            return COMMANDS[args.command](args)
        except KtlabError as error:
            print(f"ktlab: error: {error}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
