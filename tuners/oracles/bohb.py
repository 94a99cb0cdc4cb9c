"""BOHB (Falkner, Klein and Hutter, 2018) as a keras-tuner `Oracle`.

BOHB keeps Hyperband's brackets and promotions and replaces only the random sampling
of each bracket's new configurations with a TPE-style model: two kernel density
estimates, one over the best configurations and one over the rest. Candidates drawn
around good configurations are ranked by the ratio of the two densities. Each trial's
values say where its configuration came from: `tuner/origin` is `"model"`, `"random"`
or, for a Hyperband promotion, `"promoted"`.
"""

from __future__ import annotations

from typing import Any

import keras_tuner
import numpy as np
from keras_tuner.engine import hyperparameters as hyperparameter_types

from tuners import errors, keras_tuner_internals
from tuners.oracles import density, observations

# Where a trial's configuration came from, in its values (and `trials.csv`'s `origin`).
ORIGIN_KEY = "tuner/origin"
ORIGIN_MODEL = "model"
ORIGIN_RANDOM = "random"
ORIGIN_PROMOTED = "promoted"


class BOHBOracle(keras_tuner.oracles.HyperbandOracle):
    """Hyperband whose new configurations come from a kernel density model (BOHB).

    The bracket schedule, the promotions and the `tuner/*` values are exactly
    `HyperbandOracle`'s, so any Tuner that runs Hyperband (resuming promoted trials
    from `tuner/trial_id` and training from `tuner/initial_epoch` to `tuner/epochs`)
    runs this oracle too. What changes is where the first round of each bracket gets
    its configurations:

    1. With probability `random_fraction`, or while too few results exist, a
       configuration is sampled at random, exactly as `HyperbandOracle` does.
    2. Otherwise the finished configurations are split into good and bad
       (`tuners.oracles.observations`). By default (`pool_budgets=True`) every
       configuration counts once, at the largest budget (`tuner/epochs`) it reached:
       configurations rank by that budget, then by their loss there, and the best
       `ceil(top_fraction * n)` of `n` (at least one) are good. This starts once
       `min_points_in_model` configurations (d + 1 for d tunable hyperparameters)
       have a result. With `pool_budgets=False`, as in BOHB's paper and hpbandster,
       only the largest budget with `min_points_in_model` good and as many bad
       results is used.
       Each set gets a kernel density estimate in keras-tuner's probability space
       (so log-sampled hyperparameters are modelled in log space): Gaussian kernels
       for `Float` and `Int`, Aitchison-Aitken kernels for `Choice` and `Boolean`,
       bandwidths by Scott's rule, at least `min_bandwidth` and, with
       `adaptive_min_bandwidth`, at least the range divided by `min(100, n + 1)`
       for `n` observations (hyperopt's and Optuna's "magic clip"; for `Choice`
       and `Boolean`, a uniform prior weighted as one observation).
    3. `num_candidates` candidates are drawn around good configurations, with
       bandwidths widened by `bandwidth_factor`; the untried candidate with the
       largest ratio of good density to bad density is returned.

    Why pool the budgets: the paper's rule needs 2(d + 1) results at one budget, and
    Hyperband's smallest budget gets only as many as its widest bracket starts (9 at
    `max_epochs=9`, `factor=3`), so with the `quick` LSTM space (d = 5, 12 results)
    the model never started at ktlab's defaults and BOHB ran as Hyperband, trial for
    trial. Ranking by the budget reached first is the rule Optuna's TPE sampler applies
    to trials a pruner stopped (the step reached, then the value there): a
    promotion is Hyperband's own judgement that a configuration beat those its round
    left behind. The startup count of d + 1 configurations is BOHB's N_min, counted
    over both densities, which are products of one-dimensional kernels with floored
    bandwidths and so are defined from a single point each; like Optuna's
    `n_startup_trials`, it keeps the first configurations random. One bias remains: a
    configuration that a later, narrower bracket starts at a large budget ranks above
    every configuration stopped below that budget, whatever its loss.
    `benchmarks/synthetic_oracles.py` compares both rules with Hyperband.

    Conditional hyperparameters count only where they are active: a kernel factor
    is skipped when either configuration lacks the hyperparameter, and a candidate
    whose parent switches a child on that its centre lacked samples that child at
    random.

    Args:
        objective: A string, `keras_tuner.Objective`, or a list of them, as for any
            keras-tuner oracle.
        max_epochs: The largest number of epochs one configuration trains.
        factor: Hyperband's reduction factor, an integer of at least 2.
        hyperband_iterations: How many times all brackets run, at least 1; None, as in
            keras-tuner, runs brackets until the Tuner stops.
        seed: Optional integer seed; the same seed gives the same configurations.
        hyperparameters: Optional `HyperParameters` that define or override the
            search space.
        allow_new_entries: Whether the hypermodel may request hyperparameters not in
            `hyperparameters`.
        tune_new_entries: Whether hyperparameters the hypermodel requests that are
            not in `hyperparameters` are tuned (True) or left at their default.
        max_retries_per_trial: How many times a crashed trial is retried.
        max_consecutive_failed_trials: How many failed trials in a row stop the
            search.
        random_fraction: The probability of sampling a new configuration at random
            even when a model exists, from 0 to 1 (BOHB's default is 1/3).
        top_fraction: The fraction of results counted as good, between 0 and 1
            (BOHB's default is 0.15).
        num_candidates: Candidates drawn from the good density per new
            configuration, at least 1 (BOHB's default is 64).
        min_points_in_model: At least 2; None means the number of tunable
            hyperparameters plus one (BOHB's N_min). With pooled budgets, the fewest
            configurations with a result before the model starts; with
            `pool_budgets=False`, the fewest good and the fewest bad results a budget
            needs, as in BOHB.
        pool_budgets: Whether the model learns from every budget's results, each
            configuration at the largest budget it reached (True, the default), or
            only from the largest budget with enough results, as in BOHB's paper
            (False).
        bandwidth_factor: How much wider than the fitted bandwidth candidates are
            drawn, above 0 (BOHB's default is 3).
        adaptive_min_bandwidth: Whether bandwidths also have the floor that shrinks
            with the number of observations (the default, True). Without it, as in
            hpbandster, the four good configurations of a small model can collapse
            onto one point and every later proposal repeats it; on the synthetic bowl
            of `benchmarks/synthetic_oracles.py` BOHB then does no better than plain
            Hyperband, while with the floor it beats it on most seeds.
        min_bandwidth: The smallest bandwidth, which keeps a density from collapsing
            onto identical values, above 0 (BOHB's default is 0.001).

    Raises:
        errors.TunerConfigError: (a ValueError) If a setting is out of its range; the
            message names the fix.

    Example:

    ```python
    class BOHBTuner(keras_tuner.Hyperband):
        # Hyperband's Tuner trains from `tuner/initial_epoch` to `tuner/epochs` and
        # resumes promoted checkpoints; only the oracle changes.
        def __init__(self, hypermodel, **kwargs):
            oracle = BOHBOracle(objective="val_loss", max_epochs=27, factor=3, seed=1)
            keras_tuner.Tuner.__init__(self, oracle=oracle, hypermodel=hypermodel, **kwargs)

    tuner = BOHBTuner(build_model, directory="runs/bohb")
    tuner.search(x, y, validation_data=(x_val, y_val))
    ```
    """

    def __init__(
        self,
        objective: Any = None,
        max_epochs: int = 100,
        factor: int = 3,
        hyperband_iterations: int = 1,
        seed: int | None = None,
        hyperparameters: keras_tuner.HyperParameters | None = None,
        allow_new_entries: bool = True,
        tune_new_entries: bool = True,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
        random_fraction: float = 1 / 3,
        top_fraction: float = 0.15,
        num_candidates: int = 64,
        min_points_in_model: int | None = None,
        bandwidth_factor: float = 3.0,
        min_bandwidth: float = 1e-3,
        adaptive_min_bandwidth: bool = True,
        pool_budgets: bool = True,
    ) -> None:
        errors.check_integer("max_epochs", max_epochs, minimum=1)
        errors.check_integer("factor", factor, minimum=2)
        if hyperband_iterations is not None:
            errors.check_integer("hyperband_iterations", hyperband_iterations, minimum=1)
        if not errors.is_real(random_fraction) or not 0 <= random_fraction <= 1:
            raise errors.TunerConfigError(
                f"random_fraction must be a number from 0 to 1 (BOHB uses 1/3), "
                f"got {random_fraction!r}."
            )
        if not errors.is_real(top_fraction) or not 0 < top_fraction < 1:
            raise errors.TunerConfigError(
                f"top_fraction must be a number between 0 and 1, exclusive (BOHB uses "
                f"0.15), got {top_fraction!r}."
            )
        errors.check_integer("num_candidates", num_candidates, minimum=1)
        if min_points_in_model is not None:
            errors.check_integer("min_points_in_model", min_points_in_model, minimum=2)
        if not errors.is_real(bandwidth_factor) or bandwidth_factor <= 0:
            raise errors.TunerConfigError(
                f"bandwidth_factor must be a number above 0 (BOHB uses 3), "
                f"got {bandwidth_factor!r}."
            )
        if not isinstance(adaptive_min_bandwidth, bool):
            raise errors.TunerConfigError(
                f"adaptive_min_bandwidth must be True or False, got {adaptive_min_bandwidth!r}."
            )
        if not isinstance(pool_budgets, bool):
            raise errors.TunerConfigError(
                f"pool_budgets must be True or False, got {pool_budgets!r}."
            )
        if not errors.is_real(min_bandwidth) or min_bandwidth <= 0:
            raise errors.TunerConfigError(
                f"min_bandwidth must be a number above 0 (BOHB uses 0.001), got {min_bandwidth!r}."
            )
        super().__init__(
            objective=objective,
            max_epochs=max_epochs,
            factor=factor,
            hyperband_iterations=hyperband_iterations,
            seed=seed,
            hyperparameters=hyperparameters,
            allow_new_entries=allow_new_entries,
            tune_new_entries=tune_new_entries,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        self.random_fraction = float(random_fraction)
        self.top_fraction = float(top_fraction)
        self.num_candidates = num_candidates
        self.min_points_in_model = min_points_in_model
        self.bandwidth_factor = float(bandwidth_factor)
        self.min_bandwidth = float(min_bandwidth)
        self.adaptive_min_bandwidth = adaptive_min_bandwidth
        self.pool_budgets = pool_budgets
        # The base class picks a random seed when none is given, so `self.seed` is
        # always set here. This generator drives BOHB's own choices; random
        # configurations still come from keras-tuner's `_seed_state`, so BOHB and
        # Hyperband with the same seed start from the same configurations.
        self._rng = np.random.default_rng(self.seed)
        self.model_configurations = 0
        self.random_configurations = 0
        self.model_budgets: list[int] = []

    def get_state(self) -> dict[str, Any]:
        """Returns the oracle's state as JSON-serialisable data.

        Returns:
            `HyperbandOracle`'s state plus BOHB's settings, counters and the random
            generator's state.
        """
        state = super().get_state()
        state["bohb"] = {
            "random_fraction": self.random_fraction,
            "top_fraction": self.top_fraction,
            "num_candidates": self.num_candidates,
            "min_points_in_model": self.min_points_in_model,
            "bandwidth_factor": self.bandwidth_factor,
            "min_bandwidth": self.min_bandwidth,
            "adaptive_min_bandwidth": self.adaptive_min_bandwidth,
            "pool_budgets": self.pool_budgets,
            "model_configurations": self.model_configurations,
            "random_configurations": self.random_configurations,
            "model_budgets": list(self.model_budgets),
            "rng_state": self._rng.bit_generator.state,
        }
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restores the state written by `get_state`.

        Args:
            state: A state from `get_state`, possibly through JSON.
        """
        super().set_state(state)
        bohb = state["bohb"]
        self.random_fraction = bohb["random_fraction"]
        self.top_fraction = bohb["top_fraction"]
        self.num_candidates = bohb["num_candidates"]
        self.min_points_in_model = bohb["min_points_in_model"]
        self.bandwidth_factor = bohb["bandwidth_factor"]
        self.min_bandwidth = bohb["min_bandwidth"]
        self.adaptive_min_bandwidth = bohb["adaptive_min_bandwidth"]
        # Runs saved before budgets were pooled used the largest budget alone.
        self.pool_budgets = bohb.get("pool_budgets", False)
        self.model_configurations = bohb["model_configurations"]
        self.random_configurations = bohb["random_configurations"]
        self.model_budgets = list(bohb["model_budgets"])
        self._rng = np.random.default_rng()
        self._rng.bit_generator.state = bohb["rng_state"]

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        """Hyperband's next trial, its values marked with where they came from.

        Args:
            trial_id: The id of the trial to create.

        Returns:
            `HyperbandOracle.populate_space`'s answer; a promotion's values (which hold
            `tuner/trial_id`, the trial it continues) get `tuner/origin` `"promoted"`.
        """
        response = super().populate_space(trial_id)
        values = response.get("values")
        if values and "tuner/trial_id" in values:
            values[ORIGIN_KEY] = ORIGIN_PROMOTED
        return response

    def _compute_values_hash(self, values: dict[str, Any]) -> str:
        # The origin says how a configuration was found, not what it is: a model
        # proposal equal to an earlier random configuration is a duplicate.
        values = {name: value for name, value in values.items() if name != ORIGIN_KEY}
        return super()._compute_values_hash(values)

    def _random_values(self) -> dict[str, Any] | None:
        # `HyperbandOracle` calls this only for the first round of a bracket;
        # promotions copy their parent's values. Overriding it changes where new
        # configurations come from and nothing else.
        explore = self._rng.random() < self.random_fraction
        model = None if explore else self._fit_model()
        values = None if model is None else self._model_values(model)
        if values is None:
            values = super()._random_values()
            if values is not None:
                self.random_configurations += 1
                values[ORIGIN_KEY] = ORIGIN_RANDOM
            return values
        self.model_configurations += 1
        self.model_budgets.append(model.budget)
        values[ORIGIN_KEY] = ORIGIN_MODEL
        return values

    def _tunable_space(self) -> list[hyperparameter_types.HyperParameter]:
        return [
            hyperparameter
            for hyperparameter in self.hyperparameters.space
            if not isinstance(hyperparameter, hyperparameter_types.Fixed)
            and not hyperparameter.name.startswith("tuner/")
        ]

    def _fit_model(self) -> density.DensityModel | None:
        space = self._tunable_space()
        if not space:
            return None
        min_points = self.min_points_in_model or len(space) + 1
        split_rule = (
            observations.pooled_split if self.pool_budgets else observations.largest_budget_split
        )
        split = split_rule(self.trials, self.objective.direction, min_points, self.top_fraction)
        if split is None:
            return None
        return density.DensityModel(
            full_space=self.hyperparameters.space,
            space=space,
            budget=split.budget,
            good_values=split.good,
            bad_values=split.bad,
            min_bandwidth=self.min_bandwidth,
            adaptive_min_bandwidth=self.adaptive_min_bandwidth,
        )

    def _model_values(self, model: density.DensityModel) -> dict[str, Any] | None:
        candidates = [
            model.sample(self._rng, self.bandwidth_factor) for _ in range(self.num_candidates)
        ]
        ratios = model.log_density_ratio(candidates)
        for index in np.argsort(-ratios, kind="stable"):
            if not keras_tuner_internals.is_duplicate(self, candidates[index]):
                return candidates[index]
        # Every candidate was tried already; a random configuration explores instead.
        return None
