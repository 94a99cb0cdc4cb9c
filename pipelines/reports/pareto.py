"""The Pareto front of a search with several objectives, and which trial's model is saved.

A search with two or more objectives (`tuner.objectives`, e.g. `val_loss,params`) ends
with `write_pareto`, whatever its tuner:

- `pareto.csv`: one row per trial with a usable value of every objective (the first is
  the trial's score, the others are the `trials.csv` columns of the same names), with
  `front` (NSGA-II's front, 0 for the Pareto front: `tuners.results.pareto_front`), `on_front`
  and the hyperparameters;
- `plot_pareto.png`, for two objectives: every trial as a point, the front highlighted
  and joined in order;
- the trial whose configuration becomes `best_model.keras`, by the rule of `pick_trial`:
  among the trials within `tolerance` (a fraction, `tuner.pareto_tolerance`) of the best
  first objective, the one best in the last objective (the fewest parameters, or the
  fastest). The pick is always on the Pareto front.

```python
table = pareto_table(trials, ["val_loss", "params"], ["min", "min"])
trial_id, rule = pick_trial(table, ["val_loss", "params"], ["min", "min"], tolerance=0.01)
```
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipelines.run import selection
from tuners.results import objectives, pareto_front

PARETO_FILE = "pareto.csv"
PLOT_FILE = "plot_pareto.png"
# How the rule names the best value of the last objective.
BEST_WORDS = {"params": "the fewest parameters", "latency_ms": "the lowest latency_ms"}


def objective_directions(first_direction: str, names: Sequence[str]) -> list[str]:
    """Each objective's direction: the first as given, the others from their names."""
    return [first_direction, *(objectives.objective_direction(name) for name in names[1:])]


def pareto_table(trials: pd.DataFrame, names: Sequence[str],
                 directions: Sequence[str]) -> pd.DataFrame:
    """Ranks the trials that have a usable value of every objective into fronts.

    Args:
        trials: One row per trial, as `tuners.load_trials` returns: the first objective's
            value is `score` (where it counts: `tuners.results.objectives.usable_scores`), each
            other objective's is its own column.
        names: The objectives, in order.
        directions: `"min"` or `"max"` for each.

    Returns:
        Columns `trial_id`, one per objective, `front`, `on_front`, then the `hp_`
        columns, in trial order.
    """
    values = pd.DataFrame({names[0]: objectives.usable_scores(trials)}, index=trials.index)
    for name in names[1:]:
        column = trials[name] if name in trials else pd.Series(np.nan, index=trials.index)
        values[name] = pd.to_numeric(column, errors="coerce").astype("float64")
    usable = np.isfinite(values.to_numpy()).all(axis=1)
    hyperparameters = [column for column in trials.columns if column.startswith("hp_")]
    table = pd.concat([trials[["trial_id"]], values], axis=1)[usable]
    front = np.zeros(len(table), dtype=int)
    for rank, members in enumerate(pareto_front.non_dominated_sort(table[list(names)].to_numpy(),
                                                           directions)):
        front[members] = rank
    table = table.assign(front=front, on_front=front == 0)
    return pd.concat([table, trials.loc[table.index, hyperparameters]],
                     axis=1).reset_index(drop=True)


def pick_trial(table: pd.DataFrame, names: Sequence[str], directions: Sequence[str],
               tolerance: float = 0.01) -> tuple[str | None, str]:
    """The trial whose model a search with several objectives saves, and the rule, stated.

    Among the trials whose first objective is within `tolerance` times its best value of
    that best value, the one best in the last objective; ties go to the better first
    objective, then to the objectives between, in order. So the pick is on the Pareto
    front, and a tolerance of 0 picks the best first objective.

    Returns:
        The trial id (None for an empty table) and the rule in words.
    """
    first, last = names[0], names[-1]
    best_word = BEST_WORDS.get(last) or (
        f"the {'lowest' if directions[-1] == 'min' else 'highest'} {last}")
    rule = (f"{best_word} among the trials whose {first} is within {tolerance * 100:g}% of "
            f"the best")
    if table.empty:
        return None, rule
    best = table[first].min() if directions[0] == "min" else table[first].max()
    margin = tolerance * abs(best)
    near = (table[first] <= best + margin) if directions[0] == "min" else (
        table[first] >= best - margin)
    order = [len(names) - 1, 0, *range(1, len(names) - 1)]
    ranked = table[near].sort_values([names[index] for index in order],
                                     ascending=[directions[index] == "min" for index in order],
                                     kind="stable")
    return str(ranked["trial_id"].iloc[0]), rule


def plot_pareto(table: pd.DataFrame, names: Sequence[str], chosen: str | None = None,
                ) -> Figure:
    """Every trial by its two objectives, the Pareto front highlighted and joined.

    Args:
        table: As `pareto_table` returns, for two objectives.
        names: The two objectives: x, then y.
        chosen: The id of the trial whose model was saved, ringed.
    """
    x_name, y_name = names[:2]
    figure = Figure(figsize=(7, 5))
    axes = figure.add_subplot()
    others = table[~table["on_front"]]
    front = table[table["on_front"]].sort_values([x_name, y_name], kind="stable")
    axes.scatter(others[x_name], others[y_name], s=24, color="0.6", label="other trials")
    axes.plot(front[x_name], front[y_name], "-o", color="tab:red", markersize=6,
              label=f"Pareto front ({len(front)})")
    if chosen is not None and chosen in set(table["trial_id"]):
        row = table[table["trial_id"] == chosen].iloc[0]
        axes.scatter([row[x_name]], [row[y_name]], s=160, facecolors="none",
                     edgecolors="black", linewidths=1.5, label=f"saved: trial {chosen}")
    for row in front.itertuples(index=False):
        axes.annotate(str(row.trial_id), (getattr(row, x_name), getattr(row, y_name)),
                      textcoords="offset points", xytext=(4, 4), fontsize=7)
    values = table[y_name].to_numpy(dtype="float64")
    if y_name == "params" and values.size and values.min() > 0 and values.max() > 10 * values.min():
        axes.set_yscale("log")
    axes.set_xlabel(x_name)
    axes.set_ylabel(y_name)
    axes.set_title(f"{len(table)} trials: {x_name} against {y_name}")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    return figure


def write_pareto(run_dir: str | pathlib.Path, trials: pd.DataFrame, names: Sequence[str],
                 directions: Sequence[str], tolerance: float) -> dict[str, Any]:
    """Writes `pareto.csv` (and `plot_pareto.png` for two objectives) and picks the trial.

    Returns:
        What `metrics.json` keeps under `pareto`: `objectives`, `directions`, `rule`,
        `tolerance`, `trial_id` (None when no trial has every value), its `values`, and
        the ids on the `front`.
    """
    run_dir = pathlib.Path(run_dir)
    table = pareto_table(trials, names, directions)
    table.to_csv(run_dir / PARETO_FILE, index=False)
    trial_id, rule = pick_trial(table, names, directions, tolerance)
    if len(names) == 2 and not table.empty:
        plot_pareto(table, names, trial_id).savefig(run_dir / PLOT_FILE, dpi=110)
    values = {}
    if trial_id is not None:
        row = table[table["trial_id"] == trial_id].iloc[0]
        values = {name: float(row[name]) for name in names}
    return {"objectives": list(names), "directions": list(directions), "rule": rule,
            "tolerance": tolerance, "trial_id": trial_id, "values": values,
            "front": [str(value) for value in table.loc[table["on_front"], "trial_id"]]}



def pick_step(searched: selection.Searched, choice: selection.Choice) -> selection.Choice:
    """The recipe's Pareto step: with two or more objectives, writes the front and picks
    the trial by `pick_trial`'s rule; with one, keeps `choice`."""
    config = searched.config
    names = config.tuner.objectives
    if len(names) < 2:
        return choice
    picked = write_pareto(searched.run_dir, searched.trials, names,
                          objective_directions(config.direction, names),
                          config.tuner.pareto_tolerance)
    if picked["trial_id"] in (None, choice.trial_id):
        return dataclasses.replace(choice, records={**choice.records, "pareto": picked})
    return selection.Choice(picked["trial_id"], records={**choice.records, "pareto": picked})
