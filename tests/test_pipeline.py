"""The shared data pipeline: split sizes, window shapes, leakage, baselines, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_prices

from pipelines import StockPipeline, TabularPipeline, WalkForward
from pipelines.data import make_stock_features, score, sources
from pipelines.errors import ConfigError, DataError

LOOKBACK = 5


def tiny_pipeline(**overrides) -> StockPipeline:
    options = {"lookback": LOOKBACK, "test_size": 20, "validation_size": 20, "batch_size": 8,
               "target": "close", "log_returns": False,
               "moving_average_window": 10, "rolling_window": 3,
               "walk_forward": WalkForward(train_window=40, validation_window=15, step=15)}
    options.update(overrides)
    return StockPipeline("unused", **options)


def batches(dataset) -> tuple[np.ndarray, np.ndarray]:
    inputs, targets = zip(*[(x.numpy(), y.numpy()) for x, y in dataset], strict=True)
    return np.concatenate(inputs), np.concatenate(targets)


def test_bundled_aapl_split_sizes_and_window_shape():
    prepared = StockPipeline("AAPL").prepare()
    # 3,270 days less 29 warm-up days of the 30-day moving average leave 3,241 rows:
    # 800 test, 500 validation, 1,941 train; each split loses `lookback` rows to windows.
    assert {name: len(split) for name, split in prepared.splits.items()} == {
        "train": 1911, "validation": 470, "test": 770}
    assert prepared.target == "return"
    assert prepared.input_shape == (30, 11)
    assert prepared.feature_names == [
        "open", "high", "low", "close", "volume", "open_mean_5", "high_mean_5", "low_mean_5",
        "close_mean_5", "close_ma_30", "log_return"]
    inputs, targets = batches(prepared.fit_kwargs()["x"].take(1))
    assert inputs.shape == (32, 30, 11)
    assert targets.shape == (32, 1)
    assert str(prepared.splits["test"].index[-1].date()) == "2013-03-01"
    assert prepared.baselines["test"]["mse"] == pytest.approx(1.0486, abs=1e-4)


def test_scalers_use_training_rows_only(prices):
    pipeline = tiny_pipeline()
    prepared = pipeline.prepare(prices)
    features, numeric, _ = make_stock_features(prices, rolling_window=3,
                                               moving_average_window=10)
    train_rows = len(features) - 20 - 20
    scaler = prepared.preprocessor.named_transformers_["num"]
    np.testing.assert_allclose(scaler.mean_, features[numeric].iloc[:train_rows].mean())
    np.testing.assert_allclose(scaler.scale_, features[numeric].iloc[:train_rows].std(ddof=0))
    # Training samples end on rows LOOKBACK-1 .. train_rows-2; their targets are the next
    # days' closes, rows LOOKBACK .. train_rows-1.
    train_targets = features["close"].to_numpy()[LOOKBACK:train_rows]
    assert len(train_targets) == len(prepared.splits["train"])
    assert prepared.target_scaler.mean_[0] == pytest.approx(train_targets.mean())
    assert prepared.target_scaler.scale_[0] == pytest.approx(train_targets.std())


def test_no_window_includes_its_target_day_and_splits_do_not_overlap(prices):
    prepared = tiny_pipeline().prepare(prices)
    features, _, _ = make_stock_features(prices, rolling_window=3, moving_average_window=10)
    scaled_close = prepared.preprocessor.named_transformers_["num"].transform(
        features[prepared.feature_names])[:, 3]
    previous_target_day = None
    for name in ("train", "validation", "test"):
        split = prepared.splits[name]
        inputs, targets = batches(split.dataset)
        assert len(inputs) == len(split)
        for window, target_day in zip(inputs, split.index, strict=True):
            position = features.index.get_loc(target_day)
            # The window's last row is the day before the target day.
            np.testing.assert_allclose(window[:, 3], scaled_close[position - LOOKBACK:position],
                                       rtol=1e-5)
        first_input_day = features.index[features.index.get_loc(split.index[0]) - LOOKBACK]
        if previous_target_day is not None:
            assert previous_target_day < first_input_day
        previous_target_day = split.index[-1]
        np.testing.assert_allclose(
            prepared.target_scaler.inverse_transform(targets).reshape(-1), split.actual,
            rtol=1e-5)


def test_last_training_target_precedes_first_validation_input(prices):
    prepared = tiny_pipeline().prepare(prices)
    features, _, _ = make_stock_features(prices, rolling_window=3, moving_average_window=10)
    last_train_target = prepared.splits["train"].index[-1]
    first_validation_target = prepared.splits["validation"].index[0]
    first_validation_input = features.index[
        features.index.get_loc(first_validation_target) - LOOKBACK]
    assert last_train_target < first_validation_input


def test_test_rows_never_reach_fit_kwargs(prices):
    prepared = tiny_pipeline().prepare(prices)
    kwargs = prepared.fit_kwargs()
    assert sorted(kwargs) == ["validation_data", "x"]
    seen = np.concatenate([batches(kwargs["x"])[1], batches(kwargs["validation_data"])[1]])
    test_targets = prepared.splits["test"].targets
    assert len(seen) == len(prepared.splits["train"]) + len(prepared.splits["validation"])
    assert not np.isin(test_targets, seen).any()


def test_walk_forward_folds_train_before_validating(prices):
    prepared = tiny_pipeline().prepare(prices)
    folds = prepared.folds()
    # 131 rows before the test split hold folds starting at 0, 15, ..., 75 (40 + 15 rows each).
    assert len(folds) == 6
    test_start = prepared.splits["test"].index[0]
    for number, fold in enumerate(folds):
        assert fold.index == number
        assert len(fold.train) == 40 - LOOKBACK
        assert len(fold.validation) == 15 - LOOKBACK
        assert fold.train.index[-1] < fold.validation.index[0]
        assert fold.validation.index[-1] < test_start
        # Each fold's scaler is fitted on its own training targets only.
        assert fold.target_scaler.mean_[0] == pytest.approx(fold.train.actual.mean())
    assert folds[1].train.index[0] > folds[0].train.index[0]
    assert sorted(folds[0].fit_kwargs()) == ["validation_data", "x"]


def test_a_split_builds_each_batch_size_once_with_a_known_length(prices):
    prepared = tiny_pipeline().prepare(prices)
    train = prepared.splits["train"]
    samples = len(train)

    assert samples == 106
    assert train.dataset is train.batched(8)
    assert train.batched(16) is train.batched(16)
    assert train.batched(16) is not train.batched(32)
    # The length is known from the samples, without reading the dataset.
    assert int(train.batched(16).cardinality()) == 7
    assert int(train.batched(32).cardinality()) == 4
    assert [len(inputs) for inputs, _ in train.batched(32)] == [32, 32, 32, 10]
    inputs, targets = batches(train.batched(32))
    np.testing.assert_allclose(targets, train.targets)
    np.testing.assert_allclose(inputs, batches(train.batched(16))[0])
    kwargs = prepared.fit_kwargs(batch_size=16)
    assert kwargs["x"] is train.batched(16)
    assert kwargs["validation_data"] is prepared.splits["validation"].batched(16)
    fold = prepared.folds()[0]
    assert fold.fit_kwargs(32)["x"] is fold.train.batched(32)
    assert int(fold.fit_kwargs(32)["validation_data"].cardinality()) == 1
    with pytest.raises(ConfigError, match=r"batch_size must be a whole number >= 1, got 0"):
        train.batched(0)


def test_refit_data_gives_training_rows_only_at_any_batch_size(prices):
    refit = tiny_pipeline().prepare(prices).refit_data()
    kwargs = refit.fit_kwargs(batch_size=64)

    assert sorted(kwargs) == ["x"]
    assert len(refit.splits["train"]) == 106 + 20
    assert int(kwargs["x"].cardinality()) == 2


def test_tabular_splits_batch_at_any_size_and_shuffle_training_rows():
    train = TabularPipeline("diabetes", batch_size=16).prepare().splits["train"]

    assert train.dataset is train.batched(16)
    assert int(train.batched(100).cardinality()) == 3
    sizes = [len(inputs) for inputs, _ in train.batched(100)]
    assert sizes == [100, 100, 82]
    targets = batches(train.batched(100))[1].reshape(-1)
    np.testing.assert_allclose(np.sort(targets), np.sort(train.targets.reshape(-1)))
    assert not np.allclose(targets, train.targets.reshape(-1))


def test_persistence_baseline_by_hand():
    prices = make_prices(60)
    prepared = tiny_pipeline(test_size=12, validation_size=12,
                             walk_forward=None).prepare(prices)
    split = prepared.splits["test"]
    close = prices["close"].to_numpy()
    # The test targets are the last 12 - 5 days; persistence predicts the day before.
    actual, forecast = close[-7:], close[-8:-1]
    np.testing.assert_allclose(split.actual, actual)
    assert prepared.baselines["test"]["mse"] == pytest.approx(np.mean((forecast - actual) ** 2))
    assert prepared.baselines["test"]["mae"] == pytest.approx(np.mean(np.abs(forecast - actual)))


def test_score_on_a_tiny_series():
    assert score("regression", [1.0, 2.0, 4.0], [1.0, 3.0, 2.0]) == {
        "mse": pytest.approx(5 / 3), "mae": pytest.approx(1.0),
        "rmse": pytest.approx((5 / 3) ** 0.5)}
    assert score("classification", [0, 1, 1, 1], [1, 1, 1, 1]) == {"accuracy": 0.75}


def test_return_target_and_optional_features(prices):
    prepared = tiny_pipeline(target="return", calendar=True, log_returns=True).prepare(prices)
    assert "log_return" in prepared.feature_names
    assert any(name.startswith("month_") for name in prepared.feature_names)
    split = prepared.splits["validation"]
    returns = split.actual / split.anchor - 1
    # A perfect return forecast turns back into the actual prices.
    perfect = prepared.target_scaler.transform(returns.reshape(-1, 1))
    np.testing.assert_allclose(prepared.to_original_units(perfect, "validation"), split.actual)


def test_too_few_rows_and_oversized_test():
    short = make_prices(70)
    with pytest.raises(DataError, match=r"^unused: too few rows for lookback 5: have 70, need "
                                        r"84 \(9 warm-up, >= 15 train, >= 6 each for validation "
                                        r"\(20\) and test \(40\)\); use more data or lower "
                                        r"--lookback, --validation-size or --test-size$"):
        tiny_pipeline(test_size=40).prepare(short)
    with pytest.raises(DataError, match=r"^unused: test size 500 is not smaller than the 61 "
                                        r"rows left after 9 warm-up rows; lower --test-size$"):
        tiny_pipeline(test_size=500).prepare(short)


def test_bad_pipeline_options():
    with pytest.raises(ConfigError, match="unknown target 'price'; use one of close, return"):
        StockPipeline("AAPL", target="price")
    with pytest.raises(ConfigError, match="lookback must be a whole number >= 1, got 0"):
        StockPipeline("AAPL", lookback=0)
    with pytest.raises(ConfigError, match="walk-forward windows .* do not fit"):
        tiny_pipeline(walk_forward=WalkForward(500, 100, 100)).prepare(make_prices()).folds()


def test_tabular_pipelines():
    classification = TabularPipeline("breast_cancer").prepare()
    assert classification.task == "classification"
    assert classification.n_classes == 2
    assert {name: len(split) for name, split in classification.splits.items()} == {
        "train": 364, "validation": 91, "test": 114}
    assert classification.input_shape == (30,)
    assert classification.baselines["test"] == {"accuracy": pytest.approx(72 / 114)}
    regression = TabularPipeline("diabetes").prepare()
    assert regression.task == "regression"
    train = regression.splits["train"]
    assert regression.target_scaler.mean_[0] == pytest.approx(train.actual.mean())
    inputs, targets = batches(regression.fit_kwargs()["x"])
    assert inputs.shape == (282, 10)
    assert targets.shape == (282, 1)
    # Training rows are shuffled (the same seed, the same order); evaluation rows are not.
    np.testing.assert_allclose(np.sort(targets.reshape(-1)), np.sort(train.targets.reshape(-1)))
    assert not np.allclose(targets.reshape(-1), train.targets.reshape(-1))
    with pytest.raises(ConfigError, match="walk-forward validation needs time-ordered data"):
        regression.folds()


def test_tabular_csv_with_categories(write_csv):
    rows = ["size,colour,label"] + [f"{i},{'red' if i % 2 else 'blue'},{'a' if i % 3 else 'b'}"
                                    for i in range(60)]
    path = write_csv("\n".join(rows), name="table.csv")
    prepared = TabularPipeline(path, target_column="label").prepare()
    assert prepared.task == "classification"
    assert prepared.feature_names == ["size", "colour_blue", "colour_red"]
    assert len(prepared.splits["test"].index) == 12


def kaggle_csv(prices) -> str:
    """`prices` in the layout of Kaggle's Huge Stock Market Dataset, with OpenInt all 0."""
    rows = ["Date,Open,High,Low,Close,Volume,OpenInt"]
    for date, row in prices.iterrows():
        rows.append(f"{date.date()},{row.open},{row.high},{row.low},{row.close},"
                    f"{int(row.volume)},0")
    return "\n".join(rows) + "\n"


def test_constant_openint_column_is_dropped_with_notices(write_csv):
    path = write_csv(kaggle_csv(make_prices(160)), name="aapl.us.txt")
    prepared = StockPipeline(path, lookback=5, test_size=20, validation_size=20,
                             walk_forward=WalkForward(40, 15, 15)).prepare()
    # 160 days less 29 warm-up days of the 30-day moving average leave 131 rows.
    assert {name: len(split) for name, split in prepared.splits.items()} == {
        "train": 86, "validation": 15, "test": 15}
    assert prepared.feature_names == [
        "open", "high", "low", "close", "volume", "open_mean_5", "high_mean_5", "low_mean_5",
        "close_mean_5", "close_ma_30", "log_return"]
    assert prepared.input_shape == (5, 11)
    assert prepared.notices == [
        "layout: Date,Open,High,Low,Close,Volume,OpenInt (no Adj Close): Close is the price",
        "dropped columns constant over the training rows: openint"]
    lines = prepared.summary().splitlines()
    assert lines[0] == "data: aapl.us.txt daily prices (regression, target return)"
    assert lines[1:3] == prepared.notices
    assert lines[3].split()[:2] == ["train", "86"]
    # The folds use the main split's columns, though each fits its own scaler.
    folds = prepared.folds()
    assert len(folds) == 4
    for fold in folds:
        assert list(fold.preprocessor.get_feature_names_out()) == prepared.feature_names


def test_columns_constant_over_training_rows_only_are_dropped(prices):
    prices = prices.assign(halted=0.0, late=0.0, early=0.0)
    # 160 days less 9 warm-up days leave 151 rows; the first 111 are training rows.
    prices.iloc[-10:, prices.columns.get_loc("late")] = 1.0
    prices.iloc[:20, prices.columns.get_loc("early")] = 1.0
    prepared = tiny_pipeline().prepare(prices)
    assert prepared.feature_names == [
        "open", "high", "low", "close", "volume", "early", "open_mean_3", "high_mean_3",
        "low_mean_3", "close_mean_3", "close_ma_10"]
    assert prepared.notices == ["dropped columns constant over the training rows: halted, late"]
    assert prepared.summary().splitlines()[1] == prepared.notices[0]


def test_constant_close_target_is_a_data_error(prices):
    flat = prices.assign(close=50.0)
    with pytest.raises(DataError) as raised:
        tiny_pipeline().prepare(flat)
    assert str(raised.value) == ("unused: the target (close) is constant over the 111 "
                                 "training rows; use a series whose close price changes")
    with pytest.raises(DataError, match=r"^unused: the target \(return\) is constant"):
        tiny_pipeline(target="return").prepare(flat)


def test_bundled_data_and_frames_without_layouts_have_no_notices(prices):
    assert tiny_pipeline().prepare(prices).notices == []
    assert sources.load_stock_frame("AAPL").attrs.get(sources.NOTICES_ATTR) is None


def test_tabular_constant_columns_are_dropped(write_csv):
    rows = ["size,unit,colour,label"] + [
        f"{i},1,{'red' if i % 2 else 'blue'},{'a' if i % 3 else 'b'}" for i in range(60)]
    prepared = TabularPipeline(write_csv("\n".join(rows), name="table.csv"),
                               target_column="label").prepare()
    assert prepared.feature_names == ["size", "colour_blue", "colour_red"]
    assert prepared.input_shape == (3,)
    assert prepared.notices == ["dropped columns constant over the training rows: unit"]
    assert prepared.summary().splitlines()[:2] == [
        "data: table.csv table (classification, target label)",
        "dropped columns constant over the training rows: unit"]
    assert TabularPipeline("breast_cancer").prepare().notices == []


def test_tabular_constant_target_and_features(write_csv):
    path = write_csv("\n".join(["x,y"] + [f"{i},3.5" for i in range(30)]), name="table.csv")
    with pytest.raises(DataError) as raised:
        TabularPipeline(path, target_column="y", task="regression").prepare()
    assert str(raised.value) == ("table.csv: target 'y' is constant over the 19 training rows; "
                                 "a model needs a target that varies")
    path = write_csv("\n".join(["x,y"] + [f"1,{i}" for i in range(30)]), name="table.csv")
    with pytest.raises(DataError) as raised:
        TabularPipeline(path, target_column="y").prepare()
    assert str(raised.value) == ("table.csv: every feature column is constant over the 19 "
                                 "training rows (x); add columns that vary")
