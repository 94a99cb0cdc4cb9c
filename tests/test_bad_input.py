"""Every bad input, through the real `ktlab` entry point: one line on stderr, exit code 2.

Each case runs `ktlab` in a subprocess, as a user would, and checks that the answer comes
before TensorFlow is imported (its import alone costs seconds and prints C++ log lines).
`benchmarks/bad_input.py` times the same cases.
"""

from __future__ import annotations

import os
import pathlib
import subprocess

import pytest
from conftest import KTLAB, assert_one_line_before_tensorflow, make_prices, yahoo_csv

ARTICLE = pathlib.Path(__file__).resolve().parents[1] / "configs" / "article.toml"


def yahoo_rows(days: int = 160) -> list[str]:
    return yahoo_csv(make_prices(days)).splitlines()


def edit(rows: list[str], row: int, column: int, value: str) -> list[str]:
    """`rows` with one cell (row 0 is the header) replaced."""
    cells = rows[row].split(",")
    cells[column] = value
    return [*rows[:row], ",".join(cells), *rows[row + 1:]]


def bad_inputs(directory: pathlib.Path) -> dict[str, tuple[list[str], str]]:
    """`{case: (ktlab arguments, the expected stderr line)}`, writing the files they need."""
    rows = yahoo_rows()

    def write(name: str, lines: list[str] | bytes) -> str:
        path = directory / name
        if isinstance(lines, bytes):
            path.write_bytes(lines)
        else:
            path.write_text("\n".join(lines) + ("\n" if lines else ""))
        return str(path)

    swapped = [rows[0], *rows[1:3], rows[4], rows[3], *rows[5:]]
    config = directory / "bad.toml"
    config.write_text("[tuner]\nmax_epochs = \"nine\"\n")
    unknown_key = directory / "unknown.toml"
    unknown_key.write_text("[tuner]\nmax_epoch = 9\n")
    return {
        "missing file": (["data", "--data", str(directory / "missing.csv")],
                         f"data file {directory / 'missing.csv'} does not exist; check the "
                         f"path or use a bundled ticker (AAPL, MSFT, IBM, GOOG)"),
        "empty file": (["tune", "--data", write("empty.csv", [])],
                       "cannot read empty.csv as CSV (No columns to parse from file); save it "
                       "as comma-separated text with a header row"),
        "header only": (["data", "--data", write("header.csv", rows[:1])],
                        "header.csv has a header but no rows; add data rows"),
        "missing column": (["data", "--data", write("no_close.csv", [
            ",".join(line.split(",")[:4] + line.split(",")[6:]) for line in rows])],
            "no_close.csv: missing required columns; expected Yahoo (Date,Open,High,Low,"
            "Close,Adj Close,Volume), Date,Open,High,Low,Close,Volume[,OpenInt] or Alpha "
            "Vantage (timestamp,open,high,low,close,volume) headers, found Date,Open,High,"
            "Low,Volume; or pass --date-column and --target-column"),
        "non-numeric value": (["data", "--data", write("text.csv", edit(rows, 3, 4, "abc"))],
                              "text.csv: column 'Close' has non-numeric value 'abc' on data "
                              "row 3 (1 such values); fix or remove those cells"),
        "duplicate dates": (["data", "--data", write("dup.csv", [*rows, rows[-1]])],
                            "dup.csv: 1 duplicate dates (first 2020-08-11); keep one row per "
                            "date"),
        "unsorted dates": (["data", "--data", write("unsorted.csv", swapped)],
                           "unsorted.csv: dates are not in order (2020-01-03 on data row 4 "
                           "follows 2020-01-06); sort the file by date"),
        "too short": (["data", "--data", write("short.csv", rows[:61]), "--test-size", "10",
                       "--validation-size", "10"],
                      "short.csv: too few rows for lookback 30: have 60, need 131 (29 warm-up, "
                      ">= 40 train, >= 31 each for validation (10) and test (10)); use more "
                      "data or lower --lookback, --validation-size or --test-size"),
        "negative price": (["data", "--data", write("negative.csv", edit(rows, 5, 3, "-1"))],
                           "negative.csv: 1 non-positive prices (first low=-1.0 on "
                           "2020-01-07); prices must be > 0, fix those rows"),
        "inf": (["data", "--data", write("inf.csv", edit(rows, 3, 6, "inf"))],
                "inf.csv: column 'Volume' has an infinite value 'inf' on data row 3; fix or "
                "remove those cells"),
        "undecodable bytes": (["data", "--data", write("binary.csv", b"\xff\xfe\x00\xd8" * 64)],
                              "cannot read binary.csv as CSV ('utf-8' codec can't decode byte "
                              "0xff in position 0: invalid start byte); save it as "
                              "comma-separated text with a header row"),
        "wrong config value": (["tune", "--config", str(config)],
                               "config key tuner.max_epochs must be a whole number, got 'nine'"),
        "unknown config key": (["tune", "--config", str(unknown_key)],
                               "unknown config key tuner.max_epoch; valid keys: name, "
                               "max_epochs, factor, hyperband_iterations, max_trials, "
                               "num_initial_points, executions_per_trial, objective, direction, "
                               "objectives, pareto_tolerance, patience, options, validation, "
                               "max_consecutive_failed_trials, pruner, pruner_grace, "
                               "pruner_startup_trials"),
        "flag out of range": (["tune", "--max-epochs", "0"],
                              "max epochs must be >= 1, got 0; fix --max-epochs"),
        "unknown tuner": (["tune", "--tuner", "annealing"],
                          "unknown tuner 'annealing'; use one of hyperband, bayesian, random, "
                          "grid, genetic, bohb, asha, pbt"),
        "unknown model": (["tune", "--model", "resnet"],
                          "unknown model 'resnet'; use one of lstm, dense, or FILE.py:CLASS for "
                          "your own keras_tuner.HyperModel"),
        "walk-forward windows too long": (
            ["tune", "--config", str(ARTICLE), "--train-window", "3000"],
            "walk-forward windows (3000 + 500 days) do not fit in the 2441 days before the "
            "test split; lower --walk-forward-train or --walk-forward-validation"),
    }


CASES = ["missing file", "empty file", "header only", "missing column", "non-numeric value",
         "duplicate dates", "unsorted dates", "too short", "negative price", "inf",
         "undecodable bytes", "wrong config value", "unknown config key", "flag out of range",
         "unknown tuner", "unknown model", "walk-forward windows too long"]


def test_the_battery_covers_every_case(tmp_path):
    assert list(bad_inputs(tmp_path)) == CASES


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_on_stderr_exit_2_before_tensorflow(case, tmp_path):
    arguments, expected = bad_inputs(tmp_path)[case]
    assert_one_line_before_tensorflow(arguments, expected, tmp_path)


def test_a_search_shows_no_tensorflow_start_up_log(tmp_path):
    """TensorFlow's C++ and absl lines ("Could not find cuda drivers", oneDNN, cuInit) and
    its retracing warnings never reach a user of `ktlab tune`."""
    data = tmp_path / "prices.csv"
    data.write_text(yahoo_csv(make_prices(160)))
    environment = {**os.environ}
    environment.pop("TF_CPP_MIN_LOG_LEVEL", None)
    result = subprocess.run(
        [str(KTLAB), "tune", "--data", str(data), "--lookback", "5", "--test-size", "20",
         "--validation-size", "20", "--output-dir", str(tmp_path / "runs"), "--max-epochs",
         "2", "--factor", "2", "--search-space",
         '{"units": {"choices": [4]}, "num_layers": {"value": 1}}'],
        capture_output=True, text=True, cwd=tmp_path, env=environment, timeout=300)
    assert result.returncode == 0
    assert result.stderr == ""
    assert result.stdout.splitlines()[0].startswith("ktlab: a hyperband search of the lstm "
                                                    "model on prices.csv daily prices")
