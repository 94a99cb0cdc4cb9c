"""Builds a tuner by name, with per-trial histories, from the registry of search strategies.

`tuners.registry.TUNERS` maps a name to a `TunerSpec`: the oracle class and which budget
it takes. Every tuner built here records its trials with `tuners.recorder.HistoryMixin`.

```python
from tuners import factory

tuner = factory.build_tuner("genetic", hypermodel, directory="runs/demo", max_trials=20)
tuner.search(**prepared.fit_kwargs(), epochs=10, callbacks=factory.default_callbacks())
```
"""

from __future__ import annotations

import inspect
import json
import numbers
import os
from collections.abc import Callable, Sequence
from typing import Any

import keras
import keras_tuner
from keras_tuner.src.engine import tuner as tuner_module

from tuners import recorder
from tuners.errors import TunerConfigError
from tuners.objectives import objective_direction
from tuners.registry import TUNERS, TunerSpec

__all__ = ["TUNERS", "EpochBudgetTuner", "HistoryTuner", "TunerSpec", "build_tuner",
           "default_callbacks", "make_objective", "objective_direction"]


class HistoryTuner(recorder.HistoryMixin, keras_tuner.Tuner):
    """A keras-tuner `Tuner` that records per-trial histories; for `max_trials` oracles.

    ```python
    oracle = keras_tuner.oracles.RandomSearchOracle(objective="val_loss", max_trials=5)
    tuner = HistoryTuner(oracle=oracle, hypermodel=hypermodel, directory="runs/demo")
    tuner.search(train_dataset, validation_data=validation_dataset, epochs=10)
    ```
    """

    def _try_build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        """Builds a trial's model after one garbage collection, not keras-tuner's two.

        keras-tuner calls `keras.backend.clear_session()`, which already runs Python's
        garbage collector, and then `gc.collect()` again. Each full collection takes longer
        as TensorFlow's traced graphs pile up over a search (0.2 s early, 0.6 s after a
        few dozen trials on a 2-core CPU: `benchmarks/overhead.py`), so one is kept.
        """
        keras.backend.clear_session(free_memory=True)
        model = self._build_hypermodel(hp)
        if not isinstance(model, keras.Model):
            raise keras_tuner.errors.FatalTypeError(
                f"Expected the model-building function, or HyperModel.build() to return a "
                f"valid Keras Model instance. Received: {model} of type {type(model)}.")
        size = tuner_module.maybe_compute_model_size(model)
        if self.max_model_size and size > self.max_model_size:
            raise keras_tuner.errors.FailedTrialError(
                f"Oversized model: {size} parameters. Skip model.")
        return model


class EpochBudgetTuner(HistoryTuner):
    """A `HistoryTuner` for oracles that hand out epoch budgets, as Hyperband does.

    It does what `keras_tuner.Hyperband` does on top of `keras_tuner.Tuner`, for any
    such oracle: train to `tuner/epochs` from `tuner/initial_epoch`, starting from the
    best checkpoint of trial `tuner/trial_id` when the oracle continues a configuration.
    Only the weights are reloaded; the optimizer starts afresh.
    """

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        values = trial.hyperparameters.values
        if "tuner/epochs" in values:
            kwargs["epochs"] = values["tuner/epochs"]
            kwargs["initial_epoch"] = values["tuner/initial_epoch"]
        return super().run_trial(trial, *args, **kwargs)

    def _build_hypermodel(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        model = super()._build_hypermodel(hp)
        if "tuner/trial_id" in hp.values:
            parent_id = hp.values["tuner/trial_id"]
            if not model.built:
                with open(self._get_build_config_fname(parent_id), encoding="utf-8") as handle:
                    model.build_from_config(json.load(handle))
            model.load_weights(self._get_checkpoint_fname(parent_id))
        return model


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
    tuner.search(**prepared.fit_kwargs(), epochs=30, callbacks=default_callbacks())
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
        validation: `"holdout"` or `"walk_forward"` (trial-budget tuners only).
        folds: The walk-forward folds, objects with `fit_kwargs()`.
        on_trial_end: Optional callable given each finished trial's summary (see
            `recorder.HistoryMixin`).
        **kwargs: Arguments of the oracle's constructor (for example `alpha` and `beta`
            of Bayesian optimization, or `max_retries_per_trial`) go to the oracle; the
            rest (for example `max_model_size`) go to `keras_tuner.Tuner`.

    Returns:
        A `keras_tuner.Tuner` with a `history_path` attribute.

    Raises:
        TunerConfigError: For an unknown name, a budget out of range, a seed of 0,
            `num_initial_points` without Bayesian optimization or above `max_trials`,
            walk-forward validation with an epoch-budget tuner, or grid search over a
            continuous range.
    """
    if name not in TUNERS:
        raise TunerConfigError(f"unknown tuner {name!r}; use one of {', '.join(TUNERS)}")
    spec = TUNERS[name]
    objective = make_objective(objective)
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
    if validation == "walk_forward" and spec.budget == "epochs":
        raise TunerConfigError(
            f"walk-forward validation does not work with {name}, which resumes each "
            f"configuration from one checkpoint; use random or bayesian, or validation="
            f"'holdout'"
        )

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
    tuner_arguments = {}
    for key, value in kwargs.items():
        if key in oracle_parameters:
            oracle_arguments[key] = value
        else:
            tuner_arguments[key] = value
    oracle = spec.oracle_class(**oracle_arguments)

    tuner_class = EpochBudgetTuner if spec.budget == "epochs" else HistoryTuner
    tuner = tuner_class(
        oracle=oracle,
        hypermodel=hypermodel,
        directory=os.fspath(directory),
        project_name=project_name,
        overwrite=overwrite,
        executions_per_trial=executions_per_trial,
        history_path=history_path,
        validation=validation,
        folds=folds,
        trial_end_listener=on_trial_end,
        **tuner_arguments,
    )
    space = tuner.oracle.get_space().space
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
    if spec.tunes_initial_points and num_initial_points is None:
        tuned = [hp for hp in space
                 if not isinstance(hp, keras_tuner.engine.hyperparameters.Fixed)]
        tuner.oracle.num_initial_points = min(max(2, len(tuned)), max(1, max_trials // 2))
    return tuner


def _check_integer(field: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TunerConfigError(f"{field} must be a whole number, got {value!r}")
    if value < minimum:
        raise TunerConfigError(f"{field} must be >= {minimum}, got {value}; raise {field}")
