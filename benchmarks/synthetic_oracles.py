"""Prints how our oracles do on a synthetic objective, training nothing.

The objective is the bowl of `tests/test_oracles.py`: `(log10(learning_rate) + 2.5)**2
+ ((units - 160) / 100)**2` plus 0, 0.3 or 0.6 for relu, tanh or sigmoid, lowest (0) at
learning_rate 10**-2.5, 160 units and relu. Hyperband-style trials add `1 / tuner/epochs`,
so more epochs always help and the best reachable score is `1 / max_epochs`.

For each seed it runs keras-tuner's `HyperbandOracle`, our `BOHBOracle`, our
`BOHBOracle` with the paper's model data (the largest budget with enough results,
`pool_budgets=False`) and with hpbandster's fixed bandwidth floor
(`adaptive_min_bandwidth=False`) to the end of the same schedule, and prints each one's
best score. It does so twice: on the bowl at `--max-epochs` and `--factor`, and at
ktlab's default schedule (`max_epochs=9`, `factor=3`) on the quick bowl, a loss over
the five hyperparameters of the lstm model's `quick` space (`num_layers` 1-2, `units`
16/32/64, `dropout` 0.1-0.6, log-uniform `learning_rate` 1e-4-1e-2, `batch_size`
32/64/128), lowest (0) at 2 layers, 64 units, dropout 0.2, learning rate 10**-2.7 and
batch size 32, plus `1 / tuner/epochs`, over `--default-seeds` seeds. Then the
`GeneticOracle`'s best score per generation.

    python benchmarks/synthetic_oracles.py
    python benchmarks/synthetic_oracles.py --seeds 15 --max-epochs 27 --factor 3
    python benchmarks/synthetic_oracles.py --default-seeds 100
"""

from __future__ import annotations

import argparse
import math
import os
import pathlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import keras_tuner  # noqa: E402  (the repository root must be importable first)
from keras_tuner.engine import trial as trial_module  # noqa: E402

from tuners import keras_tuner_internals  # noqa: E402
from tuners.oracles import BOHBOracle, GeneticOracle  # noqa: E402

ACTIVATION_PENALTY = {"relu": 0.0, "tanh": 0.3, "sigmoid": 0.6}
OBJECTIVE = keras_tuner.Objective("val_loss", "min")
# keras-tuner seeds each sampled value with seed, seed + 1, ..., so neighbouring seeds
# replay shifted copies of one stream; seeds this far apart do not overlap.
SEED_SPACING = 1000


def bowl_space() -> keras_tuner.HyperParameters:
    """The search space: a log-sampled learning rate, stepped units, an activation."""
    hyperparameters = keras_tuner.HyperParameters()
    hyperparameters.Float("learning_rate", 1e-4, 1e-1, sampling="log")
    hyperparameters.Int("units", 16, 256, step=16)
    hyperparameters.Choice("activation", ["relu", "tanh", "sigmoid"])
    return hyperparameters


def bowl(values: dict) -> float:
    """The synthetic loss of one trial's values (lower is better)."""
    loss = (math.log10(values["learning_rate"]) + 2.5) ** 2
    loss += ((values["units"] - 160) / 100) ** 2
    loss += ACTIVATION_PENALTY[values["activation"]]
    if "tuner/epochs" in values:
        loss += 1.0 / values["tuner/epochs"]
    return loss


QUICK_UNITS_PENALTY = {16: 0.3, 32: 0.1, 64: 0.0}
QUICK_BATCH_PENALTY = {32: 0.0, 64: 0.05, 128: 0.2}


def quick_space() -> keras_tuner.HyperParameters:
    """The lstm model's `quick` space, declared as `hypermodels/lstm.py` declares it."""
    hyperparameters = keras_tuner.HyperParameters()
    hyperparameters.Int("num_layers", 1, 2)
    hyperparameters.Choice("units", [16, 32, 64])
    hyperparameters.Float("dropout", 0.1, 0.6)
    hyperparameters.Float("learning_rate", 1e-4, 1e-2, sampling="log")
    hyperparameters.Choice("batch_size", [32, 64, 128])
    return hyperparameters


def quick_bowl(values: dict) -> float:
    """The synthetic loss over the quick space (lower is better)."""
    loss = ((math.log10(values["learning_rate"]) + 2.7) / 0.7) ** 2
    loss += ((values["dropout"] - 0.2) / 0.3) ** 2
    loss += QUICK_UNITS_PENALTY[values["units"]] + QUICK_BATCH_PENALTY[values["batch_size"]]
    loss += 0.1 if values["num_layers"] == 1 else 0.0
    return loss + 1.0 / values["tuner/epochs"]


def run_to_end(
    oracle: keras_tuner.Oracle, directory: str, loss_of: Callable[[dict], float] = bowl
) -> list[tuple[str, dict, float]]:
    """Runs trials one after the other until the oracle stops; returns (id, values, loss)."""
    keras_tuner_internals.set_oracle_directory(oracle, directory, "project")
    oracle.verbose = 0
    records = []
    while True:
        trial = oracle.create_trial("tuner0")
        if trial.status == trial_module.TrialStatus.STOPPED:
            return records
        values = dict(trial.hyperparameters.values)
        loss = loss_of(values)
        oracle.update_trial(trial.trial_id, {"val_loss": loss})
        trial.status = trial_module.TrialStatus.COMPLETED
        oracle.end_trial(trial)
        records.append((trial.trial_id, values, loss))


def compare_bohb_with_hyperband(
    seeds: list[int],
    max_epochs: int,
    factor: int,
    hyperband_iterations: int,
    space: Callable[[], keras_tuner.HyperParameters] = bowl_space,
    loss_of: Callable[[dict], float] = bowl,
    title: str = "the bowl",
) -> None:
    settings = {
        "objective": OBJECTIVE,
        "max_epochs": max_epochs,
        "factor": factor,
        "hyperband_iterations": hyperband_iterations,
    }
    makers: dict[str, Callable[[int], keras_tuner.Oracle]] = {
        "hyperband": lambda seed: keras_tuner.oracles.HyperbandOracle(
            **settings, hyperparameters=space(), seed=seed
        ),
        "bohb": lambda seed: BOHBOracle(**settings, hyperparameters=space(), seed=seed),
        "bohb_paper_budget": lambda seed: BOHBOracle(
            **settings, hyperparameters=space(), seed=seed, pool_budgets=False
        ),
        "bohb_fixed_floor": lambda seed: BOHBOracle(
            **settings, hyperparameters=space(), seed=seed, adaptive_min_bandwidth=False
        ),
    }
    best: dict[str, list[float]] = {name: [] for name in makers}
    trials = 0
    model_share = []
    started = time.perf_counter()
    print(
        f"BOHB vs Hyperband on {title}: max_epochs={max_epochs}, factor={factor}, "
        f"hyperband_iterations={hyperband_iterations}, {len(seeds)} seeds; best loss "
        f"(lower is better, {1 / max_epochs:.4f} is the optimum)"
    )
    print(f"{'seed':>6}  " + "  ".join(f"{name:>17}" for name in makers) + "  model/new")
    for seed in seeds:
        row = []
        for name, make in makers.items():
            oracle = make(seed)
            with tempfile.TemporaryDirectory() as directory:
                records = run_to_end(oracle, directory, loss_of)
            trials = len(records)
            best[name].append(min(loss for _, _, loss in records))
            row.append(best[name][-1])
            if name == "bohb":
                proposed = oracle.model_configurations + oracle.random_configurations
                model_share.append(f"{oracle.model_configurations}/{proposed}")
        print(
            f"{seed:>6}  " + "  ".join(f"{value:>17.4f}" for value in row) + f"  {model_share[-1]}"
        )
    print(
        f"{'median':>6}  " + "  ".join(f"{statistics.median(best[name]):>17.4f}" for name in makers)
    )
    print(f"{'mean':>6}  " + "  ".join(f"{statistics.mean(best[name]):>17.4f}" for name in makers))
    for name in ("bohb", "bohb_paper_budget", "bohb_fixed_floor"):
        pairs = list(zip(best[name], best["hyperband"], strict=True))
        wins = sum(ours < theirs for ours, theirs in pairs)
        losses = sum(ours > theirs for ours, theirs in pairs)
        print(
            f"{name} against hyperband: better on {wins}, worse on {losses}, equal on "
            f"{len(seeds) - wins - losses} of {len(seeds)} seeds"
        )
    print(
        f"{trials} trials per run; model/new counts BOHB's new configurations that came "
        f"from its density model; {time.perf_counter() - started:.1f} s"
    )


def genetic_by_generation(seeds: list[int], max_trials: int, population_size: int) -> None:
    generations = max_trials // population_size
    started = time.perf_counter()
    print(
        f"GeneticOracle: max_trials={max_trials}, population_size={population_size}, "
        f"{len(seeds)} seeds; best loss per generation (0 is the optimum; generation 0 "
        "is random)"
    )
    print(f"{'seed':>6}  " + "  ".join(f"{index:>6}" for index in range(generations)))
    per_generation: list[list[float]] = [[] for _ in range(generations)]
    for seed in seeds:
        oracle = GeneticOracle(
            objective=OBJECTIVE,
            max_trials=max_trials,
            population_size=population_size,
            hyperparameters=bowl_space(),
            seed=seed,
        )
        with tempfile.TemporaryDirectory() as directory:
            records = run_to_end(oracle, directory)
        scores: dict[int, list[float]] = {}
        for trial_id, _, loss in records:
            scores.setdefault(oracle.generation_of(trial_id), []).append(loss)
        for index in range(generations):
            per_generation[index].append(min(scores[index]))
        print(
            f"{seed:>6}  "
            + "  ".join(f"{min(scores[index]):>6.3f}" for index in range(generations))
        )
    print(
        f"{'mean':>6}  "
        + "  ".join(f"{statistics.mean(values):>6.3f}" for values in per_generation)
    )
    print(f"{time.perf_counter() - started:.1f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=7, help="how many seeds (default 7)")
    parser.add_argument("--max-epochs", type=int, default=27, help="Hyperband's R (default 27)")
    parser.add_argument("--factor", type=int, default=3, help="Hyperband's eta (default 3)")
    parser.add_argument("--hyperband-iterations", type=int, default=1)
    parser.add_argument(
        "--default-seeds",
        type=int,
        default=20,
        help="seeds at the default schedule, max_epochs=9, factor=3 (default 20)",
    )
    parser.add_argument("--max-trials", type=int, default=80, help="genetic budget (default 80)")
    parser.add_argument("--population-size", type=int, default=10)
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds must be at least 1, got {args.seeds}")
    if args.default_seeds < 0:
        parser.error(f"--default-seeds must be at least 0, got {args.default_seeds}")

    seeds = [SEED_SPACING * index + 7 for index in range(1, args.seeds + 1)]
    compare_bohb_with_hyperband(seeds, args.max_epochs, args.factor, args.hyperband_iterations)
    print()
    if args.default_seeds:
        compare_bohb_with_hyperband(
            [SEED_SPACING * index + 7 for index in range(1, args.default_seeds + 1)],
            max_epochs=9,
            factor=3,
            hyperband_iterations=1,
            space=quick_space,
            loss_of=quick_bowl,
            title="the quick bowl (ktlab's default schedule)",
        )
        print()
    genetic_by_generation(seeds, args.max_trials, args.population_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
