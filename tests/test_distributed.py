"""Distributed tuning on keras-tuner's own chief and workers, on loopback.

The searches run the real `python -m pipelines tune --distributed ...` processes on a
free port of 127.0.0.1; every process is killed in a `finally`, and every wait has a
deadline.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest

import tuners
from pipelines.cli import main
from pipelines.errors import ConfigError
from pipelines.parallel import distributed
from tuners.observers import checkpoints
from tuners.plans import schedule

REPOSITORY = pathlib.Path(__file__).resolve().parents[1]
DEADLINE_SECONDS = 240


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def tiny_flags(tiny_search_flags) -> list[str]:
    return [*tiny_search_flags, "--run-name", "shared"]


class Processes:
    """Starts `ktlab tune` processes and kills whatever is left of them at the end."""

    def __init__(self, log_dir: pathlib.Path) -> None:
        self.log_dir = log_dir
        self.started: list[subprocess.Popen] = []

    def start(self, name: str, flags: list[str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "a")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen([sys.executable, "-m", "pipelines", "tune", *flags],
                                   cwd=REPOSITORY, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        process.log = log
        self.started.append(process)
        return process

    def wait(self, process: subprocess.Popen, deadline: float) -> int:
        return process.wait(timeout=max(deadline - time.monotonic(), 1))

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text()

    def kill_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
                process.wait()
            process.log.close()


@pytest.fixture
def processes(tmp_path):
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.kill_all()


def best_chain(trials: pd.DataFrame, best: str) -> list[str]:
    """The best trial's id, and its parent's when Hyperband promoted it."""
    parent = trials.set_index("trial_id").loc[best, "parent_trial_id"]
    return sorted([best] if pd.isna(parent) else [best, parent])


def read_records(path: pathlib.Path) -> list[dict]:
    records = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def run_chief_and_workers(processes: Processes, flags: list[str], port: int) -> float:
    address = ["--oracle-address", f"127.0.0.1:{port}"]
    started = time.monotonic()
    chief = processes.start("chief", [*flags, "--distributed", "chief", *address])
    workers = [processes.start(name, [*flags, "--distributed", "worker", *address,
                                      "--tuner-id", name, "--chief-timeout", "60"])
               for name in ("worker1", "worker2")]
    deadline = started + DEADLINE_SECONDS
    assert processes.wait(chief, deadline) == 0, processes.log("chief")
    seconds = time.monotonic() - started
    for worker, name in zip(workers, ("worker1", "worker2"), strict=True):
        assert processes.wait(worker, deadline) == 0, processes.log(name)
    return seconds


@pytest.mark.slow
def test_chief_and_two_workers_run_a_hyperband_search(tiny_flags, tmp_path, processes):
    flags = [*tiny_flags, "--max-epochs", "3", "--factor", "3", "--patience", "5"]

    seconds = run_chief_and_workers(processes, flags, free_port())

    run_dir = tmp_path / "runs" / "shared"
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str, "parent_trial_id": str})
    # The same trials as a search in one process: keras-tuner's schedule for 3 and 3.
    assert len(trials) == schedule.keras_tuner_schedule(3, 3).total_trials == 6
    assert trials["status"].isin(["completed", "stopped_early"]).all()
    files = sorted(path.name for path in run_dir.glob("histories*.jsonl"))
    assert files == ["histories-worker1.jsonl", "histories-worker2.jsonl"]
    by_worker = {name: {record["trial_id"] for record in read_records(run_dir / name)
                        if record["event"] == "trial_end"} for name in files}
    # Both workers trained, and no trial was trained twice.
    assert all(by_worker.values())
    assert set.union(*by_worker.values()) == set(trials["trial_id"])
    assert sum(map(len, by_worker.values())) == 6
    histories = tuners.load_histories(run_dir)
    assert set(histories["trial_id"]) == set(trials["trial_id"])
    assert not histories.duplicated(["trial_id", "execution", "epoch"]).any()
    assert histories.groupby("trial_id").size().to_dict() == dict(
        zip(trials["trial_id"], trials["epochs"], strict=True))
    # The chief trained nothing, wrote the results, and kept only the best checkpoint.
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["trials"] == 6
    assert sorted(checkpoints.checkpoint_files(run_dir / "tuner")) == best_chain(
        trials, metrics["best_trial_id"])
    assert (run_dir / "best_model.keras").is_file()
    assert "ktlab: worker" not in processes.log("chief")
    print(f"\ndistributed hyperband: chief + 2 workers finished in {seconds:.1f} s")


@pytest.mark.slow
def test_a_killed_worker_restarted_under_its_name_lets_the_search_finish(
        tiny_flags, tmp_path, processes):
    flags = [*tiny_flags, "--tuner", "random", "--max-trials", "4", "--max-epochs", "8",
             "--patience", "8"]
    port = free_port()
    address = ["--oracle-address", f"127.0.0.1:{port}"]
    worker_flags = [*flags, "--distributed", "worker", *address, "--chief-timeout", "60"]
    run_dir = tmp_path / "runs" / "shared"
    history = run_dir / "histories-worker1.jsonl"
    deadline = time.monotonic() + DEADLINE_SECONDS
    chief = processes.start("chief", [*flags, "--distributed", "chief", *address])
    worker1 = processes.start("worker1", [*worker_flags, "--tuner-id", "worker1"])
    worker2 = processes.start("worker2", [*worker_flags, "--tuner-id", "worker2"])
    interrupted = None
    while interrupted is None and time.monotonic() < deadline and worker1.poll() is None:
        records = read_records(history)
        ended = {record["trial_id"] for record in records if record["event"] == "trial_end"}
        trained = [record["trial_id"] for record in records if record["event"] == "epoch"]
        unfinished = [trial_id for trial_id in trained if trial_id not in ended]
        interrupted = unfinished[-1] if unfinished else None
        time.sleep(0.05)
    worker1.send_signal(signal.SIGKILL)
    worker1.wait(timeout=30)
    assert interrupted is not None, processes.log("worker1")
    worker1 = processes.start("worker1", [*worker_flags, "--tuner-id", "worker1"])

    assert processes.wait(chief, deadline) == 0, processes.log("chief")
    assert processes.wait(worker1, deadline) == 0, processes.log("worker1")
    assert processes.wait(worker2, deadline) == 0, processes.log("worker2")

    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
    assert trials["trial_id"].tolist() == ["0", "1", "2", "3"]
    assert trials["status"].isin(["completed", "stopped_early"]).all()
    records = read_records(history)
    superseded = [record["trial_id"] for record in records if record["event"] == "superseded"]
    starts = [record["trial_id"] for record in records if record["event"] == "trial_start"]
    # The restarted worker ran its interrupted trial again, under the same id.
    assert superseded == [interrupted]
    assert starts.count(interrupted) == 2
    histories = tuners.load_histories(run_dir)
    assert not histories.duplicated(["trial_id", "execution", "epoch"]).any()
    assert set(histories["trial_id"]) == {"0", "1", "2", "3"}
    assert json.loads((run_dir / "metrics.json").read_text())["trials"] == 4


def test_a_worker_without_a_chief_gives_up_with_one_line(tiny_flags, capsys):
    port = free_port()
    started = time.monotonic()

    code = main(["tune", *tiny_flags, "--distributed", "worker", "--oracle-address",
                 f"127.0.0.1:{port}", "--tuner-id", "worker1", "--chief-timeout", "1"])

    assert code == 2
    assert time.monotonic() - started < 30
    assert capsys.readouterr().err.strip() == (
        f"ktlab: error: no chief answered at 127.0.0.1:{port} within 1 s; start `ktlab tune "
        f"--distributed chief` first, or check --oracle-address and --chief-timeout")
    assert "KERASTUNER_ORACLE_IP" not in os.environ


def test_a_chief_on_a_taken_port_writes_nothing(tiny_flags, tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["tune", *tiny_flags, "--distributed", "chief", "--oracle-address",
                     f"127.0.0.1:{port}"])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        f"ktlab: error: the chief cannot listen on 127.0.0.1:{port} (Address already in "
        f"use); choose another --oracle-address")
    assert not (tmp_path / "runs" / "shared").exists()


@pytest.mark.parametrize(("arguments", "environ", "expected"), [
    ({}, {}, None),
    ({"role": "chief"}, {}, distributed.Distribution("chief", "127.0.0.1", 8470, "chief")),
    ({"role": "worker", "address": "10.0.0.5:9000", "tuner_id": "gpu-1",
      "chief_timeout": 5}, {}, distributed.Distribution("worker", "10.0.0.5", 9000, "gpu-1", 5)),
    ({}, {"KERASTUNER_ORACLE_IP": "10.0.0.5", "KERASTUNER_ORACLE_PORT": "9000",
          "KERASTUNER_TUNER_ID": "tuner-chief"},
     distributed.Distribution("chief", "10.0.0.5", 9000, "tuner-chief")),
    ({"tuner_id": "worker7"}, {"KERASTUNER_ORACLE_IP": "10.0.0.5",
                               "KERASTUNER_ORACLE_PORT": "9000",
                               "KERASTUNER_TUNER_ID": "worker3"},
     distributed.Distribution("worker", "10.0.0.5", 9000, "worker7")),
])
def test_roles_come_from_flags_or_keras_tuner_variables(arguments, environ, expected):
    assert distributed.resolve(**arguments, environ=environ) == expected


@pytest.mark.parametrize(("arguments", "environ", "message"), [
    ({"tuner_id": "w1"}, {}, "--oracle-address, --tuner-id and --chief-timeout need "
                             "--distributed chief or --distributed worker"),
    ({"role": "worker", "tuner_id": "w1"}, {}, "a worker needs the chief's address"),
    ({"role": "worker", "address": "127.0.0.1:9000"}, {}, "a worker needs a name unique"),
    ({"role": "worker", "address": "127.0.0.1:9000", "tuner_id": "../w1"}, {},
     "tuner id '../w1' may hold only letters"),
    ({"role": "chief", "tuner_id": "boss"}, {}, "the chief's tuner id must contain 'chief'"),
    ({"role": "worker", "address": "127.0.0.1:9000", "tuner_id": "chief2"}, {},
     "a worker's tuner id must not contain 'chief'"),
    ({"role": "chief", "address": "localhost"}, {}, "--oracle-address must be HOST:PORT"),
    ({"role": "chief", "address": "localhost:70000"}, {}, "--oracle-address must be"),
    ({"role": "chief", "chief_timeout": 0}, {}, "--chief-timeout must be > 0 seconds"),
    ({}, {"KERASTUNER_ORACLE_IP": "10.0.0.5", "KERASTUNER_TUNER_ID": "w1"},
     "KERASTUNER_ORACLE_IP is set but KERASTUNER_ORACLE_PORT is not"),
    ({}, {"KERASTUNER_ORACLE_IP": "10.0.0.5", "KERASTUNER_ORACLE_PORT": "9000"},
     "KERASTUNER_ORACLE_IP is set but KERASTUNER_TUNER_ID is not"),
])
def test_bad_distributed_settings_are_one_line(arguments, environ, message):
    with pytest.raises(ConfigError, match="^" + re.escape(message)) as raised:
        distributed.resolve(**arguments, environ=environ)
    assert "\n" not in str(raised.value)
