"""`benchmarks/vs_optuna.py`'s parts that need neither Optuna nor TensorFlow.

The comparison itself trains for minutes and needs Optuna (the `bench` extra), so it is a
benchmark, not a test. What decides its fairness without training is tested here: the
equal epoch budget, the translation of keras-tuner's search space into Optuna's
suggestions over the same ranges, and the one-line refusals before TensorFlow.
"""

from __future__ import annotations

import importlib.util
import math
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("vs_optuna", ROOT / "benchmarks" / "vs_optuna.py")
vs_optuna = importlib.util.module_from_spec(SPEC)
sys.modules["vs_optuna"] = vs_optuna  # Its dataclasses look their module up while defined.
SPEC.loader.exec_module(vs_optuna)

# The quick LSTM's declared space, as `HyperParameters.get_config()["space"]` gives it.
QUICK_LSTM_SPACE = [
    {"class_name": "Int", "config": {"name": "num_layers", "default": None, "conditions": [],
                                     "min_value": 1, "max_value": 2, "step": 1,
                                     "sampling": "linear"}},
    {"class_name": "Choice", "config": {"name": "units", "default": 16, "conditions": [],
                                        "values": [16, 32, 64], "ordered": True}},
    {"class_name": "Float", "config": {"name": "dropout", "default": 0.1, "conditions": [],
                                       "min_value": 0.1, "max_value": 0.6, "step": None,
                                       "sampling": "linear"}},
    {"class_name": "Float", "config": {"name": "learning_rate", "default": 0.001,
                                       "conditions": [], "min_value": 0.0001,
                                       "max_value": 0.01, "step": None, "sampling": "log"}},
    {"class_name": "Choice", "config": {"name": "batch_size", "default": 32, "conditions": [],
                                        "values": [32, 64, 128], "ordered": True}},
]


class RecordingTrial:
    """Answers each suggestion with its range's top end and notes the call, as Optuna's
    `Trial` is asked; the three methods are all `suggest` uses."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def suggest_int(self, name, low, high, *, step=1, log=False):
        self.calls.append(("int", name, low, high, step, log))
        return high

    def suggest_float(self, name, low, high, *, step=None, log=False):
        self.calls.append(("float", name, low, high, step, log))
        return high

    def suggest_categorical(self, name, choices):
        self.calls.append(("categorical", name, list(choices)))
        return choices[-1]


def test_the_epoch_budget_cuts_the_last_trial_to_ktlabs_total():
    budget = vs_optuna.EpochBudget(20)
    trained = []
    while not budget.exhausted:
        epochs = budget.next_trial(9)
        trained.append(epochs)
        budget.spend(epochs)
    assert trained == [9, 9, 2]
    assert budget.spent == 20
    assert budget.next_trial(9) == 0


def test_the_epoch_budget_counts_what_trials_trained_not_what_they_were_allowed():
    budget = vs_optuna.EpochBudget(10)
    budget.spend(4)  # Early stopping ended a 9-epoch trial after 4.
    assert budget.next_trial(9) == 6
    budget.spend(1)  # Optuna pruned one after its first epoch.
    assert (budget.next_trial(9), budget.exhausted) == (5, False)


def test_an_empty_epoch_budget_is_refused():
    with pytest.raises(ValueError, match="an epoch budget must be at least 1, got 0"):
        vs_optuna.EpochBudget(0)


def test_suggest_asks_optuna_over_the_quick_lstm_ranges():
    trial = RecordingTrial()
    values = vs_optuna.suggest(trial, QUICK_LSTM_SPACE)
    assert trial.calls == [
        ("int", "num_layers", 1, 2, 1, False),
        ("categorical", "units", [16, 32, 64]),
        ("float", "dropout", 0.1, 0.6, None, False),
        ("float", "learning_rate", 0.0001, 0.01, None, True),
        ("categorical", "batch_size", [32, 64, 128]),
    ]
    assert values == {"num_layers": 2, "units": 64, "dropout": 0.6, "learning_rate": 0.01,
                      "batch_size": 128}


def test_suggest_keeps_fixed_values_and_asks_booleans_as_choices():
    space = [{"class_name": "Fixed", "config": {"name": "horizon", "value": 4,
                                                "conditions": []}},
             {"class_name": "Boolean", "config": {"name": "bias", "default": False,
                                                  "conditions": []}}]
    trial = RecordingTrial()
    assert vs_optuna.suggest(trial, space) == {"horizon": 4, "bias": True}
    assert trial.calls == [("categorical", "bias", [False, True])]


@pytest.mark.parametrize(("change", "message"), [
    ({"conditions": [{"class_name": "Parent", "config": {"name": "x", "values": [1]}}]},
     "learning_rate is conditional; vs_optuna compares flat spaces only"),
    ({"sampling": "reverse_log"},
     "learning_rate samples reverse_log; Optuna has linear and log only"),
    ({"step": 10}, "learning_rate steps by 10 on a log scale; Optuna cannot"),
])
def test_suggest_refuses_what_optuna_cannot_sample_alike(change, message):
    entry = QUICK_LSTM_SPACE[3]
    space = [{"class_name": "Float", "config": {**entry["config"], **change}}]
    with pytest.raises(ValueError, match=f"^{message}$"):
        vs_optuna.suggest(RecordingTrial(), space)


def test_better_follows_the_direction_and_never_takes_nan():
    assert vs_optuna.better(0.5, None, "min") is True
    assert vs_optuna.better(0.4, 0.5, "min") is True
    assert vs_optuna.better(0.6, 0.5, "min") is False
    assert vs_optuna.better(0.6, 0.5, "max") is True
    assert vs_optuna.better(math.nan, None, "min") is False


# Runs the benchmark's `main` in a fresh process with `importlib.util.find_spec` answering
# for optuna as the case needs (absent, or present without being imported), then prints
# whether TensorFlow was imported.
PROBE = ("import importlib.util, sys; real = importlib.util.find_spec; "
         "importlib.util.find_spec = lambda name, *rest: ({OPTUNA} if name == 'optuna' "
         "else real(name, *rest)); sys.path.insert(0, 'benchmarks'); import vs_optuna; "
         "code = vs_optuna.main(sys.argv[1:]); print('tensorflow' in sys.modules); "
         "sys.exit(code)")


@pytest.mark.parametrize(("optuna", "arguments", "message"), [
    ("None", [], 'vs_optuna: optuna is not installed; install it with pip install -e ".[bench]"'),
    ("real('json')", ["--repeats", "0"], "vs_optuna: --repeats must be at least 1, got 0"),
    ("real('json')", ["--config", "{random}"],
     "vs_optuna: ktlab's side must be Hyperband on a holdout split, as Optuna's pruner is; "
     "set tuner.name = \"hyperband\" and tuner.validation = \"holdout\""),
])
def test_bad_input_is_one_line_and_exit_2_before_tensorflow(tmp_path, optuna, arguments,
                                                              message):
    random = tmp_path / "random.toml"
    random.write_text('[tuner]\nname = "random"\n')
    done = subprocess.run(
        [sys.executable, "-c", PROBE.replace("{OPTUNA}", optuna),
         *[argument.replace("{random}", str(random)) for argument in arguments]],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (2, "False\n", message + "\n")
