"""The `ktlab` command line, called in-process through `main([...])`."""

from __future__ import annotations

import pytest
from conftest import make_prices

from pipelines.cli import main


def test_data_summary_of_bundled_aapl(capsys):
    assert main(["data"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # The run defaults forecast the next day's return, with the day's log return a feature.
    assert lines[0] == "data: AAPL daily prices (regression, target return)"
    assert lines[1].split() == ["train", "1911", "samples", "2000-05-24", "..", "2007-12-31"]
    assert lines[4] == "input shape: (30, 11)"
    assert lines[5].startswith("features (11): open, high, low, close, volume,")
    assert lines[5].endswith(", close_ma_30, log_return")
    # Both baselines, scored with 4 significant digits: persistence, then the moving average.
    assert lines[-3].endswith("on test: mse 1.049, mae 0.6926, rmse 1.024")
    assert lines[-1] == ("baseline (moving average: tomorrow's close = mean close of the last "
                         "30 days (data.moving_average_window)) on test: mse 11.65, mae 2.541, "
                         "rmse 3.413")


@pytest.mark.parametrize(("argv", "message"), [
    (["data", "--data", "missing.csv"],
     "ktlab: error: data file missing.csv does not exist; check the path or use a bundled "
     "ticker (AAPL, MSFT, IBM, GOOG)"),
    (["data", "--lookback", "many"],
     "ktlab data: error: argument --lookback: invalid int value: 'many'; see ktlab data --help"),
    (["data", "--bogus"],
     "ktlab: error: unrecognized arguments: --bogus; see ktlab --help"),
    (["data", "--target", "price"],
     "ktlab: error: unknown target 'price'; use one of close, return, volatility"),
    (["data", "--model", "dense", "--data", "AAPL"],
     "ktlab: error: the dense model takes a table, but 'AAPL' is a price series; use --model "
     "lstm or --data diabetes"),
    (["data", "--data", "diabetes"],
     "ktlab: error: the lstm model forecasts a time series, but 'diabetes' is a table; use "
     "--model dense or --data AAPL"),
    (["data", "--model", "dense", "--data", "diabetes", "--target-column", "nope"],
     "ktlab: error: the bundled table 'diabetes' has its own target; --target-column is for a "
     "CSV file"),
    (["tune", "--tuner", "annealing"],
     "ktlab: error: unknown tuner 'annealing'; use one of hyperband, bayesian, random, grid, "
     "genetic, bohb, asha, pbt"),
    (["tune", "--max-epochs", "0"],
     "ktlab: error: max epochs must be >= 1, got 0; fix --max-epochs"),
    (["tune", "--factor", "1"], "ktlab: error: factor must be >= 2, got 1; fix --hyperband-factor"),
    (["tune", "--max-trials", "0"],
     "ktlab: error: max trials must be >= 1, got 0; fix --max-trials"),
    (["tune", "--run-name", "../escape"],
     "ktlab: error: run name '../escape' must be a plain name without path separators or "
     "'..'; use --output-dir to choose the parent folder"),
])
def test_bad_input_is_one_line_and_exit_code_2(capsys, argv, message):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == message
    assert captured.out == ""


def test_config_file_unknown_key_and_wrong_type(tmp_path, capsys):
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[tuner]\nmax_epoch = 3\n")
    assert main(["tune", "--config", str(unknown)]) == 2
    assert capsys.readouterr().err.startswith(
        "ktlab: error: unknown config key tuner.max_epoch; valid keys: name, max_epochs,")
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("tuner:\n  max_epochs: three\n")
    assert main(["tune", "--config", str(wrong)]) == 2
    assert capsys.readouterr().err.strip() == (
        "ktlab: error: config key tuner.max_epochs must be a whole number, got 'three'")


def test_output_dir_that_cannot_be_created(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code = main(["tune", "--data", "AAPL", "--output-dir", str(blocker / "runs")])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        f"ktlab: error: cannot create output directory {blocker / 'runs'} (Not a directory); "
        f"choose another --output-dir")


def test_brackets_prints_both_schedules_and_their_differences(capsys):
    assert main(["brackets", "--max-epochs", "81", "--factor", "3"]) == 0
    output = capsys.readouterr().out
    assert "total: 5 brackets, 211 trials, 143 configurations, 1767 epochs trained" in output
    assert "total: 5 brackets, 206 trials, 143 configurations, 1902 epochs trained" in output
    assert ("  bracket 3 round 1 configurations: 12 (keras-tuner 1.4.8) vs 11 (Li et al. "
            "(2018))") in output.splitlines()
    assert main(["brackets", "--factor", "1"]) == 2
    assert capsys.readouterr().err.strip() == "ktlab: error: --factor must be >= 2, got 1"


def test_config_sections_left_empty_or_not_tables(tmp_path, capsys):
    empty = tmp_path / "empty.yaml"
    empty.write_text("data:\ntuner:\n  max_epochs: 2\n")
    from pipelines.config import load_config

    config = load_config(empty, {"data": {"lookback": 7}})
    assert (config.data.lookback, config.tuner.max_epochs) == (7, 2)
    scalar = tmp_path / "scalar.toml"
    scalar.write_text('data = "MSFT"\n')
    assert main(["data", "--config", str(scalar), "--lookback", "5"]) == 2
    assert capsys.readouterr().err.strip() == (
        "ktlab: error: config section [data] must be a table of keys, got 'MSFT'")


def test_search_space_flag_adds_to_the_files_table(tmp_path):
    from pipelines.config import load_config

    path = tmp_path / "space.toml"
    path.write_text("[model.search_space]\nunits = [8]\nnum_layers = [1, 1]\n")
    config = load_config(path, {"model": {"search_space": {"units": [4, 8]}}})
    assert config.model.search_space == {"units": [4, 8], "num_layers": [1, 1]}


def test_data_on_a_seven_column_daily_file_uses_close_and_drops_openint(write_csv, capsys):
    """Kaggle's "Huge Stock Market Dataset" and stooq write Date,Open,High,Low,Close,Volume,
    OpenInt, with OpenInt always 0."""
    frame = make_prices(160)
    rows = ["Date,Open,High,Low,Close,Volume,OpenInt"] + [
        f"{date.date()},{row.open},{row.high},{row.low},{row.close},{int(row.volume)},0"
        for date, row in frame.iterrows()]
    path = write_csv("\n".join(rows) + "\n")
    assert main(["data", "--data", str(path), "--lookback", "5", "--test-size", "20",
                 "--validation-size", "20"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [
        "data: prices.csv daily prices (regression, target return)",
        "layout: Date,Open,High,Low,Close,Volume,OpenInt (no Adj Close): Close is the price",
        "dropped columns constant over the training rows: openint"]
    features = next(line for line in lines if line.startswith("features ("))
    assert features.startswith("features (11): open, high, low, close, volume,")
    assert "openint" not in features


def test_tune_help_shows_the_model_file_form(capsys):
    assert main(["tune", "--help"]) == 0
    assert "--model NAME|FILE.py:CLASS" in capsys.readouterr().out
