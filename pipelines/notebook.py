"""What the notebooks share: the session they set up once, and the views of a run they show.

Each notebook's first code cell installs ktlab where Python lacks it (Colab), then calls
`setup`, so that no notebook repeats the rest:

```python
from pipelines import notebook

session = notebook.setup(use_drive=True)  # On Colab: runs on Google Drive.
config = load_config(overrides={"run": {"output_dir": str(session.output_dir)}})
result = run_search(config, reuse_finished=True)
print(notebook.leaderboard(result.run_dir))
```

`setup` imports TensorFlow once, with its start-up log (CUDA, oneDNN) kept off the cell's
output; nothing else here imports it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import sys
from typing import Any

import pandas
from matplotlib.figure import Figure

import pipelines
import tuners
from pipelines.cli import views
from pipelines.config import Config
from pipelines.data import PreparedData, sources
from pipelines.errors import KtlabError
from pipelines.reports import importance, plots
from pipelines.run import build, quiet

COLAB_MODULE = "google.colab"
# Where Colab mounts Google Drive, and the runs' folder on it: Colab deletes /content with
# the session, and only a run directory on Drive outlives it.
DRIVE_MOUNT = pathlib.Path("/content/drive")
DRIVE_RUNS = pathlib.PurePosixPath("MyDrive", "ktlab", "runs")
OUTPUT_DIR_VARIABLE = "KTLAB_OUTPUT_DIR"
SMOKE_TEST_VARIABLE = "KTLAB_SMOKE_TEST"
REPO_ROOT = pathlib.Path(pipelines.__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Session:
    """Where a notebook's runs go, and how large its searches are.

    Attributes:
        output_dir: The folder of the notebook's run directories (`run.output_dir`).
        smoke_test: True when `KTLAB_SMOKE_TEST=1` asks for tiny budgets (the tests).
        on_colab: True inside Google Colab.
        drive_mounted: True when Google Drive is mounted (on Colab, with `use_drive`).
    """

    output_dir: pathlib.Path
    smoke_test: bool
    on_colab: bool
    drive_mounted: bool

    def describe(self) -> str:
        """Where the runs go and why, in a line or two."""
        lines = [f"run directories go to {self.output_dir}"]
        if self.on_colab and not self.output_dir.is_relative_to(DRIVE_MOUNT):
            lines.append("Colab deletes them with this session: setup(use_drive=True) keeps "
                         "them on Google Drive")
        if self.smoke_test:
            lines.append(f"{SMOKE_TEST_VARIABLE}=1: every search is shrunk to tiny budgets")
        return "\n".join(lines)


def setup(use_drive: bool = True) -> Session:
    """Sets up a notebook's session: Drive on Colab, the runs' folder, the console.

    On Colab with `use_drive`, Google Drive is mounted (Colab asks for permission first)
    and the runs go to `MyDrive/ktlab/runs`; outside Colab nothing is mounted, whatever
    `use_drive` says. `KTLAB_OUTPUT_DIR`, when set, names the runs' folder in every case;
    otherwise they go to the repository's `runs/` (git ignores it). TensorFlow is imported
    without its start-up log, as the `ktlab` command imports it, and figures are shown
    inline in IPython.

    Args:
        use_drive: Keep the runs on Google Drive when running on Colab.

    Returns:
        The session: the runs' folder (created), and whether this is a smoke test.
    """
    on_colab = COLAB_MODULE in sys.modules
    drive_mounted = use_drive and on_colab
    if drive_mounted:
        _mount_drive()
    # A folder the user named wins over the defaults, as a flag wins over a config file.
    if os.environ.get(OUTPUT_DIR_VARIABLE):
        output_dir = pathlib.Path(os.environ[OUTPUT_DIR_VARIABLE])
    elif drive_mounted:
        output_dir = DRIVE_MOUNT / DRIVE_RUNS
    else:
        output_dir = REPO_ROOT / "runs"
    output_dir.mkdir(parents=True, exist_ok=True)
    quiet.import_tensorflow()
    _show_figures_inline()
    session = Session(output_dir=output_dir,
                      smoke_test=os.environ.get(SMOKE_TEST_VARIABLE) == "1",
                      on_colab=on_colab, drive_mounted=drive_mounted)
    print(session.describe())
    return session


def _mount_drive() -> None:
    """Mounts Google Drive where Colab expects it; it asks the user for permission first."""
    # Colab's own module, which exists there only.
    from google.colab import drive

    drive.mount(str(DRIVE_MOUNT))


def _show_figures_inline() -> None:
    """`%matplotlib inline` in an IPython kernel, so that a cell's figure is drawn under it.

    ktlab's plots are `matplotlib.figure.Figure` objects built without pyplot, and IPython
    shows them as images only once its inline backend is on.
    """
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    if shell is not None and hasattr(shell, "run_line_magic"):
        shell.run_line_magic("matplotlib", "inline")


def prepare(config: Config) -> PreparedData:
    """The data a search on `config` trains on, as `ktlab data` prints it.

    Pass it on with `run_search(config, prepared=...)`, so that the data is read, split and
    scaled once.

    Raises:
        KtlabError: For bad input (a file, a column, gaps), in one line that names the fix.
    """
    return build.make_pipeline(config).prepare()


def write_demo_prices(path: str | pathlib.Path, ticker: str = "MSFT") -> pathlib.Path:
    """Writes a bundled ticker's daily prices as a CSV in Yahoo's layout, for a notebook
    that stands in for the user's own file.

    Returns:
        The path written, with the header `Date,Open,High,Low,Close,Adj Close,Volume`.
    """
    prices = sources.load_stock_frame(ticker)
    frame = pandas.DataFrame({
        "Date": prices.index.strftime("%Y-%m-%d"), "Open": prices["open"],
        "High": prices["high"], "Low": prices["low"], "Close": prices["close"],
        "Adj Close": prices["close"], "Volume": prices["volume"].astype("int64"),
    })
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def run_status(run_dir: str | pathlib.Path) -> str:
    """What a run directory already holds: nothing, or a finished or interrupted search
    with its trials counted by status (`completed`, `stopped_early`, `failed`, and
    `incomplete` for the one that was running when the session ended)."""
    run_dir = pathlib.Path(run_dir)
    if not (run_dir / "histories.jsonl").is_file():
        return f"nothing in {run_dir} yet: the search cell starts a new search"
    finished = (run_dir / "metrics.json").is_file()
    counts = tuners.load_trials(run_dir)["status"].value_counts()
    return (f"{run_dir} holds {'a finished' if finished else 'an interrupted'} search; its "
            f"trials:\n{counts.to_string()}")


def leaderboard(run_dir: str | pathlib.Path, top: int = 10) -> str:
    """What `ktlab show RUN_DIR` prints: the run, its `top` best trials ranked by the
    objective, its best configuration and, once finished, its scores beside the baselines'.

    Raises:
        KtlabError: If `run_dir` is no run directory or holds no trials yet.
    """
    return views.format_run(pathlib.Path(run_dir), top)


def plot_schedule(run_dir: str | pathlib.Path) -> Figure | None:
    """Hyperband's brackets (Hyperband, BOHB) or ASHA's rungs, as the run's
    `plot_schedule.png` draws them; None, saying so, for a tuner that has neither."""
    tuner = _saved_tuner(run_dir)
    figure = plots.plot_tuner_schedule(tuner, tuners.load_trials(run_dir))
    if figure is None:
        print(f"no schedule to draw: {tuner['name']} runs no Hyperband brackets or ASHA rungs")
    return figure


def plot_importance(run_dir: str | pathlib.Path) -> Figure | None:
    """Which hyperparameters mattered, as `ktlab importance RUN_DIR` measures it; None,
    saying why, when the run has too few usable trials (8 at least) to measure it."""
    try:
        table = importance.run_importances(run_dir)
    except KtlabError as error:
        print(f"no importances for this run: {error}")
        return None
    return importance.plot_importance(table, objective=table.attrs["objective"])


def _saved_tuner(run_dir: str | pathlib.Path) -> dict[str, Any]:
    """The `tuner` settings of a run directory's `config.json`."""
    config_file = pathlib.Path(run_dir) / "config.json"
    try:
        return json.loads(config_file.read_text())["tuner"]
    except (OSError, ValueError, KeyError) as error:
        raise KtlabError(f"cannot read the tuner of {config_file} ({error}); pass a run "
                         f"directory that run_search wrote") from None
