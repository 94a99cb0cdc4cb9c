"""ktlab on Keras's JAX backend: the same command, run directory and files."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest
from conftest import make_prices, yahoo_csv

KTLAB = pathlib.Path(sys.executable).parent / "ktlab"


def test_a_tiny_search_runs_on_the_jax_backend(tmp_path):
    pytest.importorskip("jax", reason='pip install -e ".[jax]" runs this test')
    data = tmp_path / "prices.csv"
    data.write_text(yahoo_csv(make_prices(160)))
    # The backend is chosen when Keras is first imported, so the search runs in a process
    # of its own.
    command = [str(KTLAB), "tune", "--data", str(data), "--lookback", "5", "--test-size", "20",
               "--validation-size", "20", "--output-dir", str(tmp_path / "runs"), "--tuner",
               "hyperband", "--max-epochs", "2", "--factor", "2", "--search-space",
               '{"units": [4], "num_layers": [1, 1], "batch_size": [16]}', "--quiet"]
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith("JAX_")}
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path,
                            timeout=600, env={**environment, "KERAS_BACKEND": "jax"})
    assert result.returncode == 0, result.stderr
    # JAX's compilations are kept beside the runs, and a second process finds every one
    # of them there: it compiles nothing new.
    cache = tmp_path / "runs" / ".jax-cache"
    cached = sorted(path.name for path in cache.iterdir())
    assert len(cached) >= 2  # at least the training and the evaluation step
    again = subprocess.run([*command, "--overwrite"], capture_output=True, text=True,
                           cwd=tmp_path, timeout=600,
                           env={**environment, "KERAS_BACKEND": "jax"})
    assert again.returncode == 0, again.stderr
    assert sorted(path.name for path in cache.iterdir()) == cached
    run_dir = tmp_path / "runs" / "lstm-hyperband-prices-seed42"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["backend"] == "jax"
    assert metrics["trials"] == 5
    assert metrics["best_model"]["source"] == "refit"
    assert (run_dir / "best_model.keras").is_file()
    assert result.stdout.splitlines()[1].startswith("5 trials (0 failed)")
