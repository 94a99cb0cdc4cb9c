"""The `ktlab` command line: its commands (`commands`) and flags (`flags`)."""

from pipelines.cli.commands import main

__all__ = ["main"]
