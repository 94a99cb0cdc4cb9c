"""ASHA, asynchronous successive halving (Li et al., 2020), as a keras-tuner `Oracle`.

Successive halving trains many configurations briefly and only the best longer. Its
synchronous form (Hyperband's rounds) waits until a round is full before it promotes
anyone; ASHA promotes a configuration as soon as it ranks in the top `1 / factor` of the
results its rung has so far, and otherwise starts a new configuration, so no worker ever
waits for a rung to fill.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import keras_tuner
from keras_tuner.engine import trial as trial_module

from tuners import errors
from tuners.plans.rungs import default_epoch_budget, rung_epochs

# The keys this oracle adds to a trial's values, as `HyperbandOracle` does, so that the
# tuner's epoch budget (`tuners.observers.epoch_budget`), the histories and the plots treat its
# trials like Hyperband's.
SCHEDULE_KEYS = ("tuner/epochs", "tuner/initial_epoch", "tuner/bracket", "tuner/round")


class ASHAOracle(keras_tuner.Oracle):
    """Asynchronous successive halving over rungs of growing epoch budgets.

    Rung `k` trains configurations to `rung_epochs(...)[k]` epochs. Whenever a worker
    asks for a trial, the oracle looks from the highest rung below the top down to rung
    0 for a completed configuration that ranks among the best `floor(n_k / factor)` of
    the `n_k` scored results of its rung and has not been promoted yet; the first found
    (the best of its rung) continues from its checkpoint to the next rung's budget.
    With none, a new random configuration starts at rung 0. Scores that arrive later
    can lift an older configuration into its rung's top fraction, so it may still be
    promoted long after it ended.

    The total epochs handed out never exceed `epoch_budget`, by default the epochs of
    Hyperband's schedule for the same `max_epochs`, `factor` and `hyperband_iterations`
    (`tuners.plans.schedule.keras_tuner_schedule`), so ASHA and Hyperband compare at equal
    budgets. A trial that would overrun it is not started; the search stops when
    nothing fits.

    Trials carry Hyperband's values: `tuner/epochs` (the rung's budget),
    `tuner/initial_epoch` (the parent's budget, 0 for a new configuration),
    `tuner/trial_id` (the parent, for a promotion), `tuner/bracket` (always 0) and
    `tuner/round` (the rung), so a Tuner that runs Hyperband runs this oracle too.

    Args:
        objective: A string, `keras_tuner.Objective`, or a list of them, as for any
            keras-tuner oracle.
        max_epochs: The top rung's budget, the most epochs one configuration trains.
        factor: The reduction factor `eta`, an integer of at least 2.
        hyperband_iterations: The Hyperband iterations whose epochs make the default
            `epoch_budget`, at least 1.
        min_epochs: The bottom rung's budget `r`, from 1 to `max_epochs`.
        epoch_budget: The most epochs all trials together may train; None (the
            default) means Hyperband's total, as above.
        max_trials: Optionally, the most trials (promotions included) to run.
        seed: Optional integer seed; the same seed gives the same configurations.
        hyperparameters: Optional `HyperParameters` that define or override the
            search space.
        allow_new_entries: Whether the hypermodel may request hyperparameters not in
            `hyperparameters`.
        tune_new_entries: Whether hyperparameters the hypermodel requests that are
            not in `hyperparameters` are tuned (True) or left at their default.
        max_retries_per_trial: How many times a crashed trial is retried.
        max_consecutive_failed_trials: How many failed trials in a row stop the search.

    Raises:
        errors.TunerConfigError: (a ValueError) If a setting is out of its range; the
            message names the fix.

    Example:

    ```python
    oracle = ASHAOracle(objective="val_loss", max_epochs=27, factor=3, seed=1)
    tuner = tuners.Tuner(oracle=oracle, hypermodel=build_model,
                         epoch_budget=tuners.observers.epoch_budget.EpochBudget())
    tuner.search(x, y, validation_data=(x_val, y_val))
    ```
    """

    def __init__(
        self,
        objective: Any = None,
        max_epochs: int = 100,
        factor: int = 3,
        hyperband_iterations: int = 1,
        min_epochs: int = 1,
        epoch_budget: int | None = None,
        max_trials: int | None = None,
        seed: int | None = None,
        hyperparameters: keras_tuner.HyperParameters | None = None,
        allow_new_entries: bool = True,
        tune_new_entries: bool = True,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
    ) -> None:
        budgets = rung_epochs(max_epochs, factor, min_epochs)
        errors.check_integer("hyperband_iterations", hyperband_iterations, minimum=1)
        if epoch_budget is None:
            epoch_budget = default_epoch_budget(max_epochs, factor, hyperband_iterations)
        errors.check_integer("epoch_budget", epoch_budget, minimum=min_epochs)
        if max_trials is not None:
            errors.check_integer("max_trials", max_trials, minimum=1)
        super().__init__(
            objective=objective,
            max_trials=max_trials,
            hyperparameters=hyperparameters,
            allow_new_entries=allow_new_entries,
            tune_new_entries=tune_new_entries,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        self.max_epochs = max_epochs
        self.factor = factor
        self.hyperband_iterations = hyperband_iterations
        self.min_epochs = min_epochs
        self.epoch_budget = epoch_budget
        self.rung_budgets = budgets
        self.rungs: list[list[str]] = [[] for _ in budgets]
        self.promoted: dict[str, str] = {}
        self.epochs_handed_out = 0
        self.finished = False

    @property
    def epochs_left(self) -> int:
        """The epochs of the budget not yet handed out to a trial."""
        return self.epoch_budget - self.epochs_handed_out

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        """Promotes a configuration if one qualifies, else starts a new one.

        Args:
            trial_id: The id of the trial to fill.

        Returns:
            `{"status": "RUNNING", "values": ...}`; `{"status": "IDLE"}` while nothing
            fits but running trials may still make a promotion possible; or
            `{"status": "STOPPED"}` when the budget is spent or no new configuration
            can be found.
        """
        promotion = self._find_promotion()
        if promotion is not None:
            parent_id, rung = promotion
            return self._promote(trial_id, parent_id, rung)
        if self.rung_budgets[0] <= self.epochs_left:
            values = self._random_values()
            if values is not None:
                values.update(self._schedule_values(0))
                self.rungs[0].append(trial_id)
                self.epochs_handed_out += self.rung_budgets[0]
                return {"status": trial_module.TrialStatus.RUNNING, "values": values}
        if self.ongoing_trials and self._cheapest_step() <= self.epochs_left:
            return {"status": trial_module.TrialStatus.IDLE}
        self.finished = True
        return {"status": trial_module.TrialStatus.STOPPED}

    def promotable_trial_ids(self) -> set[str]:
        """The ended trials that a later promotion may still continue from.

        A completed trial below the top rung that has not been promoted may rise into
        its rung's top fraction as more results arrive, so its checkpoint is needed
        while the search runs and the budget still pays for its promotion.

        Returns:
            Trial ids; empty once the search has stopped.
        """
        if self.finished or (self.max_trials and len(self.trials) >= self.max_trials):
            return set()
        promotable = set()
        for rung, trial_ids in enumerate(self.rungs[:-1]):
            if self._step_cost(rung) > self.epochs_left:
                continue
            promotable |= {
                trial_id
                for trial_id in trial_ids
                if trial_id not in self.promoted
                and self.trials[trial_id].status == trial_module.TrialStatus.COMPLETED
            }
        return promotable

    def get_state(self) -> dict[str, Any]:
        """Returns the oracle's state as JSON-serialisable data.

        Returns:
            keras-tuner's oracle state plus ASHA's settings, rungs, promotions and the
            epochs handed out.
        """
        state = super().get_state()
        state["asha"] = {
            "max_epochs": self.max_epochs,
            "factor": self.factor,
            "hyperband_iterations": self.hyperband_iterations,
            "min_epochs": self.min_epochs,
            "epoch_budget": self.epoch_budget,
            "rung_budgets": list(self.rung_budgets),
            "rungs": [list(trial_ids) for trial_ids in self.rungs],
            "promoted": dict(self.promoted),
            "epochs_handed_out": self.epochs_handed_out,
            "finished": self.finished,
        }
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restores the state written by `get_state`.

        Args:
            state: A state from `get_state`, possibly through JSON.
        """
        super().set_state(state)
        asha = state["asha"]
        self.max_epochs = asha["max_epochs"]
        self.factor = asha["factor"]
        self.hyperband_iterations = asha["hyperband_iterations"]
        self.min_epochs = asha["min_epochs"]
        self.epoch_budget = asha["epoch_budget"]
        self.rung_budgets = tuple(asha["rung_budgets"])
        self.rungs = [list(trial_ids) for trial_ids in asha["rungs"]]
        self.promoted = dict(asha["promoted"])
        self.epochs_handed_out = asha["epochs_handed_out"]
        self.finished = asha["finished"]

    def _compute_values_hash(self, values: dict[str, Any]) -> str:
        # As in `HyperbandOracle`: a new configuration is a duplicate when its own values
        # were tried, whatever the rung; a promotion keeps `tuner/trial_id`, so it never
        # collides with its parent.
        values = {key: value for key, value in values.items() if key not in SCHEDULE_KEYS}
        return super()._compute_values_hash(values)

    def _step_cost(self, rung: int) -> int:
        return self.rung_budgets[rung + 1] - self.rung_budgets[rung]

    def _cheapest_step(self) -> int:
        steps = [self._step_cost(rung) for rung in range(len(self.rung_budgets) - 1)]
        return min([self.rung_budgets[0], *steps])

    def _ranked(self, trial_ids: list[str]) -> list[str]:
        """The rung's scored, completed trials, best first; ties keep their start order."""
        scored = [
            trial_id
            for trial_id in trial_ids
            if self.trials[trial_id].status == trial_module.TrialStatus.COMPLETED
            and self.trials[trial_id].score is not None
            and math.isfinite(self.trials[trial_id].score)
        ]
        sign = 1.0 if self.objective.direction == "min" else -1.0
        return sorted(scored, key=lambda trial_id: sign * self.trials[trial_id].score)

    def _find_promotion(self) -> tuple[str, int] | None:
        # Li et al. (2020), Algorithm 2 (get_job): for k from the top rung down, the
        # candidates are top_k(rung k, |rung k| / eta) minus the promoted ones. Optuna's
        # `SuccessiveHalvingPruner` (optuna/pruners/_successive_halving.py) applies the
        # same cut-off in `_is_trial_promotable_to_next_rung` (index
        # `len(competing) // eta - 1` of the sorted values, the trial's own included),
        # but it also promotes the best of fewer than eta trials because it cannot
        # pause them; an oracle can start a new configuration instead, as the paper
        # does, so here fewer than eta results promote nothing.
        for rung in reversed(range(len(self.rung_budgets) - 1)):
            if self._step_cost(rung) > self.epochs_left:
                continue
            ranked = self._ranked(self.rungs[rung])
            for trial_id in ranked[: len(ranked) // self.factor]:
                if trial_id not in self.promoted:
                    return trial_id, rung
        return None

    def _promote(self, trial_id: str, parent_id: str, rung: int) -> dict[str, Any]:
        values = copy.deepcopy(self.trials[parent_id].hyperparameters.values)
        values.update(self._schedule_values(rung + 1))
        values["tuner/trial_id"] = parent_id
        self.rungs[rung + 1].append(trial_id)
        self.promoted[parent_id] = trial_id
        self.epochs_handed_out += self._step_cost(rung)
        return {"status": trial_module.TrialStatus.RUNNING, "values": values}

    def _schedule_values(self, rung: int) -> dict[str, int]:
        return {
            "tuner/epochs": self.rung_budgets[rung],
            "tuner/initial_epoch": 0 if rung == 0 else self.rung_budgets[rung - 1],
            "tuner/bracket": 0,
            "tuner/round": rung,
        }
