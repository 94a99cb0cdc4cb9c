"""`python -m pipelines` runs the `ktlab` command line."""

import sys

from pipelines.cli import main

sys.exit(main())
