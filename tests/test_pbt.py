"""PBTOracle, driven through create_trial/update_trial/end_trial.

Nothing trains here (`tests/test_pbt_search.py` trains: the optimizer's state and one
real search): each trial's score is given by the test, either a
script of scores in trial order or a synthetic bowl, lowest at learning_rate 10**-2.4
(near the top of the range, so that the best members' x1.2 gets clipped) and improving
by 1 / tuner/epochs.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable

import keras_tuner
import pandas as pd
import pytest
from keras_tuner.engine import trial as trial_module

from pipelines.compare.comparison import plan_budget
from pipelines.config import load_config
from pipelines.reports import population_plots
from pipelines.run import progress
from tuners import errors, factory, registry
from tuners.observers import checkpoints
from tuners.oracles import PBTOracle
from tuners.plans import population

OBJECTIVE = keras_tuner.Objective("val_loss", "min")
LEARNING_RATE = (1e-3, 4e-3)
BATCH_SIZES = [16, 32, 64, 128]


def space() -> keras_tuner.HyperParameters:
    hyperparameters = keras_tuner.HyperParameters()
    # A narrow range, so that x1.2 often leaves it and has to be clipped.
    hyperparameters.Float("learning_rate", *LEARNING_RATE, sampling="log")
    hyperparameters.Int("units", 16, 256, step=16)
    hyperparameters.Float("dropout", 0.0, 0.5)
    hyperparameters.Choice("batch_size", BATCH_SIZES)
    return hyperparameters


def bowl(trial_id: str, values: dict) -> float:
    return ((math.log10(values["learning_rate"]) + 2.4) ** 2 + values["dropout"]
            + 1.0 / values["tuner/epochs"])


def make(directory, **arguments) -> PBTOracle:
    settings = {"objective": OBJECTIVE, "max_epochs": 9, "factor": 3,
                "hyperparameters": space(), "seed": 3}
    oracle = PBTOracle(**{**settings, **arguments})
    oracle._set_project_dir(str(directory), "project")
    oracle.verbose = 0
    return oracle


def drive(oracle: PBTOracle, score: Callable[[str, dict], float] = bowl,
          metric: str = "val_loss", limit: int | None = None,
          failed: tuple[str, ...] = ()) -> list[tuple[str, dict, float]]:
    """Runs trials one after the other until the oracle stops or `limit` trials ran."""
    records = []
    while limit is None or len(records) < limit:
        trial = oracle.create_trial("tuner0")
        if trial.status == trial_module.TrialStatus.STOPPED:
            break
        assert trial.status == trial_module.TrialStatus.RUNNING
        values = dict(trial.hyperparameters.values)
        value = score(trial.trial_id, values)
        if trial.trial_id in failed:
            trial.status = trial_module.TrialStatus.FAILED
        else:
            oracle.update_trial(trial.trial_id, {metric: value})
            trial.status = trial_module.TrialStatus.COMPLETED
        oracle.end_trial(trial)
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


def own(values: dict) -> dict:
    return {key: value for key, value in values.items() if not key.startswith("tuner/")}


@pytest.mark.parametrize(("arguments", "size", "ends", "trials", "epochs"), [
    # Hyperband trains 75 epochs at max_epochs=9, factor=3: round(75 / 9) = 8 members.
    ({"max_epochs": 9, "factor": 3}, 8, (2, 4, 6, 8, 9), 40, 72),
    # 7 epochs: round(3.5) = 4 members, intervals of ceil(2 / 4) = 1 epoch.
    ({"max_epochs": 2, "factor": 2}, 4, (1, 2), 8, 8),
    ({"max_epochs": 27, "factor": 3}, 14, (5, 10, 15, 20, 25, 27), 84, 378),
    ({"max_epochs": 81, "factor": 3}, 22, (14, 28, 42, 56, 70, 81), 132, 1782),
    ({"max_epochs": 9, "factor": 3, "hyperband_iterations": 2}, 17, (2, 4, 6, 8, 9), 85, 153),
    ({"max_epochs": 9, "factor": 3, "population_size": 3, "perturbation_interval": 4},
     3, (4, 8, 9), 9, 27),
    ({"max_epochs": 9, "factor": 3, "epoch_budget": 30}, 3, (2, 4, 6, 8, 9), 15, 27),
])
def test_population_and_intervals_follow_hyperbands_epochs(arguments, size, ends, trials,
                                                           epochs):
    plan = population.population_plan(**arguments)
    assert plan.population_size == size
    assert plan.interval_ends == ends
    assert (plan.total_trials, plan.total_epochs) == (trials, epochs)


@pytest.mark.parametrize(("count", "fraction", "size"), [
    (8, 0.25, 2), (4, 0.25, 1), (3, 0.25, 1), (2, 0.25, 1), (1, 0.25, 0), (10, 0.5, 5),
    (5, 0.5, 2),
])
def test_quantile_size_is_rays(count, fraction, size):
    assert population.quantile_size(count, fraction) == size


def test_bottom_member_copies_a_top_members_checkpoint_and_perturbs_it(tmp_path):
    oracle = make(tmp_path, population_size=4, perturbation_interval=3,
                  resample_probability=0.0)
    # Generation 0 scores members 0-3: member 1 is best, member 3 worst.
    records = drive(oracle, scripted([0.4, 0.1, 0.3, 0.9, 1, 1, 1, 1]), limit=8)
    first, second = records[:4], records[4:]
    ids = [trial_id for trial_id, _, _ in first]

    assert [values["tuner/member"] for _, values, _ in records] == [0, 1, 2, 3] * 2
    assert [(values["tuner/initial_epoch"], values["tuner/epochs"], values["tuner/round"])
            for _, values, _ in second] == [(3, 6, 1)] * 4
    assert all("tuner/trial_id" not in values for _, values, _ in first)
    # Members 0-2 continue from their own checkpoints with their own values.
    for member in (0, 1, 2):
        values = second[member][1]
        assert values["tuner/trial_id"] == ids[member]
        assert "tuner/exploited_from" not in values
        assert own(values) == own(first[member][1])
    # Member 3, the bottom quarter, copies member 1, the top quarter.
    exploited, source = second[3][1], first[1][1]
    assert exploited["tuner/trial_id"] == ids[1]
    assert exploited["tuner/exploited_from"] == 1
    assert exploited["units"] == source["units"]  # not perturbable: copied unchanged
    low, high = LEARNING_RATE
    assert exploited["learning_rate"] in {max(low, source["learning_rate"] * 0.8),
                                          min(high, source["learning_rate"] * 1.2)}
    assert exploited["dropout"] in {source["dropout"] * 0.8, min(0.5, source["dropout"] * 1.2)}
    position = BATCH_SIZES.index(source["batch_size"])
    assert exploited["batch_size"] in {BATCH_SIZES[max(position - 1, 0)],
                                       BATCH_SIZES[min(position + 1, len(BATCH_SIZES) - 1)]}


def test_every_exploit_scales_by_0_8_or_1_2_clipped_to_the_range(tmp_path):
    oracle = make(tmp_path, resample_probability=0.0, perturbable=["learning_rate"])
    records = drive(oracle)
    by_id = {trial_id: values for trial_id, values, _ in records}
    exploits = [values for _, values, _ in records if "tuner/exploited_from" in values]
    low, high = LEARNING_RATE
    clipped = 0
    for values in exploits:
        source = by_id[values["tuner/trial_id"]]
        assert source["tuner/member"] == values["tuner/exploited_from"]
        assert source["tuner/round"] == values["tuner/round"] - 1
        scaled = {factor: source["learning_rate"] * factor for factor in (0.8, 1.2)}
        assert values["learning_rate"] in {max(low, scaled[0.8]), min(high, scaled[1.2])}
        clipped += values["learning_rate"] == high and scaled[1.2] > high
        # Only learning_rate is perturbable here.
        assert {key: value for key, value in own(values).items() if key != "learning_rate"} == {
            key: value for key, value in own(source).items() if key != "learning_rate"}
    # 8 members, 2 in the bottom quarter at each of the 4 exploit steps.
    assert len(exploits) == 2 * 4
    assert clipped >= 1


def test_full_search_runs_every_member_through_every_interval(tmp_path):
    oracle = make(tmp_path)
    records = drive(oracle)

    assert len(records) == 40
    assert sum(values["tuner/epochs"] - values["tuner/initial_epoch"]
               for _, values, _ in records) == 72
    assert [len(members) for members in oracle.lineage] == [8] * 5
    ends = [values["tuner/epochs"] for _, values, _ in records]
    assert ends == [2] * 8 + [4] * 8 + [6] * 8 + [8] * 8 + [9] * 8
    assert oracle.finished
    assert oracle.create_trial("tuner0").status == trial_module.TrialStatus.STOPPED


def test_resampling_draws_values_afresh(tmp_path):
    oracle = make(tmp_path, resample_probability=1.0, perturbable=["learning_rate"])
    records = drive(oracle)
    by_id = {trial_id: values for trial_id, values, _ in records}
    exploits = [values for _, values, _ in records if "tuner/exploited_from" in values]
    scaled = [values for values in exploits
              if any(math.isclose(values["learning_rate"],
                                  by_id[values["tuner/trial_id"]]["learning_rate"] * factor)
                     for factor in (0.8, 1.2))]
    assert len(exploits) == 8
    assert scaled == []
    low, high = LEARNING_RATE
    assert all(low <= values["learning_rate"] <= high for values in exploits)


def test_a_failed_member_copies_a_top_member(tmp_path):
    oracle = make(tmp_path, population_size=4, perturbation_interval=3)
    first = drive(oracle, scripted([0.4, 0.1, 0.3, 0.2]), limit=4, failed=("0002",))
    second = drive(oracle, limit=4)
    # Scored: 1 (0.1), 3 (0.2), 0 (0.4); one in each quarter: top 1, bottom 0; 2 failed.
    assert [values.get("tuner/exploited_from") for _, values, _ in second] == [1, None, 1,
                                                                               None]
    assert second[2][1]["tuner/trial_id"] == first[1][0]


def test_maximising_minus_the_score_makes_the_same_choices(tmp_path):
    minimised = drive(make(tmp_path / "min"))
    maximised = drive(make(tmp_path / "max", objective=keras_tuner.Objective("val_auc", "max")),
                      score=lambda trial_id, values: -bowl(trial_id, values), metric="val_auc")
    assert [values for _, values, _ in minimised] == [values for _, values, _ in maximised]


def test_a_worker_waits_for_its_generation_to_end(tmp_path):
    oracle = make(tmp_path, population_size=2, perturbation_interval=3)
    first = oracle.create_trial("worker0")
    second = oracle.create_trial("worker1")
    oracle.update_trial(first.trial_id, {"val_loss": 0.5})
    first.status = trial_module.TrialStatus.COMPLETED
    oracle.end_trial(first)
    assert oracle.create_trial("worker0").status == trial_module.TrialStatus.IDLE
    oracle.update_trial(second.trial_id, {"val_loss": 0.2})
    second.status = trial_module.TrialStatus.COMPLETED
    oracle.end_trial(second)
    following = oracle.create_trial("worker0")
    assert following.status == trial_module.TrialStatus.RUNNING
    assert following.hyperparameters.values["tuner/exploited_from"] == 1
    assert following.hyperparameters.values["tuner/trial_id"] == second.trial_id


def test_resumed_oracle_continues_like_the_uninterrupted_one(tmp_path):
    uninterrupted = make(tmp_path / "run")
    drive(uninterrupted, limit=13)
    shutil.copytree(tmp_path / "run", tmp_path / "copy")
    state = json.loads((tmp_path / "copy" / "project" / "oracle.json").read_text())

    resumed = make(tmp_path / "copy")
    resumed.reload()
    assert resumed.lineage == uninterrupted.lineage == state["pbt"]["lineage"]
    assert len(resumed.pending) == 3
    assert [values for _, values, _ in drive(resumed)] == [
        values for _, values, _ in drive(uninterrupted)]


def test_checkpoints_a_later_generation_loads_are_kept(tmp_path):
    oracle = make(tmp_path, population_size=4, perturbation_interval=3)
    records = drive(oracle, scripted([0.4, 0.1, 0.3, 0.9]), limit=4)
    ids = [trial_id for trial_id, _, _ in records]
    statuses = {trial_id: "completed" for trial_id in ids}
    # Generation 0 ended; generation 1 will continue members 0-2 and copy member 1.
    assert oracle.promotable_trial_ids() == set(ids)
    (continued, _, _), = drive(oracle, limit=1)
    # Member 0 continued; members 1-3 wait on 1, 2 and (copying) 1; generation 2 follows.
    assert oracle.promotable_trial_ids() == {ids[1], ids[2], continued}
    assert checkpoints.needed_checkpoints(oracle, statuses) >= {ids[1], ids[2]}
    drive(oracle)
    assert oracle.promotable_trial_ids() == set()


@pytest.mark.parametrize(("arguments", "message"), [
    ({"population_size": 1}, "population_size must be an integer of at least 2, got 1."),
    ({"perturbation_interval": 10},
     "perturbation_interval (10) exceeds max_epochs (9), which leaves no interval to "
     "exploit; lower it"),
    ({"epoch_budget": 10}, "epoch_budget (10) trains fewer than 2 members of max_epochs (9) "
                           "each; raise it to at least 14 or set population_size"),
    ({"quantile_fraction": 0.6}, "quantile_fraction must be a number in (0, 0.5], got 0.6"),
    ({"resample_probability": 1.5}, "resample_probability must be a number in [0, 1], got 1.5"),
    ({"perturbation_factors": [1.2]},
     "perturbation_factors must be two positive numbers such as [0.8, 1.2], got [1.2]"),
    ({"perturbable": "learning_rate"},
     "perturbable must be a list of hyperparameter names such as ['learning_rate'], got "
     "'learning_rate'"),
])
def test_bad_settings_are_refused(tmp_path, arguments, message):
    with pytest.raises(errors.TunerConfigError) as raised:
        make(tmp_path, **arguments)
    assert str(raised.value) == message


def test_an_unknown_perturbable_name_is_refused_when_the_tuner_is_built(tmp_path):
    from hypermodels.lstm import LSTMHyperModel

    with pytest.raises(errors.TunerConfigError) as raised:
        factory.build_tuner("pbt", LSTMHyperModel(input_shape=(5, 2)), directory=tmp_path,
                            max_epochs=4, factor=2, perturbable=["learning_rate", "lr"])
    assert str(raised.value) == (
        "perturbable names lr, which the search space lacks; use names from batch_size, "
        "dropout, learning_rate, num_layers, units")


def test_registered_with_its_own_plan_for_progress_and_compare():
    spec = registry.TUNERS["pbt"]
    assert spec.budget == "epochs"
    assert spec.oracle_class is PBTOracle
    assert spec.planned_budget(9, 3, 1) == (40, 72)
    assert spec.planned_budget(9, 3, 1, {"population_size": 3}) == (15, 27)
    assert registry.TUNERS["hyperband"].planned_budget(9, 3, 1) == (23, 75)
    config = load_config(overrides={"tuner": {"name": "pbt", "max_epochs": 9, "factor": 3}})
    assert progress.Plan.of(config.tuner) == progress.Plan(40, 72)
    budget = plan_budget(config, ["hyperband", "pbt", "random"])
    assert budget["pbt"] == {"trials": 40, "epochs": 72, "max_epochs": 9}
    assert budget["hyperband"] == {"trials": 23, "epochs": 75, "max_epochs": 9}


def test_member_schedules_follow_the_weights_through_exploits():
    trials = pd.DataFrame({
        "trial_id": ["0", "1", "2", "3"], "member": [0, 1, 0, 1],
        "exploited_from": [None, None, None, 0], "parent_trial_id": [None, None, "0", "0"],
        "initial_epoch": [0, 0, 2, 2], "target_epochs": [2, 2, 4, 4], "round": [0, 0, 1, 1],
        "hp_learning_rate": [0.01, 0.05, 0.01, 0.012], "status": ["completed"] * 4})
    histories = pd.DataFrame({"trial_id": ["0", "0", "1", "1", "2", "2", "3", "3"],
                              "epoch": [0, 1, 0, 1, 2, 3, 2, 3],
                              "val_loss": [1.0, 0.8, 1.2, 1.1, 0.7, 0.6, 0.75, 0.65]})
    schedules = population_plots.member_schedules(trials)
    # Member 1's final weights are member 0's first interval, then its own at 0.012.
    assert schedules[1][["trial_id", "member", "initial_epoch", "value"]].to_dict("list") == {
        "trial_id": ["0", "3"], "member": [0, 1], "initial_epoch": [0, 2],
        "value": [0.01, 0.012]}
    assert schedules[0]["value"].tolist() == [0.01, 0.01]
    figure = population_plots.plot_population(histories, trials)
    top, bottom = figure.axes
    assert len([line for line in top.get_lines() if line.get_gid() == "exploit"]) == 1
    assert top.get_title().startswith("val_loss per member: 2 members, 2 intervals, 1 exploits")
    assert bottom.get_yscale() == "log"
