"""Population-based training that trains: the optimizer's state a member continues, and
one real `ktlab tune --tuner pbt` search on tiny data (`tests/test_pbt.py` drives the
oracle alone).
"""

from __future__ import annotations

import json

import h5py
import keras
import numpy as np
import pandas as pd
import pytest
from conftest import make_prices, yahoo_csv

from pipelines.cli import main
from tuners.observers import checkpoints, optimizer_state


def test_optimizer_state_is_loaded_with_the_models_own_learning_rate(tmp_path):
    def model(learning_rate: float) -> keras.Model:
        network = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        network.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
        return network

    rng = np.random.default_rng(0)
    x, y = rng.random((32, 3)), rng.random((32, 1))
    parent = model(0.01)
    parent.fit(x, y, batch_size=8, epochs=2, verbose=0)
    parent.save_weights(tmp_path / "parent.weights.h5")
    child = model(0.002)
    optimizer_state.load_with_optimizer_state(child, tmp_path / "parent.weights.h5")

    assert int(child.optimizer.iterations) == 8
    assert float(child.optimizer.learning_rate) == pytest.approx(0.002)
    moments = [variable.numpy() for variable in child.optimizer.variables[2:]]
    expected = [variable.numpy() for variable in parent.optimizer.variables[2:]]
    assert len(moments) == 4
    assert all(np.array_equal(got, want) for got, want in zip(moments, expected, strict=True))
    assert np.array_equal(child.layers[0].kernel.numpy(), parent.layers[0].kernel.numpy())


def test_tune_pbt_continues_members_from_checkpoints(tmp_path, write_csv):
    path = write_csv(yahoo_csv(make_prices(160)))
    config = tmp_path / "pbt.toml"
    config.write_text("[tuner.options]\npopulation_size = 2\n")
    code = main(["tune", "--config", str(config), "--data", str(path), "--lookback", "5",
                 "--test-size", "20", "--validation-size", "20",
                 "--output-dir", str(tmp_path / "runs"), "--no-refit", "--keep-checkpoints",
                 "--search-space", '{"units": [4], "num_layers": [1, 1], "batch_size": [32]}',
                 "--tuner", "pbt", "--max-epochs", "2", "--factor", "2", "--seed", "7"])
    assert code == 0
    run_dir = tmp_path / "runs" / "lstm-pbt-prices-seed7"
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str, "parent_trial_id": str})
    # Two members, intervals of ceil(2 / 4) = 1 epoch up to 2: four trials of one epoch.
    assert len(trials) == 4
    assert trials["member"].tolist() == [0, 1, 0, 1]
    assert trials["initial_epoch"].tolist() == [0, 0, 1, 1]
    assert trials["epochs"].sum() == 4
    first, second = trials.iloc[:2], trials.iloc[2:]
    # The worse member of the two copies the better one's checkpoint; the better continues.
    best, worst = (0, 1) if first["score"].iloc[0] <= first["score"].iloc[1] else (1, 0)
    exploit = second[second["member"] == worst].iloc[0]
    assert exploit["exploited_from"] == best
    assert exploit["parent_trial_id"] == first["trial_id"].iloc[best]
    assert second[second["member"] == best].iloc[0]["parent_trial_id"] == first[
        "trial_id"].iloc[best]
    histories = pd.read_json(run_dir / "histories.jsonl", lines=True, dtype={"trial_id": str})
    epochs = histories[histories["event"] == "epoch"]
    # A later interval trains epoch 1 (0-based) only: it loaded epoch 0 from its parent.
    assert epochs.groupby("trial_id")["epoch"].apply(list).to_dict() == {
        trial_id: [0] if number < 2 else [1] for number, trial_id in enumerate(trials["trial_id"])}
    starts = histories[histories["event"] == "trial_start"]
    assert starts["member"].tolist() == [0, 1, 0, 1]
    # Each checkpoint holds the optimizer's step count (Keras 3's `save_weights`): the
    # second interval's continue the first's, with their own learning rates.
    steps, rates = {}, {}
    for trial_id, path in checkpoints.checkpoint_files(run_dir / "tuner").items():
        with h5py.File(path, "r") as handle:
            steps[trial_id] = int(handle["optimizer/vars/0"][()])
            rates[trial_id] = float(handle["optimizer/vars/1"][()])
    ids = trials["trial_id"].tolist()
    assert steps[ids[0]] == steps[ids[1]] > 0
    assert steps[ids[2]] == steps[ids[3]] == 2 * steps[ids[0]]
    assert [rates[trial_id] for trial_id in ids] == pytest.approx(
        trials["hp_learning_rate"].tolist(), rel=1e-6)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert (metrics["trials"], metrics["epochs"]) == (4, 4)
    assert (run_dir / "plot_histories.png").is_file()
    assert not (run_dir / "plot_schedule.png").exists()
