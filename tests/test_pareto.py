"""Several objectives: NSGA-II's sorting and crowding distance, the genetic oracle's NSGA-II
selection, the Pareto front and the rule that picks the saved model, and one tiny search.

The oracle is driven through create_trial/update_trial/end_trial with synthetic values;
only the last test trains (a dense network on the bundled diabetes table, one epoch).
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import shutil
import subprocess
import sys

import joblib
import keras
import keras_tuner
import numpy as np
import pandas as pd
import pytest
from keras_tuner.engine import trial as trial_module

from pipelines.cli import main
from pipelines.config import load_config
from pipelines.errors import ConfigError
from pipelines.reports import pareto
from tuners.observers import checkpoints
from tuners.oracles import GeneticOracle, nsga
from tuners.results import measures, pareto_front

ROOT = pathlib.Path(__file__).resolve().parents[1]
INF = math.inf
# (val_loss: min, val_accuracy: max); point 4 repeats point 0.
MIXED = [(0.1, 0.90), (0.2, 0.95), (0.15, 0.85), (0.3, 0.80), (0.1, 0.90), (0.25, 0.95)]
# One front of five points, ordered along it, and one point behind it.
FRONT = [(1, 9), (2, 7), (4, 4), (7, 2), (9, 1)]


def test_non_dominated_sort_respects_each_direction():
    assert pareto_front.non_dominated_sort(MIXED, ["min", "max"]) == [[0, 1, 4], [2, 5], [3]]
    # Minimising both, a lower accuracy is better: other points lead.
    assert pareto_front.non_dominated_sort(MIXED, ["min", "min"]) == [[0, 2, 3, 4], [1], [5]]
    assert pareto_front.non_dominated_sort([(1, 2)], ["max", "max"]) == [[0]]
    assert pareto_front.non_dominated_sort([], ["min", "min"]) == []


def test_crowding_distance_sums_the_normalised_gaps_between_neighbours():
    # Each objective spans 8: point 1 gets (4 - 1) / 8 + (9 - 4) / 8, point 2 gets
    # (7 - 2) / 8 twice, point 3 (9 - 4) / 8 + (4 - 1) / 8; the ends are infinite.
    assert nsga.crowding_distance(FRONT).tolist() == [INF, 1.0, 1.25, 1.0, INF]
    # An objective on which the whole front is equal adds nothing.
    assert nsga.crowding_distance([(1, 5), (2, 5), (3, 5)]).tolist() == [INF, 1.0, INF]
    assert nsga.crowding_distance([(1, 1), (1, 1)]).tolist() == [0.0, 0.0]
    assert nsga.crowding_distance([(3, 4)]).tolist() == [0.0]


def test_survivors_are_whole_fronts_then_the_least_crowded():
    points = [*FRONT, (10, 10)]
    ranks, distances = nsga.rank_and_crowding(points, ["min", "min"])
    assert ranks.tolist() == [0, 0, 0, 0, 0, 1]
    assert distances.tolist() == [INF, 1.0, 1.25, 1.0, INF, 0.0]
    # Four of the first front's five: both ends, then 1.25, then the first of the 1.0 tie.
    assert nsga.select_survivors(points, ["min", "min"], 4) == [0, 4, 2, 1]
    assert nsga.select_survivors(points, ["min", "min"], 6) == [0, 1, 2, 3, 4, 5]
    key = nsga.crowded_key(list("abcdef"), points, ["min", "min"])
    assert sorted("fcbaed", key=key) == ["a", "e", "c", "b", "d", "f"]


def test_the_pareto_front_loads_no_oracle_and_no_tensorflow():
    # A Hyperband run keeps its checkpoints and writes its front without loading our
    # oracles; the front of a finished run is read without TensorFlow.
    code = ("import sys, tuners.observers.checkpoints, pipelines.reports.pareto; "
            "print(sorted(name for name in sys.modules if name.startswith('tuners.oracles')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=ROOT)
    assert loaded.stdout.strip() == "[]"
    code = ("import sys, tuners.results.pareto_front; "
            "print(sorted(name for name in ('tensorflow', 'keras_tuner', 'keras') "
            "if name in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=ROOT)
    assert loaded.stdout.strip() == "[]"


def test_nan_and_bad_directions_are_refused():
    with pytest.raises(ValueError, match="must not hold NaN"):
        pareto_front.non_dominated_sort([(1.0, math.nan)], ["min", "min"])
    with pytest.raises(ValueError, match="direction must be 'min' or 'max', got 'down'"):
        pareto_front.non_dominated_sort([(1.0, 2.0)], ["min", "down"])


def choice_space() -> keras_tuner.HyperParameters:
    hyperparameters = keras_tuner.HyperParameters()
    for name in ("a", "b", "c"):
        hyperparameters.Choice(name, [f"{name}{value}" for value in range(10)])
    return hyperparameters


def genetic(directory: pathlib.Path, extra: list, **settings) -> GeneticOracle:
    oracle = GeneticOracle(objective=keras_tuner.Objective("val_loss", "min"),
                           hyperparameters=choice_space(), extra_objectives=extra, **settings)
    oracle._set_project_dir(str(directory), "project")
    oracle.verbose = 0
    return oracle


def run_trial(oracle: GeneticOracle, loss: float, params: float) -> keras_tuner.engine.trial.Trial:
    trial = oracle.create_trial("tuner0")
    assert trial.status == trial_module.TrialStatus.RUNNING
    oracle.update_trial(trial.trial_id, {"val_loss": loss, "params": params})
    trial.status = trial_module.TrialStatus.COMPLETED
    oracle.end_trial(trial)
    return trial


def differences(first: dict, second: dict) -> int:
    return sum(first[name] != second[name] for name in ("a", "b", "c"))


@pytest.mark.parametrize(("extra", "winner"), [(["params"], 2), ([], 0)])
def test_tournament_picks_the_lowest_front_not_only_the_lowest_loss(tmp_path, extra, winner):
    # The tournament sees the whole pool and nothing mutates by chance, so each child is
    # its winner with exactly one hyperparameter forced to move (a copy is never bred).
    oracle = genetic(tmp_path, extra, max_trials=6, population_size=3, tournament_size=3,
                     mutation_rate=0.0, seed=3)
    # Trials 0 and 2 tie on val_loss; trial 2 has fewer parameters, so it dominates 0.
    first = [run_trial(oracle, loss, params).hyperparameters.values
             for loss, params in ((0.5, 100), (0.9, 200), (0.5, 50))]
    assert differences(first[0], first[2]) == 3
    children = [run_trial(oracle, 1.0, 1.0).hyperparameters.values for _ in range(3)]
    assert [differences(child, first[winner]) for child in children] == [1, 1, 1]
    assert oracle.create_trial("tuner0").status == trial_module.TrialStatus.STOPPED


def test_nsga_ii_keeps_the_spread_survivors_and_saves_its_objectives(tmp_path):
    oracle = genetic(tmp_path, ["params"], max_trials=6, population_size=2, seed=1)
    ids = [run_trial(oracle, loss, params).trial_id
           for loss, params in ((1.0, 10), (2.0, 5), (0.5, 50), (3.0, 20))]
    oracle.create_trial("tuner0")
    # Trials 0, 1 and 2 form the front; 1 and 2 are its ends, so they survive and 0 (in
    # between) and 3 (dominated) do not. The single-objective pool would be 2 and 3.
    state = oracle.get_state()
    assert state["genetic"]["parent_trial_ids"] == [ids[1], ids[2]]
    assert state["genetic"]["extra_objectives"] == [["params", "min"]]
    oracle.save()
    # A resumed search reloads the objectives with the rest of the oracle's state.
    restored = genetic(tmp_path, [], max_trials=6, population_size=2)
    restored.reload()
    assert restored.get_state()["genetic"]["parent_trial_ids"] == [ids[1], ids[2]]
    assert [(item.name, item.direction) for item in restored.extra_objectives] == [
        ("params", "min")]


def test_checkpoints_of_the_whole_pareto_front_are_kept(tmp_path):
    oracle = genetic(tmp_path, ["params"], max_trials=6, population_size=3, seed=1)
    ids = [run_trial(oracle, loss, params).trial_id
           for loss, params in ((0.5, 100), (0.4, 300), (0.6, 200), (0.7, 50))]
    statuses = dict.fromkeys(ids, "completed")
    # Trial 1 has the best loss; 0 and 3 are on the front too, and 2 is dominated by 0.
    assert checkpoints.needed_checkpoints(oracle, statuses) == {ids[1]}
    assert checkpoints.needed_checkpoints(oracle, statuses, ["params"]) == {
        ids[0], ids[1], ids[3]}


def zdt1(values: dict) -> tuple[float, float]:
    """Zitzler, Deb and Thiele's ZDT1 on three variables: the front is f2 = 1 - sqrt(f1)."""
    f1 = values["x0"]
    g = 1 + 9 * (values["x1"] + values["x2"]) / 2
    return f1, g * (1 - math.sqrt(f1 / g))


def hypervolume(points: list[tuple[float, float]], reference=(1.0, 10.0)) -> float:
    """The area two minimised objectives' points dominate below `reference`."""
    area, lowest = 0.0, reference[1]
    for x, y in sorted(points):
        if x < reference[0] and y < lowest:
            area += (reference[0] - x) * (lowest - y)
            lowest = y
    return area


def evolve(directory: pathlib.Path, extra: list, seed: int) -> dict[int, list]:
    hyperparameters = keras_tuner.HyperParameters()
    for index in range(3):
        hyperparameters.Float(f"x{index}", 0.0, 1.0)
    oracle = GeneticOracle(objective=keras_tuner.Objective("val_loss", "min"), max_trials=40,
                           population_size=8, tournament_size=2, seed=seed,
                           hyperparameters=hyperparameters, extra_objectives=extra)
    oracle._set_project_dir(str(directory), "project")
    oracle.verbose = 0
    generations: dict[int, list] = {}
    while (trial := oracle.create_trial("tuner0")).status != trial_module.TrialStatus.STOPPED:
        f1, f2 = zdt1(trial.hyperparameters.values)
        oracle.update_trial(trial.trial_id, {"val_loss": f1, "params": f2})
        trial.status = trial_module.TrialStatus.COMPLETED
        oracle.end_trial(trial)
        generations.setdefault(oracle.generation_of(trial.trial_id), []).append((f1, f2))
    shutil.rmtree(directory)
    return generations


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_nsga_ii_moves_each_generation_towards_the_front(tmp_path, seed):
    generations = evolve(tmp_path / "nsga", ["params"], seed)
    single = evolve(tmp_path / "single", [], seed)
    assert sorted(generations) == list(range(5))
    assert all(len(points) == 8 for points in generations.values())
    # The last generation alone dominates far more than the random first one did, and the
    # whole search's front more than the single-objective search's (same seed, same
    # first generation).
    assert hypervolume(generations[4]) > 1.15 * hypervolume(generations[0])
    assert single[0] == generations[0]
    everything = [point for points in generations.values() for point in points]
    assert hypervolume(everything) > hypervolume(
        [point for points in single.values() for point in points])


def known_trials() -> pd.DataFrame:
    return pd.DataFrame({
        "trial_id": ["0", "1", "2", "3", "4", "5", "6"],
        "status": ["completed", "completed", "stopped_early", "completed", "failed",
                   "completed", "completed"],
        "score": [0.100, 0.1008, 0.1005, 0.102, 0.05, 0.2, 0.3],
        "params": [5000, 900, 900, 100, 10, None, 5000],
        "hp_units": [64, 8, 8, 2, 1, 4, 64],
    })


def test_pareto_table_ranks_the_trials_with_every_value():
    table = pareto.pareto_table(known_trials(), ["val_loss", "params"], ["min", "min"])
    assert list(table.columns) == ["trial_id", "val_loss", "params", "front", "on_front",
                                   "hp_units"]
    # Trial 4 failed and trial 5 has no parameter count; 2 dominates 1, 0 dominates 6.
    assert table["trial_id"].tolist() == ["0", "1", "2", "3", "6"]
    assert table["front"].tolist() == [0, 1, 0, 0, 2]
    assert table["on_front"].tolist() == [True, False, True, True, False]
    assert table["hp_units"].tolist() == [64, 8, 8, 2, 64]


@pytest.mark.parametrize(("tolerance", "chosen"), [(0.01, "2"), (0.0, "0"), (0.05, "3")])
def test_the_pick_is_the_fewest_parameters_near_the_best_loss(tolerance, chosen):
    table = pareto.pareto_table(known_trials(), ["val_loss", "params"], ["min", "min"])
    trial_id, rule = pareto.pick_trial(table, ["val_loss", "params"], ["min", "min"],
                                       tolerance)
    # Within 1% of 0.100: trials 0, 1 and 2; 1 and 2 tie on 900 parameters, 2 has the
    # lower loss. Within 5%, trial 3's 100 parameters win.
    assert trial_id == chosen
    assert rule == (f"the fewest parameters among the trials whose val_loss is within "
                    f"{tolerance * 100:g}% of the best")


def test_the_pick_follows_a_maximised_first_objective():
    table = pd.DataFrame({"trial_id": ["a", "b", "c"], "val_accuracy": [0.90, 0.895, 0.88],
                          "latency_ms": [5.0, 2.0, 1.0], "front": 0, "on_front": True})
    trial_id, rule = pareto.pick_trial(table, ["val_accuracy", "latency_ms"], ["max", "min"])
    # 0.88 is more than 1% below 0.90.
    assert trial_id == "b"
    assert rule == ("the lowest latency_ms among the trials whose val_accuracy is within 1% "
                    "of the best")
    assert pareto.pick_trial(table.iloc[:0], ["val_accuracy", "latency_ms"],
                             ["max", "min"])[0] is None


def test_measures_of_a_model():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    batch = np.ones((8, 4), dtype="float32")
    values = measures.measure_model(model, batch, ["params", "latency_ms"])
    assert values["params"] == 4 * 3 + 3
    assert 0 < values["latency_ms"] < 1000
    history = keras.callbacks.History()
    history.history = {"loss": [3.0, 2.0], "val_loss": [2.5, 2.6]}
    measured = measures.with_measures(history, {"params": 15.0}, "val_loss")
    assert measured.history["params"] == [15.0, 15.0]
    assert "params" not in history.history
    assert measures.with_measures(0.7, {"params": 15.0}, "val_loss") == {
        "val_loss": 0.7, "params": 15.0}
    assert measures.first_batch((np.arange(100).reshape(50, 2), np.zeros(50)), 4).tolist() == [
        [0, 1], [2, 3], [4, 5], [6, 7]]


@pytest.mark.parametrize(("tuner", "message"), [
    ({"objectives": ["val_loss", "size"]},
     "unknown objective 'size' in --objectives; use a metric of the model (val_loss, "
     "val_mae, val_accuracy, ...), params or latency_ms"),
    ({"objectives": ["val_loss"]},
     "--objectives val_loss names one objective; name two or more, such as val_loss,params, "
     "or use --objective"),
    ({"objectives": ["params", "val_loss"]},
     "the first of --objectives is the one every tuner trains towards, so it must be a "
     "metric such as val_loss, not params; put params later"),
    ({"objectives": ["val_loss", "params", "params"]},
     "--objectives val_loss,params,params names one twice; name each once"),
    ({"objective": "val_mae", "objectives": ["val_loss", "params"]},
     "--objective val_mae and the first of --objectives (val_loss) differ; leave out "
     "--objective"),
    ({"objectives": ["val_loss", "params"], "pareto_tolerance": 1.5},
     "pareto tolerance must be <= 1.0, got 1.5; fix --pareto-tolerance"),
])
def test_bad_objectives_are_config_errors(tuner, message):
    with pytest.raises(ConfigError) as error:
        load_config(None, {"tuner": tuner})
    assert str(error.value) == message


def test_the_first_objective_replaces_the_default_objective():
    config = load_config(None, {"tuner": {"objectives": ["val_mae", "latency_ms"]}})
    assert (config.tuner.objective, config.direction) == ("val_mae", "min")


def test_an_unknown_objective_is_one_line_before_tensorflow(tmp_path):
    probe = ("import sys; from pipelines.cli import main; code = main(sys.argv[1:]); "
             "print('tensorflow' in sys.modules); sys.exit(code)")
    result = subprocess.run(
        [sys.executable, "-c", probe, "tune", "--objectives", "val_loss,latency"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
        env={**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).parents[1])})
    assert (result.returncode, result.stdout) == (2, "False\n")
    assert result.stderr.splitlines() == [
        "ktlab: error: unknown objective 'latency' in --objectives; use a metric of the "
        "model (val_loss, val_mae, val_accuracy, ...), params or latency_ms"]


def test_tune_genetic_with_two_objectives_writes_the_pareto_front(tmp_path):
    assert main(["tune", "--model", "dense", "--data", "diabetes", "--tuner", "genetic",
                 "--max-trials", "4", "--max-epochs", "1", "--objectives", "val_loss,params",
                 "--no-refit", "--seed", "7", "--quiet", "--output-dir", str(tmp_path / "runs"),
                 "--search-space", '{"num_layers": [1, 2], "units": [4, 32]}']) == 0
    run_dir = tmp_path / "runs" / "dense-genetic-diabetes-seed7"
    table = pd.read_csv(run_dir / "pareto.csv", dtype={"trial_id": str})
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
    assert list(table.columns[:5]) == ["trial_id", "val_loss", "params", "front", "on_front"]
    assert all(column.startswith("hp_") for column in table.columns[5:])
    assert len(table) == len(trials) == 4
    assert table["val_loss"].tolist() == trials["score"].tolist()
    # The parameter count of each trial's dense stack: (inputs + 1) * units per layer, and
    # (last units + 1) for the single output.
    features = len(joblib.load(run_dir / "preprocessor.joblib")["feature_names"])
    for row in table.itertuples():
        widths = [features, *(getattr(row, f"hp_units_{index}")
                              for index in range(row.hp_num_layers)), 1]
        assert row.params == sum((width + 1) * following
                                 for width, following in zip(widths[:-1], widths[1:], strict=True))
    assert table["params"].tolist() == trials["params"].tolist()
    points = table[["val_loss", "params"]].to_numpy()
    dominated = [any((other <= point).all() and (other < point).any() for other in points)
                 for point in points]
    assert table["on_front"].tolist() == [not flag for flag in dominated]
    assert (run_dir / "plot_pareto.png").stat().st_size > 10_000
    metrics = json.loads((run_dir / "metrics.json").read_text())
    expected, _ = pareto.pick_trial(table, ["val_loss", "params"], ["min", "min"], 0.01)
    assert metrics["best_trial_id"] == metrics["pareto"]["trial_id"] == expected
    assert metrics["pareto"]["front"] == table.loc[table["on_front"], "trial_id"].tolist()
    ends = [json.loads(line) for line in (run_dir / "histories.jsonl").read_text().splitlines()
            if '"trial_end"' in line]
    assert [end["objectives"]["params"] for end in ends] == table["params"].tolist()
