"""What `ktlab tune --dry-run` prints: the plan of a search, without importing TensorFlow."""

from __future__ import annotations

from pipelines.config import Config


def describe_plan(config: Config, resume: bool = False) -> str:
    """Data and split sizes, model and search space, trials and epochs, run directory."""
    raise NotImplementedError
