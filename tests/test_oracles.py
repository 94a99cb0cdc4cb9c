"""GeneticOracle, driven through create_trial/update_trial/end_trial (`oracle_driving`).

Nothing trains: each trial's score is a known synthetic function of its values
(`oracle_driving.bowl`). BOHB's tests are in `tests/test_bohb.py`.
"""

from __future__ import annotations

import json
import shutil
import statistics

import keras_tuner
import numpy as np
import pytest
from keras_tuner.engine import trial as trial_module
from oracle_driving import (
    OBJECTIVE,
    bowl,
    bowl_space,
    drive,
    replace_saved_rng_state,
    resume,
    start,
)

from tuners import errors
from tuners.oracles import GeneticOracle
from tuners.oracles import values as oracle_values

# GeneticOracle


def test_genetic_best_improves_over_generations(tmp_path):
    first_best, last_best, first_mean, last_mean = [], [], [], []
    for seed in (1, 2, 3, 4, 5):
        oracle = start(
            GeneticOracle(
                objective=OBJECTIVE,
                max_trials=80,
                population_size=10,
                hyperparameters=bowl_space(),
                seed=seed,
            ),
            tmp_path / f"seed_{seed}",
        )
        records = drive(oracle)
        scores_by_generation: dict[int, list[float]] = {}
        for trial_id, _, value in records:
            scores_by_generation.setdefault(oracle.generation_of(trial_id), []).append(value)

        assert len(records) == 80
        assert sorted(scores_by_generation) == list(range(8))
        assert [len(scores) for scores in scores_by_generation.values()] == [10] * 8
        first_best.append(min(scores_by_generation[0]))
        last_best.append(min(scores_by_generation[7]))
        first_mean.append(statistics.mean(scores_by_generation[0]))
        last_mean.append(statistics.mean(scores_by_generation[7]))

    # Generation 0 is random search; seven generations later the best child is an
    # order of magnitude closer to the optimum (0.497 -> 0.038 with these seeds).
    assert statistics.mean(first_best) > 0.4
    assert statistics.mean(last_best) < 0.1
    assert statistics.mean(last_best) < 0.2 * statistics.mean(first_best)
    # The whole population moves too, mutants with a worse activation included.
    assert statistics.mean(last_mean) < 0.5 * statistics.mean(first_mean)


def test_genetic_maximising_minus_the_score_makes_the_same_choices(tmp_path):
    minimising = start(
        GeneticOracle(
            objective=OBJECTIVE,
            max_trials=30,
            population_size=6,
            hyperparameters=bowl_space(),
            seed=7,
        ),
        tmp_path / "min",
    )
    maximising = start(
        GeneticOracle(
            objective=keras_tuner.Objective("val_accuracy", "max"),
            max_trials=30,
            population_size=6,
            hyperparameters=bowl_space(),
            seed=7,
        ),
        tmp_path / "max",
    )

    minimised = drive(minimising)
    maximised = drive(maximising, score=lambda values: -bowl(values), metric="val_accuracy")

    assert [values for _, values, _ in minimised] == [values for _, values, _ in maximised]
    assert maximising.get_best_trials()[0].score == -minimising.get_best_trials()[0].score


@pytest.mark.parametrize(
    ("hyperparameter", "value"),
    [
        (keras_tuner.engine.hyperparameters.Float("lr", 1e-4, 1e-1, sampling="log"), 1e-3),
        (keras_tuner.engine.hyperparameters.Float("lr", 1e-4, 1e-1, sampling="log"), 1e-4),
        (keras_tuner.engine.hyperparameters.Float("dropout", 0.0, 0.5, step=0.1), 0.0),
        (keras_tuner.engine.hyperparameters.Int("units", 16, 256, step=16), 256),
        (keras_tuner.engine.hyperparameters.Int("units", 16, 256, step=16), 96),
        (keras_tuner.engine.hyperparameters.Int("batch", 8, 512, sampling="log"), 8),
        (keras_tuner.engine.hyperparameters.Int("filters", 2, 32, step=2, sampling="log"), 8),
        (keras_tuner.engine.hyperparameters.Int("layers", 1, 3), 2),
        (keras_tuner.engine.hyperparameters.Choice("activation", ["relu", "tanh", "gelu"]), "tanh"),
        (keras_tuner.engine.hyperparameters.Boolean("batch_norm"), True),
    ],
    ids=lambda item: getattr(item, "name", repr(item)),
)
def test_mutation_never_leaves_the_range_step_or_choices(hyperparameter, value):
    rng = np.random.default_rng(0)
    mutated = [oracle_values.mutate_value(hyperparameter, value, rng, scale=0.1)
               for _ in range(2000)]

    assert all(oracle_values.is_valid_value(hyperparameter, item) for item in mutated)
    assert all(type(item) is type(value) for item in mutated)
    if isinstance(hyperparameter, keras_tuner.engine.hyperparameters.Float):
        assert min(mutated) >= hyperparameter.min_value
        assert max(mutated) <= hyperparameter.max_value
    if hyperparameter.name == "dropout":
        # keras-tuner's own grid for step 0.1 stops at 0.4 (0.5 // 0.1 == 4.0).
        assert set(mutated) <= set(hyperparameter.values)
        assert set(mutated) <= {0.0, 0.1, 0.2, 0.30000000000000004, 0.4}
    if hyperparameter.name == "units":
        assert {item % 16 for item in mutated} == {0}
        assert min(mutated) >= 16
        assert max(mutated) <= 256
    if hyperparameter.name == "filters":
        assert set(mutated) <= {2, 4, 16, 32}
    if hyperparameter.name == "layers":
        assert set(mutated) == {1, 3}
    if hyperparameter.name == "activation":
        assert set(mutated) == {"relu", "gelu"}
    if hyperparameter.name == "batch_norm":
        assert set(mutated) == {False}
    if hyperparameter.name in {"units", "batch", "filters", "dropout"}:
        # Stepped and integer mutations always move.
        assert value not in mutated


def test_float_log_mutation_moves_in_log_space():
    hyperparameter = keras_tuner.engine.hyperparameters.Float(
        "learning_rate", 1e-4, 1e-1, sampling="log"
    )
    rng = np.random.default_rng(0)
    mutated = np.array(
        [oracle_values.mutate_value(hyperparameter, 1e-3, rng, scale=0.1) for _ in range(4000)]
    )
    decades = np.log10(mutated / 1e-3)

    # A 0.1 step in probability is 0.3 of the 3 decades, in either direction alike;
    # a linear-space mutation would instead stay within 1e-4..1.1e-2 and skew upwards.
    assert abs(float(np.median(decades))) < 0.02
    assert 0.28 < float(np.std(decades)) < 0.32
    assert float(mutated.min()) >= 1e-4


def test_genetic_conditional_momentum_only_with_sgd(tmp_path):
    oracle = start(
        GeneticOracle(
            objective=OBJECTIVE,
            max_trials=60,
            population_size=10,
            mutation_rate=0.3,
            hyperparameters=bowl_space(conditional=True),
            seed=3,
        ),
        tmp_path,
    )
    records = drive(oracle, score=lambda values: bowl(values) + values.get("momentum", 0.5))

    assert len(records) == 60
    for _, values, _ in records:
        assert ("momentum" in values) == (values["optimizer"] == "sgd")
        if "momentum" in values:
            assert 0.0 <= values["momentum"] <= 0.99
    bred = [values for trial_id, values, _ in records if oracle.generation_of(trial_id) >= 1]
    assert {values["optimizer"] for values in bred} == {"adam", "sgd"}


def test_genetic_stops_when_the_space_is_exhausted(tmp_path):
    hyperparameters = keras_tuner.HyperParameters()
    hyperparameters.Choice("width", [1, 2])
    hyperparameters.Boolean("bias")
    oracle = start(
        GeneticOracle(
            objective=OBJECTIVE,
            max_trials=20,
            population_size=4,
            hyperparameters=hyperparameters,
            seed=1,
        ),
        tmp_path,
    )

    records = drive(oracle, score=lambda values: values["width"] + values["bias"])

    assert sorted((values["width"], values["bias"]) for _, values, _ in records) == [
        (1, False),
        (1, True),
        (2, False),
        (2, True),
    ]
    assert oracle.create_trial("tuner0").status == trial_module.TrialStatus.STOPPED


def test_genetic_resumed_oracle_continues_like_the_uninterrupted_one(tmp_path):
    def make() -> GeneticOracle:
        return GeneticOracle(
            objective=OBJECTIVE,
            max_trials=40,
            population_size=10,
            hyperparameters=bowl_space(conditional=True),
            seed=5,
        )

    def score(values: dict) -> float:
        return bowl(values) + values.get("momentum", 0.5)

    uninterrupted = start(make(), tmp_path / "run")
    drive(uninterrupted, score=score, limit=25)
    shutil.copytree(tmp_path / "run", tmp_path / "copy")
    shutil.copytree(tmp_path / "run", tmp_path / "forgetful")
    replace_saved_rng_state(tmp_path / "forgetful", "genetic")
    state = uninterrupted.get_state()

    resumed = resume(make(), tmp_path / "copy")
    forgetful = resume(make(), tmp_path / "forgetful")

    assert json.loads(json.dumps(state)) == state
    assert resumed.generation == uninterrupted.generation == 2
    expected = [values for _, values, _ in drive(uninterrupted, score=score, limit=10)]
    assert [values for _, values, _ in drive(resumed, score=score, limit=10)] == expected
    assert [values for _, values, _ in drive(forgetful, score=score, limit=10)] != expected


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"population_size": 1}, "population_size must be an integer of at least 2, got 1."),
        (
            {"max_trials": 15, "population_size": 10},
            "max_trials (15) is less than two generations of population_size (10)",
        ),
        (
            {"max_trials": 3, "population_size": None},
            "max_trials (3) is too small for a genetic search",
        ),
        ({"mutation_rate": 1.5}, "mutation_rate must be a number from 0 to 1, got 1.5."),
        ({"mutation_scale": 0}, "mutation_scale must be a number in (0, 1]"),
        ({"tournament_size": 0}, "tournament_size must be an integer of at least 1, got 0."),
        ({"elite_count": 10}, "elite_count (10) must be smaller than population_size (10)"),
    ],
)
def test_genetic_rejects_bad_settings(arguments, message):
    with pytest.raises(errors.TunerConfigError) as raised:
        GeneticOracle(objective=OBJECTIVE, **{"max_trials": 50, "population_size": 10, **arguments})
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize(
    ("max_trials", "population_size"), [(4, 2), (10, 3), (12, 4), (30, 10), (100, 10)]
)
def test_genetic_default_population_size_follows_max_trials(max_trials, population_size):
    oracle = GeneticOracle(objective=OBJECTIVE, max_trials=max_trials)

    assert oracle.population_size == population_size
