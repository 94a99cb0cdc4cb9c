"""Trains the final pick across seeds (`pipelines.run.final_pick` holds its rule and report).

After the search, the recipe's `pick_step` (in `pipelines.recipe.PICKS`) calls
`run_final_pick` when `run.final_top` is above 0: the
best configurations are trained again from scratch with new seeds on the training rows,
scored on the validation rows, and the configuration with the best mean is saved. The
test rows are never used for the choice.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
from typing import Any

import keras
import pandas as pd

import hypermodels
from pipelines.config import Config
from pipelines.data import PreparedData
from pipelines.run import final_pick, refit, selection
from pipelines.run.progress import LOGGER


@dataclasses.dataclass
class FinalPick:
    """What the final pick chose.

    Attributes:
        table: One row per retrained configuration, as written to `final.csv`.
        trial_id: The chosen configuration's trial, or None when every configuration had
            a diverged seed.
        seed: The seed of the saved model (`final_pick.MODEL_RULE`), or None.
        model: That seed's model, trained on the training rows only, or None.
        record: What `metrics.json` records under `final_pick`.
    """

    table: pd.DataFrame
    trial_id: str | None
    seed: int | None
    model: Any
    record: dict[str, Any]


def run_final_pick(config: Config, prepared: PreparedData, tuner: Any, trials: pd.DataFrame,
                   run_dir: pathlib.Path) -> FinalPick:
    """Retrains the best configurations with new seeds, chooses by the mean, writes `final.csv`.

    Args:
        config: The run's configuration (`run.final_top`, `run.final_seeds`, `run.seed`).
        prepared: The search's data; its training rows are trained on and its validation
            rows scored (the holdout split, also after walk-forward validation).
        tuner: The finished keras-tuner tuner: its hypermodel and its trials'
            hyperparameters.
        trials: One row per trial, as `tuners.load_trials` returns.
        run_dir: Where `final.csv` goes.

    Returns:
        The choice, the saved seed's model and the record for `metrics.json`.
    """
    direction, objective = config.direction, config.tuner.objective
    top = final_pick.candidates(trials, direction, config.run.final_top)
    seeds = final_pick.final_seeds(config.run.seed, config.run.final_seeds)
    LOGGER.info(f"ktlab: final pick: retraining the {len(top)} best configurations with seeds "
                f"{', '.join(map(str, seeds))} ({len(top) * len(seeds)} trainings)")
    rows, kept = [], {}
    for rank, (_, trial) in enumerate(top.iterrows(), start=1):
        trial_id = str(trial["trial_id"])
        epochs = refit.refit_epochs(trials, trial_id)
        hyperparameters = tuner.oracle.trials[trial_id].hyperparameters
        row: dict[str, Any] = {
            "rank": rank, "trial_id": trial_id,
            "hyperparameters": json.dumps(final_pick.hyperparameter_values(trial),
                                          sort_keys=True),
            "epochs": epochs, "search_score": float(trial["score"])}
        models = {}
        for seed in seeds:
            models[seed], row[f"seed_{seed}"] = _train(tuner.hypermodel, hyperparameters,
                                                       prepared, epochs, seed, objective)
            LOGGER.info(f"ktlab: final pick: trial {trial_id} seed {seed}: {objective} "
                        f"{row[f'seed_{seed}']:.4g} after {epochs} epochs")
        rows.append(row)
        # Only the model that this configuration would save is kept: K models, not K * S.
        closest = final_pick.summarize(pd.DataFrame([row]), direction)["closest_seed"].iloc[0]
        if closest is not None and not pd.isna(closest):
            kept[trial_id] = (int(closest), models[int(closest)])
    table = final_pick.summarize(pd.DataFrame(rows), direction)
    table.to_csv(run_dir / final_pick.FINAL_FILE, index=False)
    chosen = table[table["chosen"]]
    trial_id = None if chosen.empty else str(chosen["trial_id"].iloc[0])
    seed, model = kept[trial_id] if trial_id is not None else (None, None)
    record = final_pick.final_record(table, objective, direction, str(top["trial_id"].iloc[0]),
                                     seed)
    return FinalPick(table=table, trial_id=trial_id, seed=seed, model=model, record=record)


def _train(hypermodel: Any, hyperparameters: Any, prepared: PreparedData, epochs: int,
           seed: int, objective: str) -> tuple[Any, float]:
    """One model of `hyperparameters` trained from scratch; its objective after the last
    epoch (NaN if it diverged)."""
    keras.utils.set_random_seed(seed)
    model = hypermodel.build(hyperparameters)
    history = hypermodel.fit(hyperparameters, model,
                             **hypermodels.fit_data(hypermodel, prepared), epochs=epochs,
                             verbose=0, shuffle=False)
    value = float((history.history.get(objective) or [math.nan])[-1])
    return model, value if math.isfinite(value) else math.nan


def pick_step(searched: selection.Searched, choice: selection.Choice) -> selection.Choice:
    """The recipe's final-pick step: with `run.final_top`, retrains the best configurations
    over seeds and picks by the mean (`run_final_pick`); otherwise keeps `choice`."""
    if not searched.config.run.final_top:
        return choice
    final = run_final_pick(searched.config, searched.data, searched.tuner, searched.trials,
                           searched.run_dir)
    return selection.Choice(final.trial_id or choice.trial_id, model=final.model,
                            seed=final.seed, records={**choice.records,
                                                      "final_pick": final.record})
