"""GeneticOracle and BOHBOracle, driven through create_trial/update_trial/end_trial.

Nothing trains: each trial's score is a known synthetic function of its values, a
quadratic bowl in log10(learning_rate) and units plus a penalty per activation,
lowest (0.0) at learning_rate 10**-2.5, 160 units and relu. Hyperband-style trials
add 1 / tuner/epochs, so the score also improves with training.
"""

from __future__ import annotations

import json
import math
import pathlib
import shutil
import statistics
from collections.abc import Callable

import keras_tuner
import numpy as np
import pytest
from keras_tuner.engine import hyperparameters as hyperparameter_types
from keras_tuner.engine import trial as trial_module

from tuners import errors
from tuners.oracles import BOHBOracle, GeneticOracle
from tuners.oracles import values as oracle_values

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
    from tuners import schedule

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
