"""`python -m pipelines` runs the `ktlab` command line."""

from pipelines.cli import run

run()
