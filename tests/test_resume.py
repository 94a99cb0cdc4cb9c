"""Losing nothing: a killed search resumes, diverging trials end it with one line.

Every search here is real (Keras training on a tiny CSV); the kill is a real SIGKILL of
a `python -m pipelines tune` process.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import keras
import pandas as pd
import pytest
from conftest import TINY_SPACE, read_records

import tuners
from pipelines.cli import main
from pipelines.reports import plots
from tuners.observers import checkpoints
from tuners.plans import schedule

REPOSITORY = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture
def tiny_flags(tiny_search_flags) -> list[str]:
    return tiny_search_flags


def best_chain(trials: pd.DataFrame, best: str) -> list[str]:
    """The best trial's id, and its parent's when Hyperband promoted it."""
    parent = trials.set_index("trial_id").loc[best, "parent_trial_id"]
    return sorted([best] if pd.isna(parent) else [best, parent])



def running_trial(records: list[dict]) -> str | None:
    """The trial that has started and trained an epoch but not ended, if any."""
    ended = {record["trial_id"] for record in records if record["event"] == "trial_end"}
    trained = {record["trial_id"] for record in records if record["event"] == "epoch"}
    started = [record["trial_id"] for record in records if record["event"] == "trial_start"]
    running = [trial_id for trial_id in started if trial_id not in ended and trial_id in trained]
    return running[-1] if running else None


def test_a_killed_search_resumes_without_running_finished_trials_again(tiny_flags, tmp_path):
    flags = [*tiny_flags, "--tuner", "random", "--max-trials", "5", "--max-epochs", "8",
             "--patience", "8", "--run-name", "killed"]
    run_dir = tmp_path / "runs" / "killed"
    history = run_dir / "histories.jsonl"
    process = subprocess.Popen([sys.executable, "-m", "pipelines", "tune", *flags],
                               cwd=REPOSITORY, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    try:
        deadline = time.monotonic() + 120
        interrupted = None
        while time.monotonic() < deadline and process.poll() is None:
            records = read_records(history) if history.exists() else []
            ended = [record for record in records if record["event"] == "trial_end"]
            interrupted = running_trial(records)
            if len(ended) >= 2 and interrupted is not None:
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    before = read_records(history)
    ended_before = [record["trial_id"] for record in before if record["event"] == "trial_end"]
    partial_epochs = [record["epoch"] for record in before
                      if record["event"] == "epoch" and record["trial_id"] == interrupted]
    assert len(ended_before) >= 2
    assert interrupted not in ended_before
    assert len(partial_epochs) >= 1
    assert not (run_dir / "metrics.json").exists()

    assert main(["tune", "--resume", str(run_dir)]) == 0

    after = read_records(history)
    starts = [record["trial_id"] for record in after if record["event"] == "trial_start"]
    superseded = [record for record in after if record["event"] == "superseded"]
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
    histories = tuners.load_histories(run_dir)
    # An uninterrupted random search runs max_trials trials.
    assert trials["trial_id"].tolist() == ["0", "1", "2", "3", "4"]
    assert json.loads((run_dir / "metrics.json").read_text())["trials"] == 5
    for trial_id in ended_before:
        assert starts.count(trial_id) == 1
    assert starts.count(interrupted) == 2
    assert [(record["trial_id"], record["epochs"]) for record in superseded] == [
        (interrupted, len(partial_epochs))]
    assert not histories.duplicated(["trial_id", "execution", "epoch"]).any()
    for trial_id, row in trials.set_index("trial_id").iterrows():
        curve = histories[histories["trial_id"] == trial_id]["epoch"].tolist()
        assert curve == list(range(row["epochs"]))
    # The trials before the kill are unchanged: same scores, same epochs.
    ended_scores = {record["trial_id"]: record["score"] for record in before
                    if record["event"] == "trial_end"}
    for trial_id, score in ended_scores.items():
        assert trials.set_index("trial_id").loc[trial_id, "score"] == pytest.approx(score)
    print(f"\nresume: {len(ended_before)} trials ended before the kill (trial {interrupted} "
          f"killed after {len(partial_epochs)} epochs), {len(trials)} after resuming")


class InterruptAfterEpochs(keras.callbacks.Callback):
    """Raises KeyboardInterrupt after a number of epochs over the whole search.

    keras-tuner deep-copies callbacks for every trial, so the count lives on the class.
    """

    epochs_left = 0

    def on_epoch_end(self, epoch, logs=None):
        type(self).epochs_left -= 1
        if type(self).epochs_left == 0:
            raise KeyboardInterrupt


def test_an_interrupted_hyperband_search_resumes_to_its_schedule(tiny_flags, tmp_path,
                                                                 monkeypatch, capsys):
    flags = [*tiny_flags, "--max-epochs", "3", "--factor", "3", "--patience", "5",
             "--run-name", "hb"]
    run_dir = tmp_path / "runs" / "hb"
    original = tuners.default_callbacks
    # Bracket 1 trains trials 0, 1 and 2 for one epoch each, then promotes the best to
    # three epochs: the fourth epoch is the promoted trial's first.
    InterruptAfterEpochs.epochs_left = 4
    monkeypatch.setattr(tuners, "default_callbacks",
                        lambda *args: [*original(*args), InterruptAfterEpochs()])
    with pytest.raises(KeyboardInterrupt):
        main(["tune", *flags])
    monkeypatch.setattr(tuners, "default_callbacks", original)
    interrupted = tuners.load_trials(run_dir)
    assert interrupted["status"].tolist() == ["completed"] * 3 + ["incomplete"]

    assert main(["tune", *flags]) == 0
    output = capsys.readouterr().out
    assert "ktlab: 3 trials had finished; an interrupted one runs again" in output

    trials = tuners.load_trials(run_dir)
    expected = schedule.keras_tuner_schedule(3, 3).total_trials
    assert len(trials) == expected == 6
    assert trials["status"].isin(["completed", "stopped_early"]).all()
    promoted = trials.dropna(subset=["parent_trial_id"])
    assert len(promoted) == 1
    histories = tuners.load_histories(run_dir)
    child = promoted.iloc[0]["trial_id"]
    assert histories[histories["trial_id"] == child]["epoch"].tolist() == [1, 2]
    # Only the best trial's checkpoint is left, and its parent's if it was promoted
    # (keras-tuner loads the parent's weights first): every other trial is settled.
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert sorted(checkpoints.checkpoint_files(run_dir / "tuner")) == best_chain(
        trials, metrics["best_trial_id"])
    assert len(list((run_dir / "tuner").glob("trial_*/trial.json"))) == 6

    # A finished search is not run again by accident.
    assert main(["tune", *flags]) == 2
    assert capsys.readouterr().err.strip() == (
        f"ktlab: error: run directory {run_dir} holds a finished search; pass --overwrite to "
        f"start afresh or --run-name to keep both")


def test_resuming_with_other_settings_or_a_wrong_directory_is_refused(tiny_flags, tmp_path,
                                                                      capsys):
    run_dir = tmp_path / "runs" / "unfinished"
    run_dir.mkdir(parents=True)
    saved = {"data": {"lookback": 5}, "model": {"search_space": json.loads(TINY_SPACE)},
             "tuner": {"name": "random", "max_trials": 5, "max_epochs": 2},
             "run": {"seed": 42}}
    from pipelines.config import load_config

    config = load_config(overrides={**saved, "data": {"lookback": 5, "source": tiny_flags[1],
                                                      "test_size": 20,
                                                      "validation_size": 20}})
    (run_dir / "config.json").write_text(json.dumps(config.to_dict()))
    flags = [*tiny_flags, "--tuner", "random", "--max-epochs", "2", "--run-name", "unfinished"]

    assert main(["tune", *flags, "--max-trials", "8", "--model", "lstm"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"ktlab: error: run directory {run_dir} holds an unfinished search with other "
        f"settings: tuner.max_trials 8 (was 5); resume it with its own (ktlab tune --resume "
        f"{run_dir}), or pass --overwrite or --run-name")
    assert main(["tune", "--resume", str(run_dir), "--tuner", "bayesian"]) == 2
    assert "settings: tuner.name \"bayesian\" (was \"random\")" in capsys.readouterr().err
    assert main(["tune", "--resume", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"ktlab: error: --resume {tmp_path / 'nowhere'}: no such directory; pass a run "
        f"directory that ktlab tune wrote")
    assert main(["tune", "--resume", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"ktlab: error: {tmp_path} is not a ktlab run directory (no config.json); pass a run "
        f"directory that ktlab tune wrote")
    assert main(["tune", "--resume", str(run_dir), "--overwrite"]) == 2
    assert "--resume continues a search and --overwrite deletes it" in capsys.readouterr().err
    assert sorted(path.name for path in run_dir.iterdir()) == ["config.json"]


def test_diverging_trials_end_the_search_with_one_line(tiny_flags, tmp_path, capsys):
    flags = list(tiny_flags)
    # A learning rate of 1e30 sends the LSTM's loss to infinity in its first batch.
    flags[-1] = ('{"units": [4, 8], "num_layers": [1, 1], "batch_size": [16], '
                 '"learning_rate": [1e30, 1e31]}')
    run_dir = tmp_path / "runs" / "diverged"

    code = main(["tune", *flags, "--tuner", "random", "--max-trials", "4", "--max-epochs", "2",
                 "--max-consecutive-failed-trials", "2", "--run-name", "diverged"])

    assert code == 2
    error = capsys.readouterr().err.strip()
    assert error == (
        f"ktlab: error: 2 trials in a row failed (the --max-consecutive-failed-trials limit), "
        f"so the search stopped after 2 trials, 2 of them failed; see {run_dir / 'trials.csv'} "
        f"for the reasons, narrow the search space (e.g. the learning-rate range) and rerun "
        f"with --overwrite")
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
    assert trials["trial_id"].tolist() == ["0", "1"]
    assert trials["status"].tolist() == ["failed", "failed"]
    assert trials["reason"].tolist() == ["loss or objective became NaN or infinite at "
                                         "epoch 0"] * 2
    assert trials["oracle_status"].tolist() == ["FAILED", "FAILED"]
    assert trials["score"].isna().all()
    # The plots of an all-NaN search are drawn all the same.
    assert (run_dir / "plot_histories.png").stat().st_size > 0
    assert (run_dir / "plot_hyperparameters.png").stat().st_size > 0
    assert not (run_dir / "metrics.json").exists()
    histories = tuners.load_histories(run_dir)
    assert histories["loss"].isna().all()
    figure = plots.plot_histories(histories, tuners.load_trials(run_dir))
    assert [line.get_gid() for line in figure.axes[0].lines].count("failed") == 2
    # keras-tuner's oracle state on disk records both failures and no running trial.
    oracle_state = json.loads((run_dir / "tuner" / "oracle.json").read_text())
    assert oracle_state["ongoing_trials"] == {}
    assert oracle_state["end_order"] == ["0", "1"]
    # keras-tuner would stop a resumed search again after one more trial: not resumed.
    assert main(["tune", *flags, "--tuner", "random", "--max-trials", "4", "--max-epochs",
                 "2", "--max-consecutive-failed-trials", "2", "--run-name", "diverged"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"ktlab: error: run directory {run_dir} holds a search that stopped because 2 trials "
        f"in a row failed; narrow the search space and pass --overwrite to start afresh, or "
        f"--run-name to keep both")
