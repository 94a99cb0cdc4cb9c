"""The schedule plot of an ASHA run (`tuners.oracles.asha`): what it did, not a plan.

Hyperband's `plot_schedule.png` draws its brackets, which are known beforehand. ASHA has
no brackets: how many configurations reach each rung depends on the order the results
arrive in, so `pipelines.reports.plots.write_plots` draws this figure from the run's trials
instead, with the same file name. The rungs are the trials' `tuner/epochs` (the
`target_epochs` column of `tuners.load_trials`), and a promotion is a trial whose
`parent_trial_id` names the trial it continued.

```python
trials = tuners.load_trials("runs/lstm-asha-AAPL-seed42")
rung_counts(trials)         # one row per rung: epochs, trials, promoted
plot_rungs(trials).savefig("plot_schedule.png")
```
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure


def rung_counts(trials: pd.DataFrame) -> pd.DataFrame:
    """How many trials trained to each rung's budget, and how many of them were promoted.

    Args:
        trials: `tuners.load_trials(run_dir)` (or `trials.csv`) of an ASHA run.

    Returns:
        One row per rung, lowest budget first, with columns `epochs` (the rung's
        budget), `trials` (trials trained to it) and `promoted` (those another trial
        continued).
    """
    rows = trials.dropna(subset=["target_epochs"])
    parents = set(rows["parent_trial_id"].dropna().astype(str))
    counts = []
    for epochs, rung in rows.groupby(rows["target_epochs"].astype(int), sort=True):
        promoted = int(rung["trial_id"].astype(str).isin(parents).sum())
        counts.append({"epochs": int(epochs), "trials": len(rung), "promoted": promoted})
    return pd.DataFrame(counts, columns=["epochs", "trials", "promoted"])


def plot_rungs(trials: pd.DataFrame) -> Figure:
    """What an ASHA run did: trials per rung, and every trial in start order with its
    promotion drawn as a line from the trial it continued.

    Left, one bar per rung (its budget in epochs), the promoted trials in the darker
    part. Right, each trial at its rung against its start order (1 for the first
    trial), hollow when nothing continued it, a red cross when it failed; a line
    (`gid="promotion"`) joins each promoted trial to the trial that continued it.

    Args:
        trials: `tuners.load_trials(run_dir)` (or `trials.csv`) of an ASHA run.

    Returns:
        The figure.
    """
    counts = rung_counts(trials)
    rung_of = {epochs: number for number, epochs in enumerate(counts["epochs"])}
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    bars, timeline = figure.subplots(1, 2, width_ratios=[1, 2.6])
    labels = [f"r{number}\n{epochs} ep" for number, epochs in enumerate(counts["epochs"])]
    positions = range(len(counts))
    bars.bar(positions, counts["promoted"], color="tab:blue", label="promoted")
    rest = bars.bar(positions, counts["trials"] - counts["promoted"],
                    bottom=counts["promoted"], color="tab:blue", alpha=0.35,
                    label="not promoted")
    bars.bar_label(rest, labels=[str(total) for total in counts["trials"]], fontsize="small")
    bars.set_xticks(list(positions), labels, fontsize="small")
    bars.set_xlabel("rung, trained to epoch")
    bars.set_ylabel("trials")
    bars.legend(loc="upper right", fontsize="small")

    order = {str(trial_id): number + 1 for number, trial_id in enumerate(trials["trial_id"])}
    place = {}
    for row in trials.dropna(subset=["target_epochs"]).itertuples():
        place[str(row.trial_id)] = (order[str(row.trial_id)], rung_of[int(row.target_epochs)])
    links = 0
    for row in trials.dropna(subset=["parent_trial_id"]).itertuples():
        parent, child = str(row.parent_trial_id), str(row.trial_id)
        if parent in place and child in place:
            (x0, y0), (x1, y1) = place[parent], place[child]
            timeline.plot([x0, x1], [y0, y1], color="tab:blue", linewidth=0.8, alpha=0.6,
                          gid="promotion")
            links += 1
    parents = set(trials["parent_trial_id"].dropna().astype(str))
    for row in trials.dropna(subset=["target_epochs"]).itertuples():
        x, y = place[str(row.trial_id)]
        if row.status == "failed":
            timeline.plot([x], [y], marker="x", color="red", linestyle="none", gid="failed")
        else:
            filled = str(row.trial_id) in parents
            timeline.plot([x], [y], marker="o", markersize=4, linestyle="none",
                          color="tab:blue", markerfacecolor="tab:blue" if filled else "white")
    timeline.set_yticks(list(positions), labels, fontsize="small")
    timeline.set_ylim(-0.5, len(counts) - 0.5)
    timeline.set_xlabel("trial, in start order")
    timeline.set_title("each trial at its rung; lines join a trial to its promotion",
                       fontsize="medium")
    epochs = int(trials["epochs_trained"].sum()) if "epochs_trained" in trials else None
    figure.suptitle(f"ASHA, as run: {len(trials)} trials"
                    + (f", {epochs} epochs" if epochs is not None else "")
                    + f", {links} promotions; rungs at "
                    + ", ".join(str(value) for value in counts["epochs"]) + " epochs")
    return figure
