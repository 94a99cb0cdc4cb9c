"""The run directory: where a search writes, and whether it starts, resumes or is refused.

Every check here happens before anything is written, so bad input leaves nothing
half-written. Nothing is lost to an interruption: keras-tuner saves its oracle after
every trial, so running the same command again (or `ktlab tune --resume RUN_DIR`)
continues the search where it stopped.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
from typing import Any

from pipelines.config import Config
from pipelines.errors import ConfigError

RUN_MARKER = "config.json"
# Written last by `artifacts.write_run`: a run directory that holds it holds a finished search.
FINISHED_MARKER = "metrics.json"

# What a resumed search must keep: the data, the model and its search space, the tuner and
# its budget, and the seed. Where the run directory lies and what it keeps may change.
SEARCH_KEYS = {"data": None, "model": None, "tuner": None, "run": ("seed",)}


def search_differences(saved: dict[str, Any], config: Config) -> list[str]:
    """The settings of `config` that differ from a saved `config.json`'s search.

    Args:
        saved: A run directory's `config.json`, as plain data.
        config: The configuration of the search that would continue it.

    Returns:
        One `"section.key VALUE (was VALUE)"` per difference, empty when they match.
    """
    current = json.loads(json.dumps(config.to_dict(), default=str))
    saved = json.loads(json.dumps(saved, default=str))
    differences = []
    for section, keys in SEARCH_KEYS.items():
        old = saved.get(section) or {}
        new = current.get(section) or {}
        for key in keys or list(dict.fromkeys([*new, *old])):
            if old.get(key) != new.get(key):
                differences.append(f"{section}.{key} {json.dumps(new.get(key))} (was "
                                   f"{json.dumps(old.get(key))})")
    return differences


def set_aside_path(run_dir: pathlib.Path) -> pathlib.Path:
    """Where `--overwrite` keeps the old run until the new search's tuner is built."""
    return run_dir.with_name(f".{run_dir.name}.replaced")


def prepare_run_dir(config: Config, *, resume: bool = False) -> tuple[pathlib.Path, bool]:
    """Checks that the run directory can be written; clears it, or finds a search to resume.

    An existing run directory is set aside with `overwrite` (`set_aside_path`; the
    caller deletes it once the new search's tuner is built, or puts it back); without
    it, one that holds an unfinished search with the same data, model, search space,
    tuner and seed is resumed, and any other is refused (`planned_use`).

    Args:
        config: The run's configuration.
        resume: Whether the user asked to resume (`--resume`): then there must be a
            search to resume.

    Returns:
        The run directory, and whether it holds a search to resume.

    Raises:
        ConfigError: If the output directory cannot be written, or the run directory
            cannot be used as described above.
    """
    output_dir = pathlib.Path(config.run.output_dir)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot create output directory {output_dir} ({error.strerror}); "
                          f"choose another --output-dir") from None
    if not output_dir.is_dir() or not os.access(output_dir, os.W_OK | os.X_OK):
        raise ConfigError(f"output directory {output_dir} is not writable; choose another "
                          f"--output-dir")
    run_dir = config.run_dir
    use = planned_use(config, resume=resume)
    if use == "overwrite":
        aside = set_aside_path(run_dir)
        shutil.rmtree(aside, ignore_errors=True)
        # Set aside, not deleted: the new search's tuner may still refuse its settings,
        # and then the old run comes back (`pipelines.run.search.build_tuner`).
        run_dir.rename(aside)
    return run_dir, use == "resume"


def planned_use(config: Config, *, resume: bool = False) -> str:
    """What a search would do with its run directory, reading it and writing nothing.

    `prepare_run_dir` acts on it, and `ktlab tune --dry-run` prints it.

    Args:
        config: The run's configuration.
        resume: Whether the user asked to resume (`--resume`).

    Returns:
        `new` for a run directory that is absent or empty, `overwrite` for one that
        `overwrite` replaces, or `resume` for an unfinished search with the same data,
        model, search space, tuner and seed.

    Raises:
        ConfigError: For a run directory that a search refuses: none to resume, a finished
            search, an unfinished one with other settings or that stopped on failures, or a
            folder that ktlab did not write.
    """
    run_dir = config.run_dir
    marked = (run_dir / RUN_MARKER).is_file()
    if resume and not marked:
        raise ConfigError(f"{run_dir} holds no search to resume (no {RUN_MARKER}); pass a run "
                          f"directory that ktlab tune wrote")
    if not (run_dir.exists() and any(run_dir.iterdir())):
        return "new"
    if config.run.overwrite:
        if not marked:
            raise ConfigError(f"{run_dir} is not a ktlab run directory (no {RUN_MARKER}); "
                              f"refusing to overwrite it, choose another --run-name")
        return "overwrite"
    if not marked:
        raise ConfigError(f"run directory {run_dir} already exists; pass --overwrite to "
                          f"replace it or --run-name to keep both")
    if (run_dir / FINISHED_MARKER).exists():
        raise ConfigError(f"run directory {run_dir} holds a finished search; pass --overwrite "
                          f"to start afresh or --run-name to keep both")
    limit = config.tuner.max_consecutive_failed_trials
    if failure_streak(run_dir / "tuner") >= limit:
        # keras-tuner looks for the streak in the whole search, so a resumed search would
        # stop again as soon as its next trial ends.
        raise ConfigError(f"run directory {run_dir} holds a search that stopped because {limit} "
                          f"trials in a row failed; narrow the search space and pass "
                          f"--overwrite to start afresh, or --run-name to keep both")
    differences = search_differences(read_saved_config(run_dir), config)
    if differences:
        raise ConfigError(f"run directory {run_dir} holds an unfinished search with other "
                          f"settings: {first_differences(differences)}; resume it with its "
                          f"own (ktlab tune --resume {run_dir}), or pass --overwrite or "
                          f"--run-name")
    return "resume"


def finished_search(config: Config) -> bool:
    """Whether the run directory holds a finished search with `config`'s settings."""
    run_dir = config.run_dir
    if not (run_dir / FINISHED_MARKER).is_file() or not (run_dir / RUN_MARKER).is_file():
        return False
    return not search_differences(read_saved_config(run_dir), config)


def read_saved_config(run_dir: pathlib.Path) -> dict[str, Any]:
    """A run directory's `config.json`, as plain data.

    Raises:
        ConfigError: If it is missing or unreadable.
    """
    path = run_dir / RUN_MARKER
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{run_dir} is not a ktlab run directory (no {RUN_MARKER}); pass "
                          f"a run directory that ktlab tune wrote") from None
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read {path} ({error}); pass --overwrite to start "
                          f"afresh") from None
    if not isinstance(saved, dict):
        raise ConfigError(f"{path} does not hold a ktlab configuration; pass --overwrite to "
                          f"start afresh")
    return saved


def failure_streak(project_dir: pathlib.Path) -> int:
    """The longest run of failed trials, in the order they ended, in keras-tuner's files."""
    try:
        end_order = json.loads((project_dir / "oracle.json").read_text()).get("end_order", [])
    except (OSError, ValueError, AttributeError):
        return 0
    streak = longest = 0
    for trial_id in end_order:
        try:
            trial = json.loads((project_dir / f"trial_{trial_id}" / "trial.json").read_text())
        except (OSError, ValueError):
            trial = {}
        streak = streak + 1 if trial.get("status") == "FAILED" else 0
        longest = max(longest, streak)
    return longest


def first_differences(differences: list[str], shown: int = 3) -> str:
    text = ", ".join(differences[:shown])
    if len(differences) > shown:
        text += f" and {len(differences) - shown} more"
    return text

