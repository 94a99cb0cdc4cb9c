"""Which checkpoints a search still needs, driven through a real HyperbandOracle.

Nothing trains: trials are created, scored and ended by hand, as Hyperband would see
them, and the test asserts which trials' checkpoints must be kept at each step.
"""

from __future__ import annotations

import keras_tuner
from keras_tuner.engine import trial as trial_module

from pipelines.cli.commands import _config_from_args
from pipelines.cli.flags import build_parser
from tuners.observers import checkpoints


def hyperband(directory) -> keras_tuner.oracles.HyperbandOracle:
    """keras-tuner's Hyperband for 3 epochs and factor 3: bracket 1 trains 3 trials for
    1 epoch and promotes 1 to 3 epochs; bracket 0 then trains 2 trials for 3 epochs."""
    oracle = keras_tuner.oracles.HyperbandOracle(
        objective=keras_tuner.Objective("val_loss", "min"), max_epochs=3, factor=3, seed=1)
    oracle._set_project_dir(str(directory), "project")
    oracle.verbose = 0
    space = keras_tuner.HyperParameters()
    space.Int("units", 1, 1000)
    oracle.update_space(space)
    return oracle


def end(oracle, trial, score: float) -> None:
    oracle.update_trial(trial.trial_id, {"val_loss": score})
    trial.status = trial_module.TrialStatus.COMPLETED
    oracle.end_trial(trial)


def test_checkpoints_are_kept_while_a_trial_may_need_them(tmp_path) -> None:
    oracle = hyperband(tmp_path)
    first, second, third = (oracle.create_trial(f"worker{number}") for number in range(3))
    recorded: dict[str, str] = {}

    end(oracle, first, 0.5)
    recorded[first.trial_id] = "completed"
    # The other two still run; the first may yet be promoted.
    assert checkpoints.needed_checkpoints(oracle, recorded) == {
        first.trial_id, second.trial_id, third.trial_id}

    end(oracle, second, 0.2)
    end(oracle, third, 0.9)
    recorded.update({second.trial_id: "completed", third.trial_id: "completed"})
    # Round 1 of bracket 1 has not picked its configuration yet: all three may be promoted.
    assert checkpoints.needed_checkpoints(oracle, recorded) == {
        first.trial_id, second.trial_id, third.trial_id}

    promoted = oracle.create_trial("worker0")
    assert promoted.hyperparameters.values["tuner/trial_id"] == second.trial_id
    # Round 1 is full: the first and third are never promoted now. The second is the
    # parent of a running trial (which loads its checkpoint again if it is restarted).
    assert checkpoints.needed_checkpoints(oracle, recorded) == {second.trial_id,
                                                                promoted.trial_id}

    end(oracle, promoted, 0.4)
    # The histories have not recorded how the promoted trial ended yet: keep it.
    assert checkpoints.needed_checkpoints(oracle, recorded) == {second.trial_id,
                                                                promoted.trial_id}
    recorded[promoted.trial_id] = "completed"
    assert checkpoints.needed_checkpoints(oracle, recorded) == {second.trial_id}
    # A trial whose loss went NaN after its first epoch is never the best model. The
    # promoted trial becomes the best, and reloading it loads its parent's weights first.
    recorded[second.trial_id] = "failed"
    assert checkpoints.needed_checkpoints(oracle, recorded) == {promoted.trial_id,
                                                                second.trial_id}
    recorded[second.trial_id] = "completed"

    # Bracket 0 starts two new configurations at three epochs; the better one is the best.
    fourth, fifth = oracle.create_trial("worker1"), oracle.create_trial("worker2")
    assert fourth.hyperparameters.values["tuner/bracket"] == 0
    end(oracle, fourth, 0.1)
    end(oracle, fifth, 0.3)
    recorded.update({fourth.trial_id: "completed", fifth.trial_id: "completed"})
    assert checkpoints.needed_checkpoints(oracle, recorded) == {fourth.trial_id}


def test_random_search_keeps_only_the_best_and_the_running(tmp_path) -> None:
    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective("val_loss", "min"), max_trials=3, seed=1)
    oracle._set_project_dir(str(tmp_path), "project")
    oracle.verbose = 0
    space = keras_tuner.HyperParameters()
    space.Int("units", 1, 1000)
    oracle.update_space(space)
    first, second = oracle.create_trial("worker0"), oracle.create_trial("worker1")

    end(oracle, first, 0.7)
    assert checkpoints.needed_checkpoints(oracle, {first.trial_id: "stopped_early"}) == {
        first.trial_id, second.trial_id}
    end(oracle, second, 0.3)
    assert checkpoints.needed_checkpoints(
        oracle, {first.trial_id: "stopped_early", second.trial_id: "completed"}) == {
        second.trial_id}


def test_keep_checkpoints_is_a_flag_and_a_config_key() -> None:
    arguments = build_parser().parse_args(["tune", "--keep-checkpoints"])
    assert _config_from_args(arguments).run.keep_checkpoints is True
    assert _config_from_args(build_parser().parse_args(["tune"])).run.keep_checkpoints is False
