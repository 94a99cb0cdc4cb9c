"""Builds a tuner by name, with per-trial histories, from the registry of search strategies.

`tuners.registry.TUNERS` maps a name to a `TunerSpec`: the oracle class and which budget
it takes. Every tuner built here is a `tuners.tuner.Tuner` that records its trials
(`tuners.observers.recorder`), composed of the parts the arguments ask for: the trial runner of the
validation, an epoch limit, a pruner, and the epoch-budget part for the oracles that hand
out epoch budgets.

```python
from tuners import factory

tuner = factory.build_tuner("genetic", hypermodel, directory="runs/demo", max_trials=20)
tuner.search(**hypermodels.fit_data(hypermodel, prepared), epochs=10,
             callbacks=factory.default_callbacks())
```
"""

from __future__ import annotations

import inspect
import numbers
import os
from collections.abc import Callable, Sequence
from typing import Any

import keras
import keras_tuner

from tuners import tuner
from tuners.errors import TunerConfigError
from tuners.observers import epoch_budget, epoch_limit, pruning, recorder
from tuners.registry import TUNERS, TunerSpec
from tuners.results.objectives import objective_direction
from tuners.runners import walk_forward

__all__ = ["TUNERS", "TunerSpec", "build_tuner", "default_callbacks", "make_objective",
           "objective_direction"]


def make_objective(objective: str | keras_tuner.Objective) -> keras_tuner.Objective:
    """Returns `objective` as a `keras_tuner.Objective`, inferring the direction of a name.

    Raises:
        TunerConfigError: For a name of unknown direction, or another type.
    """
    if isinstance(objective, keras_tuner.Objective):
        return objective
    if isinstance(objective, str) and objective:
        try:
            direction = objective_direction(objective)
        except ValueError as error:
            raise TunerConfigError(str(error)) from None
        return keras_tuner.Objective(objective, direction=direction)
    raise TunerConfigError(
        f"objective must be a metric name such as 'val_loss' or a keras_tuner.Objective, "
        f"got {objective!r}"
    )


def default_callbacks(
    objective: str | keras_tuner.Objective = "val_loss", patience: int = 5
) -> list[keras.callbacks.Callback]:
    """Early stopping on the objective, and stopping on a NaN loss.

    `TerminateOnNaN` stops gracefully, so the trial's history keeps the NaN epoch and the
    histories file marks the trial failed.

    Args:
        objective: The metric to watch, as for `build_tuner`.
        patience: Epochs without improvement before stopping.

    Returns:
        `[keras.callbacks.EarlyStopping(...), keras.callbacks.TerminateOnNaN()]`.

    Raises:
        TunerConfigError: For a negative patience or an objective of unknown direction.
    """
    objective = make_objective(objective)
    _check_integer("patience", patience, 0)
    return [
        keras.callbacks.EarlyStopping(
            monitor=objective.name, patience=patience, mode=objective.direction
        ),
        keras.callbacks.TerminateOnNaN(),
    ]


def build_tuner(
    name: str,
    hypermodel: keras_tuner.HyperModel,
    *,
    directory: str | os.PathLike,
    project_name: str = "tuner",
    objective: str | keras_tuner.Objective = "val_loss",
    max_epochs: int = 100,
    factor: int = 3,
    hyperband_iterations: int = 1,
    max_trials: int = 10,
    num_initial_points: int | None = None,
    seed: int | None = None,
    executions_per_trial: int = 1,
    overwrite: bool = False,
    history_path: str | os.PathLike | None = None,
    max_consecutive_failed_trials: int = 3,
    validation: str = "holdout",
    folds: Sequence[Any] | None = None,
    on_trial_end: Callable[[dict[str, Any]], None] | None = None,
    pruner: Any = None,
    objectives: Sequence[str | keras_tuner.Objective] = (),
    **kwargs: Any,
) -> keras_tuner.Tuner:
    """Builds the named tuner, recording every trial's history to `history_path`.

    Every tuner is searched the same way:
    `tuner.search(x=train_dataset, validation_data=validation_dataset, epochs=...,
    callbacks=default_callbacks(objective))`. Hyperband-like tuners override `epochs`
    with their own schedule, up to `max_epochs`.

    ```python
    tuner = build_tuner("bayesian", hypermodel, directory="runs/demo", max_trials=20,
                        seed=42, history_path="runs/demo/histories.jsonl")
    tuner.search(**hypermodels.fit_data(hypermodel, prepared), epochs=30,
                 callbacks=default_callbacks())
    trials = load_trials("runs/demo")
    ```

    Args:
        name: A key of `TUNERS`: `"hyperband"`, `"bayesian"`, `"random"`, `"grid"`, or
            one registered later.
        hypermodel: The `keras_tuner.HyperModel` to tune.
        directory: Where keras-tuner keeps its trials and checkpoints.
        project_name: The sub-directory of `directory` for this search.
        objective: A metric name, whose direction is inferred (`*loss*`, `*mae*`,
            `*mse*`, `*error*` are minimized; `*acc*`, `*auc*`, `*precision*`,
            `*recall*` maximized), or a `keras_tuner.Objective`.
        max_epochs: Epoch-budget tuners: the most epochs one configuration trains.
        factor: Epoch-budget tuners: the reduction factor between rounds, at least 2.
        hyperband_iterations: Epoch-budget tuners: how many times to run all brackets.
        max_trials: Trial-budget tuners: how many configurations to try at most.
        num_initial_points: Bayesian optimization: random trials before the Gaussian
            process takes over. Defaults to the number of tuned hyperparameters (at
            least 2), capped at half of `max_trials`, so that the search is not random
            throughout, which keras-tuner's default of 3 per hyperparameter would make it.
        seed: Seed of the oracle's sampling, a whole number >= 1; None for a random one.
        executions_per_trial: Models trained per configuration; the score is their mean.
        overwrite: Start afresh instead of resuming the project in `directory`.
        history_path: Where to write the histories; defaults to `histories.jsonl` in the
            project directory.
        max_consecutive_failed_trials: Failed trials in a row that end the search.
        validation: `"holdout"` or `"walk_forward"`.
        folds: The walk-forward folds, objects with `fit_kwargs()`.
        on_trial_end: Optional callable given each finished trial's summary (see
            `recorder.Recorder`).
        pruner: Trial-budget tuners: a pruner such as `pruning.MedianPruner(...)` that
            stops trials falling behind the earlier ones (holdout validation only).
        objectives: For a search with several objectives, all of them, `objective`
            first: metric names or `keras_tuner.Objective`s, and the model's measures
            `"params"` and `"latency_ms"` (`tuners.results.measures`), which every trial then
            reports. An oracle that takes `extra_objectives` (the genetic one, which then
            selects by NSGA-II) is given those after the first; the others optimise
            `objective` alone.
        **kwargs: Arguments of the oracle's constructor (for example `alpha` and `beta`
            of Bayesian optimization, or `max_retries_per_trial`) go to the oracle; the
            rest go to the tuner: `max_trained_epochs` (`tuners.observers.epoch_limit`),
            `keep_models` of the epoch-budget tuners (`tuners.observers.epoch_budget`), and
            `keras_tuner.Tuner`'s own (for example `max_model_size`).

    Returns:
        A `tuners.tuner.Tuner` with a `history_path` attribute.

    Raises:
        TunerConfigError: For an unknown name, a budget out of range, a seed of 0,
            `num_initial_points` without Bayesian optimization or above `max_trials`,
            a pruner with an epoch-budget tuner or walk-forward validation, or grid
            search over a continuous range.
    """
    if name not in TUNERS:
        raise TunerConfigError(f"unknown tuner {name!r}; use one of {', '.join(TUNERS)}")
    spec = TUNERS[name]
    objective = make_objective(objective)
    extra_objectives = _extra_objectives(objective, objectives)
    for field, value, minimum in (
        ("max_epochs", max_epochs, 1),
        ("factor", factor, 2),
        ("hyperband_iterations", hyperband_iterations, 1),
        ("max_trials", max_trials, 1),
        ("executions_per_trial", executions_per_trial, 1),
        ("max_consecutive_failed_trials", max_consecutive_failed_trials, 1),
    ):
        _check_integer(field, value, minimum)
    if seed is not None:
        _check_integer("seed", seed, 0)
        if seed == 0:
            # keras-tuner reads `seed or random.randint(...)`, so 0 would mean a random seed.
            raise TunerConfigError("seed must be >= 1 (keras-tuner treats 0 as no seed); "
                                   "pick another seed")
    if num_initial_points is not None:
        if not spec.tunes_initial_points:
            raise TunerConfigError(
                f"num_initial_points applies to bayesian, not {name}; remove it"
            )
        _check_integer("num_initial_points", num_initial_points, 1)
        if num_initial_points > max_trials:
            raise TunerConfigError(
                f"num_initial_points ({num_initial_points}) exceeds max_trials ({max_trials}), "
                f"which would make the search random; lower num_initial_points"
            )
    if pruner is not None and (spec.budget == "epochs" or validation == "walk_forward"):
        raise TunerConfigError(
            f"pruning works with the trial-budget tuners and holdout validation, not with "
            f"{name if spec.budget == 'epochs' else 'walk-forward validation'}; remove the "
            f"pruner")

    oracle_arguments = {
        "objective": objective,
        "seed": seed,
        "max_consecutive_failed_trials": max_consecutive_failed_trials,
    }
    if spec.budget == "trials":
        oracle_arguments["max_trials"] = max_trials
    else:
        oracle_arguments.update(
            max_epochs=max_epochs, factor=factor, hyperband_iterations=hyperband_iterations
        )
    if num_initial_points is not None:
        oracle_arguments["num_initial_points"] = num_initial_points
    oracle_parameters = inspect.signature(spec.oracle_class).parameters
    if extra_objectives and "extra_objectives" in oracle_parameters:
        oracle_arguments["extra_objectives"] = extra_objectives
    tuner_arguments = {}
    for key, value in kwargs.items():
        if key in oracle_parameters:
            oracle_arguments[key] = value
        else:
            tuner_arguments[key] = value
    oracle = spec.oracle_class(**oracle_arguments)

    observers = [epoch_limit.EpochLimit(tuner_arguments.pop("max_trained_epochs", None))]
    runner = walk_forward.make_runner(validation, folds, executions_per_trial)
    if pruner is not None:
        observers.append(pruning.Pruning(pruner))
    budget = None
    if spec.budget == "epochs":
        budget = epoch_budget.EpochBudget(keep_models=tuner_arguments.pop("keep_models", True))
    built = tuner.Tuner(
        oracle=oracle,
        hypermodel=hypermodel,
        directory=os.fspath(directory),
        project_name=project_name,
        overwrite=overwrite,
        executions_per_trial=executions_per_trial,
        runner=runner,
        recorder=recorder.Recorder(history_path, trial_end_listener=on_trial_end),
        observers=observers,
        epoch_budget=budget,
        extra_objectives=[extra.name for extra in extra_objectives],
        **tuner_arguments,
    )
    space = built.oracle.get_space().space
    if spec.needs_finite_space:
        continuous = [hp.name for hp in space
                      if isinstance(hp, keras_tuner.engine.hyperparameters.Float)
                      and hp.step is None]
        if continuous:
            steps = ", ".join(f"{hp_name}_step" for hp_name in continuous)
            raise TunerConfigError(
                f"{name} search needs finitely many values, but {', '.join(continuous)} "
                f"{'is' if len(continuous) == 1 else 'are'} continuous; give each a step "
                f"(ktlab's hypermodels take {steps}, e.g. learning_rate_step=10) or use random"
            )
    # An oracle that checks its options against the search space (PBT's `perturbable`).
    check_space = getattr(built.oracle, "check_space", None)
    if callable(check_space):
        check_space()
    if spec.tunes_initial_points and num_initial_points is None:
        tuned = [hp for hp in space
                 if not isinstance(hp, keras_tuner.engine.hyperparameters.Fixed)]
        built.oracle.num_initial_points = min(max(2, len(tuned)), max(1, max_trials // 2))
    return built


def _extra_objectives(objective: keras_tuner.Objective,
                      objectives: Sequence[str | keras_tuner.Objective]) -> list[Any]:
    """The objectives after the first, which must be `objective`."""
    listed = [make_objective(item) for item in objectives]
    names = [item.name for item in listed]
    if listed and names[0] != objective.name:
        raise TunerConfigError(f"the first of objectives ({names[0]!r}) must be the objective "
                               f"({objective.name!r}), which every tuner optimises; put it "
                               f"first")
    if len(set(names)) != len(names):
        raise TunerConfigError(f"objectives {', '.join(names)} name one twice; name each once")
    return listed[1:]


def _check_integer(field: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TunerConfigError(f"{field} must be a whole number, got {value!r}")
    if value < minimum:
        raise TunerConfigError(f"{field} must be >= {minimum}, got {value}; raise {field}")
