"""The explicit search-space syntax of `model.search_space`, converted to what a hypermodel's
constructor takes.

A config says by its form what each range is, whatever the argument:

```toml
[model.search_space]
units = {choices = [32, 64]}                          # a list of values to try
dropout = {min = 0.0, max = 0.5}                      # a range
learning_rate = {min = 1e-4, max = 1e-2, log = true}  # a range sampled on a log scale
num_layers = {value = 2}                              # one fixed value
```

A hypermodel's constructor takes plain lists, a list of choices or a `[min, max]` pair
(`hypermodels/base.py`), so the argument decided what a list meant. Which of those an
argument takes is declared in the model's registry entry (`ModelSpec.argument_kinds`), so a
form that does not suit its argument is one `ConfigError` line before TensorFlow is imported:
`pipelines.config.checks` converts a built-in model's forms when the config is loaded, and
`pipelines.run.build` converts them again, for any model, when it builds one (a user's class,
and its `argument_kinds`, are only known then).

The conversion lives here rather than in `ModelSpec.arguments` because it speaks the config
file's language (`model.search_space.units`, `ConfigError`), which `hypermodels` does not
import; the hypermodels stay usable on their own with plain lists. The old form, the
constructor's own list, is still passed on as it is, with one notice line that suggests the
explicit form, until the next version.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pipelines.errors import ConfigError

if TYPE_CHECKING:
    from hypermodels.registry import ModelSpec
    from pipelines.config import ModelConfig

LOGGER = logging.getLogger("ktlab")
FORM_KEYS = ("choices", "min", "max", "log", "value")
RANGES = ("range", "log_range")
# The notice lines already logged in this process: a comparison builds its model once per
# run, and says each once.
NOTICED: set[str] = set()


def arguments(model: ModelConfig, spec: ModelSpec) -> dict[str, Any]:
    """The constructor arguments of the configured model: its preset, then its search space.

    Logs one notice line for each key in the old form, once per process.

    Args:
        model: The `[model]` settings (`name`, `space`, `search_space`).
        spec: The model's registry entry, which declares its `argument_kinds`.

    Returns:
        Keyword arguments for `spec.build`.

    Raises:
        ConfigError: For an explicit form that does not suit its argument.
    """
    converted = to_arguments(model.search_space, spec.argument_kinds, model.name)
    for line in notices(model.search_space, spec.argument_kinds):
        if line not in NOTICED:
            NOTICED.add(line)
            LOGGER.info(f"ktlab: {line}")
    return spec.arguments(model.space, converted)


def to_arguments(search_space: Mapping[str, Any], kinds: Mapping[str, str],
                 model: str) -> dict[str, Any]:
    """`search_space` as constructor arguments: each explicit form converted, the rest as written.

    `{choices = [...]}` becomes the list, `{min = a, max = b}` the pair `[a, b]`, and
    `{value = v}` the list `[v]` for a list of choices, the pair `[v, v]` for a range (which
    the hypermodels declare as a fixed value), and `v` itself otherwise. An argument that
    takes a table is written `{value = {...}}`.

    Args:
        search_space: A config's `model.search_space`.
        kinds: The model's `ModelSpec.argument_kinds`; an argument missing from it (every
            argument of a class that declares none) is converted by the form's shape alone.
        model: The model's name, for messages.

    Raises:
        ConfigError: For unknown keys in a form, two forms at once, a range with min > max
            or without numbers, or a form that does not suit its argument.
    """
    return {name: _convert(name, value, kinds, model) if isinstance(value, Mapping) else value
            for name, value in search_space.items()}


def notices(search_space: Mapping[str, Any], kinds: Mapping[str, str]) -> list[str]:
    """One line for each key of `search_space` in the old form, suggesting the explicit one.

    Only an argument whose kind is declared has one: for others a list means whatever the
    class makes of it.
    """
    lines = []
    for name, value in search_space.items():
        kind = kinds.get(name)
        if not isinstance(value, (list, tuple)) or kind not in ("choices", *RANGES):
            continue
        if kind == "choices":
            reading, form = "choices", {"choices": list(value)}
        elif len(value) == 2:
            reading, form = "a range", {"min": value[0], "max": value[1]}
            if kind == "log_range":
                reading, form = "a log-scale range", {**form, "log": True}
        else:
            # Not a pair: the hypermodel refuses it when it is built, with its own line.
            continue
        lines.append(f"model.search_space.{name} = {toml(list(value))} is read as {reading}; "
                     f"write {toml(form)} (the old form goes in the next version)")
    return lines


def toml(value: Any) -> str:
    """A value written as TOML: `{min = 0.1, max = 0.5}`, `[32, 64]`, `true`, `"relu"`.

    JSON writes numbers, strings and booleans as TOML does, and TOML's own writers are not
    in the standard library (`tomllib` only reads), so the tables are joined here by hand.
    """
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{key} = {toml(item)}" for key, item in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml(item) for item in value) + "]"
    return json.dumps(value)


def _convert(name: str, form: Mapping[str, Any], kinds: Mapping[str, str], model: str) -> Any:
    key = f"model.search_space.{name}"
    kind = kinds.get(name)
    if kinds and kind is None:
        # A model that declares its arguments names them all; this one is mistyped.
        raise ConfigError(f"{key}: {model} takes no argument {name!r}; use one of "
                          f"{', '.join(kinds)}")
    unknown = [item for item in form if item not in FORM_KEYS]
    if unknown:
        fix = "use choices, min and max (with log), or value"
        if unknown[0] == "step" and f"{name}_step" in kinds:
            fix = f"set the grid step beside it as {name}_step = {toml(form['step'])}"
        raise ConfigError(f"{key}: unknown key {unknown[0]!r} in {toml(form)}; {fix}")
    given = [part for part, keys in (("choices", ("choices",)), ("min and max", ("min", "max")),
                                     ("value", ("value",)))
             if any(item in form for item in keys)]
    if not given:
        raise ConfigError(f"{key} = {toml(form)} gives no values; write {name} = "
                          f"{_example(kind)}")
    if len(given) > 1:
        raise ConfigError(f"{key} = {toml(form)} gives {' and '.join(given)}; keep one of them")
    if "log" in form and given[0] != "min and max":
        fix = "remove it" if kind in ("choices", "value") else (
            f"remove it, or write {name} = {{min = ..., max = ..., log = true}}")
        raise ConfigError(f"{key}: log applies to a range; {fix}")
    if given[0] == "choices":
        return _choices(key, name, form["choices"], kind)
    if given[0] == "value":
        return _value(key, name, form["value"], kind)
    return _range(key, name, form, kind, model)


def _choices(key: str, name: str, choices: Any, kind: str | None) -> list[Any]:
    if not isinstance(choices, (list, tuple)):
        raise ConfigError(f"{key}: choices must be a list, got {toml(choices)}; write "
                          f"{name} = {{choices = {toml([choices])}}}")
    if not choices:
        raise ConfigError(f"{key}: choices is empty; list at least one value")
    if kind in RANGES:
        ends = {"min": min(choices), "max": max(choices)} if all(
            _is_number(item) for item in choices) else {"min": "...", "max": "..."}
        if kind == "log_range":
            ends["log"] = True
        raise ConfigError(f"{key} is a range, not a list of choices; write {name} = "
                          f"{_form_text(ends)}")
    if kind == "value":
        raise ConfigError(f"{key} is one value, not a list of choices; write {name} = "
                          f"{{value = ...}}")
    return list(choices)


def _value(key: str, name: str, value: Any, kind: str | None) -> Any:
    if kind == "choices":
        return [value]
    if kind in RANGES:
        if not _is_number(value):
            raise ConfigError(f"{key}: value must be a number, got {toml(value)}; write "
                              f"{name} = {{value = 0.1}}")
        return [value, value]
    return value


def _range(key: str, name: str, form: Mapping[str, Any], kind: str | None,
           model: str) -> list[Any]:
    # The kind comes first: a range for a list of choices needs another form, not numbers.
    if kind == "choices":
        ends = [form[end] for end in ("min", "max") if end in form]
        raise ConfigError(f"{key} is a list of choices, not a range; list the values to "
                          f"try, such as {name} = {{choices = {toml(ends)}}}")
    if kind == "value":
        raise ConfigError(f"{key} is one value, not a range; write {name} = {{value = ...}}")
    for end in ("min", "max"):
        if end not in form:
            raise ConfigError(f"{key} = {toml(form)} needs both min and max; add {end}")
        if not _is_number(form[end]):
            raise ConfigError(f"{key}: {end} must be a number, got {toml(form[end])}; "
                              f"write one without quotes")
    log = form.get("log")
    if log is not None and not isinstance(log, bool):
        raise ConfigError(f"{key}: log must be true or false, got {toml(log)}; write "
                          f"log = true")
    if kind == "range" and log:
        raise ConfigError(f"{key}: {model} samples it on a linear scale; remove log = true")
    if kind == "log_range" and log is False:
        raise ConfigError(f"{key}: {model} samples it on a log scale; remove log = false")
    if kind is None and log is not None:
        raise ConfigError(f"{key}: {model} does not declare how {name} is sampled, so log "
                          f"cannot be applied; remove log, or declare {name!r}: 'log_range' "
                          f"in its argument_kinds (hypermodels/registry.py)")
    minimum, maximum = form["min"], form["max"]
    if minimum > maximum:
        swapped = {**form, "min": maximum, "max": minimum}
        raise ConfigError(f"{key} has min {toml(minimum)} > max {toml(maximum)}; write "
                          f"{name} = {toml(swapped)}")
    return [minimum, maximum]


def _example(kind: str | None) -> str:
    return {"choices": "{choices = [...]}", "range": "{min = ..., max = ...}",
            "log_range": "{min = ..., max = ..., log = true}",
            "value": "{value = ...}"}.get(kind or "", "{choices = [...]}, {min = ..., max = "
                                                       "...} or {value = ...}")


def _form_text(form: Mapping[str, Any]) -> str:
    """A form whose values may be the placeholder `...`, which is written bare."""
    return "{" + ", ".join(f"{key} = {item if item == '...' else toml(item)}"
                           for key, item in form.items()) + "}"


def _is_number(value: Any) -> bool:
    return (not isinstance(value, bool) and isinstance(value, numbers.Real)
            and math.isfinite(value))
