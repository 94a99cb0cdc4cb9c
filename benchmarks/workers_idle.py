"""Prints how long each local worker waits, for Hyperband and ASHA with `--workers 2`.

Hyperband's rounds are synchronous: a round's survivors are known only when its last
trial ends, so with several workers the others wait for the slowest (the oracle answers
"idle"), and at the end of each bracket only one configuration may be left to train.
ASHA (`tuners/oracles/asha.py`) promotes from the results so far and otherwise starts a
new configuration, so a worker never waits for a rung to fill. This script runs
`ktlab tune --workers N --no-refit` once per tuner, one after the other on the same
settings (default: the bundled data, max_epochs 9, factor 3, both tuners held to
Hyperband's 75 epochs), and reads each worker's `histories-worker-K.jsonl`
(`tuners/results/records.py` describes the records).

    python benchmarks/workers_idle.py
    python benchmarks/workers_idle.py --tuners asha,hyperband       # the other order
    python benchmarks/workers_idle.py --max-epochs 3 --factor 3     # a quick check
    python benchmarks/workers_idle.py --keep runs/idle                # keep the run dirs
    python benchmarks/workers_idle.py --read runs/idle                # their table again

A trial's span runs from its `trial_start` record's wall-clock `time` for its
`trial_end` record's `seconds`: model building, training, checkpoints and reporting the
score. The columns, per worker and for the run (`all`):

- trials, epochs: trials run and epochs trained (`epochs_trained`: every execution's).
- busy s: the sum of the worker's trial spans.
- idle s: the search span minus busy s: waiting for the oracle (Hyperband's "idle"
  answers), asking it for a trial, and the time before a worker's first trial or after
  its last while another worker still trains. For `all`, the sum over workers.
- idle %: idle s / span s (for `all`, over the workers' spans together).
- tail s: the part of idle s after the worker's last trial, while another worker still
  trains (keras-tuner's Hyperband starts a new bracket rather than wait for a round to
  fill, so its waits come at the end, once the last bracket has started).
- span s: from the first trial's start, on any worker, to the last trial's end.
- wall s: the `ktlab tune` command's wall time (start-up, data, writing the results);
  n/a with `--read`.
- s/epoch: span s / epochs of the run, printed when the tuners trained different
  numbers of epochs (early stopping ends some trials before their budget).
- to N epochs s: from the first trial's start to when the run's N-th epoch ended, N the
  fewest epochs any of the runs trained. An epoch's end is its trial's start plus the
  trial's time outside its epochs plus its own and its earlier epochs' `seconds` (the
  records hold no wall-clock time per epoch, so that time is put before the first epoch:
  an upper bound, by at most one trial's overhead).

The machine's load average (`/proc/loadavg`) is printed before and after each run: other
processes on the cores lengthen both tuners' trials, but not necessarily alike.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import pathlib
import subprocess
import sys
import tempfile
import time

from overhead import machine  # this folder is on sys.path when a benchmark runs

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "configs" / "default.toml"
WORKER_FILE_PREFIX = "histories-"
COLUMNS = [("tuner", 10), ("worker", 9), ("trials", 7), ("epochs", 7), ("busy s", 8),
           ("idle s", 8), ("idle %", 7), ("tail s", 7), ("span s", 8), ("wall s", 8)]


@dataclasses.dataclass
class Trial:
    """One trial's span on one worker and the durations of its epochs."""

    start: float
    seconds: float
    epoch_seconds: list[float]
    epochs_trained: int

    @property
    def end(self) -> float:
        return self.start + self.seconds


@dataclasses.dataclass
class Run:
    """The trials of one search, by worker, and the command's wall time."""

    tuner: str
    workers: dict[str, list[Trial]]
    wall: float | None
    load_before: str
    load_after: str

    @property
    def trials(self) -> list[Trial]:
        return [trial for trials in self.workers.values() for trial in trials]

    @property
    def first_start(self) -> float:
        return min(trial.start for trial in self.trials)

    @property
    def span(self) -> float:
        return max(trial.end for trial in self.trials) - self.first_start

    @property
    def epochs(self) -> int:
        return sum(trial.epochs_trained for trial in self.trials)

    def epoch_ends(self) -> list[float]:
        """When each epoch ended, in seconds from the first trial's start, sorted."""
        ends = []
        for trial in self.trials:
            clock = trial.start + max(trial.seconds - sum(trial.epoch_seconds), 0.0)
            for seconds in trial.epoch_seconds:
                clock += seconds
                ends.append(clock - self.first_start)
        return sorted(ends)


def read_worker(path: pathlib.Path) -> list[Trial]:
    """The finished trials of one worker's `histories-<tuner_id>.jsonl`.

    A trial counts from its last `trial_start` (an attempt that a resumed search
    superseded is left out), and only when a `trial_end` follows it.
    """
    starts: dict[str, dict] = {}
    epochs: dict[str, list[float]] = {}
    ends: dict[str, dict] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        trial_id = record.get("trial_id")
        event = record.get("event")
        if event == "trial_start":
            starts[trial_id] = record
            epochs[trial_id] = []
            ends.pop(trial_id, None)
        elif event == "epoch" and trial_id in epochs:
            epochs[trial_id].append(float(record.get("seconds") or 0.0))
        elif event == "trial_end" and trial_id in starts:
            ends[trial_id] = record
    trials = []
    for trial_id, end in ends.items():
        start = datetime.datetime.fromisoformat(starts[trial_id]["time"]).timestamp()
        trained = end.get("epochs_trained", end.get("epochs")) or len(epochs[trial_id])
        trials.append(Trial(start, float(end["seconds"]), epochs[trial_id], int(trained)))
    return sorted(trials, key=lambda trial: trial.start)


def read_run(run_dir: pathlib.Path) -> dict[str, list[Trial]]:
    """`{worker name: trials}` from a run directory's per-worker histories files."""
    workers = {}
    for path in sorted(run_dir.glob(f"{WORKER_FILE_PREFIX}*.jsonl")):
        workers[path.stem[len(WORKER_FILE_PREFIX):]] = read_worker(path)
    if not workers:
        raise SystemExit(f"workers_idle: no {WORKER_FILE_PREFIX}*.jsonl in {run_dir}; was "
                         f"the search run with --workers 2 or more?")
    return workers


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages, or n/a where /proc is not there."""
    try:
        return " ".join(pathlib.Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def run_ktlab_tune(tuner: str, workers: int, args: argparse.Namespace,
                   run_dir: pathlib.Path, caller: str) -> tuple[float, str]:
    """Runs `ktlab tune --workers N --no-refit` into `run_dir`; its wall time and the load
    average before it. `args` gives `config`, `max_epochs`, `factor` and `seed`."""
    command = [sys.executable, "-m", "pipelines", "tune", "--quiet", "--config", args.config,
               "--tuner", tuner, "--workers", str(workers), "--no-refit",
               "--output-dir", str(run_dir.parent), "--run-name", run_dir.name, "--overwrite"]
    for flag, value in (("--max-epochs", args.max_epochs), ("--factor", args.factor),
                        ("--seed", args.seed)):
        if value is not None:
            command += [flag, str(value)]
    load_before = load_average()
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-5:]
        raise SystemExit(f"{caller}: ktlab tune --tuner {tuner} --workers {workers} exited "
                         f"with {completed.returncode}:\n" + "\n".join(tail))
    return wall, load_before


def run_tuner(tuner: str, args: argparse.Namespace, output_dir: pathlib.Path) -> Run:
    """Runs one `ktlab tune --workers N` search and reads its run directory."""
    run_dir = output_dir / f"workers-idle-{tuner}"
    wall, load_before = run_ktlab_tune(tuner, args.workers, args, run_dir, "workers_idle")
    return Run(tuner, read_run(run_dir), wall, load_before, load_average())


def worker_rows(run: Run) -> list[dict]:
    """One row per worker, then the run's (`all`)."""
    span = run.span
    search_end = run.first_start + span
    rows = []
    for name, trials in run.workers.items():
        busy = sum(trial.seconds for trial in trials)
        rows.append({"worker": name, "trials": len(trials),
                     "epochs": sum(trial.epochs_trained for trial in trials), "busy": busy,
                     "idle": span - busy, "idle_fraction": (span - busy) / span,
                     "tail": search_end - max(trial.end for trial in trials)})
    busy = sum(row["busy"] for row in rows)
    idle = sum(row["idle"] for row in rows)
    rows.append({"worker": "all", "trials": len(run.trials), "epochs": run.epochs,
                 "busy": busy, "idle": idle, "idle_fraction": idle / (span * len(rows)),
                 "tail": sum(row["tail"] for row in rows)})
    return rows


def print_table(runs: list[Run]) -> None:
    """Prints the per-worker table of the module's docstring, then the comparison."""
    print(" ".join(f"{name:<{width}}" if index < 2 else f"{name:>{width}}"
                   for index, (name, width) in enumerate(COLUMNS)))
    for run in runs:
        for row in worker_rows(run):
            cells = [run.tuner, row["worker"], row["trials"], row["epochs"],
                     f"{row['busy']:.1f}", f"{row['idle']:.1f}",
                     f"{100 * row['idle_fraction']:.1f}", f"{row['tail']:.1f}",
                     f"{run.span:.1f}", "n/a" if run.wall is None else f"{run.wall:.1f}"]
            print(" ".join(f"{cell:<{width}}" if index < 2 else f"{cell:>{width}}"
                           for index, (cell, (_, width)) in enumerate(zip(cells, COLUMNS,
                                                                             strict=True))))
    print()
    fewest = min(run.epochs for run in runs)
    if len({run.epochs for run in runs}) > 1:
        for run in runs:
            print(f"{run.tuner}: {run.epochs} epochs in {run.span:.1f} s of search span, "
                  f"{run.span / run.epochs:.3f} s/epoch")
    for run in runs:
        print(f"{run.tuner}: to {fewest} epochs {run.epoch_ends()[fewest - 1]:.1f} s from the "
              f"first trial's start")


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """Reads the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tuners", default="hyperband,asha",
                        help="epoch-budget tuners to run, in this order (hyperband,asha)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG),
                        help="a ktlab config file (default: configs/default.toml)")
    parser.add_argument("--max-epochs", type=int, help="tuner.max_epochs")
    parser.add_argument("--factor", type=int, help="tuner.factor")
    parser.add_argument("--seed", type=int, help="run.seed")
    parser.add_argument("--keep", metavar="DIR",
                        help="write the run directories here instead of a temporary folder")
    parser.add_argument("--read", metavar="DIR",
                        help="run nothing: print the table of the run directories that "
                             "--keep DIR left (workers-idle-TUNER)")
    args = parser.parse_args(argv)
    if args.workers < 2:
        parser.error("--workers must be 2 or more: one worker never waits for another")
    return args


def main(argv: list[str] | None = None) -> int:
    """Runs the searches one after the other and prints the table."""
    args = parse_arguments(argv)
    tuners = [name.strip() for name in args.tuners.split(",") if name.strip()]
    if args.read:
        folder = pathlib.Path(args.read)
        print_table([Run(tuner, read_run(folder / f"workers-idle-{tuner}"), None, "n/a", "n/a")
                     for tuner in tuners])
        return 0
    print(f"{datetime.date.today()}, {machine()}; ktlab tune --workers {args.workers} "
          f"--no-refit, config {pathlib.Path(args.config).name}, tuners in this order: "
          f"{', '.join(tuners)}", flush=True)
    with tempfile.TemporaryDirectory(prefix="ktlab-workers-idle-") as scratch:
        output_dir = pathlib.Path(args.keep).resolve() if args.keep else pathlib.Path(scratch)
        runs = []
        for tuner in tuners:
            run = run_tuner(tuner, args, output_dir)
            print(f"{tuner}: load average {run.load_before} before, {run.load_after} after",
                  flush=True)
            runs.append(run)
    print()
    print_table(runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
