"""The registry of search strategies: a name and how to build its oracle.

It imports neither TensorFlow nor keras-tuner, so the command line checks a tuner's name
before paying for that import; each oracle class is imported when a tuner is built. An
oracle that takes the same budget arguments as keras-tuner's `RandomSearchOracle`
(`max_trials`) or `HyperbandOracle` (`max_epochs`, `factor`, `hyperband_iterations`) is
registered in one line, by class or by `"module:Class"`:

```python
from tuners import registry

registry.TUNERS["genetic"] = registry.TunerSpec("tuners.oracles.genetic:GeneticOracle",
                                                budget="trials")
```
"""

from __future__ import annotations

import dataclasses
import importlib

BUDGETS = ("trials", "epochs")
# The pruners `tuners.observers.pruning.make_pruner` builds by name, each with the line
# `ktlab list` shows; "none" prunes nothing.
PRUNERS = {
    "none": "Every trial trains for its whole budget, unless early stopping ends it.",
    "median": "Stops a trial whose objective is worse than the earlier trials' median at the "
              "same epoch.",
}


@dataclasses.dataclass(frozen=True)
class TunerSpec:
    """How to build one search strategy.

    Attributes:
        oracle: A `keras_tuner.Oracle` subclass, or where to import it from as
            `"package.module:ClassName"`. Its constructor must take `objective`, `seed`
            and `max_consecutive_failed_trials`, plus its budget.
        budget: `"trials"` for an oracle that takes `max_trials`, or `"epochs"` for one
            that takes `max_epochs`, `factor` and `hyperband_iterations` and hands out
            Hyperband's `tuner/epochs`, `tuner/initial_epoch` and `tuner/trial_id`.
        tunes_initial_points: Whether the oracle takes `num_initial_points` (random
            trials before its model of the objective takes over).
        needs_finite_space: Whether every hyperparameter must have finitely many values.
        plan: For an epoch-budget oracle that does not plan Hyperband's trials and
            epochs, where to import its planner from, `"package.module:function"`; see
            `planned_budget`.
        description: One line for `ktlab list`, which imports no oracle class (and so no
            keras-tuner) to read a docstring; empty: the class's docstring, if it is imported.
    """

    oracle: type | str
    budget: str
    tunes_initial_points: bool = False
    needs_finite_space: bool = False
    plan: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.budget not in BUDGETS:
            raise ValueError(f"unknown budget {self.budget!r} for {self.oracle}; use one of "
                             f"{', '.join(BUDGETS)}")

    @property
    def oracle_class(self) -> type:
        """The oracle class, imported on first use when it was registered by name."""
        if not isinstance(self.oracle, str):
            return self.oracle
        module_name, _, class_name = self.oracle.partition(":")
        return getattr(importlib.import_module(module_name), class_name)

    def planned_budget(self, max_epochs: int, factor: int, hyperband_iterations: int,
                       options: dict | None = None) -> tuple[int, float]:
        """An epoch-budget oracle's planned `(trials, epochs)`: Hyperband's schedule's,
        or what its `plan` function, called with these arguments, returns."""
        if self.plan is None:
            from tuners.plans import schedule

            hyperband = schedule.keras_tuner_schedule(max_epochs, factor, hyperband_iterations)
            return hyperband.total_trials, hyperband.total_epochs
        module_name, _, function_name = self.plan.partition(":")
        planner = getattr(importlib.import_module(module_name), function_name)
        return planner(max_epochs, factor, hyperband_iterations, options or {})


TUNERS: dict[str, TunerSpec] = {
    "hyperband": TunerSpec("keras_tuner.oracles:HyperbandOracle", budget="epochs",
                           description="keras-tuner's Hyperband: brackets of successive "
                                       "halving over growing epoch budgets."),
    # keras-tuner's own, which also learns from stopped (pruned) trials.
    "bayesian": TunerSpec("tuners.keras_tuner_internals:BayesianOptimizationOracle",
                          budget="trials", tunes_initial_points=True,
                          description="keras-tuner's Bayesian optimization (a Gaussian "
                                      "process), also learning from stopped trials."),
    "random": TunerSpec("keras_tuner.oracles:RandomSearchOracle", budget="trials",
                        description="keras-tuner's random search."),
    "grid": TunerSpec("keras_tuner.oracles:GridSearchOracle", budget="trials",
                      needs_finite_space=True,
                      description="keras-tuner's grid search over every combination of a "
                                  "finite space."),
    # Our own strategies (tuners/oracles/): evolutionary search, and Hyperband whose new
    # configurations come from a density model of the good ones (Falkner et al., 2018).
    "genetic": TunerSpec("tuners.oracles.genetic:GeneticOracle", budget="trials",
                         description="Evolves configurations with a genetic algorithm."),
    "bohb": TunerSpec("tuners.oracles.bohb:BOHBOracle", budget="epochs",
                      description="Hyperband whose new configurations come from a kernel "
                                  "density model of the good ones (BOHB)."),
    # Asynchronous successive halving (Li et al., 2020), held to Hyperband's epoch total
    # in more, mostly shorter trials than Hyperband's.
    "asha": TunerSpec("tuners.oracles.asha:ASHAOracle", budget="epochs",
                      plan="tuners.plans.rungs:planned_budget",
                      description="Asynchronous successive halving over rungs of growing "
                                  "epoch budgets."),
    # Population-based training (Jaderberg et al., 2017): members trained in intervals,
    # the weakest copying and perturbing the strongest; about Hyperband's epochs.
    "pbt": TunerSpec("tuners.oracles.pbt:PBTOracle", budget="epochs",
                     plan="tuners.plans.population:planned_budget",
                     description="Population-based training: the weakest members copy and "
                                 "perturb the strongest."),
}
# The entries every process has; `--workers` sends its processes those added or replaced.
BUILT_IN = dict(TUNERS)
