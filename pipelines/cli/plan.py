"""What `ktlab tune --dry-run` prints: the plan of a search, without importing TensorFlow.

The data is read, checked and split by the run's own pipeline (`pipelines.data` imports
TensorFlow only when a split's dataset is built, which a dry run never asks for); the
trials and epochs come from the plans the search itself uses (`pipelines.run.progress.Plan`,
`tuners.plans`); the run directory's fate from `pipelines.run.run_dir.planned_use`. Nothing
is written.

A user's model class (`--model FILE.py:CLASS`) is not imported: it subclasses
`keras_tuner.HyperModel`, so importing it imports TensorFlow. Its data kind (a series or
a table) and its presets are then unknown, so the dry run names the data source without
its split sizes (`ktlab data --model FILE.py:CLASS` shows them) and lists only the
`model.search_space` ranges of the configuration.

```
ktlab tune --dry-run
ktlab tune --tuner bayesian --max-trials 5 --max-epochs 4 --dry-run
```
"""

from __future__ import annotations

import json
from typing import Any

from hypermodels import registry as model_registry
from pipelines.config import Config
from pipelines.data import SeriesPipeline, StockPipeline, sources
from pipelines.errors import ConfigError
from pipelines.run import build, progress, run_dir
from tuners import errors as tuner_errors
from tuners import registry as tuner_registry
from tuners.plans import population, rungs, schedule, schedule_report


def describe_plan(config: Config, resume: bool = False) -> str:
    """Data and split sizes, model and search space, trials and epochs, run directory.

    Args:
        config: The run's resolved configuration.
        resume: Whether the search was asked to resume (`--resume`).

    Returns:
        The plan as lines of plain text.

    Raises:
        ConfigError: For data that cannot be used (the line `ktlab tune` prints), or
            tuner options that the strategy's plan refuses.
    """
    user_class = model_registry.is_reference(config.model.name)
    lines = ["ktlab tune --dry-run: the plan; nothing is trained or written."]
    folds = 1
    if user_class:
        source = config.data.source or "named by your class once it is imported"
        lines += [f"data: {source}",
                  "  split sizes: they follow your class's data kind, which a dry run does "
                  "not import (it imports TensorFlow); ktlab data with the same settings "
                  "shows them"]
    else:
        data_lines, folds = _data_lines(config)
        lines += data_lines
    lines += _model_lines(config, user_class)
    lines += _tuner_lines(config, folds)
    lines.append(_run_dir_line(config, resume))
    return "\n".join(lines)


def _data_lines(config: Config) -> tuple[list[str], int]:
    """The data's source, rows and splits, read and split by the run's own pipeline."""
    pipeline = build.make_pipeline(config)
    if isinstance(pipeline, StockPipeline):
        # Loaded here, as `prepare()` would load it, to count the rows before the warm-up
        # of the rolling features and the first window are cut off.
        frame = sources.load_stock_frame(pipeline.source, date_column=pipeline.date_column,
                                         target_column=pipeline.target_column,
                                         fill=pipeline.fill)
        prepared = pipeline.prepare(frame)
        rows = (f"{len(frame)} rows, {frame.index[0].date()} .. {frame.index[-1].date()}"
                if len(frame) else "0 rows")
    elif isinstance(pipeline, SeriesPipeline):
        # Its notices state the steps, the dates and the gaps.
        prepared = pipeline.prepare()
        rows = f"{prepared.frequency.name} series"
    else:
        prepared = pipeline.prepare()
        rows = f"{sum(len(split) for split in prepared.splits.values())} rows"
    lines = [f"data: {prepared.description} ({prepared.task}, target {prepared.target})",
             f"  source     {config.source}: {rows}",
             *(f"  {notice}" for notice in prepared.notices)]
    lines += [_split_line(name, split) for name, split in prepared.splits.items()]
    lines.append(f"  input shape {prepared.input_shape}; the test split is held out of the "
                 f"search")
    if config.tuner.validation != "walk_forward":
        return lines, 1
    folds = prepared.folds()
    lines.append(f"  walk-forward validation: {len(folds)} folds, each trial trains one "
                 f"model per fold")
    for fold in folds:
        lines += [_split_line(f"fold {fold.index} {name}", split, width=17)
                  for name, split in (("train", fold.train), ("validation", fold.validation))]
    return lines, len(folds)


def _split_line(name: str, split: Any, width: int = 10) -> str:
    span = ""
    if len(split) and hasattr(split.index[0], "date"):
        span = f"  {split.index[0].date()} .. {split.index[-1].date()}"
    return f"  {name:<{width}} {len(split):>6} samples{span}"


def _model_lines(config: Config, user_class: bool) -> list[str]:
    """The model, its preset, and the search space it will be built with."""
    model = config.model
    if user_class:
        ranges = dict(model.search_space)
        lines = [f"model: {model.name} (your class, imported where the search starts; "
                 f"its presets are not shown)"]
    else:
        ranges = model_registry.resolve(model.name).arguments(model.space, model.search_space)
        lines = [f"model: {model.name}, preset {model.space}"]
    width = max((len(name) for name in ranges), default=0)
    lines += [f"  {name:<{width}}  {json.dumps(value)}" for name, value in ranges.items()]
    lines.append("  every other hyperparameter keeps the model's own range" if ranges
                 else "  every hyperparameter keeps the model's own range")
    return lines


def _tuner_lines(config: Config, folds: int) -> list[str]:
    """The strategy, and the trials and epochs it plans."""
    tuner = config.tuner
    spec = tuner_registry.TUNERS[tuner.name]
    lines = [f"tuner: {tuner.name}, objective {tuner.objective} ({config.direction}), seed "
             f"{config.run.seed}"]
    try:
        plan = progress.Plan.of(tuner, folds=folds)
        if spec.budget == "epochs":
            lines += _epoch_budget_lines(config, spec)
    except tuner_errors.TunerConfigError as error:
        raise ConfigError(f"tuner settings: {error}") from None
    trainings = tuner.executions_per_trial * folds
    if spec.budget == "epochs":
        each = f" (each trial trains {trainings} models)" if trainings > 1 else ""
        lines.append(f"plan: {plan.trials} trials, {round(plan.epochs)} epochs in all{each}")
        return lines
    each = f" x {trainings} models per trial" if trainings > 1 else ""
    stops = (f"early stopping (patience {tuner.patience})" if tuner.pruner == "none" else
             f"early stopping (patience {tuner.patience}) and the {tuner.pruner} pruner")
    lines.append(f"plan: at most {plan.trials} trials x {tuner.max_epochs} epochs{each} = at "
                 f"most {plan.epochs} epochs; {stops} can end a trial sooner")
    return lines


def _epoch_budget_lines(config: Config, spec: tuner_registry.TunerSpec) -> list[str]:
    """An epoch-budget strategy's own plan: Hyperband's brackets, ASHA's rungs, PBT's
    population; a strategy registered with another planner shows only its totals."""
    tuner = config.tuner
    options = tuner.options
    if spec.plan is None:
        hyperband = schedule.keras_tuner_schedule(tuner.max_epochs, tuner.factor,
                                                  tuner.hyperband_iterations)
        return ["  " + line for line in schedule_report.format_schedule(hyperband).splitlines()]
    planner = spec.plan.partition(":")[0]
    if planner == rungs.__name__:
        min_epochs = options.get("min_epochs", 1)
        budgets = rungs.rung_epochs(tuner.max_epochs, tuner.factor, min_epochs)
        sizes = rungs.rung_sizes(tuner.max_epochs, tuner.factor, tuner.hyperband_iterations,
                                 min_epochs=min_epochs, epoch_budget=options.get("epoch_budget"),
                                 max_trials=options.get("max_trials"))
        return [f"  rungs at {', '.join(map(str, budgets))} epochs; trials per rung "
                f"{', '.join(map(str, sizes))} (when trials run one after another)"]
    if planner == population.__name__:
        members = population.population_plan(
            tuner.max_epochs, tuner.factor, tuner.hyperband_iterations,
            population_size=options.get("population_size"),
            perturbation_interval=options.get("perturbation_interval"),
            epoch_budget=options.get("epoch_budget"))
        return [f"  population {members.population_size}, intervals ending at epochs "
                f"{', '.join(map(str, members.interval_ends))}"]
    return []


def _run_dir_line(config: Config, resume: bool) -> str:
    """Where the run goes, and whether ktlab tune would start, resume, replace or refuse it."""
    try:
        directory = config.run_dir
    except ConfigError:
        return ("run directory: named after the data, which your class names once it is "
                "imported; pass --data or --run-name to know it now")
    try:
        use = run_dir.planned_use(config, resume=resume)
    except ConfigError as error:
        return f"run directory: {directory} (ktlab tune would refuse it: {error})"
    fate = {"new": "new; ktlab tune creates it" if not directory.exists()
            else "empty; ktlab tune writes into it",
            "resume": "holds an unfinished search with these settings; ktlab tune resumes it",
            "overwrite": "exists; --overwrite replaces it"}[use]
    return f"run directory: {directory} ({fate})"
