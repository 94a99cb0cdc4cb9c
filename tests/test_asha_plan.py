"""ASHA's plan (progress lines, compare budgets) and its schedule plot, drawn as it ran.

The plan and the plot tests train nothing: the plan is arithmetic, checked against the
oracle driven one trial after another (tests/test_asha.py's `drive`), and the plot is
drawn from hand-written trials. One tiny `ktlab compare` runs Hyperband, ASHA and random
search at equal epoch budgets.
"""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd
import pytest
from conftest import make_prices, yahoo_csv
from matplotlib.figure import Figure
from test_asha import drive, make, trained

from pipelines.cli import main
from pipelines.compare.comparison import plan_budget
from pipelines.config import load_config
from pipelines.reports import plots, rung_plots
from pipelines.run import progress
from tuners import registry
from tuners.errors import TunerConfigError
from tuners.plans import rungs


def test_plan_replays_the_oracle_run_one_trial_after_another(tmp_path):
    # Hyperband's 75 epochs for max_epochs=9, factor=3 (23 trials) in 49 ASHA trials:
    # 35 new configurations of 1 epoch, 11 promotions 1 -> 3 and 3 promotions 3 -> 9.
    assert rungs.rung_sizes(9, 3) == [35, 11, 3]
    assert rungs.planned_budget(9, 3, 1) == (49, 35 * 1 + 11 * 2 + 3 * 6) == (49, 75)
    records = drive(make(tmp_path))
    assert len(records) == 49
    assert trained(records) == 75
    assert Counter(values["tuner/round"] for _, values, _ in records) == {0: 35, 1: 11, 2: 3}
    # max_epochs=2, factor=2: 5 new trials and 2 promotions, the 7 trials of
    # tests/test_asha.py's real search.
    assert rungs.planned_budget(2, 2, 1) == (7, 7)
    assert rungs.planned_budget(9, 3, 2) == (94, 150)
    # Options of the oracle change the plan; the others are ignored.
    assert rungs.planned_budget(9, 3, 1, {"epoch_budget": 20, "seed_size": 4}) == (16, 20)
    assert rungs.planned_budget(9, 3, 1, {"max_trials": 10}) == (10, 12)
    assert rungs.planned_budget(27, 3, 1, {"min_epochs": 3}) == (
        sum(rungs.rung_sizes(27, 3, min_epochs=3)), 375)
    with pytest.raises(TunerConfigError, match=r"min_epochs \(10\) exceeds max_epochs \(9\)"):
        rungs.planned_budget(9, 3, 1, {"min_epochs": 10})


def test_progress_and_compare_count_ashas_trials_not_hyperbands():
    assert registry.TUNERS["asha"].planned_budget(9, 3, 1) == (49, 75)
    config = load_config(overrides={"tuner": {"name": "asha", "max_epochs": 9, "factor": 3}})
    plan = progress.Plan.of(config.tuner)
    assert plan == progress.Plan(49, 75)
    # The first trial's line counts against ASHA's 49 trials, not Hyperband's 23.
    shown = progress.Progress(plan, "val_loss", "min")
    shown.trials = 1
    assert shown.line({"status": "completed", "epochs": 1, "seconds": 2.0}).startswith(
        "trial 1/49 · 1 epochs · 2.0 s · best val_loss n/a")
    budget = plan_budget(config, ["hyperband", "asha", "random"])
    assert budget["hyperband"] == {"trials": 23, "epochs": 75, "max_epochs": 9}
    assert budget["asha"] == {"trials": 49, "epochs": 75, "max_epochs": 9}
    assert budget["random"]["epochs"] == 75


def asha_trials() -> pd.DataFrame:
    """Six trials of an ASHA run at rungs 1, 3, 9: trial 01 promoted to 03, then to 05."""
    return pd.DataFrame({
        "trial_id": ["00", "01", "02", "03", "04", "05"],
        "status": ["completed", "completed", "failed", "completed", "completed", "completed"],
        "target_epochs": [1, 1, 1, 3, 1, 9],
        "initial_epoch": [0, 0, 0, 1, 0, 3],
        "parent_trial_id": [None, None, None, "01", None, "03"],
        "epochs_trained": [1, 1, 1, 2, 1, 6],
    })


def test_rung_plot_draws_the_rungs_and_promotions_that_ran():
    trials = asha_trials()
    counts = rung_plots.rung_counts(trials)
    assert counts.to_dict("records") == [{"epochs": 1, "trials": 4, "promoted": 1},
                                         {"epochs": 3, "trials": 1, "promoted": 1},
                                         {"epochs": 9, "trials": 1, "promoted": 0}]
    figure = rung_plots.plot_rungs(trials)
    bars, timeline = figure.axes
    # Promoted (dark) then not promoted (light), per rung.
    assert [patch.get_height() for patch in bars.patches] == [1, 1, 0, 3, 0, 1]
    links = [line for line in timeline.get_lines() if line.get_gid() == "promotion"]
    assert [(list(line.get_xdata()), list(line.get_ydata())) for line in links] == [
        ([2, 4], [0, 1]), ([4, 6], [1, 2])]
    assert [line.get_gid() for line in timeline.get_lines()].count("failed") == 1
    assert figure.get_suptitle() == ("ASHA, as run: 6 trials, 12 epochs, 2 promotions; "
                                     "rungs at 1, 3, 9 epochs")


def write_run(run_dir, tuner: str) -> None:
    """A run directory whose histories hold `asha_trials()`, with `config.json`."""
    run_dir.mkdir(parents=True)
    lines = []
    for row in asha_trials().itertuples():
        parent = row.parent_trial_id
        lines.append({"event": "trial_start", "trial_id": row.trial_id,
                      "hyperparameters": {"units": 8}, "bracket": 0, "round": 0,
                      "parent_trial_id": parent, "initial_epoch": row.initial_epoch,
                      "target_epochs": row.target_epochs, "time": "2026-11-29T00:00:00+00:00"})
        for epoch in range(row.initial_epoch, row.target_epochs):
            lines.append({"event": "epoch", "trial_id": row.trial_id, "execution": 0,
                          "epoch": epoch, "seconds": 0.1,
                          "metrics": {"loss": 1.0 / (epoch + 1), "val_loss": 1.0 / (epoch + 1)}})
        lines.append({"event": "trial_end", "trial_id": row.trial_id, "status": row.status,
                      "score": 0.5, "epochs": row.epochs_trained,
                      "epochs_trained": row.epochs_trained, "target_epochs": row.target_epochs,
                      "seconds": 1.0, "hyperparameters": {"units": 8}})
    (run_dir / "histories.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (run_dir / "config.json").write_text(json.dumps(
        {"tuner": {"name": tuner, "max_epochs": 9, "factor": 3, "hyperband_iterations": 1}}))


def test_asha_run_gets_its_rungs_not_hyperbands_schedule(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(plots, "plot_schedule", lambda plan: drawn.append(plan) or Figure())
    write_run(tmp_path / "asha", "asha")
    write_run(tmp_path / "hyperband", "hyperband")

    asha = {path.name for path in plots.write_plots(tmp_path / "asha")}
    assert "plot_schedule.png" in asha
    assert drawn == []
    plots.write_plots(tmp_path / "hyperband")
    assert [(plan.max_epochs, plan.factor, plan.total_trials) for plan in drawn] == [(9, 3, 23)]


@pytest.mark.slow
def test_compare_hyperband_asha_and_random_at_equal_epoch_budgets(tmp_path, write_csv):
    path = write_csv(yahoo_csv(make_prices(160)))
    code = main(["compare", "--data", str(path), "--lookback", "5", "--test-size", "20",
                 "--validation-size", "20", "--output-dir", str(tmp_path), "--run-name", "cmp",
                 "--search-space", '{"units": [4], "num_layers": [1, 1], "batch_size": [32]}',
                 "--max-epochs", "2", "--factor", "2", "--tuners", "hyperband,asha,random",
                 "--seeds", "1", "--no-refit", "--quiet"])
    assert code == 0
    out_dir = tmp_path / "cmp"
    budget = json.loads((out_dir / "budget.json").read_text())
    assert budget == {"hyperband": {"trials": 5, "epochs": 7, "max_epochs": 2},
                      "asha": {"trials": 7, "epochs": 7, "max_epochs": 2},
                      "random": {"trials": 7, "epochs": 7, "max_epochs": 2}}
    table = pd.read_csv(out_dir / "comparison.csv").set_index("tuner")
    assert list(table.index) == ["hyperband", "asha", "random"]
    assert table.loc["hyperband", "trials"] == 5
    # Every ASHA trial trains one epoch here (a new one to 1, a promotion 1 -> 2).
    assert table.loc["asha", "trials"] == 7
    assert table.loc["hyperband", "epochs"] == table.loc["asha", "epochs"] == 7
    assert table["planned_epochs"].tolist() == [7, 7, 7]
    # Random search asks for trials of 2 epochs until it has trained Hyperband's 7.
    assert table.loc["random", "epochs"] == 8
    assert (out_dir / "asha-seed42" / "plot_schedule.png").stat().st_size > 10_000
    report = (out_dir / "report.md").read_text()
    assert ("Epochs trained, mean over seeds (planned in brackets): hyperband 7.000 (7.000), "
            "asha 7.000 (7.000), random 8.000 (7.000).") in report
