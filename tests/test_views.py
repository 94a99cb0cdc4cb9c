"""`ktlab list` and `ktlab show RUN_DIR`, on the real registries, data and a real tiny run."""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from hypermodels import registry as model_registry
from pipelines.cli import main
from pipelines.run.summary import format_hyperparameters, format_value
from tuners import registry as tuner_registry

ROOT = pathlib.Path(__file__).resolve().parents[1]
RUN_NAME = "dense-random-diabetes-seed7"
SHOW_FIX = "pass a run directory that ktlab tune wrote"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished random search of three dense trials of two epochs on the diabetes table."""
    folder = tmp_path_factory.mktemp("views") / "runs"
    code = main(["tune", "--model", "dense", "--data", "diabetes", "--tuner", "random",
                 "--max-trials", "3", "--max-epochs", "2", "--seed", "7", "--output-dir",
                 str(folder), "--search-space",
                 '{"units": [4, 8], "num_layers": [1, 2], "batch_size": [32]}', "--quiet"])
    assert code == 0
    return folder / RUN_NAME


def blocks(text: str) -> dict[str, list[str]]:
    """Each block of `ktlab list`: its heading's first word and its entries' lines."""
    found = {}
    for block in text.split("\n\n"):
        heading, *lines = block.splitlines()
        found[heading.split()[0]] = lines
    return found


def show(capsys, *arguments: str) -> list[str]:
    assert main(["show", *map(str, arguments)]) == 0
    return capsys.readouterr().out.splitlines()


def section(lines: list[str], start: str) -> list[str]:
    """The lines of the section of `ktlab show` whose first line starts with `start`."""
    first = next(index for index, line in enumerate(lines) if line.startswith(start))
    end = lines.index("", first) if "" in lines[first:] else len(lines)
    return lines[first:end]


def test_list_names_every_model_tuner_pruner_and_bundled_dataset(capsys):
    assert main(["list"]) == 0
    found = blocks(capsys.readouterr().out)

    assert list(found) == ["models", "tuners", "pruners", "bundled"]
    names = {heading: [line.split()[0] for line in lines] for heading, lines in found.items()}
    assert names["models"] == list(model_registry.MODELS) == ["lstm", "dense"]
    assert names["tuners"] == list(tuner_registry.TUNERS) == [
        "hyperband", "bayesian", "random", "grid", "genetic", "bohb", "asha", "pbt"]
    assert names["pruners"] == ["none", "median"]
    assert names["bundled"] == ["AAPL", "MSFT", "IBM", "GOOG", "co2", "diabetes",
                                "breast_cancer"]
    assert found["models"][1].split() == [
        "dense", "table", "presets", "quick,", "article", "data", "diabetes", "A", "stack", "of",
        "dense", "layers", "with", "a", "regression", "or", "classification", "head."]
    assert found["tuners"][0].split()[:3] == ["hyperband", "epochs", "budget"]
    assert found["tuners"][2].split() == ["random", "trials", "budget", "keras-tuner's",
                                          "random", "search."]
    # The counts and dates are read from the data, as data/README.md states them.
    assert found["bundled"][0].split()[:6] == ["AAPL", "series", "3270", "days,",
                                               "2000-03-01", "to"]
    assert found["bundled"][3].split()[2:7] == ["2148", "days,", "2004-08-19", "to",
                                                "2013-03-01"]
    assert found["bundled"][4].split()[:8] == ["co2", "series", "2284", "steps,",
                                               "1958-03-29", "to", "2001-12-29", "co2_ppm,"]
    assert found["bundled"][5].split()[:8] == ["diabetes", "table", "442", "rows,", "10",
                                               "features", "regression", "(scikit-learn's"]
    assert found["bundled"][6].split()[2:7] == ["569", "rows,", "30", "features",
                                                "classification"]


def test_list_and_show_import_no_tensorflow(run_dir):
    code = ("import sys; from pipelines.cli import main; "
            f"codes = (main(['list']), main(['show', {str(run_dir)!r}])); "
            "print(*codes, 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    # Run from the repository's root, so that the child imports this checkout's packages.
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=120, cwd=ROOT)
    assert result.stdout.splitlines()[-1] == "0 0 False False"


def test_show_header_and_leaderboard_follow_trials_csv(run_dir, capsys):
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
    lines = show(capsys, run_dir)

    assert lines[:3] == [
        f"run {run_dir}",
        "model dense (preset quick), tuner random (3 trials at most), data diabetes, seed 7",
        f"3 trials (3 completed), {trials['epochs_trained'].sum()} epochs, finished in "
        f"{json.loads((run_dir / 'metrics.json').read_text())['seconds']:.0f} s"]
    board = section(lines, "top ")
    assert board[0] == "top 3 of 3 trials by val_loss (lower is better):"
    assert board[1].split() == ["rank", "trial", "status", "val_loss", "epochs",
                                "hyperparameters"]
    best_first = trials.sort_values("score", kind="stable")
    hp_columns = [column for column in trials.columns if column.startswith("hp_")]
    for rank, (row, (_, trial)) in enumerate(zip(board[2:], best_first.iterrows(),
                                                 strict=True), start=1):
        hyperparameters = format_hyperparameters(
            {column[3:]: trial[column] for column in hp_columns if not pd.isna(trial[column])})
        assert row.split(maxsplit=5) == [str(rank), trial["trial_id"], "completed",
                                         format_value(trial["score"]), "2", hyperparameters]


def test_show_prints_the_best_configuration_and_the_scores_beside_the_baselines(run_dir,
                                                                                 capsys):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    best = json.loads((run_dir / "best_hyperparameters.json").read_text())
    lines = show(capsys, run_dir)

    configuration = section(lines, "best configuration")
    assert configuration[0] == (f"best configuration (trial {metrics['best_trial_id']}, "
                                f"best_hyperparameters.json):")
    assert [line.split(maxsplit=2) for line in configuration[1:]] == [
        [name, "=", json.dumps(value)] for name, value in best.items()]
    # keras-tuner's best trial leads the leaderboard.
    assert section(lines, "top ")[2].split()[1] == metrics["best_trial_id"]
    scores = section(lines, "best trial ")
    assert scores[0] == f"best trial {metrics['best_trial_id']}, scores in target units:"
    test_mse, baseline_mse = (format_value(metrics["test"]["mse"]),
                              format_value(metrics["baseline"]["test"]["mse"]))
    assert scores[3].split() == [
        "test", "refitted", "(2", "epochs):", "mse", f"{test_mse},", "mae",
        f"{format_value(metrics['test']['mae'])},", "rmse",
        format_value(metrics["test"]["rmse"]), "|", "baseline:", "mse", f"{baseline_mse},",
        "mae", f"{format_value(metrics['baseline']['test']['mae'])},", "rmse",
        format_value(metrics["baseline"]["test"]["rmse"])]
    assert scores[4] == "  baseline = training mean"


def test_top_limits_the_leaderboard(run_dir, capsys):
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
    board = section(show(capsys, run_dir, "--top", "1"), "top ")

    assert board[0] == "top 1 of 3 trials by val_loss (lower is better):"
    assert len(board) == 3
    assert board[2].split()[:2] == ["1", trials.loc[trials["score"].idxmin(), "trial_id"]]


def test_an_unfinished_run_with_a_failed_trial_ranks_the_others_first(run_dir, tmp_path,
                                                                       capsys):
    copy = tmp_path / "unfinished"
    shutil.copytree(run_dir, copy)
    for name in ("metrics.json", "best_hyperparameters.json"):
        (copy / name).unlink()
    trials = pd.read_csv(copy / "trials.csv", dtype={"trial_id": str})
    order = trials.sort_values("score", kind="stable")["trial_id"].tolist()
    # The best trial is made a failure: it falls to the end, unranked and without a score.
    failed = trials["trial_id"] == order[0]
    trials.loc[failed, ["status", "score"]] = ["failed", float("nan")]
    trials.to_csv(copy / "trials.csv", index=False)
    lines = show(capsys, copy)

    assert lines[2].startswith("3 trials (2 completed, 1 failed), ")
    assert lines[2].endswith(", unfinished")
    board = section(lines, "top ")
    assert board[0] == ("top 3 of 3 trials by val_loss (lower is better; 1 not ranked: "
                        "pruned, failed or unfinished):")
    assert [row.split()[:4] for row in board[2:]] == [
        ["1", order[1], "completed", format_value(trials.set_index("trial_id").loc[
            order[1], "score"])],
        ["2", order[2], "completed", format_value(trials.set_index("trial_id").loc[
            order[2], "score"])],
        ["-", order[0], "failed", "-"]]
    assert section(lines, "best configuration")[0] == (
        f"best configuration so far (trial {order[1]}):")
    assert lines[-1] == (f"no scores yet: the search has not finished (no metrics.json); "
                         f"continue it with ktlab tune --resume {copy}")


def test_a_run_without_trials_csv_is_read_from_its_histories(run_dir, tmp_path, capsys):
    finished = section(show(capsys, run_dir), "top ")
    copy = tmp_path / "running"
    shutil.copytree(run_dir, copy)
    for name in ("trials.csv", "metrics.json", "best_hyperparameters.json"):
        (copy / name).unlink()

    assert section(show(capsys, copy), "top ") == finished


@pytest.mark.parametrize("make, arguments, message", [
    (lambda tmp, run: tmp / "missing", [], "{dir}: no such directory; " + SHOW_FIX),
    (lambda tmp, run: run / "trials.csv", [],
     "{dir} is a file, not a directory; " + SHOW_FIX),
    (lambda tmp, run: tmp, [],
     "{dir} is not a ktlab run directory (no config.json); " + SHOW_FIX),
    (lambda tmp, run: run.parent, [],
     f"{{dir}} is not a run directory but a folder of runs ({RUN_NAME}); pass one, e.g. "
     f"ktlab show {{dir}}/{RUN_NAME}"),
    (lambda tmp, run: run, ["--top", "0"],
     "--top must be at least 1, got 0; pass how many trials to list"),
    (lambda tmp, run: run, ["--top", "-3"],
     "--top must be at least 1, got -3; pass how many trials to list"),
])
def test_show_refuses_what_it_cannot_show_in_one_line(run_dir, tmp_path, capsys, make,
                                                      arguments, message):
    directory = make(tmp_path, run_dir)
    assert main(["show", str(directory), *arguments]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [f"ktlab: error: {message.format(dir=directory)}"]


def test_show_of_a_run_without_trials_says_to_wait(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps({"model": {"name": "dense"}}))

    assert main(["show", str(tmp_path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"ktlab: error: {tmp_path} holds no trials yet (no trials.csv or histories.jsonl); "
        f"wait until ktlab tune has run a trial"]
