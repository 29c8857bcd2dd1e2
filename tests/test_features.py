import numpy as np
import pandas as pd
import pytest

from core.data.candles import CandleDataError
from core.data.features import (
    FEATURE_NAMES,
    FEATURE_TABLE,
    MIN_HISTORY,
    SEQUENCE_LENGTH,
    InsufficientHistoryError,
    build_feature_history,
    build_features_from_market_data,
    feature_matrix,
    latest_window,
)


def test_46_named_features_in_a_24_step_window(btc):
    assert len(FEATURE_NAMES) == 46 == len(set(FEATURE_NAMES))
    window = build_features_from_market_data(btc.iloc[:200], "KRW-BTC")
    assert window["sequence"].shape == (24, 46) and window["sequence"].dtype == np.float32
    assert window.tabular.shape == (46,)
    assert np.isfinite(window.sequence).all()
    assert window["feature_names"] == list(FEATURE_NAMES)
    assert window.timestamp == btc.index[199]


def test_every_feature_is_documented_in_docs():
    text = (__import__("pathlib").Path(__file__).parent.parent / "docs" / "features.md").read_text()
    for name, _, _ in FEATURE_TABLE:
        assert f"`{name}`" in text


def test_scale_free_same_features_for_any_price_scale(btc):
    frame = btc.iloc[:400]
    scaled = frame.copy()
    for col in ("open", "high", "low", "close"):
        scaled[col] = frame[col] / 1234.5
    scaled["volume"] = frame["volume"] * 77
    np.testing.assert_allclose(feature_matrix(frame)[200:], feature_matrix(scaled)[200:], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("t", [150, 260, 399])
def test_no_look_ahead(btc, t):
    """Changing any candle after t changes no feature at or before t."""
    frame = btc.iloc[:500]
    before = feature_matrix(frame)
    rng = np.random.default_rng(t)
    changed = frame.copy()
    future = changed.index > changed.index[t]
    factor = rng.uniform(0.5, 2.0, size=future.sum())
    for col in ("open", "high", "low", "close"):
        changed.loc[future, col] = changed.loc[future, col] * factor
    changed.loc[future, "volume"] = changed.loc[future, "volume"] * rng.uniform(0, 5, size=future.sum())
    after = feature_matrix(changed)
    np.testing.assert_array_equal(before[: t + 1], after[: t + 1])
    assert not np.allclose(before[t + 1 :], after[t + 1 :], equal_nan=True)
    history_before = build_feature_history(frame, 3600)
    history_after = build_feature_history(changed, 3600)
    np.testing.assert_array_equal(history_before.values[: t + 1], history_after.values[: t + 1])


def test_warm_up_rows_are_left_out_not_filled(btc):
    values = feature_matrix(btc.iloc[:300])
    assert np.isnan(values[: MIN_HISTORY - SEQUENCE_LENGTH]).all()
    assert np.isfinite(values[MIN_HISTORY - SEQUENCE_LENGTH :]).all()


def test_too_little_history_is_a_clear_error(btc):
    with pytest.raises(InsufficientHistoryError, match="149 candles given, at least 150"):
        build_features_from_market_data(btc.iloc[:149], "KRW-BTC")
    window = build_features_from_market_data(btc.iloc[:150], "KRW-BTC")
    assert window.sequence.shape == (24, 46)


def test_bad_candles_are_rejected(btc):
    records = btc.iloc[:200].reset_index().to_dict("records")
    records[10]["close"] = float("nan")
    with pytest.raises(CandleDataError, match="row 10: close"):
        build_features_from_market_data(records, "KRW-BTC")


def test_window_never_straddles_a_long_hole(btc):
    frame = btc.drop(btc.index[400:420])  # a 20-candle hole
    history = build_feature_history(frame, 3600)
    assert history.run_id.max() == 1
    for end in history.window_ends:
        assert history.run_id[end] == history.run_id[end - SEQUENCE_LENGTH + 1]
    first_after = frame.index.get_loc(frame.index[400])
    assert not np.isfinite(history.values[first_after : first_after + 126]).any()
    with pytest.raises(InsufficientHistoryError, match="contiguous candles since the hole"):
        latest_window(frame.iloc[: first_after + 100], "KRW-BTC")


def test_live_window_equals_the_full_history_computation(btc):
    history = build_feature_history(btc, 3600)
    for end in (300, 800, 1200):
        window = latest_window(btc.iloc[: end + 1], "KRW-BTC")
        np.testing.assert_allclose(window.sequence, history.windows(np.array([end]))[0], rtol=1e-4, atol=1e-5)


def test_history_windows_vectorised_shape(btc):
    history = build_feature_history(btc, 3600)
    windows = history.windows()
    assert windows.shape == (len(history.window_ends), 24, 46)
    assert np.isfinite(windows).all()
    assert isinstance(history.index, pd.DatetimeIndex)


def test_stacked_windows_are_the_rows_they_end_at(btc):
    history = build_feature_history(btc, 3600)
    ends = history.window_ends[[0, 5, 400, -1]]
    windows = history.windows(ends)
    assert windows.shape == (4, SEQUENCE_LENGTH, len(FEATURE_NAMES)) and windows.dtype == np.float32
    for window, end in zip(windows, ends):
        np.testing.assert_array_equal(window, history.values[end - SEQUENCE_LENGTH + 1:end + 1].astype(np.float32))
    assert history.windows(ends[:0]).shape == (0, SEQUENCE_LENGTH, len(FEATURE_NAMES))
