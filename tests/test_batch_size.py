"""The tuned batch size: applied in one place, asked of the data, on any Keras backend.

The data side builds each split at a batch size once (`pipelines.data.Split.batched`);
`BatchSizeHyperModel.fit` asks for its trial's size through `batched_data`, which
`hypermodels.fit_data` passes. These tests run real keras-tuner searches on tiny windows
and count the batches each training run reads.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import re
import subprocess
import sys

import keras
import keras_tuner
import numpy as np
import pytest
from conftest import make_prices

import hypermodels
import hypermodels.base
import tuners
from pipelines import StockPipeline, WalkForward

ROOT = pathlib.Path(__file__).resolve().parents[1]


class BatchCounter(keras.callbacks.Callback):
    """Notes, for every training run of a search, the batches of its first epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[dict[str, int]] = []

    def __deepcopy__(self, memo: dict) -> BatchCounter:
        # keras-tuner copies the search's callbacks for every trial; one object keeps
        # every trial's notes.
        return self

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.runs.append({"steps": self.params["steps"], "train": 0, "validation": 0})

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.runs[-1]["train"] += 1

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.runs[-1]["validation"] += 1


def tiny_prepared(walk_forward: WalkForward | None = None):
    """160 days: 86 training and 35 validation windows of 5 days, batched 8 by default."""
    pipeline = StockPipeline("unused", lookback=5, test_size=20, validation_size=40,
                             batch_size=8, target="close", log_returns=False,
                             moving_average_window=10, rolling_window=3,
                             walk_forward=walk_forward)
    return pipeline.prepare(make_prices())


def tiny_lstm(input_shape: tuple[int, ...]) -> hypermodels.LSTMHyperModel:
    """An LSTM whose only tuned hyperparameter is the batch size, 16 or 32."""
    return hypermodels.LSTMHyperModel(input_shape=input_shape, units=[4], num_layers=[1, 1],
                                      dropout=[0.1, 0.1], learning_rate=[1e-3, 1e-3],
                                      batch_size=[16, 32])


def count_builds(split) -> list[int]:
    """Makes `split` note the batch size of every dataset it builds; returns the notes."""
    built: list[int] = []
    make_dataset = split.make_dataset

    def make_and_note(batch_size: int):
        built.append(batch_size)
        return make_dataset(batch_size)

    split.make_dataset = make_and_note
    return built


def expected_run(train_samples: int, validation_samples: int, batch_size: int) -> dict:
    batches = math.ceil(train_samples / batch_size)
    return {"steps": batches, "train": batches,
            "validation": math.ceil(validation_samples / batch_size)}


def test_a_search_trains_each_trial_with_its_batch_size_from_the_splits_cache(tmp_path):
    prepared = tiny_prepared()
    train, validation = prepared.splits["train"], prepared.splits["validation"]
    train_builds, validation_builds = count_builds(train), count_builds(validation)
    hypermodel = tiny_lstm(prepared.input_shape)
    tuner = keras_tuner.GridSearch(hypermodel, objective="val_loss", executions_per_trial=2,
                                   directory=tmp_path, seed=1)
    counter = BatchCounter()

    tuner.search(**hypermodels.fit_data(hypermodel, prepared), epochs=1, callbacks=[counter],
                 verbose=0)

    trials = sorted(tuner.oracle.trials.values(), key=lambda trial: trial.trial_id)
    assert [trial.hyperparameters.values["batch_size"] for trial in trials] == [16, 32]
    assert (len(train), len(validation)) == (86, 35)
    assert counter.runs == [
        {"steps": 6, "train": 6, "validation": 3}, {"steps": 6, "train": 6, "validation": 3},
        {"steps": 3, "train": 3, "validation": 2}, {"steps": 3, "train": 3, "validation": 2}]
    # The pipeline's own size (8) for the search's arguments, then each tuned size once,
    # although each is trained on twice.
    assert train_builds == [8, 16, 32]
    assert validation_builds == [8, 16, 32]


def test_walk_forward_folds_train_with_the_trials_batch_size_on_their_own_rows(tmp_path):
    prepared = tiny_prepared(WalkForward(train_window=60, validation_window=30, step=40))
    folds = prepared.folds()
    hypermodel = tiny_lstm(prepared.input_shape)
    tuner = tuners.build_tuner("grid", hypermodel, directory=tmp_path, max_trials=2, seed=1,
                               validation="walk_forward", folds=folds)
    counter = BatchCounter()

    tuner.search(**hypermodels.fit_data(hypermodel, prepared), epochs=1, callbacks=[counter],
                 verbose=0)

    assert [(len(fold.train), len(fold.validation)) for fold in folds] == [(55, 25), (55, 25)]
    trials = sorted(tuner.oracle.trials.values(), key=lambda trial: trial.trial_id)
    sizes = [trial.hyperparameters.values["batch_size"] for trial in trials]
    assert sizes == [16, 32]
    # Each fold's 55 training windows, not the holdout split's 86.
    assert counter.runs == [expected_run(55, 25, size) for size in sizes for _ in folds]
    assert counter.runs[0] == {"steps": 4, "train": 4, "validation": 2}
    assert folds[1].fit_kwargs(32)["x"] is folds[1].train.batched(32)


def test_fit_data_adds_batched_data_only_for_a_hypermodel_that_takes_it():
    prepared = tiny_prepared()

    class PlainModel(keras_tuner.HyperModel):
        def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
            raise NotImplementedError

    tuned = hypermodels.fit_data(tiny_lstm(prepared.input_shape), prepared)
    plain = hypermodels.fit_data(PlainModel(), prepared)
    refit = hypermodels.fit_data(tiny_lstm(prepared.input_shape), prepared.refit_data())

    assert sorted(tuned) == ["batched_data", "validation_data", "x"]
    assert tuned["batched_data"] == prepared.fit_kwargs
    assert tuned["x"] is prepared.splits["train"].dataset
    assert sorted(plain) == ["validation_data", "x"]
    assert plain["validation_data"] is prepared.splits["validation"].batched(8)
    assert sorted(refit) == ["batched_data", "x"]


def test_fit_refuses_batched_data_it_cannot_give_the_tuned_batch_size():
    prepared = tiny_prepared()
    hypermodel = tiny_lstm(prepared.input_shape)
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)

    with pytest.raises(ValueError, match=re.escape(
            "LSTMHyperModel tunes batch_size over [16, 32], but its data comes already "
            "batched; pass batched_data")):
        hypermodel.fit(hp, model, **prepared.fit_kwargs(), epochs=1, verbose=0)


def test_no_hypermodel_module_imports_tensorflow():
    sources = sorted((ROOT / "hypermodels").glob("*.py"))

    assert [path.name for path in sources] == [
        "__init__.py", "base.py", "dense.py", "held.py", "lstm.py", "registry.py"]
    for path in sources:
        assert not re.search(r"^\s*(import|from)\s+tensorflow\b", path.read_text(), re.M), path


def test_hypermodels_build_and_train_on_jax_without_tensorflow():
    pytest.importorskip("jax", reason='pip install -e ".[jax]" runs this test')
    # The backend is chosen when Keras is first imported, so this runs in a fresh process.
    code = """
import json, sys
import keras
import keras_tuner
import numpy as np
import hypermodels
import hypermodels.base

hypermodel = hypermodels.LSTMHyperModel(input_shape=(8, 3), units=[4], batch_size=[16, 32])
hp = keras_tuner.HyperParameters()
hp.values["batch_size"] = 32
model = hypermodel.build(hp)
dense = hypermodels.DenseHyperModel(input_shape=(4,)).build(keras_tuner.HyperParameters())
inputs = np.zeros((80, 8, 3), "float32")
history = hypermodel.fit(hp, model, inputs, np.zeros((80, 1), "float32"), epochs=1, verbose=0)
print(json.dumps({"backend": keras.backend.backend(),
                  "tensorflow": sorted(name for name in sys.modules
                                       if name.split(".")[0] == "tensorflow")[:3],
                  "epochs": len(history.history["loss"]), "dense": dense.output_shape}))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=300,
                            env={**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT)})

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"backend": "jax", "tensorflow": [], "epochs": 1, "dense": [None, 1]}


def test_arrays_are_batched_by_model_fit_with_the_tuned_batch_size():
    hypermodel = hypermodels.DenseHyperModel(input_shape=(4,), units=[4], num_layers=[1, 1],
                                             batch_size=[12, 20])
    hp = keras_tuner.HyperParameters()
    hp.values["batch_size"] = 20
    model = hypermodel.build(hp)
    counter = BatchCounter()
    features = np.random.default_rng(0).normal(size=(50, 4)).astype("float32")

    hypermodel.fit(hp, model, features, features[:, :1], batch_size=999, epochs=1,
                   callbacks=[counter], verbose=0)

    assert counter.runs == [{"steps": 3, "train": 3, "validation": 0}]


def test_holds_arrays_tells_arrays_from_batches():
    import pandas as pd
    import tensorflow as tf

    rows = np.zeros((4, 2), "float32")
    arrays = [rows, [rows, rows], {"window": rows}, pd.DataFrame(rows), [[1.0, 2.0], [3.0]],
              tf.constant(rows), keras.ops.convert_to_tensor(rows)]
    batched = [tf.data.Dataset.from_tensor_slices(rows).batch(2), (row for row in rows),
               None, [], {}]

    assert [hypermodels.base.holds_arrays(data) for data in arrays] == [True] * 7
    assert [hypermodels.base.holds_arrays(data) for data in batched] == [False] * 5
