"""`ktlab tune` end to end, in-process: every artifact, a reloadable model, the scores."""

from __future__ import annotations

import json
import re

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import make_prices, yahoo_csv

from pipelines.cli import main
from pipelines.config import load_config
from pipelines.reports import plots
from pipelines.run.build import make_pipeline

ARTIFACTS = ["best_hyperparameters.json", "best_model.keras", "config.json", "histories.jsonl",
             "metrics.json", "plot_histories.png", "plot_hyperparameters.png",
             "plot_predictions.png", "predictions.csv", "preprocessor.joblib", "trials.csv",
             "tuner"]


@pytest.fixture
def tiny_stock_flags(tmp_path, write_csv) -> list[str]:
    """Flags for a seconds-long LSTM search on 160 days written as a Yahoo CSV."""
    path = write_csv(yahoo_csv(make_prices(160)))
    return ["--data", str(path), "--lookback", "5", "--test-size", "20",
            "--validation-size", "20", "--output-dir", str(tmp_path / "runs"),
            "--search-space", '{"units": [4, 8], "num_layers": [1, 2], "batch_size": [16, 32]}']


def test_tune_random_writes_every_artifact_and_the_model_reproduces_its_score(
        tiny_stock_flags, tmp_path, capsys):
    code = main(["tune", *tiny_stock_flags, "--tuner", "random", "--max-trials", "3",
                 "--max-epochs", "2", "--seed", "7"])
    assert code == 0
    output = capsys.readouterr().out
    run_dir = tmp_path / "runs" / "lstm-random-prices-seed7"
    assert sorted(path.name for path in run_dir.iterdir()) == ARTIFACTS
    trial_lines = [line for line in output.splitlines() if line.startswith("trial ")]
    assert len(trial_lines) == 3
    counts = next(line for line in output.splitlines() if line.startswith("3 trials"))
    timed = re.fullmatch(r"3 trials \(0 failed\), \d+ epochs, search (\d+\.\d) s; after it "
                         r"(\d+\.\d) s: (.+)", counts)
    steps = dict(re.fullmatch(r"(.+) (\d+\.\d) s", part).groups()
                 for part in timed[3].split(", "))
    # Refit is on by default; 3 trials are too few for importances, which then take no time.
    assert list(steps)[:3] == ["refit", "test scores", "plots"]
    assert float(timed[2]) == pytest.approx(sum(map(float, steps.values())), abs=0.3)

    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
    assert trials["trial_id"].tolist() == ["0", "1", "2"]
    assert set(trials["status"]) <= {"completed", "stopped_early"}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["trials"] == 3
    assert metrics["epochs"] == trials["epochs_trained"].sum() == trials["epochs"].sum()
    assert metrics["units"] == "price"
    assert sorted(metrics["test"]) == ["mae", "mse", "rmse"]
    assert metrics["baseline"]["name"] == "persistence: tomorrow's close = today's close"
    best = json.loads((run_dir / "best_hyperparameters.json").read_text())
    assert best == trials.set_index("trial_id").loc[metrics["best_trial_id"]].filter(
        like="hp_").rename(lambda name: name[3:]).to_dict()
    config = json.loads((run_dir / "config.json").read_text())
    assert config["tuner"]["name"] == "random"
    assert config["data"]["lookback"] == 5

    # The best configuration was refitted on training + validation rows for the epochs at
    # which its validation loss was best, and scored again on the held-out rows.
    best_row = trials.set_index("trial_id").loc[metrics["best_trial_id"]]
    refit = metrics["best_model"]
    assert refit["source"] == "refit"
    assert refit["epochs"] == best_row["best_epoch"] + 1
    assert len(refit["loss"]) == refit["epochs"]
    assert refit["train_samples"] == 106
    assert sorted(metrics["search_test"]) == ["mae", "mse", "rmse"]
    assert metrics["search_test"]["mse"] != metrics["test"]["mse"]

    # The saved model, on data prepared afresh from the saved config (and scaled as it was
    # refitted, on training + validation rows), reproduces the reported test score.
    model = keras.saving.load_model(run_dir / "best_model.keras", safe_mode=True)
    prepared = make_pipeline(load_config(overrides=config_overrides(config))).prepare()
    assert prepared.refit_data().evaluate(model, "test")["mse"] == pytest.approx(
        metrics["test"]["mse"], rel=1e-5)
    predictions = pd.read_csv(run_dir / "predictions.csv")
    assert len(predictions) == len(prepared.splits["test"]) == 15
    np.testing.assert_allclose(predictions["actual"], prepared.splits["test"].actual)


def test_no_refit_keeps_the_searchs_own_model(tiny_stock_flags, tmp_path, capsys):
    code = main(["tune", *tiny_stock_flags, "--tuner", "random", "--max-trials", "2",
                 "--max-epochs", "2", "--seed", "7", "--no-refit"])
    assert code == 0
    run_dir = tmp_path / "runs" / "lstm-random-prices-seed7"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["best_model"] == {"source": "search", "trial_id": metrics["best_trial_id"]}
    assert metrics["test"] == metrics["search_test"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["run"]["refit"] is False
    model = keras.saving.load_model(run_dir / "best_model.keras", safe_mode=True)
    prepared = make_pipeline(load_config(overrides=config_overrides(config))).prepare()
    assert prepared.evaluate(model, "test")["mse"] == pytest.approx(metrics["test"]["mse"],
                                                                    rel=1e-5)
    assert "best_model.keras: the search's model of trial" in capsys.readouterr().out


def config_overrides(config: dict) -> dict:
    return {section: dict(values) for section, values in config.items()}


def test_tune_hyperband_stitches_promoted_configurations(tiny_stock_flags, tmp_path, capsys):
    code = main(["tune", *tiny_stock_flags, "--max-epochs", "3", "--factor", "3",
                 "--run-name", "hb"])
    assert code == 0
    run_dir = tmp_path / "runs" / "hb"
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str, "parent_trial_id": str})
    # keras-tuner's Hyperband for max_epochs=3, factor=3: bracket 1 starts 3 configurations
    # at 1 epoch and promotes 1 to 3 epochs; bracket 0 starts 2 at 3 epochs
    # (`ktlab brackets --max-epochs 3 --factor 3`).
    assert len(trials) == 6
    promoted = trials.dropna(subset=["parent_trial_id"])
    assert len(promoted) == 1
    child = promoted.iloc[0]
    assert child["initial_epoch"] == 1
    assert child["target_epochs"] == 3
    import tuners

    curves = tuners.load_histories(run_dir)
    child_epochs = curves[curves["trial_id"] == child["trial_id"]]["epoch"].tolist()
    assert child_epochs == [1, 2]
    chains = plots.configuration_chains(tuners.load_trials(run_dir))
    assert len(chains) == 5
    assert (run_dir / "plot_schedule.png").exists()


def test_dense_model_on_a_bundled_table(tmp_path, capsys):
    code = main(["tune", "--model", "dense", "--data", "breast_cancer", "--tuner", "random",
                 "--max-trials", "2", "--max-epochs", "2", "--output-dir", str(tmp_path),
                 "--search-space", '{"units": [8], "num_layers": [1, 1]}'])
    assert code == 0
    metrics = json.loads((tmp_path / "dense-random-breast_cancer-seed42" /
                          "metrics.json").read_text())
    assert sorted(metrics["test"]) == ["accuracy"]
    assert metrics["baseline"]["test"] == {"accuracy": pytest.approx(72 / 114)}
    assert metrics["trials"] == 2


def test_existing_run_directory_needs_overwrite(tiny_stock_flags, tmp_path, capsys):
    run_dir = tmp_path / "runs" / "taken"
    run_dir.mkdir(parents=True)
    (run_dir / "notes.txt").write_text("keep me")
    flags = [*tiny_stock_flags, "--tuner", "random", "--max-trials", "1", "--max-epochs", "1",
             "--run-name", "taken"]
    assert main(["tune", *flags]) == 2
    assert capsys.readouterr().err.strip() == (
        f"ktlab: error: run directory {run_dir} already exists; pass --overwrite to replace "
        f"it or --run-name to keep both")
    assert main(["tune", *flags, "--overwrite"]) == 2
    assert "is not a ktlab run directory (no config.json)" in capsys.readouterr().err
    assert (run_dir / "notes.txt").read_text() == "keep me"


def test_bad_search_space_is_one_line_and_writes_nothing(tiny_stock_flags, tmp_path, capsys):
    flags = list(tiny_stock_flags)
    flags[-1] = '{"units": [], "num_layers": [1, 2]}'
    assert main(["tune", *flags]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("ktlab: error: model.search_space: units")
    assert "\n" not in error
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    flags[-1] = '{"colour": [1]}'
    assert main(["tune", *flags]) == 2
    assert "unexpected keyword argument 'colour'" in capsys.readouterr().err


@pytest.mark.parametrize(("tuner", "flags", "expected_trials"), [
    ("genetic", ["--max-trials", "4", "--max-epochs", "1"], 4),
    # BOHB keeps Hyperband's schedule: max_epochs=2, factor=2 runs 5 trials.
    ("bohb", ["--max-epochs", "2", "--factor", "2"], 5),
])
def test_our_oracles_run_through_ktlab_tune(tiny_stock_flags, tmp_path, capsys, tuner, flags,
                                            expected_trials):
    from tuners.plans import schedule

    config = []
    if tuner == "bohb":
        # Its model starts once two configurations have a result (by default d + 1 = 6,
        # more than this schedule starts), so trials.csv shows every origin.
        (tmp_path / "bohb.toml").write_text("[tuner.options]\nmin_points_in_model = 2\n")
        config = ["--config", str(tmp_path / "bohb.toml")]
    assert main(["tune", *config, *tiny_stock_flags, "--tuner", tuner, *flags]) == 0
    run_dir = tmp_path / "runs" / f"lstm-{tuner}-prices-seed42"
    trials = pd.read_csv(run_dir / "trials.csv")
    assert len(trials) == expected_trials
    if tuner == "bohb":
        assert expected_trials == schedule.keras_tuner_schedule(2, 2).total_trials
        assert trials["origin"].tolist() == ["random", "random", "promoted", "model", "random"]
        starts = [json.loads(line) for line in (run_dir / "histories.jsonl").open()
                  if '"trial_start"' in line]
        assert [start["origin"] for start in starts] == trials["origin"].tolist()
    else:
        assert "origin" not in trials
    assert json.loads((run_dir / "metrics.json").read_text())["trials"] == expected_trials
    assert (run_dir / "best_model.keras").exists()


def test_refused_settings_leave_an_existing_run_untouched(tiny_stock_flags, tmp_path, capsys):
    flags = [*tiny_stock_flags, "--tuner", "random", "--max-trials", "1", "--max-epochs", "1",
             "--run-name", "kept"]
    assert main(["tune", *flags]) == 0
    run_dir = tmp_path / "runs" / "kept"
    before = sorted(path.name for path in run_dir.iterdir())
    capsys.readouterr()
    # Grid search refuses the continuous learning rate only when its tuner is built; the
    # old run must survive the refusal.
    refused = [*tiny_stock_flags, "--run-name", "kept", "--tuner", "grid", "--overwrite"]
    assert main(["tune", *refused]) == 2
    assert "grid search needs finitely many values" in capsys.readouterr().err
    assert sorted(path.name for path in run_dir.iterdir()) == before


def test_objective_must_be_a_metric_of_the_model(tiny_stock_flags, tmp_path, capsys):
    assert main(["tune", *tiny_stock_flags, "--objective", "val_accuracy"]) == 2
    assert capsys.readouterr().err.strip() == (
        "ktlab: error: objective 'val_accuracy' is not a metric of the lstm model; use one of "
        "val_loss, val_mae, val_rmse, loss, mae, rmse")
    assert not (tmp_path / "runs").exists()


def test_oracle_options_from_a_config_file(tiny_stock_flags, tmp_path, capsys):
    config = tmp_path / "genetic.toml"
    config.write_text("[tuner]\nname = \"genetic\"\nmax_trials = 4\nmax_epochs = 1\n"
                      "[tuner.options]\npopulation_size = 2\nmutation_rate = 0.5\n")
    assert main(["tune", "--config", str(config), *tiny_stock_flags, "--run-name", "ga"]) == 0
    trials = pd.read_csv(tmp_path / "runs" / "ga" / "trials.csv")
    assert len(trials) == 4
    config.write_text("[tuner]\nname = \"genetic\"\n[tuner.options]\npopulation = 2\n")
    assert main(["tune", "--config", str(config), *tiny_stock_flags, "--run-name", "ga2"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("ktlab: error: tuner settings: ")
    assert "population" in error
    assert not (tmp_path / "runs" / "ga2").exists()


def test_a_search_builds_its_tuner_once(tiny_stock_flags, monkeypatch):
    import tuners

    built = []
    real_build_tuner = tuners.build_tuner

    def counted(*args, **kwargs):
        built.append(args[0])
        return real_build_tuner(*args, **kwargs)

    monkeypatch.setattr(tuners, "build_tuner", counted)
    assert main(["tune", *tiny_stock_flags, "--tuner", "random", "--max-trials", "2",
                 "--max-epochs", "1", "--no-refit"]) == 0
    assert built == ["random"]


def test_the_objective_is_checked_without_building_a_model(monkeypatch):
    from hypermodels.lstm import LSTMHyperModel
    from pipelines.errors import ConfigError
    from pipelines.run import search

    def refused(self, hp):
        raise AssertionError("the objective check built a model")

    hypermodel = LSTMHyperModel(input_shape=(5, 3))
    monkeypatch.setattr(LSTMHyperModel, "build", refused)
    search.check_search(load_config(None, {"tuner": {"objective": "val_rmse"}}), hypermodel)
    with pytest.raises(ConfigError) as error:
        search.check_search(load_config(None, {"tuner": {"objective": "val_auc",
                                                         "direction": "max"}}), hypermodel)
    assert str(error.value) == ("objective 'val_auc' is not a metric of the lstm model; use one "
                                "of val_loss, val_mae, val_rmse, loss, mae, rmse")


@pytest.mark.parametrize(("model", "arguments", "names"), [
    ("lstm", {"input_shape": (5, 3)}, ["mae", "rmse"]),
    ("dense", {"input_shape": (4,), "task": "regression"}, ["mae", "rmse"]),
    ("dense", {"input_shape": (4,), "task": "classification", "n_classes": 2},
     ["accuracy", "auc"]),
    ("dense", {"input_shape": (4,), "task": "classification", "n_classes": 3}, ["accuracy"]),
])
def test_a_hypermodels_declared_metrics_are_those_its_models_report(model, arguments, names):
    import keras_tuner

    from hypermodels import registry
    from pipelines.run.search import metric_names

    hypermodel = registry.MODELS[model].hypermodel_class(**arguments)
    declared = [metric.name for metric in hypermodel.metrics()]
    assert declared == names
    assert metric_names(hypermodel.build(keras_tuner.HyperParameters())) == names
