"""BOHBOracle, driven through create_trial/update_trial/end_trial (`oracle_driving`).

Nothing trains: each trial's score is a known synthetic function of its values
(`oracle_driving.bowl`), which also improves with `tuner/epochs`.
"""

from __future__ import annotations

import json
import math
import shutil
import statistics

import keras_tuner
import pytest
from keras_tuner.engine import hyperparameters as hyperparameter_types
from oracle_driving import (
    OBJECTIVE,
    bowl,
    bowl_space,
    drive,
    replace_saved_rng_state,
    resume,
    schedule_of,
    start,
)

from tuners import errors
from tuners.oracles import BOHBOracle

# BOHBOracle


@pytest.mark.parametrize(
    ("max_epochs", "hyperband_iterations", "trials"), [(27, 1, 70), (9, 2, 46)]
)
def test_bohb_schedule_equals_hyperband(tmp_path, max_epochs, hyperband_iterations, trials):
    hyperband = start(
        keras_tuner.oracles.HyperbandOracle(
            objective=OBJECTIVE,
            max_epochs=max_epochs,
            factor=3,
            hyperband_iterations=hyperband_iterations,
            hyperparameters=bowl_space(),
            seed=11,
        ),
        tmp_path / "hyperband",
    )
    bohb = start(
        BOHBOracle(
            objective=OBJECTIVE,
            max_epochs=max_epochs,
            factor=3,
            hyperband_iterations=hyperband_iterations,
            hyperparameters=bowl_space(),
            seed=11,
        ),
        tmp_path / "bohb",
    )

    hyperband_records = drive(hyperband)
    bohb_records = drive(bohb)

    assert len(hyperband_records) == len(bohb_records) == trials
    assert schedule_of(bohb_records) == schedule_of(hyperband_records)
    # The model did propose configurations, so the schedules were compared on a real
    # BOHB run and not on Hyperband under another name.
    assert bohb.model_configurations > 0
    assert [values for _, values, _ in bohb_records] != [
        values for _, values, _ in hyperband_records
    ]


def test_bohb_beats_hyperband_in_the_median_over_seven_seeds(tmp_path):
    # keras-tuner seeds each sampled value with seed, seed + 1, ..., so neighbouring
    # seeds replay shifted copies of one stream; seeds 1000 apart are independent.
    seeds = [1000 * index + 7 for index in range(1, 8)]
    hyperband_best, bohb_best = [], []
    for seed in seeds:
        for oracle_class, best in (
            (keras_tuner.oracles.HyperbandOracle, hyperband_best),
            (BOHBOracle, bohb_best),
        ):
            oracle = start(
                oracle_class(
                    objective=OBJECTIVE,
                    max_epochs=27,
                    factor=3,
                    hyperparameters=bowl_space(),
                    seed=seed,
                ),
                tmp_path / f"{oracle_class.__name__}_{seed}",
            )
            records = drive(oracle)
            assert len(records) == 70
            best.append(min(value for _, _, value in records))

    # The best possible score after 27 epochs is 1 / 27 = 0.037.
    assert min(hyperband_best + bohb_best) >= 1 / 27
    assert statistics.median(bohb_best) < statistics.median(hyperband_best)
    assert (
        sum(bohb < hyperband for bohb, hyperband in zip(bohb_best, hyperband_best, strict=True))
        >= 5
    )


def test_bohb_proposes_momentum_only_with_sgd(tmp_path):
    oracle = start(
        BOHBOracle(
            objective=OBJECTIVE,
            max_epochs=27,
            factor=3,
            hyperparameters=bowl_space(conditional=True),
            seed=21,
        ),
        tmp_path,
    )
    records = drive(oracle, score=lambda values: bowl(values) + values.get("momentum", 0.5))

    assert len(records) == 70
    assert oracle.model_configurations > 0
    for _, values, _ in records:
        assert ("momentum" in values) == (values["optimizer"] == "sgd")
        if "momentum" in values:
            assert 0.0 <= values["momentum"] <= 0.99
    assert {values["optimizer"] for _, values, _ in records} == {"adam", "sgd"}


def test_bohb_maximising_minus_the_score_makes_the_same_choices(tmp_path):
    minimising = start(
        BOHBOracle(
            objective=OBJECTIVE, max_epochs=9, factor=3, hyperparameters=bowl_space(), seed=4
        ),
        tmp_path / "min",
    )
    maximising = start(
        BOHBOracle(
            objective=keras_tuner.Objective("val_accuracy", "max"),
            max_epochs=9,
            factor=3,
            hyperparameters=bowl_space(),
            seed=4,
        ),
        tmp_path / "max",
    )

    minimised = drive(minimising)
    maximised = drive(maximising, score=lambda values: -bowl(values), metric="val_accuracy")

    assert minimising.model_configurations == maximising.model_configurations > 0
    assert [values for _, values, _ in minimised] == [values for _, values, _ in maximised]


def test_bohb_resumed_oracle_continues_like_the_uninterrupted_one(tmp_path):
    def make() -> BOHBOracle:
        return BOHBOracle(
            objective=OBJECTIVE,
            max_epochs=27,
            factor=3,
            hyperparameters=bowl_space(conditional=True),
            seed=8,
        )

    def score(values: dict) -> float:
        return bowl(values) + values.get("momentum", 0.5)

    uninterrupted = start(make(), tmp_path / "run")
    drive(uninterrupted, score=score, limit=16)
    shutil.copytree(tmp_path / "run", tmp_path / "copy")
    shutil.copytree(tmp_path / "run", tmp_path / "forgetful")
    replace_saved_rng_state(tmp_path / "forgetful", "bohb")
    model_configurations = uninterrupted.model_configurations

    resumed = resume(make(), tmp_path / "copy")
    forgetful = resume(make(), tmp_path / "forgetful")

    expected = [values for _, values, _ in drive(uninterrupted, score=score, limit=16)]
    assert [values for _, values, _ in drive(resumed, score=score, limit=16)] == expected
    assert [values for _, values, _ in drive(forgetful, score=score, limit=16)] != expected
    # The 16 compared trials include model proposals, not only random ones.
    assert uninterrupted.model_configurations > model_configurations
    assert resumed.model_configurations == uninterrupted.model_configurations


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"random_fraction": -0.1}, "random_fraction must be a number from 0 to 1"),
        ({"top_fraction": 1.0}, "top_fraction must be a number between 0 and 1"),
        ({"num_candidates": 0}, "num_candidates must be an integer of at least 1, got 0."),
        ({"min_points_in_model": 1}, "min_points_in_model must be an integer of at least 2"),
        ({"bandwidth_factor": 0}, "bandwidth_factor must be a number above 0"),
        ({"pool_budgets": "yes"}, "pool_budgets must be True or False, got 'yes'."),
        ({"factor": 1}, "factor must be an integer of at least 2, got 1."),
    ],
)
def test_bohb_rejects_bad_settings(arguments, message):
    with pytest.raises(errors.TunerConfigError) as raised:
        BOHBOracle(objective=OBJECTIVE, **{"max_epochs": 27, **arguments})
    assert str(raised.value).startswith(message)


# BOHB at ktlab's default schedule (max_epochs=9, factor=3)

QUICK_UNITS_PENALTY = {16: 0.3, 32: 0.1, 64: 0.0}
QUICK_BATCH_PENALTY = {32: 0.0, 64: 0.05, 128: 0.2}


def quick_lstm_space() -> keras_tuner.HyperParameters:
    """The `quick` search space of ktlab's lstm model, declared by the model itself."""
    from hypermodels import registry

    spec = registry.MODELS["lstm"]
    hyperparameters = keras_tuner.HyperParameters()
    spec.build(input_shape=(30, 5), **spec.arguments("quick")).build(hyperparameters)
    return hyperparameters


def quick_bowl(values: dict) -> float:
    """A synthetic loss over the quick space, lowest at lr 10**-2.7, dropout 0.2, 64 units."""
    loss = ((math.log10(values["learning_rate"]) + 2.7) / 0.7) ** 2
    loss += ((values["dropout"] - 0.2) / 0.3) ** 2
    loss += QUICK_UNITS_PENALTY[values["units"]] + QUICK_BATCH_PENALTY[values["batch_size"]]
    loss += 0.1 if values["num_layers"] == 1 else 0.0
    return loss + 1.0 / values["tuner/epochs"]


def test_bohb_model_proposes_at_the_default_schedule(tmp_path):
    from tuners.plans import schedule

    space = quick_lstm_space()
    tunable = [hp.name for hp in space.space if not isinstance(hp, hyperparameter_types.Fixed)]
    assert tunable == ["num_layers", "units", "dropout", "learning_rate", "batch_size"]

    def run(**options) -> tuple[BOHBOracle, list[tuple[str, dict, float]]]:
        oracle = start(
            BOHBOracle(objective=OBJECTIVE, max_epochs=9, factor=3, hyperparameters=space,
                       seed=42, **options),
            tmp_path / str(options),
        )
        return oracle, drive(oracle, score=quick_bowl)

    pooled, records = run()
    origins = [values["tuner/origin"] for _, values, _ in records]
    plan = schedule.keras_tuner_schedule(9, 3)
    assert len(records) == plan.total_trials == 23
    # 17 new configurations (9 + 5 + 3 in the brackets' first rounds), 6 promotions.
    assert origins.count("promoted") == plan.total_trials - plan.total_configurations == 6
    assert origins.count("model") == pooled.model_configurations == 7
    assert origins.count("random") == pooled.random_configurations == 10
    for _, values, _ in records:
        assert ("tuner/trial_id" in values) == (values["tuner/origin"] == "promoted")
    # The model starts once d + 1 = 6 configurations have a result: the first six of
    # the widest bracket are random.
    assert origins[:6] == ["random"] * 6
    # The origin is not part of a configuration: no configuration ran twice.
    new = [values for _, values, _ in records if values["tuner/origin"] != "promoted"]
    keys = {json.dumps({k: v for k, v in values.items() if not k.startswith("tuner/")},
                       sort_keys=True) for values in new}
    assert len(keys) == 17

    # BOHB's paper needs d + 1 = 6 good and 6 bad results at one budget; the smallest
    # budget gets 9, so its rule never starts here and BOHB would be Hyperband.
    paper, paper_records = run(pool_budgets=False)
    assert paper.model_configurations == 0
    assert {values["tuner/origin"] for _, values, _ in paper_records} == {"random", "promoted"}


def test_pooled_split_ranks_by_budget_reached_then_loss(tmp_path):
    from tuners.oracles import observations

    oracle = start(
        keras_tuner.oracles.HyperbandOracle(
            objective=OBJECTIVE, max_epochs=9, factor=3, hyperparameters=bowl_space(), seed=3
        ),
        tmp_path,
    )
    # Bracket 2's first round (9 at 1 epoch), then two of its three promotions to 3.
    # Losses grow with the budget here, so ranking by loss alone would put the two
    # promoted configurations last.
    records = drive(oracle, score=lambda values: bowl(values) + 10 * values["tuner/epochs"],
                    limit=11)
    assert [values["tuner/epochs"] for _, values, _ in records] == [1] * 9 + [3, 3]
    first_round = sorted(records[:9], key=lambda record: record[2])
    promoted = [values["tuner/trial_id"] for _, values, _ in records[9:]]
    assert promoted == [first_round[0][0], first_round[1][0]]

    split = observations.pooled_split(oracle.trials, "min", min_points=6, top_fraction=0.15)

    # 9 configurations (the promoted two count once, at 3 epochs): ceil(0.15 * 9) = 2
    # good, the two that reached 3 epochs although they scored worse, best first; then
    # the other seven at 1 epoch.
    assert max(record[2] for record in records[:9]) < min(record[2] for record in records[9:])
    assert split.budget == 3
    assert len(split.good) == 2 and len(split.bad) == 7
    assert {values["tuner/epochs"] for values in split.good} == {3}
    assert sorted(values["tuner/trial_id"] for values in split.good) == sorted(promoted)
    good_losses = [bowl(values) for values in split.good]
    assert good_losses == sorted(good_losses)
    bad_losses = [bowl(values) for values in split.bad]
    assert bad_losses == sorted(bad_losses)
    assert observations.pooled_split(oracle.trials, "min", min_points=10,
                                     top_fraction=0.15) is None
    # The paper's rule on the same results: min_points good and as many bad at one
    # budget; budget 1's nine results hold 4 + 5 but not 5 + 5.
    assert observations.largest_budget_split(oracle.trials, "min", min_points=5,
                                             top_fraction=0.15) is None
    paper = observations.largest_budget_split(oracle.trials, "min", min_points=4,
                                              top_fraction=0.15)
    assert paper.budget == 1 and len(paper.good) == 4 and len(paper.bad) == 5
