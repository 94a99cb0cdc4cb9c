"""`ktlab tune --workers N`: a worker that dies mid-search is replaced, up to a limit
(`pipelines.parallel.replacement`, `pipelines.parallel.local_workers`).

The search with a killed worker runs real worker processes on keras-tuner's distributed
engine, and kills one with SIGKILL while it trains; the limit is tested with stand-in
worker processes that reach the chief and crash, so that no TensorFlow starts in them.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from conftest import CRASHING_WORKER, read_records, use_stand_in_workers

import tuners
from pipelines.cli import main
from pipelines.parallel import replacement


@pytest.fixture
def tiny_flags(tiny_search_flags) -> list[str]:
    return [*tiny_search_flags, "--run-name", "shared", "--tuner", "random", "--no-refit"]



def unfinished_epochs(path: pathlib.Path) -> tuple[str | None, int]:
    """The trial a worker's histories file shows running, and its epochs so far."""
    trial_id, epochs = None, 0
    if not path.exists():
        return trial_id, epochs
    for record in read_records(path):
        if record["event"] == "trial_start":
            trial_id, epochs = record["trial_id"], 0
        elif record["event"] == "epoch" and record["trial_id"] == trial_id:
            epochs += 1
        elif record["event"] == "trial_end":
            trial_id, epochs = None, 0
    return trial_id, epochs


def worker_pid(marker: str, name: str) -> int:
    """The id of the local worker process `name` whose command line holds `marker`."""
    pids = []
    for entry in pathlib.Path("/proc").iterdir():
        try:
            arguments = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if ("pipelines.parallel.worker_process" in arguments and name in arguments
                and any(marker in argument for argument in arguments)):
            pids.append(int(entry.name))
    assert len(pids) == 1, pids
    return pids[0]


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_worker_killed_mid_trial_is_replaced_and_its_trial_recorded_once(tiny_flags,
                                                                          tmp_path):
    # Trials long enough that worker-1 is still training when it is killed.
    flags = [*tiny_flags, "--max-trials", "4", "--max-epochs", "60", "--patience", "60"]
    run_dir = tmp_path / "runs" / "shared"
    own_file = run_dir / "histories-worker-1.jsonl"
    chief_log = tmp_path / "chief.log"
    with open(chief_log, "w") as log:
        chief = subprocess.Popen([sys.executable, "-m", "pipelines", "tune", *flags,
                                  "--workers", "2"], stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 240
            killed_trial, killed_epochs = None, 0
            while time.monotonic() < deadline and chief.poll() is None:
                killed_trial, killed_epochs = unfinished_epochs(own_file)
                if killed_epochs >= 2:
                    os.kill(worker_pid(str(tmp_path), "worker-1"), signal.SIGKILL)
                    break
                time.sleep(0.02)
            code = chief.wait(timeout=300)
        finally:
            if chief.poll() is None:
                chief.kill()
                chief.wait()
    output = chief_log.read_text()
    assert killed_epochs >= 2, output
    # The search ended in the same command, without --resume.
    assert code == 0, output
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
    # Every planned trial is recorded exactly once, and ended.
    assert sorted(trials["trial_id"]) == ["0", "1", "2", "3"]
    assert trials["status"].isin(["completed", "stopped_early"]).all()
    assert json.loads((run_dir / "metrics.json").read_text())["trials"] == 4
    histories = tuners.load_histories(run_dir)
    assert not histories.duplicated(["trial_id", "execution", "epoch"]).any()
    epochs = trials.set_index("trial_id")["epochs"]
    for trial_id, curve in histories.groupby("trial_id"):
        assert curve["epoch"].tolist() == list(range(epochs[trial_id])), trial_id
    # In the files: the killed attempt is superseded, once, with the epochs it ran, and
    # the records that count hold each epoch once and one end per trial.
    records = [record for path in sorted(run_dir.glob("histories-*.jsonl"))
               for record in read_records(path)]
    superseded = [record for record in records if record["event"] == "superseded"]
    assert [(record["trial_id"], record["epochs"]) for record in superseded] == [
        (killed_trial, killed_epochs)]
    own = read_records(own_file)
    cut = own.index(superseded[0])
    assert [record["event"] for record in own[cut - killed_epochs - 1:cut]] == [
        "trial_start"] + ["epoch"] * killed_epochs
    counted = [record for path in sorted(run_dir.glob("histories-*.jsonl"))
               for record in read_records(path)
               if path != own_file] + own[cut + 1:] + own[:cut - killed_epochs - 1]
    keys = [(record["trial_id"], record["epoch"]) for record in counted
            if record["event"] == "epoch"]
    assert len(keys) == len(set(keys)) == int(epochs.sum())
    ends = sorted(record["trial_id"] for record in records if record["event"] == "trial_end")
    assert ends == ["0", "1", "2", "3"]
    # The chief said which worker died, when, and that it was replaced; its summary says
    # it again, and the worker's log holds the line before the new process's output.
    line = re.search(rf"ktlab: worker-1 was killed by signal 9 (\d+\.\d) s into the search, "
                     rf"during trial {killed_trial}; a new worker-1 takes its place, which "
                     rf"trains trial {killed_trial} again \(replacement 1 of at most 3\)",
                     output)
    assert line is not None, output
    assert 0 < float(line.group(1)) < 240
    assert "ktlab: 1 worker replaced during the search (at most 3):" in output
    assert (f"  worker-1 was killed by signal 9 {line.group(1)} s into the search, during "
            f"trial {killed_trial}; trial {killed_trial} ran again") in output
    worker_log = (run_dir / "workers" / "worker-1.log").read_text()
    assert worker_log.count("ktlab: worker worker-1 of the chief at") == 2
    assert worker_log.index(line.group(0)) < worker_log.rindex(
        "ktlab: worker worker-1 of the chief at")


def test_a_worker_that_dies_once_too_often_stops_the_search_in_one_line(tiny_flags, tmp_path,
                                                                        monkeypatch, capsys):
    log = tmp_path / "runs" / "shared" / "workers" / "worker-1.log"
    pools = use_stand_in_workers(monkeypatch, lambda distribution: CRASHING_WORKER.format(
        address=distribution.address, log=str(log)))

    code = main(["tune", *tiny_flags, "--max-epochs", "2", "--workers", "2",
                 "--max-worker-restarts", "2"])

    output = capsys.readouterr()
    assert code == 2
    assert output.err == (
        f"ktlab: error: worker-1 exited with code 3 before the search ended (MemoryError: out "
        f"of memory); see {log}, and rerun with --resume to continue (not replaced: this "
        f"search has replaced 2 workers already, the most that --max-worker-restarts "
        f"allows)\n")
    pool = pools[0]
    # Started once and replaced twice; no stand-in ever asked for a trial.
    assert pool.starts == {"worker-1": 3, "worker-2": 1}
    assert [(death.name, death.how, death.trial_id) for death in pool.replacements.deaths] == [
        ("worker-1", "exited with code 3", None)] * 2
    for number in (1, 2):
        assert (f"a new worker-1 takes its place, which asks for a trial (replacement "
                f"{number} of at most 2)") in output.out
    text = log.read_text()
    assert text.count("MemoryError: out of memory") == 3
    assert text.count("ktlab: worker-1 exited with code 3") == 2
    assert pool.processes["worker-2"].returncode == -signal.SIGTERM


@pytest.mark.parametrize(("code", "reached_chief", "replaceable"), [
    (-signal.SIGKILL, False, True),
    (-signal.SIGSEGV, True, True),
    (1, True, True),
    (3, False, False),
    (replacement.REFUSED_CODE, True, False),
])
def test_which_deaths_are_replaced(code, reached_chief, replaceable):
    assert replacement.is_replaceable(code, reached_chief) is replaceable


def test_the_oracle_hands_a_worker_name_its_ongoing_trial_again(tmp_path):
    import keras_tuner

    from tuners import keras_tuner_internals

    space = keras_tuner.HyperParameters()
    space.Int("units", 1, 64)
    oracle = keras_tuner.oracles.RandomSearchOracle(objective="val_loss", max_trials=5,
                                                    hyperparameters=space, seed=1)
    keras_tuner_internals.set_oracle_directory(oracle, str(tmp_path), "oracle")
    first = oracle.create_trial("worker-1")
    other = oracle.create_trial("worker-2")
    oracle.update_trial(first.trial_id, {"val_loss": 0.5})

    assert replacement.held_trial(oracle, "worker-1") == first.trial_id == "0"
    assert replacement.held_trial(oracle, "worker-3") is None
    # The dead attempt's reported metrics are gone: the new attempt's are not averaged
    # with them.
    assert not oracle.trials["0"].metrics.exists("val_loss")
    again = oracle.create_trial("worker-1")
    assert (again.trial_id, again.status, other.trial_id) == ("0", "RUNNING", "1")
    assert again.hyperparameters.values == first.hyperparameters.values
    assert sorted(oracle.trials) == ["0", "1"]
