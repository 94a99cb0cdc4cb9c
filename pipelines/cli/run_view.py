"""`ktlab show RUN_DIR`: a run's trials, best configuration and scores, from its files alone.

It reads what `ktlab tune` wrote (`config.json`, `trials.csv` or, before the search has
finished, `histories.jsonl`, then `best_hyperparameters.json` and `metrics.json`) and
imports no TensorFlow, as keras-tuner's `results_summary()` would need.
"""

from __future__ import annotations

import collections
import json
import pathlib
from typing import Any

import pandas

from hypermodels import registry as model_registry
from pipelines.cli import text
from pipelines.errors import KtlabError
from pipelines.run import run_dir as run_folder
from pipelines.run import summary
from tuners import registry as tuner_registry
from tuners.errors import HistoryFileError
from tuners.results import objectives, records

TRIALS_FILE = "trials.csv"
BEST_FILE = "best_hyperparameters.json"


def format_run(run_dir: pathlib.Path, top: int = 10) -> str:
    """A run's header, its leaderboard of the `top` best trials, its best configuration and,
    once the search has finished, its scores beside the baselines'.

    Raises:
        KtlabError: If `top` is below 1, or `run_dir` is no run directory or holds no
            trials; the message names the fix.
    """
    if top < 1:
        raise KtlabError(f"--top must be at least 1, got {top}; pass how many trials to list")
    saved = _saved_config(run_dir)
    trials = _trials(run_dir)
    finished = (run_dir / run_folder.FINISHED_MARKER).is_file()
    metrics = _read_json(run_dir / run_folder.FINISHED_MARKER) if finished else {}
    tuner = saved.get("tuner") or {}
    objective = metrics.get("objective") or tuner.get("objective") or "score"
    direction = metrics.get("direction") or tuner.get("direction") or _direction(objective)
    ranked = objectives.rank_trials(trials, direction)
    lines = [*_header(run_dir, saved, trials, metrics), ""]
    lines += _leaderboard(trials, ranked, objective, direction, top)
    lines += ["", *_best_configuration(run_dir, ranked, metrics)]
    if finished:
        lines += ["", *summary.score_lines(metrics)]
    else:
        lines += ["", f"no scores yet: the search has not finished (no "
                      f"{run_folder.FINISHED_MARKER}); continue it with ktlab tune --resume "
                      f"{run_dir}"]
    return "\n".join(lines)


def _saved_config(run_dir: pathlib.Path) -> dict[str, Any]:
    """The run's `config.json`, after checking that `run_dir` is a run directory."""
    fix = "pass a run directory that ktlab tune wrote"
    if not run_dir.exists():
        raise KtlabError(f"{run_dir}: no such directory; {fix}")
    if not run_dir.is_dir():
        raise KtlabError(f"{run_dir} is a file, not a directory; {fix}")
    if not (run_dir / run_folder.RUN_MARKER).is_file():
        runs = _runs_inside(run_dir)
        if runs:
            raise KtlabError(f"{run_dir} is not a run directory but a folder of runs "
                             f"({run_folder.first_differences(runs)}); pass one, e.g. ktlab "
                             f"show {run_dir / runs[0]}")
        raise KtlabError(f"{run_dir} is not a ktlab run directory (no "
                         f"{run_folder.RUN_MARKER}); {fix}")
    saved = _read_json(run_dir / run_folder.RUN_MARKER)
    if not isinstance(saved, dict):
        raise KtlabError(f"{run_dir / run_folder.RUN_MARKER} holds no ktlab configuration; "
                         f"{fix}")
    return saved


def _runs_inside(folder: pathlib.Path) -> list[str]:
    """The names of the run directories right inside `folder`, such as an `--output-dir`."""
    try:
        return sorted(child.name for child in folder.iterdir()
                      if (child / run_folder.RUN_MARKER).is_file())
    except OSError:
        # An unreadable folder holds no runs that ktlab could show.
        return []


def _read_json(path: pathlib.Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise KtlabError(f"cannot read {path} ({error}); pass a run directory whose files "
                         f"ktlab tune wrote whole") from None


def _trials(run_dir: pathlib.Path) -> pandas.DataFrame:
    """`trials.csv`, or the trials read from the histories of a search still running."""
    path = run_dir / TRIALS_FILE
    try:
        if path.is_file():
            # Trial ids are text: keras-tuner pads them with zeros in larger searches.
            return pandas.read_csv(path, dtype={"trial_id": str})
        return records.load_trials(run_dir)
    except HistoryFileError:
        raise KtlabError(f"{run_dir} holds no trials yet (no {TRIALS_FILE} or "
                         f"{records.HISTORY_FILENAME}); wait until ktlab tune has run a trial"
                         ) from None
    except (pandas.errors.ParserError, pandas.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise KtlabError(f"cannot read {path} ({str(error).strip().splitlines()[0]}); rewrite "
                         f"it with ktlab tune --resume {run_dir}") from None


def _direction(objective: str) -> str:
    """The direction an objective's name tells; `min` when it tells none, as keras-tuner
    ranks a score it was not told about."""
    try:
        return objectives.objective_direction(objective)
    except ValueError:
        return "min"


def _header(run_dir: pathlib.Path, saved: dict[str, Any], trials: pandas.DataFrame,
            metrics: dict[str, Any]) -> list[str]:
    """The run, what it searched, and its trials counted by status."""
    model = saved.get("model") or {}
    tuner = saved.get("tuner") or {}
    name = str(model.get("name", "?"))
    spec = model_registry.MODELS.get(name)
    source = (saved.get("data") or {}).get("source") or (spec.default_source if spec else "?")
    budget = (f"{tuner.get('max_trials')} trials at most"
              if getattr(tuner_registry.TUNERS.get(tuner.get("name")), "budget", "") == "trials"
              else f"max_epochs {tuner.get('max_epochs')}, factor {tuner.get('factor')}")
    statuses = collections.Counter(trials["status"].fillna("unknown")).most_common()
    counts = ", ".join(f"{count} {status}" for status, count in statuses)
    cost = "epochs_trained" if "epochs_trained" in trials.columns else "epochs"
    epochs = int(pandas.to_numeric(trials[cost], errors="coerce").sum())
    state = (f"finished in {metrics['seconds']:.0f} s" if "seconds" in metrics
             else "unfinished")
    return [f"run {run_dir}",
            f"model {name} (preset {model.get('space', '?')}), tuner {tuner.get('name', '?')} "
            f"({budget}), data {source}, seed {(saved.get('run') or {}).get('seed', '?')}",
            f"{len(trials)} trials ({counts}), {epochs} epochs, {state}"]


def _leaderboard(trials: pandas.DataFrame, ranked: pandas.DataFrame, objective: str,
                 direction: str, top: int) -> list[str]:
    """The ranked trials best first, then those the ranking leaves out (pruned, failed)."""
    unranked = trials.drop(index=ranked.index)
    shown = pandas.concat([ranked, unranked]).head(top)
    hp_columns = [column for column in trials.columns if column.startswith("hp_")]
    rows = [["rank", "trial", "status", objective, "epochs", "hyperparameters"]]
    for position, (index, trial) in enumerate(shown.iterrows(), start=1):
        values = {column[3:]: trial[column] for column in hp_columns
                  if not pandas.isna(trial[column])}
        rows.append([str(position) if index in ranked.index else "-", str(trial["trial_id"]),
                     str(trial["status"]), _score(trial["score"]), _epochs(trial["epochs"]),
                     summary.format_hyperparameters(values)])
    better = "lower" if direction == "min" else "higher"
    left_out = (f"; {len(unranked)} not ranked: pruned, failed or unfinished"
                if len(unranked) else "")
    heading = (f"top {len(shown)} of {len(trials)} trials by {objective} ({better} is "
               f"better{left_out}):")
    return [heading, text.align(rows, right=(0, 3, 4))]


def _score(value: Any) -> str:
    """A score in 4 significant digits, `-` where a trial has none (it failed)."""
    number = pandas.to_numeric(value, errors="coerce")
    return "-" if pandas.isna(number) else summary.format_value(float(number))


def _epochs(value: Any) -> str:
    number = pandas.to_numeric(value, errors="coerce")
    return "-" if pandas.isna(number) else str(int(number))


def _best_configuration(run_dir: pathlib.Path, ranked: pandas.DataFrame,
                        metrics: dict[str, Any]) -> list[str]:
    """The best trial's hyperparameters, one per line with its full value."""
    if (run_dir / BEST_FILE).is_file():
        values = _read_json(run_dir / BEST_FILE)
        heading = (f"best configuration (trial {metrics.get('best_trial_id', '?')}, "
                   f"{BEST_FILE}):")
    elif len(ranked):
        best = ranked.iloc[0]
        values = {column[3:]: best[column].item() if hasattr(best[column], "item")
                  else best[column] for column in ranked.columns
                  if column.startswith("hp_") and not pandas.isna(best[column])}
        heading = f"best configuration so far (trial {best['trial_id']}):"
    else:
        return ["best configuration: none yet, no trial has completed"]
    shown = {name: value for name, value in values.items() if not name.startswith("tuner/")}
    rows = [[name, f"= {json.dumps(value)}"] for name, value in shown.items()]
    return [heading, text.align(rows)] if rows else [heading]
