"""Prints a search's resident memory as its trials go on: does it stay flat?

It runs a test-sized random search (by default 50 trials of one epoch on 160 synthetic
days) as `ktlab tune` does, and records, when each trial's training ends, the resident set
size (current, from `/proc/self/status`) and the peak (`getrusage`) of the process that
trained it. It prints both at trial 5 and at the last trial, and the highest peak from
trial 5 on over the peak at trial 5; the goal is within 10%.

With `--workers N` or `--recycle-after K`, the search runs on worker processes with this
one as their chief, as `ktlab tune --workers N --recycle-after K` does
(`pipelines.parallel.local_workers`, `pipelines.parallel.recycling`). It then also prints
the chief's own
memory, how many times the workers were started, and the wall time the restarts cost: the
gap between a worker's last trial in one process and its first in the next, less the
median gap between two trials in one process.

    python benchmarks/memory.py
    python benchmarks/memory.py --trials 100
    python benchmarks/memory.py --workers 1 --recycle-after 10

Linux only (it reads `/proc`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import pathlib
import resource
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))

# The file each trial's process appends its record to; worker processes inherit it.
PROBE_VARIABLE = "KTLAB_MEMORY_PROBE"
# A worker's log holds this once per start (`pipelines.parallel.workers.run_worker`).
WORKER_STARTED = " of the chief at "


def resident_mib(field: str = "VmRSS") -> float:
    """A field of the process's `/proc/self/status`, in MiB (Linux): `VmRSS` is the
    resident set, `RssAnon` its private part (TensorFlow's library pages, `RssFile`, are
    shared by every process that imports it)."""
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_mib() -> float:
    """The process's peak resident set size so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_probe() -> object:
    """The `run.callbacks` factory: a callback that records memory as each trial ends.

    keras-tuner copies the callbacks for every trial, and a worker is another process, so
    each record goes to the end of the file that `$KTLAB_MEMORY_PROBE` names.
    """
    import keras

    class MemoryProbe(keras.callbacks.Callback):
        def on_train_begin(self, logs: dict | None = None) -> None:
            self.began = time.time()

        def on_train_end(self, logs: dict | None = None) -> None:
            record = {"pid": os.getpid(), "began": self.began, "ended": time.time(),
                      "worker": os.environ.get("KERASTUNER_TUNER_ID", "main"),
                      "rss": resident_mib(), "private": resident_mib("RssAnon"),
                      "peak": peak_mib()}
            with open(os.environ[PROBE_VARIABLE], "a", encoding="utf-8") as probe:
                probe.write(json.dumps(record) + "\n")

    return MemoryProbe()


def restart_costs(records: list[dict]) -> tuple[list[float], list[float]]:
    """The gaps between consecutive trials of each worker: across a restart, and not."""
    across, within = [], []
    for worker in {record["worker"] for record in records}:
        mine = sorted((r for r in records if r["worker"] == worker), key=lambda r: r["began"])
        for before, after in itertools.pairwise(mine):
            gap = after["began"] - before["ended"]
            (across if after["pid"] != before["pid"] else within).append(gap)
    return across, within


def _gaps(records: list[dict]) -> list[float]:
    """From the end of each trial's training to the start of the next one's."""
    ordered = sorted(records, key=lambda record: record["began"])
    return [after["began"] - before["ended"] for before, after in itertools.pairwise(ordered)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--recycle-after", type=int, default=0)
    args = parser.parse_args()
    from conftest import make_prices, yahoo_csv

    from pipelines.config import load_config
    from pipelines.parallel.local_workers import run_with_workers

    with tempfile.TemporaryDirectory() as scratch:
        data = pathlib.Path(scratch) / "prices.csv"
        data.write_text(yahoo_csv(make_prices(160)))
        probe = pathlib.Path(scratch) / "memory.jsonl"
        os.environ[PROBE_VARIABLE] = str(probe)
        config = load_config(overrides={
            "data": {"source": str(data), "lookback": 5, "test_size": 20,
                     "validation_size": 20},
            "model": {"search_space": {"units": [4, 8], "num_layers": [1, 2],
                                       "batch_size": [16, 32]}},
            "tuner": {"name": "random", "max_trials": args.trials, "max_epochs": 1},
            "run": {"output_dir": scratch, "run_name": "memory", "refit": False,
                    "workers": args.workers, "recycle_after": args.recycle_after,
                    "callbacks": [f"{pathlib.Path(__file__).resolve()}:make_probe"]}})
        started = time.perf_counter()
        run_with_workers(config, verbose=False)
        wall = time.perf_counter() - started
        records = [json.loads(line) for line in probe.read_text().splitlines()]
        starts = sum(log.read_text().count(WORKER_STARTED)
                     for log in (config.run_dir / "workers").glob("*.log"))
    records.sort(key=lambda record: record["ended"])
    early, last = records[min(4, len(records) - 1)], records[-1]
    highest = max(record["peak"] for record in records[4:] or records)
    in_workers = records[0]["worker"] != "main"
    print(f"{len(records)} trials of one epoch (random search, tiny LSTM, 160 days), "
          + (f"{args.workers} worker process{'es' * (args.workers != 1)}, recycled after "
             f"{args.recycle_after or 'no'} trials" if in_workers else "one process"))
    print(f"{'':<16} {'RSS MiB':>9} {'private':>9} {'peak MiB':>9}   (the process that "
          f"trained it)")
    for name, record in ((f"after trial {min(5, len(records))}", early),
                         (f"after trial {len(records)}", last)):
        print(f"{name:<16} {record['rss']:>9.1f} {record['private']:>9.1f} "
              f"{record['peak']:>9.1f}")
    print(f"highest peak from trial 5 on / peak at trial 5: {highest / early['peak']:.3f} "
          f"(goal: <= 1.10)")
    search_wall = last["ended"] - min(record["began"] for record in records)
    print(f"search wall {search_wall:.1f} s (first trial's training to the last's), "
          f"whole run {wall:.1f} s")
    first, later = records[:10], records[-10:]
    print(f"median trial (training) first 10 / last 10: "
          f"{statistics.median(r['ended'] - r['began'] for r in first):.2f} / "
          f"{statistics.median(r['ended'] - r['began'] for r in later):.2f} s; gap between "
          f"trials: {statistics.median(_gaps(first)):.2f} / "
          f"{statistics.median(_gaps(later)):.2f} s")
    if not in_workers:
        return
    print(f"chief (this process, trains nothing): RSS {resident_mib():.1f} MiB, private "
          f"{resident_mib('RssAnon'):.1f} MiB, peak {peak_mib():.1f} MiB")
    across, within = restart_costs(records)
    usual = statistics.median(within) if within else 0.0
    print(f"worker starts: {starts} ({starts - args.workers} restarts: {len(across)} between "
          f"two trials, the others found no trial left); gap between two trials in one "
          f"process: {usual:.2f} s")
    if across:
        extra = [gap - usual for gap in across]
        print(f"extra wall per restart: median {statistics.median(extra):.2f} s; all "
              f"{starts - args.workers} restarts: about "
              f"{statistics.median(extra) * (starts - args.workers):.1f} s "
              f"({statistics.median(extra) * (starts - args.workers) / search_wall:.0%} of "
              f"the search wall)")


if __name__ == "__main__":
    main()
