"""The final pick across seeds: the best configurations retrained with new seeds.

A search scores each configuration once, with one seed, so its winner may be a lucky
draw: on noisy data (daily returns) the seed spread of one configuration is often as
large as the differences between the best few. With `run.final_top = K` and
`run.final_seeds = S` (`ktlab tune --final-top K --final-seeds S`) the search ends with
`pipelines.run.final_retrain.run_final_pick`; the rule and the report are here, without
TensorFlow:

- the K best distinct configurations, by the one rule that ranks trials
  (`tuners.results.objectives.rank_trials`; a Hyperband configuration continued across rounds
  counts once, as its best-ranked trial), are each trained S more times from scratch, for
  the epochs their best score needed (`pipelines.run.refit.refit_epochs`);
- every configuration gets the same S seeds, `run.seed + 1000 * s` for s = 1 .. S, so the
  configurations are compared on the same draws (common random numbers);
- each of these K * S models trains on the training rows only and is scored by the
  objective on the validation rows after its last epoch. The test rows are never looked
  at: the choice is the configuration with the best MEAN validation score. With
  walk-forward validation the retrainings use the holdout split (training rows, then the
  validation rows before the test split), as the saved model does;
- the saved model is the chosen configuration's model of the seed whose score is closest
  to its mean (a representative draw, not the luckiest one). With `run.refit` that seed
  and configuration are then refitted on training + validation rows as usual.

It writes `final.csv` (one row per configuration: rank, trial_id, hyperparameters,
epochs, search_score, seeds, mean, std, one `seed_<seed>` column per seed, closest_seed,
chosen), records the pick in `metrics.json` under `final_pick`, and adds its section to
the summary, which the run also writes to `report.md`. The cost is K * S extra trainings
of up to `max_epochs` each.

```python
table = summarize(scores, direction="min")      # no training: the rule alone
table.loc[table["chosen"], "trial_id"]
```
"""

from __future__ import annotations

import json
import math
import pathlib
from typing import Any

import numpy as np
import pandas as pd

from tuners.results import objectives
from tuners.results.records import to_json_value

FINAL_FILE = "final.csv"
REPORT_FILE = "report.md"
SEED_STEP = 1000
RULE = ("the best mean {objective} over the seeds on the validation rows (a configuration "
        "with a diverged seed is no candidate; a tie goes to the better search rank)")
MODEL_RULE = "the seed whose score is closest to its configuration's mean (a tie: the earlier seed)"


def final_seeds(run_seed: int, count: int) -> list[int]:
    """The seeds of the retrainings: `run_seed + 1000 * s` for s = 1 .. count.

    None of them is the search's own seed, and they are the same for every configuration.
    """
    return [run_seed + SEED_STEP * index for index in range(1, count + 1)]


def candidates(trials: pd.DataFrame, direction: str, top: int) -> pd.DataFrame:
    """The `top` best distinct configurations, best first, by `rank_trials`.

    A Hyperband configuration continued across rounds appears as several trials with the
    same hyperparameters; it counts once, as its best-ranked trial.
    """
    ranked = objectives.rank_trials(trials, direction)
    keys = ranked.apply(lambda row: json.dumps(hyperparameter_values(row), sort_keys=True), axis=1)
    return ranked[~keys.duplicated()].head(top) if len(ranked) else ranked


def summarize(scores: pd.DataFrame, direction: str) -> pd.DataFrame:
    """Adds each configuration's mean and spread over the seeds, and the rule's choice.

    Args:
        scores: One row per configuration in search-rank order, with `rank`, `trial_id`
            and one `seed_<seed>` column per seed holding the objective's value (NaN for
            a diverged training); any other columns are kept.
        direction: `"min"` or `"max"`, the objective's direction.

    Returns:
        `scores` with `seeds` (the seeds, space-separated), `mean`, `std` (the sample
        standard deviation, ddof=1), `closest_seed` (`MODEL_RULE`) and `chosen` (`RULE`:
        one True row, or none when no configuration trained without diverging), the seed
        columns after `std`.
    """
    seed_columns = [column for column in scores.columns if column.startswith("seed_")]
    values = scores[seed_columns].apply(pd.to_numeric, errors="coerce").astype("float64")
    values = values.where(np.isfinite(values))
    table = scores.drop(columns=seed_columns).copy()
    table["seeds"] = " ".join(column.removeprefix("seed_") for column in seed_columns)
    # A configuration with a diverged seed has no mean: it is no candidate.
    table["mean"] = values.mean(axis=1, skipna=False)
    table["std"] = values.std(axis=1, ddof=1, skipna=False)
    table = pd.concat([table, values], axis=1)
    distance = values.sub(table["mean"], axis=0).abs()
    # Two seeds equally far from their mean may differ in the last bit of their distances
    # (with two seeds they always tie): within a relative 1e-9 counts as a tie, so that the
    # earlier seed wins as the rule says.
    nearest = distance.le(distance.min(axis=1) * (1 + 1e-9) + 1e-300, axis=0)
    table["closest_seed"] = pd.array([
        int(nearest.loc[index].idxmax().removeprefix("seed_"))
        if math.isfinite(table.loc[index, "mean"]) else None for index in table.index],
        dtype="Int64")
    table["chosen"] = False
    means = table["mean"]
    if means.notna().any():
        # The first best mean in rank order: a tie goes to the better search rank.
        best = means.idxmin() if direction == "min" else means.idxmax()
        table.loc[best, "chosen"] = True
    return table


def final_record(table: pd.DataFrame, objective: str, direction: str,
                 search_best: str, seed: int | None) -> dict[str, Any]:
    """What `metrics.json` records under `final_pick`, from a `summarize` table."""
    seed_columns = [column for column in table.columns if column.startswith("seed_")]
    chosen = table[table["chosen"]]
    return to_json_value({
        "objective": objective, "direction": direction,
        "seeds": [int(column.removeprefix("seed_")) for column in seed_columns],
        "trainings": len(table) * len(seed_columns),
        "trained_on": "training rows", "scored_on": "validation rows",
        "rule": RULE.format(objective=objective), "model_rule": MODEL_RULE,
        "search_best_trial_id": search_best,
        "trial_id": None if chosen.empty else str(chosen["trial_id"].iloc[0]),
        "seed": seed,
        "configurations": [
            {"rank": int(row["rank"]), "trial_id": str(row["trial_id"]),
             "epochs": int(row["epochs"]) if "epochs" in row else None,
             "search_score": row.get("search_score"), "mean": row["mean"], "std": row["std"],
             "scores": {column.removeprefix("seed_"): row[column] for column in seed_columns},
             "chosen": bool(row["chosen"])}
            for _, row in table.iterrows()],
    })


def report_lines(record: dict[str, Any]) -> list[str]:
    """The final pick's section of the summary and `report.md`, 4 significant digits."""
    objective, rows = record["objective"], record["configurations"]
    seeds = ", ".join(map(str, record["seeds"]))
    which = "the best configuration" if len(rows) == 1 else f"the {len(rows)} best configurations"
    lines = [f"final pick across seeds ({FINAL_FILE}): {which} retrained with seeds {seeds} on "
             f"the {record['trained_on']}, {objective} on the {record['scored_on']} (mean ± "
             f"std over seeds; the test rows are not used):"]
    for row in rows:
        scores = ", ".join(_figure(value) for value in row["scores"].values())
        mark = "  <- chosen" if row["chosen"] else ""
        lines.append(f"  rank {row['rank']}  trial {row['trial_id']}  search "
                     f"{_figure(row['search_score'])}  mean {_figure(row['mean'])} ± "
                     f"{_figure(row['std'])}  seeds {scores}{mark}")
    chosen = [row for row in rows if row["chosen"]]
    if not chosen:
        return [*lines, f"  every configuration diverged on some seed; the search's best, "
                        f"trial {record['search_best_trial_id']}, was saved"]
    best = chosen[0]
    if best["trial_id"] == record["search_best_trial_id"]:
        lines.append(f"  chosen: trial {best['trial_id']}, the search's best, also has the "
                     f"best mean {objective}")
    else:
        lines.append(f"  chosen: trial {best['trial_id']} by the best mean {objective}; the "
                     f"search's best, trial {record['search_best_trial_id']}, has a worse mean")
    lines.append(f"  {spread_sentence(rows, record['direction'])}")
    lines.append(f"  saved model: seed {record['seed']}, {record['model_rule']}")
    return lines


def write_report(run_dir: pathlib.Path, summary: str) -> None:
    """Writes `report.md`: the summary printed after the search, with the final pick's
    section at its end, as one block of text."""
    (run_dir / REPORT_FILE).write_text(f"# {run_dir.name}\n\n```text\n{summary.strip()}\n```\n")


def spread_sentence(rows: list[dict[str, Any]], direction: str) -> str:
    """Whether the chosen mean leads the next best by more than the seed spread.

    A rule of thumb, not a test: the gap between the two best means against the larger
    of their two standard deviations.
    """
    ranked = sorted((row for row in rows if row["mean"] is not None),
                    key=lambda row: row["mean"], reverse=direction == "max")
    if len(ranked) < 2:
        return (f"one configuration with a mean: its seed spread is ± "
                f"{_figure(ranked[0]['std'])}")
    first, second = ranked[0], ranked[1]
    gap = abs(first["mean"] - second["mean"])
    spread = max(first["std"] or 0.0, second["std"] or 0.0)
    if gap > spread:
        return (f"its mean leads trial {second['trial_id']}'s by {_figure(gap)}, more than "
                f"the seed spread (std up to {_figure(spread)}): a difference larger than "
                f"seed noise")
    return (f"its mean leads trial {second['trial_id']}'s by {_figure(gap)}, within the seed "
            f"spread (std up to {_figure(spread)}): the configurations tie within seed noise "
            f"(more --final-seeds narrow the means' uncertainty)")


def hyperparameter_values(row: pd.Series) -> dict[str, Any]:
    """A trial row's hyperparameters by name, without the unset (NaN) ones."""
    values = {}
    for column, value in row.items():
        if str(column).startswith("hp_"):
            value = to_json_value(value)
            if value is not None:
                values[str(column)[3:]] = value
    return values


def _figure(value: Any) -> str:
    """A number to 4 significant digits, as every figure of the section."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{float(value):.4g}"
