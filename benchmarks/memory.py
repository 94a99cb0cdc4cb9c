"""Prints a search's resident memory as its trials go on: does it stay flat?

It runs a test-sized random search (by default 50 trials of one epoch on 160 synthetic
days) through `run_search`, and records the process's resident set size (current, from
`/proc/self/status`) and its peak (`getrusage`) when each trial ends. It prints both at
trial 5 and at the last trial, and their ratio; the goal is a peak within 10% between them.

    python benchmarks/memory.py
    python benchmarks/memory.py --trials 100
"""

from __future__ import annotations

import argparse
import pathlib
import resource
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))

from pipelines import quiet  # noqa: E402  (the repository root must be importable first)

RECORDS: list[tuple[float, float]] = []


def resident_mib() -> float:
    """The process's current resident set size, in MiB (Linux)."""
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_mib() -> float:
    """The process's peak resident set size so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    args = parser.parse_args()
    quiet.import_tensorflow()
    import keras
    from conftest import make_prices, yahoo_csv

    from pipelines.config import load_config
    from pipelines.search import run_search

    class MemoryProbe(keras.callbacks.Callback):
        """Records memory when a trial's training ends (a module-level list: keras-tuner
        copies callbacks for every trial)."""

        def on_train_end(self, logs: dict | None = None) -> None:
            RECORDS.append((resident_mib(), peak_mib()))

    with tempfile.TemporaryDirectory() as scratch:
        data = pathlib.Path(scratch) / "prices.csv"
        data.write_text(yahoo_csv(make_prices(160)))
        config = load_config(overrides={
            "data": {"source": str(data), "lookback": 5, "test_size": 20,
                     "validation_size": 20},
            "model": {"search_space": {"units": [4, 8], "num_layers": [1, 2],
                                       "batch_size": [16, 32]}},
            "tuner": {"name": "random", "max_trials": args.trials, "max_epochs": 1},
            "run": {"output_dir": scratch, "refit": False}})
        run_search(config, callbacks=[MemoryProbe()], verbose=False)
    early, last = RECORDS[min(4, len(RECORDS) - 1)], RECORDS[-1]
    print(f"{len(RECORDS)} trials of one epoch (random search, tiny LSTM, 160 days)")
    print(f"{'':<16} {'RSS MiB':>9} {'peak MiB':>9}")
    print(f"{'after trial 5':<16} {early[0]:>9.1f} {early[1]:>9.1f}")
    print(f"{f'after trial {len(RECORDS)}':<16} {last[0]:>9.1f} {last[1]:>9.1f}")
    print(f"peak ratio last / trial 5: {last[1] / early[1]:.3f} (goal: <= 1.10)")


if __name__ == "__main__":
    main()
