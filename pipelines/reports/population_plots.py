"""Plots of a population-based training run (`tuners.oracles.pbt`), one line per member.

`pipelines.reports.plots.plot_histories` hands a run over to `plot_population` when its trials
name members (the `member` column of `tuners.load_trials`). The learning-rate schedule of
a member is read back from the histories alone: every trial records its member, the
hyperparameters it trained with, the trial whose checkpoint it loaded
(`parent_trial_id`) and, after an exploit, the member it copied (`exploited_from`).

```python
trials = tuners.load_trials("runs/lstm-pbt-AAPL-seed42")
schedules = member_schedules(trials)   # {member: the intervals its final weights went through}
schedules[0][["initial_epoch", "target_epochs", "member", "value"]]
```
"""

from __future__ import annotations

import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter


def is_population(trials: pd.DataFrame) -> bool:
    """Whether the trials come from a population-based training run."""
    return "member" in trials and bool(trials["member"].notna().any())


def member_schedules(trials: pd.DataFrame, hyperparameter: str = "learning_rate",
                     ) -> dict[int, pd.DataFrame]:
    """The hyperparameter schedule that each member's final weights were trained with.

    A member's last trial continued a checkpoint, which continued another, back to a
    trial of the first generation; after an exploit the chain passes to the member that
    was copied, so the schedule is that of the weights, as Ray Tune's policy files give.

    Args:
        trials: `tuners.load_trials(run_dir)` (or `trials.csv`) of a PBT run.
        hyperparameter: The hyperparameter whose values to give.

    Returns:
        `{member: frame}`, one row per interval, oldest first, with columns `trial_id`,
        `member` (whose trial trained the interval), `initial_epoch`, `target_epochs`,
        `value` (None when the trial lacks the hyperparameter) and `exploited_from`.
    """
    column = f"hp_{hyperparameter}"
    by_id = trials.assign(trial_id=trials["trial_id"].astype(str)).set_index("trial_id")
    schedules = {}
    for member, rows in trials.dropna(subset=["member"]).groupby("member", sort=True):
        chain = []
        trial_id = str(rows["trial_id"].iloc[-1])
        # A parent always started before its child, so the walk ends.
        while trial_id in by_id.index and len(chain) <= len(by_id):
            row = by_id.loc[trial_id]
            chain.append({
                "trial_id": trial_id,
                "member": int(row["member"]),
                "initial_epoch": int(row["initial_epoch"]),
                "target_epochs": int(row["target_epochs"]),
                "value": row[column] if column in by_id and not pd.isna(row[column]) else None,
                "exploited_from": (None if pd.isna(row["exploited_from"])
                                   else int(row["exploited_from"])),
            })
            parent = row["parent_trial_id"]
            if pd.isna(parent):
                break
            trial_id = str(parent)
        schedules[int(member)] = pd.DataFrame(chain[::-1])
    return schedules


def plot_population(histories: pd.DataFrame, trials: pd.DataFrame, metric: str = "val_loss",
                    hyperparameter: str = "learning_rate") -> Figure:
    """Each member's curve across its intervals, and the schedule it ended with.

    Top: `metric` against absolute epoch, one line per member through its own trials; a
    triangle marks the first epoch after an exploit, where the member's line jumps to
    the copied member's level. Bottom (when the trials have `hyperparameter`): the
    schedule each member's final weights were trained with (`member_schedules`), one
    step line per member, a triangle where it passed from one member's trials to
    another's.
    """
    column = f"hp_{hyperparameter}"
    has_schedule = column in trials and bool(trials[column].notna().any())
    figure = Figure(figsize=(10, 8 if has_schedule else 5.5), layout="constrained")
    panels = figure.subplots(2 if has_schedule else 1, 1, sharex=True, squeeze=False)[:, 0]
    members = sorted(int(member) for member in trials["member"].dropna().unique())
    palette = colormaps["tab20" if len(members) > 10 else "tab10"]
    colours = {member: palette(index % palette.N) for index, member in enumerate(members)}
    exploits = 0
    axes = panels[0]
    for member in members:
        own = trials[trials["member"] == member]
        curve = histories[histories["trial_id"].isin(own["trial_id"])].sort_values("epoch")
        if metric not in curve or curve.empty:
            continue
        # The line breaks at each exploit: the member's weights are replaced there.
        starts = set(own.loc[own["exploited_from"].notna(), "trial_id"])
        segment = curve["trial_id"].isin(starts) & curve["trial_id"].ne(
            curve["trial_id"].shift())
        for number, (_, part) in enumerate(curve.groupby(segment.cumsum(), sort=True)):
            axes.plot(part["epoch"] + 1, part[metric], color=colours[member],
                      linewidth=1.2, alpha=0.85, gid=f"member-{member}",
                      label=f"member {member}" if number == 0 else None)
        for row in own[own["exploited_from"].notna()].itertuples():
            first = curve[curve["trial_id"] == row.trial_id].head(1)
            if first.empty:
                continue
            exploits += 1
            x, y = float(first["epoch"].iloc[0]) + 1, float(first[metric].iloc[0])
            # A dotted jump from the copied checkpoint (the parent's last epoch drawn).
            parent = histories[histories["trial_id"] == row.parent_trial_id]
            parent = parent[parent["epoch"] < x - 1].sort_values("epoch").tail(1)
            if not parent.empty and metric in parent:
                axes.plot([float(parent["epoch"].iloc[0]) + 1, x],
                          [float(parent[metric].iloc[0]), y], color=colours[member],
                          linestyle=":", linewidth=1.0)
            axes.plot([x], [y], marker="v", color=colours[member], markeredgecolor="black",
                      markersize=7, linestyle="none", gid="exploit")
    finite = pd.to_numeric(histories.get(metric, pd.Series(dtype="float64")),
                           errors="coerce").dropna()
    if len(finite) and finite.min() > 0 and finite.max() / finite.min() > 20:
        axes.set_yscale("log")
    axes.set_ylabel(metric)
    axes.set_title(f"{metric} per member: {len(members)} members, "
                   f"{int(trials['round'].max()) + 1} intervals, {exploits} exploits "
                   f"(triangles, dotted from the checkpoint copied)")
    if len(members) <= 12:
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small",
                    frameon=False)
    if has_schedule:
        _draw_schedules(panels[1], member_schedules(trials, hyperparameter), colours,
                        hyperparameter)
    panels[-1].set_xlabel("epoch (absolute, across intervals)")
    return figure


def _draw_schedules(axes: object, schedules: dict[int, pd.DataFrame],
                    colours: dict[int, object], hyperparameter: str) -> None:
    positive = True
    for member, schedule in schedules.items():
        schedule = schedule.dropna(subset=["value"])
        if schedule.empty:
            continue
        values = schedule["value"].astype("float64").tolist()
        positive = positive and min(values) > 0
        epochs = [*schedule["initial_epoch"], schedule["target_epochs"].iloc[-1]]
        axes.plot(epochs, [*values, values[-1]], drawstyle="steps-post",
                  color=colours.get(member), linewidth=1.2, gid=f"schedule-{member}")
        # Where the weights' history passed from one member's trials to another's.
        members = schedule["member"]
        switched = (members.ne(members.shift()) & members.shift().notna()).to_numpy()
        axes.plot(schedule["initial_epoch"][switched], schedule["value"][switched],
                  marker="v", color=colours.get(member), markeredgecolor="black",
                  markersize=6, linestyle="none")
    if positive:
        axes.set_yscale("log")
        axes.yaxis.set_minor_formatter(NullFormatter())
    axes.set_ylabel(hyperparameter)
    axes.set_title(f"the {hyperparameter} schedule each member's final weights trained with")
