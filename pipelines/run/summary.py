"""Text reports: compact values and hyperparameters, and the summary after a search."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator
from typing import Any

import pandas as pd

from pipelines.run import final_pick
from tuners.results import objectives

# Short names keep a trial's line on one terminal row.
SHORT_NAMES = {"learning_rate": "lr", "batch_size": "batch", "num_layers": "layers",
               "dropout": "drop", "weight_decay": "wd", "optimizer": "opt",
               "activation": "act", "momentum": "mom", "lookback": "lookback"}


class Stopwatch:
    """The seconds of each named step of a run, in the order they ran.

    `pipelines.recipe.run_search` times the search and each step after it, so that the
    summary line says what a finished search still spends before it returns (the refit,
    the test scores, the plots, the importances).
    """

    SEARCH = "search"

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Times the block as step `name` (added to any time it already has)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = (self.seconds.get(name, 0.0)
                                  + time.perf_counter() - started)


def step_name(step: Any) -> str:
    """A pick or report step's name in the summary line: for ktlab's own steps their
    module's (`plots`, `importance`, `final retrain`: each module has one), for a step of
    yours its own name less `_step` (`my_report_step` is `my_report`)."""
    module = getattr(step, "__module__", None) or ""
    if module.split(".")[0] in ("pipelines", "tuners", "hypermodels"):
        return module.rsplit(".", 1)[-1].replace("_", " ")
    return getattr(step, "__name__", type(step).__name__).removesuffix("_step")


def timing_line(seconds: dict[str, float]) -> str:
    """`search 26.5 s; after it 3.9 s: refit 0.5 s, test scores 1.1 s, ...`.

    Steps under 0.05 s are left out of the list but counted in the total.
    """
    after = {name: value for name, value in seconds.items() if name != Stopwatch.SEARCH}
    parts = ", ".join(f"{name} {value:.1f} s" for name, value in after.items()
                      if value >= 0.05)
    search = (f"search {seconds[Stopwatch.SEARCH]:.1f} s; "
              if Stopwatch.SEARCH in seconds else "")
    return f"{search}after it {sum(after.values()):.1f} s{': ' + parts if parts else ''}"


def format_value(value: Any) -> str:
    """Formats a hyperparameter or score compactly: 1.2e-03, 0.35, 64, adam."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e4):
            return f"{value:.1e}"
        return f"{value:.4g}"
    return str(value)


def format_hyperparameters(values: dict[str, Any]) -> str:
    """`lr=1.2e-03 units=64 ...`, leaving out keras-tuner's own `tuner/...` entries."""
    return " ".join(f"{SHORT_NAMES.get(name, name)}={format_value(value)}"
                    for name, value in values.items() if not name.startswith("tuner/"))


def summary_table(trials: pd.DataFrame, metrics: dict[str, Any], top: int = 5,
                  seconds: dict[str, float] | None = None) -> str:
    """The summary logged after a search: counts, the best trials, and the scores.

    Args:
        trials: One row per trial, as `tuners.load_trials` returns.
        metrics: The contents of `metrics.json` (its `objective` and `direction` rank the
            trials).
        top: How many of the best trials to list.
        seconds: The run's timed steps (`RunResult.seconds_by_step`); without them the
            first line gives `metrics.json`'s seconds (the search and the evaluation).
    """
    objective = metrics["objective"]
    timing = timing_line(seconds) if seconds else f"{metrics['seconds']:.0f} s"
    lines = ["", f"{len(trials)} trials ({metrics['failed_trials']} failed), "
                 f"{metrics['epochs']} epochs, {timing}"]
    # The ranking follows the one rule that chose the best model: a trial that diverged
    # after its first epoch keeps the score of the epochs before, but is no candidate.
    direction = metrics.get("direction") or objectives.objective_direction(objective)
    ranked = objectives.rank_trials(trials, direction)
    if len(ranked):
        best = ranked.head(top)
        hp_columns = [column for column in best.columns if column.startswith("hp_")]
        table = best[["trial_id", "score", "epochs", "status", *hp_columns]].rename(
            columns={column: column[3:] for column in hp_columns})
        lines += [f"best {len(best)} trials by {objective} ({direction}imised):",
                  table.to_string(index=False, float_format=format_value)]
    return "\n".join([*lines, *score_lines(metrics)])


def score_lines(metrics: dict[str, Any]) -> list[str]:
    """The best trial's scores beside the baselines', and where `best_model.keras` came from.

    Args:
        metrics: The contents of a finished run's `metrics.json`.
    """
    lines = [f"best trial {metrics['best_trial_id']}, scores in {metrics.get('units', '')} "
             f"units:"]
    baseline = metrics["baseline"]
    # With a final pick, the model scored before any refit is its chosen seed's.
    searched = ("final-pick model" if (metrics.get("final_pick") or {}).get("seed") is not None
                else "search model")
    rows = [("validation", searched, metrics["validation"]),
            ("test", searched, metrics.get("search_test", metrics["test"]))]
    origin = metrics.get("best_model") or {}
    if origin.get("source") == "refit":
        rows.append(("test", f"refitted ({origin['epochs']} epochs)", metrics["test"]))
    for split, name, scores in rows:
        naive = ", ".join(f"{metric} {format_value(value)}"
                          for metric, value in baseline[split].items())
        lines.append(f"  {split:<10} {name + ':':<26} {_scores(scores)} | baseline: {naive}")
    lines.append(f"  baseline = {baseline['name']}")
    lines += _reference_lines(rows, metrics.get("baselines") or {}, baseline["name"])
    if origin.get("source") == "refit":
        lines.append(f"  best_model.keras: trial {origin['trial_id']}'s configuration refitted "
                     f"on {origin['train_samples']} training + validation samples for "
                     f"{origin['epochs']} epochs")
    elif origin.get("source") == "final_pick":
        lines.append(f"  best_model.keras: trial {origin['trial_id']}'s configuration trained "
                     f"with seed {origin['seed']} (final pick)")
    else:
        lines.append(f"  best_model.keras: the search's model of trial {origin.get('trial_id')}")
    if metrics.get("pareto"):
        lines += _pareto_lines(metrics["pareto"])
    if metrics.get("final_pick"):
        lines += final_pick.report_lines(metrics["final_pick"])
    return lines


def _pareto_lines(choice: dict[str, Any]) -> list[str]:
    """The section on a search with several objectives (`pipelines.reports.pareto`)."""
    lines = [f"several objectives ({', '.join(choice['objectives'])}): "
             f"{len(choice['front'])} trials on the Pareto front (pareto.csv)"]
    if choice["trial_id"] is None:
        return [*lines, "  no trial has a value of every objective; the best score's trial "
                        "was saved"]
    values = ", ".join(f"{name} {format_value(value)}" for name, value in choice["values"].items())
    return [*lines, f"  saved trial {choice['trial_id']} ({values}), chosen by the rule: "
                    f"{choice['rule']}"]


def _reference_lines(rows: list[tuple[str, str, dict[str, float]]],
                     references: dict[str, dict[str, Any]], baseline: str) -> list[str]:
    """Each model score's MSE beside every reference forecast's (`metrics.json`'s
    `baselines`), in 4 significant digits: a volatility's MSE is of the order of 1e-4."""
    if not references or any("mse" not in scores for _, _, scores in rows):
        return []
    lines = ["  MSE beside every baseline on the same rows (4 significant digits):"]
    for split, name, scores in rows:
        others = " | ".join(f"{key.replace('_', ' ')} {reference[split]['mse']:#.4g}"
                            for key, reference in references.items())
        lines.append(f"  {split:<10} {name + ':':<26} {scores['mse']:#.4g} | {others}")
    lines += [f"  {key.replace('_', ' ')} = {reference['name']}"
              for key, reference in references.items() if reference["name"] != baseline]
    return lines


def _scores(scores: dict[str, float]) -> str:
    return ", ".join(f"{name} {format_value(value)}" for name, value in scores.items())


def summary_step(result: Any) -> None:
    """The recipe's last step: logs the summary (and writes the final pick's `report.md`)."""
    summary = summary_table(result.trials, result.metrics,
                            seconds=result.seconds_by_step)
    if "final_pick" in result.metrics:
        final_pick.write_report(result.run_dir, summary)
    logger = logging.getLogger("ktlab")
    logger.info(summary)
    logger.info(f"run directory: {result.run_dir}")
