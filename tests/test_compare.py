"""`ktlab compare` on tiny budgets: a row per tuner and seed, equal epochs trained."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from conftest import make_prices, yahoo_csv

from pipelines.cli import main
from pipelines.compare import significance
from pipelines.compare.comparison import plan_budget, seeds_from
from pipelines.config import load_config
from pipelines.errors import ConfigError
from tuners.errors import TunerConfigError
from tuners.plans import schedule


def test_budgets_match_hyperbands_schedule_within_one_trial():
    config = load_config(overrides={"tuner": {"max_epochs": 9, "factor": 3}})
    budget = plan_budget(config, ["hyperband", "bayesian", "random", "genetic"])
    assert schedule.keras_tuner_schedule(9, 3).total_epochs == 75
    assert budget["hyperband"] == {"trials": 23, "epochs": 75, "max_epochs": 9}
    # Trial-budget tuners aim at Hyperband's epochs; their cap on trials allows for every
    # trial stopped early after patience + 1 = 4 epochs, plus 3 failed ones.
    assert budget["random"] == {"trials": 22, "epochs": 75, "max_epochs": 9}
    for name in ("bayesian", "random", "genetic"):
        assert budget[name]["epochs"] == budget["hyperband"]["epochs"]


def tiny_search(directory, **arguments):
    """A random search of a tiny dense model whose every trial stops after 2 of 3 epochs,
    as early stopping would; it returns the tuner after the search."""
    import keras
    import numpy as np

    import hypermodels
    import tuners

    class StopAfterTwoEpochs(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch >= 1:
                self.model.stop_training = True

    features = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    targets = features @ np.array([[1.0], [-2.0], [0.5], [0.0]], dtype="float32")
    hypermodel = hypermodels.DenseHyperModel(input_shape=(4,), units=[4, 8], num_layers=[1, 1],
                                             learning_rate=(1e-3, 1e-2), batch_size=[16])
    tuner = tuners.build_tuner("random", hypermodel, directory=directory, seed=3, **arguments)
    tuner.search(features, targets, validation_data=(features, targets), epochs=3,
                 callbacks=[StopAfterTwoEpochs()], verbose=0)
    return tuner


def test_a_trial_budget_search_stops_at_its_epoch_target(tmp_path):
    import tuners
    from tuners.observers import epoch_limit

    # Ten trials of 3 epochs were planned; each stops after 2, so reaching 3 epochs
    # takes 2 trials, and the last one overshoots by less than one trial.
    tuner = tiny_search(tmp_path, max_trials=10, max_trained_epochs=3)
    trials = tuners.load_trials(tmp_path)
    assert len(tuner.oracle.trials) == len(trials) == 2
    assert trials["epochs_trained"].tolist() == [2, 2]
    assert trials["status"].tolist() == ["stopped_early"] * 2
    assert tuner.observer(epoch_limit.EpochLimit).trained_epochs() == 4
    # Searched again, the resumed search finds its epochs spent and trains nothing; the
    # oracle does not save the lowered cap, so it is 10 again before the search.
    again = tiny_search(tmp_path, max_trials=10, max_trained_epochs=3)
    assert len(again.oracle.trials) == 2 and again.oracle.max_trials == 2
    assert tuners.load_trials(tmp_path)["epochs_trained"].sum() == 4


def test_a_bad_epoch_target_is_refused(tmp_path):
    import hypermodels
    import tuners

    with pytest.raises(TunerConfigError, match="max_trained_epochs must be a whole number "
                                               ">= 1, got 0; raise it or leave it out"):
        tuners.build_tuner("random", hypermodels.DenseHyperModel(input_shape=(4,)),
                           directory=tmp_path, max_trials=3, max_trained_epochs=0)


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
                 "--max-epochs", "2", "--factor", "2", "--tuners", "random,hyperband",
                 "--seeds", "2"])
    assert code == 0
    out_dir = tmp_path / "cmp"
    table = pd.read_csv(out_dir / "comparison.csv")
    # Hyperband runs first, since random search matches its epochs, but the table keeps
    # the order of --tuners.
    assert list(zip(table["tuner"], table["seed"], strict=True)) == [
        ("random", 42), ("random", 1042), ("hyperband", 42), ("hyperband", 1042)]
    planned = schedule.keras_tuner_schedule(2, 2)
    assert (planned.total_trials, planned.total_epochs) == (5, 7)
    budget = json.loads((out_dir / "budget.json").read_text())
    assert budget == {"random": {"trials": 7, "epochs": 7, "max_epochs": 2},
                      "hyperband": {"trials": 5, "epochs": 7, "max_epochs": 2}}
    hyperband_rows = table[table["tuner"] == "hyperband"].set_index("seed")
    random_rows = table[table["tuner"] == "random"].set_index("seed")
    assert hyperband_rows["trials"].tolist() == [5, 5]
    assert hyperband_rows["planned_epochs"].tolist() == [7, 7]
    # Random search asked for trials of 2 epochs until it had trained Hyperband's epochs
    # with the same seed: within one trial of them, never short.
    for seed in (42, 1042):
        target = hyperband_rows.loc[seed, "epochs"]
        assert target == 7
        assert random_rows.loc[seed, "planned_epochs"] == target
        assert target <= random_rows.loc[seed, "epochs"] < target + 2
        saved = json.loads((out_dir / f"random-seed{seed}" / "config.json").read_text())
        assert saved["tuner"]["options"] == {"max_trained_epochs": target}
    assert random_rows["trials"].tolist() == [4, 4]
    assert random_rows["epochs"].tolist() == [8, 8]
    # Each chosen model against the naive forecast, on the 15 test windows.
    for row in table.itertuples():
        run_dir = out_dir / f"{row.tuner}-seed{row.seed}"
        assert (run_dir / "best_model.keras").exists()
        predictions = pd.read_csv(run_dir / "predictions.csv")
        test = significance.diebold_mariano(predictions["actual"], predictions["predicted"],
                                            predictions["baseline"])
        assert row.test_rows == test.rows == 15
        assert row.dm_statistic == pytest.approx(test.statistic)
        assert row.dm_p_value == pytest.approx(test.p_value)
        assert row.test_mse == pytest.approx(test.model_mse)
    report = (out_dir / "report.md").read_text().splitlines()
    assert report[:4] == [
        "# Tuner comparison", "",
        "- Epochs trained, mean over seeds (planned in brackets): random 8.000 (7.000), "
        "hyperband 7.000 (7.000).",
        "- random kept asking for trials until it had trained hyperband's epochs with the same "
        "seed, within one trial (2 epochs), with every seed."]
    best = "random" if random_rows["best_val_loss"].mean() < hyperband_rows[
        "best_val_loss"].mean() else "hyperband"
    other = "hyperband" if best == "random" else "random"
    assert report[4].startswith(f"- {best} has the lowest best validation loss on average: ")
    assert re.fullmatch(rf"- ({best} beats {other}|{best} and {other} do not differ): mean "
                        rf"difference in best validation loss \({other} minus {best}\) \S+ "
                        rf"\(95% bootstrap interval \S+ to \S+; paired t-test p = \S+, 2 "
                        rf"seeds\)\.", report[5])
    for line, name in zip(report[6:8], ("random", "hyperband"), strict=True):
        assert re.match(rf"- (None of the 2|All 2|1 of the 2) {name} models \(one per seed\) "
                        rf"beats? the "
                        rf"naive forecast on the 15 test days", line)
    assert report[8] == ""
    # The command prints the report, its findings first.
    assert "\n".join(report[:8]) in capsys.readouterr().out
    assert (out_dir / "plot_anytime.png").stat().st_size > 10_000
    assert main(["plot", str(out_dir)]) == 0
