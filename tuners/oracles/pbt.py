"""Population-based training (Jaderberg et al., 2017) as a keras-tuner `Oracle`.

A population of members trains side by side in intervals of a few epochs. After each
interval the members are ranked by their score; each member of the bottom quantile
copies the checkpoint of a random member of the top quantile (exploit) and continues
with that member's hyperparameters, perturbed (explore). The hyperparameters that a
member's final weights were trained with thus change over training: PBT finds a
schedule, not one value.

The rules are Ray Tune's (`ray.tune.schedulers.PopulationBasedTraining`, synchronous
mode): quantile fraction 0.25, a copied numerical hyperparameter multiplied by 0.8 or
1.2, a choice moved to a neighbouring value, either of them resampled from the search
space instead with probability 0.25.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import keras_tuner
import numpy as np
from keras_tuner.engine import hyperparameters as hyperparameter_types
from keras_tuner.engine import trial as trial_module

from tuners import errors
from tuners.oracles import values as values_module
from tuners.plans import population

# The hyperparameters perturbed by default: those of ktlab's hypermodels that change how
# a model trains but not the shapes of its weights, so a copied checkpoint still loads
# (`units`, `num_layers` or `lookback` would not; `optimizer` would drop the copied
# optimizer state, and `activation` would change what the copied weights compute).
DEFAULT_PERTURBABLE = ("learning_rate", "dropout", "weight_decay", "momentum", "batch_size")
ENDED = (trial_module.TrialStatus.COMPLETED, trial_module.TrialStatus.FAILED)


class PBTOracle(keras_tuner.Oracle):
    """Population-based training in synchronous generations over epoch intervals.

    Generation `g` trains every member from epoch `interval_ends[g - 1]` to
    `interval_ends[g]` (see `tuners.plans.population.population_plan`), one trial per member.
    When every trial of a generation has ended, the oracle ranks the members by their
    trials' scores (keras-tuner's: the best epoch of the interval). Each member in the
    bottom `quantile_fraction` (Ray Tune's quantile rule: `ceil(P * fraction)`, at most
    half) and each member whose trial failed copies a random member of the top
    quantile: its next trial loads that member's checkpoint (`tuner/trial_id`) and
    takes its hyperparameters, each name of `perturbable` that the trial uses changed
    as Ray Tune's `explore` does: with probability `resample_probability` drawn afresh
    from the search space; otherwise an `Int` or `Float` multiplied by 0.8 or 1.2
    (`perturbation_factors`, one at random) and clipped to its range (an `Int`
    rounded), a `Choice` or `Boolean` moved to the value before or after it. The other
    members continue from their own checkpoint with their own values. Synchronous
    generations are the PBT paper's appendix A.1 and Ray Tune's `synch=True`: with
    several workers, a worker that finishes early waits for its generation to end.

    The weights and the optimizer's state are copied: keras-tuner checkpoints a trial's
    best epoch with `model.save_weights`, which in Keras 3 holds the optimizer's
    variables too, and the tuner's epoch budget (`tuners.observers.epoch_budget`) loads them for a
    trial with a `tuner/member` (`tuners.observers.optimizer_state`; Adam's moments and iteration
    count carry on, the learning rate is the trial's own). A member continues from the
    best epoch of its interval, not the last. Hyperband's promotions, by contrast,
    reload weights only.

    Perturb only hyperparameters that leave the weights' and the optimizer's variables
    alone: a changed `units` makes the copied checkpoint fail to load, a changed
    `optimizer` leaves its optimizer state behind (Keras warns). Names in `perturbable`
    that the search space lacks are refused when the tuner is built (`check_space`),
    except those of `DEFAULT_PERTURBABLE`, which cover several hypermodels.

    Trials carry Hyperband's values, so the epoch budget, the histories and the plots
    treat them like Hyperband's: `tuner/epochs`, `tuner/initial_epoch`, `tuner/trial_id`
    (the checkpoint to load), `tuner/bracket` (always 0), `tuner/round` (the
    generation); and `tuner/member` and, after an exploit, `tuner/exploited_from` (the
    member copied), which the histories record as `member` and `exploited_from`.

    Args:
        objective: A string, `keras_tuner.Objective`, or a list of them, as for any
            keras-tuner oracle.
        max_epochs: The epochs each member trains in all.
        factor: Hyperband's reduction factor, which sizes the default population and
            interval (`tuners.plans.population.population_plan`).
        hyperband_iterations: Hyperband's iterations, for the default population.
        population_size: The members, at least 2; None trains about Hyperband's epochs.
        perturbation_interval: Epochs between two exploit steps; None for
            `ceil(max_epochs / (2 * factor))`.
        epoch_budget: Sizes the population when `population_size` is None: the epochs
            all members train together; None for Hyperband's.
        quantile_fraction: The fraction of the population in each of the top and
            bottom quantiles, in (0, 0.5].
        resample_probability: The chance that a perturbed hyperparameter is drawn
            afresh instead, in [0, 1].
        perturbation_factors: The two factors a numerical hyperparameter is multiplied by.
        perturbable: The names of the hyperparameters explored after an exploit.
        max_trials: Optionally, the most trials to run.
        seed: Optional integer seed; the same seed gives the same search.
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
    oracle = PBTOracle(objective="val_loss", max_epochs=9, factor=3, seed=1)
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
        population_size: int | None = None,
        perturbation_interval: int | None = None,
        epoch_budget: int | None = None,
        quantile_fraction: float = 0.25,
        resample_probability: float = 0.25,
        perturbation_factors: Sequence[float] = (0.8, 1.2),
        perturbable: Sequence[str] = DEFAULT_PERTURBABLE,
        max_trials: int | None = None,
        seed: int | None = None,
        hyperparameters: keras_tuner.HyperParameters | None = None,
        allow_new_entries: bool = True,
        tune_new_entries: bool = True,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
    ) -> None:
        plan = population.population_plan(
            max_epochs, factor, hyperband_iterations, population_size=population_size,
            perturbation_interval=perturbation_interval, epoch_budget=epoch_budget)
        _check_fraction("quantile_fraction", quantile_fraction, 0.0, 0.5, low_open=True)
        _check_fraction("resample_probability", resample_probability, 0.0, 1.0)
        factors = tuple(perturbation_factors) if isinstance(
            perturbation_factors, (list, tuple)) else ()
        if len(factors) != 2 or not all(errors.is_real(value) and value > 0
                                        for value in factors):
            raise errors.TunerConfigError(
                f"perturbation_factors must be two positive numbers such as [0.8, 1.2], got "
                f"{perturbation_factors!r}")
        if isinstance(perturbable, str) or not all(isinstance(name, str)
                                                   for name in perturbable):
            raise errors.TunerConfigError(
                f"perturbable must be a list of hyperparameter names such as "
                f"['learning_rate'], got {perturbable!r}")
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
        self.plan = plan
        self.quantile_fraction = float(quantile_fraction)
        self.resample_probability = float(resample_probability)
        self.perturbation_factors = tuple(float(value) for value in factors)
        self.perturbable = tuple(perturbable)
        # lineage[g][m]: the trial of member m in generation g, None until it starts.
        self.lineage: list[list[str | None]] = []
        # The trials of the current generation not handed out yet, member order.
        self.pending: list[dict[str, Any]] = []
        self.finished = False

    @property
    def population_size(self) -> int:
        """The members of the population."""
        return self.plan.population_size

    def check_space(self) -> None:
        """Refuses `perturbable` names the search space lacks (a typo would do nothing).

        Raises:
            errors.TunerConfigError: Naming the unknown names and the known ones.
        """
        names = {hyperparameter.name for hyperparameter in self.hyperparameters.space}
        unknown = [name for name in self.perturbable
                   if name not in names and name not in DEFAULT_PERTURBABLE]
        if unknown:
            raise errors.TunerConfigError(
                f"perturbable names {', '.join(unknown)}, which the search space lacks; use "
                f"names from {', '.join(sorted(names))}")

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        """Hands out the next member's interval, opening a generation when one ended.

        Args:
            trial_id: The id of the trial to fill.

        Returns:
            `{"status": "RUNNING", "values": ...}`; `{"status": "IDLE"}` while the
            generation's last trials still run; or `{"status": "STOPPED"}` after the
            last generation, or when a generation has no scored member to copy.
        """
        if self.finished:
            return {"status": trial_module.TrialStatus.STOPPED}
        if not self.pending:
            generation = len(self.lineage)
            if generation and not self._generation_ended(generation - 1):
                return {"status": trial_module.TrialStatus.IDLE}
            if generation == self.plan.generations:
                self.finished = True
                return {"status": trial_module.TrialStatus.STOPPED}
            pending = self._open_generation(generation)
            if not pending:
                self.finished = True
                return {"status": trial_module.TrialStatus.STOPPED}
            self.lineage.append([None] * self.population_size)
            self.pending = pending
        values = self.pending.pop(0)
        self.lineage[-1][values["tuner/member"]] = trial_id
        return {"status": trial_module.TrialStatus.RUNNING, "values": values}

    def promotable_trial_ids(self) -> set[str]:
        """The ended trials whose checkpoints a later generation may still load.

        `tuners.observers.checkpoints` keeps them: the parents of trials not handed out yet, and
        the current generation's completed trials while another generation follows.

        Returns:
            Trial ids; empty once the search has stopped.
        """
        if self.finished:
            return set()
        needed = {values["tuner/trial_id"] for values in self.pending
                  if "tuner/trial_id" in values}
        if self.lineage and len(self.lineage) < self.plan.generations:
            needed |= {trial_id for trial_id in self.lineage[-1] if trial_id is not None
                       and self.trials[trial_id].status == trial_module.TrialStatus.COMPLETED}
        return needed

    def get_state(self) -> dict[str, Any]:
        """Returns the oracle's state as JSON-serialisable data.

        Returns:
            keras-tuner's oracle state plus the plan, the settings, the lineage and the
            trials of the current generation not handed out yet.
        """
        state = super().get_state()
        state["pbt"] = {
            "max_epochs": self.max_epochs,
            "factor": self.factor,
            "hyperband_iterations": self.hyperband_iterations,
            "population_size": self.plan.population_size,
            "perturbation_interval": self.plan.interval,
            "quantile_fraction": self.quantile_fraction,
            "resample_probability": self.resample_probability,
            "perturbation_factors": list(self.perturbation_factors),
            "perturbable": list(self.perturbable),
            "lineage": [list(members) for members in self.lineage],
            "pending": copy.deepcopy(self.pending),
            "finished": self.finished,
        }
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restores the state written by `get_state`.

        Args:
            state: A state from `get_state`, possibly through JSON.
        """
        super().set_state(state)
        pbt = state["pbt"]
        self.max_epochs = pbt["max_epochs"]
        self.factor = pbt["factor"]
        self.hyperband_iterations = pbt["hyperband_iterations"]
        self.plan = population.PopulationPlan(pbt["population_size"],
                                              pbt["perturbation_interval"], pbt["max_epochs"])
        self.quantile_fraction = pbt["quantile_fraction"]
        self.resample_probability = pbt["resample_probability"]
        self.perturbation_factors = tuple(pbt["perturbation_factors"])
        self.perturbable = tuple(pbt["perturbable"])
        self.lineage = [list(members) for members in pbt["lineage"]]
        self.pending = copy.deepcopy(pbt["pending"])
        self.finished = pbt["finished"]

    # keras-tuner's `_compute_values_hash` is kept: every trial's values include its
    # `tuner/member` and `tuner/round`, so no trial is a duplicate of another, and a
    # member continuing with its own hyperparameters is not refused.

    def _generation_ended(self, generation: int) -> bool:
        # A trial waiting in keras-tuner's retry queue is INVALID, not ended.
        return all(trial_id is not None and self.trials[trial_id].status in ENDED
                   for trial_id in self.lineage[generation])

    def _open_generation(self, generation: int) -> list[dict[str, Any]]:
        """The values of every member's trial in `generation`, member order."""
        if generation == 0:
            return [{**self._random_values(), **self._schedule_values(0, member)}
                    for member in range(self.population_size)]
        previous = self.lineage[generation - 1]
        scored = [member for member, trial_id in enumerate(previous)
                  if self.trials[trial_id].status == trial_module.TrialStatus.COMPLETED
                  and self.trials[trial_id].score is not None
                  and math.isfinite(self.trials[trial_id].score)]
        if not scored:
            return []
        sign = 1.0 if self.objective.direction == "min" else -1.0
        # Best first; ties keep member order (sorted is stable).
        ranked = sorted(scored, key=lambda member: sign * self.trials[previous[member]].score)
        size = population.quantile_size(len(ranked), self.quantile_fraction)
        top = ranked[:max(size, 1)]
        bottom = set(ranked[len(ranked) - size:]) if size else set()
        # One generator per generation, from the seed: a resumed search draws the same.
        rng = np.random.default_rng([self.seed, generation])
        pending = []
        for member in range(self.population_size):
            exploit = member in bottom or member not in scored
            source = top[int(rng.integers(len(top)))] if exploit else member
            parent_values = self.trials[previous[source]].hyperparameters.values
            values = {name: value for name, value in parent_values.items()
                      if not name.startswith("tuner/")}
            if exploit:
                values = self._explore(values, rng)
            values.update(self._schedule_values(generation, member))
            values["tuner/trial_id"] = previous[source]
            if exploit:
                values["tuner/exploited_from"] = source
            pending.append(values)
        return pending

    def _explore(self, values: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        """Ray Tune's `explore`: each perturbable value resampled, scaled or moved."""
        explored = copy.deepcopy(values)
        for hyperparameter in self.hyperparameters.space:
            name = hyperparameter.name
            if (name not in self.perturbable or name not in explored
                    or isinstance(hyperparameter, hyperparameter_types.Fixed)):
                continue
            if rng.random() < self.resample_probability:
                explored[name] = values_module.random_value(hyperparameter, rng)
            elif isinstance(hyperparameter, (hyperparameter_types.Choice,
                                             hyperparameter_types.Boolean)):
                explored[name] = _neighbour(hyperparameter, explored[name], rng)
            elif isinstance(hyperparameter, (hyperparameter_types.Int,
                                             hyperparameter_types.Float)):
                # Ray: `random() > 0.5` picks 1.2, else 0.8; then clipped to the range,
                # which Ray leaves to the user.
                scale = self.perturbation_factors[1 if rng.random() > 0.5 else 0]
                explored[name] = values_module.clip_value(hyperparameter,
                                                          explored[name] * scale)
        return explored

    def _schedule_values(self, generation: int, member: int) -> dict[str, int]:
        ends = self.plan.interval_ends
        return {
            "tuner/epochs": ends[generation],
            "tuner/initial_epoch": 0 if generation == 0 else ends[generation - 1],
            "tuner/bracket": 0,
            "tuner/round": generation,
            "tuner/member": member,
        }


def _neighbour(hyperparameter: Any, value: Any, rng: np.random.Generator) -> Any:
    """The choice before or after `value` (Ray Tune's list mutation), kept in range."""
    choices = ([False, True] if isinstance(hyperparameter, hyperparameter_types.Boolean)
               else list(hyperparameter.values))
    if value not in choices:
        return choices[int(rng.integers(len(choices)))]
    index = choices.index(value)
    index = max(0, index - 1) if rng.random() > 0.5 else min(len(choices) - 1, index + 1)
    return choices[index]


def _check_fraction(name: str, value: Any, low: float, high: float,
                    low_open: bool = False) -> None:
    if (not errors.is_real(value) or value > high or value < low
            or (low_open and value == low)):
        bracket = "(" if low_open else "["
        raise errors.TunerConfigError(
            f"{name} must be a number in {bracket}{low:g}, {high:g}], got {value!r}")
