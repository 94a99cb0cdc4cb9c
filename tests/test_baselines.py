"""The multi-step baselines and scale-free scores of `pipelines.data.baselines`: exact arrays
on tiny series, hand-computed MASE and sMAPE, the season table, and the ETS forecasts checked
against a known continuation and against statsmodels' own `forecast`. No TensorFlow."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import numpy as np
import pytest

from pipelines.data import baselines

# 0, 10, ..., 90: a forecast's value names the row it was read from.
TENS = np.arange(10, dtype=np.float64) * 10


def test_persistence_repeats_the_last_known_value():
    forecasts = baselines.persistence(TENS, np.array([0, 4, 9]), horizon=3)
    np.testing.assert_array_equal(forecasts, [[0, 0, 0], [40, 40, 40], [90, 90, 90]])


def test_seasonal_naive_reads_the_same_point_of_the_last_known_season():
    # Season 3, origin 4: steps 1..5 read rows 2, 3, 4, then 2, 3 again (two seasons back
    # is never needed: row t + h - 3 * ceil(h / 3)).
    forecasts = baselines.seasonal_naive(TENS, np.array([2, 4, 9]), horizon=5, season=3)
    np.testing.assert_array_equal(forecasts, [[0, 10, 20, 0, 10],
                                              [20, 30, 40, 20, 30],
                                              [70, 80, 90, 70, 80]])


def test_seasonal_naive_with_season_one_is_persistence():
    origins = np.array([0, 3, 7])
    np.testing.assert_array_equal(baselines.seasonal_naive(TENS, origins, 4, season=1),
                                  baselines.persistence(TENS, origins, 4))


def test_seasonal_naive_refuses_an_origin_with_no_full_season_before_it():
    with pytest.raises(ValueError, match=r"forecast origins must lie in \[2, 9\]; got 1 to 5"):
        baselines.seasonal_naive(TENS, np.array([1, 5]), horizon=2, season=3)
    with pytest.raises(ValueError, match=r"origins must lie in \[0, 9\]; got 0 to 10"):
        baselines.persistence(TENS, np.array([0, 10]), horizon=1)
    with pytest.raises(ValueError, match="the horizon must be at least 1, not 0"):
        baselines.persistence(TENS, np.array([3]), horizon=0)


def test_mase_divides_by_the_in_sample_seasonal_naive_error():
    train = np.array([1.0, 3.0, 2.0, 5.0, 4.0])
    actual = np.array([[6.0, 7.0], [8.0, 9.0]])
    forecast = np.array([[5.0, 7.0], [10.0, 9.0]])
    # MAE (1 + 0 + 2 + 0) / 4 = 0.75. Naive scale: |2|, |-1|, |3|, |-1| -> 1.75.
    assert baselines.mase(actual, forecast, train, season=1) == pytest.approx(0.75 / 1.75)
    # Season 2: |2 - 1|, |5 - 3|, |4 - 2| -> 5 / 3.
    assert baselines.mase(actual, forecast, train, season=2) == pytest.approx(0.45)


def test_mase_refuses_training_values_with_no_scale():
    actual, forecast = np.array([1.0, 2.0]), np.array([1.5, 2.0])
    with pytest.raises(ValueError, match=r"repeat exactly every 1 step\(s\) \(or are constant\)"):
        baselines.mase(actual, forecast, np.full(6, 3.0), season=1)
    with pytest.raises(ValueError, match=r"repeat exactly every 2 step\(s\)"):
        baselines.mase(actual, forecast, np.array([1.0, 2.0, 1.0, 2.0, 1.0]), season=2)
    with pytest.raises(ValueError, match="needs more than 4 training values, not 4"):
        baselines.mase(actual, forecast, np.array([1.0, 2.0, 3.0, 4.0]), season=4)
    with pytest.raises(ValueError, match=r"actual values \(2,\) and forecasts \(1,\)"):
        baselines.mase(actual, forecast[:1], np.arange(6.0), season=1)


def test_smape_is_given_only_for_a_positive_target():
    actual, forecast = np.array([100.0, 50.0]), np.array([110.0, 40.0])
    # (2 * 10 / 210 + 2 * 10 / 90) / 2 * 100.
    assert baselines.smape(actual, forecast) == pytest.approx(15.873015873015873)
    assert baselines.smape(np.array([100.0, 0.0]), forecast) is None
    assert baselines.smape(np.array([100.0, -5.0]), forecast) is None


@pytest.mark.parametrize(("frequency", "season"), [
    ("hourly", 24), ("h", 24), ("daily", 7), ("D", 7), ("business-daily", 5), ("B", 5),
    ("C", 5), ("weekly", 52), ("W", 52), ("W-MON", 52), ("monthly", 12), ("ME", 12),
    ("MS", 12), ("BME", 12), ("quarterly", 4), ("QE-DEC", 4), ("QS-OCT", 4), ("yearly", 1),
    ("YE", 1), ("YS-JAN", 1), ("Monthly", 12),
])
def test_season_of_a_frequency(frequency, season):
    assert baselines.season_of(frequency) == season


def test_season_of_an_offset_object():
    import pandas as pd

    assert baselines.season_of(pd.offsets.QuarterEnd(startingMonth=12)) == 4


@pytest.mark.parametrize("frequency", ["2h", "min", "fortnightly", "SME"])
def test_season_of_a_frequency_with_no_season_is_refused(frequency):
    with pytest.raises(ValueError, match=f"no season is known for the frequency '{frequency}'"):
        baselines.season_of(frequency)


def test_statistical_continues_a_noiseless_linear_trend():
    values = 5.0 + 0.5 * np.arange(120.0)
    origins = np.arange(79, 116)
    forecasts, description = baselines.statistical(values, 80, origins, 4, season=None)
    expected = 5.0 + 0.5 * (origins[:, None] + np.arange(1, 5))
    assert forecasts.shape == (37, 4)
    np.testing.assert_allclose(forecasts, expected, atol=1e-6)
    assert description == ("ETS(A,A,N) fitted on 80 training rows (statsmodels; trend chosen "
                           "by AICc)")


def test_statistical_continues_a_noiseless_trend_and_season():
    pattern = np.array([1.0, -1.0, 2.0, -2.0])
    rows = np.arange(120)
    values = 5.0 + 0.5 * rows + pattern[rows % 4]
    origins = np.arange(79, 116)
    forecasts, description = baselines.statistical(values, 80, origins, 4, season=4)
    targets = origins[:, None] + np.arange(1, 5)
    # statsmodels' heuristic initial season comes from moving averages, so the fit is close
    # to exact rather than exact.
    np.testing.assert_allclose(forecasts, 5.0 + 0.5 * targets + pattern[targets % 4],
                               atol=1e-2)
    assert description.startswith("ETS(A,A,A) fitted on 80 training rows (statsmodels; "
                                  "season 4, ")


def test_statistical_leaves_out_a_season_the_training_rows_cannot_start():
    values = 5.0 + 0.5 * np.arange(120.0)
    _, description = baselines.statistical(values, 80, np.array([79]), 2, season=52)
    assert "season 52 left out: fewer than 104 training rows" in description
    with pytest.raises(ValueError, match="needs 10 to 120 training rows, not 9"):
        baselines.statistical(values, 9, np.array([9]), 2, season=None)


@pytest.fixture(scope="module")
def seasonal_series() -> np.ndarray:
    rows = np.arange(300)
    noise = np.random.default_rng(7).normal(0.0, 1.0, rows.size)
    return 20.0 + 0.05 * rows + 3.0 * np.sin(2 * np.pi * rows / 7) + noise


def training_fit(values: np.ndarray, train_stop: int, description: str):
    """statsmodels' own fit of the model `statistical` chose, on the training rows."""
    from statsmodels.tsa.statespace import exponential_smoothing

    trend_code = description[len("ETS(A,"):].split(",")[0]
    return exponential_smoothing.ExponentialSmoothing(
        values[:train_stop], trend=trend_code != "N", damped_trend=trend_code == "Ad",
        seasonal=7, initialization_method="heuristic").fit(disp=False)


def test_statistical_matches_statsmodels_forecasts_from_each_origin(seasonal_series):
    values, train_stop, horizon = seasonal_series, 200, 5
    origins = np.arange(train_stop - 1, 295)
    forecasts, description = baselines.statistical(values, train_stop, origins, horizon, 7)
    assert description.startswith("ETS(A,")
    assert "fitted on 200 training rows (statsmodels; season 7, " in description
    fitted = training_fit(values, train_stop, description)
    # The last training origin: the training fit's own forecast.
    np.testing.assert_allclose(forecasts[0], fitted.forecast(horizon), rtol=1e-10)
    # A later origin: the same parameters run over the rows up to it. (The training rows hold
    # over five seasons, so statsmodels' heuristic start is the same from the longer series.)
    later = 260
    np.testing.assert_allclose(forecasts[later - origins[0]],
                               fitted.apply(values[:later + 1]).forecast(horizon), rtol=1e-10)


def test_importing_the_baselines_imports_neither_tensorflow_nor_statsmodels():
    probe = ("import sys, pipelines.data.baselines; "
             "print('tensorflow' in sys.modules, 'statsmodels' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            cwd=pathlib.Path(__file__).parents[1], timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def test_statistical_forecasts_use_no_row_after_their_origin(seasonal_series):
    """Rows after an origin change neither the fitted parameters (training rows only) nor the
    state that origin forecasts from."""
    origins = np.arange(199, 295)
    forecasts, _ = baselines.statistical(seasonal_series, 200, origins, 3, 7)
    changed = seasonal_series.copy()
    changed[251:] += 100.0 * np.arange(1, 50)
    forecasts_changed, _ = baselines.statistical(changed, 200, origins, 3, 7)
    np.testing.assert_array_equal(forecasts_changed[: 250 - 199 + 1], forecasts[: 250 - 199 + 1])
    assert np.all(forecasts_changed[251 - 199:] != forecasts[251 - 199:])
