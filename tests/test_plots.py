"""Plots drawn from a fixture run directory: one line per configuration, prune marks."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import tuners
from pipelines.cli import main
from pipelines.reports import plots
from tuners.plans import schedule


def write_fixture_run(run_dir) -> None:
    """A Hyperband-like history: config 0 is promoted (trial 3), 1 and 2 are stopped by
    Hyperband after 1 epoch, 4 trains the full 3 epochs, 5 fails with a NaN loss."""
    run_dir.mkdir(parents=True)
    records = []

    def trial(trial_id, epochs, losses, status="completed", parent=None, initial=0, target=1,
              bracket=1, round_=0, units=8):
        records.append({"event": "trial_start", "trial_id": trial_id, "bracket": bracket,
                        "round": round_, "parent_trial_id": parent, "initial_epoch": initial,
                        "target_epochs": target, "hyperparameters": {"units": units,
                                                                     "learning_rate": 0.01}})
        for epoch, loss in zip(epochs, losses, strict=True):
            records.append({"event": "epoch", "trial_id": trial_id, "execution": 0,
                            "epoch": epoch, "seconds": 0.5,
                            "metrics": {"loss": loss, "val_loss": loss}})
        records.append({"event": "trial_end", "trial_id": trial_id, "status": status,
                        "reason": "NaN loss" if status == "failed" else None,
                        "score": None if status == "failed" else min(losses),
                        "epochs": len(epochs), "target_epochs": target, "seconds": 1.0,
                        "hyperparameters": {"units": units, "learning_rate": 0.01}})

    trial("0000", [0], [0.9])
    trial("0001", [0], [1.5], units=16)
    trial("0002", [0], [1.2], units=32)
    trial("0003", [1, 2], [0.7, 0.6], parent="0000", initial=1, target=3, round_=1)
    trial("0004", [0, 1, 2], [1.0, 0.8, 0.75], target=3, bracket=0, units=16)
    trial("0005", [0], [None], status="failed", target=3, bracket=0, units=32)
    with open(run_dir / "histories.jsonl", "w") as file:
        for record in records:
            file.write(json.dumps(record) + "\n")
    (run_dir / "config.json").write_text(json.dumps(
        {"tuner": {"name": "hyperband", "max_epochs": 3, "factor": 3,
                   "hyperband_iterations": 1}}))
    pd.DataFrame({"date": ["2020-01-02", "2020-01-03"], "actual": [10.0, 11.0],
                  "predicted": [10.5, 10.8], "baseline": [9.8, 10.0]}).to_csv(
        run_dir / "predictions.csv", index=False)


def test_histories_plot_has_a_line_per_configuration_and_prune_marks(tmp_path):
    write_fixture_run(tmp_path / "run")
    histories = tuners.load_histories(tmp_path / "run")
    trials = tuners.load_trials(tmp_path / "run")
    assert trials["outcome"].tolist() == ["promoted", "not_promoted", "not_promoted",
                                          "completed", "completed", "failed"]
    assert plots.configuration_chains(trials) == {
        "0000": ["0000", "0003"], "0001": ["0001"], "0002": ["0002"], "0004": ["0004"],
        "0005": ["0005"]}
    figure = plots.plot_histories(histories, trials)
    axes = figure.axes[0]
    curves = [line for line in axes.get_lines() if (line.get_gid() or "").startswith("config-")]
    assert [line.get_gid() for line in curves] == [
        "config-0000", "config-0001", "config-0002", "config-0004", "config-0005"]
    # The promoted configuration's curve continues across rounds in absolute epochs.
    assert list(curves[0].get_xdata()) == [1, 2, 3]
    assert list(curves[0].get_ydata()) == pytest.approx([0.9, 0.7, 0.6])
    pruned = [line for line in axes.get_lines() if line.get_gid() == "pruned"]
    assert [line.get_xdata()[0] for line in pruned] == [1, 1]
    assert all(line.get_linestyle() == "--" for line in pruned)
    assert len([line for line in axes.get_lines() if line.get_gid() == "failed"]) == 1
    assert axes.get_title() == ("val_loss per configuration: 5 configurations, 2 stopped by "
                                "Hyperband (dashed)")
    assert axes.get_xlabel() == "epoch (absolute, across Hyperband rounds)"


def test_write_plots_and_ktlab_plot_redraw_every_file(tmp_path, capsys):
    run_dir = tmp_path / "run"
    write_fixture_run(run_dir)
    assert main(["plot", str(run_dir)]) == 0
    printed = capsys.readouterr().out.split()
    assert sorted(pathlib_names(printed)) == ["plot_histories.png", "plot_hyperparameters.png",
                                              "plot_predictions.png", "plot_schedule.png"]
    for name in printed:
        assert (run_dir / pathlib_names([name])[0]).stat().st_size > 10_000
    assert main(["plot", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"ktlab: error: {tmp_path} is neither a run directory (no histories.jsonl) nor a "
        f"comparison (no comparison.csv); pass a folder that ktlab wrote")


def pathlib_names(paths: list[str]) -> list[str]:
    return [path.rsplit("/", 1)[-1] for path in paths]


def test_hyperparameter_plot_uses_log_axis_for_learning_rate(tmp_path):
    write_fixture_run(tmp_path / "run")
    figure = plots.plot_hyperparameters(tuners.load_trials(tmp_path / "run"))
    scales = {axes.get_xlabel(): axes.get_xscale() for axes in figure.axes}
    assert scales == {"units": "linear", "learning_rate": "log"}


def test_schedule_plot_has_a_panel_per_bracket():
    figure = plots.plot_schedule(schedule.keras_tuner_schedule(9, 3))
    assert [axes.get_title() for axes in figure.axes] == ["bracket 2", "bracket 1", "bracket 0"]
    heights = [[patch.get_height() for patch in axes.patches] for axes in figure.axes]
    assert heights == [[9, 3, 1], [5, 2], [3]]


def test_anytime_curves_mean_and_band_over_seeds():
    first = pd.DataFrame({"score": [3.0, 1.0, 2.0], "epochs": [2, 2, 2],
                          "seconds": [1.0, 1.0, 1.0], "status": ["completed"] * 3})
    second = pd.DataFrame({"score": [2.0, 2.0, 0.5], "epochs": [2, 2, 2],
                           "seconds": [1.0, 1.0, 1.0], "status": ["completed"] * 3})
    curves = plots.anytime_curves({"random": [first, second]}, "epochs")
    grid, mean, low, high = curves["random"]
    at_six = grid.searchsorted(6.0)
    assert grid[-1] == 6.0
    assert mean[at_six] == pytest.approx(0.75)
    assert (low[at_six], high[at_six]) == (0.5, 1.0)
    best_accuracy = plots.anytime_curves({"random": [first]}, "epochs", direction="max")
    assert best_accuracy["random"][1][-1] == 3.0
    # A failed trial's score (kept by keras-tuner from the epochs before a NaN) never counts.
    diverged = second.assign(status=["completed", "completed", "failed"])
    assert plots.anytime_curves({"random": [diverged]}, "epochs")["random"][1][-1] == 2.0
    figure = plots.plot_anytime({"random": [first, second]})
    assert [axes.get_xlabel() for axes in figure.axes] == ["cumulative epochs trained",
                                                           "cumulative trial time (s)"]
