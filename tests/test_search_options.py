"""Around the search: refit's flag, TensorBoard, user callbacks, the objective's direction,
deterministic runs and the version, each through `ktlab`'s own entry point."""

from __future__ import annotations

import json
import pathlib

import pandas as pd
import pytest
import tensorflow as tf
from conftest import make_prices, yahoo_csv
from tensorboard.plugins.hparams import metadata as hparams_metadata

from pipelines.cli import main

USER_CALLBACKS = pathlib.Path(__file__).resolve().parent / "models" / "user_callbacks.py"
SPACE = '{"units": [4, 8], "num_layers": [1, 1], "batch_size": [16]}'


@pytest.fixture
def tiny_flags(tmp_path, write_csv) -> list[str]:
    path = write_csv(yahoo_csv(make_prices(160)))
    return ["--data", str(path), "--lookback", "5", "--test-size", "20",
            "--validation-size", "20", "--output-dir", str(tmp_path / "runs"),
            "--search-space", SPACE, "--seed", "7"]


def event_tags(directory: pathlib.Path) -> set[str]:
    """Every summary tag in the TensorBoard event files under `directory`."""
    tags = set()
    for path in directory.rglob("events.out.tfevents.*"):
        for raw in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(raw.numpy())
            tags.update(value.tag for value in event.summary.value)
    return tags


def test_tensorboard_writes_a_folder_per_trial_with_hparams(tiny_flags, tmp_path):
    assert main(["tune", *tiny_flags, "--tuner", "random", "--max-trials", "2",
                 "--max-epochs", "2", "--tensorboard", "--no-refit", "--quiet"]) == 0
    logs = tmp_path / "runs" / "lstm-random-prices-seed7" / "tensorboard"
    assert sorted(path.name for path in logs.iterdir()) == ["0", "1"]
    assert hparams_metadata.SESSION_START_INFO_TAG in event_tags(logs / "0")
    assert "epoch_loss" in event_tags(logs / "1")


def test_a_users_callback_from_the_config_runs_every_epoch(tiny_flags, tmp_path, monkeypatch):
    log = tmp_path / "epochs.txt"
    monkeypatch.setenv("KTLAB_EPOCH_LOG", str(log))
    config = tmp_path / "callbacks.toml"
    config.write_text(f'[run]\ncallbacks = ["{USER_CALLBACKS}:make_loggers"]\n'
                      f'[tuner]\npatience = 5\n')
    assert main(["tune", "--config", str(config), *tiny_flags, "--tuner", "random",
                 "--max-trials", "2", "--max-epochs", "3", "--no-refit", "--quiet"]) == 0
    lines = log.read_text().splitlines()
    # Two trials of three epochs each; ktlab's own early stopping and history stay too.
    assert [line.split()[0] for line in lines] == ["0", "1", "2", "0", "1", "2"]
    trials = pd.read_csv(tmp_path / "runs" / "lstm-random-prices-seed7" / "trials.csv")
    assert trials["epochs"].tolist() == [3, 3]


def test_run_search_takes_callbacks(tiny_flags, tmp_path, monkeypatch):
    from pipelines.config import load_config
    from pipelines.recipe import run_search

    log = tmp_path / "epochs.txt"
    monkeypatch.setenv("KTLAB_EPOCH_LOG", str(log))
    namespace: dict = {}
    exec(USER_CALLBACKS.read_text(), namespace)  # noqa: S102 (the user's file, as a module would)
    config = load_config(overrides={
        "data": {"source": tiny_flags[1], "lookback": 5, "test_size": 20,
                 "validation_size": 20},
        "model": {"search_space": json.loads(SPACE)},
        "tuner": {"name": "random", "max_trials": 1, "max_epochs": 2, "patience": 5},
        "run": {"output_dir": str(tmp_path / "runs"), "refit": False}})
    run_search(config, callbacks=[namespace["EpochLogger"]()], verbose=False)
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["0", "1"]


def test_bad_callbacks_are_one_line(tiny_flags, tmp_path, capsys):
    config = tmp_path / "callbacks.toml"
    config.write_text(f'[run]\ncallbacks = ["{USER_CALLBACKS}:missing"]\n')
    assert main(["tune", "--config", str(config), *tiny_flags]) == 2
    error = capsys.readouterr().err.strip()
    assert error == (f"ktlab: error: run.callbacks {USER_CALLBACKS}:missing: "
                     f"{USER_CALLBACKS} defines no 'missing'; check the spelling")
    assert not (tmp_path / "runs").exists()


def test_a_maximised_objective_picks_the_highest_score(tmp_path, capsys):
    assert main(["tune", "--model", "dense", "--data", "breast_cancer", "--tuner", "random",
                 "--max-trials", "3", "--max-epochs", "2", "--objective", "val_auc",
                 "--direction", "max", "--no-refit", "--output-dir", str(tmp_path / "runs"),
                 "--search-space", '{"num_layers": [1, 1], "units": [4, 8]}']) == 0
    run_dir = tmp_path / "runs" / "dense-random-breast_cancer-seed42"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
    assert (metrics["objective"], metrics["direction"]) == ("val_auc", "max")
    assert metrics["best_trial_id"] == trials.loc[trials["score"].idxmax(), "trial_id"]
    assert "best 3 trials by val_auc (maximised):" in capsys.readouterr().out


@pytest.mark.parametrize(("flags", "message"), [
    (["--objective", "val_custom"],
     "ktlab: error: cannot tell whether objective 'val_custom' is minimised or maximised; "
     "pass --direction min or --direction max"),
    (["--objective", "val_auc", "--direction", "max"],
     "ktlab: error: objective 'val_auc' is not a metric of the lstm model; use one of "
     "val_loss, val_mae, val_rmse, loss, mae, rmse"),
])
def test_an_objective_that_cannot_be_used_is_one_line(flags, message, tiny_flags, tmp_path,
                                                       capsys):
    assert main(["tune", *tiny_flags, *flags]) == 2
    assert capsys.readouterr().err.strip() == message
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_deterministic_runs_give_identical_trials(tiny_flags, tmp_path):
    frames = []
    for name in ("first", "second"):
        assert main(["tune", *tiny_flags, "--tuner", "random", "--max-trials", "3",
                     "--max-epochs", "2", "--deterministic", "--run-name", name,
                     "--quiet"]) == 0
        run_dir = tmp_path / "runs" / name
        frames.append(pd.read_csv(run_dir / "trials.csv").drop(columns="seconds"))
        frames.append(json.loads((run_dir / "metrics.json").read_text())["test"])
    first_trials, first_test, second_trials, second_test = frames
    pd.testing.assert_frame_equal(first_trials, second_trials)
    assert first_trials["score"].notna().all()
    assert first_test == second_test


def test_version_is_the_packages(capsys):
    import importlib.metadata

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"ktlab {importlib.metadata.version('ktlab')}\n"
