"""ASHAOracle, driven through create_trial/update_trial/end_trial, and one real search.

Nothing trains in the oracle tests: each trial's score is given by the test, either a
script of scores in trial order or the synthetic bowl of tests/test_oracles.py (lowest
at learning_rate 10**-2.5, 160 units and relu, improving by 1 / tuner/epochs).
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable

import keras_tuner
import pandas as pd
import pytest
from conftest import make_prices, yahoo_csv
from keras_tuner.engine import trial as trial_module

from pipelines.cli import main
from tuners import errors, registry
from tuners.observers import checkpoints
from tuners.oracles import ASHAOracle
from tuners.oracles.asha import rung_epochs
from tuners.plans import schedule

OBJECTIVE = keras_tuner.Objective("val_loss", "min")


def bowl_space() -> keras_tuner.HyperParameters:
    hyperparameters = keras_tuner.HyperParameters()
    hyperparameters.Float("learning_rate", 1e-4, 1e-1, sampling="log")
    hyperparameters.Int("units", 16, 256, step=16)
    hyperparameters.Choice("activation", ["relu", "tanh", "sigmoid"])
    return hyperparameters


def bowl(trial_id: str, values: dict) -> float:
    penalty = {"relu": 0.0, "tanh": 0.3, "sigmoid": 0.6}[values["activation"]]
    return ((math.log10(values["learning_rate"]) + 2.5) ** 2
            + ((values["units"] - 160) / 100) ** 2 + penalty + 1.0 / values["tuner/epochs"])


def make(directory, **arguments) -> ASHAOracle:
    settings = {"objective": OBJECTIVE, "max_epochs": 9, "factor": 3,
                "hyperparameters": bowl_space(), "seed": 3}
    oracle = ASHAOracle(**{**settings, **arguments})
    oracle._set_project_dir(str(directory), "project")
    oracle.verbose = 0
    return oracle


def drive(oracle: ASHAOracle, score: Callable[[str, dict], float] = bowl,
          metric: str = "val_loss", limit: int | None = None) -> list[tuple[str, dict, float]]:
    """Runs trials one after the other until the oracle stops or `limit` trials ran."""
    records = []
    while limit is None or len(records) < limit:
        trial = oracle.create_trial("tuner0")
        if trial.status == trial_module.TrialStatus.STOPPED:
            break
        assert trial.status == trial_module.TrialStatus.RUNNING
        values = dict(trial.hyperparameters.values)
        value = score(trial.trial_id, values)
        oracle.update_trial(trial.trial_id, {metric: value})
        trial.status = trial_module.TrialStatus.COMPLETED
        oracle.end_trial(trial)
        # `end_trial` saves before it drops the trial from `ongoing_trials`, so a reload
        # would retry it; `BaseTuner.on_trial_end` saves again, and so do we.
        oracle.save()
        records.append((trial.trial_id, values, value))
    return records


def scripted(scores: list[float]) -> Callable[[str, dict], float]:
    """Scores the n-th trial with `scores[n]`, whatever its values."""
    order: list[str] = []

    def score(trial_id: str, values: dict) -> float:
        order.append(trial_id)
        return scores[len(order) - 1]

    return score


def trained(records: list[tuple[str, dict, float]]) -> int:
    return sum(values["tuner/epochs"] - values["tuner/initial_epoch"]
               for _, values, _ in records)


@pytest.mark.parametrize(("max_epochs", "factor", "min_epochs", "budgets"), [
    (9, 3, 1, (1, 3, 9)),
    (81, 3, 1, (1, 3, 9, 27, 81)),
    (27, 3, 3, (3, 9, 27)),
    (2, 2, 1, (1, 2)),
    # 9 -> 10 would be a one-epoch rung; the top rung takes its place.
    (10, 3, 1, (1, 3, 10)),
    (26, 3, 1, (1, 3, 9, 26)),
    (1, 3, 1, (1,)),
])
def test_rung_budgets_grow_by_factor_up_to_max_epochs(max_epochs, factor, min_epochs, budgets):
    assert rung_epochs(max_epochs, factor, min_epochs) == budgets


def test_first_factor_configurations_wait_for_the_top_third_then_promote_at_once(tmp_path):
    oracle = make(tmp_path)
    # Trials 0-2 are new; the third result makes the best (0.2) the top third of rung 0.
    # Trial 4 (0.1) is new and at once the best of four, so it is promoted next, before
    # rung 0 has anything like nine results: nobody waits for a rung to fill.
    records = drive(oracle, scripted([0.5, 0.2, 0.9, 0.15, 0.1, 0.12, 0.3]), limit=7)
    ids = [trial_id for trial_id, _, _ in records]
    rows = [(values["tuner/round"], values.get("tuner/trial_id"),
             values["tuner/initial_epoch"], values["tuner/epochs"])
            for _, values, _ in records]

    assert rows == [
        (0, None, 0, 1),
        (0, None, 0, 1),
        (0, None, 0, 1),
        (1, ids[1], 1, 3),
        (0, None, 0, 1),
        (1, ids[4], 1, 3),
        (0, None, 0, 1),
    ]
    assert all(values["tuner/bracket"] == 0 for _, values, _ in records)
    # A promotion continues its parent's configuration.
    parent = {key: value for key, value in records[1][1].items() if not key.startswith("tuner/")}
    child = {key: value for key, value in records[3][1].items() if not key.startswith("tuner/")}
    assert child == parent
    assert oracle.rungs == [[ids[0], ids[1], ids[2], ids[4], ids[6]], [ids[3], ids[5]], []]
    assert oracle.promoted == {ids[1]: ids[3], ids[4]: ids[5]}
    assert oracle.epochs_handed_out == 5 * 1 + 2 * 2


def test_every_choice_follows_the_asynchronous_promotion_rule(tmp_path):
    oracle = make(tmp_path, max_epochs=27, seed=5)
    rungs: list[list[tuple[str, float]]] = [[], [], [], []]
    promoted: set[str] = set()
    budgets = (1, 3, 9, 27)
    promotions = 0
    while True:
        # What the paper's get_job would do, from the results so far: the highest rung
        # with an unpromoted trial in its top floor(n / 3) promotes its best such trial.
        expected = None
        for rung in reversed(range(3)):
            ranked = [trial_id for trial_id, _ in sorted(rungs[rung], key=lambda item: item[1])]
            waiting = [trial_id for trial_id in ranked[: len(ranked) // 3]
                       if trial_id not in promoted]
            if waiting and budgets[rung + 1] - budgets[rung] <= oracle.epochs_left:
                expected = (rung + 1, waiting[0])
                break
        trial = oracle.create_trial("tuner0")
        if trial.status == trial_module.TrialStatus.STOPPED:
            break
        values = trial.hyperparameters.values
        if expected is None:
            assert (values["tuner/round"], values.get("tuner/trial_id")) == (0, None)
        else:
            assert (values["tuner/round"], values["tuner/trial_id"]) == expected
            assert values["tuner/initial_epoch"] == budgets[expected[0] - 1]
            promoted.add(expected[1])
            promotions += 1
        assert values["tuner/epochs"] == budgets[values["tuner/round"]]
        value = bowl(trial.trial_id, values)
        oracle.update_trial(trial.trial_id, {"val_loss": value})
        trial.status = trial_module.TrialStatus.COMPLETED
        oracle.end_trial(trial)
        rungs[values["tuner/round"]].append((trial.trial_id, value))

    # Hyperband's total for max_epochs=27, factor=3 (`ktlab brackets`), spent exactly,
    # since a new configuration costs one epoch.
    assert oracle.epoch_budget == schedule.keras_tuner_schedule(27, 3).total_epochs == 375
    assert oracle.epochs_handed_out == 375
    # 125 + 41 * 2 + 13 * 6 + 5 * 18 = 375. Rung 2 promoted 5 of its 13, more than
    # floor(13 / 3) = 4: a late result that beats an already promoted one is promoted
    # too, ASHA's price for never waiting (Li et al., 2020, section 3.2).
    assert [len(trial_ids) for trial_ids in rungs] == [125, 41, 13, 5]
    assert promotions == 41 + 13 + 5


def test_total_epochs_never_exceed_the_budget(tmp_path):
    full = drive(make(tmp_path / "full"))
    small = make(tmp_path / "small", epoch_budget=20)
    capped = drive(small)

    # Hyperband's schedule for max_epochs=9, factor=3 trains 21 + 27 + 27 = 75 epochs.
    assert trained(full) == 75
    assert trained(capped) == small.epochs_handed_out == 20
    assert max(values["tuner/epochs"] for _, values, _ in full) == 9
    with_two_iterations = make(tmp_path / "two", hyperband_iterations=2)
    assert with_two_iterations.epoch_budget == 150
    # Once even one epoch is left no longer, the oracle stops instead of overrunning.
    assert small.create_trial("tuner0").status == trial_module.TrialStatus.STOPPED


def test_maximising_minus_the_score_makes_the_same_choices(tmp_path):
    minimised = drive(make(tmp_path / "min"))
    maximised = drive(make(tmp_path / "max", objective=keras_tuner.Objective("val_auc", "max")),
                      score=lambda trial_id, values: -bowl(trial_id, values), metric="val_auc")

    assert [values for _, values, _ in minimised] == [values for _, values, _ in maximised]
    assert sum(1 for _, values, _ in minimised if "tuner/trial_id" in values) > 0


def test_resumed_oracle_continues_like_the_uninterrupted_one(tmp_path):
    uninterrupted = make(tmp_path / "run")
    drive(uninterrupted, limit=12)
    shutil.copytree(tmp_path / "run", tmp_path / "copy")
    state = json.loads((tmp_path / "copy" / "project" / "oracle.json").read_text())

    resumed = make(tmp_path / "copy")
    resumed.reload()
    assert resumed.rungs == uninterrupted.rungs == state["asha"]["rungs"]
    assert resumed.epochs_handed_out == uninterrupted.epochs_handed_out

    expected = drive(uninterrupted)
    continued = drive(resumed)
    assert [values for _, values, _ in continued] == [values for _, values, _ in expected]
    assert resumed.promoted == uninterrupted.promoted
    assert trained(continued) == 75 - state["asha"]["epochs_handed_out"]


def test_checkpoints_of_promotable_trials_are_kept_until_the_search_stops(tmp_path):
    oracle = make(tmp_path)
    records = drive(oracle, scripted([0.5, 0.2, 0.9, 0.15, 0.1, 0.12, 0.3]), limit=7)
    ids = [trial_id for trial_id, _, _ in records]
    statuses = {trial_id: "completed" for trial_id in ids}

    # Rung 0's unpromoted trials may still rise into its top third; the promoted ones
    # and the top rung's cannot be promoted again.
    assert oracle.promotable_trial_ids() == {ids[0], ids[2], ids[6], ids[3], ids[5]}
    assert checkpoints.needed_checkpoints(oracle, statuses) >= {ids[0], ids[2], ids[6]}
    drive(oracle)
    assert oracle.finished
    assert oracle.promotable_trial_ids() == set()


@pytest.mark.parametrize(("arguments", "message"), [
    ({"factor": 1}, "factor must be an integer of at least 2"),
    ({"min_epochs": 10}, "min_epochs (10) exceeds max_epochs (9)"),
    ({"epoch_budget": 0}, "epoch_budget must be an integer of at least 1"),
    ({"hyperband_iterations": 0}, "hyperband_iterations must be an integer of at least 1"),
])
def test_bad_settings_are_refused(tmp_path, arguments, message):
    with pytest.raises(errors.TunerConfigError, match=message.replace("(", r"\(").replace(
            ")", r"\)")):
        make(tmp_path, **arguments)


def test_registered_as_an_epoch_budget_tuner():
    spec = registry.TUNERS["asha"]
    assert spec.budget == "epochs"
    assert spec.oracle_class is ASHAOracle


def test_tune_asha_promotes_from_checkpoints(tmp_path, write_csv, capsys):
    path = write_csv(yahoo_csv(make_prices(160)))
    code = main(["tune", "--data", str(path), "--lookback", "5", "--test-size", "20",
                 "--validation-size", "20", "--output-dir", str(tmp_path / "runs"),
                 "--search-space",
                 '{"units": [4, 8], "num_layers": [1, 2], "batch_size": [16, 32]}',
                 "--tuner", "asha", "--max-epochs", "2", "--factor", "2", "--seed", "7"])
    assert code == 0
    run_dir = tmp_path / "runs" / "lstm-asha-prices-seed7"
    trials = pd.read_csv(run_dir / "trials.csv",
                         dtype={"trial_id": str, "parent_trial_id": str, "promoted_to": str})
    # Rungs at 1 and 2 epochs; Hyperband's schedule for max_epochs=2, factor=2 trains 7
    # epochs, and every ASHA trial here trains one (a new one to 1, a promotion 1 -> 2).
    assert len(trials) == 7
    assert (trials["target_epochs"] - trials["initial_epoch"]).sum() == trials["epochs"].sum() == 7
    promoted = trials.dropna(subset=["parent_trial_id"])
    assert len(promoted) >= 1
    assert set(promoted["parent_trial_id"]) <= set(trials["trial_id"])
    assert set(promoted["initial_epoch"]) == {1}
    assert set(promoted["target_epochs"]) == {2}
    by_id = trials.set_index("trial_id")
    assert all(by_id.loc[row.parent_trial_id, "promoted_to"] == row.trial_id
               for row in promoted.itertuples())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["trials"] == 7
    assert metrics["epochs"] == 7
    # Once the search has stopped nothing can be promoted, so only the best trial's
    # checkpoint (and its parent's, which it is built from) is left.
    best = metrics["best_trial_id"]
    parent = by_id.loc[best, "parent_trial_id"]
    assert set(checkpoints.checkpoint_files(run_dir / "tuner")) == (
        {best} if pd.isna(parent) else {best, parent})
