"""What `ktlab config`, `ktlab list` and `ktlab show` print: plain text, no TensorFlow."""

from __future__ import annotations

import pathlib

from pipelines.config import Config, reference, schema
from pipelines.config.loading import Origins


def format_settings(config: Config, origins: Origins) -> str:
    """Every setting's resolved value and where it came from, one per line, by section."""
    values = config.to_dict()
    lines = []
    for section in schema.SECTIONS:
        lines.append(f"[{section}]")
        width = max(len(key) for key in values[section])
        for key, value in values[section].items():
            shown = "(unset)" if value is None else reference.toml_value(value)
            lines.append(f"{key:<{width}} = {shown:<24} # {origins[section, key]}")
        lines.append("")
    return "\n".join(lines).rstrip()


def format_catalogue() -> str:
    """The models, tuners and bundled datasets, one line each."""
    raise NotImplementedError


def format_run(run_dir: pathlib.Path, top: int = 10) -> str:
    """A finished run's leaderboard of trials, best configuration and scores."""
    raise NotImplementedError
