"""Prints how much of a search's wall time goes to training, for ktlab and keras-tuner.

It runs the default search (or the one a config file describes) through ktlab's
`run_search`, then keras-tuner's own tuner (`kt.Hyperband` for the default) on the same
hypermodel and the same data, in one process and in that order (`--plain-first`
reverses it), and prints a row for each. The data is prepared once and given to both;
neither run refits or evaluates on the test split inside the timed part, and both stop a
trial early with the same patience.

ktlab's figures come from the run directory's `histories.jsonl` (`tuners.results.records`);
keras-tuner's from a subclass of its tuner that notes the time in the same hooks
(`run_trial`, `on_epoch_begin`, `on_epoch_end`, `on_trial_end`) that ktlab's recorder
uses, so the two are measured at the same points.

The order matters on TensorFlow: each trial leaves its traced graphs alive, and each
garbage collection takes longer the more objects there are; `--plain-first` runs
keras-tuner first, to see how much of a difference is the order's.

    python benchmarks/overhead.py
    python benchmarks/overhead.py --backend jax
    python benchmarks/overhead.py --max-epochs 3 --factor 3     # a quick check
    python benchmarks/overhead.py --config configs/my_run.toml --seed 7
    python benchmarks/overhead.py --plain-first

The columns: trials and epochs run; wall s, from the first trial's start to the last
one's end; steady epoch s, the median epoch that is not its trial's first; steady compute
s, epochs x steady epoch; wall/steady (1.00 would mean no overhead); first-epoch excess s,
the median first epoch less a steady one; between trials s, the median gap between trials.

docs/performance.md quotes this script's output with its date and machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.util
import json
import math
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_CONFIG = ROOT / "configs" / "default.toml"
BACKENDS = ("tensorflow", "jax")
# keras-tuner's own tuner for each of ktlab's strategies that keras-tuner also has.
PLAIN_TUNERS = {
    "hyperband": "Hyperband",
    "random": "RandomSearch",
    "bayesian": "BayesianOptimization",
    "grid": "GridSearch",
}
COLUMNS = [
    ("tuner", 12), ("trials", 7), ("epochs", 7), ("wall s", 9), ("steady epoch s", 15),
    ("steady compute s", 17), ("wall/steady", 12), ("first-epoch excess s", 21),
    ("between trials s", 17),
]


@dataclasses.dataclass
class Timings:
    """When one search's trials and epochs ran, in seconds.

    Attributes:
        trials: The `(start, end)` of each trial, in the order the trials started; the
            times of one search share one clock.
        trial_epoch_seconds: The seconds of each trial's epochs together, in the same
            order.
        first_epochs: The duration of the first epoch of each training run (one per
            trial and execution).
        later_epochs: The duration of every other epoch.
        total: The seconds of the whole call that ran the search, set-up included.
    """

    trials: list[tuple[float, float]] = dataclasses.field(default_factory=list)
    trial_epoch_seconds: list[float] = dataclasses.field(default_factory=list)
    first_epochs: list[float] = dataclasses.field(default_factory=list)
    later_epochs: list[float] = dataclasses.field(default_factory=list)
    total: float = math.nan

    @property
    def epochs(self) -> int:
        """The number of epochs trained."""
        return len(self.first_epochs) + len(self.later_epochs)


def median(values: list[float]) -> float:
    """The median of `values`, or NaN when there are none."""
    return statistics.median(values) if values else math.nan


def summarise(timings: Timings) -> dict[str, float]:
    """The table's figures for one search (see the module's docstring)."""
    starts = [start for start, _ in timings.trials]
    ends = [end for _, end in timings.trials]
    wall = max(ends) - min(starts) if timings.trials else math.nan
    steady = median(timings.later_epochs)
    compute = timings.epochs * steady
    gaps = [following[0] - current[1]
            for current, following in zip(timings.trials, timings.trials[1:], strict=False)]
    outside_epochs = [end - start - seconds for (start, end), seconds
                      in zip(timings.trials, timings.trial_epoch_seconds, strict=True)]
    return {
        "trials": len(timings.trials),
        "epochs": timings.epochs,
        "wall": wall,
        "steady": steady,
        "compute": compute,
        "ratio": wall / compute if compute > 0 else math.nan,
        "excess": median(timings.first_epochs) - steady,
        "between": median(gaps),
        "outside_epochs": median(outside_epochs),
        "total": timings.total,
    }


def read_ktlab_timings(run_dir: pathlib.Path) -> Timings:
    """Reads a finished ktlab search's trial and epoch times from its run directory.

    A `trial_start` record holds the wall-clock time the trial started and its
    `trial_end` the trial's duration, so a trial ends at their sum.
    """
    import tuners

    timings = Timings()
    histories = tuners.load_histories(run_dir)
    # The first epoch of a training run is the lowest one recorded for it: a trial that
    # Hyperband promoted starts at its parent's last epoch, not at 0.
    first_epoch = histories.groupby(["trial_id", "execution"])["epoch"].transform("min")
    is_first = histories["epoch"] == first_epoch
    timings.first_epochs = [float(value) for value in histories.loc[is_first, "seconds"]]
    timings.later_epochs = [float(value) for value in histories.loc[~is_first, "seconds"]]
    epoch_seconds = histories.groupby("trial_id")["seconds"].sum()

    records = [json.loads(line) for line in
               (run_dir / "histories.jsonl").read_text(encoding="utf-8").splitlines()
               if line.strip()]
    starts: dict[str, float] = {}
    for record in records:
        if record.get("event") == "trial_start":
            starts[record["trial_id"]] = datetime.datetime.fromisoformat(
                record["time"]).timestamp()
        elif record.get("event") == "trial_end" and record["trial_id"] in starts:
            trial_id = record["trial_id"]
            start = starts[trial_id]
            timings.trials.append((start, start + float(record["seconds"])))
            timings.trial_epoch_seconds.append(float(epoch_seconds.get(trial_id, 0.0)))
    return timings


def timed_tuner_class(base: type) -> type:
    """A subclass of the keras-tuner tuner `base` that notes when trials and epochs run.

    keras-tuner deep-copies the callbacks given to `search()` for every trial, so the
    times are noted in the tuner's own hooks, which see every trial, and kept on the
    tuner. The hooks are those where ktlab's recorder notes its times.
    """

    class TimedTuner(base):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.timings = Timings()
            self._epoch_started: float | None = None
            self._first_of_run = True
            super().__init__(*args, **kwargs)

        def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
            self.timings.trials.append((time.perf_counter(), math.nan))
            self.timings.trial_epoch_seconds.append(0.0)
            return super().run_trial(trial, *args, **kwargs)

        def build_and_fit(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
            # keras-tuner calls this once per execution (`tuners.keras_tuner_internals`): a
            # new model, whose first epoch pays for tracing again.
            self._first_of_run = True
            return super().build_and_fit(trial, *args, **kwargs)

        def on_epoch_begin(self, trial: Any, model: Any, epoch: int,
                           logs: dict | None = None) -> None:
            self._epoch_started = time.perf_counter()
            super().on_epoch_begin(trial, model, epoch, logs=logs)

        def on_epoch_end(self, trial: Any, model: Any, epoch: int,
                         logs: dict | None = None) -> None:
            if self._epoch_started is not None:
                seconds = time.perf_counter() - self._epoch_started
                if self._first_of_run:
                    self.timings.first_epochs.append(seconds)
                else:
                    self.timings.later_epochs.append(seconds)
                self._first_of_run = False
                self.timings.trial_epoch_seconds[-1] += seconds
            super().on_epoch_end(trial, model, epoch, logs=logs)

        def on_trial_end(self, trial: Any) -> None:
            super().on_trial_end(trial)
            if self.timings.trials:
                start, _ = self.timings.trials[-1]
                self.timings.trials[-1] = (start, time.perf_counter())

    TimedTuner.__name__ = TimedTuner.__qualname__ = f"Timed{base.__name__}"
    return TimedTuner


def run_ktlab(config: Any, prepared: Any) -> Timings:
    """Runs ktlab's search of `config` on `prepared` and returns its times."""
    import keras

    from pipelines.recipe import run_search

    keras.utils.set_random_seed(config.run.seed)
    started = time.perf_counter()
    result = run_search(config, verbose=False, prepared=prepared)
    total = time.perf_counter() - started
    timings = read_ktlab_timings(pathlib.Path(result.run_dir))
    timings.total = total
    return timings


def run_plain(config: Any, prepared: Any, directory: pathlib.Path) -> Timings:
    """Runs keras-tuner's own tuner on the same hypermodel and data; returns its times."""
    import keras
    import keras_tuner

    import hypermodels
    from pipelines.run.build import make_hypermodel

    tuner_config = config.tuner
    keras.utils.set_random_seed(config.run.seed)
    started = time.perf_counter()
    hypermodel = make_hypermodel(config, prepared)
    arguments: dict[str, Any] = {
        "objective": keras_tuner.Objective(tuner_config.objective, config.direction),
        "seed": config.run.seed,
        "executions_per_trial": tuner_config.executions_per_trial,
        "max_consecutive_failed_trials": tuner_config.max_consecutive_failed_trials,
        "directory": str(directory),
        "project_name": "plain",
        "overwrite": True,
    }
    if tuner_config.name == "hyperband":
        arguments.update(max_epochs=tuner_config.max_epochs, factor=tuner_config.factor,
                         hyperband_iterations=tuner_config.hyperband_iterations)
    else:
        arguments["max_trials"] = tuner_config.max_trials
    base = getattr(keras_tuner, PLAIN_TUNERS[tuner_config.name])
    tuner = timed_tuner_class(base)(hypermodel, **arguments)
    # ktlab's own early stopping, so that both searches train comparable epochs.
    stopping = keras.callbacks.EarlyStopping(monitor=tuner_config.objective,
                                             patience=tuner_config.patience,
                                             mode=config.direction)
    tuner.search(**hypermodels.fit_data(hypermodel, prepared), epochs=tuner_config.max_epochs,
                 callbacks=[stopping], shuffle=False, verbose=0)
    tuner.timings.total = time.perf_counter() - started
    return tuner.timings


def machine() -> str:
    """The processor's name and the number of cores."""
    cpuinfo = pathlib.Path("/proc/cpuinfo")
    lines = cpuinfo.read_text(encoding="utf-8").splitlines() if cpuinfo.exists() else []
    names = [line.partition(":")[2].strip() for line in lines if line.startswith("model name")]
    name = (names or [platform.processor() or platform.machine() or "unknown processor"])[0]
    return f"{name}, {os.cpu_count()} cores"


def format_value(value: float, width: int, digits: int = 2) -> str:
    """A number right-aligned in `width` characters; n/a for NaN."""
    if isinstance(value, int):
        return f"{value:>{width}d}"
    if math.isnan(value):
        return f"{'n/a':>{width}}"
    return f"{value:>{width}.{digits}f}"


def print_table(rows: dict[str, dict[str, float]]) -> None:
    """Prints one row per tuner, with the columns of the module's docstring."""
    print(" ".join(f"{name:<{width}}" if index == 0 else f"{name:>{width}}"
                   for index, (name, width) in enumerate(COLUMNS)))
    keys = ["trials", "epochs", "wall", "steady", "compute", "ratio", "excess", "between"]
    for tuner, row in rows.items():
        cells = [f"{tuner:<{COLUMNS[0][1]}}"]
        for key, (_, width) in zip(keys, COLUMNS[1:], strict=True):
            digits = 3 if key in ("steady", "excess", "between") else 2
            cells.append(format_value(row[key], width, digits))
        print(" ".join(cells))


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """Reads the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(DEFAULT_CONFIG),
                        help="a ktlab config file (default: configs/default.toml)")
    parser.add_argument("--max-epochs", type=int, help="tuner.max_epochs")
    parser.add_argument("--factor", type=int, help="tuner.factor")
    parser.add_argument("--seed", type=int, help="run.seed")
    parser.add_argument("--plain-first", action="store_true",
                        help="run keras-tuner's search first, then ktlab's")
    parser.add_argument("--backend", choices=BACKENDS,
                        help="the Keras backend (default: KERAS_BACKEND, else tensorflow)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Runs both searches and prints the table; returns the exit status."""
    args = parse_arguments(argv)
    # Keras reads the backend when it is first imported, so it is set before any import.
    if args.backend is not None:
        os.environ["KERAS_BACKEND"] = args.backend
    if os.environ.get("KERAS_BACKEND") == "jax" and importlib.util.find_spec("jax") is None:
        print('overhead: jax is not installed; install it with pip install -e ".[jax]"',
              file=sys.stderr)
        return 2

    from pipelines.run import quiet

    quiet.import_tensorflow()
    import keras
    import keras_tuner
    import tensorflow as tf

    from pipelines.config import load_config
    from pipelines.errors import KtlabError
    from pipelines.run.build import make_pipeline
    from pipelines.run.search import quiet_known_warnings

    # ktlab's search hides warnings that repeat every trial; they are hidden for both
    # searches, whichever runs first.
    quiet_known_warnings()

    with tempfile.TemporaryDirectory(prefix="ktlab-overhead-") as scratch:
        scratch_dir = pathlib.Path(scratch)
        overrides: dict[str, dict[str, Any]] = {
            "tuner": {}, "run": {"output_dir": str(scratch_dir / "runs"), "refit": False}}
        if args.max_epochs is not None:
            overrides["tuner"]["max_epochs"] = args.max_epochs
        if args.factor is not None:
            overrides["tuner"]["factor"] = args.factor
        if args.seed is not None:
            overrides["run"]["seed"] = args.seed
        try:
            config = load_config(args.config, overrides)
            if config.tuner.name not in PLAIN_TUNERS:
                print(f"overhead: keras-tuner has no {config.tuner.name} tuner to compare with; "
                      f"use one of {', '.join(PLAIN_TUNERS)}", file=sys.stderr)
                return 2
            if config.tuner.validation != "holdout":
                print("overhead: keras-tuner's own tuners validate on a holdout split only; "
                      "set tuner.validation = \"holdout\"", file=sys.stderr)
                return 2
            prepared = make_pipeline(config).prepare()
        except KtlabError as error:
            print(f"overhead: {error}", file=sys.stderr)
            return 2

        tuner = config.tuner
        backend = keras.backend.backend()
        if backend == "jax":
            import jax

            backend = f"jax {jax.__version__}"
        print(f"{datetime.date.today()}, {machine()}; backend {backend}; "
              f"TensorFlow {tf.__version__}, Keras {keras.__version__}, keras-tuner "
              f"{keras_tuner.__version__}")
        print(f"config: {pathlib.Path(args.config).name}, {tuner.name} tuner, max_epochs "
              f"{tuner.max_epochs}, factor {tuner.factor}, seed {config.run.seed}, patience "
              f"{tuner.patience}; {config.model_label} model on {prepared.description}")
        runs = {"ktlab": lambda: run_ktlab(config, prepared),
                "keras-tuner": lambda: run_plain(config, prepared, scratch_dir / "plain")}
        order = ["keras-tuner", "ktlab"] if args.plain_first else ["ktlab", "keras-tuner"]
        print(f"order: {order[0]} first, then {order[1]}, in one process", flush=True)
        summaries = {name: summarise(runs[name]()) for name in order}
        rows = {name: summaries[name] for name in ("ktlab", "keras-tuner")}

    print()
    print_table(rows)
    print()
    ktlab, plain = rows["ktlab"], rows["keras-tuner"]
    print(f"ktlab wall / keras-tuner wall: {ktlab['wall'] / plain['wall']:.2f}")
    # Where the rest of the wall time goes: inside a trial but outside its epochs (model
    # building, checkpoints, the oracle's bookkeeping), and the whole call around the
    # trials (ktlab's checks, run directory and artifacts; keras-tuner's tuner set-up).
    print(f"per trial outside its epochs (median): ktlab {ktlab['outside_epochs']:.3f} s, "
          f"keras-tuner {plain['outside_epochs']:.3f} s")
    print(f"whole call, set-up and artifacts included: ktlab run_search "
          f"{ktlab['total']:.1f} s, keras-tuner {plain['total']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
