"""`ktlab compare`: search strategies side by side, at equal epoch budgets, over seeds.

Every tuner searches the same pipeline and search space. Hyperband's schedule fixes how
many epochs it trains; every trial-budget tuner (Bayesian, random, genetic) keeps asking
for trials of up to `max_epochs` epochs until its trials have trained as many epochs as
Hyperband did with the same seed, within one trial, up to a hard cap on trials
(`pipelines.compare.budget`), so budgets are equal in epochs trained. Each (tuner, seed)
run is an ordinary `ktlab tune` run directory under the comparison's folder; the report
(`pipelines.compare.report`) says in words whether the tuners differ beyond the seed
spread and whether their models beat the naive forecast (`pipelines.compare.significance`).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import pathlib
import shutil
import time
from typing import Any

import pandas as pd

import tuners
from pipelines.compare import budget as compare_budget
from pipelines.compare import significance
from pipelines.compare.report import BudgetFacts, format_report, read_findings, summarise
from pipelines.config import Config
from pipelines.config.checks import validate
from pipelines.data import PreparedData
from pipelines.errors import ConfigError
from pipelines.reports import plots
from pipelines.run import progress
from pipelines.run.build import make_hypermodel, make_pipeline
from pipelines.run.progress import LOGGER
from pipelines.run.run_dir import (
    RUN_MARKER,
    finished_search,
    first_differences,
    read_saved_config,
    search_differences,
)
from tuners.plans import schedule

DEFAULT_TUNERS = ("hyperband", "bayesian", "random")
SEED_SPACING = 1000
TABLE_COLUMNS = ["tuner", "seed", "best_val_loss", "test_mse", "test_mae", "baseline_test_mse",
                 "baseline_test_mae", "trials", "planned_epochs", "epochs", "failed_trials",
                 "seconds", "test_rows", "dm_statistic", "dm_p_value", "run_dir"]


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
        findings: The sentences that head the report: budgets, significance, and the
            naive forecast.
    """

    out_dir: pathlib.Path
    table: pd.DataFrame
    summary: pd.DataFrame
    report: str
    budget: dict[str, dict[str, int]]
    run_dirs: dict[tuple[str, int], pathlib.Path]
    figures: list[pathlib.Path]
    findings: list[str] = dataclasses.field(default_factory=list)


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

    A trial-budget tuner's `epochs` is its target, Hyperband's planned epochs (matched to
    Hyperband's epochs trained when it runs beside it), and its `trials` the hard cap
    (`compare_budget.trial_cap`).

    Returns:
        `{tuner: {"trials": ..., "epochs": ..., "max_epochs": ...}}`.
    """
    tuner = config.tuner
    hyperband = schedule.keras_tuner_schedule(tuner.max_epochs, tuner.factor,
                                              tuner.hyperband_iterations)
    trials = compare_budget.trial_cap(tuner, hyperband.total_epochs)
    budget = {}
    for name in tuner_names:
        if tuners.TUNERS[name].budget == "epochs":
            # Hyperband's schedule, or the oracle's own plan (PBT's population of members).
            try:
                planned_trials, planned_epochs = tuners.TUNERS[name].planned_budget(
                    tuner.max_epochs, tuner.factor, tuner.hyperband_iterations, tuner.options)
            except tuners.TunerConfigError as error:
                raise ConfigError(f"tuner.options for {name}: {error}") from None
            budget[name] = {"trials": planned_trials, "epochs": planned_epochs,
                            "max_epochs": tuner.max_epochs}
        else:
            budget[name] = {"trials": trials, "epochs": hyperband.total_epochs,
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
    """Checks `--tuners` against the registry, before anything runs.

    Every tuner takes either validation; with walk-forward, the epoch-budget tuners
    continue each fold from its own checkpoint (`tuners.runners.walk_forward`).

    Raises:
        ConfigError: For an unknown or repeated name, or a pruner with an epoch-budget
            tuner.
    """
    unknown = [name for name in tuner_names if name not in tuners.TUNERS]
    if not tuner_names or unknown or len(set(tuner_names)) != len(tuner_names):
        raise ConfigError(f"--tuners must name distinct tuners from "
                          f"{', '.join(tuners.TUNERS)}; got {','.join(tuner_names)}")
    epoch_budget = [name for name in tuner_names if tuners.TUNERS[name].budget == "epochs"]
    if config.tuner.pruner != "none" and epoch_budget:
        raise ConfigError(f"--pruner {config.tuner.pruner} works with the trial-budget tuners, "
                          f"not {', '.join(epoch_budget)}, which stop trials by their own "
                          f"schedule; use --pruner none or leave them out of --tuners")


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
    from pipelines.recipe import run_search
    from pipelines.run.search import check_search, check_tuner, folds_of

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
    folds = folds_of(config, prepared)
    trainings = compare_budget.trainings_per_epoch(config, folds)
    reference = compare_budget.reference_tuner(tuner_names)
    compare_budget.set_planned_targets(runs, budget, trainings)
    for run_config in runs:
        hypermodel = make_hypermodel(run_config, prepared)
        check_search(run_config, hypermodel)
        check_tuner(run_config, hypermodel, folds)
    if reuse_finished and not config.run.overwrite and (out_dir / "budget.json").is_file():
        _check_reusable(out_dir, budget, runs, reference)
        compare_budget.match_reference(
            runs, reference, compare_budget.saved_reference_epochs(runs, reference))
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
    rows, run_dirs = [], {}
    trials_by_tuner: dict[str, list[pd.DataFrame]] = {name: [] for name in tuner_names}
    for number, run_config in enumerate(compare_budget.running_order(runs, reference),
                                        start=1):
        with progress.muted(not verbose):
            LOGGER.info(f"ktlab compare: run {number}/{len(runs)}: {run_config.tuner.name}, "
                        f"seed {run_config.run.seed}")
        result = run_search(run_config, verbose=False, prepared=prepared,
                            reuse_finished=reuse_finished)
        name, seed = run_config.tuner.name, run_config.run.seed
        run_dirs[(name, seed)] = result.run_dir
        trials_by_tuner[name].append(result.trials)
        if name == reference:
            compare_budget.match_reference(runs, reference, {seed: result.metrics["epochs"]})
        rows.append(_row(name, seed, result, prepared,
                         compare_budget.planned_epochs(run_config, budget, trainings)))
        with progress.muted(not verbose):
            LOGGER.info(f"  best {run_config.tuner.objective} "
                        f"{result.metrics['best_score']:.4g}, test mse "
                        f"{result.metrics['test'].get('mse', float('nan')):.4g}, "
                        f"{result.metrics['trials']} trials, {result.metrics['epochs']} "
                        f"epochs, {result.seconds:.0f} s")
    rows.sort(key=lambda row: (tuner_names.index(row["tuner"]), seeds.index(row["seed"])))
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    table.to_csv(out_dir / "comparison.csv", index=False)
    summary = summarise(table)
    facts = BudgetFacts(
        kinds={name: tuners.TUNERS[name].budget for name in tuner_names}, reference=reference,
        trial_epochs=config.tuner.max_epochs * trainings,
        caps={name: plan["trials"] for name, plan in budget.items()})
    report = format_report(config, budget, seeds, table, summary, prepared,
                           time.perf_counter() - started, facts)
    (out_dir / "report.md").write_text(report)
    figure_path = out_dir / "plot_anytime.png"
    plots.plot_anytime(trials_by_tuner, config.tuner.objective).savefig(figure_path, dpi=110)
    return CompareResult(out_dir=out_dir, table=table, summary=summary, report=report,
                         budget=budget, run_dirs=run_dirs, figures=[figure_path],
                         findings=read_findings(report))


def _check_reusable(out_dir: pathlib.Path, budget: dict[str, Any], runs: list[Config],
                    reference: str | None) -> None:
    """Refuses to continue a comparison folder whose budget or runs' settings differ.

    A trial-budget run's epoch target comes from its reference run, which has not been
    read back yet, so the target it was saved with is taken as it is here.

    Raises:
        ConfigError: Naming the first difference and the fix.
    """
    if json.loads((out_dir / "budget.json").read_text()) != budget:
        raise ConfigError(f"{out_dir} holds a comparison with other tuners or budgets; choose "
                          f"another --run-name to keep both")
    for run_config in runs:
        marker = run_config.run_dir / RUN_MARKER
        if marker.is_file():
            saved = read_saved_config(run_config.run_dir)
            differences = search_differences(
                saved, compare_budget.with_saved_target(run_config, saved, reference))
            if differences:
                raise ConfigError(f"{out_dir} holds a comparison with other settings "
                                  f"({first_differences(differences)}); choose another "
                                  f"--run-name to keep both")


def _saved(out_dir: pathlib.Path, budget: dict[str, Any]) -> CompareResult:
    """A finished comparison as it was saved: its table, summary and report."""
    table = pd.read_csv(out_dir / "comparison.csv")
    run_dirs = {(row.tuner, int(row.seed)): out_dir / pathlib.Path(row.run_dir).name
                for row in table.itertuples()}
    report = (out_dir / "report.md").read_text()
    return CompareResult(out_dir=out_dir, table=table, summary=summarise(table),
                         report=report, budget=budget, run_dirs=run_dirs,
                         figures=[out_dir / "plot_anytime.png"],
                         findings=read_findings(report))


def _row(name: str, seed: int, result: Any, prepared: PreparedData,
         planned_epochs: float) -> dict[str, Any]:
    metrics = result.metrics
    baseline = metrics["baseline"]["test"]
    naive = significance.compare_with_naive(result.run_dir, prepared)
    return {"tuner": name, "seed": seed, "best_val_loss": metrics["best_score"],
            "test_mse": metrics["test"].get("mse"), "test_mae": metrics["test"].get("mae"),
            "baseline_test_mse": baseline.get("mse"), "baseline_test_mae": baseline.get("mae"),
            "trials": metrics["trials"], "planned_epochs": planned_epochs,
            "epochs": metrics["epochs"], "failed_trials": metrics["failed_trials"],
            "seconds": metrics["seconds"],
            "test_rows": None if naive is None else naive.rows,
            "dm_statistic": None if naive is None else naive.statistic,
            "dm_p_value": None if naive is None else naive.p_value,
            "run_dir": str(result.run_dir)}
