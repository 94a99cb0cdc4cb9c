"""Deletes the checkpoints that a search will never load again.

keras-tuner keeps the best epoch's weights of every trial, in
`tuner/trial_<id>/checkpoint.weights.h5`; a long Hyperband search fills the disk with
them, though it only ever loads two kinds: the checkpoint a promoted configuration
continues from, and the best trial's, which becomes `best_model.keras`. A checkpoint
is kept while any of these holds:

- its trial has not finished (it is running, or keras-tuner will run it again);
- it is the parent of a trial that has not finished (a resumed child loads it again);
- Hyperband may still promote it: its round's successor in its bracket is not full;
  or ASHA may: it is below the top rung, not promoted, and the search still runs;
  or PBT's next generation may load it (`promotable_trial_ids` of either oracle);
- its trial has finished but the histories do not say how yet (a distributed worker
  writes its `trial_end` record just after the chief hears of it);
- it is the best finished trial so far among those the histories record as not failed,
  or the trial that the best one continues: keras-tuner builds a promoted trial's model
  from its parent's checkpoint before it loads the trial's own, so reloading the best
  model needs both;
- in a search with several objectives, it is on the Pareto front of the finished trials,
  from which the saved model is picked (`pipelines.reports.pareto`), or the trial such a one
  continues: a dominated trial is never on the front again.

Everything else is deleted, with the trial's per-fold checkpoints of a walk-forward
search (`tuners.runners.walk_forward`), which the same rules keep: a promotion loads the
parent's checkpoint of each fold. Trial files and build configs stay. A trial that is not the
best now never becomes the best later (scores do not change once a trial ends), so no
deleted checkpoint is ever wanted back.

```python
statuses = dict(zip(trials["trial_id"], trials["status"]))  # trials = tuners.load_trials(...)
removed = checkpoints.prune_checkpoints(tuner, statuses)
```
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import keras_tuner
import pandas

from tuners import keras_tuner_internals
from tuners.plans import schedule
from tuners.results import objectives, pareto_front
from tuners.runners import walk_forward

# keras-tuner's statuses of a trial that ended: a pruned one ends STOPPED.
FINISHED = ("COMPLETED", "STOPPED", "FAILED")


def needed_checkpoints(oracle: Any, statuses: Mapping[str, str],
                       extra_objectives: Sequence[str] = ()) -> set[str]:
    """The ids of the trials whose checkpoints the search or its report may still load.

    Args:
        oracle: The search's oracle (not a worker's `OracleClient`).
        statuses: `{trial_id: status}` as the histories record it (`tuners.load_trials`).
            keras-tuner completes a trial whose loss turned NaN after its first epoch,
            but the histories say `failed`, and it must not become the best model.
        extra_objectives: The names of the search's objectives after the oracle's.

    Returns:
        Trial ids.
    """
    needed: set[str] = set()
    for trial_id, trial in oracle.trials.items():
        if trial.status not in FINISHED or statuses.get(trial_id) in (None, "incomplete"):
            needed.add(trial_id)
        if trial.status not in FINISHED:
            parent = trial.hyperparameters.values.get("tuner/trial_id")
            if parent is not None:
                needed.add(parent)
    needed |= promotable_trial_ids(oracle)
    best = _best_trial_id(oracle, statuses)
    kept = [] if best is None else [best]
    if extra_objectives:
        kept += _front_trial_ids(oracle, statuses, extra_objectives)
    for trial_id in kept:
        needed.add(trial_id)
        parent = oracle.trials[trial_id].hyperparameters.values.get("tuner/trial_id")
        if parent is not None:
            needed.add(parent)
    return needed


def prune_checkpoints(tuner: Any, statuses: Mapping[str, str]) -> list[pathlib.Path]:
    """Deletes the checkpoints of the tuner's trials that no one will load again.

    Args:
        tuner: A keras-tuner `Tuner` that holds its oracle (a search in one process, or
            the distributed chief).
        statuses: `{trial_id: status}` as the histories record it.

    Returns:
        The files deleted.
    """
    oracle = tuner.oracle
    needed = needed_checkpoints(oracle, statuses, getattr(tuner, "extra_objectives", ()))
    removed = []
    for trial_id in list(oracle.trials):
        if trial_id in needed:
            continue
        path = pathlib.Path(keras_tuner_internals.checkpoint_path(tuner, trial_id))
        fold_paths = sorted(path.parent.glob(walk_forward.FOLD_CHECKPOINT_PATTERN))
        for candidate in [path, *fold_paths]:
            if candidate.is_file():
                os.remove(candidate)
                removed.append(candidate)
    return removed


def checkpoint_files(project_dir: str | os.PathLike) -> dict[str, pathlib.Path]:
    """`{trial_id: checkpoint file}` for every trial directory that still holds one."""
    return {path.parent.name.removeprefix("trial_"): path
            for path in sorted(pathlib.Path(project_dir).glob("trial_*/checkpoint.weights.h5"))}


def promotable_trial_ids(oracle: Any) -> set[str]:
    """Trials that the oracle may still promote: in a Hyperband round whose successor round
    is not full yet, or ASHA's and PBT's own `promotable_trial_ids()`; none for the others."""
    # ASHA (tuners.oracles.asha) can promote any unpromoted trial below its top rung
    # whenever later results lift it into its rung's top fraction, so it says which.
    if callable(getattr(oracle, "promotable_trial_ids", None)):
        return set(oracle.promotable_trial_ids())
    if not isinstance(oracle, keras_tuner.oracles.HyperbandOracle):
        return set()
    # The brackets still running are part of the oracle's saved state.
    brackets = keras_tuner_internals.hyperband_brackets(oracle)
    plan = schedule.keras_tuner_schedule(oracle.max_epochs, oracle.factor)
    sizes = {bracket.index: [item.configurations for item in bracket.rounds]
             for bracket in plan.brackets}
    promotable: set[str] = set()
    for bracket in brackets:
        rounds = bracket["rounds"]
        bracket_sizes = sizes.get(bracket["bracket_num"])
        for number in range(len(rounds) - 1):
            selected = {info["past_id"] for info in rounds[number + 1]}
            if bracket_sizes is not None and len(rounds[number + 1]) >= bracket_sizes[number + 1]:
                continue
            promotable |= {info["id"] for info in rounds[number] if info["id"] not in selected}
    return promotable


def _front_trial_ids(oracle: Any, statuses: Mapping[str, str],
                     extra_objectives: Sequence[str]) -> list[str]:
    extra = pareto_front.as_objectives(extra_objectives)
    directions = [oracle.objective.direction, *(objective.direction for objective in extra)]
    usable = objectives.usable_scores(_scored_trials(oracle, statuses)).notna()
    points = {trial_id: pareto_front.trial_values(oracle.trials[trial_id], extra)
              for trial_id, counts in zip(oracle.trials, usable, strict=True) if counts}
    trial_ids = [trial_id for trial_id, point in points.items() if point is not None]
    fronts = pareto_front.non_dominated_sort([points[trial_id] for trial_id in trial_ids],
                                             directions)
    return [trial_ids[index] for index in fronts[0]] if fronts else []


def _best_trial_id(oracle: Any, statuses: Mapping[str, str]) -> str | None:
    return objectives.best_trial_id(_scored_trials(oracle, statuses),
                                    oracle.objective.direction)


def _scored_trials(oracle: Any, statuses: Mapping[str, str]) -> pandas.DataFrame:
    # The oracle's trials, with the status the histories give them, for the one rule.
    trials = pandas.DataFrame(
        [{"trial_id": trial_id,
          "status": statuses.get(trial_id) if trial.status == "COMPLETED" else "failed",
          "score": trial.score}
         for trial_id, trial in oracle.trials.items()],
        columns=["trial_id", "status", "score"])
    return trials
