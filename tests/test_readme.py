"""The README's quick start and CI run the same commands."""

from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_quick_start_is_two_commands_and_ci_runs_the_second_verbatim():
    install_and_run, install_and_test = quick_start_commands()
    assert install_and_run.endswith("pip install -e . && ktlab tune")
    assert install_and_test.endswith('pip install -e ".[dev]" && python -m pytest -n 2')
    ci_script = (ROOT / ".ci" / "run").read_text().splitlines()
    assert install_and_test in ci_script


def test_pyproject_holds_only_build_system():
    text = (ROOT / "pyproject.toml").read_text()
    assert re.findall(r"^\[(.+)\]$", text, flags=re.MULTILINE) == ["build-system"]
