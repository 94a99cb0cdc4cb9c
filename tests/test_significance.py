"""The compare report's verdicts: known results in, exact sentences and numbers out.

Nothing here trains: the tests feed the report tables of known scores, and the
Diebold–Mariano test series whose statistic is worked out by hand.
"""

from __future__ import annotations

import math
import types

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pipelines.compare import report as compare_report
from pipelines.compare import significance
from pipelines.compare.report import BudgetFacts, figure, findings, format_report, mean_std
from pipelines.config import load_config

SEEDS = [42, 1042, 2042, 3042, 4042]
HYPERBAND = [0.100, 0.102, 0.098, 0.101, 0.099]
# Random search is worse by 0.05 with every seed, give or take 0.002: far beyond the spread.
RANDOM_GAP = [0.050, 0.052, 0.048, 0.051, 0.049]
# Bayesian optimisation is as good as Hyperband: its gaps change sign from seed to seed.
BAYESIAN_GAP = [0.0012, -0.0009, 0.0004, -0.0002, 0.0001]


def scores_table(seeds: list[int] = SEEDS) -> pd.DataFrame:
    rows = []
    for index, seed in enumerate(seeds):
        for tuner, gap in (("hyperband", 0.0), ("random", RANDOM_GAP[index]),
                           ("bayesian", BAYESIAN_GAP[index])):
            rows.append({"tuner": tuner, "seed": seed,
                         "best_val_loss": HYPERBAND[index] + gap})
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("value", "text"), [
    (0.0123456, "0.01235"),
    (0.002, "0.002000"),
    (1.234e-4, "0.0001234"),
    (1.2345e-5, "1.234e-05"),
    (123456.0, "1.235e+05"),
    (1234.4, "1234"),
    (100.0, "100.0"),
    (-0.0021, "-0.002100"),
    (-0.0, "0.000"),
    (np.float64(2.5), "2.500"),
    (7, "7"),
    (np.int64(75), "75"),
    (float("nan"), "n/a"),
    (None, "n/a"),
    (float("inf"), "inf"),
])
def test_figure_writes_four_significant_digits(value, text):
    assert figure(value) == text


def test_mean_and_spread_have_the_same_precision():
    assert mean_std(0.0123, 0.002) == "0.01230 ± 0.002000"
    assert mean_std(1.5, float("nan")) == "1.500"


def test_a_clear_winner_and_a_tie_over_five_seeds():
    lines = compare_report.significance_findings(scores_table(), "val_loss", "min")
    assert lines == [
        "hyperband has the lowest best validation loss on average: 0.1000 ± 0.001581 over 5 "
        "seeds.",
        "hyperband beats random: mean difference in best validation loss (random minus "
        "hyperband) 0.05000 (95% bootstrap interval 0.04880 to 0.05120; paired t-test p = "
        "2.397e-07, 5 seeds).",
        "hyperband and bayesian do not differ: mean difference in best validation loss "
        "(bayesian minus hyperband) 0.0001200 (95% bootstrap interval -0.0004800 to "
        "0.0007600; paired t-test p = 0.7459, 5 seeds).",
    ]
    # The t-test's p-value, worked out by hand: the gaps' standard deviation is
    # sqrt(1e-5 / 4), so t = 0.05 / (sd / sqrt(5)) = 70.71 with 4 degrees of freedom.
    t_statistic = 0.05 / (math.sqrt(1e-5 / 4) / math.sqrt(5))
    assert t_statistic == pytest.approx(70.71, abs=0.01)
    assert figure(2 * stats.t.sf(t_statistic, df=4)) == "2.397e-07"


def test_from_six_seeds_the_wilcoxon_test_joins_the_t_test():
    seeds = [1, 2, 3, 4, 5, 6]
    rows = [{"tuner": tuner, "seed": seed,
             "best_val_loss": 0.2 + 0.001 * seed + (0.03 + 0.001 * (seed % 3)
                                                    if tuner == "random" else 0.0)}
            for tuner in ("hyperband", "random") for seed in seeds]
    lines = compare_report.significance_findings(pd.DataFrame(rows), "val_loss", "min")
    # Six gaps of one sign: the exact Wilcoxon p-value is 2 / 2**6.
    assert lines[1] == (
        "hyperband beats random: mean difference in best validation loss (random minus "
        "hyperband) 0.03100 (95% bootstrap interval 0.03033 to 0.03167; paired t-test p = "
        "4.297e-09, Wilcoxon signed-rank p = 0.03125, 6 seeds).")
    assert 2 / 2**6 == 0.03125


def test_a_maximised_objective_picks_the_highest():
    table = scores_table()
    lines = compare_report.significance_findings(table, "val_accuracy", "max")
    assert lines[0] == ("random has the highest best validation accuracy on average: "
                        "0.1500 ± 0.003162 over 5 seeds.")
    assert lines[1].startswith("random beats hyperband: mean difference in best validation "
                               "accuracy (hyperband minus random) -0.05000")


def test_one_seed_cannot_be_judged():
    lines = compare_report.significance_findings(scores_table([42]), "val_loss", "min")
    assert lines == ["Significance cannot be judged with one seed: best validation loss "
                     "hyperband 0.1000, random 0.1500, bayesian 0.1012; run 2 or more seeds "
                     "(--seeds 3) to judge."]


def test_identical_scores_do_not_differ():
    table = pd.DataFrame([{"tuner": tuner, "seed": seed, "best_val_loss": 0.5}
                          for tuner in ("hyperband", "bohb") for seed in (1, 2, 3)])
    assert compare_report.significance_findings(table, "val_loss", "min")[1] == (
        "hyperband and bohb do not differ: the same best validation loss with every seed "
        "(3 seeds).")


def test_paired_comparison_needs_two_pairs():
    paired = significance.compare_paired([0.010, 0.012, 0.011], [0.020, 0.021, 0.019])
    assert paired.seeds == 3 and paired.differ
    assert paired.mean_difference == pytest.approx(0.009)
    assert paired.wilcoxon_p is None
    with pytest.raises(ValueError, match="compare_paired needs at least 2 pairs, got 1"):
        significance.compare_paired([0.1], [0.2])


def test_diebold_mariano_matches_a_hand_computation():
    # Squared-error differences d = 3, 1, 2, 0, 4 over T = 5 rows: mean 2, variance
    # (1 + 1 + 0 + 4 + 4) / 5 = 2, so DM = 2 / sqrt(2 / 5) = sqrt(10), and the HLN factor
    # sqrt((T - 1) / T) = sqrt(4 / 5) makes it 2 sqrt(2). For Student's t with 4 degrees
    # of freedom, P(T > t) = 1/2 - (3/8) (t / sqrt(1 + t**2 / 4)) (1 - t**2 / (12 (1 + t**2
    # / 4))), which at t = 2 sqrt(2) gives a two-sided p of 1 - (7 / 12) sqrt(8 / 3).
    actual = np.zeros(5)
    predicted = np.sqrt([3.0, 1.0, 2.0, 0.0, 4.0])
    test = significance.diebold_mariano(actual, predicted, naive=np.zeros(5))
    assert test.statistic == pytest.approx(2 * math.sqrt(2), rel=1e-12)
    assert test.p_value == pytest.approx(1 - 7 / 12 * math.sqrt(8 / 3), rel=1e-9)
    assert test.p_value == pytest.approx(0.047421, abs=1e-6)
    assert (test.rows, test.model_mse, test.naive_mse) == (5, 2.0, 0.0)
    assert test.verdict == "loses to"
    # The same errors the other way round: the model beats the naive forecast.
    better = significance.diebold_mariano(actual, np.zeros(5), naive=predicted)
    assert better.statistic == pytest.approx(-2 * math.sqrt(2), rel=1e-12)
    assert better.verdict == "beats"


def test_diebold_mariano_on_equal_errors_says_nothing():
    actual = np.array([1.0, 2.0, 3.0])
    test = significance.diebold_mariano(actual, actual + 0.5, naive=actual - 0.5)
    assert math.isnan(test.statistic) and math.isnan(test.p_value)
    assert test.verdict == "does not beat"
    with pytest.raises(ValueError, match="series of one length, got 3, 2 and 3"):
        significance.diebold_mariano(actual, actual[:2], actual)
    with pytest.raises(ValueError, match="horizon must be a whole number from 1 to 2, got 3"):
        significance.diebold_mariano(actual, actual, actual, horizon=3)


def naive_table() -> pd.DataFrame:
    return pd.DataFrame([
        {"tuner": "hyperband", "seed": 42, "test_mse": 1.234e-4, "baseline_test_mse": 1.229e-4,
         "test_rows": 800, "dm_statistic": 0.41, "dm_p_value": 0.68},
        {"tuner": "random", "seed": 42, "test_mse": 1.31e-4, "baseline_test_mse": 1.229e-4,
         "test_rows": 800, "dm_statistic": 2.9, "dm_p_value": 0.0038},
        {"tuner": "bayesian", "seed": 42, "test_mse": 1.10e-4, "baseline_test_mse": 1.229e-4,
         "test_rows": 800, "dm_statistic": -2.2, "dm_p_value": 0.028},
    ])


def test_each_model_against_the_naive_forecast_with_one_seed():
    assert compare_report.naive_findings(naive_table(), "days") == [
        "The hyperband model does not beat the naive forecast on the 800 test days: MSE "
        "0.0001234 vs 0.0001229, DM 0.4100, p = 0.6800.",
        "The random model loses to the naive forecast on the 800 test days: MSE 0.0001310 vs "
        "0.0001229, DM 2.900, p = 0.003800.",
        "The bayesian model beats the naive forecast on the 800 test days: MSE 0.0001100 vs "
        "0.0001229, DM -2.200, p = 0.02800.",
    ]


def test_models_over_seeds_against_the_naive_forecast():
    table = pd.concat([naive_table().iloc[[0, 1]].assign(tuner="hyperband", seed=[1, 2]),
                       naive_table().iloc[[2]].assign(tuner="hyperband", seed=3)])
    # One model ties with the naive forecast, one loses to it, one beats it.
    assert compare_report.naive_findings(table, "days") == [
        "1 of the 3 hyperband models (one per seed) beat the naive forecast on the 800 test "
        "days, and 1 loses to it: mean MSE 0.0001215 vs 0.0001229; DM 0.4100, 2.900, -2.200 "
        "and p = 0.6800, 0.003800, 0.02800 for seeds 1, 2, 3."]
    assert compare_report.naive_findings(table.iloc[[0, 0]].assign(seed=[1, 2]), "days")[0] == (
        "None of the 2 hyperband models (one per seed) beats the naive forecast on the 800 "
        "test days: mean MSE 0.0001234 vs 0.0001229; DM 0.4100, 0.4100 and p = 0.6800, "
        "0.6800 for seeds 1, 2.")
    assert compare_report.naive_findings(table, "rows", task="classification") == [
        "The naive forecast comparison does not apply to classification: the "
        "Diebold–Mariano test compares squared errors."]


def test_budget_sentences_flag_a_run_short_of_its_target():
    table = pd.DataFrame([
        {"tuner": "hyperband", "seed": 42, "trials": 23, "planned_epochs": 75, "epochs": 75},
        {"tuner": "hyperband", "seed": 1042, "trials": 23, "planned_epochs": 75, "epochs": 73},
        {"tuner": "random", "seed": 42, "trials": 12, "planned_epochs": 75, "epochs": 79},
        {"tuner": "random", "seed": 1042, "trials": 22, "planned_epochs": 73, "epochs": 45},
    ])
    facts = BudgetFacts(kinds={"hyperband": "epochs", "random": "trials"},
                        reference="hyperband", trial_epochs=9, caps={"random": 22})
    assert compare_report.budget_findings(table, facts) == [
        "Epochs trained, mean over seeds (planned in brackets): hyperband 74.00 (75.00), "
        "random 62.00 (74.00).",
        "random did not match hyperband's epochs with the same seed with seed 1042: it trained "
        "45 epochs against 73 in 22 trials (at most 22).",
    ]
    table.loc[3, "epochs"] = 81
    assert compare_report.budget_findings(table, facts)[1] == (
        "random kept asking for trials until it had trained hyperband's epochs with the same "
        "seed, within one trial (9 epochs), with every seed.")


def test_the_report_opens_with_the_findings():
    table = scores_table([42, 1042, 2042]).assign(
        test_mse=1.3e-4, test_mae=0.009, baseline_test_mse=1.229e-4, baseline_test_mae=0.008,
        trials=[23, 10, 10] * 3, planned_epochs=75, epochs=[75, 80, 78] * 3, failed_trials=0,
        seconds=61.25, test_rows=800, dm_statistic=1.5, dm_p_value=0.134)
    config = load_config(overrides={"tuner": {"max_epochs": 9, "factor": 3}})
    prepared = types.SimpleNamespace(units="price", held_out="days", task="regression",
                                     baseline="persistence")
    budget = {"hyperband": {"trials": 23, "epochs": 75, "max_epochs": 9},
              "random": {"trials": 22, "epochs": 75, "max_epochs": 9},
              "bayesian": {"trials": 22, "epochs": 75, "max_epochs": 9}}
    facts = BudgetFacts(kinds={"hyperband": "epochs", "random": "trials",
                               "bayesian": "trials"},
                        reference="hyperband", trial_epochs=9,
                        caps={"random": 22, "bayesian": 22})
    report = format_report(config, budget, [42, 1042, 2042], table,
                           compare_report.summarise(table), prepared, 552.0, facts)
    head = findings(table, objective="val_loss", direction="min", held_out="days",
                    budget=facts)
    lines = report.splitlines()
    assert lines[:2] == ["# Tuner comparison", ""]
    assert lines[2:2 + len(head)] == [f"- {sentence}" for sentence in head]
    assert compare_report.read_findings(report) == head
    assert head[0] == ("Epochs trained, mean over seeds (planned in brackets): hyperband "
                       "75.00 (75.00), random 80.00 (75.00), bayesian 78.00 (75.00).")
    assert head[3] == ("hyperband has the lowest best validation loss on average: 0.1000 ± "
                       "0.002000 over 3 seeds.")
    assert head[-1] == ("None of the 3 bayesian models (one per seed) beats the naive forecast "
                        "on the 800 test days: mean MSE 0.0001300 vs 0.0001229; DM 1.500, "
                        "1.500, 1.500 and p = 0.1340, 0.1340, 0.1340 for seeds 42, 1042, 2042.")
    assert "| random | 1042 | 0.1540 | 0.0001300 | 0.009000 | 10 | 75 | 80 | 1.500 | 0.1340 | " \
           "61.25 |" in lines
    assert "total wall time 552.0 s." in report
