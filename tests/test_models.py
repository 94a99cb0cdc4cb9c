"""Models as plugins: the registry, and a user's own HyperModel class run through `ktlab tune`."""

from __future__ import annotations

import json
import pathlib

import keras
import pandas as pd
import pytest
from conftest import make_prices, yahoo_csv

from hypermodels import registry
from pipelines.cli import main

USER_MODELS = pathlib.Path(__file__).resolve().parent / "models" / "user_models.py"


@pytest.fixture
def tiny_flags(tmp_path, write_csv) -> list[str]:
    path = write_csv(yahoo_csv(make_prices(160)))
    return ["--data", str(path), "--lookback", "5", "--test-size", "20",
            "--validation-size", "20", "--output-dir", str(tmp_path / "runs"), "--seed", "7"]


def test_registry_names_each_models_class_data_and_presets():
    assert list(registry.MODELS) == ["lstm", "dense"]
    lstm, dense = registry.MODELS["lstm"], registry.MODELS["dense"]
    assert (lstm.data_kind, lstm.default_source) == ("series", "AAPL")
    assert (dense.data_kind, dense.default_source) == ("table", "diabetes")
    assert lstm.hypermodel_class.__name__ == "LSTMHyperModel"
    assert lstm.arguments("quick", {"units": [8]})["units"] == [8]
    assert lstm.arguments("quick")["num_layers"] == [1, 2]
    assert lstm.arguments("article") == {}


def test_a_user_class_resolves_with_its_data_kind():
    spec = registry.resolve(f"{USER_MODELS}:TinyTableModel")
    assert spec.hypermodel_class.__name__ == "TinyTableModel"
    assert (spec.data_kind, spec.default_source) == ("table", "diabetes")
    hypermodel = spec.build((3,), task="regression", n_classes=None)
    assert (hypermodel.input_shape, hypermodel.task) == ((3,), "regression")


def test_user_hypermodel_from_a_file_runs_end_to_end(tiny_flags, tmp_path, capsys):
    code = main(["tune", *tiny_flags, "--model", f"{USER_MODELS}:TinyGRUModel",
                 "--tuner", "random", "--max-trials", "2", "--max-epochs", "2"])
    assert code == 0
    output = capsys.readouterr().out
    assert "random search of the TinyGRUModel model" in output
    run_dir = tmp_path / "runs" / "TinyGRUModel-random-prices-seed7"
    assert (run_dir / "best_model.keras").is_file()
    assert (run_dir / "histories.jsonl").is_file()
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
    assert trials["trial_id"].tolist() == ["0", "1"]
    assert set(trials["hp_units"]) <= {4, 8}
    model = keras.saving.load_model(run_dir / "best_model.keras")
    assert [layer.__class__.__name__ for layer in model.layers] == ["InputLayer", "GRU",
                                                                    "Dense"]
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["model"]["name"] == f"{USER_MODELS}:TinyGRUModel"


@pytest.mark.parametrize(("model", "message"), [
    ("resnet",
     "ktlab: error: unknown model 'resnet'; use one of lstm, dense, or FILE.py:CLASS for "
     "your own keras_tuner.HyperModel"),
    ("missing_file.py:Model",
     "ktlab: error: --model missing_file.py:Model: file missing_file.py does not exist; "
     "check the path"),
    ("my-models:Model",
     "ktlab: error: --model my-models:Model: 'my-models' is neither a .py file nor a module "
     "name; e.g. my_models.py:MyModel or my_package.models:MyModel"),
    ("no_such_package.models:Model",
     "ktlab: error: --model no_such_package.models:Model: cannot import "
     "no_such_package.models (No module named 'no_such_package'); check the name and that "
     "it is installed"),
])
def test_a_model_that_cannot_be_found_is_one_line(model, message, capsys):
    assert main(["data", "--model", model]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == message
    assert captured.out == ""


@pytest.mark.parametrize(("class_name", "message"), [
    ("Missing", "defines no 'Missing'; check the spelling"),
    ("NotAHyperModel", "NotAHyperModel is not a subclass of keras_tuner.HyperModel; subclass "
                       "it and define build(hp)"),
    ("NeedsMoreArguments", "with input_shape=(5, 11) (NeedsMoreArguments.__init__() missing 1 "
                           "required positional argument: 'vocabulary'); its __init__ must "
                           "take input_shape= (tables: also task= and n_classes=)"),
])
def test_a_user_class_that_cannot_be_built_is_one_line(class_name, message, tiny_flags,
                                                       tmp_path, capsys):
    assert main(["tune", *tiny_flags, "--model", f"{USER_MODELS}:{class_name}"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("ktlab: error: ")
    assert error.endswith(message)
    assert "\n" not in error
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
