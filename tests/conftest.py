"""Shared fixtures: tiny real data, written where each test can see it."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def make_prices(days: int = 160, seed: int = 0, start: str = "2020-01-01") -> pd.DataFrame:
    """A positive random-walk price series on business days, as the loaders return it."""
    rng = np.random.default_rng(seed)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.01, days)))
    dates = pd.bdate_range(start, periods=days, name="date")
    return pd.DataFrame({
        "open": close * (1 + rng.normal(0, 0.002, days)),
        "high": close * 1.01,
        "low": close * 0.99,
        "close": close,
        "volume": rng.integers(1_000, 5_000, days).astype("float64"),
    }, index=dates)


@pytest.fixture
def prices() -> pd.DataFrame:
    return make_prices()


@pytest.fixture
def write_csv(tmp_path: pathlib.Path):
    """Writes text to a CSV file under tmp_path and returns its path."""

    def write(text: str, name: str = "prices.csv") -> pathlib.Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


# Two LSTM structures of a few units: the search space of the multi-process tests.
TINY_SPACE = '{"units": [4, 8], "num_layers": [1, 1], "batch_size": [16]}'


@pytest.fixture
def tiny_search_flags(tmp_path: pathlib.Path) -> list[str]:
    """Flags for seconds-long LSTM trials on 160 days written as a Yahoo CSV, with their
    runs in `tmp_path/runs`: the set-up of the resume, worker and distributed tests."""
    path = tmp_path / "prices.csv"
    path.write_text(yahoo_csv(make_prices(160)))
    return ["--data", str(path), "--lookback", "5", "--test-size", "20",
            "--validation-size", "20", "--output-dir", str(tmp_path / "runs"),
            "--search-space", TINY_SPACE]


def read_records(path: pathlib.Path) -> list[dict]:
    """The complete records of a histories file; a line being written, or left half
    written by a killed writer, is left out."""
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


# A stand-in worker process that reaches the chief at {address}, writes a crash to its
# log {log} in the run directory and exits with 3: a worker that died mid-search.
CRASHING_WORKER = r"""
import pathlib, socket, sys, time
host, port = {address!r}.split(":")
while True:
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
        break
    except OSError:
        time.sleep(0.05)
log = pathlib.Path({log!r})
log.parent.mkdir(parents=True, exist_ok=True)
with open(log, "a") as handle:
    handle.write("Traceback (most recent call last):\nMemoryError: out of memory\n")
sys.exit(3)
"""


def use_stand_in_workers(monkeypatch, worker_one: Callable[[Any], str],
                         others: str = "import time; time.sleep(600)") -> list:
    """Makes `ktlab tune --workers N` start stand-ins: `python -c worker_one(distribution)`
    as worker-1 and `python -c others` as the rest. Returns the list that each launched
    `WorkerPool` is appended to."""
    from pipelines.parallel import local_workers

    pools = []
    launch = local_workers.WorkerPool.launch

    def command(self, settings, distribution, name):
        return [sys.executable, "-c", worker_one(distribution) if name == "worker-1" else others]

    def recorded_launch(self, settings, distribution):
        pools.append(self)
        launch(self, settings, distribution)

    monkeypatch.setattr(local_workers.WorkerPool, "command", command)
    monkeypatch.setattr(local_workers.WorkerPool, "launch", recorded_launch)
    return pools


def yahoo_csv(frame: pd.DataFrame, adjust: float = 1.0) -> str:
    """A Yahoo-format CSV of `frame`, whose Adj Close is `adjust` times the close."""
    rows = ["Date,Open,High,Low,Close,Adj Close,Volume"]
    for date, row in frame.iterrows():
        rows.append(f"{date.date()},{row.open},{row.high},{row.low},{row.close},"
                    f"{row.close * adjust},{int(row.volume)}")
    return "\n".join(rows) + "\n"


KTLAB = pathlib.Path(sys.executable).parent / "ktlab"
# Runs `ktlab` in-process, then writes whether TensorFlow was imported to the file named in
# KTLAB_IMPORTED: the same `main` as the console script, observed from the inside.
PROBE = ("import os, sys; from pipelines.cli import main; code = main(sys.argv[1:]); "
         "open(os.environ['KTLAB_IMPORTED'], 'w').write(str('tensorflow' in sys.modules)); "
         "sys.exit(code)")


def assert_one_line_before_tensorflow(arguments: list[str], expected: str,
                                      directory: pathlib.Path) -> None:
    """`ktlab ARGUMENTS`, as a user runs it, prints `expected` as its one stderr line, nothing
    on stdout, and exits 2; run in-process, it never imported TensorFlow."""
    environment = {**os.environ, "KTLAB_IMPORTED": str(directory / "imported")}
    environment.pop("TF_CPP_MIN_LOG_LEVEL", None)
    result = subprocess.run([str(KTLAB), *arguments], capture_output=True, text=True,
                            cwd=directory, env=environment, timeout=120)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [f"ktlab: error: {expected}"]
    probe = subprocess.run([sys.executable, "-c", PROBE, *arguments], capture_output=True,
                           text=True, cwd=directory, env=environment, timeout=120)
    assert probe.returncode == 2
    assert (directory / "imported").read_text() == "False"
