# PYTHON_ARGCOMPLETE_OK (argcomplete completes `ktlab` only where its entry point says so.)
"""The `ktlab` command line: its commands (`commands`) and flags (`flags`)."""

from pipelines.cli.commands import main

__all__ = ["main"]
