"""Prints ktlab's default search against Optuna's (TPE + Hyperband pruning) at equal epochs.

Both search the same data (prepared once), hypermodel (`make_hypermodel`: the quick LSTM by
default) and ranges, with the same early stopping (`tuners.default_callbacks`) and the same
epochs trained, in one process. ktlab runs `run_search` (Hyperband; no refit, no report
steps); Optuna `TPESampler(seed=SEED)` with `HyperbandPruner(1, max_epochs, factor)`. Each
Optuna trial fills a `keras_tuner.HyperParameters` with suggestions over the hypermodel's
declared space (`suggest`), builds and fits through the hypermodel and reports the
objective every epoch (`trial.report`, `trial.should_prune`). It first calls
`keras.backend.clear_session()`, a full garbage collection, as Optuna's Keras example does
(optuna-examples `keras/keras_integration.py`); the last line leaves those calls out. The
study stops when its trials have trained ktlab's epochs, the last one cut short to match
(`EpochBudget`). Optuna promotes a trial by letting it train on, ktlab by resuming its
checkpoint: neither trains an epoch twice.

The figures are `benchmarks/overhead.py`'s, measured at the same points: wall s, first
trial's start to last one's end; steady epoch s, the median epoch that is not its trial's
first; steady compute s, epochs x steady epoch; wall/steady; per trial s, the median time
of a trial outside its epochs; between s, the median gap between trials; excess s, the
median first epoch less a steady one; best val_loss, the best trial's objective (Optuna's
best complete trial, `study.best_value`); test MSE, that trial's best-epoch weights on the
test split in the data's own units (ktlab's checkpoint, `metrics["search_test"]`; Optuna's
weights kept in memory). `--repeats N` alternates which runs first in each pair, so that
the order's effect on TensorFlow (see `overhead.py`) falls on both; Optuna's budget is the
last ktlab run's epochs.

    python benchmarks/vs_optuna.py
    python benchmarks/vs_optuna.py --repeats 2
    python benchmarks/vs_optuna.py --max-epochs 3 --factor 3     # a quick check

Optuna is not a dependency of ktlab: `pip install -e ".[bench]"` installs it.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.util
import math
import os
import pathlib
import statistics
import sys
import tempfile
import time
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import overhead  # noqa: E402 (this folder is on sys.path only from the line above)

# (title, width, figure, digits) of each column after the run's name.
COLUMNS = [
    ("trials", 6, "trials", 0), ("epochs", 6, "epochs", 0), ("wall s", 8, "wall", 2),
    ("steady epoch s", 14, "steady", 3), ("steady compute s", 16, "compute", 2),
    ("wall/steady", 11, "ratio", 2), ("per trial s", 11, "outside_epochs", 3),
    ("between s", 9, "between", 3), ("excess s", 8, "excess", 3),
    ("best val_loss", 13, "best", 4), ("test MSE", 11, "test_mse", 6),
]


@dataclasses.dataclass
class EpochBudget:
    """The epochs Optuna's study may train (`total`: ktlab's) and has trained (`spent`)."""

    total: int
    spent: int = 0

    def __post_init__(self) -> None:
        if self.total < 1:
            raise ValueError(f"an epoch budget must be at least 1, got {self.total}")

    def next_trial(self, max_epochs: int) -> int:
        """The epochs the next trial may train: `max_epochs`, or what is left if less."""
        return max(0, min(max_epochs, self.total - self.spent))

    def spend(self, epochs: int) -> None:
        """Notes that a trial trained `epochs` epochs."""
        self.spent += epochs

    @property
    def exhausted(self) -> bool:
        """Whether the study has trained all its epochs."""
        return self.spent >= self.total


def better(value: float, than: float | None, direction: str) -> bool:
    """Whether `value` beats `than` (None: nothing yet) in `direction`; NaN never does."""
    return not math.isnan(value) and (
        than is None or (value < than if direction == "min" else value > than))


def suggest(trial: Any, space: list[dict[str, Any]]) -> dict[str, Any]:
    """Optuna's values for a keras-tuner search space, over the same ranges.

    Args:
        trial: An `optuna.Trial`, or anything with its three `suggest_*` methods.
        space: A hypermodel's declared hyperparameters, as
            `keras_tuner.HyperParameters.get_config()["space"]`.

    Returns:
        `{name: value}`, for `keras_tuner.HyperParameters.from_config`.

    Raises:
        ValueError: For what has no Optuna equivalent: a conditional hyperparameter,
            reverse-log sampling, or a step on a log scale (keras-tuner multiplies by it,
            Optuna adds it).
    """
    values: dict[str, Any] = {}
    for entry in space:
        kind, spec = entry["class_name"], entry["config"]
        name = spec["name"]
        if spec.get("conditions"):
            raise ValueError(f"{name} is conditional; vs_optuna compares flat spaces only")
        sampling = spec.get("sampling") or "linear"
        if sampling not in ("linear", "log"):
            raise ValueError(f"{name} samples {sampling}; Optuna has linear and log only")
        log, step = sampling == "log", spec.get("step")
        if kind == "Fixed":
            values[name] = spec["value"]
        elif kind == "Boolean":
            values[name] = trial.suggest_categorical(name, [False, True])
        elif kind == "Choice":
            values[name] = trial.suggest_categorical(name, list(spec["values"]))
        elif log and step not in (None, 1):
            raise ValueError(f"{name} steps by {step} on a log scale; Optuna cannot")
        elif kind == "Int":
            values[name] = trial.suggest_int(name, spec["min_value"], spec["max_value"],
                                             step=step or 1, log=log)
        elif kind == "Float":
            values[name] = trial.suggest_float(name, spec["min_value"], spec["max_value"],
                                               step=step, log=log)
        else:
            raise ValueError(f"{name} is a {kind}, which vs_optuna does not translate")
    return values


@dataclasses.dataclass
class Outcome:
    """One search's times (`overhead.Timings`), its best trial's objective and test MSE (in
    the data's own units), a line of notes, and the seconds of Optuna's `clear_session`."""

    timings: overhead.Timings
    best: float
    test_mse: float
    notes: str = ""
    cleared: float = 0.0


def run_ktlab(config: Any, prepared: Any) -> Outcome:
    """Runs ktlab's search of `config` on `prepared` (no refit, no report steps)."""
    import keras

    from pipelines.recipe import run_search

    keras.utils.set_random_seed(config.run.seed)
    result = run_search(config, verbose=False, prepared=prepared, reports=())
    timings, metrics = overhead.read_ktlab_timings(pathlib.Path(result.run_dir)), result.metrics
    return Outcome(timings, float(metrics["best_score"]), float(metrics["search_test"]["mse"]))


def trial_watcher(keras: Any, trial: Any, objective: str, direction: str,
                  timings: overhead.Timings) -> Any:
    """A Keras callback that times a trial's epochs, reports them to Optuna and keeps the
    best epoch's weights; it stops training when Optuna prunes the trial."""

    class TrialWatcher(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            # Whether Optuna pruned the trial, and its best epoch's objective and weights.
            self.pruned, self.best, self.best_weights = False, None, None

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            seconds = time.perf_counter() - self._started
            (timings.later_epochs if epoch else timings.first_epochs).append(seconds)
            timings.trial_epoch_seconds[-1] += seconds
            value = float((logs or {}).get(objective, math.nan))
            # Optuna's resource is the epochs trained, so its rungs fall after 1, 3, 9
            # epochs as Hyperband's do.
            trial.report(value, epoch + 1)
            if better(value, self.best, direction):
                self.best, self.best_weights = value, self.model.get_weights()
            if trial.should_prune():
                self.pruned = self.model.stop_training = True

    return TrialWatcher()


def run_optuna(config: Any, prepared: Any, epochs: int) -> Outcome:
    """Runs Optuna's TPE search with Hyperband pruning until its trials trained `epochs`."""
    import keras
    import keras_tuner
    import optuna

    import hypermodels
    import tuners
    from pipelines.errors import ConfigError
    from pipelines.run.build import make_hypermodel

    tuner = config.tuner
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    keras.utils.set_random_seed(config.run.seed)
    hypermodel = make_hypermodel(config, prepared)
    declared = keras_tuner.HyperParameters()
    hypermodel.build(declared)  # Declares the space, as keras-tuner's first trial does.
    space = declared.get_config()["space"]
    try:  # A space Optuna cannot take is refused before the study starts.
        suggest(optuna.trial.FixedTrial(declared.values), space)
    except ValueError as error:
        raise ConfigError(f"{config.model_label}: {error}") from None
    data = hypermodels.fit_data(hypermodel, prepared)
    timings, budget = overhead.Timings(), EpochBudget(epochs)
    kept: dict[str, Any] = {"value": None}
    clearing: list[float] = []
    study = optuna.create_study(
        direction="minimize" if config.direction == "min" else "maximize",
        sampler=optuna.samplers.TPESampler(seed=config.run.seed),
        pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=tuner.max_epochs,
                                              reduction_factor=tuner.factor))

    def objective(trial: Any) -> float:
        trial_started = time.perf_counter()
        timings.trials.append((trial_started, math.nan))
        timings.trial_epoch_seconds.append(0.0)
        try:
            keras.backend.clear_session()
            clearing.append(time.perf_counter() - trial_started)
            hp = keras_tuner.HyperParameters.from_config(
                {"space": space, "values": suggest(trial, space)})
            model = hypermodel.build(hp)
            watcher = trial_watcher(keras, trial, tuner.objective, config.direction, timings)
            history = hypermodel.fit(
                hp, model, **data, epochs=budget.next_trial(tuner.max_epochs),
                callbacks=[*tuners.default_callbacks(tuner.objective, tuner.patience),
                           watcher], shuffle=False, verbose=0)
            budget.spend(len(history.epoch))
            if budget.exhausted:
                study.stop()  # After this trial: the epochs are ktlab's.
            if watcher.pruned:
                raise optuna.TrialPruned()
            if watcher.best is None:
                return math.nan  # Every epoch's objective was NaN: Optuna fails the trial.
            if better(watcher.best, kept["value"], config.direction):
                kept.update(value=watcher.best, values=hp.values, weights=watcher.best_weights)
            return watcher.best
        finally:
            timings.trials[-1] = (trial_started, time.perf_counter())

    study.optimize(objective)
    states = [trial.state.name for trial in study.trials]
    notes = (f"{states.count('COMPLETE')} complete, {states.count('PRUNED')} pruned, "
             f"{states.count('FAIL')} failed; clear_session {overhead.median(clearing):.3f} s "
             f"per trial (median), {sum(clearing):.1f} s in all")
    if kept["value"] is None:
        return Outcome(timings, math.nan, math.nan, notes + "; no complete trial", sum(clearing))
    # The kept weights are the trial's best epoch, as ktlab's checkpoint holds its own.
    hp = keras_tuner.HyperParameters.from_config({"space": space, "values": kept["values"]})
    model = hypermodel.build(hp)
    model.set_weights(kept["weights"])
    return Outcome(timings, float(study.best_value), prepared.evaluate(model, "test")["mse"],
                   notes, sum(clearing))


def row(outcome: Outcome) -> dict[str, float]:
    """The table's figures for one search."""
    return {**overhead.summarise(outcome.timings), "best": outcome.best,
            "test_mse": outcome.test_mse}


def print_table(rows: dict[str, dict[str, float]]) -> None:
    """Prints one row per search, with the columns of the module's docstring."""
    print(" ".join([f"{'run':<10}", *(f"{title:>{width}}" for title, width, _, _ in COLUMNS)]))
    for name, figures in rows.items():
        print(" ".join([f"{name:<10}", *(overhead.format_value(figures[key], width, digits)
                                          for _, width, key, digits in COLUMNS)]))


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """Reads the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(overhead.DEFAULT_CONFIG),
                        help="a ktlab config file (default: configs/default.toml)")
    for flag, setting in (("--max-epochs", "tuner.max_epochs"), ("--factor", "tuner.factor"),
                          ("--seed", "run.seed")):
        parser.add_argument(flag, type=int, help=setting)
    parser.add_argument("--repeats", type=int, default=1,
                        help="pairs of searches, alternating which runs first (default 1)")
    parser.add_argument("--backend", choices=overhead.BACKENDS,
                        help="the Keras backend (default: KERAS_BACKEND, else tensorflow)")
    return parser.parse_args(argv)


def load(args: argparse.Namespace, output_dir: pathlib.Path) -> Any:
    """The run's config, or raises `KtlabError` (with TensorFlow not yet imported)."""
    from pipelines.config import load_config
    from pipelines.errors import ConfigError

    overrides: dict[str, dict[str, Any]] = {
        "tuner": {key: getattr(args, key) for key in ("max_epochs", "factor")
                  if getattr(args, key) is not None},
        "run": {"output_dir": str(output_dir), "refit": False,
                **({} if args.seed is None else {"seed": args.seed})}}
    config = load_config(args.config, overrides)
    if config.tuner.name != "hyperband" or config.tuner.validation != "holdout":
        raise ConfigError("ktlab's side must be Hyperband on a holdout split, as Optuna's "
                          "pruner is; set tuner.name = \"hyperband\" and tuner.validation = "
                          "\"holdout\"")
    return config


def compare(args: argparse.Namespace, config: Any, scratch_dir: pathlib.Path) -> None:
    """Prepares the data, runs the pairs of searches and prints their figures."""
    from pipelines.run import quiet

    quiet.import_tensorflow()
    import keras
    import keras_tuner
    import optuna
    import tensorflow as tf

    from pipelines.run.build import make_pipeline
    from pipelines.run.search import quiet_known_warnings

    quiet_known_warnings()
    prepared = make_pipeline(config).prepare()
    tuner = config.tuner
    print(f"{datetime.datetime.now():%Y-%m-%d %H:%M}, {overhead.machine()}, load average "
          f"{' '.join(f'{value:.2f}' for value in os.getloadavg())}; backend "
          f"{keras.backend.backend()}; TensorFlow {tf.__version__}, Keras {keras.__version__}, "
          f"keras-tuner {keras_tuner.__version__}, Optuna {optuna.__version__}")
    print(f"config: {pathlib.Path(args.config).name}, max_epochs {tuner.max_epochs}, factor "
          f"{tuner.factor}, seed {config.run.seed}, patience {tuner.patience}; "
          f"{config.model_label} model ({config.model.space}) on {prepared.description}")
    print(f"ktlab: {tuner.name}; Optuna: TPESampler(seed={config.run.seed}), HyperbandPruner("
          f"1, {tuner.max_epochs}, {tuner.factor}), until its epochs are ktlab's", flush=True)
    rows: dict[str, dict[str, float]] = {}
    notes, ratios, cleared, ktlab_epochs = [], [], [], 0
    for repeat in range(1, args.repeats + 1):
        for name in ["ktlab", "Optuna"] if repeat % 2 else ["Optuna", "ktlab"]:
            if name == "ktlab":
                # Each ktlab search writes its own run directory.
                run = config.run.model_copy(update={"output_dir": str(scratch_dir / f"{repeat}")})
                outcome = run_ktlab(config.model_copy(update={"run": run}), prepared)
                ktlab_epochs = outcome.timings.epochs
            else:
                outcome = run_optuna(config, prepared, ktlab_epochs)
                notes.append(f"Optuna #{repeat}: {outcome.notes}")
                cleared.append(outcome.cleared)
            rows[f"{name} #{repeat}"] = row(outcome)
            print(f"repeat {repeat}: {name} done", flush=True)
        walls = rows[f"ktlab #{repeat}"]["wall"], rows[f"Optuna #{repeat}"]["wall"]
        ratios.append((walls[0] / walls[1], walls[0] / (walls[1] - cleared[-1])))
    print()
    print_table(rows)
    print()
    print("\n".join(notes))
    for index, label in enumerate(["ktlab wall / Optuna wall",
                                   "ktlab wall / Optuna wall less its clear_session calls"]):
        values = [pair[index] for pair in ratios]
        print(f"{label}: {', '.join(f'{value:.2f}' for value in values)}"
              + (f" (median {statistics.median(values):.2f})" if len(values) > 1 else ""))


def main(argv: list[str] | None = None) -> int:
    """Runs the searches and prints the table; returns the exit status."""
    args = parse_arguments(argv)
    # Each refusal is one line before TensorFlow is imported; Keras reads the backend when
    # it is first imported, so it is set before any import.
    if args.backend is not None:
        os.environ["KERAS_BACKEND"] = args.backend
    jax_missing = (os.environ.get("KERAS_BACKEND") == "jax"
                   and importlib.util.find_spec("jax") is None)
    problem = ('optuna is not installed; install it with pip install -e ".[bench]"'
               if importlib.util.find_spec("optuna") is None
               else f"--repeats must be at least 1, got {args.repeats}" if args.repeats < 1
               else 'jax is not installed; install it with pip install -e ".[jax]"'
               if jax_missing else None)
    if problem is not None:
        print(f"vs_optuna: {problem}", file=sys.stderr)
        return 2
    from pipelines.errors import KtlabError

    with tempfile.TemporaryDirectory(prefix="ktlab-vs-optuna-") as scratch:
        try:
            compare(args, load(args, pathlib.Path(scratch) / "0"), pathlib.Path(scratch))
        except KtlabError as error:
            print(f"vs_optuna: {error}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
