"""The volatility target, its log-space transform and the persistence and moving-average
baselines: exact numbers on tiny known series, the bad-target error, and one tiny real
`ktlab tune --target volatility`."""

from __future__ import annotations

import json
import math
import os
import pathlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import PROBE, make_prices, yahoo_csv

from pipelines.cli import main
from pipelines.data import StockPipeline, make_stock_features, references, volatility
from pipelines.data.prepared import Split

# Log returns 0.01, -0.02, 0.03, 0, -0.01, 0.02 from 100: absolute values with round sums.
LOG_RETURNS = [0.01, -0.02, 0.03, 0.0, -0.01, 0.02]


def known_prices() -> pd.DataFrame:
    close = 100.0 * np.exp(np.cumsum([0.0, *LOG_RETURNS]))
    return pd.DataFrame({"close": close},
                        index=pd.bdate_range("2024-01-01", periods=7, name="date"))


def test_target_is_the_absolute_log_return_in_log_space_with_a_floor():
    close = pd.Series([100.0, 110.0, 99.0, 99.0, 108.9])
    realised = volatility.absolute_log_returns(close)
    assert math.isnan(realised.iloc[0])
    np.testing.assert_allclose(realised.iloc[1:],
                               [0.09531017980432493, 0.10536051565782628, 0.0,
                                0.09531017980432493], rtol=1e-12, atol=1e-15)
    # log(0.0001 + v); an unchanged close is log(0.0001), not minus infinity.
    logs = volatility.to_log_space(realised.iloc[1:])
    np.testing.assert_allclose(logs, [-2.349570000, -2.249418655, -9.210340372, -2.349570000],
                               rtol=1e-9)
    assert volatility.FLOOR == 1e-4
    np.testing.assert_allclose(volatility.from_log_space(logs), realised.iloc[1:],
                               rtol=1e-12, atol=1e-15)
    # A forecast below log(FLOOR) is a volatility of 0, never negative.
    assert volatility.from_log_space(np.array([math.log(1e-5), math.log(0.0101)])).tolist() == [
        0.0, pytest.approx(0.01, rel=1e-12)]


def test_features_targets_and_both_baselines_on_a_known_series():
    features, numeric, _ = make_stock_features(known_prices(), rolling_window=2,
                                               moving_average_window=3, log_returns=True,
                                               volatility=True)
    # The 3-day mean of |log return| needs days 1-3, so the rows start on day 3.
    assert features.index[0] == pd.Timestamp("2024-01-04")
    assert numeric == ["close", "close_mean_2", "close_ma_3", "log_return", "abs_log_return",
                       "abs_log_return_mean_2", "abs_log_return_ma_3"]
    np.testing.assert_allclose(features["abs_log_return"], [0.03, 0.0, 0.01, 0.02], atol=1e-12)
    np.testing.assert_allclose(features["abs_log_return_ma_3"],
                               [0.02, 0.05 / 3, 0.04 / 3, 0.01], atol=1e-12)
    targets, actual, anchor = volatility.volatility_targets(features)
    np.testing.assert_allclose(actual[:3], [0.0, 0.01, 0.02], atol=1e-12)
    np.testing.assert_allclose(targets[:3], np.log([1e-4, 0.0101, 0.0201]), rtol=1e-9)
    assert math.isnan(actual[3]) and math.isnan(targets[3])
    np.testing.assert_allclose(anchor, [0.03, 0.0, 0.01, 0.02], atol=1e-12)

    forecasts = references.reference_forecasts("volatility", features, 3)
    days = features.index[1:]
    split = Split(name="test", targets=targets[:3], actual=actual[:3], index=days,
                  anchor=anchor[:3], make_dataset=lambda: None)
    persistence, average = forecasts["persistence"], forecasts["moving_average"]
    assert persistence.description == "persistence: tomorrow's volatility = today's |log return|"
    assert average.description == ("moving average: tomorrow's volatility = mean |log return| "
                                   "of the last 3 days (data.moving_average_window)")
    np.testing.assert_allclose(persistence.predictions(split), [0.03, 0.0, 0.01], atol=1e-12)
    np.testing.assert_allclose(average.predictions(split), [0.02, 0.05 / 3, 0.04 / 3],
                               atol=1e-12)
    # Errors 0.03, -0.01, -0.01 and 0.02, 0.02/3, -0.02/3.
    assert persistence.scores(split) == {"mse": pytest.approx(0.0011 / 3, rel=1e-9),
                                         "mae": pytest.approx(0.05 / 3, rel=1e-9),
                                         "rmse": pytest.approx(math.sqrt(0.0011 / 3), rel=1e-9)}
    assert average.scores(split) == {"mse": pytest.approx(0.0044 / 27, rel=1e-9),
                                     "mae": pytest.approx(0.1 / 9, rel=1e-9),
                                     "rmse": pytest.approx(math.sqrt(0.0044 / 27), rel=1e-9)}
    # For a price target both forecast the close: today's, and the mean of 3 days'.
    prices = forecasts_of("close", known_prices())
    close = known_prices()["close"].to_numpy()
    np.testing.assert_allclose(prices["persistence"], close[2:6], rtol=1e-12)
    np.testing.assert_allclose(prices["moving_average"],
                               [close[0:3].mean(), close[1:4].mean(), close[2:5].mean(),
                                close[3:6].mean()], rtol=1e-12)


def forecasts_of(target: str, prices: pd.DataFrame) -> dict[str, list[float]]:
    features, _, _ = make_stock_features(prices, rolling_window=2, moving_average_window=3)
    return {name: reference.forecasts.tolist()
            for name, reference in references.reference_forecasts(target, features, 3).items()}


def test_pipeline_scores_the_model_units_and_the_persistence_baseline_alike():
    prepared = StockPipeline("unused", lookback=5, test_size=20, validation_size=20,
                             target="volatility").prepare(make_prices(160))
    test = prepared.splits["test"]
    realised = volatility.absolute_log_returns(make_prices(160)["close"])
    assert len(test) == 15
    np.testing.assert_allclose(test.actual, realised.loc[test.index], rtol=1e-12)
    # The model's scaled targets, turned back, are the actual volatilities.
    np.testing.assert_allclose(prepared.to_original_units(test.targets, "test"), test.actual,
                               rtol=1e-5, atol=1e-7)
    assert prepared.units == "volatility"
    assert prepared.baseline == "persistence: tomorrow's volatility = today's |log return|"
    scores = references.reference_scores(prepared.references, prepared.splits)
    assert sorted(scores) == ["moving_average", "persistence"]
    assert scores["persistence"]["test"] == pytest.approx(prepared.baselines["test"], rel=1e-12)
    assert scores["persistence"]["validation"] == pytest.approx(
        prepared.baselines["validation"], rel=1e-12)


def test_unknown_target_is_one_line_before_tensorflow(tmp_path):
    imported = tmp_path / "imported"
    result = subprocess.run(
        [sys.executable, "-c", PROBE, "tune", "--target", "vol"], capture_output=True,
        text=True, env={**os.environ, "KTLAB_IMPORTED": str(imported)}, timeout=60)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "ktlab: error: unknown target 'vol'; use one of close, return, volatility"]
    assert imported.read_text() == "False"


def test_tune_volatility_reports_both_baselines(tmp_path, write_csv, capsys):
    path = write_csv(yahoo_csv(make_prices(160)))
    code = main(["tune", "--data", str(path), "--lookback", "5", "--test-size", "20",
                 "--validation-size", "20", "--output-dir", str(tmp_path / "runs"),
                 "--search-space", '{"units": [4], "num_layers": [1, 1], "batch_size": [16]}',
                 "--tuner", "random", "--max-trials", "1", "--max-epochs", "1",
                 "--target", "volatility", "--seed", "7"])
    assert code == 0
    output = capsys.readouterr().out
    run_dir = tmp_path / "runs" / "lstm-random-prices-seed7"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["units"] == "volatility"
    assert metrics["baseline"]["name"] == (
        "persistence: tomorrow's volatility = today's |log return|")
    baselines = metrics["baselines"]
    assert sorted(baselines) == ["moving_average", "persistence"]
    assert baselines["moving_average"]["name"] == (
        "moving average: tomorrow's volatility = mean |log return| of the last 30 days "
        "(data.moving_average_window)")
    assert baselines["persistence"]["test"] == metrics["baseline"]["test"]
    # predictions.csv holds both baselines' forecasts of the same 15 test days, in
    # volatility units: the next day's |log return| of the file's closes.
    predictions = pd.read_csv(run_dir / "predictions.csv")
    assert predictions.columns.tolist() == ["date", "actual", "predicted", "baseline",
                                            "moving_average"]
    assert len(predictions) == 15
    realised = volatility.absolute_log_returns(make_prices(160)["close"])
    np.testing.assert_allclose(predictions["actual"], realised.iloc[-15:], rtol=1e-9)
    np.testing.assert_allclose(predictions["baseline"], realised.iloc[-16:-1], rtol=1e-9)
    np.testing.assert_allclose(predictions["moving_average"],
                               realised.rolling(30).mean().iloc[-16:-1], rtol=1e-9)
    assert (predictions["predicted"] >= 0).all()
    for column, name in (("baseline", "persistence"), ("moving_average", "moving_average")):
        errors = predictions[column] - predictions["actual"]
        assert baselines[name]["test"]["mse"] == pytest.approx(float((errors ** 2).mean()),
                                                               rel=1e-9)
    model_mse = float(((predictions["predicted"] - predictions["actual"]) ** 2).mean())
    assert metrics["test"]["mse"] == pytest.approx(model_mse, rel=1e-6)
    # The summary prints every MSE in 4 significant digits beside both baselines.
    refitted = [line for line in output.splitlines() if line.startswith("  test       refitted")
                and "moving average" in line]
    label = f"refitted ({metrics['best_model']['epochs']} epochs):"
    assert refitted == [
        f"  test       {label:<26} {metrics['test']['mse']:#.4g} | persistence "
        f"{baselines['persistence']['test']['mse']:#.4g} | moving average "
        f"{baselines['moving_average']['test']['mse']:#.4g}"]
    assert f"  moving average = {baselines['moving_average']['name']}" in output
    assert pathlib.Path(run_dir / "plot_predictions.png").stat().st_size > 0
