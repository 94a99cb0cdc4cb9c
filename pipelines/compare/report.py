"""The comparison's `report.md`: what it found, in sentences first, then the numbers.

The first lines after the title say, in words: whether every tuner trained the same
epochs; whether the best tuner's objective differs from each other tuner's by more than
the spread over seeds (`pipelines.compare.significance.compare_paired`); and whether each tuner's
chosen models beat the naive forecast on the held-out rows (the Diebold–Mariano test,
`pipelines.compare.significance.diebold_mariano`). Every figure is written by `figure`, with 4
significant digits; counts are written as whole numbers.

```python
lines = findings(table, objective="val_loss", direction="min", held_out="days")
print("\\n".join(lines))
```
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

import numpy as np
import pandas as pd

from pipelines.compare import significance

TITLE = "# Tuner comparison"
SIGNIFICANT_DIGITS = 4


def figure(value: Any) -> str:
    """A number as the report writes it: 4 significant digits, trailing zeros kept.

    Whole-number types (counts of trials, epochs, seeds) are written as they are; None and
    NaN as `n/a`.

    ```python
    figure(0.0123456)  # "0.01235"
    figure(0.002)      # "0.002000"
    figure(123456.0)   # "1.235e+05"
    figure(1234.4)     # "1234"
    figure(7)          # "7"
    ```
    """
    if value is None:
        return "n/a"
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(int(value))
    value = float(value)
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    # The alternate form keeps trailing zeros (0.002000, not 0.002), so that a mean and
    # its spread show the same precision; it also keeps a bare point (1234.), dropped here.
    # Adding 0.0 turns -0.0 into 0.0.
    return f"{value + 0.0:#.{SIGNIFICANT_DIGITS}g}".removesuffix(".")


def mean_std(mean: Any, std: Any) -> str:
    """`mean ± std`, both by `figure`; the mean alone when there is no spread (one seed)."""
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return figure(mean)
    return f"{figure(mean)} ± {figure(std)}"


def objective_words(objective: str) -> str:
    """The objective in words: `val_loss` is "validation loss", `val_mae` "validation mae"."""
    if objective == "loss":
        return "training loss"
    if objective.startswith("val_"):
        return "validation " + objective.removeprefix("val_").replace("_", " ")
    return objective


@dataclasses.dataclass(frozen=True)
class BudgetFacts:
    """What the budget sentences need besides the table.

    Attributes:
        kinds: Each tuner's budget, `"epochs"` or `"trials"` (`tuners.registry`).
        reference: The epoch-budget tuner whose epochs trained, seed by seed, the
            trial-budget tuners matched; None when the comparison has none, and they
            matched Hyperband's planned epochs.
        trial_epochs: The most epochs one trial trains: max_epochs times the executions
            per trial times the walk-forward folds.
        caps: Each trial-budget tuner's cap on trials.
    """

    kinds: dict[str, str]
    reference: str | None
    trial_epochs: int
    caps: dict[str, int]


def findings(table: pd.DataFrame, *, objective: str, direction: str, held_out: str,
             task: str = "regression", budget: BudgetFacts | None = None) -> list[str]:
    """The sentences that head the report, one per finding.

    Args:
        table: One row per tuner and seed, as in `comparison.csv`: `tuner`, `seed`,
            `best_val_loss` (the objective), `test_mse`, `baseline_test_mse`, `trials`,
            `planned_epochs`, `epochs`, `test_rows`, `dm_statistic`, `dm_p_value`.
        objective: The objective's name, e.g. `val_loss`.
        direction: `"min"` or `"max"`.
        held_out: What a test row is called: `days` or `rows`.
        task: `regression` or `classification`.
        budget: The facts behind the budget sentences; None leaves them out.

    Returns:
        The budget sentences, the significance sentences, then the naive-forecast ones.
    """
    lines = budget_findings(table, budget) if budget is not None else []
    return (lines + significance_findings(table, objective, direction)
            + naive_findings(table, held_out, task))


def budget_findings(table: pd.DataFrame, budget: BudgetFacts) -> list[str]:
    """Epochs trained against planned per tuner, and whether the trial-budget tuners
    matched their target within one trial."""
    grouped = table.groupby("tuner", sort=False)[["epochs", "planned_epochs"]].mean()
    lines = ["Epochs trained, mean over seeds (planned in brackets): " + ", ".join(
        f"{name} {figure(row.epochs)} ({figure(row.planned_epochs)})"
        for name, row in grouped.iterrows()) + "."]
    target = (f"{budget.reference}'s epochs with the same seed" if budget.reference
              else "Hyperband's planned epochs")
    for name in grouped.index:
        if budget.kinds.get(name) != "trials":
            continue
        rows = table[table["tuner"] == name]
        off = rows[(rows["epochs"] < rows["planned_epochs"])
                   | (rows["epochs"] >= rows["planned_epochs"] + budget.trial_epochs)]
        if off.empty:
            lines.append(f"{name} kept asking for trials until it had trained {target}, "
                         f"within one trial ({budget.trial_epochs} epochs), with every seed.")
            continue
        for row in off.itertuples():
            lines.append(f"{name} did not match {target} with seed {row.seed}: it trained "
                         f"{row.epochs} epochs against {row.planned_epochs} in {row.trials} "
                         f"trials (at most {budget.caps.get(name, 'n/a')}).")
    return lines


def significance_findings(table: pd.DataFrame, objective: str, direction: str) -> list[str]:
    """The best tuner by mean objective, then whether each other tuner differs from it."""
    words = objective_words(objective)
    names = list(dict.fromkeys(table["tuner"]))
    if len(names) < 2:
        return [f"Only {names[0]} ran, so there is no other tuner to compare it with."
                ] if names else []
    scores = table.pivot(index="seed", columns="tuner", values="best_val_loss")[names]
    means = scores.mean()
    best = str(means.idxmax() if direction == "max" else means.idxmin())
    if len(scores) == 1:
        values = ", ".join(f"{name} {figure(scores[name].iloc[0])}" for name in names)
        return [f"Significance cannot be judged with one seed: best {words} {values}; run "
                f"2 or more seeds (--seeds 3) to judge."]
    extreme = "highest" if direction == "max" else "lowest"
    lines = [f"{best} has the {extreme} best {words} on average: "
             f"{mean_std(means[best], scores[best].std(ddof=1))} over {len(scores)} seeds."]
    for name in names:
        if name == best:
            continue
        pair = scores[[best, name]].dropna()
        if len(pair) < 2:
            lines.append(f"{best} and {name} cannot be compared: fewer than 2 seeds give a "
                         f"best {words} for both.")
            continue
        lines.append(_pair_sentence(best, name, words,
                                    significance.compare_paired(pair[best], pair[name])))
    return lines


def _pair_sentence(best: str, other: str, words: str,
                   paired: significance.PairedComparison) -> str:
    if paired.mean_difference == 0 and math.isnan(paired.t_test_p):
        return (f"{best} and {other} do not differ: the same best {words} with every seed "
                f"({paired.seeds} seeds).")
    head = f"{best} beats {other}" if paired.differ else f"{best} and {other} do not differ"
    parts = []
    if paired.interval is not None:
        parts.append(f"95% bootstrap interval {figure(paired.interval[0])} to "
                     f"{figure(paired.interval[1])}")
    tests = [f"paired t-test p = {figure(paired.t_test_p)}"]
    if paired.wilcoxon_p is not None:
        tests.append(f"Wilcoxon signed-rank p = {figure(paired.wilcoxon_p)}")
    parts.append(", ".join([*tests, f"{paired.seeds} seeds"]))
    return (f"{head}: mean difference in best {words} ({other} minus {best}) "
            f"{figure(paired.mean_difference)} ({'; '.join(parts)}).")


def naive_findings(table: pd.DataFrame, held_out: str, task: str = "regression") -> list[str]:
    """Per tuner, whether its chosen models beat the naive forecast on the test rows."""
    if task != "regression":
        return ["The naive forecast comparison does not apply to classification: the "
                "Diebold–Mariano test compares squared errors."]
    lines = []
    for name in dict.fromkeys(table["tuner"]):
        rows = table[(table["tuner"] == name) & np.isfinite(
            table["dm_p_value"].astype("float64"))]
        if rows.empty:
            lines.append(f"The {name} models could not be tested against the naive forecast: "
                         f"their test errors equal its own, or their predictions are missing.")
            continue
        count = int(rows["test_rows"].iloc[0])
        verdicts = [significance.naive_verdict(row.dm_statistic, row.dm_p_value)
                    for row in rows.itertuples()]
        on_rows = f"the naive forecast on the {count} test {held_out}"
        if len(rows) == 1:
            row = next(rows.itertuples())
            lines.append(f"The {name} model {verdicts[0]} {on_rows}: MSE "
                         f"{figure(row.test_mse)} vs {figure(row.baseline_test_mse)}, DM "
                         f"{figure(row.dm_statistic)}, p = {figure(row.dm_p_value)}.")
            continue
        beats, loses, models = verdicts.count("beats"), verdicts.count("loses to"), len(rows)
        if beats == models:
            lead = f"All {models} {name} models (one per seed) beat"
        elif beats == 0:
            lead = f"None of the {models} {name} models (one per seed) beats"
        else:
            lead = f"{beats} of the {models} {name} models (one per seed) beat"
        losing = f", and {loses} {'loses' if loses == 1 else 'lose'} to it" if loses else ""
        lines.append(
            f"{lead} {on_rows}{losing}: mean MSE {figure(rows['test_mse'].mean())} vs "
            f"{figure(rows['baseline_test_mse'].mean())}; DM "
            f"{', '.join(figure(value) for value in rows['dm_statistic'])} and p = "
            f"{', '.join(figure(value) for value in rows['dm_p_value'])} for seeds "
            f"{', '.join(str(seed) for seed in rows['seed'])}.")
    return lines


def how_to_read(held_out: str) -> str:
    """The paragraph under the findings that says which tests decided them."""
    return ("Two tuners differ when the paired t-test over seeds (and, from "
            f"{significance.WILCOXON_MIN_SEEDS} seeds, the Wilcoxon signed-rank test) gives "
            f"p < {significance.ALPHA} and the 95% bootstrap interval of the mean "
            "difference leaves out 0; runs with the same seed are paired, and each tuner is "
            "compared with the best, without a correction for multiple comparisons. A model "
            "beats the naive forecast when the Diebold–Mariano test on its squared test "
            "errors (Harvey–Leybourne–Newbold correction, one step ahead) gives DM < 0 at "
            f"p < {significance.ALPHA}, two-sided; DM > 0 at that level means it "
            f"loses to it. Test {held_out} are the held-out rows, which no search saw.")


def read_findings(report: str) -> list[str]:
    """The findings at the head of a saved `report.md`, one sentence per bullet."""
    lines = report.splitlines()
    found = []
    for line in lines[2:]:
        if not line.startswith("- "):
            break
        found.append(line[2:])
    return found


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """One row per tuner: mean and standard deviation over seeds, sums of the costs."""
    grouped = table.groupby("tuner", sort=False)
    columns = {
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
    }
    if "planned_epochs" in table:
        # A comparison saved before planned epochs were recorded has no such column.
        columns["planned_epochs_mean"] = grouped["planned_epochs"].mean()
    return pd.DataFrame(columns).reset_index()


def format_report(config: Any, budget: dict[str, dict[str, Any]], seeds: list[int],
                  table: pd.DataFrame, summary: pd.DataFrame, prepared: Any, seconds: float,
                  facts: BudgetFacts) -> str:
    """The markdown report: the findings in words, how to read them, then the numbers.

    Args:
        config: The comparison's base configuration (`pipelines.config.Config`).
        budget: The planned trials and epochs per tuner
            (`pipelines.compare.comparison.plan_budget`).
        seeds: The seeds, in order.
        table: One row per tuner and seed, as in `comparison.csv`.
        summary: One row per tuner (`summarise`).
        prepared: The data: its `units`, `held_out`, `baseline` and `task` are named.
        seconds: The comparison's wall time.
        facts: The budget facts (`BudgetFacts`).

    Returns:
        The text of `report.md`.
    """
    tuner = config.tuner
    objective = tuner.objective
    head = findings(table, objective=objective, direction=config.direction,
                    held_out=prepared.held_out, task=prepared.task, budget=facts)
    trial_budget = [name for name in budget if facts.kinds.get(name) == "trials"]
    reference = facts.reference or "Hyperband's schedule"
    lines = [TITLE, "", *(f"- {sentence}" for sentence in head), "",
             how_to_read(prepared.held_out), "",
             f"**Budget.** Hyperband with max_epochs={tuner.max_epochs}, factor="
             f"{tuner.factor}, {tuner.hyperband_iterations} iteration(s) plans its trials and "
             f"epochs by its schedule. "
             + (f"Each trial-budget tuner ({', '.join(trial_budget)}) keeps asking for trials "
                f"of up to {tuner.max_epochs} epochs until its trials have trained as many "
                f"epochs as {reference} with the same seed, at most its cap of trials: early "
                f"stopping (patience {tuner.patience}) ends many trials sooner, so budgets "
                f"are equal in epochs trained, not in trials. " if trial_budget else "")
             + "Planned per tuner: "
             + ", ".join(f"{name} {'up to ' if name in trial_budget else ''}"
                         f"{figure(plan['trials'])} trials / {figure(plan['epochs'])} epochs"
                         for name, plan in budget.items()) + ".", "",
             f"**Setup.** Model {config.model.name} (search space `{config.model.space}`), "
             f"data {config.source}, objective {objective}, seeds "
             f"{', '.join(map(str, seeds))}, total wall time {figure(float(seconds))} s.", "",
             "## Per tuner (mean ± std over seeds)", "",
             f"| tuner | best {objective} | test MSE ({prepared.units} units) | naive test MSE | "
             "trials | epochs planned | epochs trained | wall time (s) | failed trials |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in summary.itertuples():
        lines.append(
            f"| {row.tuner} | {mean_std(row.best_val_loss_mean, row.best_val_loss_std)} | "
            f"{mean_std(row.test_mse_mean, row.test_mse_std)} | "
            f"{figure(row.baseline_test_mse)} | {figure(float(row.trials_mean))} | "
            f"{figure(getattr(row, 'planned_epochs_mean', None))} | "
            f"{figure(float(row.epochs_mean))} | {figure(float(row.seconds_mean))} | "
            f"{figure(row.failed_trials)} |")
    lines += ["", "## Per run", "",
              f"| tuner | seed | best {objective} | test MSE | test MAE | trials | epochs "
              "planned | epochs trained | DM | DM p | seconds |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in table.itertuples():
        lines.append(
            f"| {row.tuner} | {row.seed} | {figure(row.best_val_loss)} | "
            f"{figure(row.test_mse)} | {figure(row.test_mae)} | {figure(row.trials)} | "
            f"{figure(getattr(row, 'planned_epochs', None))} | {figure(row.epochs)} | "
            f"{figure(getattr(row, 'dm_statistic', None))} | "
            f"{figure(getattr(row, 'dm_p_value', None))} | {figure(float(row.seconds))} |")
    lines += ["", f"Best {objective} is the search's objective (on the scaled target); test "
                  f"scores are the chosen model's on the held-out {prepared.held_out}, in "
                  f"{prepared.units} units, beside the naive forecast ({prepared.baseline}). "
                  "DM is the Diebold–Mariano statistic of the model's squared test errors "
                  "against the naive forecast's.",
              "", "![anytime](plot_anytime.png)", ""]
    return "\n".join(lines)
