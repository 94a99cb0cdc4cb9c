"""The explicit search-space syntax (`pipelines.config.search_space`): each form becomes the
constructor argument the old form gave, the old form gets one notice line, and a form that
does not suit its argument is one line and exit code 2 before TensorFlow is imported.
"""

from __future__ import annotations

import inspect
import logging
import os
import pathlib
import subprocess
import sys
import tomllib
import types

import pytest

from hypermodels import registry
from pipelines.cli import main
from pipelines.config import load_config, search_space
from pipelines.errors import ConfigError

ARTICLE = pathlib.Path(__file__).resolve().parents[1] / "configs" / "article.toml"
LSTM = registry.MODELS["lstm"]
DENSE = registry.MODELS["dense"]
NOTICE_END = " (the old form goes in the next version)"
# Runs `ktlab` in-process and writes whether TensorFlow was imported, as test_bad_input does.
PROBE = ("import os, sys; from pipelines.cli import main; code = main(sys.argv[1:]); "
         "open(os.environ['KTLAB_IMPORTED'], 'w').write(str('tensorflow' in sys.modules)); "
         "sys.exit(code)")


@pytest.fixture(autouse=True)
def fresh_notices(monkeypatch):
    """Each test starts with no notice said yet in this process."""
    monkeypatch.setattr(search_space, "NOTICED", set())


def lstm_arguments(table: dict) -> dict:
    """The lstm model's constructor arguments for a `model.search_space` table, via a config."""
    config = load_config(overrides={"model": {"search_space": table}})
    return search_space.arguments(config.model, LSTM)


@pytest.mark.parametrize(("explicit", "old"), [
    ({"units": {"choices": [32, 64]}}, {"units": [32, 64]}),
    ({"dropout": {"min": 0.0, "max": 0.5}}, {"dropout": [0.0, 0.5]}),
    ({"learning_rate": {"min": 1e-4, "max": 1e-2, "log": True}},
     {"learning_rate": [1e-4, 1e-2]}),
    # log may be left out where the model always samples on a log scale.
    ({"learning_rate": {"min": 1e-4, "max": 1e-2}}, {"learning_rate": [1e-4, 1e-2]}),
    ({"num_layers": {"min": 1, "max": 3}}, {"num_layers": [1, 3]}),
    ({"batch_size": {"choices": [16]}, "lookbacks": {"choices": [10, 20]}},
     {"batch_size": [16], "lookbacks": [10, 20]}),
    # One fixed value: a list of one choice, a range of equal ends, a plain value.
    ({"units": {"value": 64}}, {"units": [64]}),
    ({"num_layers": {"value": 2}, "dropout": {"value": 0.2}},
     {"num_layers": [2, 2], "dropout": [0.2, 0.2]}),
    ({"dropout_step": {"value": 0.1}}, {"dropout_step": 0.1}),
])
def test_each_explicit_form_gives_the_old_forms_arguments(explicit, old):
    preset = dict(LSTM.presets["quick"])
    assert lstm_arguments(explicit) == lstm_arguments(old) == {**preset, **old}


def test_the_dense_models_forms_follow_its_own_arguments():
    explicit = {"activations": {"choices": ["relu", "gelu"]},
                "momentum": {"min": 0.5, "max": 0.9},
                "weight_decay": {"min": 1e-6, "max": 1e-3, "log": True},
                "optimizers": {"value": "sgd"}}
    assert search_space.to_arguments(explicit, DENSE.argument_kinds, "dense") == {
        "activations": ["relu", "gelu"], "momentum": [0.5, 0.9], "weight_decay": [1e-6, 1e-3],
        "optimizers": ["sgd"]}


def test_set_and_the_search_space_flag_take_the_explicit_forms(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text("[model.search_space]\nunits = {choices = [8, 16]}\n"
                    "dropout = {min = 0.1, max = 0.3}\n")
    config = load_config(path, {"model": {"search_space": {"num_layers": {"value": 1}}}},
                         sets=["model.search_space={learning_rate = {min = 1e-3, max = 1e-2, "
                               "log = true}}"])
    assert search_space.arguments(config.model, LSTM) == {
        "units": [8, 16], "dropout": [0.1, 0.3], "num_layers": [1, 1],
        "learning_rate": [1e-3, 1e-2], "batch_size": [32, 64, 128]}


def test_the_old_form_says_one_notice_line_per_key(caplog):
    caplog.set_level(logging.INFO, logger="ktlab")
    old = {"units": [32, 64], "dropout": [0.1, 0.5], "learning_rate": [1e-4, 1e-2],
           "dropout_step": 0.1, "num_layers": {"min": 1, "max": 2}}
    arguments = lstm_arguments(old)
    assert arguments["units"] == [32, 64] and arguments["num_layers"] == [1, 2]
    assert [record.getMessage() for record in caplog.records] == [
        "ktlab: model.search_space.units = [32, 64] is read as choices; write "
        "{choices = [32, 64]}" + NOTICE_END,
        "ktlab: model.search_space.dropout = [0.1, 0.5] is read as a range; write "
        "{min = 0.1, max = 0.5}" + NOTICE_END,
        "ktlab: model.search_space.learning_rate = [0.0001, 0.01] is read as a log-scale "
        "range; write {min = 0.0001, max = 0.01, log = true}" + NOTICE_END]
    assert {record.levelno for record in caplog.records} == {logging.INFO}
    # Once per key in a process: a second build (compare builds one per run) says nothing.
    caplog.clear()
    lstm_arguments(old)
    assert caplog.records == []


def test_the_explicit_form_says_no_notice(caplog):
    caplog.set_level(logging.INFO, logger="ktlab")
    lstm_arguments({"units": {"choices": [32, 64]}, "dropout": {"min": 0.1, "max": 0.5}})
    assert caplog.records == []


def test_building_the_model_converts_the_forms_and_says_the_notice(caplog):
    import keras_tuner

    from pipelines.run import build

    caplog.set_level(logging.INFO, logger="ktlab")
    prepared = types.SimpleNamespace(input_shape=(5, 3), task="regression", n_classes=None)
    explicit = load_config(overrides={"model": {"search_space": {
        "units": {"choices": [4, 8]}, "num_layers": {"value": 2},
        "dropout": {"min": 0.1, "max": 0.3},
        "learning_rate": {"min": 1e-3, "max": 1e-2, "log": True}}}})
    old = load_config(overrides={"model": {"search_space": {
        "units": [4, 8], "num_layers": [2, 2], "dropout": [0.1, 0.3],
        "learning_rate": [1e-3, 1e-2]}}})
    built = [build.make_hypermodel(config, prepared) for config in (explicit, old)]
    for hypermodel in built:
        assert (hypermodel.units, hypermodel.num_layers) == ([4, 8], (2, 2))
        assert (hypermodel.dropout, hypermodel.learning_rate) == ((0.1, 0.3), (1e-3, 1e-2))
    hp = keras_tuner.HyperParameters()
    built[0].build(hp)
    spaces = {item.name: item for item in hp.space}
    assert type(spaces["num_layers"]).__name__ == "Fixed" and hp.values["num_layers"] == 2
    assert spaces["learning_rate"].sampling == "log"
    assert spaces["dropout"].sampling == "linear"
    # Only the old form's build said anything: one line for each of its four keys.
    assert len(caplog.records) == 4
    assert caplog.records[0].getMessage().startswith("ktlab: model.search_space.units = [4, 8]")


BAD_FORMS = {
    "choices for a range": (
        "{dropout = {choices = [0.1, 0.3]}}",
        "model.search_space.dropout is a range, not a list of choices; write dropout = "
        "{min = 0.1, max = 0.3}"),
    "choices for a log range": (
        "{learning_rate = {choices = [1e-4, 1e-2]}}",
        "model.search_space.learning_rate is a range, not a list of choices; write "
        "learning_rate = {min = 0.0001, max = 0.01, log = true}"),
    "a range for choices": (
        "{units = {min = 32, max = 64}}",
        "model.search_space.units is a list of choices, not a range; list the values to "
        "try, such as units = {choices = [32, 64]}"),
    "a range for one value": (
        "{learning_rate_step = {min = 2, max = 10}}",
        "model.search_space.learning_rate_step is one value, not a range; write "
        "learning_rate_step = {value = ...}"),
    "unknown key": (
        "{units = {choice = [32, 64]}}",
        "model.search_space.units: unknown key 'choice' in {choice = [32, 64]}; use choices, "
        "min and max (with log), or value"),
    "a step in the table": (
        "{dropout = {min = 0.1, max = 0.5, step = 0.1}}",
        "model.search_space.dropout: unknown key 'step' in {min = 0.1, max = 0.5, step = 0.1};"
        " set the grid step beside it as dropout_step = 0.1"),
    "min above max": (
        "{dropout = {min = 0.5, max = 0.1}}",
        "model.search_space.dropout has min 0.5 > max 0.1; write dropout = "
        "{min = 0.1, max = 0.5}"),
    "log on a linear range": (
        "{dropout = {min = 0.1, max = 0.5, log = true}}",
        "model.search_space.dropout: lstm samples it on a linear scale; remove log = true"),
    "no log on a log range": (
        "{learning_rate = {min = 1e-4, max = 1e-2, log = false}}",
        "model.search_space.learning_rate: lstm samples it on a log scale; remove "
        "log = false"),
    "log on choices": (
        "{units = {choices = [32, 64], log = true}}",
        "model.search_space.units: log applies to a range; remove it"),
    "two forms": (
        "{units = {choices = [32], value = 32}}",
        "model.search_space.units = {choices = [32], value = 32} gives choices and value; "
        "keep one of them"),
    "no values": (
        "{dropout = {}}",
        "model.search_space.dropout = {} gives no values; write dropout = "
        "{min = ..., max = ...}"),
    "a missing end": (
        "{dropout = {min = 0.1}}",
        "model.search_space.dropout = {min = 0.1} needs both min and max; add max"),
    "a quoted number": (
        "{dropout = {min = \"0.1\", max = 0.5}}",
        "model.search_space.dropout: min must be a number, got \"0.1\"; write one without "
        "quotes"),
    "choices not a list": (
        "{units = {choices = 32}}",
        "model.search_space.units: choices must be a list, got 32; write units = "
        "{choices = [32]}"),
    "no choices": (
        "{units = {choices = []}}",
        "model.search_space.units: choices is empty; list at least one value"),
    "an argument the model lacks": (
        "{unit = {choices = [32]}}",
        "model.search_space.unit: lstm takes no argument 'unit'; use one of learning_rate, "
        "learning_rate_step, units, num_layers, dropout, dropout_step, batch_size, "
        "lookbacks, name, tunable"),
}


@pytest.mark.parametrize("case", list(BAD_FORMS))
def test_a_wrong_form_is_one_line_and_exit_2(case, capsys):
    table, message = BAD_FORMS[case]
    assert main(["config", "--set", f"model.search_space={table}"]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"ktlab: error: {message}\n"
    assert captured.out == ""


def test_a_wrong_form_is_refused_before_tensorflow_is_imported(tmp_path):
    config = tmp_path / "space.toml"
    config.write_text("[model.search_space]\nunits = {min = 32, max = 64}\n")
    for arguments, message in (
            (["tune", "--config", str(config)], BAD_FORMS["a range for choices"][1]),
            (["tune", "--model", "dense", "--search-space",
              '{"weight_decay": {"min": 1e-5, "max": 1e-3, "log": false}}'],
             "model.search_space.weight_decay: dense samples it on a log scale; remove "
             "log = false")):
        imported = tmp_path / "imported.txt"
        result = subprocess.run([sys.executable, "-c", PROBE, *arguments], capture_output=True,
                                text=True, cwd=tmp_path, timeout=60,
                                env={**os.environ, "KTLAB_IMPORTED": str(imported)})
        assert result.returncode == 2
        assert result.stderr == f"ktlab: error: {message}\n"
        assert imported.read_text() == "False"


USER_MODEL = '''
import keras_tuner


class Declared(keras_tuner.HyperModel):
    argument_kinds = {"units": "choices", "rate": "log_range"}

    def __init__(self, input_shape, units=(4,), rate=(1e-3, 1e-2)):
        super().__init__()
        self.units, self.rate = units, rate


class Undeclared(Declared):
    argument_kinds = {}
'''


def test_a_users_class_is_converted_when_it_is_built(tmp_path):
    from pipelines.run import build

    path = tmp_path / "user_space.py"
    path.write_text(USER_MODEL)
    prepared = types.SimpleNamespace(input_shape=(5, 3), task="regression", n_classes=None)

    def built(name: str, table: dict):
        config = load_config(overrides={"model": {"name": f"{path}:{name}",
                                                  "search_space": table}})
        return build.make_hypermodel(config, prepared)

    hypermodel = built("Declared", {"units": {"choices": [8, 16]},
                                    "rate": {"min": 1e-4, "max": 1e-1, "log": True}})
    assert (hypermodel.units, hypermodel.rate) == ([8, 16], [1e-4, 1e-1])
    with pytest.raises(ConfigError) as refused:
        built("Declared", {"rate": {"choices": [1e-3]}})
    assert str(refused.value) == ("model.search_space.rate is a range, not a list of choices; "
                                  "write rate = {min = 0.001, max = 0.001, log = true}")
    # Without argument_kinds a form is converted by its shape, and log cannot be applied.
    hypermodel = built("Undeclared", {"units": {"min": 4, "max": 8}, "rate": {"value": 0.1}})
    assert (hypermodel.units, hypermodel.rate) == ([4, 8], 0.1)
    with pytest.raises(ConfigError) as refused:
        built("Undeclared", {"rate": {"min": 1e-4, "max": 1e-1, "log": True}})
    assert str(refused.value) == (
        f"model.search_space.rate: {path}:Undeclared does not declare how rate is sampled, so "
        f"log cannot be applied; remove log, or declare 'rate': 'log_range' in its "
        f"argument_kinds (hypermodels/registry.py)")


def test_a_users_unknown_argument_kind_is_refused(tmp_path):
    path = tmp_path / "bad_kinds.py"
    path.write_text(USER_MODEL.replace('"rate": "log_range"', '"rate": "log"'))
    with pytest.raises(registry.ModelNotFoundError) as refused:
        registry.resolve(f"{path}:Declared")
    assert str(refused.value) == (f"--model {path}:Declared: argument_kinds {{'rate': 'log'}}; "
                                  f"set each to one of 'choices', 'range', 'log_range', "
                                  f"'value'")


@pytest.mark.parametrize("spec", [LSTM, DENSE], ids=["lstm", "dense"])
def test_the_declared_kinds_match_the_constructor_and_its_sampling(spec):
    import keras_tuner

    cls = spec.hypermodel_class
    parameters = inspect.signature(cls.__init__).parameters
    # The data sets these, not the search space.
    taken = [name for name in parameters if name not in ("self", "input_shape", "task",
                                                         "n_classes", "horizon")]
    assert list(spec.argument_kinds) == taken
    for name, kind in spec.argument_kinds.items():
        default = parameters[name].default
        if kind in search_space.RANGES:
            assert len(default) == 2, name
    # The scale each range is declared with is the one its kind names, so `log` is checked
    # against what the model does.
    hp = keras_tuner.HyperParameters()
    spec.build((5, 3) if spec is LSTM else (3,)).build(hp)
    scales = {item.name: item.sampling for item in hp.space
              if type(item).__name__ in ("Float", "Int")}
    ranges = {name: kind for name, kind in spec.argument_kinds.items()
              if kind in search_space.RANGES}
    assert {name: scales[name] for name in ranges} == {
        name: "log" if kind == "log_range" else "linear" for name, kind in ranges.items()}


def article_table() -> dict:
    """The commented `[model.search_space]` table of configs/article.toml, uncommented."""
    lines = ARTICLE.read_text().splitlines()
    start = lines.index("# [model.search_space]")
    table = []
    for line in lines[start:]:
        if not line.startswith("# "):
            break
        table.append(line[2:])
    return tomllib.loads("\n".join(table))["model"]["search_space"]


def test_the_article_config_loads_to_the_articles_ranges(caplog):
    caplog.set_level(logging.INFO, logger="ktlab")
    config = load_config(ARTICLE)
    assert (config.model.space, config.model.search_space) == ("article", {})
    as_is = LSTM.build((30, 61), **search_space.arguments(config.model, LSTM))
    # The table its comments spell out in the new syntax gives the same space.
    table = article_table()
    assert list(table) == ["learning_rate", "units", "num_layers", "dropout", "batch_size"]
    spelled = load_config(ARTICLE, {"model": {"search_space": table}})
    spelled_out = LSTM.build((30, 61), **search_space.arguments(spelled.model, LSTM))
    for hypermodel in (as_is, spelled_out):
        assert hypermodel.units == [16, 32, 64, 128, 256]
        assert hypermodel.num_layers == (1, 5)
        assert hypermodel.dropout == (0.1, 0.6)
        assert hypermodel.learning_rate == (1e-6, 1e-1)
        assert hypermodel.batch_size == [16, 32, 64, 128, 256]
    assert caplog.records == []


def test_the_kinds_reach_worker_processes_with_a_registered_model(monkeypatch):
    from pipelines.parallel import registrations

    kinds = {"units": "choices", "dropout": "range"}
    monkeypatch.setitem(registry.MODELS, "gru", registry.ModelSpec(
        "hypermodels.lstm:LSTMHyperModel", argument_kinds=kinds))
    added = registrations.added_entries()
    assert added["models"]["gru"]["argument_kinds"] == kinds
    monkeypatch.delitem(registry.MODELS, "gru")
    registrations.register(added)
    assert registry.MODELS["gru"].argument_kinds == kinds
    monkeypatch.delitem(registry.MODELS, "gru")
