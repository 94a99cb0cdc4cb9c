"""Hyperparameter importances from synthetic trials: no training, no TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import numpy as np
import pandas as pd
import pytest

from pipelines.cli import main
from pipelines.errors import KtlabError
from pipelines.reports import importance

TOO_FEW = ("hyperparameter importances need at least 8 usable trials (completed or stopped "
           "early, with a finite score; a Hyperband configuration counts once), got 5; run "
           "more trials (--max-trials, or a larger --max-epochs for Hyperband)")


def synthetic_trials(count: int = 40, seed: int = 0) -> pd.DataFrame:
    """Trials whose score depends strongly on log10(learning_rate), weakly on units and
    not at all on dropout, as `tuners.load_trials` returns them."""
    rng = np.random.default_rng(seed)
    learning_rate = 10 ** rng.uniform(-4, -1, count)
    units = rng.choice([16, 32, 64, 128], count)
    dropout = rng.uniform(0.0, 0.5, count)
    score = ((np.log10(learning_rate) + 2.5) ** 2 + 0.15 * np.log2(units / 16)
             + rng.normal(0, 0.02, count))
    return pd.DataFrame({
        "trial_id": [f"{index:04d}" for index in range(count)],
        "status": "completed", "score": score, "target_epochs": 5, "parent_trial_id": None,
        "hp_learning_rate": learning_rate, "hp_units": units, "hp_dropout": dropout,
    })


def test_ranking_follows_how_much_the_score_depends_on_each_hyperparameter():
    table = importance.importances(synthetic_trials())
    assert list(table.columns) == ["hyperparameter", "importance", "std"]
    assert table["hyperparameter"].tolist() == ["learning_rate", "units", "dropout"]
    values = dict(zip(table["hyperparameter"], table["importance"], strict=True))
    assert values["learning_rate"] > 1.0
    assert values["units"] > 0.02
    assert abs(values["dropout"]) < 0.02
    assert (table["std"] >= 0).all()
    assert table.attrs["trials"] == 40


def test_the_same_seed_gives_the_same_table():
    first = importance.importances(synthetic_trials(), seed=3)
    second = importance.importances(synthetic_trials(), seed=3)
    pd.testing.assert_frame_equal(first, second)


@pytest.mark.parametrize("status, score", [("failed", -1000.0), ("completed", float("nan")),
                                           ("completed", float("inf")),
                                           ("incomplete", 500.0)])
def test_trials_whose_score_does_not_count_are_left_out(status, score):
    trials = synthetic_trials()
    extreme = trials.iloc[[0]].assign(trial_id="0099", status=status, score=score,
                                      hp_dropout=0.49, hp_learning_rate=1e-4)
    with_extreme = pd.concat([trials, extreme], ignore_index=True)
    pd.testing.assert_frame_equal(importance.importances(with_extreme),
                                  importance.importances(trials))


def test_a_hyperband_configuration_counts_once_by_its_furthest_trained_trial():
    trials = synthetic_trials()
    # Trial 0000 was promoted: 0100 continued it to 15 epochs with the same values.
    promoted = trials.iloc[[0]].assign(trial_id="0100", parent_trial_id="0000",
                                       target_epochs=15, score=trials["score"].iloc[0] - 0.1)
    chained = importance._usable_configurations(pd.concat([trials, promoted],
                                                          ignore_index=True))
    assert len(chained) == 40
    assert "0000" not in chained["trial_id"].tolist()
    assert "0100" in chained["trial_id"].tolist()


def test_categorical_and_inactive_hyperparameters_are_encoded():
    trials = synthetic_trials()
    trials["hp_optimizer"] = np.where(np.arange(40) % 2, "adam", "sgd")
    # A conditional hyperparameter, active only with sgd.
    trials["hp_momentum"] = np.where(trials["hp_optimizer"] == "sgd", 0.9, np.nan)
    trials["hp_tuner/epochs"] = 5
    features = importance._features(trials)
    assert list(features.columns) == ["learning_rate", "units", "dropout", "optimizer",
                                      "momentum"]
    assert features["learning_rate"].between(-4, -1).all()
    assert sorted(features["optimizer"].unique()) == [0.0, 1.0]
    # The inactive value sits one unit (the range is 0 wide) below the active ones.
    assert sorted(features["momentum"].unique()) == pytest.approx([-0.1, 0.9])
    table = importance.importances(trials)
    assert set(table["hyperparameter"]) == {"learning_rate", "units", "dropout", "optimizer",
                                            "momentum"}


def test_too_few_trials_is_one_line():
    with pytest.raises(KtlabError) as error:
        importance.importances(synthetic_trials(count=5))
    assert str(error.value) == TOO_FEW


def test_too_few_varying_hyperparameters_is_one_line():
    trials = synthetic_trials().assign(hp_units=32, hp_dropout=0.1)
    with pytest.raises(KtlabError) as error:
        importance.importances(trials)
    assert str(error.value) == (
        "hyperparameter importances need at least 2 hyperparameters that vary across the "
        "usable trials, got 1 (learning_rate); widen the search space (--search-space)")


def test_the_plot_has_a_bar_per_hyperparameter_largest_at_the_top():
    table = importance.importances(synthetic_trials())
    figure = importance.plot_importance(table, objective="val_loss")
    axes = figure.axes[0]
    assert [label.get_text() for label in axes.get_yticklabels()] == [
        "learning_rate", "units", "dropout"]
    assert [tick for tick in axes.get_yticks()] == [2, 1, 0]
    assert len(axes.patches) == 3
    assert axes.get_title() == ("hyperparameter importance over 40 trials (in-sample, "
                                "indicative only)")
    assert axes.get_xlabel() == "fall in R² of a random forest's fit of val_loss when shuffled"


def write_run(run_dir, trials: pd.DataFrame) -> None:
    """A run directory with the histories records that `tuners.observers.recorder` writes."""
    run_dir.mkdir(parents=True)
    records = []
    for row in trials.itertuples():
        values = {"learning_rate": row.hp_learning_rate, "units": int(row.hp_units),
                  "dropout": row.hp_dropout}
        records.append({"event": "trial_start", "trial_id": row.trial_id, "bracket": None,
                        "round": None, "parent_trial_id": None, "initial_epoch": 0,
                        "target_epochs": 5, "hyperparameters": values})
        records.append({"event": "epoch", "trial_id": row.trial_id, "execution": 0,
                        "epoch": 0, "seconds": 0.1,
                        "metrics": {"loss": row.score, "val_loss": row.score}})
        records.append({"event": "trial_end", "trial_id": row.trial_id, "status": row.status,
                        "reason": None, "score": row.score, "epochs": 1, "target_epochs": 5,
                        "seconds": 0.1, "hyperparameters": values})
    with open(run_dir / "histories.jsonl", "w") as file:
        for record in records:
            file.write(json.dumps(record) + "\n")
    (run_dir / "config.json").write_text(json.dumps(
        {"tuner": {"name": "random", "objective": "val_loss", "direction": "min"}}))


def test_ktlab_importance_prints_the_table_and_writes_the_files(tmp_path, capsys):
    run_dir = tmp_path / "run"
    write_run(run_dir, synthetic_trials())
    assert main(["importance", str(run_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("hyperparameter importance over 40 trials (random forest, permutation "
                        "importance; in-sample, indicative only):")
    assert lines[1].split() == ["hyperparameter", "importance", "std"]
    assert [line.split()[0] for line in lines[2:5]] == ["learning_rate", "units", "dropout"]
    assert lines[5:] == [str(run_dir / "importance.csv"), str(run_dir / "plot_importance.png")]
    written = pd.read_csv(run_dir / "importance.csv")
    assert written["hyperparameter"].tolist() == ["learning_rate", "units", "dropout"]
    expected = importance.importances(synthetic_trials())
    # The CLI prints 4 significant digits of what the file holds.
    assert lines[2].split()[1:] == [f"{expected['importance'][0]:.4g}",
                                    f"{expected['std'][0]:.4g}"]
    assert written["importance"].to_numpy() == pytest.approx(expected["importance"].to_numpy())
    assert (run_dir / "plot_importance.png").read_bytes()[:4] == b"\x89PNG"


def test_ktlab_importance_does_not_import_tensorflow(tmp_path):
    run_dir = tmp_path / "run"
    write_run(run_dir, synthetic_trials())
    code = ("import sys; from pipelines.cli import main; "
            f"code = main(['importance', {str(run_dir)!r}]); "
            "print('tensorflow' in sys.modules, code)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.splitlines()[-1] == "False 0"


@pytest.mark.parametrize("make, message", [
    (lambda tmp_path: tmp_path / "missing",
     "{dir}: no such directory; pass a run directory that ktlab tune wrote"),
    (lambda tmp_path: tmp_path,
     "no histories.jsonl at {dir}; pass a run directory or the file itself"),
])
def test_ktlab_importance_of_a_bad_directory_is_one_line_and_exit_2(tmp_path, capsys, make,
                                                                      message):
    directory = make(tmp_path)
    assert main(["importance", str(directory)]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == f"ktlab: error: {message.format(dir=directory)}"
    assert captured.out == ""


def test_ktlab_importance_with_too_few_trials_is_one_line_and_exit_2(tmp_path, capsys):
    write_run(tmp_path / "run", synthetic_trials(count=5))
    assert main(["importance", str(tmp_path / "run")]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == f"ktlab: error: {TOO_FEW}"
    assert captured.out == ""
    assert not (tmp_path / "run" / "importance.csv").exists()


def test_the_importance_step_writes_importances_only_with_enough_trials(tmp_path):
    write_run(tmp_path / "short", synthetic_trials(count=5))
    importance.importance_step(types.SimpleNamespace(run_dir=tmp_path / "short"))
    assert sorted(path.name for path in (tmp_path / "short").iterdir()) == [
        "config.json", "histories.jsonl"]
    write_run(tmp_path / "long", synthetic_trials())
    importance.importance_step(types.SimpleNamespace(run_dir=tmp_path / "long"))
    assert (tmp_path / "long" / "importance.csv").exists()
    assert (tmp_path / "long" / "plot_importance.png").exists()
