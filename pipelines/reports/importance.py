"""Which hyperparameters mattered: permutation importances of a random forest.

`ktlab importance RUN_DIR` (and the recipe's `importance_step`, after a search with enough
trials) fits
scikit-learn's `RandomForestRegressor` to the run's usable trials, hyperparameters in and
score out, and measures with `sklearn.inspection.permutation_importance` how much worse
the forest fits when one hyperparameter's values are shuffled. It reads the run's files
only: no TensorFlow.

```python
from pipelines.reports import importance
importance.importances(tuners.load_trials("runs/lstm-hyperband-AAPL-seed42"))
```
"""

from __future__ import annotations

import json
import logging
import pathlib
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.ensemble import RandomForestRegressor
from sklearn.inspection import permutation_importance
from sklearn.preprocessing import OrdinalEncoder

import tuners
from pipelines.errors import KtlabError
from pipelines.reports import plots
from tuners.errors import HistoryFileError
from tuners.results import objectives, records

MIN_TRIALS = 8
MIN_HYPERPARAMETERS = 2
TREES = 200
REPEATS = 20
TABLE_FILE = "importance.csv"
PLOT_FILE = "plot_importance.png"
COLUMNS = ["hyperparameter", "importance", "std"]


def importances(trials: pd.DataFrame, direction: str = "min", seed: int = 0) -> pd.DataFrame:
    """Permutation importance of each hyperparameter for the objective, largest first.

    A `sklearn.ensemble.RandomForestRegressor` (200 trees, `random_state=seed`) learns the
    score from the hyperparameters of the usable trials (completed or stopped early, with
    a finite score: `tuners.results.objectives.usable_scores`); a Hyperband configuration counts
    once, by its furthest-trained usable trial. Then
    `sklearn.inspection.permutation_importance` (20 repeats, `random_state=seed`) shuffles
    one hyperparameter at a time and records how far the forest's R² on those trials
    falls. The importances are measured in-sample, on the few trials the forest was fitted
    to, so they are indicative only: a ranking to look at, not a test.

    Numeric hyperparameters enter as numbers (log10 for `learning_rate`, `weight_decay`
    and any whose positive values span more than two decades), others as ordinal codes;
    an inactive conditional hyperparameter (NaN) gets a value of its own. Only
    hyperparameters that vary across the usable trials are measured.

    Args:
        trials: One row per trial, as `tuners.load_trials` returns (`status`, `score`,
            `hp_<name>` columns; `trial_id`, `parent_trial_id` and `target_epochs` for
            Hyperband).
        direction: `"min"` or `"max"`, the objective's direction. It is checked but does
            not change the result: the forest regresses the score itself, so a
            hyperparameter matters as much whichever way the score is better.
        seed: The random state of the forest and of the shuffles.

    Returns:
        Columns `hyperparameter`, `importance` (mean fall in R² over the repeats) and
        `std` (its standard deviation over the repeats), one row per varying
        hyperparameter, sorted by importance, largest first. `attrs["trials"]` holds the
        number of trials (configurations) used.

    Raises:
        KtlabError: With fewer than 8 usable trials or fewer than 2 varying
            hyperparameters.
    """
    if direction not in ("min", "max"):
        raise KtlabError(f"direction must be 'min' or 'max', got {direction!r}")
    usable = _usable_configurations(trials)
    if len(usable) < MIN_TRIALS:
        raise KtlabError(
            f"hyperparameter importances need at least {MIN_TRIALS} usable trials (completed "
            f"or stopped early, with a finite score; a Hyperband configuration counts once), "
            f"got {len(usable)}; run more trials (--max-trials, or a larger --max-epochs for "
            f"Hyperband)")
    features = _features(usable)
    if features.shape[1] < MIN_HYPERPARAMETERS:
        named = ", ".join(features.columns) or "none"
        raise KtlabError(
            f"hyperparameter importances need at least {MIN_HYPERPARAMETERS} hyperparameters "
            f"that vary across the usable trials, got {features.shape[1]} ({named}); widen "
            f"the search space (--search-space)")
    scores = objectives.usable_scores(usable).to_numpy(dtype="float64")
    forest = RandomForestRegressor(n_estimators=TREES, random_state=seed)
    forest.fit(features.to_numpy(), scores)
    result = permutation_importance(forest, features.to_numpy(), scores, n_repeats=REPEATS,
                                    random_state=seed)
    table = pd.DataFrame({"hyperparameter": list(features.columns),
                          "importance": result.importances_mean,
                          "std": result.importances_std})
    table = table.sort_values("importance", ascending=False, kind="stable")
    table = table.reset_index(drop=True)
    table.attrs["trials"] = len(usable)
    return table


def _usable_configurations(trials: pd.DataFrame) -> pd.DataFrame:
    """The usable trials, one per configuration.

    Hyperband trains a configuration in rounds, each a trial that continues its parent
    with the same hyperparameters. Counting every round would weigh a promoted
    configuration several times and mix scores after 1 epoch with scores after 9, so
    each configuration counts once, by its usable trial with the largest `target_epochs`
    (its score after the most training). Other tuners' trials are chains of one.
    """
    usable = trials[objectives.usable_scores(trials).notna()]
    if "parent_trial_id" not in trials or "trial_id" not in trials or usable.empty:
        return usable
    budgets = (pd.to_numeric(usable["target_epochs"], errors="coerce").fillna(0)
               if "target_epochs" in usable else pd.Series(0, index=usable.index))
    kept = []
    for chain in plots.configuration_chains(trials).values():
        rows = usable.index[usable["trial_id"].isin(chain)]
        if len(rows):
            # The later trial wins a tie: idxmax keeps the first, so look from the end.
            kept.append(budgets.loc[rows[::-1]].idxmax())
    return usable.loc[sorted(kept)]


def _features(usable: pd.DataFrame) -> pd.DataFrame:
    """One numeric column per varying hyperparameter, named after it (no `hp_`)."""
    columns = {}
    for column in usable.columns:
        if not column.startswith("hp_") or column.startswith("hp_tuner/"):
            continue
        values = usable[column]
        if values.nunique(dropna=False) < 2:
            continue
        name = column[3:]
        columns[name] = _encode(name, values)
    return pd.DataFrame(columns, index=usable.index)


def _encode(name: str, values: pd.Series) -> np.ndarray:
    """A hyperparameter's values as numbers, with inactive (NaN) ones set apart."""
    present = values.dropna()
    numbers = pd.to_numeric(present, errors="coerce")
    is_number = bool(numbers.notna().all()) and not present.map(
        lambda value: isinstance(value, str)).any()
    if not is_number:
        # Ordinal codes keep one column per hyperparameter, so a shuffle moves exactly the
        # hyperparameter's values (one-hot columns would be shuffled one by one, making
        # rows with two categories or none); a forest splits the codes as it needs.
        encoder = OrdinalEncoder(encoded_missing_value=-1)
        text = values.map(lambda value: value if pd.isna(value) else str(value))
        return encoder.fit_transform(text.to_frame()).ravel()
    numeric = pd.to_numeric(values.map(lambda value: None if pd.isna(value) else float(value)),
                            errors="coerce").astype("float64")
    positive = numeric[numeric > 0]
    log_scale = any(part in name for part in plots.LOG_SAMPLED) or (
        len(positive) == numeric.notna().sum() and len(positive) > 0
        and positive.max() / positive.min() > 100)
    if log_scale:
        # Trees split on order alone, so log10 changes the fit little; it puts thresholds
        # at geometric midpoints, the scale such a hyperparameter is sampled on.
        numeric = np.log10(numeric.where(numeric > 0))
    finite = numeric[np.isfinite(numeric)]
    low, high = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 0.0)
    # An inactive value gets a sentinel below the active range, so one split separates
    # it. This is by hand because scikit-learn's forests accept NaN only from 1.4 on, and
    # setup.cfg allows 1.3.
    sentinel = low - max(high - low, 1.0)
    return numeric.where(np.isfinite(numeric), sentinel).to_numpy(dtype="float64")


def plot_importance(table: pd.DataFrame, *, trials: int | None = None,
                    objective: str = "score") -> Figure:
    """Horizontal bars of each hyperparameter's importance, with its std as error bars.

    Args:
        table: As `importances` returns: largest first, drawn at the top.
        trials: How many trials the forest saw, for the title (default: `table.attrs`).
        objective: The score's name, for the axis label.
    """
    trials = trials if trials is not None else table.attrs.get("trials")
    figure = Figure(figsize=(7, 1.2 + 0.45 * max(len(table), 1)), layout="constrained")
    axes = figure.add_subplot()
    positions = np.arange(len(table))[::-1]
    axes.barh(positions, table["importance"], xerr=table["std"], color="tab:blue",
              ecolor="black", capsize=3)
    axes.set_yticks(positions, table["hyperparameter"])
    axes.axvline(0, color="grey", linewidth=0.8)
    axes.set_xlabel(f"fall in R² of a random forest's fit of {objective} when shuffled")
    count = f" over {trials} trials" if trials is not None else ""
    axes.set_title(f"hyperparameter importance{count} (in-sample, indicative only)")
    return figure


def run_importances(run_dir: str | pathlib.Path) -> pd.DataFrame:
    """`importances` of a run directory's trials, with the objective of its `config.json`.

    Returns:
        As `importances`, with `attrs["objective"]` (the objective's name, or `score`)
        and `attrs["run_dir"]` (the directory holding the histories) added.

    Raises:
        KtlabError: If the directory holds no histories, or too few usable trials.
    """
    try:
        histories = records.find_history_files(run_dir)
        trials = tuners.load_trials(run_dir)
    except HistoryFileError as error:
        raise KtlabError(str(error)) from None
    directory = histories[0].parent
    objective, direction = _objective(directory)
    table = importances(trials, direction=direction)
    table.attrs.update(objective=objective, run_dir=directory)
    return table


def write_importance(run_dir: str | pathlib.Path,
                     table: pd.DataFrame | None = None) -> list[pathlib.Path]:
    """Writes `importance.csv` and `plot_importance.png` beside the run's histories.

    Args:
        run_dir: A run directory (or a folder holding exactly one).
        table: As `run_importances(run_dir)` returns; computed when left out.

    Returns:
        The paths written.

    Raises:
        KtlabError: If the directory holds no histories, or too few usable trials.
    """
    table = run_importances(run_dir) if table is None else table
    directory = pathlib.Path(table.attrs.get("run_dir", run_dir))
    table.to_csv(directory / TABLE_FILE, index=False)
    figure = plot_importance(table, objective=table.attrs.get("objective", "score"))
    figure.savefig(directory / PLOT_FILE, dpi=110)
    return [directory / TABLE_FILE, directory / PLOT_FILE]


def _objective(run_dir: pathlib.Path) -> tuple[str, str]:
    """The run's objective and direction from `config.json`, or `score` and `min`."""
    config_file = run_dir / "config.json"
    try:
        tuner = json.loads(config_file.read_text()).get("tuner") or {}
    except (OSError, ValueError, AttributeError):
        return "score", "min"
    objective = str(tuner.get("objective") or "score")
    direction = tuner.get("direction")
    if direction not in ("min", "max"):
        try:
            direction = objectives.objective_direction(objective)
        except ValueError:
            direction = "min"
    return objective, direction


def format_table(table: pd.DataFrame) -> str:
    """The table as text, numbers to 4 significant digits."""
    return table.to_string(index=False, float_format=lambda value: f"{value:.4g}")


def importance_step(result: Any) -> None:
    """The recipe's importance step: writes the importances when there are enough trials.

    A short search has too few usable trials (a `KtlabError`): it is skipped silently. Any
    other error is logged as a warning, since the search's results are already written.
    """
    try:
        write_importance(result.run_dir)
    except KtlabError:
        pass
    except Exception as error:
        logging.getLogger("ktlab").warning(
            f"ktlab: hyperparameter importances skipped ({error}); run ktlab importance "
            f"{result.run_dir} to see why")
