"""Every setting, walked from the schema: in `ktlab init`'s file and the reference page,
settable from a file, a flag and `--set`, with a `--no-` form for every boolean; and the
files generated from the schema are in step with it."""

from __future__ import annotations

import json
import typing

import pandas as pd
import pytest

from pipelines.cli import flags, main
from pipelines.config import checks as config_checks
from pipelines.config import load_config, reference, resolve, schema

# Values that need more than "the default, changed", and the settings they need beside them.
SAMPLES: dict[tuple[str, str], object] = {
    ("data", "source"): "MSFT",
    ("data", "date_column"): "Date",
    ("data", "target_column"): "Close",
    ("data", "test_size"): 700,
    ("data", "validation_size"): 0.25,
    ("data", "season"): 12,
    ("data", "feature_columns"): ["temperature", "holiday"],
    ("model", "name"): "dense",
    ("model", "space"): "article",
    ("model", "search_space"): {"num_layers": [1, 2]},
    ("tuner", "name"): "random",
    ("tuner", "num_initial_points"): 2,
    ("tuner", "objective"): "val_mae",
    ("tuner", "objectives"): ["val_loss", "params"],
    ("tuner", "options"): {"population_size": 6},
    ("tuner", "pruner"): "median",
    ("run", "output_dir"): "elsewhere",
    ("run", "run_name"): "again",
    ("run", "callbacks"): ["tests/models/user_callbacks.py:make_loggers"],
}
NEEDS = {
    ("tuner", "num_initial_points"): {"tuner": {"name": "bayesian"}},
    ("tuner", "pruner"): {"tuner": {"name": "random"}},
    ("model", "name"): {"data": {"source": "diabetes"}},
}


def sample(section: str, key: str, field) -> object:
    """A valid value of the setting that differs from its default."""
    if (section, key) in SAMPLES:
        return SAMPLES[section, key]
    default = field.get_default(call_default_factory=True)
    if isinstance(default, bool):
        return not default
    if typing.get_origin(field.annotation) is typing.Literal:
        return next(value for value in typing.get_args(field.annotation)
                    if value not in (default, ""))
    if isinstance(default, int):
        return default + 1
    if isinstance(default, float):
        return default / 2
    raise AssertionError(f"add a sample value for {section}.{key}")


KEYS = [(section, key) for section, key, _ in schema.fields()]


def field_of(section: str, key: str):
    return schema.SECTIONS[section].model_fields[key]


def test_the_schema_has_every_setting_once():
    assert len(KEYS) == 57
    assert len({flags.destination(schema.flag_of(*key)) for key in KEYS}) == 57
    assert set(flags.FLAG_KEYS.values()) == set(KEYS)
    assert all(field_of(*key).description.endswith(".") for key in KEYS)
    assert {schema.extra(field_of(*key))["group"] for key in KEYS} == set(schema.GROUPS)


@pytest.mark.parametrize(("section", "key"), KEYS)
def test_every_key_is_in_init_and_the_reference_page(section, key):
    init_lines = reference.commented_toml().splitlines()
    assert f"[{section}]" in init_lines
    assert any(line.startswith((f"{key} = ", f"# {key} = ")) for line in init_lines)
    page = reference.reference_page()
    table = page.split(f"## `[{section}]`")[1].split("## ")[0]
    assert f"| `{key}` | `{schema.flag_of(section, key)}" in table


@pytest.mark.parametrize(("section", "key"), KEYS)
def test_every_key_can_be_set_from_a_file_and_with_set(section, key, tmp_path):
    value = sample(section, key, field_of(section, key))
    tables = {name: dict(values) for name, values in NEEDS.get((section, key), {}).items()}
    tables.setdefault(section, {})[key] = value
    path = tmp_path / "settings.toml"
    path.write_text("\n".join(f"[{name}]\n" + "\n".join(
        f"{item} = {reference.toml_value(setting)}" for item, setting in values.items())
        for name, values in tables.items()))
    config, origins = resolve(path)
    assert getattr(getattr(config, section), key) == value
    assert origins[section, key] == "settings.toml"

    sets = [f"{name}.{item}={reference.toml_value(setting)}"
            for name, values in tables.items() for item, setting in values.items()]
    config, origins = resolve(sets=sets)
    assert getattr(getattr(config, section), key) == value
    assert origins[section, key] == "--set"


@pytest.mark.parametrize(("section", "key"), KEYS)
def test_every_key_has_a_flag_and_every_boolean_a_no_form(section, key):
    parser = flags.build_parser()
    flag = schema.flag_of(section, key)
    destination = flags.destination(flag)
    field = field_of(section, key)
    if field.annotation is bool:
        assert getattr(parser.parse_args(["tune", flag]), destination) is True
        assert getattr(parser.parse_args(["tune", f"--no-{flag[2:]}"]), destination) is False
        return
    value = sample(section, key, field)
    if isinstance(value, dict):
        text = json.dumps(value)
    elif isinstance(value, list):
        text = ",".join(value)
    else:
        text = str(value)
    assert getattr(parser.parse_args(["tune", flag, text]), destination) == value


@pytest.mark.parametrize(("old", "value", "section", "key"), [
    ("--factor", "4", "tuner", "factor"),
    ("--space", "article", "model", "space"),
    ("--objectives", "val_loss,params", "tuner", "objectives"),
    ("--train-window", "900", "data", "train_window"),
    ("--validation-window", "100", "data", "validation_window"),
    ("--step", "50", "data", "step"),
])
def test_the_flags_renamed_in_this_version_still_work(old, value, section, key, capsys):
    assert main(["config", old, value]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines()
                if line.startswith(f"{key} "))
    assert line.split("=")[1].split("#")[0].strip() in (
        value, json.dumps(value), json.dumps(value.split(",")))
    assert line.split("#")[1].strip() == "flag"


def test_the_generated_files_are_in_step_with_the_schema():
    assert reference.DEFAULT_TOML.read_text() == reference.commented_toml(), (
        "run: python -m pipelines.config.reference")
    assert reference.REFERENCE_PAGE.read_text() == reference.reference_page(), (
        "run: python -m pipelines.config.reference")
    assert load_config(reference.DEFAULT_TOML) == load_config()


def test_ktlab_config_says_where_each_value_came_from(tmp_path, capsys):
    path = tmp_path / "mine.yaml"
    path.write_text("tuner:\n  max_epochs: 4\n  factor: 2\n")
    assert main(["config", "--config", str(path), "--hyperband-factor", "5",
                 "--set", "run.seed=9", "--no-refit"]) == 0
    lines = {line.split("=")[0].strip(): line for line in capsys.readouterr().out.splitlines()
             if "=" in line}
    assert lines["max_epochs"].split("#")[1].strip() == "mine.yaml"
    assert lines["factor"].split("#")[1].strip() == "flag"
    assert lines["factor"].split("=")[1].split("#")[0].strip() == "5"
    assert lines["seed"].split("#")[1].strip() == "--set"
    assert lines["refit"].split("=")[1].split("#")[0].strip() == "false"
    assert lines["patience"].split("#")[1].strip() == "default"


@pytest.mark.parametrize(("argv", "message"), [
    (["--set", "tuner.max_epochs"],
     "--set 'tuner.max_epochs' must be section.key=value, such as tuner.max_epochs=3"),
    (["--set", "tuner.max_epoch=3"],
     "unknown config key tuner.max_epoch in --set; valid keys: name, max_epochs,"),
    (["--set", "search.max_epochs=3"],
     "unknown config section 'search' in --set; use data, model, tuner, run"),
    (["--set", "tuner.max_epochs=0"], "max epochs must be >= 1, got 0; fix --set tuner.max_epochs"),
    (["--set", "tuner.max_epochs=nine"],
     "config key tuner.max_epochs must be a whole number, got 'nine'"),
    (["--set", "data.fill=zero"],
     "unknown fill 'zero'; use one of error, ffill, interpolate, drop"),
    (["--tuner", "asha", "--set", "tuner.options={min_epochs = 20}"],
     "tuner settings: min_epochs (20) exceeds max_epochs (9); lower min_epochs."),
])
def test_a_bad_set_is_one_line(argv, message, capsys):
    assert main(["tune", *argv]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert error.startswith(f"ktlab: error: {message}")


def test_a_bad_value_in_a_file_names_the_file(tmp_path, capsys):
    path = tmp_path / "mine.toml"
    path.write_text("[tuner]\npatience = -1\n")
    assert main(["tune", "--config", str(path)]) == 2
    assert capsys.readouterr().err == ("ktlab: error: patience must be >= 0, got -1; fix "
                                       "tuner.patience in mine.toml\n")


def test_tune_help_is_grouped_with_allowed_values_defaults_and_examples(capsys):
    assert main(["tune", "--help"]) == 0
    text = capsys.readouterr().out
    titles = [f"{title}:" for title in schema.GROUPS.values()]
    positions = [text.index(f"\n{title}\n") for title in titles]
    assert positions == sorted(positions)
    strategy = text.split("\nstrategy and budget:\n")[1].split("\nevaluation:\n")[0]
    assert "--tuner" in strategy and "--max-epochs" in strategy and "--seed" in strategy
    assert ("one of hyperband, bayesian, random, grid, genetic, bohb, asha, pbt; default "
            "hyperband" in " ".join(strategy.split()))
    assert "--no-refit" in text.split("\nevaluation:\n")[1].split("\noutput:\n")[0]
    assert "--no-tensorboard" in text.split("\noutput:\n")[1]
    # The older names still work but are not shown.
    assert "--hyperband-factor" in text and "--factor " not in text
    assert text.rstrip().splitlines()[-1].startswith("  ktlab tune --dry-run")
    assert config_checks.choices(field_of("tuner", "validation")) == ("holdout", "walk_forward")


def test_a_runs_config_json_reproduces_the_run(tmp_path):
    """A deterministic tiny run, then the same search from its own config.json."""
    from tests.conftest import make_prices, yahoo_csv

    data = tmp_path / "prices.csv"
    data.write_text(yahoo_csv(make_prices(160)))
    runs = tmp_path / "runs"
    assert main(["tune", "--data", str(data), "--lookback", "5", "--test-size", "20",
                 "--validation-size", "20", "--output-dir", str(runs), "--seed", "7",
                 "--tuner", "random", "--max-trials", "2", "--max-epochs", "2",
                 "--deterministic", "--no-refit", "--run-name", "first", "--quiet"]) == 0
    assert main(["tune", "--config", str(runs / "first" / "config.json"), "--run-name", "again",
                 "--quiet"]) == 0
    first, again = (pd.read_csv(runs / name / "trials.csv").drop(columns="seconds")
                    for name in ("first", "again"))
    assert len(first) == 2
    pd.testing.assert_frame_equal(first, again)
    saved = [json.loads((runs / name / "config.json").read_text()) for name in ("first", "again")]
    assert saved[0]["run"].pop("run_name") == "first"
    assert saved[1]["run"].pop("run_name") == "again"
    assert saved[0] == saved[1]


@pytest.mark.parametrize(("line", "expected"), [
    ("ktlab tune --max-ep", ["--max-epochs"]),
    ("ktlab tune --no-tens", ["--no-tensorboard"]),
    ("ktlab sh", ["show"]),
])
def test_shell_completion_answers_from_the_parser(line, expected, tmp_path):
    """What bash or zsh gets through `register-python-argcomplete ktlab`."""
    import os
    import subprocess
    import sys

    answer = tmp_path / "completions.txt"
    env = {**os.environ, "_ARGCOMPLETE": "1", "_ARGCOMPLETE_IFS": "\n", "COMP_LINE": line,
           "COMP_POINT": str(len(line)), "_ARGCOMPLETE_STDOUT_FILENAME": str(answer)}
    subprocess.run([sys.executable, "-c", "from pipelines.cli import main; main()"], env=env,
                   check=True, timeout=60)
    assert answer.read_text().split() == expected


def test_init_writes_every_key_at_its_default_and_keeps_an_existing_file(tmp_path, capsys):
    path = tmp_path / "mine.toml"
    assert main(["init", str(path)]) == 0
    assert capsys.readouterr().out == (f"wrote {path}: every setting at its default; edit it, "
                                       f"then ktlab tune --config {path}\n")
    assert path.read_text() == reference.commented_toml()
    assert load_config(path) == load_config()
    path.write_text("[tuner]\nmax_epochs = 3\n")
    assert main(["init", str(path)]) == 2
    assert capsys.readouterr().err == (f"ktlab: error: {path} already exists; pass another PATH "
                                       f"or delete it first\n")
    assert path.read_text() == "[tuner]\nmax_epochs = 3\n"
