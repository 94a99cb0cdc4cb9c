"""The command-line reference page (`docs/cli.md`), generated from the parser itself, and
the site's home page (`docs/index.md`), generated from the README.

```
python -m pipelines.cli.reference    # also rewrites the configuration reference
```

A test fails until the page matches the parser, so a renamed flag cannot leave it behind.
"""

from __future__ import annotations

import argparse
import os
import pathlib

from pipelines.cli import flags
from pipelines.config import reference as config_reference

CLI_PAGE = config_reference.ROOT / "docs" / "cli.md"
README = config_reference.ROOT / "README.md"
HOME_PAGE = config_reference.ROOT / "docs" / "index.md"
# The README's links, as the site's home page reaches the same pages.
HOME_LINKS = {"](docs/": "](", "](CHANGELOG.md)": "](changelog.md)",
              "[CONTRIBUTING.md](CONTRIBUTING.md)": "`CONTRIBUTING.md`",
              "[data/README.md](data/README.md)": "`data/README.md`"}
# argparse wraps help to the terminal's width; the page is written at one fixed width.
WIDTH = "100"


def cli_page() -> str:
    """Every command's `--help`, as `ktlab COMMAND --help` prints it at 100 columns."""
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    try:
        parser = flags.build_parser()
        commands = next(action for action in parser._actions
                        if isinstance(action, argparse._SubParsersAction))
        lines = ["# Command line", "",
                 "Generated from the parser (`pipelines/cli/flags.py`, whose setting flags come "
                 "from the schema) by `python -m pipelines.cli.reference`; do not edit by hand.",
                 "", "```text", parser.format_help().rstrip(), "```", ""]
        for name, command in commands.choices.items():
            lines += [f"## `ktlab {name}`", "", "```text", command.format_help().rstrip(),
                      "```", ""]
        return "\n".join(lines)
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous


def home_page() -> str:
    """The site's home page: the README, its links pointing inside the site."""
    text = README.read_text(encoding="utf-8")
    for old, new in HOME_LINKS.items():
        text = text.replace(old, new)
    return ("<!-- Generated from README.md by python -m pipelines.cli.reference. -->\n"
            + text)


def write_all() -> list[pathlib.Path]:
    """Rewrites the command-line page, the home page and the configuration reference."""
    CLI_PAGE.write_text(cli_page(), encoding="utf-8")
    HOME_PAGE.write_text(home_page(), encoding="utf-8")
    return [*config_reference.write_all(), CLI_PAGE, HOME_PAGE]


if __name__ == "__main__":
    for path in write_all():
        print(path)
