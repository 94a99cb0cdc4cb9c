"""Median pruning: the rule on synthetic curves (no training), its config errors, and one
tiny real search through `ktlab tune` whose every decision is checked against the rule."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pandas as pd
import pytest
from conftest import KTLAB, PROBE, make_prices, yahoo_csv
from test_trial_status import keras_tuners_view, trial_statuses

import tuners
from pipelines.cli import main
from pipelines.compare import comparison as compare
from pipelines.config import load_config
from pipelines.errors import ConfigError
from pipelines.reports import plots
from tuners.observers import pruning

NAN = float("nan")


# The rule, on numbers.


@pytest.mark.parametrize(("epoch", "prune", "why"), [
    (0, False, "grace"), (1, False, "grace"), (2, True, "worse")])
def test_no_trial_is_pruned_before_its_grace_epochs(epoch, prune, why):
    decision = pruning.median_rule(0.9, epoch, [0.5, 0.6, 0.7], direction="min",
                                   grace_epochs=3, startup_trials=1)
    assert (decision.prune, decision.why) == (prune, why)


def test_grace_of_one_prunes_after_the_first_epoch():
    decision = pruning.median_rule(0.9, 0, [0.5], direction="min", grace_epochs=1,
                                   startup_trials=1)
    assert (decision.prune, decision.median, decision.trials) == (True, 0.5, 1)


@pytest.mark.parametrize(("earlier", "prune", "why"), [
    ([0.5, 0.6], False, "startup"), ([0.5, 0.6, 0.7], True, "worse")])
def test_no_trial_is_pruned_before_enough_earlier_trials_reached_the_epoch(earlier, prune, why):
    decision = pruning.median_rule(0.9, 4, earlier, direction="min", grace_epochs=2,
                                   startup_trials=3)
    assert (decision.prune, decision.why, decision.trials) == (prune, why, len(earlier))


@pytest.mark.parametrize(("value", "direction", "prune"), [
    (0.5, "min", True), (0.5, "max", False), (0.3, "min", False), (0.3, "max", True)])
def test_worse_follows_the_objectives_direction(value, direction, prune):
    decision = pruning.median_rule(value, 2, [0.2, 0.4, 0.6], direction=direction,
                                   grace_epochs=1, startup_trials=1)
    assert (decision.prune, decision.median) == (prune, 0.4)


@pytest.mark.parametrize("direction", ["min", "max"])
def test_a_value_equal_to_the_median_is_not_worse(direction):
    # An even count: the median is the mean of the middle two values, 0.4.
    decision = pruning.median_rule(0.4, 1, [0.7, 0.1, 0.5, 0.3], direction=direction,
                                   grace_epochs=1, startup_trials=4)
    assert (decision.prune, decision.median, decision.why) == (False, 0.4, "better")
    nudged = 0.4 + 1e-9 if direction == "min" else 0.4 - 1e-9
    assert pruning.median_rule(nudged, 1, [0.7, 0.1, 0.5, 0.3], direction=direction,
                               grace_epochs=1, startup_trials=4).prune is True


def test_nan_and_infinite_earlier_values_are_left_out_of_the_median_and_the_count():
    decision = pruning.median_rule(0.35, 1, [NAN, 0.2, 0.4, math.inf], direction="min",
                                   grace_epochs=1, startup_trials=2)
    assert (decision.prune, decision.median, decision.trials) == (True, pytest.approx(0.3), 2)
    starved = pruning.median_rule(0.35, 1, [NAN, NAN, 0.2], direction="min",
                                  grace_epochs=1, startup_trials=2)
    assert (starved.prune, starved.why, starved.trials) == (False, "startup", 1)


def test_a_nan_objective_is_pruned_once_grace_and_startup_have_passed():
    during_grace = pruning.median_rule(NAN, 0, [0.2], direction="max", grace_epochs=2,
                                       startup_trials=1)
    assert (during_grace.prune, during_grace.why) == (False, "grace")
    after = pruning.median_rule(NAN, 1, [0.2], direction="max", grace_epochs=2,
                                startup_trials=1)
    assert (after.prune, after.why, after.median) == (True, "not_finite", None)
    assert after.reason("val_auc") == "pruned after epoch 2: val_auc is nan"


def test_the_reason_gives_the_epoch_counted_from_one_and_the_rules_numbers():
    decision = pruning.median_rule(0.41, 1, [0.30, 0.37, 0.37, 0.50], direction="min",
                                   grace_epochs=2, startup_trials=2)
    assert decision.reason("val_loss") == (
        "pruned after epoch 2: val_loss 0.41 worse than the median 0.37 of 4 earlier trials")


@pytest.mark.parametrize(("arguments", "message"), [
    ({"direction": "up"}, "direction must be 'min' or 'max', got 'up'"),
    ({"grace_epochs": 0}, "grace_epochs must be a whole number >= 1, got 0"),
    ({"startup_trials": 1.5}, "startup_trials must be a whole number >= 1, got 1.5"),
])
def test_bad_settings_of_the_rule_are_refused(arguments, message):
    settings = {"direction": "min", "grace_epochs": 2, "startup_trials": 1, **arguments}
    with pytest.raises(ValueError) as raised:
        pruning.median_rule(0.5, 3, [0.4], **settings)
    assert str(raised.value) == message


def simulate(curves: list[list[float]], pruner: pruning.MedianPruner, direction: str
             ) -> list[int | None]:
    """Runs synthetic trials one after another as the tuner does: each trial asks after
    every epoch but its last, and a pruned trial's curve ends there. Returns, per trial,
    the epochs it trained when pruned, or None."""
    finished: list[dict[int, float]] = []
    outcome: list[int | None] = []
    for curve in curves:
        trained: dict[int, float] = {}
        pruned_after = None
        for epoch, value in enumerate(curve):
            trained[epoch] = value
            if epoch + 1 < len(curve) and pruner.decide(value, epoch, finished,
                                                        direction).prune:
                pruned_after = epoch + 1
                break
        finished.append(trained)
        outcome.append(pruned_after)
    return outcome


CURVES = [
    [1.00, 0.80, 0.60, 0.50],
    [0.90, 0.70, 0.50, 0.40],
    [1.20, 1.10, 1.00, 0.90],  # Behind at epoch 2: 1.1 against the median 0.75.
    [0.95, 0.72, 0.55, 0.45],  # Ahead at epoch 2; at epoch 3 equal to the median 0.55.
    [1.00, 0.90, 0.90, 0.90],  # Behind at epoch 2: 0.9 against the median 0.76.
]


def test_a_synthetic_search_prunes_exactly_the_trials_that_fall_behind():
    pruner = pruning.MedianPruner(grace_epochs=2, startup_trials=2)
    assert simulate(CURVES, pruner, "min") == [None, None, 2, None, 2]


def test_maximising_the_negated_curves_makes_the_same_decisions():
    pruner = pruning.MedianPruner(grace_epochs=2, startup_trials=2)
    negated = [[-value for value in curve] for curve in CURVES]
    assert simulate(negated, pruner, "max") == [None, None, 2, None, 2]


def test_a_longer_grace_or_startup_prunes_less():
    assert simulate(CURVES, pruning.MedianPruner(grace_epochs=3, startup_trials=2),
                    "min") == [None, None, 3, None, 3]
    assert simulate(CURVES, pruning.MedianPruner(grace_epochs=2, startup_trials=4),
                    "min") == [None, None, None, None, 2]


def test_earlier_curves_count_finished_trials_and_average_executions():
    histories = pd.DataFrame([
        {"trial_id": "0", "execution": 0, "epoch": 0, "status": "completed", "val_loss": 0.4},
        {"trial_id": "0", "execution": 1, "epoch": 0, "status": "completed", "val_loss": 0.6},
        {"trial_id": "1", "execution": 0, "epoch": 0, "status": "pruned", "val_loss": 0.9},
        {"trial_id": "1", "execution": 0, "epoch": 1, "status": "pruned", "val_loss": None},
        {"trial_id": "2", "execution": 0, "epoch": 0, "status": "failed", "val_loss": 0.1},
        {"trial_id": "3", "execution": 0, "epoch": 0, "status": "stopped_early",
         "val_loss": 0.7},
        {"trial_id": "4", "execution": 0, "epoch": 0, "status": "incomplete", "val_loss": 0.2},
    ])
    curves = pruning.earlier_curves(histories, "val_loss", exclude="3")
    assert len(curves) == 2
    assert curves[0] == {0: pytest.approx(0.5)}
    assert list(curves[1]) == [0, 1]
    assert curves[1][0] == 0.9 and math.isnan(curves[1][1])
    assert pruning.earlier_curves(histories.iloc[:0], "val_loss") == []
    assert pruning.earlier_curves(histories, "val_auc") == []


def test_make_pruner_builds_the_named_rule():
    assert pruning.make_pruner("none") is None
    pruner = pruning.make_pruner("median", 3, 4)
    assert (pruner.grace_epochs, pruner.startup_trials) == (3, 4)
    with pytest.raises(tuners.TunerConfigError, match="unknown pruner 'mean'; use one of "
                                                      "none, median"):
        pruning.make_pruner("mean")


def test_a_pruned_holdout_tuner_is_composed_of_its_observers(tmp_path):
    import hypermodels

    pruner = pruning.MedianPruner()
    tuner = tuners.build_tuner("random", hypermodels.DenseHyperModel(input_shape=(4,)),
                               directory=tmp_path, max_trials=2, pruner=pruner)

    assert tuner.validation == "holdout"
    assert tuner.epoch_budget is None
    assert [type(observer).__name__ for observer in tuner.observers] == [
        "Recorder", "EpochLimit", "Pruning"]
    assert tuner.observer(pruning.Pruning).pruner is pruner
    assert tuner.observer(pruning.Pruning) is tuner.observers[2]


def test_the_factory_refuses_a_pruner_for_an_epoch_budget_tuner(tmp_path):
    from tuners import factory

    with pytest.raises(tuners.TunerConfigError) as raised:
        factory.build_tuner("asha", None, directory=tmp_path,
                            pruner=pruning.MedianPruner())
    assert str(raised.value) == ("pruning works with the trial-budget tuners and holdout "
                                 "validation, not with asha; remove the pruner")


# Config errors.


def run_bad_input(arguments: list[str], tmp_path) -> tuple[int, list[str], str]:
    """`ktlab ARGUMENTS` as `tests/test_bad_input.py` runs it: the exit code, the stderr
    lines, and whether TensorFlow had been imported when it answered."""
    environment = {**os.environ, "KTLAB_IMPORTED": str(tmp_path / "imported")}
    environment.pop("TF_CPP_MIN_LOG_LEVEL", None)
    result = subprocess.run([str(KTLAB), *arguments], capture_output=True, text=True,
                            cwd=tmp_path, env=environment, timeout=120)
    assert result.stdout == ""
    probe = subprocess.run([sys.executable, "-c", PROBE, *arguments], capture_output=True,
                           text=True, cwd=tmp_path, env=environment, timeout=120)
    assert probe.returncode == result.returncode
    return result.returncode, result.stderr.splitlines(), (tmp_path / "imported").read_text()


def test_median_pruning_with_hyperband_is_one_line_exit_2_before_tensorflow(tmp_path):
    code, lines, imported = run_bad_input(["tune", "--pruner", "median", "--tuner",
                                           "hyperband"], tmp_path)
    assert (code, imported) == (2, "False")
    assert lines == ["ktlab: error: --pruner median works with the trial-budget tuners "
                     "(bayesian, random, grid, genetic); hyperband already stops trials by "
                     "its own schedule, so use --pruner none or one of those tuners"]


def test_an_unknown_pruner_in_the_config_is_one_line_exit_2_before_tensorflow(tmp_path):
    config = tmp_path / "pruner.toml"
    config.write_text('[tuner]\nname = "random"\npruner = "mean"\n')
    code, lines, imported = run_bad_input(["tune", "--config", str(config)], tmp_path)
    assert (code, imported) == (2, "False")
    assert lines == ["ktlab: error: unknown pruner 'mean'; use one of none, median"]


@pytest.mark.parametrize(("flags", "message"), [
    (["--pruner-grace", "0"], "pruner grace must be >= 1, got 0; fix --pruner-grace"),
    (["--pruner-startup-trials", "0"],
     "pruner startup trials must be >= 1, got 0; fix --pruner-startup-trials"),
    (["--validation", "walk_forward"], "--pruner median compares holdout curves epoch by "
                                       "epoch; use --validation holdout or --pruner none"),
])
def test_bad_pruner_settings_are_refused(flags, message, capsys):
    assert main(["tune", "--tuner", "random", "--pruner", "median", *flags]) == 2
    assert capsys.readouterr().err.splitlines() == [f"ktlab: error: {message}"]


def test_compare_refuses_a_pruner_for_the_epoch_budget_tuners_it_compares():
    config = load_config(None, {"tuner": {"name": "random", "pruner": "median"}})
    compare.check_tuner_names(config, ["random", "genetic"])
    with pytest.raises(ConfigError) as raised:
        compare.check_tuner_names(config, ["hyperband", "random", "asha"])
    assert str(raised.value) == ("--pruner median works with the trial-budget tuners, not "
                                 "hyperband, asha, which stop trials by their own schedule; "
                                 "use --pruner none or leave them out of --tuners")


def test_compare_checks_its_settings_for_the_first_compared_tuner(capsys):
    # Without --tuner the base settings are those of the first of --tuners, so a pruner
    # for trial-budget tuners only passes the checks (and the bad --seeds is reached).
    assert main(["compare", "--pruner", "median", "--tuners", "random,bayesian",
                 "--seeds", "0"]) == 2
    assert capsys.readouterr().err.splitlines() == ["ktlab: error: --seeds must be >= 1, got 0"]
    assert main(["compare", "--pruner", "median", "--tuners", "hyperband,random"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "ktlab: error: --pruner median works with the trial-budget tuners (bayesian, random, "
        "grid, genetic); hyperband already stops trials by its own schedule, so use --pruner "
        "none or one of those tuners"]


# One tiny real search.


def test_tune_random_with_median_pruning_marks_and_follows_the_rule(tmp_path, write_csv):
    path = write_csv(yahoo_csv(make_prices(160)))
    # The close is learnable and the learning rate spans five decades, so a trial that
    # hardly learns lies far behind the others after two epochs.
    code = main(["tune", "--data", str(path), "--lookback", "5", "--test-size", "20",
                 "--validation-size", "20", "--target", "close",
                 "--output-dir", str(tmp_path / "runs"), "--search-space",
                 '{"units": [4, 8], "num_layers": [1, 1], "learning_rate": [1e-6, 1e-1]}',
                 "--tuner", "random", "--max-trials", "4", "--max-epochs", "3",
                 "--pruner", "median", "--pruner-grace", "2", "--pruner-startup-trials", "1",
                 "--patience", "10", "--no-refit", "--deterministic", "--seed", "7",
                 "--quiet"])
    assert code == 0
    run_dir = tmp_path / "runs" / "lstm-random-prices-seed7"
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
    assert trials["status"].tolist() == ["completed", "completed", "completed", "pruned"]
    assert trials["epochs"].tolist() == [3, 3, 3, 2]
    ends = [json.loads(line) for line in (run_dir / "histories.jsonl").read_text().splitlines()
            if '"trial_end"' in line]
    assert [end["status"] for end in ends] == trials["status"].tolist()
    assert [end["reason"] for end in ends] == [
        None if pd.isna(reason) else reason for reason in trials["reason"]]
    histories = tuners.load_histories(run_dir)
    assert set(histories.loc[histories["trial_id"] == "3", "status"]) == {"pruned"}
    # Every decision of the search, replayed with the rule on the recorded curves: each
    # trial goes on at every epoch from the grace period on, except where it was pruned.
    curves = {trial_id: dict(zip(group["epoch"], group["val_loss"], strict=True))
              for trial_id, group in histories.groupby("trial_id", sort=False)}
    pruner = pruning.MedianPruner(grace_epochs=2, startup_trials=1)
    for position, row in enumerate(trials.itertuples()):
        earlier = [curves[trial_id] for trial_id in trials["trial_id"][:position]]
        decisions = [pruner.decide(value, epoch, earlier, "min")
                     for epoch, value in curves[row.trial_id].items() if epoch + 1 < 3]
        pruned = [decision for decision in decisions if decision.prune]
        if row.status == "pruned":
            assert pruned == [decisions[-1]]
            assert row.reason == pruned[0].reason("val_loss")
            assert pruned[0].trials == 3
        else:
            assert pruned == []
    # The pruned trial keeps its best epoch's score.
    pruned_row = trials.set_index("trial_id").loc["3"]
    assert pruned_row["score"] == pytest.approx(min(curves["3"].values()))
    assert pruned_row["best_epoch"] == min(curves["3"], key=curves["3"].get)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == 11
    # keras-tuner's record says the same: the pruned trial is STOPPED, not COMPLETED, with
    # its best epoch's score, and the saved best trial is keras-tuner's best.
    assert trial_statuses(run_dir) == {"0": "COMPLETED", "1": "COMPLETED", "2": "COMPLETED",
                                       "3": "STOPPED"}
    view = keras_tuners_view(run_dir)
    assert view.oracle.trials["3"].score == pytest.approx(pruned_row["score"])
    best = view.oracle.get_best_trials(1)[0]
    assert best.status == "COMPLETED"
    assert best.hyperparameters.values == json.loads(
        (run_dir / "best_hyperparameters.json").read_text())
    assert metrics["best_trial_id"] == best.trial_id
    # The histories plot marks it as Hyperband's stops are marked: a dashed line.
    figure = plots.plot_histories(histories, tuners.load_trials(run_dir))
    axes = figure.axes[0]
    marks = [line for line in axes.get_lines() if line.get_gid() == "pruned"]
    assert [line.get_xdata()[0] for line in marks] == [2]
    assert marks[0].get_linestyle() == "--"
    assert axes.get_title() == "val_loss per configuration: 4 configurations, 1 pruned (dashed)"
