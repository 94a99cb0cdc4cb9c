"""Prints how long the whole default `ktlab tune` takes on TensorFlow and on JAX.

It runs `ktlab tune --no-refit --quiet` (the default search, the bundled data) once per
step, back to back in one output folder: on TensorFlow; on JAX with an empty compilation
cache (a first run); on JAX again, reading the compilations the first JAX run left in
`OUTPUT_DIR/.jax-cache` (`pipelines.run.quiet.cache_jax_compilations`), as a second
process does (`--workers`, `--resume`, `ktlab compare`, the next run); and on TensorFlow
again, so that a change in the machine's load shows. For each it prints the command's
wall time, the search's and the time after it, as the summary line gives them, and the
best validation loss. The default backend is the one that wins a first run.

    python benchmarks/backends.py
    python benchmarks/backends.py --max-epochs 3 --factor 3     # a quick check
    python benchmarks/backends.py --workers 2

docs/performance.md quotes its output with the date and machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

from overhead import ROOT, machine  # this folder is on sys.path when a benchmark runs

# (label, backend, whether the JAX cache is emptied first)
STEPS = (("tensorflow", "tensorflow", False), ("jax, empty cache", "jax", True),
         ("jax, cache of run 2", "jax", False), ("tensorflow again", "tensorflow", False))
TIMING = re.compile(r"epochs, search (?P<search>[\d.]+) s; after it (?P<after>[\d.]+) s")


def run_step(backend: str, args: argparse.Namespace, output_dir: pathlib.Path,
             name: str) -> dict:
    """Runs one `ktlab tune` on `backend` and reads its summary line and metrics."""
    command = [sys.executable, "-m", "pipelines", "tune", "--quiet", "--no-refit",
               "--config", args.config, "--output-dir", str(output_dir), "--run-name", name,
               "--workers", str(args.workers)]
    for flag, value in (("--max-epochs", args.max_epochs), ("--factor", args.factor)):
        if value is not None:
            command += [flag, str(value)]
    # The cache ktlab sets up is measured, not one the user's environment names.
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("JAX_")}
    environment["KERAS_BACKEND"] = backend
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                               env=environment)
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-5:]
        raise SystemExit("backends: ktlab tune on " + backend + " exited with "
                         f"{completed.returncode}:\n" + "\n".join(tail))
    timing = TIMING.search(completed.stdout)
    metrics = json.loads((output_dir / name / "metrics.json").read_text())
    return {"wall": wall, "search": float(timing["search"]), "after": float(timing["after"]),
            "trials": metrics["trials"], "epochs": metrics["epochs"],
            "best": metrics["best_score"], "backend": metrics["backend"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "default.toml"))
    parser.add_argument("--max-epochs", type=int, help="tuner.max_epochs")
    parser.add_argument("--factor", type=int, help="tuner.factor")
    parser.add_argument("--workers", type=int, default=1, help="--workers (1)")
    args = parser.parse_args(argv)
    print(f"{datetime.date.today()}, {machine()}; ktlab tune --no-refit --workers "
          f"{args.workers}, {pathlib.Path(args.config).name}, back to back")
    print(f"{'run':>3}  {'backend':<20} {'trials':>6} {'epochs':>6} {'wall s':>7} "
          f"{'search s':>8} {'after s':>7}  best val_loss")
    with tempfile.TemporaryDirectory(prefix="ktlab-backends-") as folder:
        output_dir = pathlib.Path(folder)
        for number, (label, backend, empty) in enumerate(STEPS, start=1):
            if empty:
                shutil.rmtree(output_dir / ".jax-cache", ignore_errors=True)
            row = run_step(backend, args, output_dir, f"run-{number}")
            print(f"{number:>3}  {label:<20} {row['trials']:>6} {row['epochs']:>6} "
                  f"{row['wall']:>7.1f} {row['search']:>8.1f} {row['after']:>7.1f}  "
                  f"{row['best']:.4f}", flush=True)


if __name__ == "__main__":
    main()
