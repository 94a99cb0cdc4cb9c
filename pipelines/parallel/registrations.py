"""Models and strategies registered in the calling process, passed on to its worker processes.

A notebook that registers a model (`registry.MODELS["gru"] = registry.ModelSpec(...)`) or a
strategy (`tuners.registry.TUNERS["mine"] = ...`) and then runs `--workers N` starts fresh
processes, whose registries hold only the built-in entries. The chief sends each worker the
entries it added, with every class written as an importable `"module:Class"` reference, and
the worker registers them before it reads its settings.

A class defined in the notebook itself (`__main__`) or inside a function cannot be imported
by another process: such an entry is refused in one line that says to move the class into a
`.py` file.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from hypermodels import registry as model_registry
from pipelines.errors import ConfigError
from tuners import registry as tuner_registry

# (name in the messages, the registry, its built-in names, its spec class, the class field)
REGISTRIES = {
    "models": (model_registry.MODELS, model_registry.BUILT_IN, model_registry.ModelSpec,
               "hypermodel"),
    "tuners": (tuner_registry.TUNERS, tuner_registry.BUILT_IN, tuner_registry.TunerSpec,
               "oracle"),
}


def added_entries() -> dict[str, dict[str, dict[str, Any]]]:
    """The entries this process added to the registries or replaced, as plain data.

    Raises:
        ConfigError: For a class another process cannot import, or settings that cannot be
            written as JSON.
    """
    added: dict[str, dict[str, dict[str, Any]]] = {}
    for kind, (entries, built_in, _, class_field) in REGISTRIES.items():
        for name, spec in entries.items():
            if built_in.get(name) == spec:
                continue
            fields = dataclasses.asdict(spec)
            fields[class_field] = _reference(kind, name, getattr(spec, class_field))
            try:
                json.dumps(fields)
            except (TypeError, ValueError) as error:
                raise ConfigError(f"{kind} entry {name!r} cannot be sent to --workers "
                                  f"processes ({error}); give its settings as plain numbers, "
                                  f"strings, lists and dicts") from None
            added.setdefault(kind, {})[name] = fields
    return added


def register(added: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Registers in this process the entries that `added_entries` wrote in the chief's."""
    for kind, entries in added.items():
        registry, _, spec_class, _ = REGISTRIES[kind]
        for name, fields in entries.items():
            registry[name] = spec_class(**fields)


def _reference(kind: str, name: str, value: type | str) -> str:
    if isinstance(value, str):
        return value
    module, qualname = value.__module__, value.__qualname__
    if module == "__main__" or "<locals>" in qualname:
        raise ConfigError(f"{kind} entry {name!r} is the class {qualname} defined in "
                          f"{'this notebook or script' if module == '__main__' else 'a function'}"
                          f", which --workers processes cannot import; move it into a .py file "
                          f"and register it from there (or pass --model FILE.py:CLASS)")
    return f"{module}:{qualname}"
