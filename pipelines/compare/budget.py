"""Equal budgets in epochs trained: what each trial-budget run of a comparison aims at.

Hyperband's schedule fixes the epochs it trains. A trial-budget tuner (random, Bayesian,
genetic, grid) instead keeps asking for trials until its trials have trained as many
epochs as the reference epoch-budget tuner did with the same seed (Hyperband when it is
compared, else the first epoch-budget tuner listed), within one trial: the run's
`tuner.options.max_trained_epochs` (`tuners.observers.epoch_limit`). Early stopping ends trials
sooner, so a fixed number of trials would train fewer epochs than planned. Without an
epoch-budget tuner in the comparison the target is Hyperband's planned epochs.

The reference runs first; each trial-budget run learns its target from the reference
run with its seed. Every trial-budget tuner keeps a hard cap on trials (`trial_cap`).
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import tuners
from pipelines.config import Config, TunerConfig
from pipelines.run.run_dir import FINISHED_MARKER, finished_search

EPOCH_TARGET_OPTION = "max_trained_epochs"


def reference_tuner(tuner_names: list[str]) -> str | None:
    """The epoch-budget tuner whose epochs the others match: Hyperband when compared."""
    epoch_budget = [name for name in tuner_names if tuners.TUNERS[name].budget == "epochs"]
    if "hyperband" in epoch_budget:
        return "hyperband"
    return epoch_budget[0] if epoch_budget else None


def shortest_trial(tuner: TunerConfig) -> int:
    """The fewest epochs a trial trains unless it fails: early stopping's patience + 1, or
    the pruner's grace epochs, at most `max_epochs`."""
    shortest = min(tuner.max_epochs, tuner.patience + 1)
    if getattr(tuner, "pruner", "none") != "none":
        shortest = min(shortest, tuner.pruner_grace)
    return max(1, shortest)


def trial_cap(tuner: TunerConfig, planned_epochs: float) -> int:
    """The hard cap on a trial-budget tuner's trials.

    As many trials as reach `planned_epochs` if every trial stopped at its earliest
    (`shortest_trial`), plus `max_consecutive_failed_trials` for trials that fail before
    they train: the cap ends a search only when its trials are cut shorter than that.
    """
    return math.ceil(planned_epochs / shortest_trial(tuner)) + tuner.max_consecutive_failed_trials


def trainings_per_epoch(config: Config, folds: Any) -> int:
    """Models trained per epoch of a trial: executions per trial times walk-forward folds,
    which `epochs_trained` counts separately."""
    return config.tuner.executions_per_trial * (len(folds) if folds else 1)


def is_trial_budget(config: Config) -> bool:
    return tuners.TUNERS[config.tuner.name].budget == "trials"


def set_planned_targets(runs: list[Config], budget: dict[str, dict[str, Any]],
                        trainings: int) -> None:
    """Gives every trial-budget run the planned target, until its reference has run."""
    for run_config in runs:
        if is_trial_budget(run_config):
            target = max(1, math.ceil(budget[run_config.tuner.name]["epochs"] * trainings))
            run_config.tuner.options = {**run_config.tuner.options,
                                        EPOCH_TARGET_OPTION: target}


def match_reference(runs: list[Config], reference: str | None,
                    epochs_by_seed: dict[int, int]) -> None:
    """Sets each trial-budget run's target to its reference run's epochs, seed by seed."""
    if reference is None:
        return
    for run_config in runs:
        epochs = epochs_by_seed.get(run_config.run.seed)
        if is_trial_budget(run_config) and epochs:
            run_config.tuner.options = {**run_config.tuner.options,
                                        EPOCH_TARGET_OPTION: int(epochs)}


def saved_reference_epochs(runs: list[Config], reference: str | None) -> dict[int, int]:
    """The epochs that the reference's finished runs trained, by seed, read from disk."""
    epochs = {}
    for run_config in runs:
        if run_config.tuner.name == reference and finished_search(run_config):
            metrics = json.loads((run_config.run_dir / FINISHED_MARKER).read_text())
            epochs[run_config.run.seed] = int(metrics["epochs"])
    return epochs


def with_saved_target(run_config: Config, saved: dict[str, Any],
                      reference: str | None) -> Config:
    """`run_config` with the target its saved run had, when that target came from a
    reference run that has not been read back yet; else `run_config` itself."""
    if reference is None or not is_trial_budget(run_config):
        return run_config
    saved_options = (saved.get("tuner") or {}).get("options") or {}
    if EPOCH_TARGET_OPTION not in saved_options:
        return run_config
    checked = copy.deepcopy(run_config)
    checked.tuner.options = {**checked.tuner.options,
                             EPOCH_TARGET_OPTION: saved_options[EPOCH_TARGET_OPTION]}
    return checked


def running_order(runs: list[Config], reference: str | None) -> list[Config]:
    """The reference's runs first, the others after, each group in its given order."""
    return sorted(runs, key=lambda run_config: run_config.tuner.name != reference)


def planned_epochs(run_config: Config, budget: dict[str, dict[str, Any]],
                   trainings: int) -> float:
    """The epochs a run was to train: its target, or its oracle's planned epochs."""
    if is_trial_budget(run_config):
        return run_config.tuner.options[EPOCH_TARGET_OPTION]
    return budget[run_config.tuner.name]["epochs"] * trainings
