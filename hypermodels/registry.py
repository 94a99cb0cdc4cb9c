"""The registry of models: each name's HyperModel class, the data it takes, its presets.

A model is one file in `hypermodels/` plus one line in `MODELS`. Nothing else in ktlab
branches on a model's name: the data pipeline follows `data_kind`, the default data
follows `default_source`, and `--space` picks one of `presets`. This module imports no
TensorFlow, so the command line checks a model's name at once; each class is imported
when it is first built.

A user's own class needs no registry line at all: `ktlab tune --model my_models.py:MyModel`
(a file) or `--model package.module:MyModel` (an importable module) loads any
`keras_tuner.HyperModel` subclass, built with `input_shape=` (tables also get `task=` and
`n_classes=`); its class attribute `data_kind = "series"` or `"table"` (default
`"series"`) says which pipeline feeds it, and an optional `argument_kinds` (see
`ModelSpec`) how each constructor argument takes its search space.

A model forecasts the next `horizon` steps of a series at once, one output per step
(`--horizon`, default 1). The built-in models take `horizon=`. A user's class gets
`horizon=` when its `__init__` has a `horizon` parameter (always) or `**kwargs` (for a
horizon above 1); a class with neither is built as before for one step, and refused, in
one line, for more:

```python
class MyModel(keras_tuner.HyperModel):
    def __init__(self, input_shape, horizon=1):
        super().__init__()
        self.input_shape, self.horizon = input_shape, horizon

    def build(self, hp):
        ...  # end with keras.layers.Dense(self.horizon)
```

```python
from hypermodels import registry

registry.MODELS["gru"] = registry.ModelSpec("hypermodels.gru:GRUHyperModel")
spec = registry.resolve("my_models.py:MyModel")
hypermodel = spec.build(input_shape=(30, 11), horizon=4)
```
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import pathlib
import re
import sys
from collections.abc import Mapping
from typing import Any

DATA_KINDS = ("series", "table")
# How a constructor argument takes its search space (`ModelSpec.argument_kinds`).
ARGUMENT_KINDS = ("choices", "range", "log_range", "value")
DEFAULT_SOURCES = {"series": "AAPL", "table": "diabetes"}
# `my_models.py:MyModel` or `package.module:MyModel`.
REFERENCE = re.compile(r"^(?P<module>[^:]+):(?P<name>[A-Za-z_][A-Za-z0-9_]*)$")
MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class ModelNotFoundError(ValueError):
    """A model name or class reference that cannot be resolved; the message says why."""


class HorizonError(ValueError):
    """A model class that cannot be told the horizon; the message names it and the fix."""


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """How to build one model and what feeds it.

    Attributes:
        hypermodel: A `keras_tuner.HyperModel` subclass, or where to import it from as
            `"package.module:ClassName"`.
        data_kind: `"series"` (windows of a time series) or `"table"` (rows of a table).
        default_source: The data it tunes on when none is given.
        presets: Search-space presets, `{preset name: {constructor argument: range}}`;
            `ktlab tune --space NAME` picks one, and `model.search_space` adds to it.
        description: One line for `ktlab list`, which imports no model class (and so no
            Keras) to read a docstring; empty: the class's docstring, if it is imported.
        argument_kinds: How each constructor argument takes its search space:
            `"choices"` (a list of values), `"range"` (`[min, max]` on a linear scale),
            `"log_range"` (`[min, max]` on a log scale) or `"value"` (one plain value).
            `pipelines.config.search_space` checks and converts a config's explicit forms
            (`{choices = [...]}`, `{min = ..., max = ...}`) by it, before the class is
            imported. Empty: each form is converted by its shape alone.
    """

    hypermodel: type | str
    data_kind: str = "series"
    default_source: str = ""
    presets: Mapping[str, Mapping[str, Any]] = dataclasses.field(
        default_factory=lambda: {"quick": {}})
    description: str = ""
    argument_kinds: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.data_kind not in DATA_KINDS:
            raise ValueError(f"data_kind must be one of {', '.join(DATA_KINDS)}, got "
                             f"{self.data_kind!r}")
        wrong = {name: kind for name, kind in self.argument_kinds.items()
                 if kind not in ARGUMENT_KINDS}
        if wrong:
            raise ValueError(f"argument_kinds {wrong} must each be one of "
                             f"{', '.join(ARGUMENT_KINDS)}")
        if not self.default_source:
            object.__setattr__(self, "default_source", DEFAULT_SOURCES[self.data_kind])

    @property
    def hypermodel_class(self) -> type:
        """The HyperModel class, imported on first use when it was registered by name."""
        if isinstance(self.hypermodel, str):
            return load_class(self.hypermodel)
        return self.hypermodel

    def arguments(self, space: str, overrides: Mapping[str, Any] | None = None,
                  ) -> dict[str, Any]:
        """The preset's ranges, overridden by `overrides`, both in the constructor's form.

        A config's `search_space` may hold explicit forms (`{choices = [...]}`);
        `pipelines.config.search_space.arguments` converts them and then calls this. A model
        without presets takes `overrides` alone, whatever `space` is.
        """
        preset = self.presets.get(space, {}) if self.presets else {}
        return {**preset, **(overrides or {})}

    def build(self, input_shape: tuple[int, ...], *, task: str = "regression",
              n_classes: int | None = None, horizon: int = 1, **arguments: Any) -> Any:
        """Constructs the HyperModel for data of `input_shape`.

        Args:
            input_shape: The shape of one input (a window of a series, or a table row).
            task: A table's task, passed to table models only.
            n_classes: A table's number of classes, passed to table models only.
            horizon: How many steps ahead the model forecasts. A class whose `__init__`
                has a `horizon` parameter, as the built-in ones do, is always given it;
                one with `**kwargs` only, when it is above 1.
            **arguments: The search-space arguments of the constructor.

        Returns:
            The HyperModel instance.

        Raises:
            HorizonError: If `horizon` is above 1 and the class cannot be told it.
        """
        cls = self.hypermodel_class
        extra: dict[str, Any] = (
            {"task": task, "n_classes": n_classes} if self.data_kind == "table" else {})
        keyword = horizon_keyword(cls)
        # A class that takes horizon only through **kwargs often passes them on to
        # `keras_tuner.HyperModel.__init__`, which refuses horizon=; such a class was built
        # without it before horizons existed, so it gets it only when one step is not all.
        if keyword == "horizon" or (keyword == "**kwargs" and horizon != 1):
            extra["horizon"] = horizon
        elif horizon != 1:
            raise HorizonError(f"{cls.__name__}: its __init__ must take horizon= to forecast "
                               f"{horizon} steps; add a horizon argument")
        return cls(input_shape=input_shape, **extra, **arguments)


# How each constructor argument of the built-in models takes its search space; a test keeps
# these in step with the constructors' signatures. Neither model can be told the scale of a
# range: learning_rate and weight_decay are always sampled on a log scale, the others
# linearly.
LSTM_ARGUMENTS = {
    "learning_rate": "log_range", "learning_rate_step": "value", "units": "choices",
    "num_layers": "range", "dropout": "range", "dropout_step": "value",
    "batch_size": "choices", "lookbacks": "choices", "name": "value", "tunable": "value"}
DENSE_ARGUMENTS = {
    "units": "choices", "num_layers": "range", "activations": "choices", "dropout": "range",
    "dropout_step": "value", "optimizers": "choices", "momentum": "range",
    "momentum_step": "value", "learning_rate": "log_range", "learning_rate_step": "value",
    "weight_decay": "log_range", "weight_decay_step": "value", "batch_size": "choices",
    "name": "value", "tunable": "value"}

MODELS: dict[str, ModelSpec] = {
    # Search spaces sized for the machine. `article` is the reference article's LSTM space
    # (units up to 256, up to 5 layers, batch sizes from 16): on a 2-core CPU its largest
    # models take about a minute per epoch, so the default `quick` space stays small
    # enough for `ktlab tune` to finish in minutes. Use `article` on a GPU.
    "lstm": ModelSpec("hypermodels.lstm:LSTMHyperModel", data_kind="series", presets={
        "quick": {"units": [16, 32, 64], "num_layers": [1, 2], "batch_size": [32, 64, 128],
                  "learning_rate": [1e-4, 1e-2]},
        "article": {}}, argument_kinds=LSTM_ARGUMENTS,
        description="Stacked LSTM layers with dropout and one linear output, on windows of a "
                    "series."),
    "dense": ModelSpec("hypermodels.dense:DenseHyperModel", data_kind="table",
                       presets={"quick": {}, "article": {}}, argument_kinds=DENSE_ARGUMENTS,
                       description="A stack of dense layers with a regression or "
                                   "classification head."),
}
# The entries every process has; `--workers` sends its processes those added or replaced.
BUILT_IN = dict(MODELS)


def horizon_keyword(cls: type) -> str:
    """How `cls.__init__` accepts `horizon=`: `"horizon"`, `"**kwargs"`, or `""` (not at all).

    A class whose signature cannot be read (a C extension's) is taken not to accept it, so
    that it is built as it was before horizons existed.
    """
    try:
        parameters = list(inspect.signature(cls.__init__).parameters.values())
    except (TypeError, ValueError):
        return ""
    by_keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    if any(parameter.name == "horizon" and parameter.kind in by_keyword
           for parameter in parameters):
        return "horizon"
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters):
        return "**kwargs"
    return ""


def is_reference(name: str) -> bool:
    """Whether `name` points at a class (`FILE.py:CLASS`, `module:CLASS`), not a registry entry."""
    return ":" in name


def check_reference(reference: str, what: str = "--model") -> None:
    """Checks a reference without importing anything: its form, and that its file exists.

    Args:
        reference: `FILE.py:NAME` or `package.module:NAME`.
        what: The flag or config key it came from, for the message.

    Raises:
        ModelNotFoundError: Naming what is wrong and the form to use.
    """
    match = REFERENCE.match(reference)
    if match is None:
        raise ModelNotFoundError(f"{what} {reference!r} is not FILE.py:NAME or "
                                 f"package.module:NAME; e.g. my_models.py:MyModel")
    module = match["module"]
    if module.endswith(".py"):
        if not pathlib.Path(module).is_file():
            raise ModelNotFoundError(f"{what} {reference}: file {module} does not exist; "
                                     f"check the path")
    elif not MODULE_NAME.match(module):
        raise ModelNotFoundError(f"{what} {reference}: {module!r} is neither a .py file nor "
                                 f"a module name; e.g. my_models.py:MyModel or "
                                 f"my_package.models:MyModel")


def load_class(reference: str, what: str = "--model") -> type:
    """Imports the class that `reference` names (`FILE.py:CLASS` or `package.module:CLASS`).

    Raises:
        ModelNotFoundError: If the file, module or class cannot be found or imported.
    """
    cls = load_object(reference, what)
    if not isinstance(cls, type):
        raise ModelNotFoundError(f"{what} {reference}: {reference.rpartition(':')[2]} is not "
                                 f"a class; name a class")
    return cls


def load_object(reference: str, what: str = "--model") -> Any:
    """Imports the object that `reference` names (`FILE.py:NAME` or `package.module:NAME`).

    A user's model class, or a factory of Keras callbacks (`run.callbacks`), is named so.

    Raises:
        ModelNotFoundError: If the file, module or name cannot be found or imported.
    """
    check_reference(reference, what)
    module_name, _, class_name = reference.rpartition(":")
    try:
        if module_name.endswith(".py"):
            module = _import_file(pathlib.Path(module_name))
        else:
            module = importlib.import_module(module_name)
    except ModelNotFoundError:
        raise
    except ImportError as error:
        raise ModelNotFoundError(f"{what} {reference}: cannot import {module_name} "
                                 f"({error}); check the name and that it is installed"
                                 ) from None
    except Exception as error:  # noqa: BLE001 (a user's module may raise anything)
        raise ModelNotFoundError(f"{what} {reference}: importing {module_name} failed "
                                 f"({type(error).__name__}: {error}); fix that file") from None
    found = getattr(module, class_name, None)
    if found is None:
        raise ModelNotFoundError(f"{what} {reference}: {module_name} defines no "
                                 f"{class_name!r}; check the spelling")
    return found


def resolve(name: str) -> ModelSpec:
    """The spec of a registry name, or of a user's class named by reference.

    A user's class must subclass `keras_tuner.HyperModel`; its `data_kind` attribute
    (default `"series"`) picks the pipeline, its `presets` attribute, if any, the
    search-space presets, and its `argument_kinds`, if any, how each constructor argument
    takes its search space (`ModelSpec.argument_kinds`).

    Raises:
        ModelNotFoundError: For an unknown name, or a class that cannot be loaded.
    """
    if name in MODELS:
        return MODELS[name]
    if not is_reference(name):
        raise ModelNotFoundError(f"unknown model {name!r}; use one of {', '.join(MODELS)}, "
                                 f"or FILE.py:CLASS for your own keras_tuner.HyperModel")
    cls = load_class(name)
    import keras_tuner

    if not issubclass(cls, keras_tuner.HyperModel):
        raise ModelNotFoundError(f"--model {name}: {cls.__name__} is not a subclass of "
                                 f"keras_tuner.HyperModel; subclass it and define build(hp)")
    data_kind = getattr(cls, "data_kind", "series")
    if data_kind not in DATA_KINDS:
        raise ModelNotFoundError(f"--model {name}: data_kind = {data_kind!r}; set it to "
                                 f"'series' or 'table'")
    kinds = dict(getattr(cls, "argument_kinds", {}))
    wrong = {argument: kind for argument, kind in kinds.items() if kind not in ARGUMENT_KINDS}
    if wrong:
        raise ModelNotFoundError(f"--model {name}: argument_kinds {wrong}; set each to one of "
                                 f"{', '.join(repr(kind) for kind in ARGUMENT_KINDS)}")
    return ModelSpec(cls, data_kind=data_kind, presets=dict(getattr(cls, "presets", {})),
                     argument_kinds=kinds)


def _import_file(path: pathlib.Path) -> Any:
    """Imports a `.py` file as a module named after it, once per process."""
    resolved = path.resolve()
    module_name = f"ktlab_user_{re.sub(r'[^A-Za-z0-9_]', '_', resolved.stem)}"
    existing = sys.modules.get(module_name)
    if existing is not None and getattr(existing, "__file__", None) == str(resolved):
        return existing
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        raise ModelNotFoundError(f"--model {path}: cannot load it as Python; use a .py file")
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs, so that pickling and dataclasses inside it work.
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module
