"""The notebooks' shape, read from their cells: each is one a user edits, and git holds it
without outputs. `tests/test_notebook_runs.py` runs them.

Each has one short setup cell, the same in every notebook, that installs ktlab where Python
lacks it and calls `pipelines.notebook.setup` (Drive on Colab only, the runs' folder, the
smoke-test switch: `tests/test_notebook_setup.py` checks what it does); one fenced cell of
plain settings that the configuration is built from; the views of a search a person reads
(`ktlab show`'s leaderboard, the curves, the schedule, the importances); the section on
resuming after a lost session after the search; and imports of public entry points only.
"""

from __future__ import annotations

import ast
import os
import pathlib
import re
import subprocess
import sys

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = ROOT / "notebooks"
NOTEBOOK_NAMES = ["01_quickstart.ipynb", "02_compare_tuners.ipynb", "03_your_own_data.ipynb",
                  "04_your_own_time_series.ipynb"]
INSTALL_CHECK = 'importlib.util.find_spec("pipelines") is None'
REPO_URL_LINE = 'REPO_URL = os.environ.get("KTLAB_REPO_URL", "https://github.com/YOUR-ORG/ktlab")'
SETUP_CELL_LINES = 12
SETTINGS_START = "# ---- YOUR SETTINGS ----"
SETTINGS_END = "# ---- END OF YOUR SETTINGS ----"
# What the setup helper does, which no notebook cell repeats.
SETUP_PIECES = ("google.colab", "drive.mount", 'os.environ.get("KTLAB_OUTPUT_DIR"',
                'os.environ.get("KTLAB_SMOKE_TEST"', "%matplotlib", "/content/drive")
# `"overwrite": True`, `'overwrite': True` or `overwrite=True`, with any spacing.
OVERWRITE = re.compile(r"""["']overwrite["']\s*:\s*True|\boverwrite\s*=\s*True""")
SEARCH_CALLS = {"01_quickstart.ipynb": "run_search", "02_compare_tuners.ipynb": "run_compare",
                "03_your_own_data.ipynb": "run_search",
                "04_your_own_time_series.ipynb": "run_search"}
# A few of each notebook's settings, by name.
SETTINGS = {"01_quickstart.ipynb": {"DATA", "TUNER", "MAX_EPOCHS", "RUN_NAME"},
            "02_compare_tuners.ipynb": {"TUNER_NAMES", "SEEDS", "MAX_EPOCHS", "RUN_NAME"},
            "03_your_own_data.ipynb": {"CSV_PATH", "TUNER", "UNITS", "LOOKBACKS"},
            "04_your_own_time_series.ipynb": {"DATA", "FILL", "HORIZON", "LOOKBACK"}}
# What the notebooks may import: the packages a user's code needs, and what the README and
# `pipelines/recipe.py` present as ktlab's public entry points (no module that moved).
PUBLIC_IMPORTS = {"importlib.util", "os", "subprocess", "sys", "keras", "keras_tuner",
                  "pandas", "IPython.display", "tuners", "pipelines.notebook",
                  "pipelines.config.load_config", "pipelines.recipe.run_search",
                  "pipelines.compare.comparison.plan_budget",
                  "pipelines.compare.comparison.run_compare",
                  "pipelines.run.predict.predict_run", "pipelines.reports.plots"}


def read_notebook(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS_DIR / name, as_version=4)


def code_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


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


def settings_cell(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The one code cell fenced as the user's settings."""
    cells = [cell for cell in code_cells(notebook) if SETTINGS_START in cell.source]
    assert len(cells) == 1
    return cells[0]


def test_the_numbered_notebooks_are_all_there():
    assert sorted(path.name for path in NOTEBOOKS_DIR.glob("*.ipynb")) == NOTEBOOK_NAMES


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_notebook_is_output_free_and_installs_ktlab_first(name):
    notebook = read_notebook(name)
    nbformat.validate(notebook)
    cells = code_cells(notebook)
    assert INSTALL_CHECK in cells[0].source
    assert REPO_URL_LINE in cells[0].source
    assert [(cell.outputs, cell.execution_count) for cell in cells] == [([], None)] * len(cells)
    assert notebook.metadata.kernelspec.name == "python3"
    assert f"notebooks/{name}" in notebook.cells[0].source  # The Colab badge.


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_setup_is_one_short_cell_the_same_in_every_notebook(name):
    notebook = read_notebook(name)
    cells = code_cells(notebook)
    setup = cells[0]
    # One helper call, in the first code cell, with the install before it.
    assert [cell for cell in cells if calls_to(python_tree(cell), "setup")] == [setup]
    assert len([line for line in setup.source.splitlines() if line.strip()]) <= SETUP_CELL_LINES
    [call] = calls_to(python_tree(setup), "setup")
    assert ast.unparse(call.func) == "importlib.import_module('pipelines.notebook').setup"
    assert [(keyword.arg, keyword.value.value) for keyword in call.keywords] == [
        ("use_drive", True)]
    assert setup.source.index(INSTALL_CHECK) < setup.source.index("setup(use_drive=True)")
    # The repository's URL is set in one place, the same in every notebook, and the
    # placeholder is tried rather than refused.
    assert setup.source == code_cells(read_notebook(NOTEBOOK_NAMES[0]))[0].source
    assert setup.source.count("YOUR-ORG") == 1 and "raise" not in setup.source
    # No cell repeats what the helper does; the cells read the session instead.
    for cell in cells:
        assert [piece for piece in SETUP_PIECES if piece in cell.source] == []
    code = "\n".join(cell.source for cell in cells)
    assert "session.smoke_test" in code and "str(session.output_dir)" in code
    # A markdown cell before the setup cell explains it.
    before_setup = notebook.cells[:notebook.cells.index(setup)]
    explained = [cell.source for cell in before_setup if cell.cell_type == "markdown"]
    assert any("KTLAB_REPO_URL" in text and "use_drive=False" in text and "Google Drive" in text
               and "/content" in text and "KTLAB_SMOKE_TEST=1" in text for text in explained)


def test_the_setup_cell_stops_with_one_line_when_the_clone_fails(tmp_path):
    setup = code_cells(read_notebook(NOTEBOOK_NAMES[0]))[0].source
    missing = tmp_path / "no-such-repository"
    work = tmp_path / "content"
    work.mkdir()
    environment = {**os.environ, "KTLAB_REPO_URL": str(missing)}
    # -E -S: no PYTHONPATH and no site-packages, so this Python has no ktlab, as Colab's.
    result = subprocess.run([sys.executable, "-E", "-S", "-c", setup], cwd=work,
                            env=environment, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        f"cannot clone {missing}: set KTLAB_REPO_URL to your ktlab repository's URL")
    assert list(work.iterdir()) == []


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_notebook_has_one_fenced_cell_of_plain_settings_that_the_config_reads(name):
    notebook = read_notebook(name)
    cells = code_cells(notebook)
    cell = settings_cell(notebook)
    assert cells.index(cell) == 1  # Right after the setup cell.
    lines = cell.source.splitlines()
    assert (lines[0], lines[-1]) == (SETTINGS_START, SETTINGS_END)
    names = []
    for statement in python_tree(cell).body:
        # `NAME = value`: a number, a string, True, False, None or a flat list of them.
        assert isinstance(statement, ast.Assign), ast.unparse(statement)
        [target] = statement.targets
        value = statement.value
        plain = isinstance(value, ast.Constant) or (
            isinstance(value, ast.List)
            and all(isinstance(item, ast.Constant) for item in value.elts))
        assert isinstance(target, ast.Name) and target.id.isupper() and plain, (
            f"{name}: {ast.unparse(statement)} is not a plain setting")
        names.append(target.id)
    assert SETTINGS[name] <= set(names) and len(names) == len(set(names))
    # Every setting is read by a later cell, which builds the configuration with
    # `load_config(overrides=...)`.
    later = [python_tree(later_cell) for later_cell in cells[2:]]
    read = {node.id for tree in later for node in ast.walk(tree)
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
    assert sorted(set(names) - read) == []
    loads = [call for tree in later for call in calls_to(tree, "load_config")]
    assert loads and all([keyword.arg for keyword in call.keywords] == ["overrides"]
                         and not call.args for call in loads)


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_notebook_shows_the_leaderboard_curves_schedule_and_importances(name):
    notebook = read_notebook(name)
    after_search = [cell for cell in notebook.cells[search_cell_index(notebook, name) + 1:]
                    if cell.cell_type == "code"]
    # `ktlab show`'s leaderboard, printed as it is.
    boards = [cell for cell in after_search
              if re.fullmatch(r"print\(notebook\.leaderboard\((run_dir|best_dir)\)\)",
                              cell.source.splitlines()[-1])]
    assert len(boards) == 1
    for helper in ("leaderboard", "plot_histories", "plot_schedule", "plot_importance"):
        assert len([cell for cell in after_search
                    if calls_to(python_tree(cell), helper)]) == 1, helper


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_notebook_imports_only_public_entry_points(name):
    imported = set()
    for cell in code_cells(read_notebook(name)):
        tree = python_tree(cell)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                imported.update(node.module if node.module in PUBLIC_IMPORTS
                                else f"{node.module}.{alias.name}" for alias in node.names)
        imported.update(call.args[0].value for call in calls_to(tree, "import_module"))
    assert sorted(imported - PUBLIC_IMPORTS) == []
    assert "pipelines.notebook" in imported


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
def test_notebook_shows_how_to_resume_after_its_search(name):
    notebook = read_notebook(name)
    headings = resume_headings(notebook)
    assert len(headings) == 1
    heading = headings[0]
    text = notebook.cells[heading].source
    assert "setup cell" in text and "settings cell" in text and "Drive" in text
    assert "finished" in text and "interrupted" in text
    resume_cell = notebook.cells[heading + 1]
    assert resume_cell.cell_type == "code"
    tree = python_tree(resume_cell)
    if name == "02_compare_tuners.ipynb":
        # A row per tuner and seed, from each run's trials.
        assert calls_to(tree, "load_trials") and '["status"]' in resume_cell.source
    else:
        assert [ast.unparse(call) for call in calls_to(tree, "run_status")] == [
            "notebook.run_status(config.run_dir)"]
    # Setup, settings, the search, then right after it the section on continuing it: a
    # first run needs none of it, and a lost session stops in the cell just above it.
    setup_index = notebook.cells.index(code_cells(notebook)[0])
    settings_index = notebook.cells.index(settings_cell(notebook))
    search_index = search_cell_index(notebook, name)
    assert setup_index < settings_index < search_index < heading
    assert [cell.cell_type for cell in notebook.cells[search_index + 1:heading]] == []
