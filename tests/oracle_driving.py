"""Drives keras-tuner oracles through create_trial/update_trial/end_trial, training nothing.

Each trial's score is a known synthetic function of its values, a quadratic bowl in
log10(learning_rate) and units plus a penalty per activation, lowest (0.0) at
learning_rate 10**-2.5, 160 units and relu. Hyperband-style trials add 1 / tuner/epochs,
so the score also improves with training. `tests/test_oracles.py` (the genetic oracle)
and `tests/test_bohb.py` share these helpers.
"""

from __future__ import annotations

import json
import math
import pathlib
from collections.abc import Callable

import keras_tuner
import numpy as np
from keras_tuner.engine import trial as trial_module

ACTIVATION_PENALTY = {"relu": 0.0, "tanh": 0.3, "sigmoid": 0.6}
OBJECTIVE = keras_tuner.Objective("val_loss", "min")


def bowl_space(conditional: bool = False) -> keras_tuner.HyperParameters:
    hyperparameters = keras_tuner.HyperParameters()
    hyperparameters.Float("learning_rate", 1e-4, 1e-1, sampling="log")
    hyperparameters.Int("units", 16, 256, step=16)
    hyperparameters.Choice("activation", ["relu", "tanh", "sigmoid"])
    if conditional:
        hyperparameters.Choice("optimizer", ["adam", "sgd"])
        with hyperparameters.conditional_scope("optimizer", ["sgd"]):
            hyperparameters.Float("momentum", 0.0, 0.99)
    return hyperparameters


def bowl(values: dict) -> float:
    loss = (math.log10(values["learning_rate"]) + 2.5) ** 2
    loss += ((values["units"] - 160) / 100) ** 2
    loss += ACTIVATION_PENALTY[values["activation"]]
    if "tuner/epochs" in values:
        loss += 1.0 / values["tuner/epochs"]
    return loss


def drive(
    oracle: keras_tuner.Oracle,
    score: Callable[[dict], float] = bowl,
    metric: str = "val_loss",
    limit: int | None = None,
) -> list[tuple[str, dict, float]]:
    """Runs trials one after the other until the oracle stops or `limit` trials ran."""
    records = []
    while limit is None or len(records) < limit:
        trial = oracle.create_trial("tuner0")
        if trial.status == trial_module.TrialStatus.STOPPED:
            break
        assert trial.status == trial_module.TrialStatus.RUNNING
        values = dict(trial.hyperparameters.values)
        value = score(values)
        oracle.update_trial(trial.trial_id, {metric: value})
        trial.status = trial_module.TrialStatus.COMPLETED
        oracle.end_trial(trial)
        # `end_trial` saves before it drops the trial from `ongoing_trials`, so a
        # reload would retry it; `BaseTuner.on_trial_end` saves again, and so do we.
        oracle.save()
        records.append((trial.trial_id, values, value))
    return records


def start(oracle: keras_tuner.Oracle, directory: pathlib.Path) -> keras_tuner.Oracle:
    oracle._set_project_dir(str(directory), "project")
    oracle.verbose = 0
    return oracle


def resume(oracle: keras_tuner.Oracle, directory: pathlib.Path) -> keras_tuner.Oracle:
    """Reloads `oracle` from a copy of a project directory, as a restarted search does."""
    start(oracle, directory)
    oracle.reload()
    return oracle


def schedule_of(records: list[tuple[str, dict, float]]) -> list[tuple[int, int, int, int]]:
    return [
        (
            values["tuner/bracket"],
            values["tuner/round"],
            values["tuner/initial_epoch"],
            values["tuner/epochs"],
        )
        for _, values, _ in records
    ]


def replace_saved_rng_state(project: pathlib.Path, section: str) -> None:
    # Simulates an oracle that forgot to save its generator: a fresh one from the seed.
    path = project / "project" / "oracle.json"
    state = json.loads(path.read_text())
    state[section]["rng_state"] = np.random.default_rng(state["seed"]).bit_generator.state
    path.write_text(json.dumps(state))
