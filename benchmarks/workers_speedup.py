"""Prints how much faster `ktlab tune --workers 2` ends the default search than `--workers 1`.

It runs `ktlab tune --workers N --no-refit` for each N, back to back (by default 1 then
2, twice, alternating, so that a change in the machine's load falls on both), and
prints for every run: trials, epochs trained, the command's wall time (start-up, data,
the search, writing the results), the search span (from the first trial's start to the
last trial's end, on any worker: `workers_idle.read_run`; `--workers 1` searches in the
command's own process, as without the flag), and the speed-up of each
N over N = 1 in the same pair, by wall time and by span.

    python benchmarks/workers_speedup.py
    python benchmarks/workers_speedup.py --workers 1,2 --repeats 3
    python benchmarks/workers_speedup.py --max-epochs 3 --factor 3     # a quick check
    python benchmarks/workers_speedup.py --tuner asha

docs/parallel.md and docs/performance.md quote its output with the date and machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import tempfile

from overhead import machine  # this folder is on sys.path when a benchmark runs
from workers_idle import (
    DEFAULT_CONFIG,
    WORKER_FILE_PREFIX,
    Run,
    load_average,
    read_run,
    read_worker,
    run_ktlab_tune,
)


@dataclasses.dataclass
class Measured:
    """One `ktlab tune --workers N` run."""

    workers: int
    repeat: int
    run: Run

    @property
    def trials(self) -> int:
        return len(self.run.trials)


def run_search(workers: int, repeat: int, args: argparse.Namespace,
               output_dir: pathlib.Path) -> Measured:
    """Runs one search with `workers` worker processes and reads its run directory."""
    run_dir = output_dir / f"workers-{workers}-{repeat}"
    wall, load_before = run_ktlab_tune(args.tuner, workers, args, run_dir, "workers_speedup")
    if any(run_dir.glob(f"{WORKER_FILE_PREFIX}*.jsonl")):
        trials_by_worker = read_run(run_dir)
    else:  # `--workers 1` searches in the command's own process
        trials_by_worker = {"main": read_worker(run_dir / "histories.jsonl")}
    return Measured(workers, repeat,
                    Run(args.tuner, trials_by_worker, wall, load_before, load_average()))


def print_table(runs: list[Measured]) -> None:
    """One row per run, then each N's speed-up over N = 1 in the same repeat."""
    print(f"{'repeat':>6} {'workers':>7} {'trials':>6} {'epochs':>6} {'wall s':>8} "
          f"{'span s':>8} {'wall x':>7} {'span x':>7}  load before")
    base = {measured.repeat: measured.run for measured in runs if measured.workers == 1}
    for measured in runs:
        run, one = measured.run, base.get(measured.repeat)
        wall_x = f"{one.wall / run.wall:.2f}" if one else "n/a"
        span_x = f"{one.span / run.span:.2f}" if one else "n/a"
        print(f"{measured.repeat:>6} {measured.workers:>7} {measured.trials:>6} "
              f"{run.epochs:>6} {run.wall:>8.1f} {run.span:>8.1f} {wall_x:>7} {span_x:>7}  "
              f"{run.load_before}")


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """Reads the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="worker counts, in order (1,2)")
    parser.add_argument("--repeats", type=int, default=2, help="rounds of all counts (2)")
    parser.add_argument("--tuner", default="hyperband", help="tuner.name (hyperband)")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG),
                        help="a config file (configs/default.toml)")
    parser.add_argument("--max-epochs", type=int, help="tuner.max_epochs")
    parser.add_argument("--factor", type=int, help="tuner.factor")
    parser.add_argument("--seed", type=int, help="run.seed")
    args = parser.parse_args(argv)
    try:
        args.worker_counts = [int(count) for count in args.workers.split(",")]
    except ValueError:
        parser.error(f"--workers takes whole numbers separated by commas, got {args.workers!r}")
    if any(count < 1 for count in args.worker_counts) or args.repeats < 1:
        parser.error("--workers counts and --repeats must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv)
    print(machine())
    print(f"config: {pathlib.Path(args.config).name}, {args.tuner} tuner, ktlab tune "
          f"--workers N --no-refit, back to back")
    runs = []
    with tempfile.TemporaryDirectory(prefix="ktlab-workers-") as output_dir:
        for repeat in range(1, args.repeats + 1):
            for workers in args.worker_counts:
                runs.append(run_search(workers, repeat, args, pathlib.Path(output_dir)))
    print()
    print_table(runs)


if __name__ == "__main__":
    main()
