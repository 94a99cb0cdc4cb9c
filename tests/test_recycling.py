"""`ktlab tune --recycle-after K`: a local worker process exits after K trials and its chief
starts it again under the same name (`pipelines.parallel.recycling`,
`pipelines.parallel.local_workers`).

The search runs real worker processes on keras-tuner's distributed engine; each start
imports TensorFlow, so the search is kept to a few one-epoch trials.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from conftest import PROBE

from pipelines.cli import main
from pipelines.parallel import local_workers, recycling


@pytest.fixture
def tiny_flags(tiny_search_flags) -> list[str]:
    return [*tiny_search_flags, "--run-name", "recycled", "--tuner", "random",
            "--max-epochs", "1", "--no-refit"]


@pytest.mark.slow
def test_a_recycled_worker_is_started_again_and_its_trials_add_up(tiny_flags, tmp_path,
                                                                  capsys):
    code = main(["tune", *tiny_flags, "--max-trials", "3", "--recycle-after", "2"])

    output = capsys.readouterr()
    assert code == 0, output.err
    run_dir = tmp_path / "runs" / "recycled"
    log = (run_dir / "workers" / "worker-1.log").read_text()
    # One worker process (--recycle-after alone), started twice: 2 + 1 trials.
    assert log.count("ktlab: worker worker-1 of the chief at") == 2
    assert log.count("ktlab: worker worker-1 ran 2 trials; exits so that a fresh process "
                     "takes over") == 1
    assert log.count("ktlab: worker worker-1 ran 1 trials; the chief writes") == 1
    threads = local_workers.threads_per_worker(1)
    assert (f"with 1 worker process of {threads} thread{'s' * (threads != 1)} each, "
            f"restarted every 2 trials; their output goes to {run_dir / 'workers'}"
            in output.out)
    for start in (2,):
        assert (f"ktlab: worker-1 ran 2 trials and exited to free its memory; starting it "
                f"again (start {start})") in output.out
    assert "(start 3)" not in output.out
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
    assert len(trials) == 3
    assert trials["trial_id"].is_unique
    assert trials["status"].isin(["completed", "stopped_early"]).all()
    # The restarted processes appended to the one histories file of worker-1.
    assert sorted(path.name for path in run_dir.glob("histories*.jsonl")) == [
        "histories-worker-1.jsonl"]
    records = [json.loads(line)
               for line in (run_dir / "histories-worker-1.jsonl").read_text().splitlines()]
    ends = [record["trial_id"] for record in records if record["event"] == "trial_end"]
    starts = [record["trial_id"] for record in records if record["event"] == "trial_start"]
    assert sorted(ends) == sorted(starts) == sorted(trials["trial_id"])
    assert len(set(ends)) == 3
    assert json.loads((run_dir / "metrics.json").read_text())["trials"] == 3


def test_stop_after_raises_before_the_request_that_would_exceed_the_budget(tmp_path):
    import keras_tuner

    # keras-tuner's own tuner, driven as its search loop drives it, without training.
    tuner = keras_tuner.RandomSearch(hypermodel=lambda hp: hp.Int("units", 1, 8) and None,
                                     objective="val_loss", max_trials=5,
                                     directory=str(tmp_path))
    recycling.stop_after(tuner, 2)
    for number in range(2):
        tuner.pre_create_trial()
        # A worker that the chief keeps waiting asks again without a trial: not counted.
        tuner.pre_create_trial()
        trial = tuner.oracle.create_trial(tuner.tuner_id)
        tuner.oracle.update_trial(trial.trial_id, {"val_loss": float(number)})
        trial.status = "COMPLETED"
        tuner.on_trial_end(trial)

    with pytest.raises(recycling.WorkerRecycled, match="^ran 2 trials; exits so that"):
        tuner.pre_create_trial()
    assert [trial.status for trial in tuner.oracle.trials.values()] == ["COMPLETED"] * 2
    assert tuner.oracle.ongoing_trials == {}
    untouched = keras_tuner.RandomSearch(hypermodel=lambda hp: None, objective="val_loss",
                                         max_trials=1, directory=str(tmp_path),
                                         project_name="untouched")
    recycling.stop_after(untouched, 0)
    assert "pre_create_trial" not in vars(untouched)


@pytest.mark.parametrize(("arguments", "message"), [
    (["--recycle-after", "-1"], "recycle after must be >= 0, got -1; fix --recycle-after"),
    (["--recycle-after", "3", "--distributed", "chief"],
     "--recycle-after 3 restarts the worker processes that ktlab tune starts itself; leave "
     "out --distributed chief (or --recycle-after)"),
    (["--recycle-after", "3", "--mirrored"],
     "--recycle-after 3 trains in worker processes, which --mirrored does not reach; pass "
     "--mirrored or --recycle-after, not both"),
    (["--config", "bad.toml"], "config key run.recycle_after must be a whole number, got 2.5"),
])
def test_bad_recycling_settings_are_one_line_before_tensorflow(tiny_flags, tmp_path, arguments,
                                                               message):
    (tmp_path / "bad.toml").write_text("[run]\nrecycle_after = 2.5\n")
    environment = {**os.environ, "KTLAB_IMPORTED": str(tmp_path / "imported")}

    result = subprocess.run([sys.executable, "-c", PROBE, "tune", *tiny_flags, *arguments],
                            capture_output=True, text=True, cwd=tmp_path, env=environment,
                            timeout=120)

    assert result.returncode == 2
    assert result.stderr == f"ktlab: error: {message}\n"
    assert (tmp_path / "imported").read_text() == "False"
    assert not (tmp_path / "runs").exists()
