"""`ktlab tune --dry-run`: the plan of a search, printed without TensorFlow or any file."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

from pipelines import config
from pipelines.cli import main
from pipelines.run import build
from tuners.plans import schedule, schedule_report

ROOT = pathlib.Path(__file__).resolve().parents[1]
# What keras-tuner's Hyperband trains for max_epochs=9, factor=3, one iteration (`ktlab
# brackets`): 9+3+1 + 5+2 + 3 trials, and 9+6+6 + 15+12 + 27 epochs.
DEFAULT_TRIALS = 23
DEFAULT_EPOCHS = 75


def dry_run(capsys, *argv: str) -> list[str]:
    assert main(["tune", "--dry-run", *argv]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out.splitlines()


def test_default_plan_is_hyperbands_schedule_without_tensorflow(tmp_path):
    planned = schedule.keras_tuner_schedule(9, 3, 1)
    assert (planned.total_trials, planned.total_epochs) == (DEFAULT_TRIALS, DEFAULT_EPOCHS)
    # A fresh interpreter, so that no other test has imported TensorFlow before.
    script = ("import sys; from pipelines.cli import main; "
              f"code = main(['tune', '--dry-run', '--output-dir', {str(tmp_path / 'runs')!r}]); "
              "print(code, 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[-1] == "0 False False"
    assert f"plan: {DEFAULT_TRIALS} trials, {DEFAULT_EPOCHS} epochs in all" in lines
    # The brackets as `ktlab brackets` prints them, indented under the tuner.
    table = ["  " + line for line in schedule_report.format_schedule(planned).splitlines()]
    start = lines.index(table[0])
    assert lines[start:start + len(table)] == table
    assert lines[start - 1] == "tuner: hyperband, objective val_loss (min), seed 42"
    assert table[-1] == "  total: 3 brackets, 23 trials, 17 configurations, 75 epochs trained"
    assert lines[-2] == (f"run directory: {tmp_path / 'runs' / 'lstm-hyperband-AAPL-seed42'} "
                         f"(new; ktlab tune creates it)")
    assert list(tmp_path.iterdir()) == []


def test_split_sizes_of_the_bundled_aapl(capsys, tmp_path):
    lines = dry_run(capsys, "--output-dir", str(tmp_path))
    assert lines[:8] == [
        "ktlab tune --dry-run: the plan; nothing is trained or written.",
        "data: AAPL daily prices (regression, target return)",
        "  source     AAPL: 3270 rows, 2000-03-01 .. 2013-03-01",
        "  train        1911 samples  2000-05-24 .. 2007-12-31",
        "  validation    470 samples  2008-02-14 .. 2009-12-23",
        "  test          770 samples  2010-02-09 .. 2013-03-01",
        "  input shape (30, 11); the test split is held out of the search",
        "model: lstm, preset quick",
    ]
    # The sizes are those the search is given: the pipeline's own splits.
    prepared = build.make_pipeline(config.load_config(None, {}, [])).prepare()
    assert {name: len(split) for name, split in prepared.splits.items()} == {
        "train": 1911, "validation": 470, "test": 770}
    assert lines[8:13] == ["  units          [16, 32, 64]", "  num_layers     [1, 2]",
                           "  batch_size     [32, 64, 128]",
                           "  learning_rate  [0.0001, 0.01]",
                           "  every other hyperparameter keeps the model's own range"]


def test_bayesian_plan_is_an_upper_bound(capsys, tmp_path):
    lines = dry_run(capsys, "--tuner", "bayesian", "--max-trials", "5", "--max-epochs", "4",
                    "--search-space", '{"units": [8, 16]}', "--output-dir", str(tmp_path))
    assert lines[-3:] == [
        "tuner: bayesian, objective val_loss (min), seed 42",
        "plan: at most 5 trials x 4 epochs = at most 20 epochs; early stopping (patience 3) "
        "can end a trial sooner",
        f"run directory: {tmp_path / 'lstm-bayesian-AAPL-seed42'} (new; ktlab tune creates it)",
    ]
    assert "  units          [8, 16]" in lines
    assert not any("Hyperband schedule" in line for line in lines)


def test_dry_run_writes_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lines = dry_run(capsys)
    assert lines[-1] == ("run directory: runs/lstm-hyperband-AAPL-seed42 (new; ktlab tune "
                         "creates it)")
    lines = dry_run(capsys, "--output-dir", "deep/er", "--overwrite")
    assert lines[-1] == ("run directory: deep/er/lstm-hyperband-AAPL-seed42 (new; ktlab tune "
                         "creates it)")
    assert list(tmp_path.iterdir()) == []


def test_an_existing_run_directory_is_resumed_replaced_or_refused(capsys, tmp_path):
    flags = ("--output-dir", str(tmp_path), "--max-epochs", "3")
    settings = config.load_config(None, {"run": {"output_dir": str(tmp_path)},
                                         "tuner": {"max_epochs": 3}}, [])
    run_dir = tmp_path / "lstm-hyperband-AAPL-seed42"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps(settings.to_dict()))
    assert dry_run(capsys, *flags)[-1] == (
        f"run directory: {run_dir} (holds an unfinished search with these settings; ktlab "
        f"tune resumes it)")
    assert dry_run(capsys, *flags, "--max-epochs", "4")[-1] == (
        f"run directory: {tmp_path / 'lstm-hyperband-AAPL-seed42'} (ktlab tune would refuse "
        f"it: run directory {run_dir} holds an unfinished search with other settings: "
        f"tuner.max_epochs 4 (was 3); resume it with its own (ktlab tune --resume {run_dir}), "
        f"or pass --overwrite or --run-name)")
    (run_dir / "metrics.json").write_text("{}")
    assert dry_run(capsys, *flags)[-1] == (
        f"run directory: {run_dir} (ktlab tune would refuse it: run directory {run_dir} holds "
        f"a finished search; pass --overwrite to start afresh or --run-name to keep both)")
    assert dry_run(capsys, *flags, "--overwrite")[-1] == (
        f"run directory: {run_dir} (exists; --overwrite replaces it)")
    # Nothing was set aside or deleted.
    assert sorted(path.name for path in tmp_path.iterdir()) == [run_dir.name]
    assert sorted(path.name for path in run_dir.iterdir()) == ["config.json", "metrics.json"]


def test_walk_forward_folds_multiply_the_epochs(capsys, tmp_path):
    lines = dry_run(capsys, "--validation", "walk_forward", "--output-dir", str(tmp_path))
    start = lines.index("  walk-forward validation: 3 folds, each trial trains one model per "
                        "fold")
    assert lines[start + 1:start + 7] == [
        "  fold 0 train        1470 samples  2000-05-24 .. 2006-03-30",
        "  fold 0 validation    220 samples  2006-05-15 .. 2007-03-29",
        "  fold 1 train        1470 samples  2001-05-22 .. 2007-03-29",
        "  fold 1 validation    220 samples  2007-05-14 .. 2008-03-27",
        "  fold 2 train        1470 samples  2002-05-24 .. 2008-03-27",
        "  fold 2 validation    220 samples  2008-05-09 .. 2009-03-24",
    ]
    assert "plan: 23 trials, 225 epochs in all (each trial trains 3 models)" in lines


def test_asha_and_pbt_show_their_own_plans(capsys, tmp_path):
    lines = dry_run(capsys, "--tuner", "asha", "--output-dir", str(tmp_path))
    assert lines[-3:-1] == [
        "  rungs at 1, 3, 9 epochs; trials per rung 35, 11, 3 (when trials run one after "
        "another)", "plan: 49 trials, 75 epochs in all"]
    lines = dry_run(capsys, "--tuner", "pbt", "--output-dir", str(tmp_path))
    assert lines[-3:-1] == ["  population 8, intervals ending at epochs 2, 4, 6, 8, 9",
                            "plan: 40 trials, 72 epochs in all"]


def test_asha_options_out_of_range_are_one_line(capsys):
    code = main(["tune", "--dry-run", "--tuner", "asha", "--tuner-options",
                 '{"min_epochs": 20}'])
    assert code == 2
    captured = capsys.readouterr()
    assert captured.err == ("ktlab: error: tuner settings: min_epochs (20) exceeds max_epochs "
                            "(9); lower min_epochs.\n")


def test_a_users_class_is_not_imported(capsys, tmp_path):
    # A file of its own, which no other test in this process can have imported.
    model_file = tmp_path / "dry_run_models.py"
    model_file.write_text((ROOT / "tests" / "models" / "user_models.py").read_text())
    reference = f"{model_file}:TinyGRUModel"
    lines = dry_run(capsys, "--model", reference, "--data", "MSFT", "--output-dir",
                    str(tmp_path / "runs"))
    assert lines[1:3] == [
        "data: MSFT",
        "  split sizes: they follow your class's data kind, which a dry run does not import "
        "(it imports TensorFlow); ktlab data with the same settings shows them"]
    assert lines[3:5] == [f"model: {reference} (your class, imported where the search "
                          f"starts; its presets are not shown)",
                          "  every hyperparameter keeps the model's own range"]
    run_dir = tmp_path / "runs" / "TinyGRUModel-hyperband-MSFT-seed42"
    assert lines[-1] == f"run directory: {run_dir} (new; ktlab tune creates it)"
    assert "ktlab_user_dry_run_models" not in sys.modules
