"""`pipelines.notebook`, the notebooks' shared helper, without a notebook and without TensorFlow.

Colab's `google.colab.drive` is stood in for by a module that records its calls: Drive
exists only on Colab, and what is checked here is when ktlab asks for it, not Drive itself.
`setup` imports TensorFlow quietly; these tests record that call instead of making it.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import types

import pytest
from test_importance import TOO_FEW, synthetic_trials, write_run

from pipelines import notebook
from pipelines.cli import views

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture
def colab(monkeypatch) -> dict[str, list]:
    """Off Colab, with a stand-in for Colab's Drive module that records every mount, and
    TensorFlow's quiet import recorded rather than made.

    The stand-in sits under `google.colab.drive` only, so `setup` would reach it if it
    mounted Drive off Colab; `colab["on"]()` puts `google.colab` in `sys.modules` too, as
    Colab has it.
    """
    calls: dict[str, list] = {"mounts": [], "tensorflow": []}
    drive = types.ModuleType("google.colab.drive")
    drive.mount = lambda path: calls["mounts"].append(path)
    colab_module = types.ModuleType("google.colab")
    colab_module.drive = drive
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setitem(sys.modules, "google.colab.drive", drive)
    monkeypatch.setattr(notebook.quiet, "import_tensorflow",
                        lambda: calls["tensorflow"].append(True))
    monkeypatch.delenv("KTLAB_OUTPUT_DIR", raising=False)
    monkeypatch.delenv("KTLAB_SMOKE_TEST", raising=False)
    calls["on"] = lambda: monkeypatch.setitem(sys.modules, "google.colab", colab_module)
    return calls


def test_off_colab_nothing_is_mounted_and_the_runs_go_to_the_output_dir_variable(
        colab, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KTLAB_OUTPUT_DIR", str(tmp_path / "my runs"))
    session = notebook.setup(use_drive=True)
    assert colab["mounts"] == []
    assert session == notebook.Session(output_dir=tmp_path / "my runs", smoke_test=False,
                                       on_colab=False, drive_mounted=False)
    assert (tmp_path / "my runs").is_dir()
    assert colab["tensorflow"] == [True]
    assert capsys.readouterr().out == f"run directories go to {tmp_path / 'my runs'}\n"


def test_off_colab_without_the_variable_the_runs_go_to_the_repository(colab, tmp_path,
                                                                       monkeypatch):
    monkeypatch.setattr(notebook, "REPO_ROOT", tmp_path)
    session = notebook.setup()
    assert colab["mounts"] == []
    assert session.output_dir == tmp_path / "runs" and session.output_dir.is_dir()


def test_on_colab_drive_is_mounted_and_the_runs_go_to_it(colab, tmp_path, monkeypatch,
                                                         capsys):
    colab["on"]()
    monkeypatch.setattr(notebook, "DRIVE_MOUNT", tmp_path / "content" / "drive")
    session = notebook.setup(use_drive=True)
    assert colab["mounts"] == [str(tmp_path / "content" / "drive")]
    runs = tmp_path / "content" / "drive" / "MyDrive" / "ktlab" / "runs"
    assert session == notebook.Session(output_dir=runs, smoke_test=False, on_colab=True,
                                       drive_mounted=True)
    assert runs.is_dir()
    assert capsys.readouterr().out == f"run directories go to {runs}\n"


def test_on_colab_the_output_dir_variable_still_names_the_folder(colab, tmp_path, monkeypatch):
    colab["on"]()
    monkeypatch.setattr(notebook, "DRIVE_MOUNT", tmp_path / "content" / "drive")
    monkeypatch.setenv("KTLAB_OUTPUT_DIR", str(tmp_path / "elsewhere"))
    session = notebook.setup(use_drive=True)
    assert colab["mounts"] == [str(tmp_path / "content" / "drive")]
    assert session.output_dir == tmp_path / "elsewhere" and session.drive_mounted


def test_on_colab_use_drive_false_mounts_nothing_and_says_the_runs_are_lost(colab, tmp_path,
                                                                           monkeypatch, capsys):
    colab["on"]()
    monkeypatch.setattr(notebook, "REPO_ROOT", tmp_path)
    session = notebook.setup(use_drive=False)
    assert colab["mounts"] == []
    assert (session.on_colab, session.drive_mounted) == (True, False)
    assert capsys.readouterr().out.splitlines() == [
        f"run directories go to {tmp_path / 'runs'}",
        "Colab deletes them with this session: setup(use_drive=True) keeps them on Google "
        "Drive"]


@pytest.mark.parametrize("value, smoke_test", [("1", True), ("0", False), ("", False),
                                               (None, False)])
def test_the_smoke_test_is_the_variable_set_to_1_only(colab, tmp_path, monkeypatch, capsys,
                                                       value, smoke_test):
    monkeypatch.setenv("KTLAB_OUTPUT_DIR", str(tmp_path))
    if value is not None:
        monkeypatch.setenv("KTLAB_SMOKE_TEST", value)
    assert notebook.setup().smoke_test is smoke_test
    said = "KTLAB_SMOKE_TEST=1: every search is shrunk to tiny budgets"
    assert (said in capsys.readouterr().out) is smoke_test


def test_the_helper_imports_no_tensorflow():
    code = "import sys; from pipelines import notebook; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=ROOT)
    assert result.stdout.splitlines()[-1] == "False"


def test_run_status_says_what_a_run_directory_holds(tmp_path):
    run_dir = tmp_path / "run"
    assert notebook.run_status(run_dir) == (
        f"nothing in {run_dir} yet: the search cell starts a new search")
    write_run(run_dir, synthetic_trials(count=3))
    # A trial that started and never ended: the one running when the session was lost.
    start = {"event": "trial_start", "trial_id": "0003", "bracket": None, "round": None,
             "parent_trial_id": None, "initial_epoch": 0, "target_epochs": 5,
             "hyperparameters": {"learning_rate": 0.01, "units": 16, "dropout": 0.1}}
    with open(run_dir / "histories.jsonl", "a") as file:
        file.write(json.dumps(start) + "\n")
    assert notebook.run_status(run_dir).splitlines() == [
        f"{run_dir} holds an interrupted search; its trials:", "status", "completed     3",
        "incomplete    1"]
    (run_dir / "metrics.json").write_text("{}")
    assert notebook.run_status(run_dir).splitlines()[0] == (
        f"{run_dir} holds a finished search; its trials:")


def test_the_leaderboard_is_ktlab_shows(tmp_path):
    write_run(tmp_path / "run", synthetic_trials(count=12))
    text = notebook.leaderboard(tmp_path / "run", top=3)
    assert text == views.format_run(tmp_path / "run", 3)
    lines = text.splitlines()
    assert lines[4] == "top 3 of 12 trials by val_loss (lower is better):"
    assert [line.split()[0] for line in lines[6:9]] == ["1", "2", "3"]


def test_importances_are_drawn_with_8_usable_trials_and_said_to_be_missing_below(tmp_path,
                                                                                capsys):
    write_run(tmp_path / "short", synthetic_trials(count=5))
    assert notebook.plot_importance(tmp_path / "short") is None
    assert capsys.readouterr().out == f"no importances for this run: {TOO_FEW}\n"
    write_run(tmp_path / "long", synthetic_trials(count=40))
    figure = notebook.plot_importance(tmp_path / "long")
    axes = figure.axes[0]
    assert [label.get_text() for label in axes.get_yticklabels()] == [
        "learning_rate", "units", "dropout"]
    assert axes.get_title() == ("hyperparameter importance over 40 trials (in-sample, "
                                "indicative only)")
    assert capsys.readouterr().out == ""


def test_the_schedule_is_hyperbands_brackets_and_none_for_a_trial_budget_tuner(tmp_path,
                                                                              capsys):
    run_dir = tmp_path / "run"
    write_run(run_dir, synthetic_trials(count=3))
    assert notebook.plot_schedule(run_dir) is None
    assert capsys.readouterr().out == (
        "no schedule to draw: random runs no Hyperband brackets or ASHA rungs\n")
    (run_dir / "config.json").write_text(json.dumps({"tuner": {
        "name": "hyperband", "max_epochs": 9, "factor": 3, "hyperband_iterations": 1}}))
    figure = notebook.plot_schedule(run_dir)
    assert figure.get_suptitle() == (
        "Hyperband schedule: max_epochs=9, factor=3; 23 trials, 75 epochs")
    assert [axes.get_title() for axes in figure.axes] == ["bracket 2", "bracket 1",
                                                          "bracket 0"]


def test_the_demo_prices_are_a_yahoo_csv_of_the_bundled_ticker(tmp_path):
    import pandas as pd

    from pipelines.data import sources

    path = notebook.write_demo_prices(tmp_path / "folder" / "demo.csv", ticker="MSFT")
    lines = path.read_text().splitlines()
    assert lines[0] == "Date,Open,High,Low,Close,Adj Close,Volume"
    bundled = sources.load_stock_frame("MSFT")
    assert len(lines) == len(bundled) + 1
    written = pd.read_csv(path)
    assert written["Date"].iloc[0] == f"{bundled.index[0]:%Y-%m-%d}"
    assert written["Adj Close"].to_numpy() == pytest.approx(bundled["close"].to_numpy())
