"""The pruner's and the epoch limit's counts live in memory: the histories are read once.

`TrialCurves` on hand-written files (no training), then one tiny real search with the
median pruner and an epoch limit that counts how often the histories are read whole.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

import hypermodels
import tuners
from tuners.observers import epoch_limit, pruning
from tuners.results import records, trial_curves


def _lines(*records_: dict) -> str:
    return "".join(json.dumps(record) + "\n" for record in records_)


def _trial(trial_id: str, values: list[float], status: str = "completed",
           execution: int = 0, start: bool = True) -> list[dict]:
    lines = [{"event": "trial_start", "trial_id": trial_id}] if start else []
    lines += [{"event": "epoch", "trial_id": trial_id, "execution": execution, "epoch": epoch,
               "metrics": {"val_loss": value}} for epoch, value in enumerate(values)]
    return lines + [{"event": "trial_end", "trial_id": trial_id, "status": status}]


def _sorted(curves: list[dict[int, float]]) -> list[list[tuple[int, float]]]:
    return sorted(sorted(curve.items()) for curve in curves)


def test_trial_curves_read_only_the_lines_appended_since_the_last_update(tmp_path):
    path = tmp_path / "histories.jsonl"
    path.write_text(_lines(*_trial("0", [0.5, 0.4]), *_trial("1", [0.9], status="failed")))
    curves = trial_curves.TrialCurves(path, "val_loss")
    curves.update()
    assert curves.earlier() == [{0: 0.5, 1: 0.4}]
    first_size = path.stat().st_size
    assert curves.offsets == {path: first_size}
    # Trial 2 runs two executions; trial 3's last record is still being written.
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(_lines({"event": "trial_start", "trial_id": "2"},
                            *_trial("2", [0.2, 0.6], start=False)[:-1],
                            *_trial("2", [0.4, None], execution=1, start=False),
                            {"event": "trial_start", "trial_id": "3"}))
        handle.write('{"event": "epoch", "trial_id": "3"')
    curves.update()
    assert curves.offsets == {path: path.stat().st_size - len('{"event": "epoch", "trial_id": "3"')}
    assert curves.earlier(exclude="0") == [{0: pytest.approx(0.3), 1: 0.6}]
    assert _sorted(curves.earlier()) == _sorted(pruning.earlier_curves(
        records.load_histories(path), "val_loss"))
    # A superseded attempt no longer counts; a trial that starts again replaces its epochs.
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(', "epoch": 0, "metrics": {"val_loss": 0.1}}\n')
        handle.write(_lines({"event": "superseded", "trial_id": "3"},
                            *_trial("0", [0.7]), *_trial("4", [0.8], status="pruned")))
    curves.update()
    assert curves.offsets == {path: path.stat().st_size}
    assert curves.earlier() == [{0: pytest.approx(0.3), 1: 0.6}, {0: 0.7}, {0: 0.8}]
    assert curves.earlier(statuses=("pruned",)) == [{0: 0.8}]


def test_trial_curves_read_the_other_workers_files_of_a_run_directory(tmp_path):
    (tmp_path / "histories-worker0.jsonl").write_text(_lines(*_trial("0", [0.5])))
    (tmp_path / "histories-worker1.jsonl").write_text(_lines(*_trial("1", [0.6])))
    curves = trial_curves.TrialCurves(tmp_path / "histories-worker0.jsonl", "val_loss")
    curves.update()
    assert curves.earlier() == [{0: 0.5}, {0: 0.6}]
    # A file of another name is read alone.
    (tmp_path / "mine.jsonl").write_text(_lines(*_trial("9", [0.1])))
    alone = trial_curves.TrialCurves(tmp_path / "mine.jsonl", "val_loss")
    alone.update()
    assert alone.earlier() == [{0: 0.1}]
    missing = trial_curves.TrialCurves(tmp_path / "nowhere" / "histories.jsonl", "val_loss")
    missing.update()
    assert (missing.earlier(), missing.offsets) == ([], {})


def test_a_pruned_search_with_an_epoch_limit_reads_the_histories_whole_once(tmp_path,
                                                                             monkeypatch):
    reads = {"load_histories": 0, "load_trials": 0}
    for name in reads:
        original = getattr(records, name)

        def counted(*args, _original=original, _name=name, **kwargs):
            reads[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(records, name, counted)
    rng = np.random.default_rng(0)
    features = rng.normal(size=(48, 4)).astype("float32")
    targets = features @ np.array([[1.0], [-2.0], [0.5], [0.0]], dtype="float32")
    hypermodel = hypermodels.DenseHyperModel(
        input_shape=(4,), units=[4, 8], num_layers=[1, 1], learning_rate=(1e-5, 1e-1),
        batch_size=[16])

    def search(max_trials: int):
        tuner = tuners.build_tuner(
            "random", hypermodel, directory=tmp_path, seed=5, max_trials=max_trials,
            max_trained_epochs=100,
            pruner=pruning.MedianPruner(grace_epochs=1, startup_trials=1))
        tuner.search(features, targets, validation_data=(features, targets), epochs=3,
                     verbose=0)
        return tuner

    search(max_trials=3)
    # No histories existed before the first search; the pruner read no table.
    assert reads == {"load_histories": 0, "load_trials": 0}
    tuner = search(max_trials=6)
    # The resumed search's epoch limit read the trials before it once, not once a trial.
    assert reads == {"load_histories": 0, "load_trials": 1}
    path = pathlib.Path(tuner.history_path)
    monkeypatch.undo()
    trials = tuners.load_trials(tmp_path)
    assert len(trials) == 6
    assert tuner.observer(epoch_limit.EpochLimit).trained_epochs() == int(
        trials["epochs_trained"].sum())
    # The pruner's file reads ended where the last trial before the last one ended.
    curves = tuner.observer(pruning.Pruning)._curves
    assert 0 < curves.offsets[path] < path.stat().st_size
    curves.update()
    assert _sorted(curves.earlier(statuses=pruning.COUNTED_STATUSES)) == _sorted(
        pruning.earlier_curves(tuners.load_histories(tmp_path), "val_loss"))
    assert "pruned" in set(trials["status"])
