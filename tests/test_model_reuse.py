"""A traced model trains the next configuration of its structure as a fresh one would.

`tuners.observers.model_pool`: the built-in hypermodels declare `structure(hp)` and hold
the dropout rate, learning rate, weight decay and momentum in variables
(`hypermodels.held`), so the tuner traces one model per structure and gives it each
configuration's fresh state. Real training on tiny data, on TensorFlow in this process
and on JAX in a process of its own (Keras picks its backend at its first import).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import keras
import keras_tuner
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import hypermodels
import tuners
from tuners.observers import kept_models, model_pool

TESTS = pathlib.Path(__file__).resolve().parent
ROOT = TESTS.parent
WINDOW, FEATURES = 8, 3


@contextlib.contextmanager
def counted_traces() -> Iterator[collections.Counter]:
    """Counts the calls of every model's `train_step` by model, while it lasts.

    Keras calls `train_step` in Python only while it traces the training step (a
    `tf.function` on TensorFlow, a `jax.jit` per batch shape on JAX), so the count is the
    number of traces. The real step runs: this wraps, it does not replace.
    """
    counts: collections.Counter = collections.Counter()
    original = keras.Model.train_step

    def train_step(model: Any, *args: Any, **kwargs: Any) -> Any:
        counts[id(model)] += 1
        return original(model, *args, **kwargs)

    keras.Model.train_step = train_step
    try:
        yield counts
    finally:
        keras.Model.train_step = original


def series(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows of a tiny random series, and a target each that depends on them."""
    windows = np.random.default_rng(seed).normal(size=(count, WINDOW, FEATURES))
    return windows.astype("float32"), (0.5 * windows[:, -1, :1]).astype("float32")


def configuration(hypermodel: keras_tuner.HyperModel, **values: Any
                  ) -> keras_tuner.HyperParameters:
    """The hypermodel's hyperparameters with `values` set, the others at their defaults."""
    hp = keras_tuner.HyperParameters()
    hypermodel.build(hp)
    hp.values.update(values)
    return hp


def fresh_model(hypermodel: keras_tuner.HyperModel, hp: keras_tuner.HyperParameters,
                seed: int) -> keras.Model:
    """A model built as the tuner builds one: seeded, optimizer built before tracing."""
    keras.utils.set_random_seed(seed)
    model = hypermodel.build(hp)
    kept_models.build_optimizer(model)
    return model


def state(model: keras.Model) -> list[np.ndarray]:
    """Copies of every variable of the model and of its optimizer."""
    return [np.array(variable.numpy(), copy=True)
            for variable in [*model.variables, *model.optimizer.variables]]


def reuse_against_fresh(kind: str) -> dict[str, Any]:
    """Trains configuration A, then B on A's pooled model and B on its own fresh model.

    B differs from A in every value that changes no shape (dropout, learning rate, batch
    size; for the dense model also momentum and weight decay). Returns what the tests
    compare, as JSON-ready values.
    """
    if kind == "lstm":
        hypermodel = hypermodels.LSTMHyperModel(
            input_shape=(WINDOW, FEATURES), units=[4, 8], num_layers=[1, 2],
            batch_size=[16, 32])
        first = configuration(hypermodel, num_layers=2, units=4, dropout=0.1,
                              learning_rate=1e-3, batch_size=16)
        second = configuration(hypermodel, num_layers=2, units=4, dropout=0.5,
                               learning_rate=3e-2, batch_size=32)
    else:
        hypermodel = hypermodels.DenseHyperModel(
            input_shape=(WINDOW, FEATURES), units=[4, 8], num_layers=[1, 2],
            optimizers=["sgd"], batch_size=[16, 32])
        first = configuration(hypermodel, num_layers=2, units_0=8, units_1=4, dropout=0.0,
                              momentum=0.0, weight_decay=1e-6, learning_rate=1e-3,
                              batch_size=16)
        second = configuration(hypermodel, num_layers=2, units_0=8, units_1=4, dropout=0.3,
                               momentum=0.9, weight_decay=1e-2, learning_rate=3e-2,
                               batch_size=32)
    train, validation = series(96, seed=0), series(32, seed=1)

    def batched(batch_size: int) -> dict[str, Any]:
        # Datasets, as the pipeline gives them (`hypermodels.fit_data`) on either backend.
        return {"x": tf.data.Dataset.from_tensor_slices(train).batch(batch_size),
                "validation_data": tf.data.Dataset.from_tensor_slices(validation).batch(
                    batch_size)}

    def fit(model: keras.Model, hp: keras_tuner.HyperParameters) -> list[float]:
        history = hypermodel.fit(hp, model, batched_data=batched, epochs=3, verbose=0)
        return [float(value) for value in history.history["val_loss"]]

    pool = model_pool.ModelPool()
    with counted_traces() as traces:
        first_model = pool.take(hypermodel.structure(first), fresh_model(hypermodel, first, 1))
        fit(first_model, first)
        pool.release()
        built_second = fresh_model(hypermodel, second, 2)
        built_state = state(built_second)
        reused = pool.take(hypermodel.structure(second), built_second)
        reused_state = state(reused)
        reused_losses = fit(reused, second)
        reused_weights = [np.array(weight.numpy(), copy=True) for weight in reused.weights]
        own = fresh_model(hypermodel, second, 2)
        own_state = state(own)
        own_losses = fit(own, second)
    return {
        "same_structure": hypermodel.structure(first) == hypermodel.structure(second),
        "reused_the_traced_model": reused is first_model,
        "counts": [pool.traced, pool.reused],
        "variables": len(own_state),
        "reused_starts_as_built": all(np.array_equal(left, right) for left, right
                                      in zip(reused_state, built_state, strict=True)),
        "fresh_starts_as_built": all(np.array_equal(left, right) for left, right
                                     in zip(own_state, built_state, strict=True)),
        "reused_val_loss": reused_losses,
        "fresh_val_loss": own_losses,
        "same_final_weights": all(np.array_equal(left, right.numpy()) for left, right
                                  in zip(reused_weights, own.weights, strict=True)),
        "reused_model_traces": traces[id(first_model)],
        "reused_rate": float(reused.get_layer("dropout_0").rate),
    }


def check_reuse(result: dict[str, Any]) -> None:
    assert result["same_structure"]
    assert result["reused_the_traced_model"]
    assert result["counts"] == [1, 1]
    assert result["reused_starts_as_built"]
    assert result["fresh_starts_as_built"]
    assert len(result["reused_val_loss"]) == 3
    assert result["reused_val_loss"] == pytest.approx(result["fresh_val_loss"], rel=1e-6)
    assert result["same_final_weights"]


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow in-process")
@pytest.mark.parametrize(("kind", "variables", "rate"), [
    # LSTM: 2 layers of 3 weights and a seed, 2 dropout layers of a seed and a rate, a
    # dense of 2; Adam's iterations, learning rate and 2 moments of each of the 8 weights.
    ("lstm", 8 + 4 + 2 + 2 + 16, 0.5),
    # Dense: 3 layers of 2 weights, 2 dropout layers; SGD's iterations, learning rate,
    # momentum, weight decay and a momentum slot of each of the 6 weights.
    ("dense", 6 + 4 + 4 + 6, 0.3),
])
def test_a_reused_model_starts_and_ends_as_a_fresh_one_on_tensorflow(kind, variables, rate):
    result = reuse_against_fresh(kind)
    check_reuse(result)
    assert result["variables"] == variables
    assert result["reused_rate"] == pytest.approx(rate)
    # TensorFlow traced the step once for both configurations: a dataset's batches have
    # an unknown size, so the second batch size needed no new trace.
    assert result["reused_model_traces"] == 1


def test_a_reused_model_starts_and_ends_as_a_fresh_one_on_jax():
    pytest.importorskip("jax", reason='pip install -e ".[jax]" runs this test')
    code = ("import json, test_model_reuse as t; "
            "print(json.dumps(t.reuse_against_fresh('lstm')))")
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600,
        env={**os.environ, "KERAS_BACKEND": "jax",
             "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)])})
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    check_reuse(outcome)
    # JAX compiles once per batch shape: 16 and 32 rows, each dividing the data.
    assert outcome["reused_model_traces"] == 2


class SeriesSplit:
    """Training and validation windows of a tiny series, as datasets at any batch size."""

    def __init__(self, index: int, train_seed: int, validation_seed: int) -> None:
        self.index = index
        self.train, self.validation = series(64, train_seed), series(32, validation_seed)

    def fit_kwargs(self, batch_size: int | None = None) -> dict[str, Any]:
        size = batch_size or 16
        return {"x": tf.data.Dataset.from_tensor_slices(self.train).batch(size),
                "validation_data": tf.data.Dataset.from_tensor_slices(
                    self.validation).batch(size)}


def small_lstm() -> hypermodels.LSTMHyperModel:
    """The default space in small: 2 layer counts x 2 unit sizes, 2 batch sizes."""
    return hypermodels.LSTMHyperModel(input_shape=(WINDOW, FEATURES), units=[4, 8],
                                      num_layers=[1, 2], batch_size=[16, 32],
                                      learning_rate=[1e-3, 1e-1])


def deterministic_search(directory: pathlib.Path, name: str, **arguments: Any
                         ) -> tuple[Any, collections.Counter, Any]:
    """A seeded search with TensorFlow's deterministic ops; its tuner, traces and trials."""
    # As `ktlab tune --deterministic` does; TensorFlow has no public switch to turn it off,
    # so it stays on in this process, as after such a search.
    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(3)
    hypermodel = small_lstm()
    budget = {"max_epochs": 4, "factor": 2} if name == "hyperband" else {"max_trials": 3}
    tuner = tuners.build_tuner(name, hypermodel, directory=directory, seed=11, **budget,
                               **arguments)
    with counted_traces() as traces:
        tuner.search(**hypermodels.fit_data(hypermodel, SeriesSplit(0, 0, 1)), epochs=2,
                     callbacks=tuners.default_callbacks(patience=10), verbose=0)
    return tuner, traces, tuners.load_trials(directory).set_index("trial_id")


@pytest.fixture(scope="module")
def hyperband_searches(tmp_path_factory) -> dict[str, Any]:
    """The same Hyperband search (15 trials, 5 promotions) with reuse, and with every
    model built anew as keras-tuner builds them."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("counts TensorFlow's traces")
    return {
        "reuse": deterministic_search(tmp_path_factory.mktemp("reuse"), "hyperband"),
        "anew": deterministic_search(tmp_path_factory.mktemp("anew"), "hyperband",
                                     reuse_models=False, keep_models=False),
    }


def test_a_hyperband_search_traces_one_model_per_structure(hyperband_searches):
    tuner, traces, trials = hyperband_searches["reuse"]
    assert len(trials) == 15
    assert trials["parent_trial_id"].notna().sum() == 5
    assert sorted(trials["hp_batch_size"].unique()) == [16, 32]
    structures = {tuner.hypermodel.structure(trial.hyperparameters)
                  for trial in tuner.oracle.trials.values()}
    assert len(structures) == 4
    # One trace per structure: neither a promotion (its parent's checkpoint is loaded into
    # a fresh model whose state the pooled one takes) nor a new batch size (a dataset's
    # batches have an unknown size on TensorFlow) needs another.
    assert sum(traces.values()) == 4
    assert (tuner.model_pool.traced, tuner.model_pool.reused) == (4, 11)
    # The search ended, so the pool let go of its models.
    assert len(tuner.model_pool) == 0
    _, anew_traces, _ = hyperband_searches["anew"]
    assert sum(anew_traces.values()) == 15


def test_reuse_gives_the_scores_of_models_built_anew(hyperband_searches):
    _, _, reused = hyperband_searches["reuse"]
    _, _, anew = hyperband_searches["anew"]
    columns = ["score", "best_epoch", "epochs", "parent_trial_id", "hp_units", "hp_dropout"]
    pd.testing.assert_frame_equal(reused[columns], anew[columns])
    assert reused["score"].notna().all()


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="counts TensorFlow's traces")
def test_walk_forward_folds_share_the_traced_model(tmp_path):
    folds = [SeriesSplit(0, 0, 1), SeriesSplit(1, 2, 3)]
    searches = [deterministic_search(tmp_path / label, "random", validation="walk_forward",
                                     folds=folds, **arguments)
                for label, arguments in (("reuse", {}), ("anew", {"reuse_models": False}))]
    (tuner, traces, reused), (_, anew_traces, anew) = searches
    structures = {tuner.hypermodel.structure(trial.hyperparameters)
                  for trial in tuner.oracle.trials.values()}
    # 3 trials of 2 folds each: one trace per structure instead of one per fold.
    assert sum(anew_traces.values()) == 6
    assert sum(traces.values()) == len(structures) < 6
    assert list(reused["fold_scores"]) == list(anew["fold_scores"])
    assert reused["score"].tolist() == anew["score"].tolist()
