"""The notebooks run top to bottom on a tiny budget, in a fresh kernel each, as a user runs them.

Each notebook runs with `KTLAB_SMOKE_TEST=1` (one at a time on a 2-core CPU: 15 s for 01,
19 s for 03, 22 s for 04, whose ETS reference alone takes about 10 s, and 47 s for 02's six
searches) and writes its runs under a temporary folder. Run again in the same folder, a
notebook trains nothing: it never overwrites, and its searches read finished runs back (a
lost Colab session loses nothing on Drive). `tests/test_notebooks.py` reads their cells.
"""

from __future__ import annotations

import json
import pathlib
import re
import sys

import nbformat
import pytest
from test_notebooks import (
    NOTEBOOKS_DIR,
    cell_with,
    code_cells,
    read_notebook,
    resume_headings,
    search_cell_index,
)

from pipelines.cli import views

CELL_TIMEOUT_SECONDS = 300
READ_BACK = "holds this finished search; its results are read back"
LEADERBOARD = "top 2 of 2 trials by val_loss (lower is better):"
TOO_FEW_TRIALS = ("no importances for this run: hyperparameter importances need at least 8 "
                  "usable trials (completed or stopped early, with a finite score; a "
                  "Hyperband configuration counts once), got 2; run more trials "
                  "(--max-trials, or a larger --max-epochs for Hyperband)\n")


def images(notebook: nbformat.NotebookNode) -> int:
    return sum("image/png" in output.get("data", {})
               for cell in code_cells(notebook) for output in cell.outputs)


def last_output_text(notebook: nbformat.NotebookNode) -> str:
    output = code_cells(notebook)[-1].outputs[-1]
    return output["data"]["text/plain"] if "data" in output else output["text"]


def printed(cell: nbformat.NotebookNode) -> str:
    """What a code cell printed or logged, on standard output and standard error."""
    return "".join(output.get("text", "") for output in cell.outputs
                   if output.get("output_type") == "stream")


def shown_table(cell: nbformat.NotebookNode) -> dict[str, list[float]]:
    """The numbers of the DataFrame a cell shows, by row label.

    pandas prints a frame too wide for its 80 columns in blocks of columns, one after the
    other; a row's numbers from every block are joined in the order of the columns.
    """
    text = next(output["data"]["text/plain"] for output in cell.outputs
                if "text/html" in output.get("data", {}))
    rows: dict[str, list[float]] = {}
    for line in text.splitlines():
        # A row: its label from the first column, two spaces or more, then its numbers.
        match = re.fullmatch(r"(\S.*?)\s{2,}((?:-?\d+\.\d+\s*)+)\\?", line.rstrip())
        if match:
            rows.setdefault(match.group(1), []).extend(map(float, match.group(2).split()))
    return rows


def file_bytes(folder: pathlib.Path) -> dict[str, bytes]:
    """Every file under `folder`, by relative path, with its contents."""
    return {str(path.relative_to(folder)): path.read_bytes()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def images_in(cell: nbformat.NotebookNode) -> int:
    return sum("image/png" in output.get("data", {}) for output in cell.outputs)


@pytest.fixture
def smoke_environment(tmp_path_factory, monkeypatch) -> pathlib.Path:
    """The smoke switch, a temporary output folder, and this interpreter as the kernel.

    A `python3` kernelspec in the user's Jupyter folder would win over the virtual
    environment's, so the test installs one for this interpreter and puts it first.
    """
    from ipykernel import kernelspec
    from jupyter_client.kernelspec import KernelSpecManager

    prefix = tmp_path_factory.mktemp("jupyter")
    kernelspec.install(prefix=str(prefix))
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    assert KernelSpecManager().get_kernel_spec("python3").argv[0] == sys.executable
    output_dir = tmp_path_factory.mktemp("runs")
    monkeypatch.setenv("KTLAB_SMOKE_TEST", "1")
    monkeypatch.setenv("KTLAB_OUTPUT_DIR", str(output_dir))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    return output_dir


def execute(name: str, edit: tuple[str, str] | None = None) -> nbformat.NotebookNode:
    """Runs a notebook in a fresh kernel; `edit` replaces a text in its code first."""
    import nbclient

    notebook = read_notebook(name)
    if edit is not None:
        edited = [cell for cell in code_cells(notebook) if edit[0] in cell.source]
        assert len(edited) == 1
        edited[0].source = edited[0].source.replace(*edit)
    client = nbclient.NotebookClient(notebook, timeout=CELL_TIMEOUT_SECONDS,
                                     kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS_DIR)}})
    client.execute()
    return notebook


def check_the_views_of_the_search(notebook: nbformat.NotebookNode, run_dir: pathlib.Path,
                                  schedule: bool) -> None:
    """The leaderboard is `ktlab show`'s for `run_dir`; the schedule is drawn where the tuner
    has one; too few trials for importances, which the notebook says."""
    board = printed(cell_with(notebook, "notebook.leaderboard("))
    assert board == views.format_run(run_dir) + "\n"
    assert LEADERBOARD in board.splitlines()
    assert images_in(cell_with(notebook, "plots.plot_histories(")) == 1
    assert images_in(cell_with(notebook, "notebook.plot_schedule(")) == int(schedule)
    assert printed(cell_with(notebook, "notebook.plot_importance(")) == TOO_FEW_TRIALS


def test_quickstart_tunes_reloads_and_scores(smoke_environment):
    notebook = execute("01_quickstart.ipynb")
    run_dir = smoke_environment / "quickstart"
    assert (run_dir / "best_model.keras").is_file()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["trials"] == 2
    # The settings cell's, with the smoke test's budget.
    saved = json.loads((run_dir / "config.json").read_text())
    assert (saved["data"]["source"], saved["tuner"]["name"], saved["tuner"]["max_epochs"],
            saved["run"]["seed"]) == ("AAPL", "hyperband", 2, 42)
    # The leaderboard, curves and Hyperband's schedule, then the forecasts' plot.
    check_the_views_of_the_search(notebook, run_dir, schedule=True)
    assert images(notebook) == 3
    # The scores as a small table of numbers, one row per model; no raw metrics.json.
    scores = shown_table(code_cells(notebook)[-1])
    assert list(scores) == ["refitted model", "search's model", "naive forecast"]
    for label, key in (("refitted model", "test"), ("search's model", "search_test")):
        assert scores[label] == pytest.approx(list(metrics[key].values()), abs=6e-6)
    assert scores["naive forecast"] == pytest.approx(
        list(metrics["baseline"]["test"].values()), abs=6e-6)
    assert not [cell for cell in code_cells(notebook) if '"search_test"' in printed(cell)]
    # predict_run reloads the refitted model and its scalers and reproduces predictions.csv.
    reload_cell = next(cell for cell in code_cells(notebook) if "predict_run(" in cell.source)
    difference = re.search(r"largest difference from predictions.csv: (\S+)",
                           printed(reload_cell))
    assert difference is not None and float(difference.group(1)) < 1e-3
    assert not list(NOTEBOOKS_DIR.glob("runs")) and not list(NOTEBOOKS_DIR.glob("ktlab"))


@pytest.mark.slow
def test_compare_runs_every_tuner_and_seed_and_shows_the_report(smoke_environment):
    import pandas as pd

    notebook = execute("02_compare_tuners.ipynb")
    out_dir = smoke_environment / "compare"
    table = pd.read_csv(out_dir / "comparison.csv")
    assert list(zip(table["tuner"], table["seed"], strict=True)) == [
        (tuner, seed) for tuner in ("hyperband", "bayesian", "random") for seed in (42, 1042)]
    assert (table["trials"] == 2).all()
    for row in table.itertuples():
        assert (out_dir / f"{row.tuner}-seed{row.seed}" / "best_model.keras").is_file()
    report = cell_with(notebook, "Markdown(report").outputs[-1]["data"]["text/markdown"]
    assert report.startswith("# Tuner comparison")
    assert "| random | 42 |" in report and "plot_anytime.png" not in report
    # The findings head the report, and the compare cell prints the same sentences.
    budget_line = ("Epochs trained, mean over seeds (planned in brackets): hyperband 4.000 "
                   "(4.000), bayesian 4.000 (4.000), random 4.000 (4.000).")
    assert report.splitlines()[2] == f"- {budget_line}"
    findings = [line[2:] for line in report.splitlines()[2:] if line.startswith("- ")]
    assert any("has the lowest best validation loss on average" in line for line in findings)
    assert sum("naive forecast on the" in line for line in findings) == 3
    compare_output = printed(notebook.cells[search_cell_index(notebook, "02_compare_tuners.ipynb")])
    assert "\n".join(findings) in compare_output
    # Inside the best search (the first of equals): Hyperband's and BOHB's have a schedule.
    best = table.loc[table["best_val_loss"].idxmin()]
    best_dir = out_dir / f"{best['tuner']}-seed{best['seed']}"
    schedule = best["tuner"] in ("hyperband", "bohb")
    check_the_views_of_the_search(notebook, best_dir, schedule=schedule)
    # The anytime plot, the best search's curves and its schedule.
    assert images(notebook) == 2 + schedule
    # Run again, the notebook reads the finished comparison back and trains nothing.
    saved = file_bytes(out_dir)
    again = execute("02_compare_tuners.ipynb")
    assert file_bytes(out_dir) == saved
    assert cell_with(again, "Markdown(report").outputs[-1]["data"]["text/markdown"] == report
    compare_cell = again.cells[search_cell_index(again, "02_compare_tuners.ipynb")]
    assert "holds this finished comparison; its saved results are shown" in printed(compare_cell)
    assert "\n".join(findings) in printed(compare_cell)
    assert "ktlab compare: run" not in printed(compare_cell)
    assert images(again) == 2 + schedule
    # Other settings under the same RUN_NAME are refused, and nothing is touched.
    import nbclient

    with pytest.raises(nbclient.exceptions.CellExecutionError,
                       match="holds a comparison with other settings"):
        execute("02_compare_tuners.ipynb", edit=('"units": {"choices": [8]}',
                                                 '"units": {"choices": [12]}'))
    assert file_bytes(out_dir) == saved


def test_own_data_writes_a_demo_csv_and_tunes_on_it(smoke_environment):
    notebook = execute("03_your_own_data.ipynb")
    demo_csv = smoke_environment / "demo_MSFT.csv"
    assert demo_csv.read_text().splitlines()[0] == "Date,Open,High,Low,Close,Adj Close,Volume"
    run_dir = smoke_environment / "your-own-data"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["data"]["source"] == str(demo_csv)
    assert config["tuner"]["name"] == "bayesian"
    # The settings cell's plain values, written in the explicit form of a search space.
    assert config["model"]["search_space"]["lookbacks"] == {"choices": [10, 20, 30]}
    assert config["model"]["search_space"]["learning_rate"] == {"min": 1e-4, "max": 1e-2,
                                                                "log": True}
    assert (run_dir / "best_model.keras").is_file()
    # Bayesian optimisation has no schedule, and the notebook says so.
    check_the_views_of_the_search(notebook, run_dir, schedule=False)
    assert printed(cell_with(notebook, "notebook.plot_schedule(")) == (
        "no schedule to draw: bayesian runs no Hyperband brackets or ASHA rungs\n")
    # The curves and the forecasts' plot.
    assert images(notebook) == 2
    # The notebook's own HyperModel class, tuned with no edit to the package.
    own_dir = smoke_environment / "your-own-model"
    own_config = json.loads((own_dir / "config.json").read_text())
    assert own_config["model"]["name"] == "__main__:MyForecaster"
    trials = json.loads((own_dir / "best_hyperparameters.json").read_text())
    assert sorted(trials) == ["filters", "kernel_size", "learning_rate"]
    assert (own_dir / "best_model.keras").is_file()
    assert "MyForecaster" in last_output_text(notebook)
    assert "naive forecast" in last_output_text(notebook)
    # Run again, both searches, the LSTM's and the notebook's own class's, are read back.
    saved = {path: file_bytes(path) for path in (run_dir, own_dir)}
    again = execute("03_your_own_data.ipynb")
    assert {path: file_bytes(path) for path in (run_dir, own_dir)} == saved
    assert READ_BACK in printed(again.cells[search_cell_index(again, "03_your_own_data.ipynb")])
    assert last_output_text(again) == last_output_text(notebook)
    assert images(again) == 2


@pytest.mark.slow
def test_quickstart_run_again_reads_its_finished_search_back(smoke_environment):
    first = execute("01_quickstart.ipynb")
    run_dir = smoke_environment / "quickstart"
    saved = file_bytes(run_dir)
    assert {"histories.jsonl", "metrics.json", "best_model.keras"} <= set(saved)
    resume_index = resume_headings(first)[0] + 1
    search_index = search_cell_index(first, "01_quickstart.ipynb")
    # The resume section follows the search, so a first run shows the search it finished.
    status = printed(first.cells[resume_index])
    assert status == f"{run_dir} holds a finished search; its trials:\nstatus\ncompleted    2\n"
    assert READ_BACK not in printed(first.cells[search_index])

    second = execute("01_quickstart.ipynb")
    # Nothing trained and nothing was written: the histories, scores and model are as they were.
    assert file_bytes(run_dir) == saved
    assert [path.name for path in smoke_environment.iterdir()] == ["quickstart"]
    assert printed(second.cells[resume_index]) == status
    search_output = printed(second.cells[search_index])
    assert READ_BACK in search_output and "trial " not in search_output
    check_the_views_of_the_search(second, run_dir, schedule=True)
    assert images(second) == 3
    assert last_output_text(second) == last_output_text(first)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert f"{metrics['test']['mse']:.6f}"[:6] in last_output_text(second)


def test_own_series_forecasts_four_weeks_beside_the_references(smoke_environment):
    import pandas as pd

    notebook = execute("04_your_own_time_series.ipynb")
    run_dir = smoke_environment / "your-own-series"
    data = json.loads((run_dir / "config.json").read_text())["data"]
    assert (data["source"], data["fill"], data["horizon"], data["lookback"]) == (
        "co2", "interpolate", 4, 8)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert (metrics["horizon"], metrics["frequency"], metrics["units"]) == (4, "weekly",
                                                                             "co2_ppm")
    assert metrics["trials"] == 2
    # The data cell says what `ktlab data` says: the frequency, the gaps filled, the season.
    summary = printed(cell_with(notebook, "prepared.summary()")).splitlines()
    assert summary[:4] == [
        "data: co2: co2_ppm, weekly, the next 4 weeks (regression, target co2_ppm)",
        "frequency: weekly (W-SAT), 2284 steps from 1958-03-29 to 2001-12-29",
        "gaps: 59 missing values in 59 rows (first 1958-05-10): interpolated in time on 59 "
        "rows (--fill interpolate)",
        "season: 52 steps (from the frequency; --season to change)"]
    # The averaged scores are metrics.json's, the model's beside each reference's.
    references = {"persistence": "persistence", "seasonal naive": "seasonal_naive",
                  "statistical": "statistical"}
    averaged = shown_table(cell_with(notebook, 'metrics["baselines"]'))
    assert list(averaged) == ["LSTM", *references]
    expected = {"LSTM": metrics["test"], **{label: metrics["baselines"][key]["test"]
                                            for label, key in references.items()}}
    for label, scores in expected.items():
        assert averaged[label] == pytest.approx(
            [scores[name] for name in ("mse", "mae", "rmse", "mase", "smape")], abs=6e-4)
    # One row per week ahead: the model's MSE and MAE from test_by_step, then the MASE of
    # the model and of each reference; each MASE column averages to metrics.json's MASE.
    by_step = shown_table(cell_with(notebook, 'metrics["test_by_step"]'))
    assert list(by_step) == ["1 week ahead", "2 weeks ahead", "3 weeks ahead", "4 weeks ahead"]
    assert all(len(row) == 6 for row in by_step.values())
    for row, scores in zip(by_step.values(), metrics["test_by_step"], strict=True):
        assert row[:2] == pytest.approx([scores["mse"], scores["mae"]], abs=6e-4)
    columns = list(zip(*by_step.values(), strict=True))
    for column, scores in zip(columns[2:], expected.values(), strict=True):
        assert sum(column) / 4 == pytest.approx(scores["mase"], abs=6e-4)
    # The errors grow with the steps ahead, the model's as the persistence forecast's.
    assert list(columns[1]) == sorted(columns[1]) and list(columns[3]) == sorted(columns[3])
    # The leaderboard, curves and Hyperband's schedule, then the forecasts' plot.
    check_the_views_of_the_search(notebook, run_dir, schedule=True)
    assert images(notebook) == 3
    # The forecast of the 4 weeks after the series' last row, 2001-12-29, from forecast.csv.
    forecast_cell = cell_with(notebook, "predict_run(")
    assert printed(forecast_cell) == "from 2001-12-29, the series' last row (371.5 co2_ppm):\n"
    shown = re.findall(r"^(\d)\s+(\d{4}-\d\d-\d\d)\s+(\d+\.\d+)$", last_output_text(notebook),
                       flags=re.MULTILINE)
    last = pd.read_csv(run_dir / "forecast.csv").iloc[-1]
    assert [(step, date) for step, date, _ in shown] == [
        ("1", "2002-01-05"), ("2", "2002-01-12"), ("3", "2002-01-19"), ("4", "2002-01-26")]
    assert [float(value) for *_, value in shown] == pytest.approx(
        [last[f"forecast_{step}"] for step in range(1, 5)], abs=6e-3)
    outputs = "".join(printed(cell) for cell in code_cells(notebook)).lower()
    for word in ("price", "close", " days"):
        assert word not in outputs
    assert not list(NOTEBOOKS_DIR.glob("runs")) and not list(NOTEBOOKS_DIR.glob("ktlab"))
    # Run again, the finished search is read back: nothing trains and no file changes.
    saved = file_bytes(run_dir)
    again = execute("04_your_own_time_series.ipynb")
    assert file_bytes(run_dir) == saved
    search_output = printed(again.cells[search_cell_index(again,
                                                          "04_your_own_time_series.ipynb")])
    assert READ_BACK in search_output and "trial " not in search_output
    assert shown_table(cell_with(again, 'metrics["test_by_step"]')) == by_step
    assert last_output_text(again) == last_output_text(notebook)
    assert images(again) == 3
