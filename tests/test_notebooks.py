"""The notebooks run top to bottom on a tiny budget, and git holds them without outputs.

Each notebook runs in a fresh kernel with `KTLAB_SMOKE_TEST=1` (about 20 s for 01 and 03,
40 s for 04, whose ETS reference alone takes about 10 s, and 80 s for 02's six searches on
a 2-core CPU) and writes its runs under a temporary folder.
Run again in the same folder, a notebook trains nothing: it never overwrites, and its
searches read finished runs back (a lost Colab session loses nothing on Drive).
"""

from __future__ import annotations

import ast
import json
import pathlib
import re
import sys

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = ROOT / "notebooks"
NOTEBOOK_NAMES = ["01_quickstart.ipynb", "02_compare_tuners.ipynb", "03_your_own_data.ipynb",
                  "04_your_own_time_series.ipynb"]
INSTALL_CHECK = 'importlib.util.find_spec("pipelines") is None'
CELL_TIMEOUT_SECONDS = 300
DRIVE_GUARD = '"google.colab" in sys.modules'
DRIVE_OUTPUT_DIR = "/content/drive/MyDrive/ktlab/runs"
# `"overwrite": True`, `'overwrite': True` or `overwrite=True`, with any spacing.
OVERWRITE = re.compile(r"""["']overwrite["']\s*:\s*True|\boverwrite\s*=\s*True""")
SEARCH_CALLS = {"01_quickstart.ipynb": "run_search", "02_compare_tuners.ipynb": "run_compare",
                "03_your_own_data.ipynb": "run_search",
                "04_your_own_time_series.ipynb": "run_search"}
READ_BACK = "holds this finished search; its results are read back"


def read_notebook(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS_DIR / name, as_version=4)


def code_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


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


def python_tree(cell: nbformat.NotebookNode) -> ast.Module:
    """A code cell's syntax tree; IPython's magics (`%matplotlib inline`) are left out."""
    return ast.parse("\n".join(line for line in cell.source.splitlines()
                               if not line.lstrip().startswith("%")))


def calls_to(tree: ast.AST, name: str) -> list[ast.Call]:
    """The calls of `name` or `anything.name`."""
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)
            and (node.func.id if isinstance(node.func, ast.Name)
                 else getattr(node.func, "attr", None)) == name]


def search_cell_index(notebook: nbformat.NotebookNode, name: str) -> int:
    """The index in `notebook.cells` of the first cell that calls the notebook's search."""
    return next(index for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"
                and calls_to(python_tree(cell), SEARCH_CALLS[name]))


def resume_headings(notebook: nbformat.NotebookNode) -> list[int]:
    """The indices in `notebook.cells` of the markdown cells headed "Resuming after a lost
    session"; the resume cell follows its heading."""
    return [index for index, cell in enumerate(notebook.cells) if cell.cell_type == "markdown"
            and re.match(r"#+ Resuming after a lost session\n", cell.source)]


def cell_with(notebook: nbformat.NotebookNode, text: str) -> nbformat.NotebookNode:
    """The one code cell whose source holds `text`."""
    cells = [cell for cell in code_cells(notebook) if text in cell.source]
    assert len(cells) == 1
    return cells[0]


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


def test_the_numbered_notebooks_are_all_there():
    assert sorted(path.name for path in NOTEBOOKS_DIR.glob("*.ipynb")) == NOTEBOOK_NAMES


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_notebook_is_output_free_and_installs_ktlab_first(name):
    notebook = read_notebook(name)
    nbformat.validate(notebook)
    cells = code_cells(notebook)
    assert INSTALL_CHECK in cells[0].source
    assert 'REPO_URL = "https://github.com/YOUR-ORG/ktlab"' in cells[0].source
    assert 'os.environ.get("KTLAB_SMOKE_TEST") == "1"' in cells[1].source
    assert [(cell.outputs, cell.execution_count) for cell in cells] == [([], None)] * len(cells)
    assert notebook.metadata.kernelspec.name == "python3"
    assert f"notebooks/{name}" in notebook.cells[0].source  # The Colab badge.


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_notebook_never_overwrites_and_its_searches_reuse_finished_runs(name):
    notebook = read_notebook(name)
    code = "\n".join(cell.source for cell in code_cells(notebook))
    assert '"overwrite": True' not in code
    assert not OVERWRITE.search(code)
    searches = [call for cell in code_cells(notebook)
                for call in calls_to(python_tree(cell), "run_search")]
    assert len(searches) == {"01_quickstart.ipynb": 1, "02_compare_tuners.ipynb": 0,
                             "03_your_own_data.ipynb": 2, "04_your_own_time_series.ipynb": 1}[name]
    for call in searches:
        keywords = {keyword.arg: keyword.value for keyword in call.keywords}
        assert isinstance(keywords.get("reuse_finished"), ast.Constant)
        assert keywords["reuse_finished"].value is True
        assert "overwrite" not in keywords
    # No run setting turns overwriting on, whatever the spelling.
    for cell in code_cells(notebook):
        for node in ast.walk(python_tree(cell)):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "overwrite":
                        raise AssertionError(f"{name} sets overwrite: {ast.unparse(value)}")


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_first_cell_offers_google_drive_on_colab_only(name):
    notebook = read_notebook(name)
    setup = code_cells(notebook)[0]
    assert DRIVE_GUARD in setup.source and DRIVE_OUTPUT_DIR in setup.source
    tree = python_tree(setup)
    # The opt-in flag is a plain True or False at the top of the cell.
    flags = [node for node in tree.body if isinstance(node, ast.Assign)
             and [ast.unparse(target) for target in node.targets] == ["USE_DRIVE"]]
    assert len(flags) == 1 and isinstance(flags[0].value, ast.Constant)
    assert isinstance(flags[0].value.value, bool)
    guards = [node for node in tree.body if isinstance(node, ast.If)
              and DRIVE_GUARD in ast.get_source_segment(setup.source, node.test)
              and "USE_DRIVE" in ast.get_source_segment(setup.source, node.test)]
    assert len(guards) == 1
    guard = guards[0]
    assert isinstance(guard.test, ast.BoolOp) and isinstance(guard.test.op, ast.And)
    inside = set(map(id, ast.walk(guard)))
    colab_nodes = {
        "import": [node for node in ast.walk(tree)
                   if (isinstance(node, ast.ImportFrom) and "google" in (node.module or ""))
                   or (isinstance(node, ast.Import)
                       and any("google" in alias.name for alias in node.names))],
        "mount": [node for node in ast.walk(tree)
                  if isinstance(node, ast.Call) and "mount" in ast.unparse(node.func)],
        "output dir": [node for node in ast.walk(tree)
                       if (isinstance(node, ast.Subscript)
                           and "KTLAB_OUTPUT_DIR" in ast.unparse(node))
                       or (isinstance(node, ast.Name) and node.id == "DRIVE_OUTPUT_DIR"
                           and isinstance(node.ctx, ast.Load))],
    }
    # Importing Colab's module, mounting Drive and moving the runs all wait for the guard.
    assert all(colab_nodes.values())
    assert all(id(node) in inside for nodes in colab_nodes.values() for node in nodes)
    guarded = ast.get_source_segment(setup.source, guard)
    assert 'drive.mount("/content/drive")' in guarded
    assert 'os.environ["KTLAB_OUTPUT_DIR"] = DRIVE_OUTPUT_DIR' in guarded
    assert not guard.orelse
    # The settings cell, after it, takes the run directories' folder from the variable.
    assert 'os.environ.get("KTLAB_OUTPUT_DIR"' in code_cells(notebook)[1].source
    # A markdown cell before the setup cell explains the flag.
    before_setup = notebook.cells[:notebook.cells.index(setup)]
    explained = [cell.source for cell in before_setup if cell.cell_type == "markdown"]
    assert any("USE_DRIVE" in text and "Google Drive" in text and "/content" in text
               for text in explained)


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_notebook_shows_how_to_resume_before_its_search(name):
    notebook = read_notebook(name)
    headings = resume_headings(notebook)
    assert len(headings) == 1
    heading = headings[0]
    text = notebook.cells[heading].source
    assert "setup cell" in text and "settings cell" in text and "Drive" in text
    assert "finished" in text and "interrupted" in text
    resume_cell = notebook.cells[heading + 1]
    assert resume_cell.cell_type == "code"
    assert calls_to(python_tree(resume_cell), "load_trials")
    assert '["status"]' in resume_cell.source
    # Setup, settings, resume section, then the search that it continues.
    setup_index = notebook.cells.index(code_cells(notebook)[0])
    settings_index = notebook.cells.index(code_cells(notebook)[1])
    assert setup_index < settings_index < heading < search_cell_index(notebook, name)


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


def test_quickstart_tunes_reloads_and_scores(smoke_environment):
    notebook = execute("01_quickstart.ipynb")
    run_dir = smoke_environment / "quickstart"
    assert (run_dir / "best_model.keras").is_file()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["trials"] == 2
    # Histories and predictions plots.
    assert images(notebook) == 2
    assert "naive forecast" in last_output_text(notebook)
    assert f"{metrics['test']['mse']:.6f}"[:6] in last_output_text(notebook)
    assert f"{metrics['search_test']['mse']:.6f}"[:6] in last_output_text(notebook)
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
    assert images(notebook) == 1
    report = code_cells(notebook)[-1].outputs[-1]["data"]["text/markdown"]
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
    # Run again, the notebook reads the finished comparison back and trains nothing.
    saved = file_bytes(out_dir)
    again = execute("02_compare_tuners.ipynb")
    assert file_bytes(out_dir) == saved
    assert code_cells(again)[-1].outputs[-1]["data"]["text/markdown"] == report
    compare_cell = again.cells[search_cell_index(again, "02_compare_tuners.ipynb")]
    assert "holds this finished comparison; its saved results are shown" in printed(compare_cell)
    assert "\n".join(findings) in printed(compare_cell)
    assert "ktlab compare: run" not in printed(compare_cell)
    assert images(again) == 1
    # Other settings under the same RUN_NAME are refused, and nothing is touched.
    import nbclient

    with pytest.raises(nbclient.exceptions.CellExecutionError,
                       match="holds a comparison with other settings"):
        execute("02_compare_tuners.ipynb", edit=('SEARCH_SPACE = {"units": [8]',
                                                 'SEARCH_SPACE = {"units": [12]'))
    assert file_bytes(out_dir) == saved


def test_own_data_writes_a_demo_csv_and_tunes_on_it(smoke_environment):
    notebook = execute("03_your_own_data.ipynb")
    demo_csv = smoke_environment / "demo_MSFT.csv"
    assert demo_csv.read_text().splitlines()[0] == "Date,Open,High,Low,Close,Adj Close,Volume"
    run_dir = smoke_environment / "your-own-data"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["data"]["source"] == str(demo_csv)
    assert config["tuner"]["name"] == "bayesian"
    assert config["model"]["search_space"]["lookbacks"] == [10, 20, 30]
    assert (run_dir / "best_model.keras").is_file()
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
    assert "nothing in" in printed(first.cells[resume_index])
    assert READ_BACK not in printed(first.cells[search_index])

    second = execute("01_quickstart.ipynb")
    # Nothing trained and nothing was written: the histories, scores and model are as they were.
    assert file_bytes(run_dir) == saved
    assert [path.name for path in smoke_environment.iterdir()] == ["quickstart"]
    status = printed(second.cells[resume_index])
    assert "holds a finished search" in status and "completed" in status
    search_output = printed(second.cells[search_index])
    assert READ_BACK in search_output and "trial " not in search_output
    assert images(second) == 2
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
    assert images(notebook) == 1
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
    assert images(again) == 1
