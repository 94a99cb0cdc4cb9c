"""`ktlab compare` on tiny budgets: a row per tuner and seed, equal epoch budgets."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import make_prices, yahoo_csv

from pipelines.cli import main
from pipelines.compare import plan_budget, seeds_from
from pipelines.config import load_config
from pipelines.errors import ConfigError
from tuners import schedule


def test_budgets_match_hyperbands_schedule_within_one_trial():
    config = load_config(overrides={"tuner": {"max_epochs": 9, "factor": 3}})
    budget = plan_budget(config, ["hyperband", "bayesian", "random", "genetic"])
    assert schedule.keras_tuner_schedule(9, 3).total_epochs == 75
    assert budget["hyperband"] == {"trials": 23, "epochs": 75, "max_epochs": 9}
    assert budget["random"] == {"trials": 8, "epochs": 72, "max_epochs": 9}
    for name in ("bayesian", "random", "genetic"):
        assert abs(budget[name]["epochs"] - budget["hyperband"]["epochs"]) <= 9


def test_seeds_from_counts_and_lists():
    assert seeds_from("3", 42) == [42, 1042, 2042]
    assert seeds_from("5,6", 42) == [5, 6]
    with pytest.raises(ConfigError, match="--seeds must be distinct whole numbers >= 1"):
        seeds_from("5,5", 42)
    with pytest.raises(ConfigError, match="--seeds must be a count such as 3"):
        seeds_from("three", 42)


@pytest.mark.slow
def test_compare_writes_a_row_per_tuner_and_seed(tmp_path, write_csv, capsys):
    path = write_csv(yahoo_csv(make_prices(160)))
    code = main(["compare", "--data", str(path), "--lookback", "5", "--test-size", "20",
                 "--validation-size", "20", "--output-dir", str(tmp_path), "--run-name", "cmp",
                 "--search-space", '{"units": [4], "num_layers": [1, 1], "batch_size": [32]}',
                 "--max-epochs", "2", "--factor", "2", "--tuners", "hyperband,random",
                 "--seeds", "2"])
    assert code == 0
    out_dir = tmp_path / "cmp"
    table = pd.read_csv(out_dir / "comparison.csv")
    assert list(zip(table["tuner"], table["seed"], strict=True)) == [
        ("hyperband", 42), ("hyperband", 1042), ("random", 42), ("random", 1042)]
    planned = schedule.keras_tuner_schedule(2, 2)
    hyperband_rows = table[table["tuner"] == "hyperband"]
    assert (hyperband_rows["trials"] == planned.total_trials).all()
    random_rows = table[table["tuner"] == "random"]
    assert (random_rows["trials"] == round(planned.total_epochs / 2)).all()
    # Planned epochs are equal within one trial's epochs; early stopping only trains fewer.
    budget = json.loads((out_dir / "budget.json").read_text())
    assert abs(budget["random"]["epochs"] - budget["hyperband"]["epochs"]) <= 2
    for name in ("hyperband", "random"):
        assert (table[table["tuner"] == name]["epochs"] <= budget[name]["epochs"]).all()
    for row in table.itertuples():
        assert (out_dir / f"{row.tuner}-seed{row.seed}" / "best_model.keras").exists()
    report = (out_dir / "report.md").read_text().splitlines()
    assert report[0] == "# Tuner comparison"
    assert report[2].startswith(f"**Budget.** Hyperband with max_epochs=2, factor=2, 1 "
                                f"iteration(s) plans {planned.total_trials} trials and "
                                f"{planned.total_epochs} epochs;")
    assert (out_dir / "plot_anytime.png").stat().st_size > 10_000
    assert main(["plot", str(out_dir)]) == 0
