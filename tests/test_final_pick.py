"""The final pick across seeds: its rule on known tables (no training), its settings, and
one tiny real `ktlab tune --final-top 2 --final-seeds 2`."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pandas as pd
import pytest
from conftest import PROBE, make_prices, yahoo_csv

from pipelines.config import load_config
from pipelines.errors import ConfigError
from pipelines.run import final_pick


def known_scores() -> pd.DataFrame:
    """Three configurations in search-rank order, three seeds each.

    Trial a has the best single seed among those that count (0.10) but a wide spread;
    trial b is steadier and has the best mean; trial c has the best seed of all (0.01) but
    diverged on another.
    """
    return pd.DataFrame({
        "rank": [1, 2, 3], "trial_id": ["a", "b", "c"], "epochs": [4, 2, 3],
        "search_score": [0.09, 0.16, 0.12],
        "seed_1042": [0.10, 0.17, 0.01], "seed_2042": [0.20, 0.19, math.nan],
        "seed_3042": [0.30, 0.15, 0.02]})


def test_the_rule_chooses_the_best_mean_not_the_best_single_seed():
    table = final_pick.summarize(known_scores(), "min")
    assert table.columns.tolist() == [
        "rank", "trial_id", "epochs", "search_score", "seeds", "mean", "std", "seed_1042",
        "seed_2042", "seed_3042", "closest_seed", "chosen"]
    assert table["chosen"].tolist() == [False, True, False]
    assert table["seeds"].tolist() == ["1042 2042 3042"] * 3
    assert table["mean"].iloc[:2].tolist() == pytest.approx([0.2, 0.17])
    # The sample standard deviation (ddof=1): of 0.1, 0.2, 0.3 it is 0.1.
    assert table["std"].iloc[:2].tolist() == pytest.approx([0.1, 0.02])
    # A diverged seed leaves no mean: trial c is no candidate.
    assert math.isnan(table["mean"].iloc[2]) and math.isnan(table["std"].iloc[2])
    assert table["closest_seed"].iloc[:2].tolist() == [2042, 1042]
    assert pd.isna(table["closest_seed"].iloc[2])


def test_a_tied_mean_goes_to_the_better_rank_and_max_picks_the_highest():
    # Binary fractions, so that the means tie exactly.
    scores = pd.DataFrame({"rank": [1, 2, 3], "trial_id": ["x", "y", "z"],
                           "seed_7": [0.75, 0.5, 0.875], "seed_1007": [0.25, 0.5, 0.625]})
    lowest = final_pick.summarize(scores, "min")
    assert lowest.loc[lowest["chosen"], "trial_id"].tolist() == ["x"]
    highest = final_pick.summarize(scores, "max")
    assert highest.loc[highest["chosen"], "trial_id"].tolist() == ["z"]
    # Two seeds equally far from the mean: the earlier seed is the saved one.
    assert highest["closest_seed"].tolist() == [7, 7, 7]
    # Also where float rounding makes the later seed nearer by one bit (0.3 - 0.2 is
    # 0.09999999999999998, 0.2 - 0.1 is 0.1).
    rounded = pd.DataFrame({"rank": [1], "trial_id": ["w"], "seed_1": [0.1], "seed_2": [0.3]})
    assert final_pick.summarize(rounded, "min")["closest_seed"].tolist() == [1]


def test_when_every_configuration_diverged_nothing_is_chosen():
    scores = pd.DataFrame({"rank": [1, 2], "trial_id": ["a", "b"],
                           "seed_1": [math.nan, 0.5], "seed_2": [0.4, math.inf]})
    table = final_pick.summarize(scores, "min")
    assert table["chosen"].tolist() == [False, False]
    record = final_pick.final_record(table, "val_loss", "min", "a", None)
    assert record["trial_id"] is None
    assert final_pick.report_lines(record)[-1] == (
        "  every configuration diverged on some seed; the search's best, trial a, was saved")


def test_seeds_are_new_and_the_same_for_every_configuration():
    assert final_pick.final_seeds(42, 3) == [1042, 2042, 3042]


def test_a_hyperband_configuration_continued_across_rounds_counts_once():
    trials = pd.DataFrame({
        "trial_id": ["0", "1", "2", "3", "4"],
        "status": ["completed", "completed", "completed", "completed", "failed"],
        "score": [0.5, 0.3, 0.4, 0.2, 0.1],
        "hp_units": [8, 16, 32, 16, 64], "hp_dropout": [0.1, 0.2, 0.3, 0.2, 0.4]})
    # Trial 3 continued trial 1 (same hyperparameters); failed trial 4 does not count.
    assert final_pick.candidates(trials, "min", 3)["trial_id"].tolist() == ["3", "2", "0"]
    assert final_pick.candidates(trials, "min", 1)["trial_id"].tolist() == ["3"]


def test_the_report_section_states_the_numbers_and_the_rule():
    table = final_pick.summarize(known_scores(), "min")
    record = final_pick.final_record(table, "val_loss", "min", "a", 1042)
    assert record["trial_id"] == "b" and record["seed"] == 1042
    assert record["trainings"] == 9
    assert record["configurations"][2]["mean"] is None
    assert final_pick.report_lines(record) == [
        "final pick across seeds (final.csv): the 3 best configurations retrained with seeds "
        "1042, 2042, 3042 on the training rows, val_loss on the validation rows (mean ± std "
        "over seeds; the test rows are not used):",
        "  rank 1  trial a  search 0.09  mean 0.2 ± 0.1  seeds 0.1, 0.2, 0.3",
        "  rank 2  trial b  search 0.16  mean 0.17 ± 0.02  seeds 0.17, 0.19, 0.15  <- chosen",
        "  rank 3  trial c  search 0.12  mean n/a ± n/a  seeds 0.01, n/a, 0.02",
        "  chosen: trial b by the best mean val_loss; the search's best, trial a, has a worse "
        "mean",
        "  its mean leads trial a's by 0.03, within the seed spread (std up to 0.1): the "
        "configurations tie within seed noise (more --final-seeds narrow the means' "
        "uncertainty)",
        "  saved model: seed 1042, the seed whose score is closest to its configuration's "
        "mean (a tie: the earlier seed)"]


def test_a_lead_larger_than_the_spread_is_said_so():
    rows = [{"trial_id": "a", "mean": 0.5, "std": 0.01}, {"trial_id": "b", "mean": 0.3,
                                                          "std": 0.02}]
    assert final_pick.spread_sentence(rows, "min") == (
        "its mean leads trial a's by 0.2, more than the seed spread (std up to 0.02): a "
        "difference larger than seed noise")


@pytest.mark.parametrize(("run", "tuner", "message"), [
    ({"final_top": -1}, {}, "final top must be >= 0, got -1; fix --final-top"),
    ({"final_top": 2, "final_seeds": 1}, {}, "final seeds must be >= 2, got 1; fix --final-seeds"),
    ({"final_top": 2}, {"objectives": ["val_loss", "params"]},
     "--final-top 2 picks by the mean of one objective, --objectives by the Pareto rule; pass "
     "one of them"),
])
def test_bad_final_pick_settings_are_refused(run, tuner, message):
    with pytest.raises(ConfigError) as error:
        load_config(overrides={"run": run, "tuner": tuner})
    assert str(error.value) == message


def test_the_defaults_leave_it_off():
    config = load_config()
    assert (config.run.final_top, config.run.final_seeds) == (0, 3)


def test_a_bad_flag_is_one_line_and_exit_2_before_tensorflow(tmp_path):
    environment = {**os.environ, "KTLAB_IMPORTED": str(tmp_path / "imported")}
    result = subprocess.run([sys.executable, "-c", PROBE, "tune", "--final-top", "2",
                             "--final-seeds", "1"], capture_output=True, text=True,
                            cwd=tmp_path, env=environment, timeout=120)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        "ktlab: error: final seeds must be >= 2, got 1; fix --final-seeds"]
    assert (tmp_path / "imported").read_text() == "False"


def test_tune_with_a_final_pick_writes_final_csv_metrics_and_the_report(tmp_path, write_csv):
    import keras

    from pipelines.cli import main
    from pipelines.run.build import make_pipeline

    path = write_csv(yahoo_csv(make_prices(160)))
    flags = ["--data", str(path), "--lookback", "5", "--test-size", "20", "--validation-size",
             "20", "--search-space", '{"units": [4], "num_layers": [1, 1], "batch_size": [32]}']
    assert main(["tune", *flags, "--output-dir", str(tmp_path / "runs"), "--tuner", "random",
                 "--max-trials", "2", "--max-epochs", "1", "--seed", "7", "--no-refit",
                 "--final-top", "2", "--final-seeds", "2", "--quiet"]) == 0
    run_dir = tmp_path / "runs" / "lstm-random-prices-seed7"
    final = pd.read_csv(run_dir / "final.csv", dtype={"trial_id": str})
    assert final.columns.tolist() == [
        "rank", "trial_id", "hyperparameters", "epochs", "search_score", "seeds", "mean",
        "std", "seed_1007", "seed_2007", "closest_seed", "chosen"]
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
    ranked = trials.sort_values("score")
    assert final["trial_id"].tolist() == ranked["trial_id"].tolist()
    assert final["rank"].tolist() == [1, 2] and final["epochs"].tolist() == [1, 1]
    assert final["search_score"].tolist() == pytest.approx(ranked["score"].tolist())
    assert final["mean"].tolist() == pytest.approx(
        final[["seed_1007", "seed_2007"]].mean(axis=1).tolist())
    assert final["chosen"].sum() == 1
    chosen = final[final["chosen"]].iloc[0]
    assert chosen["mean"] == final["mean"].min()
    # Two seeds are equally far from their mean: the earlier one is saved.
    assert final["closest_seed"].tolist() == [1007, 1007]

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["best_trial_id"] == metrics["final_pick"]["trial_id"] == chosen["trial_id"]
    assert metrics["final_pick"]["seeds"] == [1007, 2007]
    assert metrics["best_model"] == {"source": "final_pick", "trial_id": chosen["trial_id"],
                                     "seed": 1007}
    assert json.loads((run_dir / "best_hyperparameters.json").read_text()) == json.loads(
        chosen["hyperparameters"])
    # The saved model is the chosen configuration's seed-1007 model: it reproduces that
    # seed's validation loss in final.csv.
    model = keras.saving.load_model(run_dir / "best_model.keras", safe_mode=True)
    config = load_config(overrides={"data": {"source": str(path), "lookback": 5,
                                             "test_size": 20, "validation_size": 20}})
    prepared = make_pipeline(config).prepare()
    assert model.evaluate(prepared.splits["validation"].dataset, verbose=0,
                          return_dict=True)["loss"] == pytest.approx(chosen["seed_1007"],
                                                                     rel=1e-5)

    report = (run_dir / "report.md").read_text()
    assert report.startswith("# lstm-random-prices-seed7\n")
    assert ("final pick across seeds (final.csv): the 2 best configurations retrained with "
            "seeds 1007, 2007 on the training rows") in report
    for _, row in final.iterrows():
        line = (f"  rank {row['rank']}  trial {row['trial_id']}  search "
                f"{row['search_score']:.4g}  mean {row['mean']:.4g} ± {row['std']:.4g}  "
                f"seeds {row['seed_1007']:.4g}, {row['seed_2007']:.4g}")
        assert line + ("  <- chosen" if row["chosen"] else "") in report.splitlines()
    assert (f"  best_model.keras: trial {chosen['trial_id']}'s configuration trained with seed "
            f"1007 (final pick)") in report.splitlines()
