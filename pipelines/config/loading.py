"""Resolving a run's settings: defaults, then a file, then flags and `--set`, each value
remembering where it came from.

```python
config = load_config("configs/default.toml", {"tuner": {"max_epochs": 3}})
config, origins = resolve("runs/lstm-hyperband-AAPL-seed42/config.json",
                          sets=["tuner.max_trials=20"])
origins["tuner", "max_trials"]   # "--set"
```

Every failure is one `ConfigError` line that names the key, the value and where to fix it.
"""

from __future__ import annotations

import json
import pathlib
import tomllib
from collections.abc import Iterable
from typing import Any

import pydantic
import yaml

from pipelines.config import checks, schema
from pipelines.errors import ConfigError

Origins = dict[tuple[str, str], str]
SUFFIXES = (".toml", ".yaml", ".yml", ".json")


def load_config(path: str | pathlib.Path | None = None,
                overrides: dict[str, dict[str, Any]] | None = None,
                sets: Iterable[str] = ()) -> schema.Config:
    """Builds a checked `Config` from an optional file, flag overrides and `--set` items.

    Args:
        path: A `.toml`, `.yaml`, `.yml` or `.json` file (a run's `config.json` too), or
            None for the defaults.
        overrides: `{section: {key: value}}` applied after the file (command-line flags).
        sets: `section.key=value` items applied last.

    Raises:
        ConfigError: For a missing or unparsable file, an unknown section or key, a value of
            the wrong type or out of range, or settings that do not go together.
    """
    return resolve(path, overrides, sets)[0]


def resolve(path: str | pathlib.Path | None = None,
            overrides: dict[str, dict[str, Any]] | None = None,
            sets: Iterable[str] = ()) -> tuple[schema.Config, Origins]:
    """`load_config`, also returning where each value came from: `default`, the file's
    name, `flag` or `--set`."""
    layers: list[tuple[str, dict[str, Any]]] = []
    if path is not None:
        layers.append((pathlib.Path(path).name, read_file(pathlib.Path(path))))
    layers.append(("flag", overrides or {}))
    layers.append(("--set", _set_layer(sets)))
    values: dict[str, dict[str, Any]] = {section: {} for section in schema.SECTIONS}
    origins: Origins = {(section, key): "default" for section, key, _ in schema.fields()}
    for origin, layer in layers:
        _check_sections(layer, origin)
        for section, table in layer.items():
            if table is None:
                continue
            if not isinstance(table, dict):
                raise ConfigError(f"config section [{section}] must be a table of keys, got "
                                  f"{table!r}")
            for key, value in table.items():
                current = values[section].get(key)
                # A table given by a flag (--search-space) adds to the file's table.
                if isinstance(value, dict) and isinstance(current, dict):
                    value = {**current, **value}
                values[section][key] = value
                origins[section, key] = origin
    sections = {section: _build(section, cls, values[section], origins)
                for section, cls in schema.SECTIONS.items()}
    config = schema.Config(**sections)
    checks.validate(config)
    return config, origins


def read_file(path: pathlib.Path) -> dict[str, Any]:
    """A config file's tables as plain data.

    Raises:
        ConfigError: If it is missing, not UTF-8, of another kind, or does not parse.
    """
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; check the path")
    if path.suffix not in SUFFIXES:
        raise ConfigError(f"config file {path.name} must end in .toml, .yaml, .yml or .json")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path.name} is not UTF-8 text; save it as UTF-8") from None
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text) or {}
    except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise ConfigError(f"cannot parse {path.name}: {first_line}; fix the syntax") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path.name} must hold tables such as [tuner]")
    return data


def parse_set(item: str) -> tuple[str, str, Any]:
    """One `--set section.key=value` item; the value is read as TOML (`3`, `true`,
    `[32, 64]`, `{min = 0.1, max = 0.5}`), else as JSON (`{"units": [32, 64]}`), or else
    taken as text (`AAPL`).

    Raises:
        ConfigError: If it is not of that form or names no setting.
    """
    name, equals, text = item.partition("=")
    section, dot, key = name.strip().partition(".")
    if not equals or not dot or not key:
        raise ConfigError(f"--set {item!r} must be section.key=value, such as "
                          f"tuner.max_epochs=3")
    _check_sections({section: {}}, "--set")
    if key not in schema.SECTIONS[section].model_fields:
        raise ConfigError(f"unknown config key {section}.{key} in --set; valid keys: "
                          f"{', '.join(schema.SECTIONS[section].model_fields)}")
    try:
        value = tomllib.loads(f"value = {text.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text.strip()
    return section, key, value


def _set_layer(sets: Iterable[str]) -> dict[str, dict[str, Any]]:
    layer: dict[str, dict[str, Any]] = {}
    for item in sets:
        section, key, value = parse_set(item)
        layer.setdefault(section, {})[key] = value
    return layer


def _check_sections(layer: dict[str, Any], origin: str) -> None:
    unknown = sorted(set(layer) - set(schema.SECTIONS))
    if unknown:
        where = "" if origin in ("flag",) else f" in {origin}"
        raise ConfigError(f"unknown config section {unknown[0]!r}{where}; use "
                          f"{', '.join(schema.SECTIONS)}")


def _build(section: str, cls: type[schema.Section], values: dict[str, Any],
           origins: Origins) -> schema.Section:
    try:
        return cls(**values)
    except pydantic.ValidationError as error:
        raise ConfigError(_one_line(section, cls, error.errors()[0], values, origins)) from None


def _one_line(section: str, cls: type[schema.Section], error: Any, values: dict[str, Any],
              origins: Origins) -> str:
    """The first of pydantic's errors as one line that names the key and where to fix it."""
    key = str(error["loc"][0]) if error["loc"] else ""
    fields = cls.model_fields
    if error["type"] == "extra_forbidden":
        return f"unknown config key {section}.{key}; valid keys: {', '.join(fields)}"
    value = values.get(key, error.get("input"))
    words = key.replace("_", " ")
    fix = _where_to_fix(section, key, origins)
    context = error.get("ctx") or {}
    for bound, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
        if bound in context:
            return f"{words} must be {sign} {context[bound]}, got {value}; fix {fix}"
    if error["type"] == "literal_error" and isinstance(value, str):
        allowed = ", ".join(repr(choice) if choice == "" else str(choice)
                            for choice in checks.choices(fields[key]))
        return f"unknown {words} {value!r}; use one of {allowed}"
    return (f"config key {section}.{key} must be {checks.type_name(fields[key].annotation)}, "
            f"got {value!r}")


def _where_to_fix(section: str, key: str, origins: Origins) -> str:
    origin = origins.get((section, key), "default")
    if origin == "--set":
        return f"--set {section}.{key}"
    if origin in ("flag", "default"):
        return schema.flag_of(section, key)
    return f"{section}.{key} in {origin}"
