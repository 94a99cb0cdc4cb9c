"""The notebooks run top to bottom on a tiny budget, and git holds them without outputs.

Each notebook runs in a fresh kernel with `KTLAB_SMOKE_TEST=1` (about 20 s for 01 and 03,
80 s for 02's six searches on a 2-core CPU) and writes its runs under a temporary folder.
"""

from __future__ import annotations

import json
import pathlib
import sys

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = ROOT / "notebooks"
NOTEBOOK_NAMES = ["01_quickstart.ipynb", "02_compare_tuners.ipynb", "03_your_own_data.ipynb"]
INSTALL_CHECK = 'importlib.util.find_spec("pipelines") is None'
CELL_TIMEOUT_SECONDS = 300


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


def test_the_three_numbered_notebooks_are_all_there():
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


def execute(name: str) -> nbformat.NotebookNode:
    import nbclient

    notebook = read_notebook(name)
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
