"""Text reports: a line per finished trial while the search runs, and the final summary."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from tuners import objectives

# Short names keep a trial's line on one terminal row.
SHORT_NAMES = {"learning_rate": "lr", "batch_size": "batch", "num_layers": "layers",
               "dropout": "drop", "weight_decay": "wd", "optimizer": "opt",
               "activation": "act", "momentum": "mom", "lookback": "lookback"}


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


class TrialPrinter:
    """Prints one line per finished trial from the history collector's `trial_end` record.

    Args:
        enabled: Print nothing when False (notebooks that show plots instead).
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.count = 0

    def __call__(self, record: dict[str, Any]) -> None:
        self.count += 1
        if not self.enabled:
            return
        score = record.get("score")
        score_text = "nan" if score is None else format_value(float(score))
        status = record.get("status", "")
        reason = f" ({record['reason']})" if record.get("reason") else ""
        print(f"trial {record.get('trial_id')} {status}{reason}: score {score_text}, "
              f"{record.get('epochs')} epochs, {record.get('seconds', 0):.1f} s | "
              f"{format_hyperparameters(record.get('hyperparameters') or {})}", flush=True)


def summary_table(trials: pd.DataFrame, metrics: dict[str, Any], objective: str,
                  top: int = 5) -> str:
    """The summary printed after a search: counts, the best trials, and the scores.

    Args:
        trials: One row per trial, as `tuners.load_trials` returns.
        metrics: The contents of `metrics.json`.
        objective: The metric the search optimised.
        top: How many of the best trials to list.
    """
    lines = ["", f"{len(trials)} trials ({metrics['failed_trials']} failed), "
                 f"{metrics['epochs']} epochs, {metrics['seconds']:.0f} s"]
    # The ranking follows the one rule that chose the best model: a trial that diverged
    # after its first epoch keeps the score of the epochs before, but is no candidate.
    ranked = objectives.rank_trials(trials, objectives.objective_direction(objective))
    if len(ranked):
        best = ranked.head(top)
        hp_columns = [column for column in best.columns if column.startswith("hp_")]
        table = best[["trial_id", "score", "epochs", "status", *hp_columns]].rename(
            columns={column: column[3:] for column in hp_columns})
        lines += [f"best {len(best)} trials by {objective}:",
                  table.to_string(index=False, float_format=format_value)]
    units = metrics.get("units", "")
    lines.append(f"best model (trial {metrics['best_trial_id']}), scores in {units} units:")
    baseline = metrics["baseline"]
    for split in ("validation", "test"):
        ours = ", ".join(f"{name} {format_value(value)}"
                         for name, value in metrics[split].items())
        naive = ", ".join(f"{name} {format_value(value)}"
                          for name, value in baseline[split].items())
        lines.append(f"  {split:<10} model: {ours} | baseline: {naive}")
    lines.append(f"  baseline = {baseline['name']}")
    return "\n".join(lines)
