"""`ktlab compare`: search strategies side by side, at equal epoch budgets, over seeds.

Every tuner searches the same pipeline and search space. Hyperband's schedule fixes how
many epochs it trains; every trial-budget tuner (Bayesian, random, genetic) gets
`max_trials = round(hyperband_epochs / max_epochs)` trials of `max_epochs` epochs, so both
plan the same number of epochs within one trial's epochs. Each (tuner, seed) run is an
ordinary `ktlab tune` run directory under the comparison's folder.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import pathlib
import shutil
import time
from typing import Any

import numpy as np
import pandas as pd

import tuners
from pipelines import plots, progress
from pipelines.build import make_hypermodel, make_pipeline
from pipelines.checks import validate
from pipelines.config import Config
from pipelines.data import PreparedData
from pipelines.errors import ConfigError
from pipelines.progress import LOGGER
from pipelines.run_dir import (
    RUN_MARKER,
    finished_search,
    first_differences,
    read_saved_config,
    search_differences,
)
from tuners import schedule

DEFAULT_TUNERS = ("hyperband", "bayesian", "random")
SEED_SPACING = 1000
TABLE_COLUMNS = ["tuner", "seed", "best_val_loss", "test_mse", "test_mae", "baseline_test_mse",
                 "baseline_test_mae", "trials", "epochs", "failed_trials", "seconds", "run_dir"]


@dataclasses.dataclass
class CompareResult:
    """What `run_compare` leaves behind.

    Attributes:
        out_dir: The comparison's folder: `report.md`, `comparison.csv`, plots, one run
            directory per tuner and seed.
        table: One row per tuner and seed, as in `comparison.csv`.
        summary: One row per tuner: means and standard deviations over seeds.
        report: The text of `report.md`.
        budget: The planned epochs and trials per tuner.
        run_dirs: `{(tuner, seed): run directory}`.
        figures: Paths of the plots written.
    """

    out_dir: pathlib.Path
    table: pd.DataFrame
    summary: pd.DataFrame
    report: str
    budget: dict[str, dict[str, int]]
    run_dirs: dict[tuple[str, int], pathlib.Path]
    figures: list[pathlib.Path]


def seeds_from(count_or_list: str | int | list[int], base: int) -> list[int]:
    """Seeds from a count (`3` -> base, base+1000, base+2000) or an explicit list.

    keras-tuner seeds a trial's sampling with seed, seed+1, ..., so neighbouring seeds
    share most of their configurations; seeds 1,000 apart do not.

    Raises:
        ConfigError: For a count < 1, a seed < 1 or a repeated seed.
    """
    if isinstance(count_or_list, str):
        parts = [part.strip() for part in count_or_list.split(",") if part.strip()]
        if not parts:
            raise ConfigError("--seeds must be a count such as 3 or a list such as 1,2,3, got "
                              "nothing")
        try:
            numbers = [int(part) for part in parts]
        except ValueError:
            raise ConfigError(f"--seeds must be a count such as 3 or a list such as 1,2,3, got "
                              f"{count_or_list!r}") from None
        count_or_list = numbers[0] if len(numbers) == 1 else numbers
    if isinstance(count_or_list, int):
        if count_or_list < 1:
            raise ConfigError(f"--seeds must be >= 1, got {count_or_list}")
        return [base + SEED_SPACING * index for index in range(count_or_list)]
    seeds = list(count_or_list)
    if len(set(seeds)) != len(seeds) or min(seeds) < 1:
        raise ConfigError(f"--seeds must be distinct whole numbers >= 1, got {seeds}")
    return seeds


def plan_budget(config: Config, tuner_names: list[str]) -> dict[str, dict[str, int]]:
    """The planned epochs and trials of each tuner, matched to Hyperband's schedule.

    Returns:
        `{tuner: {"trials": ..., "epochs": ..., "max_epochs": ...}}`.
    """
    tuner = config.tuner
    hyperband = schedule.keras_tuner_schedule(tuner.max_epochs, tuner.factor,
                                              tuner.hyperband_iterations)
    trials = max(1, round(hyperband.total_epochs / tuner.max_epochs))
    budget = {}
    for name in tuner_names:
        if tuners.TUNERS[name].budget == "epochs":
            budget[name] = {"trials": hyperband.total_trials, "epochs": hyperband.total_epochs,
                            "max_epochs": tuner.max_epochs}
        else:
            budget[name] = {"trials": trials, "epochs": trials * tuner.max_epochs,
                            "max_epochs": tuner.max_epochs}
    return budget


def redraw(out_dir: pathlib.Path) -> list[pathlib.Path]:
    """Redraws a comparison's anytime plot and every run's plots from what is on disk."""
    table = pd.read_csv(out_dir / "comparison.csv")
    first_run = out_dir / pathlib.Path(table["run_dir"].iloc[0]).name
    objective = json.loads((first_run / "config.json").read_text())["tuner"]["objective"]
    trials_by_tuner: dict[str, list[pd.DataFrame]] = {}
    written = []
    for row in table.itertuples():
        run_dir = out_dir / pathlib.Path(row.run_dir).name
        trials_by_tuner.setdefault(row.tuner, []).append(tuners.load_trials(run_dir))
        written += plots.write_plots(run_dir)
    path = out_dir / "plot_anytime.png"
    plots.plot_anytime(trials_by_tuner, objective).savefig(path, dpi=110)
    return [path, *written]


def check_tuner_names(config: Config, tuner_names: list[str]) -> None:
    """Checks `--tuners` against the registry and the validation, before anything runs.

    Raises:
        ConfigError: For an unknown or repeated name, or walk-forward validation with a
            tuner that resumes configurations from checkpoints.
    """
    unknown = [name for name in tuner_names if name not in tuners.TUNERS]
    if not tuner_names or unknown or len(set(tuner_names)) != len(tuner_names):
        raise ConfigError(f"--tuners must name distinct tuners from "
                          f"{', '.join(tuners.TUNERS)}; got {','.join(tuner_names)}")
    epoch_budget = [name for name in tuner_names if tuners.TUNERS[name].budget == "epochs"]
    if config.tuner.validation == "walk_forward" and epoch_budget:
        raise ConfigError(f"walk-forward validation cannot be compared with "
                          f"{', '.join(epoch_budget)}, which resume configurations from "
                          f"checkpoints; use --validation holdout or leave them out of --tuners")


def run_compare(config: Config, tuner_names: list[str] | None = None,
                seeds: list[int] | None = None, *, verbose: bool = True,
                prepared: PreparedData | None = None,
                reuse_finished: bool = False) -> CompareResult:
    """Runs every tuner with every seed at equal budgets and writes the comparison.

    ```python
    result = run_compare(load_config(), ["hyperband", "random"], seeds=[1, 1001, 2001])
    print(result.report)
    ```

    Args:
        config: The base configuration; its tuner budget (max_epochs, factor) sets
            Hyperband's schedule, and `run.output_dir/run.run_name` the output folder.
        tuner_names: The tuners to compare (default: hyperband, bayesian, random).
        seeds: The seeds (default: 3 seeds from `config.run.seed`, 1,000 apart).
        verbose: Print a line per run.
        prepared: Data already prepared from `config` (the command line checks the data
            before it imports TensorFlow); None prepares it here.
        reuse_finished: Continue the comparison in an existing folder with the same
            settings instead of refusing it (notebooks, after a lost session): finished
            runs are read back, an interrupted one resumes, the others run; a comparison
            whose every run had finished is returned as it was saved.

    Returns:
        The comparison's results.

    Raises:
        KtlabError: For bad input, before anything is written.
    """
    # The search imports TensorFlow; the command line imports this module before it
    # checks its input, so the import waits until a comparison runs.
    from pipelines.search import check_search, run_search

    if verbose:
        progress.show_progress()
    tuner_names = list(tuner_names or DEFAULT_TUNERS)
    seeds = seeds or seeds_from(3, config.run.seed)
    check_tuner_names(config, tuner_names)
    budget = plan_budget(config, tuner_names)
    out_dir = pathlib.Path(config.run.output_dir) / (
        config.run.run_name or f"compare-{config.model_label}-{config.data_name}")
    runs = []
    for name in tuner_names:
        for seed in seeds:
            run_config = copy.deepcopy(config)
            run_config.tuner.name = name
            run_config.tuner.max_trials = budget[name]["trials"]
            run_config.run.seed = seed
            run_config.run.output_dir = str(out_dir)
            run_config.run.run_name = f"{name}-seed{seed}"
            validate(run_config)
            runs.append(run_config)
    # Every run shares one prepared data set; every setting is checked before anything is
    # written or replaced.
    if prepared is None:
        prepared = make_pipeline(config).prepare()
    folds = prepared.folds() if config.tuner.validation == "walk_forward" else None
    for run_config in runs:
        check_search(run_config, make_hypermodel(run_config, prepared), folds)
    if reuse_finished and not config.run.overwrite and (out_dir / "budget.json").is_file():
        _check_reusable(out_dir, budget, runs)
        if all(finished_search(run_config) for run_config in runs) and (
                out_dir / "report.md").is_file():
            with progress.muted(not verbose):
                LOGGER.info(f"ktlab compare: {out_dir} holds this finished comparison; its "
                            f"saved results are shown")
            return _saved(out_dir, budget)
    elif out_dir.exists() and any(out_dir.iterdir()):
        if not config.run.overwrite:
            raise ConfigError(f"comparison directory {out_dir} already exists; pass --overwrite "
                              f"to replace it or --run-name to keep both")
        if not (out_dir / "comparison.csv").exists() and not (out_dir / "budget.json").exists():
            raise ConfigError(f"{out_dir} is not a ktlab comparison (no comparison.csv); "
                              f"refusing to overwrite it, choose another --run-name")
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "budget.json").write_text(json.dumps(budget, indent=2) + "\n")
    started = time.perf_counter()
    rows, trials_by_tuner, run_dirs = [], {}, {}
    for number, run_config in enumerate(runs, start=1):
        with progress.muted(not verbose):
            LOGGER.info(f"ktlab compare: run {number}/{len(runs)}: {run_config.tuner.name}, "
                        f"seed {run_config.run.seed}")
        result = run_search(run_config, verbose=False, prepared=prepared,
                            reuse_finished=reuse_finished)
        name, seed = run_config.tuner.name, run_config.run.seed
        run_dirs[(name, seed)] = result.run_dir
        trials_by_tuner.setdefault(name, []).append(result.trials)
        rows.append(_row(name, seed, result))
        with progress.muted(not verbose):
            LOGGER.info(f"  best {run_config.tuner.objective} "
                        f"{result.metrics['best_score']:.4g}, test mse "
                        f"{result.metrics['test'].get('mse', float('nan')):.4g}, "
                        f"{result.metrics['trials']} trials, {result.metrics['epochs']} "
                        f"epochs, {result.seconds:.0f} s")
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    table.to_csv(out_dir / "comparison.csv", index=False)
    summary = summarise(table)
    report = format_report(config, budget, seeds, table, summary, prepared,
                           time.perf_counter() - started)
    (out_dir / "report.md").write_text(report)
    figure_path = out_dir / "plot_anytime.png"
    plots.plot_anytime(trials_by_tuner, config.tuner.objective).savefig(figure_path, dpi=110)
    return CompareResult(out_dir=out_dir, table=table, summary=summary, report=report,
                         budget=budget, run_dirs=run_dirs, figures=[figure_path])


def _check_reusable(out_dir: pathlib.Path, budget: dict[str, Any], runs: list[Config]) -> None:
    """Refuses to continue a comparison folder whose budget or runs' settings differ.

    Raises:
        ConfigError: Naming the first difference and the fix.
    """
    if json.loads((out_dir / "budget.json").read_text()) != budget:
        raise ConfigError(f"{out_dir} holds a comparison with other tuners or budgets; choose "
                          f"another --run-name to keep both")
    for run_config in runs:
        marker = run_config.run_dir / RUN_MARKER
        if marker.is_file():
            differences = search_differences(read_saved_config(run_config.run_dir), run_config)
            if differences:
                raise ConfigError(f"{out_dir} holds a comparison with other settings "
                                  f"({first_differences(differences)}); choose another "
                                  f"--run-name to keep both")


def _saved(out_dir: pathlib.Path, budget: dict[str, Any]) -> CompareResult:
    """A finished comparison as it was saved: its table, summary and report."""
    table = pd.read_csv(out_dir / "comparison.csv")
    run_dirs = {(row.tuner, int(row.seed)): out_dir / pathlib.Path(row.run_dir).name
                for row in table.itertuples()}
    return CompareResult(out_dir=out_dir, table=table, summary=summarise(table),
                         report=(out_dir / "report.md").read_text(), budget=budget,
                         run_dirs=run_dirs, figures=[out_dir / "plot_anytime.png"])


def _row(name: str, seed: int, result: Any) -> dict[str, Any]:
    metrics = result.metrics
    baseline = metrics["baseline"]["test"]
    return {"tuner": name, "seed": seed, "best_val_loss": metrics["best_score"],
            "test_mse": metrics["test"].get("mse"), "test_mae": metrics["test"].get("mae"),
            "baseline_test_mse": baseline.get("mse"), "baseline_test_mae": baseline.get("mae"),
            "trials": metrics["trials"], "epochs": metrics["epochs"],
            "failed_trials": metrics["failed_trials"], "seconds": metrics["seconds"],
            "run_dir": str(result.run_dir)}


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """One row per tuner: mean and standard deviation over seeds, sums of the costs."""
    grouped = table.groupby("tuner", sort=False)
    summary = pd.DataFrame({
        "seeds": grouped["seed"].count(),
        "best_val_loss_mean": grouped["best_val_loss"].mean(),
        "best_val_loss_std": grouped["best_val_loss"].std(ddof=1),
        "test_mse_mean": grouped["test_mse"].mean(),
        "test_mse_std": grouped["test_mse"].std(ddof=1),
        "baseline_test_mse": grouped["baseline_test_mse"].first(),
        "trials_mean": grouped["trials"].mean(),
        "epochs_mean": grouped["epochs"].mean(),
        "seconds_mean": grouped["seconds"].mean(),
        "failed_trials": grouped["failed_trials"].sum(),
    })
    return summary.reset_index()


def format_report(config: Config, budget: dict[str, dict[str, int]], seeds: list[int],
                  table: pd.DataFrame, summary: pd.DataFrame, prepared: PreparedData,
                  seconds: float) -> str:
    """The markdown report: the budget first, then the results per tuner and per seed."""
    tuner = config.tuner
    hyperband = schedule.keras_tuner_schedule(tuner.max_epochs, tuner.factor,
                                              tuner.hyperband_iterations)
    objective = tuner.objective
    lines = ["# Tuner comparison", "",
             f"**Budget.** Hyperband with max_epochs={tuner.max_epochs}, factor={tuner.factor}"
             f", {tuner.hyperband_iterations} iteration(s) plans {hyperband.total_trials} "
             f"trials and {hyperband.total_epochs} epochs; each trial-budget tuner gets "
             f"round(Hyperband epochs / max_epochs) trials of {tuner.max_epochs} epochs. "
             "Planned per tuner: "
             + ", ".join(f"{name} {plan['trials']} trials / {plan['epochs']} epochs"
                         for name, plan in budget.items())
             + f". Early stopping (patience {tuner.patience}) can end trials sooner: the "
               "epochs column counts what was trained.", "",
             f"**Setup.** Model {config.model.name} (search space `{config.model.space}`), "
             f"data {config.source}, objective {tuner.objective}, seeds "
             f"{', '.join(map(str, seeds))}, total wall time {seconds:.0f} s.", "",
             "## Per tuner (mean ± std over seeds)", "",
             f"| tuner | best {objective} | test MSE ({prepared.units} units) | naive test MSE | "
             "trials | epochs trained | wall time (s) | failed trials |",
             "|---|---|---|---|---|---|---|---|"]
    for row in summary.itertuples():
        lines.append(
            f"| {row.tuner} | {_mean_std(row.best_val_loss_mean, row.best_val_loss_std)} | "
            f"{_mean_std(row.test_mse_mean, row.test_mse_std)} | "
            f"{_number(row.baseline_test_mse)} | {row.trials_mean:.1f} | {row.epochs_mean:.1f}"
            f" | {row.seconds_mean:.0f} | {row.failed_trials} |")
    lines += ["", "## Per run", "",
              f"| tuner | seed | best {objective} | test MSE | test MAE | trials | epochs | "
              "seconds |", "|---|---|---|---|---|---|---|---|"]
    for row in table.itertuples():
        lines.append(f"| {row.tuner} | {row.seed} | {_number(row.best_val_loss)} | "
                     f"{_number(row.test_mse)} | {_number(row.test_mae)} | {row.trials} | "
                     f"{row.epochs} | {row.seconds:.0f} |")
    lines += ["", f"Best {objective} is the search's objective (on the scaled target); test scores "
                  f"are the chosen model's on the held-out {prepared.held_out}, in "
                  f"{prepared.units} units, beside the naive forecast ({prepared.baseline}).",
              "",
              "![anytime](plot_anytime.png)", ""]
    return "\n".join(lines)


def _mean_std(mean: float, std: float) -> str:
    if std is None or np.isnan(std):
        return _number(mean)
    return f"{_number(mean)} ± {_number(std)}"


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    return f"{value:.4g}"
