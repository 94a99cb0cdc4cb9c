"""The documentation: the site builds with warnings as errors, the generated pages are in
step with the code, and every `ktlab ...` command in the README and the docs parses."""

from __future__ import annotations

import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

from pipelines.cli import flags
from pipelines.cli import reference as cli_reference

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").glob("*.md"))
# A command starts a line of a code block, or follows `&&` in one.
COMMAND = re.compile(r"(?:^|&& )(ktlab (?:[^#\n`]|#(?! ))*)", re.MULTILINE)


def code_blocks(text: str) -> list[str]:
    """The shell code blocks of a Markdown text (fenced as bash, sh, console or nothing)."""
    blocks, current, language = [], None, ""
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            if current is None:
                current, language = [], line.strip().strip("`")
            else:
                if language in ("", "bash", "sh", "console"):
                    # A line that ends in a backslash goes on in the next one.
                    blocks.append("\n".join(current).replace("\\\n", " "))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def commands() -> list[tuple[str, str]]:
    """Every `ktlab` command in a code block of the README or a docs page, with its file."""
    found = []
    for path in [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *PAGES]:
        if path.name == "cli.md":  # The parser's own help.
            continue
        for block in code_blocks(path.read_text()):
            for match in COMMAND.finditer(block):
                line = match.group(1).strip()
                if not line.startswith("ktlab: "):
                    found.append((path.name, line))
    return found


def test_the_readme_fits_in_200_lines():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def test_the_site_builds_with_warnings_as_errors(tmp_path):
    environment = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f",
                             str(ROOT / "mkdocs.yml"), "-d", str(tmp_path / "site")],
                            capture_output=True, text=True, env=environment, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr
    built = {path.relative_to(tmp_path / "site").as_posix()
             for path in (tmp_path / "site").rglob("index.html")}
    assert {"index.html", "cli/index.html", "configuration/index.html",
            "changelog/index.html", "performance/index.html"} <= built
    # The changelog page shows the repository's CHANGELOG.md.
    assert "any time series" in (tmp_path / "site" / "changelog" / "index.html").read_text()


def test_the_generated_pages_are_in_step_with_the_code():
    assert cli_reference.CLI_PAGE.read_text() == cli_reference.cli_page(), (
        "run: python -m pipelines.cli.reference")
    assert cli_reference.HOME_PAGE.read_text() == cli_reference.home_page(), (
        "run: python -m pipelines.cli.reference")


def test_the_docs_show_at_least_one_command_of_each_kind():
    used = {shlex.split(line)[1] for _, line in commands()}
    assert {"tune", "data", "config", "init", "list", "show", "compare", "plot",
            "importance", "predict", "brackets"} <= used


@pytest.mark.parametrize(("page", "line"), commands())
def test_every_command_in_the_docs_parses(page, line):
    argv = shlex.split(line)[1:]
    parser = flags.build_parser()
    try:
        parser.parse_args(argv)
    except SystemExit as exit_request:
        # --help and --version exit 0; anything else is a command the parser refuses.
        assert exit_request.code == 0, f"{page}: {line}"
