"""`ktlab tune --workers N`: a chief and N worker processes on this machine.

The searches run real `python -m pipelines.parallel.worker_process` processes, started by
the chief on a free port of 127.0.0.1; the chief stops every worker it started, whatever
happens.
"""

from __future__ import annotations

import json
import pathlib
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from conftest import CRASHING_WORKER, TINY_SPACE, use_stand_in_workers

from hypermodels import registry as model_registry
from pipelines import config
from pipelines.cli import main
from pipelines.errors import ConfigError
from pipelines.parallel import local_workers, registrations
from tuners import registry as tuner_registry
from tuners.plans import schedule


@pytest.fixture
def tiny_flags(tiny_search_flags) -> list[str]:
    return [*tiny_search_flags, "--run-name", "shared", "--max-epochs", "2", "--factor", "2"]


def trial_ends(path) -> set[str]:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return {record["trial_id"] for record in records if record["event"] == "trial_end"}


@pytest.mark.slow
def test_two_local_workers_write_the_files_of_a_search_in_one_process(tiny_flags, tmp_path,
                                                                      capsys, monkeypatch):
    # A model and a strategy registered here, by class, reach the worker processes.
    from keras_tuner.oracles import HyperbandOracle

    from hypermodels.lstm import LSTMHyperModel

    monkeypatch.setitem(model_registry.MODELS, "my_lstm", model_registry.ModelSpec(
        LSTMHyperModel, presets={"quick": {"learning_rate": [1e-3, 1e-2]}}))
    monkeypatch.setitem(tuner_registry.TUNERS, "my_hyperband",
                        tuner_registry.TunerSpec(HyperbandOracle, budget="epochs"))
    code = main(["tune", *tiny_flags, "--workers", "2", "--model", "my_lstm", "--tuner",
                 "my_hyperband"])

    output = capsys.readouterr()
    assert code == 0, output.err
    run_dir = tmp_path / "runs" / "shared"
    plan = schedule.keras_tuner_schedule(2, 2)
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
    # The same trials and epochs as a search in one process: Hyperband's schedule.
    assert len(trials) == plan.total_trials == 5
    assert trials["epochs"].sum() == plan.total_epochs == 7
    assert trials["status"].isin(["completed", "stopped_early"]).all()
    files = sorted(path.name for path in run_dir.glob("histories*.jsonl"))
    assert files == ["histories-worker-1.jsonl", "histories-worker-2.jsonl"]
    by_worker = [trial_ends(run_dir / name) for name in files]
    # Both workers trained, and every trial was trained by one of them only.
    assert all(by_worker)
    assert set.union(*by_worker) == set(trials["trial_id"])
    assert sum(map(len, by_worker)) == 5
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["trials"] == 5
    for name in ("best_model.keras", "best_hyperparameters.json", "predictions.csv",
                 "preprocessor.joblib", "plot_histories.png"):
        assert (run_dir / name).is_file(), name
    saved = json.loads((run_dir / "config.json").read_text())
    assert (saved["run"]["workers"], saved["model"]["name"], saved["tuner"]["name"]) == (
        2, "my_lstm", "my_hyperband")
    for number, ended in enumerate(by_worker, start=1):
        log = (run_dir / "workers" / f"worker-{number}.log").read_text()
        assert f"ktlab: worker worker-{number} ran {len(ended)} trials" in log
    threads = local_workers.threads_per_worker(2)
    assert (f"with 2 worker processes of {threads} thread{'s' * (threads != 1)} each"
            in output.out)


def test_a_class_defined_in_a_function_cannot_reach_the_workers(monkeypatch):
    class Local:
        pass

    monkeypatch.setitem(model_registry.MODELS, "local", model_registry.ModelSpec(Local))
    with pytest.raises(ConfigError) as error:
        registrations.added_entries()
    assert str(error.value) == (
        "models entry 'local' is the class test_a_class_defined_in_a_function_cannot_reach_"
        "the_workers.<locals>.Local defined in a function, which --workers processes cannot "
        "import; move it into a .py file and register it from there (or pass --model "
        "FILE.py:CLASS)")


def test_registered_entries_are_written_as_references_and_registered_again(monkeypatch):
    from tuners.oracles.genetic import GeneticOracle

    monkeypatch.setitem(tuner_registry.TUNERS, "evolution",
                        tuner_registry.TunerSpec(GeneticOracle, budget="trials"))
    added = json.loads(json.dumps(registrations.added_entries()))
    assert added == {"tuners": {"evolution": {
        "oracle": "tuners.oracles.genetic:GeneticOracle", "budget": "trials",
        "tunes_initial_points": False, "needs_finite_space": False, "plan": None,
        "description": ""}}}
    monkeypatch.delitem(tuner_registry.TUNERS, "evolution")
    registrations.register(added)
    assert tuner_registry.TUNERS["evolution"].oracle_class is GeneticOracle
    monkeypatch.delitem(tuner_registry.TUNERS, "evolution")


def test_a_replaced_built_in_entry_reaches_the_workers_and_a_bad_one_is_one_line(monkeypatch):
    from hypermodels.lstm import LSTMHyperModel

    assert registrations.added_entries() == {}
    monkeypatch.setitem(model_registry.MODELS, "lstm", model_registry.ModelSpec(
        LSTMHyperModel, presets={"quick": {"units": [4]}}))
    assert registrations.added_entries() == {"models": {"lstm": {
        "hypermodel": "hypermodels.lstm:LSTMHyperModel", "data_kind": "series",
        "default_source": "AAPL", "presets": {"quick": {"units": [4]}}, "description": "",
        "argument_kinds": {}}}}
    monkeypatch.setitem(model_registry.MODELS, "lstm", model_registry.ModelSpec(
        LSTMHyperModel, presets={"quick": {"units": {4, 8}}}))
    with pytest.raises(ConfigError) as error:
        registrations.added_entries()
    assert str(error.value) == (
        "models entry 'lstm' cannot be sent to --workers processes (Object of type set is "
        "not JSON serializable); give its settings as plain numbers, strings, lists and dicts")


def worker_pids(marker: str) -> list[int]:
    """The ids of the local worker processes whose command line holds `marker`."""
    pids = []
    for entry in pathlib.Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "pipelines.parallel.worker_process" in command and marker in command:
            pids.append(int(entry.name))
    return pids


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_an_interrupted_chief_stops_its_workers_and_the_search_resumes(tiny_flags, tmp_path,
                                                                      capsys):
    # Trials long enough that the search is still running when the interrupt arrives.
    flags = [*tiny_flags[:-4], "--tuner", "random", "--max-trials", "4", "--max-epochs", "60",
             "--patience", "60"]
    run_dir = tmp_path / "runs" / "shared"
    with open(tmp_path / "chief.log", "w") as log:
        # SIGINT must reach Python's handler even if this process was started ignoring it.
        chief = subprocess.Popen([sys.executable, "-m", "pipelines", "tune", *flags,
                                  "--workers", "2"], stdout=log, stderr=subprocess.STDOUT,
                                 preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            deadline = time.monotonic() + 120
            ended = 0
            while ended < 1 and time.monotonic() < deadline and chief.poll() is None:
                time.sleep(0.1)
                # Counted in the text: a line may be half written while it is read.
                ended = sum(path.read_text().count('"event": "trial_end"')
                            for path in run_dir.glob("histories-worker-*.jsonl"))
            workers = worker_pids(str(tmp_path))
            chief.send_signal(signal.SIGINT)
            chief.wait(timeout=60)
        finally:
            if chief.poll() is None:
                chief.kill()
                chief.wait()
    assert 1 <= ended < 4, (tmp_path / "chief.log").read_text()
    assert len(workers) == 2
    # The chief stopped both workers before it exited.
    assert worker_pids(str(tmp_path)) == []
    assert not (run_dir / "metrics.json").exists(), (tmp_path / "chief.log").read_text()

    code = main(["tune", "--resume", str(run_dir), "--workers", "2"])

    assert code == 0, capsys.readouterr().err
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
    assert trials["trial_id"].tolist() == ["0", "1", "2", "3"]
    assert trials["status"].isin(["completed", "stopped_early"]).all()
    assert json.loads((run_dir / "metrics.json").read_text())["trials"] == 4


@pytest.mark.parametrize(("flags", "message"), [
    (["--workers", "0"], "workers must be >= 1, got 0; fix --workers"),
    (["--workers", "2", "--distributed", "chief"],
     "--workers 2 starts its own chief and workers on this machine; leave out --distributed "
     "chief (or --workers)"),
    (["--workers", "2", "--mirrored"],
     "--mirrored spreads every trial over all GPUs, which 2 workers would share; pass "
     "--mirrored or --workers, not both"),
])
def test_bad_workers_settings_are_one_line(tiny_flags, tmp_path, capsys, flags, message):
    code = main(["tune", *tiny_flags, *flags])

    output = capsys.readouterr()
    assert code == 2
    assert output.err == f"ktlab: error: {message}\n"
    assert output.out == ""
    assert not (tmp_path / "runs").exists()


# A worker that fails at once, before the chief listens (one that fails once the chief
# listens is conftest's CRASHING_WORKER).
FAILS_AT_ONCE = "import sys; print('worker: error: no GPU left'); sys.exit(3)"


@pytest.mark.parametrize("when", ["at_once", "later"])
def test_a_worker_that_fails_stops_the_chief_and_the_other_workers(tiny_flags, tmp_path,
                                                                   monkeypatch, when):
    log = tmp_path / "runs" / "shared" / "workers" / "worker-1.log"
    pools = use_stand_in_workers(monkeypatch, lambda distribution: (
        FAILS_AT_ONCE if when == "at_once" else
        CRASHING_WORKER.format(address=distribution.address, log=str(log))))
    settings = config.load_config(None, {
        "data": {"source": tiny_flags[1], "lookback": 5, "test_size": 20,
                 "validation_size": 20},
        "model": {"search_space": json.loads(TINY_SPACE)},
        "tuner": {"max_epochs": 2, "factor": 2},
        # No replacement: the first death stops the search (`test_worker_replacement.py`).
        "run": {"output_dir": str(tmp_path / "runs"), "run_name": "shared",
                "max_worker_restarts": 0}})

    with pytest.raises(local_workers.WorkerFailedError) as raised:
        local_workers.run_with_workers(settings, 2, verbose=False)

    if when == "at_once":
        # It failed while it started, so it has no log in the run directory: the reason
        # comes from its startup log, which is gone with the chief.
        assert str(raised.value) == ("worker-1 exited with code 3 before the search ended "
                                     "(worker: error: no GPU left) while it started")
        assert not log.exists()
    else:
        assert str(raised.value) == (f"worker-1 exited with code 3 before the search ended "
                                     f"(MemoryError: out of memory); see {log}, and rerun "
                                     f"with --resume to continue")
    assert not pools[0].startup_logs["worker-1"].exists()
    # The sleeping worker was terminated, and reaped, before the error reached the caller.
    processes = pools[0].processes
    assert processes["worker-1"].returncode == 3
    assert processes["worker-2"].returncode == -signal.SIGTERM


def test_each_worker_gets_its_share_of_the_cores():
    assert local_workers.threads_per_worker(2, available=2) == 1
    assert local_workers.threads_per_worker(3, available=2) == 1
    assert local_workers.threads_per_worker(2, available=16) == 8
    environ = local_workers.WorkerPool(2, threads=3).environment()
    assert [environ[name] for name in local_workers.THREAD_VARIABLES] == ["3", "3", "3"]
    assert "KERASTUNER_TUNER_ID" not in environ
