"""A genetic-algorithm search strategy as a keras-tuner `Oracle`.

Each generation trains `population_size` new configurations. The first generation is
random; every later one is bred from the previous generation plus the best
configurations seen so far (the elite): two parents are picked by tournament, the
child takes each hyperparameter from one of them at random (uniform crossover), and
each value then mutates with probability `mutation_rate`, staying inside its
hyperparameter's range, step and choices. With further objectives
(`extra_objectives`), parents are chosen by NSGA-II instead (`tuners.oracles.nsga`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras_tuner
import numpy as np
from keras_tuner.engine import hyperparameters as hyperparameter_types
from keras_tuner.engine import trial as trial_module

from tuners import errors, keras_tuner_internals
from tuners.oracles import nsga
from tuners.oracles.values import is_valid_value, mutate_value, random_value, sample_values
from tuners.results import pareto_front


class GeneticOracle(keras_tuner.Oracle):
    """Evolves hyperparameter configurations with a genetic algorithm.

    Generation 0 samples `population_size` random configurations. Once all trials of
    a generation have ended, the breeding pool becomes that generation's completed
    trials plus the `elite_count` best trials seen so far, which survive without
    being trained again (training a configuration twice would only repeat a known
    score). Each child of the next generation has two parents, each the best of
    `tournament_size` pool members drawn at random; it takes every active
    hyperparameter from either parent with equal probability, and each value mutates
    with probability `mutation_rate`:

    - `Float` and `Int` without a step move by a normal step of standard deviation
      `mutation_scale` in keras-tuner's probability space, which is linear in the
      value for `sampling="linear"` and in its logarithm for `sampling="log"`, then
      are clipped to the range;
    - `Float` and `Int` with a step move by a whole number of steps (at least one),
      staying on keras-tuner's grid of allowed values;
    - `Choice` takes another of its values at random, `Boolean` flips, `Fixed` stays.

    Conditional hyperparameters follow their parents: the child's values are built in
    the order of the search space, so a child whose `optimizer` became "adam" gets no
    `momentum` even if a parent had one, and one that became "sgd" inherits the
    momentum of whichever parent had it (or samples one at random). A child equal to
    a configuration already tried is bred again with at least one forced mutation;
    after keras-tuner's `_max_collisions` (20) such tries the oracle falls back to
    random configurations, and stops (status `STOPPED`) when those collide too, so a
    small exhausted space ends the search instead of repeating it.

    The search ends after `max_trials` trials, that is `max_trials / population_size`
    generations. The direction of `objective` is respected when ranking.

    With `extra_objectives`, selection is NSGA-II's (`tuners.oracles.nsga`) on each
    trial's score and last reported value of each further objective: the breeding pool is
    the `population_size` survivors of the previous pool and the generation's completed
    trials (`elite_count` is not used), and a tournament picks the lowest front, then the
    largest crowding distance. Trials without every value take no part.

    Args:
        objective: A string, `keras_tuner.Objective`, or a list of them, as for any
            keras-tuner oracle.
        max_trials: The number of trials (configurations trained), at least two
            generations' worth: `2 * population_size`.
        population_size: New configurations per generation, at least 2. None (the
            default) picks `max(2, min(10, max_trials // 3))`, so that small budgets
            still get at least three generations where they can.
        mutation_rate: The probability that each hyperparameter of a child mutates,
            from 0 to 1.
        mutation_scale: The standard deviation of a numerical mutation, as a fraction
            of the hyperparameter's range (in log space for log sampling), above 0.
        tournament_size: Pool members compared to pick each parent, at least 1
            (capped at the pool's size); larger means greedier.
        elite_count: The best configurations kept in the breeding pool from one
            generation to the next, from 0 to `population_size - 1`.
        extra_objectives: Names (direction inferred, as `tuners.results.objectives` does) or
            `keras_tuner.Objective`s of metrics the trials report besides `objective`,
            such as `"params"`; one or more selects by NSGA-II.
        hyperparameters: Optional `HyperParameters` that define or override the
            search space.
        seed: Optional integer seed; the same seed gives the same configurations.
        tune_new_entries: Whether hyperparameters the hypermodel requests that are
            not in `hyperparameters` are tuned (True) or left at their default.
        allow_new_entries: Whether the hypermodel may request hyperparameters not in
            `hyperparameters`.
        max_retries_per_trial: How many times a crashed trial is retried.
        max_consecutive_failed_trials: How many failed trials in a row stop the
            search.

    Raises:
        errors.TunerConfigError: (a ValueError) If a setting is out of its range; the
            message names the fix.

    Example:

    ```python
    oracle = GeneticOracle(
        objective="val_loss", max_trials=40, population_size=10, seed=1
    )
    tuner = keras_tuner.Tuner(oracle=oracle, hypermodel=build_model)
    tuner.search(x, y, validation_data=(x_val, y_val), epochs=5)
    ```
    """

    def __init__(
        self,
        objective: Any = None,
        max_trials: int = 100,
        population_size: int | None = None,
        mutation_rate: float = 0.2,
        mutation_scale: float = 0.1,
        tournament_size: int = 3,
        elite_count: int = 1,
        extra_objectives: Sequence[Any] = (),
        hyperparameters: keras_tuner.HyperParameters | None = None,
        seed: int | None = None,
        tune_new_entries: bool = True,
        allow_new_entries: bool = True,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
    ) -> None:
        errors.check_integer("max_trials", max_trials, minimum=1)
        if population_size is None:
            if max_trials < 4:
                raise errors.TunerConfigError(
                    f"max_trials ({max_trials}) is too small for a genetic search, which "
                    "needs two generations of at least two configurations; use max_trials "
                    "of at least 4, or the random tuner."
                )
            population_size = max(2, min(10, max_trials // 3))
        errors.check_integer("population_size", population_size, minimum=2)
        if max_trials < 2 * population_size:
            raise errors.TunerConfigError(
                f"max_trials ({max_trials}) is less than two generations of population_size "
                f"({population_size}), so nothing would be bred from the first, random "
                f"generation; raise max_trials to at least {2 * population_size} or lower "
                "population_size."
            )
        errors.check_fraction("mutation_rate", mutation_rate)
        if not errors.is_real(mutation_scale) or not 0 < mutation_scale <= 1:
            raise errors.TunerConfigError(
                f"mutation_scale must be a number in (0, 1], the standard deviation of a "
                f"mutation as a fraction of the range; got {mutation_scale!r}."
            )
        errors.check_integer("tournament_size", tournament_size, minimum=1)
        errors.check_integer("elite_count", elite_count, minimum=0)
        if elite_count >= population_size:
            raise errors.TunerConfigError(
                f"elite_count ({elite_count}) must be smaller than population_size "
                f"({population_size}); use at most {population_size - 1}."
            )
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
        self.population_size = population_size
        self.mutation_rate = float(mutation_rate)
        self.mutation_scale = float(mutation_scale)
        self.tournament_size = tournament_size
        self.elite_count = elite_count
        self.extra_objectives = pareto_front.as_objectives(extra_objectives)
        if self.objective.name in [extra.name for extra in self.extra_objectives]:
            raise errors.TunerConfigError(
                f"{self.objective.name!r} is the objective already; leave it out of "
                f"extra_objectives")
        # The base class picks a random seed when none is given, so `self.seed` is
        # always set here and the generator is reproducible from the saved state.
        self._rng = np.random.default_rng(self.seed)
        self._generation = 0
        self._generation_trial_ids: list[str] = []
        self._parent_trial_ids: list[str] = []
        self._generations: dict[str, int] = {}

    @property
    def generation(self) -> int:
        """The generation now being created, from 0 (the random one)."""
        return self._generation

    def generation_of(self, trial_id: str) -> int | None:
        """Tells which generation a trial belongs to.

        Args:
            trial_id: A trial id from this oracle.

        Returns:
            The generation number from 0, or None for an id this oracle never created.
        """
        return self._generations.get(trial_id)

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        """Picks the values of the next trial.

        Args:
            trial_id: The id of the trial to fill.

        Returns:
            `{"status": "RUNNING", "values": ...}` for a new configuration,
            `{"status": "IDLE"}` while the last generation's trials are still running
            in other workers, or `{"status": "STOPPED"}` when no untried
            configuration can be found.
        """
        if len(self._generation_trial_ids) >= self.population_size:
            running_ids = {trial.trial_id for trial in self.ongoing_trials.values()}
            if running_ids.intersection(self._generation_trial_ids):
                # The next generation is bred from this one's scores, which are not
                # all in yet; a parallel worker asks again.
                return {"status": trial_module.TrialStatus.IDLE}
            self._start_next_generation()

        values = self._new_values()
        if values is None:
            if self.ongoing_trials:
                return {"status": trial_module.TrialStatus.IDLE}
            return {"status": trial_module.TrialStatus.STOPPED}
        self._generation_trial_ids.append(trial_id)
        self._generations[trial_id] = self._generation
        return {"status": trial_module.TrialStatus.RUNNING, "values": values}

    def get_state(self) -> dict[str, Any]:
        """Returns the oracle's state as JSON-serialisable data.

        Returns:
            keras-tuner's oracle state plus the genetic settings, the generation
            bookkeeping and the random generator's state.
        """
        state = super().get_state()
        state["genetic"] = {
            "population_size": self.population_size,
            "mutation_rate": self.mutation_rate,
            "mutation_scale": self.mutation_scale,
            "tournament_size": self.tournament_size,
            "elite_count": self.elite_count,
            "extra_objectives": [[extra.name, extra.direction]
                                 for extra in self.extra_objectives],
            "generation": self._generation,
            "generation_trial_ids": list(self._generation_trial_ids),
            "parent_trial_ids": list(self._parent_trial_ids),
            "generations": dict(self._generations),
            "rng_state": self._rng.bit_generator.state,
        }
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restores the state written by `get_state`.

        Args:
            state: A state from `get_state`, possibly through JSON.
        """
        super().set_state(state)
        genetic = state["genetic"]
        self.population_size = genetic["population_size"]
        self.mutation_rate = genetic["mutation_rate"]
        self.mutation_scale = genetic["mutation_scale"]
        self.tournament_size = genetic["tournament_size"]
        self.elite_count = genetic["elite_count"]
        self.extra_objectives = [keras_tuner.Objective(name, direction) for name, direction
                                 in genetic.get("extra_objectives", [])]
        self._generation = genetic["generation"]
        self._generation_trial_ids = list(genetic["generation_trial_ids"])
        self._parent_trial_ids = list(genetic["parent_trial_ids"])
        self._generations = dict(genetic["generations"])
        self._rng = np.random.default_rng()
        self._rng.bit_generator.state = genetic["rng_state"]

    def _start_next_generation(self) -> None:
        completed = [
            trial_id for trial_id in self._generation_trial_ids if self._is_scored(trial_id)
        ]
        if self.extra_objectives:
            pool = [trial_id for trial_id in dict.fromkeys(self._parent_trial_ids + completed)
                    if self._is_scored(trial_id)]
            survivors = nsga.select_survivors([self._point(trial_id) for trial_id in pool],
                                              self._directions, self.population_size)
            self._parent_trial_ids = [pool[index] for index in survivors]
        else:
            elites = self._rank(self._parent_trial_ids + completed)[: self.elite_count]
            self._parent_trial_ids = completed + [
                trial_id for trial_id in elites if trial_id not in completed
            ]
        self._generation += 1
        self._generation_trial_ids = []

    def _is_scored(self, trial_id: str) -> bool:
        trial = self.trials.get(trial_id)
        return (
            trial is not None
            and trial.status == trial_module.TrialStatus.COMPLETED
            and trial.score is not None
            and math.isfinite(trial.score)
            and (not self.extra_objectives
                 or pareto_front.trial_values(trial, self.extra_objectives) is not None)
        )

    @property
    def _directions(self) -> list[str]:
        return [self.objective.direction, *(extra.direction for extra in self.extra_objectives)]

    def _point(self, trial_id: str) -> list[float]:
        return pareto_front.trial_values(self.trials[trial_id], self.extra_objectives)

    def _selection_key(self, parents: Sequence[str]) -> Any:
        # What a tournament minimises: the loss, or NSGA-II's crowded comparison.
        if not self.extra_objectives:
            return self._loss
        return nsga.crowded_key(parents, [self._point(trial_id) for trial_id in parents],
                                self._directions)

    def _loss(self, trial_id: str) -> float:
        # Ranking always minimises, so scores to maximise change sign.
        score = self.trials[trial_id].score
        return score if self.objective.direction == "min" else -score

    def _rank(self, trial_ids: Sequence[str]) -> list[str]:
        # Python's sort is stable, so ties keep trial order and runs stay reproducible.
        return sorted(dict.fromkeys(trial_ids), key=self._loss)

    def _new_values(self) -> dict[str, Any] | None:
        parents = [trial_id for trial_id in self._parent_trial_ids if self._is_scored(trial_id)]
        attempts = self._max_collisions + 1
        if parents:
            key = self._selection_key(parents)
            for attempt in range(attempts):
                # A converged population breeds copies of tried configurations; after
                # the first try each child gets at least one mutation, so it moves.
                values = self._breed(parents, key, force_mutation=attempt > 0)
                if not keras_tuner_internals.is_duplicate(self, values):
                    return values
        # Either there is no scored parent yet (generation 0, or a generation that
        # failed entirely), or even mutated children repeat tried configurations,
        # which happens when a small discrete space is nearly exhausted.
        for _ in range(attempts):
            values = sample_values(self.hyperparameters.space, self._random_value)
            if not keras_tuner_internals.is_duplicate(self, values):
                return values
        return None

    def _tournament(self, parents: Sequence[str], key: Any) -> str:
        size = min(self.tournament_size, len(parents))
        drawn = self._rng.choice(len(parents), size=size, replace=False)
        return min((parents[index] for index in sorted(drawn)), key=key)

    def _breed(self, parents: Sequence[str], key: Any,
               force_mutation: bool = False) -> dict[str, Any]:
        first = self.trials[self._tournament(parents, key)].hyperparameters.values
        second = self.trials[self._tournament(parents, key)].hyperparameters.values
        tunable = [
            hyperparameter
            for hyperparameter in self.hyperparameters.space
            if not isinstance(hyperparameter, hyperparameter_types.Fixed)
        ]
        # With `force_mutation`, the first active hyperparameter from a random
        # position in the space mutates whatever the mutation rate says.
        forced_from = int(self._rng.integers(len(tunable))) if force_mutation and tunable else None
        positions = {id(hyperparameter): index for index, hyperparameter in enumerate(tunable)}
        mutated = False

        def choose(hyperparameter: hyperparameter_types.HyperParameter) -> Any:
            nonlocal mutated
            inherited = [
                values[hyperparameter.name]
                for values in (first, second)
                if hyperparameter.name in values
                and is_valid_value(hyperparameter, values[hyperparameter.name])
            ]
            if len(inherited) == 2:
                value = inherited[int(self._rng.integers(2))]
            elif inherited:
                value = inherited[0]
            else:
                # Neither parent had this hyperparameter active (a conditional one
                # the crossover just switched on, or one new to the space).
                return self._random_value(hyperparameter)
            forced = (
                forced_from is not None
                and not mutated
                and positions.get(id(hyperparameter), -1) >= forced_from
            )
            if forced or self._rng.random() < self.mutation_rate:
                value = mutate_value(hyperparameter, value, self._rng, self.mutation_scale)
                mutated = True
            return value

        return sample_values(self.hyperparameters.space, choose)

    def _random_value(self, hyperparameter: hyperparameter_types.HyperParameter) -> Any:
        return random_value(hyperparameter, self._rng)
