"""Text generated from the schema: `ktlab init`'s commented config file (also
`configs/default.toml`) and the reference page of every key (`docs/configuration.md`).

Regenerate both after changing a setting (a test fails until they match):

```
python -m pipelines.config.reference
```
"""

from __future__ import annotations

import json
import pathlib
import textwrap
from typing import Any

from pipelines.config import checks, schema

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_TOML = ROOT / "configs" / "default.toml"
REFERENCE_PAGE = ROOT / "docs" / "configuration.md"

HEADER = """\
# Every setting of `ktlab tune` at its default, written by `ktlab init` from the schema
# (pipelines/config/schema.py). Change what you need and run
#   ktlab tune --config THIS_FILE
# Flags and --set section.key=value override the file.
"""


def toml_value(value: Any) -> str:
    """A value as TOML: `true`, `3`, `"text"`, `["a", "b"]`, `{min = 0.1, max = 0.5}`."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key} = {toml_value(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def _allowed(field: Any) -> str:
    values = checks.choices(field)
    return ", ".join(json.dumps(value) for value in values)


def commented_toml() -> str:
    """A config file with every key at its default, each under its help as a comment."""
    lines = [HEADER]
    for section, cls in schema.SECTIONS.items():
        lines.append(f"[{section}]")
        for key, field in cls.model_fields.items():
            text = field.description
            if _allowed(field):
                text += f" One of {_allowed(field)}."
            text += f" Flag: {schema.flag_of(section, key)}."
            lines.extend(textwrap.wrap(text, 92, initial_indent="# ",
                                       subsequent_indent="# "))
            default = field.get_default(call_default_factory=True)
            if default is None:
                lines.append(f"# {key} =   (unset)")
            else:
                lines.append(f"{key} = {toml_value(default)}")
        lines.append("")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def reference_page() -> str:
    """The reference page: one table per section, one row per key."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from `pipelines/config/schema.py` by `python -m pipelines.config.reference`;"
        " do not edit by hand.",
        "",
        "A setting comes from its default, then a config file (`--config`: TOML, YAML or "
        "JSON, a run's `config.json` included), then its flag, then `--set section.key=value`."
        " `ktlab config` prints each value and where it came from; `ktlab init` writes a "
        "commented file with every key.",
        "",
    ]
    for section, cls in schema.SECTIONS.items():
        lines += [f"## `[{section}]`", "", "| key | flag | type | default | help |",
                  "|---|---|---|---|---|"]
        for key, field in cls.model_fields.items():
            default = field.get_default(call_default_factory=True)
            shown = "(unset)" if default is None else toml_value(default)
            help_text = field.description
            if _allowed(field):
                help_text += f" One of {_allowed(field)}."
            flag = schema.flag_of(section, key)
            if field.annotation is bool:
                flag += f" / --no-{flag[2:]}"
            lines.append(f"| `{key}` | `{flag}` | {_cell(checks.type_name(field.annotation))} "
                         f"| `{_cell(shown)}` | {_cell(help_text)} |")
        lines.append("")
    return "\n".join(lines)


def write_all() -> list[pathlib.Path]:
    """Rewrites `configs/default.toml` and `docs/configuration.md` from the schema."""
    DEFAULT_TOML.write_text(commented_toml(), encoding="utf-8")
    REFERENCE_PAGE.parent.mkdir(exist_ok=True)
    REFERENCE_PAGE.write_text(reference_page(), encoding="utf-8")
    return [DEFAULT_TOML, REFERENCE_PAGE]


if __name__ == "__main__":
    for path in write_all():
        print(path)
