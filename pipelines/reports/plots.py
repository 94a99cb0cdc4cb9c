"""Plots of a run directory, drawn from what the run wrote to disk.

Every function returns a `matplotlib.figure.Figure` built without pyplot, so it works
headless (CI, `ktlab plot`) and displays in a notebook cell. `write_plots(run_dir)` saves
the PNGs that `ktlab tune` and `ktlab plot RUN_DIR` leave in the run directory.
"""

from __future__ import annotations

import json
import math
import pathlib
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

import tuners
from pipelines.reports import population_plots, rung_plots
from tuners.plans import schedule
from tuners.results import objectives

PLOT_FILES = {
    "histories": "plot_histories.png",
    "hyperparameters": "plot_hyperparameters.png",
    "predictions": "plot_predictions.png",
    "schedule": "plot_schedule.png",
}


def configuration_chains(trials: pd.DataFrame) -> dict[str, list[str]]:
    """Groups trials into configurations: Hyperband's promotions continue their parent.

    Returns:
        `{first trial id: [trial ids in training order]}`; a trial that no other trial
        continued from is a chain of one.
    """
    parents = dict(zip(trials["trial_id"], trials["parent_trial_id"], strict=True))
    chains: dict[str, list[str]] = {}
    for trial_id in trials["trial_id"]:
        root = trial_id
        seen = {root}
        while isinstance(parents.get(root), str) and parents[root] in parents:
            root = parents[root]
            if root in seen:
                break
            seen.add(root)
        chains.setdefault(root, []).append(trial_id)
    return chains


def plot_histories(histories: pd.DataFrame, trials: pd.DataFrame, metric: str = "val_loss",
                   ) -> Figure:
    """Validation loss of every configuration against absolute epoch.

    A line per configuration (a Hyperband configuration continues across rounds), with a
    dashed vertical mark where Hyperband stopped it (not promoted before the largest
    budget) or a pruner did (`tuners.observers.pruning`), a cross where it failed, and a dot where
    early stopping ended it. A population-based training run is drawn one line per
    member, with its learning-rate schedule (`population_plots.plot_population`).
    """
    if population_plots.is_population(trials):
        return population_plots.plot_population(histories, trials, metric)
    figure = Figure(figsize=(10, 5.5), layout="constrained")
    axes = figure.add_subplot()
    largest_budget = trials["target_epochs"].max() if "target_epochs" in trials else None
    by_id = trials.set_index("trial_id")
    chains = configuration_chains(trials)
    colours = _colours(len(chains))
    pruned = median_pruned = 0
    all_values = []
    for colour, (root, chain) in zip(colours, chains.items(), strict=True):
        curve = histories[histories["trial_id"].isin(chain)].sort_values("epoch")
        if metric not in curve or curve.empty:
            continue
        epochs = curve["epoch"].to_numpy() + 1
        values = curve[metric].to_numpy(dtype="float64")
        all_values.append(values[np.isfinite(values)])
        axes.plot(epochs, values, color=colour, linewidth=1.2, alpha=0.85,
                  label=f"config {root}", gid=f"config-{root}")
        last = by_id.loc[chain[-1]]
        end_epoch = epochs[-1]
        if last["status"] == "failed":
            axes.plot([end_epoch], [_last_finite(values)], marker="x", color="red",
                      markersize=8, linestyle="none", gid="failed")
        elif last["status"] == "pruned":
            axes.axvline(end_epoch, color=colour, linestyle="--", linewidth=0.8, alpha=0.6,
                         gid="pruned")
            median_pruned += 1
        elif last["status"] == "stopped_early":
            axes.plot([end_epoch], [values[-1]], marker="o", color=colour, markersize=4,
                      linestyle="none", gid="early-stop")
        elif (largest_budget is not None and not pd.isna(last.get("bracket"))
              and last["target_epochs"] < largest_budget):
            axes.axvline(end_epoch, color=colour, linestyle="--", linewidth=0.8, alpha=0.6,
                         gid="pruned")
            pruned += 1
    finite = np.concatenate(all_values) if all_values else np.array([])
    if finite.size and finite.min() > 0 and finite.max() / finite.min() > 20:
        axes.set_yscale("log")
    axes.set_xlabel("epoch (absolute, across Hyperband rounds)")
    axes.set_ylabel(f"{metric} (scaled target, MSE)" if metric.endswith("loss") else metric)
    title = f"{metric} per configuration: {len(chains)} configurations"
    if pruned:
        title += f", {pruned} stopped by Hyperband (dashed)"
    if median_pruned:
        title += f", {median_pruned} pruned (dashed)"
    axes.set_title(title)
    if len(chains) <= 12:
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small",
                    frameon=False)
    return figure


def plot_hyperparameters(trials: pd.DataFrame, log_scale: Sequence[str] = (),
                         objective: str = "val_loss") -> Figure:
    """Each hyperparameter against the trial's score (log axis for log-sampled ones).

    A hyperparameter with at most six distinct values (layers, units, batch size, a
    choice of optimizer) is drawn as categories, so its values are the tick labels.
    """

    columns = [column for column in trials.columns if column.startswith("hp_")
               and not column.startswith("hp_tuner/")]
    count = max(len(columns), 1)
    width = min(count, 3)
    rows = math.ceil(count / width)
    figure = Figure(figsize=(4 * width, 3.2 * rows), layout="constrained")
    scored = trials.dropna(subset=["score"])
    for position, column in enumerate(columns):
        axes = figure.add_subplot(rows, width, position + 1)
        name = column[3:]
        values = scored[column]
        numeric = pd.to_numeric(values, errors="coerce")
        is_number = bool(len(values)) and bool(numeric.notna().all())
        log_axis = name in log_scale or name in LOG_SAMPLED
        if is_number and (values.nunique() > 6 or log_axis):
            axes.scatter(numeric, scored["score"], s=18, alpha=0.8)
            if log_axis:
                axes.set_xscale("log")
                axes.xaxis.set_minor_formatter(NullFormatter())
        else:
            present = values.dropna()
            categories = (sorted(present.unique(), key=float) if is_number
                          else sorted(present.astype(str).unique()))
            labels = [format_tick(category) for category in categories]
            lookup = {label: index for index, label in enumerate(labels)}
            positions = [lookup.get(format_tick(value), np.nan) for value in values]
            axes.scatter(positions, scored["score"], s=18, alpha=0.8)
            axes.set_xticks(range(len(labels)), labels)
            # With no scored trial (every one failed) there are no categories to show.
            axes.set_xlim(-0.5, max(len(labels), 1) - 0.5)
        axes.set_xlabel(name)
        axes.set_ylabel(f"score ({objective})")
    figure.suptitle(f"hyperparameters against score ({len(scored)} scored trials; lower is "
                    f"better for losses)")
    return figure


LOG_SAMPLED = ("learning_rate", "weight_decay")


def format_tick(value: Any) -> str:
    """A category's tick label: 64 rather than 64.0."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def plot_predictions(predictions: pd.DataFrame, title: str = "", last_days: int = 60,
                     volatility: bool = False, series: dict[str, Any] | None = None,
                     ) -> Figure:
    """The best model's test forecasts against the actual prices and the naive forecast.

    The right panel zooms into the last `last_days` steps, where the three lines can be
    told apart. With `volatility`, the values are absolute log returns (the volatility
    target), and the naive forecast is yesterday's. With `series` (`metrics.json`'s
    `units`, `frequency` and `horizon` of any series), the target keeps its own name and
    the first step ahead of each forecast is drawn.
    """
    thing = "|log return|" if volatility else "close"
    naive, ylabel = f"naive: yesterday's {thing}", ("|log return| (realised volatility)"
                                                    if volatility else
                                                    "close (US dollars, split-adjusted)")
    heading, steps = f"held-out test set: forecasts of the next day's {thing}", "days"
    columns = {"actual": "actual", "predicted": "predicted", "baseline": "baseline"}
    if series:
        thing = ylabel = series["units"]
        naive, steps = "best reference forecast", f"{series['frequency']} steps"
        heading = f"held-out test set: forecasts of {thing}, {steps}"
        if series.get("horizon", 1) > 1:
            columns = {name: f"{name}_1" for name in columns}
            heading += " (the first step ahead of each)"
    figure = Figure(figsize=(13, 4.8), layout="constrained")
    index = pd.to_datetime(predictions["date"]) if "date" in predictions else predictions.index
    whole, zoom = figure.subplots(1, 2, width_ratios=[2, 1])
    for axes, rows in ((whole, slice(None)), (zoom, slice(-last_days, None))):
        axes.plot(index[rows], predictions[columns["actual"]].iloc[rows], color="black",
                  linewidth=1.2, label="actual")
        axes.plot(index[rows], predictions[columns["baseline"]].iloc[rows], color="grey",
                  linewidth=0.9, linestyle=":", label=naive)
        axes.plot(index[rows], predictions[columns["predicted"]].iloc[rows], color="tab:blue",
                  linewidth=1.0, label="best model")
        axes.set_xlabel("date")
        axes.tick_params(axis="x", labelrotation=30)
    whole.set_ylabel(ylabel)
    whole.set_title(title or heading)
    zoom.set_title(f"last {min(last_days, len(predictions))} {steps}")
    whole.legend(loc="upper left")
    return figure


def plot_schedule(plan: Any) -> Figure:
    """Hyperband's brackets: configurations and epochs per round, one panel per bracket."""
    brackets = list(plan.brackets)
    figure = Figure(figsize=(3.2 * max(len(brackets), 1), 3.6), layout="constrained")
    # One y scale for every bracket, so that bar heights compare across panels.
    panels = np.atleast_1d(figure.subplots(1, max(len(brackets), 1), sharey=True))
    for position, (axes, bracket) in enumerate(zip(panels, brackets, strict=False)):
        rounds = list(bracket.rounds)
        labels = [f"r{number}\n{item.epochs} ep" for number, item in enumerate(rounds)]
        bars = axes.bar(range(len(rounds)), [item.configurations for item in rounds],
                        color="tab:blue")
        axes.bar_label(bars, fontsize="small")
        axes.set_xticks(range(len(rounds)), labels, fontsize="small")
        axes.set_title(f"bracket {bracket.index}")
        axes.set_xlabel("round, trained to epoch")
        if position == 0:
            axes.set_ylabel("configurations")
    figure.suptitle(f"Hyperband schedule: max_epochs={plan.max_epochs}, "
                    f"factor={plan.factor}; {plan.total_trials} trials, "
                    f"{plan.total_epochs} epochs")
    return figure


def plot_tuner_schedule(tuner: Mapping[str, Any], trials: pd.DataFrame) -> Figure | None:
    """The schedule a run's tuner follows, or None for a tuner that has none.

    Args:
        tuner: The run's `tuner` settings, as its `config.json` holds them.
        trials: The run's trials (`tuners.load_trials`), for ASHA's rungs.

    Returns:
        Hyperband's brackets for Hyperband and BOHB, ASHA's rungs and promotions as they
        ran, or None (trial-budget tuners, and PBT, whose plan is its own).
    """
    spec = tuners.TUNERS[tuner["name"]]
    # Hyperband's brackets, which an oracle with a plan of its own (PBT) does not run.
    if spec.budget == "epochs" and spec.plan is None:
        return plot_schedule(schedule.keras_tuner_schedule(
            tuner["max_epochs"], tuner["factor"], tuner["hyperband_iterations"]))
    if tuner["name"] == "asha" and not trials.empty:
        # ASHA has no brackets to plan: draw its rungs and promotions as they ran.
        return rung_plots.plot_rungs(trials)
    return None


def anytime_curves(runs: Mapping[str, Sequence[pd.DataFrame]], x: str,
                   direction: str = "min") -> dict[str, Any]:
    """Best-so-far objective against cumulative epochs or seconds, per tuner over seeds.

    Args:
        runs: `{tuner: [trials frame per seed]}`.
        x: `epochs` or `seconds`.
        direction: `min` when lower scores are better (losses), `max` otherwise.

    Returns:
        `{tuner: (grid, mean, low, high)}` with the band as min and max over seeds.
    """
    curves = {}
    for tuner, frames in runs.items():
        series = []
        for trials in frames:
            # Epochs are counted as trained (every fold and execution), the search's cost.
            column = "epochs_trained" if x == "epochs" and "epochs_trained" in trials else x
            done = trials.dropna(subset=[column])
            if done.empty:
                continue
            cumulative = done[column].astype("float64").cumsum().to_numpy()
            # Only scores that could make a trial the best count (tuners.results.objectives).
            scores = objectives.usable_scores(done)
            best = (scores.fillna(np.inf).cummin() if direction == "min"
                    else scores.fillna(-np.inf).cummax()).to_numpy()
            series.append((cumulative, best))
        if not series:
            continue
        end = max(cumulative[-1] for cumulative, _ in series)
        grid = np.linspace(0, end, 200)
        stacked = np.array([_step_at(cumulative, best, grid) for cumulative, best in series])
        # Before a seed's first trial ends it has no best score yet (NaN): the mean starts
        # once every seed has one, so that it never rises when a late seed joins.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            curves[tuner] = (grid, stacked.mean(axis=0), np.nanmin(stacked, axis=0),
                             np.nanmax(stacked, axis=0))
    return curves


def plot_anytime(runs: Mapping[str, Sequence[pd.DataFrame]],
                 objective: str = "val_loss") -> Figure:
    """Best-so-far objective per tuner, mean and band over seeds, against cumulative
    epochs (left) and wall time (right)."""
    direction = objectives.objective_direction(objective)
    figure = Figure(figsize=(12, 4.8), layout="constrained")
    for position, (x, label) in enumerate((("epochs", "cumulative epochs trained"),
                                           ("seconds", "cumulative trial time (s)"))):
        axes = figure.add_subplot(1, 2, position + 1)
        for tuner, (grid, mean, low, high) in anytime_curves(runs, x, direction).items():
            line, = axes.plot(grid, mean, label=tuner)
            axes.fill_between(grid, low, high, color=line.get_color(), alpha=0.2)
        axes.set_xlabel(label)
        axes.set_ylabel(f"best {objective} so far")
        axes.legend(loc="upper right")
    figure.suptitle("anytime performance: best score found so far (band: min-max over seeds)")
    return figure


def write_plots(run_dir: str | pathlib.Path) -> list[pathlib.Path]:
    """Draws every plot that a run directory has the data for, and saves the PNGs.

    Returns:
        The paths written.
    """
    run_dir = pathlib.Path(run_dir)
    histories = tuners.load_histories(run_dir)
    trials = tuners.load_trials(run_dir)
    figures = {"histories": plot_histories(histories, trials),
               "hyperparameters": plot_hyperparameters(trials)}
    predictions_file = run_dir / "predictions.csv"
    if predictions_file.exists():
        predictions = pd.read_csv(predictions_file)
        # Only series forecasts have a date axis and a naive forecast to draw.
        if "baseline" in predictions or "baseline_1" in predictions:
            config_file = run_dir / "config.json"
            target = (json.loads(config_file.read_text()).get("data", {}).get("target")
                      if config_file.exists() else None)
            metrics_file = run_dir / "metrics.json"
            metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
            series = metrics if "frequency" in metrics else None
            figures["predictions"] = plot_predictions(
                predictions, volatility=series is None and target == "volatility",
                series=series)
    config_file = run_dir / "config.json"
    if config_file.exists():
        figure = plot_tuner_schedule(json.loads(config_file.read_text())["tuner"], trials)
        if figure is not None:
            figures["schedule"] = figure
    written = []
    for name, figure in figures.items():
        path = run_dir / PLOT_FILES[name]
        figure.savefig(path, dpi=110)
        written.append(path)
    return written


def _colours(count: int) -> list[Any]:
    palette = colormaps["tab20" if count > 10 else "tab10"]
    return [palette(index % palette.N) for index in range(count)]


def _last_finite(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if finite.size else 0.0


def _step_at(cumulative: np.ndarray, best: np.ndarray, grid: np.ndarray) -> np.ndarray:
    positions = np.searchsorted(cumulative, grid, side="right") - 1
    values = np.where(positions >= 0, best[np.clip(positions, 0, None)], np.nan)
    return np.where(np.isinf(values), np.nan, values)


def plots_step(result: Any) -> None:
    """The recipe's plots step: every plot the run directory has the data for."""
    write_plots(result.run_dir)
