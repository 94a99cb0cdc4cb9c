"""A search leaves the process as it found it: warnings, loggers, file descriptor 2, the
garbage collector and keras-tuner's globals, so that a notebook can run two searches."""

from __future__ import annotations

import gc
import logging
import os
import warnings

import pytest
from conftest import make_prices, yahoo_csv

from pipelines.cli import main
from pipelines.config import load_config
from pipelines.recipe import run_search
from pipelines.run import quiet
from tuners import distribution as tuner_distribution

SPACE = '{"units": [4], "num_layers": [1, 1], "batch_size": [16]}'


def process_state() -> dict:
    """What a search could change in the process that runs it."""
    from keras_tuner.src.distribute import oracle_client

    root, ktlab = logging.getLogger(), logging.getLogger("ktlab")
    descriptor = os.fstat(2)
    return {
        "warning filters": list(warnings.filters),
        "root logger": (list(root.handlers), root.level),
        "ktlab logger": (list(ktlab.handlers), ktlab.level, ktlab.propagate),
        "file descriptor 2": (descriptor.st_dev, descriptor.st_ino),
        "gc freeze count": gc.get_freeze_count(),
        "keras-tuner environment": {name: os.environ.get(name)
                                    for name in tuner_distribution.ENVIRONMENT},
        "keras-tuner client timeout": oracle_client.TIMEOUT,
        # The command line points JAX's compilation cache at the runs' folder.
        "JAX cache environment": {name: os.environ.get(name)
                                  for name in quiet.JAX_CACHE_VARIABLES},
    }


@pytest.fixture
def tiny_flags(tmp_path, write_csv) -> list[str]:
    path = write_csv(yahoo_csv(make_prices(120)))
    return ["--data", str(path), "--lookback", "5", "--test-size", "20",
            "--validation-size", "20", "--output-dir", str(tmp_path / "runs"),
            "--search-space", SPACE, "--tuner", "random", "--max-trials", "2",
            "--max-epochs", "1", "--no-refit"]


def test_two_searches_in_one_process_leave_it_as_they_found_it(tiny_flags, tmp_path):
    # Importing TensorFlow changes the process once, whoever imports it; a search must
    # change nothing more.
    quiet.import_tensorflow()
    before = process_state()
    assert main(["tune", *tiny_flags, "--quiet", "--tensorboard", "--run-name", "first"]) == 0
    after_first = process_state()
    assert after_first == before
    config = load_config(None, {
        "data": {"source": tiny_flags[1], "lookback": 5, "test_size": 20,
                 "validation_size": 20},
        "model": {"search_space": {"units": [4], "num_layers": [1, 1], "batch_size": [16]}},
        "tuner": {"name": "random", "max_trials": 2, "max_epochs": 1},
        "run": {"output_dir": str(tmp_path / "runs"), "run_name": "second", "refit": False}})
    result = run_search(config)
    assert len(result.trials) == 2
    assert process_state() == before
    assert (tmp_path / "runs" / "first" / "tensorboard").is_dir()
