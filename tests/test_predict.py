"""`predict_run` on real finished runs: its own test days, other layouts, tables, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sklearn.datasets
from conftest import make_prices, yahoo_csv

from pipelines.cli import main
from pipelines.errors import ConfigError, DataError
from pipelines.run.predict import SERIES_COLUMNS, predict_run

DAYS = 160
LOOKBACK = 5
TEST_SIZE = 20
# make_stock_features' 30-day moving average of close leaves the first 29 days unfilled.
WARMUP = 29
TINY_SEARCH = ["--tuner", "random", "--max-trials", "1", "--max-epochs", "1", "--seed", "7"]


def alpha_vantage_csv(frame: pd.DataFrame, volume: bool = True) -> str:
    """An Alpha Vantage CSV of `frame`: lower-case headers, the newest day first."""
    header = "timestamp,open,high,low,close" + (",volume" if volume else "")
    rows = [header]
    for date, row in frame.iloc[::-1].iterrows():
        line = f"{date.date()},{row.open},{row.high},{row.low},{row.close}"
        rows.append(line + (f",{int(row.volume)}" if volume else ""))
    return "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def stock_run(tmp_path_factory):
    """A finished one-trial LSTM search on 160 days written as a Yahoo CSV."""
    folder = tmp_path_factory.mktemp("stock")
    path = folder / "prices.csv"
    path.write_text(yahoo_csv(make_prices(DAYS), adjust=1.0))
    code = main(["tune", "--data", str(path), "--lookback", str(LOOKBACK), "--test-size",
                 str(TEST_SIZE), "--validation-size", "20", "--output-dir", str(folder / "runs"),
                 "--search-space", '{"units": [4], "num_layers": [1, 1], "batch_size": [16]}',
                 *TINY_SEARCH])
    assert code == 0
    return folder / "runs" / "lstm-random-prices-seed7", path


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    """A finished one-trial dense search on the bundled diabetes table."""
    folder = tmp_path_factory.mktemp("table")
    code = main(["tune", "--model", "dense", "--data", "diabetes", "--output-dir",
                 str(folder / "runs"), "--search-space",
                 '{"units": [4], "num_layers": [1, 1], "batch_size": [32]}', *TINY_SEARCH])
    assert code == 0
    return folder / "runs" / "dense-random-diabetes-seed7"


def test_own_data_forecasts_the_test_days_as_predictions_csv_has_them_plus_the_next_day(
        stock_run):
    run_dir, _ = stock_run
    frame = predict_run(run_dir)

    assert frame.columns.tolist() == SERIES_COLUMNS == ["date", "forecast", "actual",
                                                        "last_close"]
    # The test split's windows lie inside its 20 days: 20 - 5 forecasts, plus the next day.
    assert len(frame) == TEST_SIZE - LOOKBACK + 1 == 16
    # The saved preprocessor is the one the saved model was trained with (refitted or not),
    # and predictions.csv holds that model's test forecasts, so the forecasts match it.
    saved = pd.read_csv(run_dir / "predictions.csv")
    assert frame["date"].iloc[:-1].tolist() == saved["date"].tolist()
    np.testing.assert_allclose(frame["forecast"].iloc[:-1], saved["predicted"], rtol=1e-4)
    np.testing.assert_allclose(frame["actual"].iloc[:-1], saved["actual"], rtol=1e-12)
    np.testing.assert_allclose(frame["last_close"].iloc[:-1], saved["baseline"], rtol=1e-12)
    prices = make_prices(DAYS)
    last = frame.iloc[-1]
    assert last["date"] == (prices.index[-1] + pd.offsets.BDay(1)).date().isoformat()
    assert np.isnan(last["actual"])
    assert last["last_close"] == pytest.approx(prices["close"].iloc[-1], rel=1e-12)
    assert np.isfinite(frame["forecast"]).all()
    written = pd.read_csv(run_dir / "forecast.csv")
    assert written.columns.tolist() == SERIES_COLUMNS
    assert written["date"].tolist() == frame["date"].tolist()


def test_an_alpha_vantage_file_forecasts_as_the_yahoo_file_of_the_same_prices(
        stock_run, tmp_path):
    run_dir, yahoo_path = stock_run
    prices = make_prices(DAYS)
    av_path = tmp_path / "av.csv"
    av_path.write_text(alpha_vantage_csv(prices.iloc[-60:]))

    from_av = predict_run(run_dir, data=str(av_path))
    from_yahoo = predict_run(run_dir, data=str(yahoo_path), output=tmp_path / "yahoo.csv")

    assert from_av.columns.tolist() == SERIES_COLUMNS
    # 60 days leave 31 feature rows after the warm-up, so 27 windows, the last of them
    # forecasting the day after the file's last date.
    assert len(from_av) == 60 - WARMUP - LOOKBACK + 1 == 27
    assert len(from_yahoo) == DAYS - WARMUP - LOOKBACK + 1 == 127
    assert from_av["date"].tolist() == from_yahoo["date"].iloc[-27:].tolist()
    assert from_av["date"].iloc[0] == prices.index[-26].date().isoformat()
    # After the warm-up the features of the same prices are the same, whatever came before.
    np.testing.assert_allclose(from_av["forecast"], from_yahoo["forecast"].iloc[-27:],
                               rtol=1e-5)
    np.testing.assert_allclose(from_av["last_close"], from_yahoo["last_close"].iloc[-27:],
                               rtol=1e-12)
    own = predict_run(run_dir)
    np.testing.assert_allclose(from_yahoo["forecast"].iloc[-16:], own["forecast"], rtol=1e-5)
    assert (run_dir / "forecast-av.csv").is_file()
    assert pd.read_csv(tmp_path / "yahoo.csv").shape == (127, 4)


def test_a_file_without_volume_is_refused_naming_the_column(stock_run, tmp_path):
    run_dir, _ = stock_run
    path = tmp_path / "no-volume.csv"
    path.write_text(alpha_vantage_csv(make_prices(DAYS), volume=False))
    with pytest.raises(DataError) as raised:
        predict_run(run_dir, data=str(path))
    assert str(raised.value) == (
        "no-volume.csv: missing column volume, which the run's model takes as a feature; "
        "pass a file that has it (any layout that ktlab data reads)")


def test_too_few_rows_for_one_window_are_refused_and_just_enough_give_the_next_day(
        stock_run, tmp_path):
    run_dir, _ = stock_run
    prices = make_prices(DAYS)
    short = tmp_path / "short.csv"
    short.write_text(yahoo_csv(prices.iloc[:WARMUP + LOOKBACK - 1]))
    with pytest.raises(DataError) as raised:
        predict_run(run_dir, data=str(short))
    assert str(raised.value) == (
        "short.csv: 33 rows are too few for one window; the run needs at least 34 (29 warm-up "
        "rows for the rolling features + lookback 5), pass a longer file")

    enough = tmp_path / "enough.csv"
    enough.write_text(yahoo_csv(prices.iloc[:WARMUP + LOOKBACK]))
    frame = predict_run(run_dir, data=str(enough))
    assert frame["date"].tolist() == [
        (prices.index[WARMUP + LOOKBACK - 1] + pd.offsets.BDay(1)).date().isoformat()]
    assert np.isnan(frame["actual"].iloc[0])


def test_a_missing_or_unfinished_run_directory_is_one_line(tmp_path):
    with pytest.raises(ConfigError) as raised:
        predict_run(tmp_path / "nowhere")
    assert str(raised.value) == (f"run directory {tmp_path / 'nowhere'} does not exist; pass a "
                                 f"run directory that ktlab tune wrote")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ConfigError) as raised:
        predict_run(tmp_path)
    assert str(raised.value) == (f"{tmp_path} has no best_model.keras: its search has not "
                                 f"finished; finish it with ktlab tune --resume {tmp_path}")


def test_an_output_folder_that_does_not_exist_is_refused_before_forecasting(stock_run,
                                                                              tmp_path):
    run_dir, _ = stock_run
    target = tmp_path / "missing" / "out.csv"
    with pytest.raises(ConfigError) as raised:
        predict_run(run_dir, output=target)
    assert str(raised.value) == (f"cannot write {target}: folder {target.parent} does not "
                                 f"exist; create it or choose another --output")


def test_a_table_run_forecasts_rows_of_a_file_without_the_target(table_run, tmp_path):
    bunch = sklearn.datasets.load_diabetes(as_frame=True)
    path = tmp_path / "few.csv"
    bunch.data.iloc[:4].to_csv(path, index=False)

    frame = predict_run(table_run, data=str(path))

    assert frame.columns.tolist() == ["row", "forecast"]
    assert frame["row"].tolist() == [0, 1, 2, 3]
    assert np.isfinite(frame["forecast"]).all()
    assert (table_run / "forecast-few.csv").is_file()
    # The bundled table's first rows are the same numbers, with the target beside them.
    bundled = predict_run(table_run, data="diabetes", output=tmp_path / "all.csv")
    assert bundled.columns.tolist() == ["row", "forecast", "actual"]
    assert len(bundled) == 442
    np.testing.assert_allclose(frame["forecast"], bundled["forecast"].iloc[:4], rtol=1e-5)
    assert bundled["actual"].iloc[:4].tolist() == bunch.target.iloc[:4].tolist()


def test_a_table_run_forecasts_its_own_test_rows_as_predictions_csv_has_them(table_run):
    frame = predict_run(table_run)
    saved = pd.read_csv(table_run / "predictions.csv")
    assert frame.columns.tolist() == ["row", "forecast", "actual"]
    # 442 rows: 20 % held out for the test, as the run split them.
    assert len(frame) == len(saved) == 89
    np.testing.assert_allclose(frame["forecast"], saved["predicted"], rtol=1e-4)
    np.testing.assert_allclose(frame["actual"], saved["actual"], rtol=1e-12)


def test_a_table_file_missing_a_feature_is_refused_naming_it(table_run, tmp_path):
    bunch = sklearn.datasets.load_diabetes(as_frame=True)
    path = tmp_path / "no-bmi.csv"
    bunch.data.drop(columns=["bmi", "s1"]).iloc[:4].to_csv(path, index=False)
    with pytest.raises(DataError) as raised:
        predict_run(table_run, data=str(path))
    assert str(raised.value) == (
        "no-bmi.csv: missing columns bmi, s1, which the run's model takes as features; pass a "
        "file that has them (any layout that ktlab data reads)")


def test_ktlab_predict_in_a_subprocess_writes_the_csv_and_refuses_a_missing_column(
        stock_run, tmp_path):
    import os
    import subprocess
    import sys

    ktlab = os.path.join(os.path.dirname(sys.executable), "ktlab")
    run_dir, _ = stock_run
    prices = make_prices(DAYS)
    new_file = tmp_path / "av.csv"
    new_file.write_text(alpha_vantage_csv(prices.iloc[-60:]))
    output = tmp_path / "out.csv"
    result = subprocess.run([ktlab, "predict", str(run_dir), "--data", str(new_file),
                             "--output", str(output)], capture_output=True, text=True,
                            timeout=300)
    assert (result.returncode, result.stderr) == (0, "")
    frame = pd.read_csv(output)
    # 60 days less 29 warm-up rows leave 31 rows: 31 - 5 + 1 windows, the last one
    # forecasting the day after the file.
    assert frame.columns.tolist() == ["date", "forecast", "actual", "last_close"]
    assert len(frame) == 27
    assert result.stdout.splitlines()[-1] == f"27 forecasts written to {output}"
    no_volume = tmp_path / "no-volume.csv"
    no_volume.write_text(alpha_vantage_csv(prices.iloc[-60:], volume=False))
    refused = subprocess.run([ktlab, "predict", str(run_dir), "--data", str(no_volume)],
                             capture_output=True, text=True, timeout=300)
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr.splitlines() == [
        "ktlab: error: no-volume.csv: missing column volume, which the run's model takes as a "
        "feature; pass a file that has it (any layout that ktlab data reads)"]
