# PYTHON_ARGCOMPLETE_OK (argcomplete completes `ktlab` only where its entry point says so.)
"""The `ktlab` command line: its commands (`commands`) and flags (`flags`)."""

from typing import NoReturn

from pipelines.cli.commands import main
from pipelines.run import quiet

__all__ = ["main", "run"]


def run() -> NoReturn:
    """The `ktlab` executable: `main()`, then an exit that skips TensorFlow's teardown."""
    quiet.end_process(main())
