"""Prints how much faster N processes train than one on this machine: the most `--workers N`
can gain over the search itself.

Each process builds the default configuration's model (configs/default.toml: the LSTM on
the bundled data, with each hyperparameter at its default) and times `--epochs` epochs;
the median epoch after the first is its steady epoch. It runs one process alone, then N
at once, each with the thread limits `ktlab tune --workers N` gives its workers
(`pipelines.parallel.local_workers.threads_per_worker`). The throughput gain is N × the
lone steady epoch / the mean steady epoch of the N together: 2.0 would mean the N
processes never slow each other down. `--workers N` gains less over the whole command: each
worker also traces its own models, and start-up and the steps after the search stay
serial (docs/performance.md).

    python benchmarks/concurrent_epochs.py
    python benchmarks/concurrent_epochs.py --processes 4 --epochs 5

docs/performance.md quotes its output with the date and machine.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import time

from overhead import ROOT, machine  # this folder is on sys.path when a benchmark runs

THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")


def steady_epoch(epochs: int) -> float:
    """Trains the default configuration's model for `epochs` epochs in this process; the
    median epoch after the first, in seconds."""
    sys.path.insert(0, str(ROOT))
    from pipelines.run import quiet

    quiet.import_tensorflow()
    import keras_tuner

    import hypermodels
    from pipelines.config import load_config
    from pipelines.run.build import make_hypermodel, make_pipeline

    config = load_config(str(ROOT / "configs" / "default.toml"))
    prepared = make_pipeline(config).prepare()
    hypermodel = make_hypermodel(config, prepared)
    model = hypermodel.build(keras_tuner.HyperParameters())
    data = hypermodels.fit_data(hypermodel, prepared)
    seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        model.fit(data["x"], validation_data=data["validation_data"], epochs=1, verbose=0)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds[1:])


def run_together(processes: int, threads: int | None, epochs: int) -> list[float]:
    """Starts `processes` copies of this script's `--child` at once, each limited to
    `threads` (None: TensorFlow's default, every core); their steady epochs."""
    environment = dict(os.environ)
    if threads is not None:
        environment.update({name: str(threads) for name in THREAD_VARIABLES})
    children = [subprocess.Popen([sys.executable, __file__, "--child", "--epochs", str(epochs)],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                 env=environment, cwd=ROOT)
                for _ in range(processes)]
    return [float(child.communicate()[0].strip().splitlines()[-1]) for child in children]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2, help="processes at once (2)")
    parser.add_argument("--epochs", type=int, default=8, help="epochs per process (8)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="rounds of the three runs, back to back (3)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(steady_epoch(args.epochs))
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = max(1, (cores or 1) // args.processes)
    print(f"{datetime.date.today()}, {machine()}; the default model, {args.epochs} epochs "
          f"per process, medians of {args.repeats} rounds")
    runs: dict[str, list[float]] = {"alone, every core": [], f"alone, {threads} thread(s)": [],
                                    f"{args.processes} at once, {threads} thread(s) each": []}
    for _ in range(args.repeats):
        for values, (count, limit) in zip(
                runs.values(), ((1, None), (1, threads), (args.processes, threads)), strict=True):
            values.append(statistics.mean(run_together(count, limit, args.epochs)))
    medians = {label: statistics.median(values) for label, values in runs.items()}
    for label, values in runs.items():
        print(f"  {label:<28} steady epoch {medians[label]:.3f} s  ("
              + ", ".join(f"{value:.3f}" for value in values) + ")")
    every, *_, together = medians.values()
    print(f"throughput of {args.processes} processes against one on every core: "
          f"{args.processes * every / together:.2f}x (the most --workers {args.processes} can "
          f"gain over the search)")


if __name__ == "__main__":
    main()
