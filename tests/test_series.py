"""Any time series (not prices): frequency, gaps, horizon windows, references, bad input."""

from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd
import pytest
from conftest import assert_one_line_before_tensorflow, make_prices, yahoo_csv

from pipelines.cli import main
from pipelines.data import SeriesPipeline, frequency, series_sources
from pipelines.errors import DataError


def weekly(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """A weekly series of any sign with a 52-week season and one exogenous column."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2020-01-06", periods=rows, freq="W-MON")
    load = np.sin(np.arange(rows) * 2 * np.pi / 52) * 10 - 5 + rng.normal(0, 1, rows)
    return pd.DataFrame({"week": dates.date, "load": load.round(3),
                         "temp": rng.normal(10, 3, rows).round(2)})


@pytest.mark.parametrize(("alias", "name", "season"), [
    ("h", "hourly", 24), ("D", "daily", 7), ("B", "business-daily", 5),
    ("W-SAT", "weekly", 52), ("MS", "monthly", 12), ("ME", "monthly", 12),
    ("QS", "quarterly", 4), ("YE", "yearly", 1)])
def test_the_frequency_is_inferred_with_or_without_gaps(alias, name, season):
    dates = pd.date_range("2001-01-01", periods=60, freq=alias)
    for index in (dates, dates.delete([4, 17, 18])):
        inferred = frequency.infer_frequency(index, "x.csv")
        assert (inferred.name, inferred.season) == (name, season)


def test_irregular_dates_are_refused_in_one_line():
    dates = pd.DatetimeIndex(["2020-01-01", "2020-01-02", "2020-01-05", "2020-01-15",
                              "2020-02-01"])
    with pytest.raises(DataError) as error:
        frequency.infer_frequency(dates, "x.csv")
    assert str(error.value) == (
        "x.csv: the dates are irregular (steps 1 days (1x), 3 days (1x), 10 days (1x)) and "
        "fit no hourly, daily, weekly, monthly, quarterly or yearly grid; resample the series "
        "to one frequency first")


@pytest.mark.parametrize(("policy", "rows", "notice"), [
    ("ffill", 300, "gaps: 3 missing weeks (first 2020-03-16) and 1 missing values in 1 rows "
                   "(first 2020-06-01): carried the last value forward on 4 rows (--fill ffill)"),
    ("interpolate", 300, "gaps: 3 missing weeks (first 2020-03-16) and 1 missing values in 1 "
                         "rows (first 2020-06-01): interpolated in time on 4 rows (--fill "
                         "interpolate)"),
    ("drop", 296, "gaps: 3 missing weeks (first 2020-03-16) and 1 missing values in 1 rows "
                  "(first 2020-06-01): dropped 1 rows with a missing value; 3 missing weeks "
                  "stay missing (--fill drop)"),
])
def test_each_gap_policy_says_what_it_did(policy, rows, notice, tmp_path):
    frame = weekly().drop(index=[10, 11, 50])
    frame.loc[21, "load"] = np.nan
    path = tmp_path / "gaps.csv"
    frame.to_csv(path, index=False)
    loaded, target, notices = series_sources.load_series(str(path), target_column="load",
                                                         fill=policy)
    assert (len(loaded), target, list(loaded.columns)) == (rows, "load", ["load", "temp"])
    assert notices == ["frequency: weekly (W-MON), "
                       f"{rows} steps from 2020-01-06 to 2025-09-29", notice]
    assert not loaded.isna().any().any()
    if policy == "interpolate":
        # 2020-03-16 and 2020-03-23 lie on the line between 2020-03-09 and 2020-03-30.
        before, after = frame.loc[9, "load"], frame.loc[12, "load"]
        assert loaded.loc["2020-03-16", "load"] == pytest.approx(before + (after - before) / 3)


def test_a_horizon_cuts_windows_and_targets_inside_each_split(tmp_path):
    path = tmp_path / "weekly.csv"
    frame = weekly()
    frame.to_csv(path, index=False)
    prepared = SeriesPipeline(str(path), target_column="load", lookback=10, horizon=4,
                              calendar=True).prepare()
    values = frame["load"].to_numpy()
    # 300 weeks: test 60, validation 60, training 180; each split loses lookback - 1 + 4.
    assert {name: len(split) for name, split in prepared.splits.items()} == {
        "train": 167, "validation": 47, "test": 47}
    test = prepared.splits["test"]
    assert test.actual.shape == (47, 4) and test.targets.shape == (47, 4)
    # The first test sample's last input row is 240 + 9; it forecasts rows 250..253.
    np.testing.assert_allclose(test.actual[0], values[250:254])
    assert test.anchor[0] == values[249]
    assert str(test.index[0].date()) == str(frame["week"][250])
    assert prepared.input_shape == (10, 2 + 12)
    assert set(prepared.references) == {"persistence", "seasonal_naive", "statistical"}
    persistence = prepared.references["persistence"].predictions(test)
    np.testing.assert_allclose(persistence, np.repeat(test.anchor[:, None], 4, axis=1))
    scores = prepared.baselines["test"]
    assert set(scores) == {"mse", "mae", "rmse", "mase"}  # No sMAPE: the load is negative.
    assert prepared.best_reference == min(prepared.references, key=lambda key: (
        prepared.references[key].scores(prepared.splits["validation"])["mse"]))
    # The model's outputs are changes from the last value, scaled on the training rows.
    scaled = prepared.target_scaler.transform(test.actual - test.anchor[:, None])
    np.testing.assert_allclose(prepared.to_original_units(scaled, "test"), test.actual,
                               rtol=1e-9)
    assert [step["mse"] for step in prepared.score_by_step("test", test.actual)] == [0.0] * 4


def test_the_kind_follows_the_layout_and_can_be_overridden(tmp_path):
    prices = tmp_path / "prices.csv"
    prices.write_text(yahoo_csv(make_prices(160)))
    series = tmp_path / "weekly.csv"
    weekly().to_csv(series, index=False)
    assert series_sources.series_kind("AAPL", None, None) == "prices"
    assert series_sources.series_kind(str(prices), None, None) == "prices"
    assert series_sources.series_kind("co2", None, None) == "series"
    assert series_sources.series_kind(str(series), None, None) == "series"
    assert series_sources.series_kind(str(prices), "Date", "Close") == "series"
    assert series_sources.series_kind(str(prices), "Date", "Close", "prices") == "prices"


def series_bad_inputs(directory: pathlib.Path) -> dict[str, tuple[list[str], str]]:
    """`{case: (ktlab arguments, the expected stderr line)}` for a series."""
    frame = weekly()

    def write(name: str, table: pd.DataFrame) -> str:
        table.to_csv(directory / name, index=False)
        return str(directory / name)

    irregular = frame.iloc[[0, 1, 2, 5, 9, 20, 21, 40, 41, 60, *range(100, 110)]]
    constant = frame.assign(load=3.0)
    text = frame.astype({"load": str})
    text.loc[7, "load"] = "n/a?"
    return {
        "irregular timestamps": (
            ["data", "--data", write("irregular.csv", irregular), "--target-column", "load"],
            "irregular.csv: the dates are irregular (steps 7 days (13x), 133 days (2x), 21 "
            "days (1x)) and fit no hourly, daily, weekly, monthly, quarterly or yearly grid; "
            "resample the series to one frequency first"),
        "too few rows": (
            ["tune", "--data", write("short.csv", frame.iloc[:60]), "--target-column", "load",
             "--horizon", "3"],
            "short.csv: too few steps for lookback 30 and horizon 3: have 60, need 109 (>= 43 "
            "train, >= 33 each for validation (12) and test (12)); use a longer series or "
            "lower --lookback, --horizon, --validation-size or --test-size"),
        "constant target": (
            ["tune", "--data", write("constant.csv", constant), "--target-column", "load"],
            "constant.csv: load is constant over the 180 training steps; forecast a series "
            "that changes"),
        "non-numeric target": (
            ["tune", "--data", write("text.csv", text), "--target-column", "load"],
            "text.csv: column 'load' has non-numeric value 'n/a?' on data row 8 (1 such "
            "values); fix or remove those cells"),
        "horizon beyond the test split": (
            ["tune", "--data", write("weekly.csv", frame), "--target-column", "load",
             "--horizon", "70"],
            "weekly.csv: horizon 70 is not smaller than the test split (60 steps); lower "
            "--horizon or raise --test-size"),
        "gaps refused": (
            ["tune", "--data", write("gaps.csv", frame.drop(index=[10, 11])),
             "--target-column", "load"],
            "gaps.csv: 2 missing weeks (first 2020-03-16); pass --fill interpolate, ffill or "
            "drop"),
        "horizon on prices": (
            ["tune", "--horizon", "3"],
            "--horizon 3 forecasts a general series; AAPL is read as daily prices, which "
            "forecast one day (pass --kind series to read it as a series)"),
    }


SERIES_CASES = ["irregular timestamps", "too few rows", "constant target", "non-numeric target",
                "horizon beyond the test split", "gaps refused", "horizon on prices"]


@pytest.mark.parametrize("case", SERIES_CASES)
def test_series_bad_input_is_one_line_exit_2_before_tensorflow(case, tmp_path):
    arguments, expected = series_bad_inputs(tmp_path)[case]
    assert_one_line_before_tensorflow(arguments, expected, tmp_path)


def test_the_battery_covers_every_series_case(tmp_path):
    assert list(series_bad_inputs(tmp_path)) == SERIES_CASES


def test_ktlab_data_on_the_bundled_series_speaks_of_its_own_target(capsys):
    assert main(["data", "--data", "co2", "--fill", "interpolate", "--horizon", "4"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[:4] == [
        "data: co2: co2_ppm, weekly, the next 4 weeks (regression, target co2_ppm)",
        "frequency: weekly (W-SAT), 2284 steps from 1958-03-29 to 2001-12-29",
        "gaps: 59 missing values in 59 rows (first 1958-05-10): interpolated in time on 59 "
        "rows (--fill interpolate)",
        "season: 52 steps (from the frequency; --season to change)"]
    for word in ("price", "close", "day", "return"):
        assert word not in out.lower()


def test_a_search_on_the_bundled_series_forecasts_four_weeks(tmp_path, capsys):
    """End to end on real data: the LSTM forecasts 4 weeks of CO2 directly."""
    import json

    runs = tmp_path / "runs"
    assert main(["tune", "--data", "co2", "--fill", "interpolate", "--horizon", "4",
                 "--lookback", "8", "--max-epochs", "2", "--search-space",
                 '{"units": {"choices": [8]}, "num_layers": {"value": 1}}',
                 "--output-dir", str(runs), "--quiet"]) == 0
    report = capsys.readouterr().out
    run = runs / "lstm-hyperband-co2-seed42"
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["horizon"], metrics["frequency"], metrics["units"]) == (4, "weekly",
                                                                             "co2_ppm")
    assert set(metrics["baselines"]) == {"persistence", "seasonal_naive", "statistical"}
    assert metrics["baselines"]["statistical"]["name"].startswith(
        "statistical: ETS(A,N,A) fitted on 1,370 training rows (statsmodels; season 52")
    assert set(metrics["test"]) == {"mse", "mae", "rmse", "mase", "smape"}
    assert {"mase", "smape"} <= set(metrics["baselines"]["seasonal_naive"]["test"])
    predictions = pd.read_csv(run / "predictions.csv")
    assert len(predictions) == 457 - 8 - 4 + 1  # 20% of 2284 steps, less lookback and horizon.
    steps = [f"{kind}_{step}" for step in range(1, 5) for kind in ("actual", "predicted")]
    assert list(predictions.columns[:10]) == ["date", "last_value", *steps]
    by_step = metrics["test_by_step"]
    assert len(by_step) == 4
    for step, scores in enumerate(by_step, start=1):
        errors = predictions[f"predicted_{step}"] - predictions[f"actual_{step}"]
        assert scores["mse"] == pytest.approx(float(np.mean(errors ** 2)), rel=1e-9)
    assert metrics["test"]["mse"] == pytest.approx(np.mean([s["mse"] for s in by_step]))
    assert "scores in co2_ppm units" in report
    for word in ("price", "close", "day"):
        assert word not in report.lower()
    assert main(["predict", str(run)]) == 0
    forecast = pd.read_csv(run / "forecast.csv")
    last = forecast.iloc[-1]
    assert (last["origin"], last["date_1"], last["date_4"]) == ("2001-12-29", "2002-01-05",
                                                                "2002-01-26")
    assert forecast[[f"actual_{step}" for step in range(1, 5)]].iloc[-1].isna().all()
