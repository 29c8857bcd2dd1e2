"""Incremental features (live cycles) equal the full computation, and the live feed uses them."""
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from core.data.bundled import BUNDLED_DATA_DIR
from core.data.candles import CandleDataError, load_candle_csv
from core.data.feature_state import FeatureState, HoleError
from core.data.features import (
    FEATURE_NAMES,
    MIN_HISTORY,
    InsufficientHistoryError,
    feature_matrix,
)
from core.data.sources import MemorySource
from core.trading.feeds import HISTORY, LiveFeed
from models.manager import MultiCoinModelManager

TOLERANCE = dict(rtol=1e-7, atol=1e-10)  # observed worst: 1.2e-9 relative (Bollinger position)


def assert_rows_equal(state: FeatureState, run: pd.DataFrame) -> None:
    full = feature_matrix(run)[-24:]
    for column, name in enumerate(FEATURE_NAMES):
        np.testing.assert_allclose(state.rows[:, column], full[:, column], err_msg=name, **TOLERANCE)


def test_carried_forward_one_candle_at_a_time_equals_the_whole_run_computed_at_once(btc):
    state = FeatureState.start(btc.iloc[:MIN_HISTORY], "KRW-BTC")
    for end in range(MIN_HISTORY + 1, len(btc) + 1):
        state = state.advance(btc.iloc[end - 3:end])  # overlapping answers: known candles are skipped
        if end % 97 == 0 or end == len(btc):
            assert_rows_equal(state, btc.iloc[:end])
    assert state.last_at == btc.index[-1] and state.window().close == btc["close"].iloc[-1]


def test_several_candles_at_once_and_a_bridged_hole_give_the_same_rows(btc):
    bridged = btc.drop(btc.index[400:404])  # 4 missing candles: bridged, as the full computation does
    state = FeatureState.start(bridged.iloc[:300], "KRW-BTC").advance(bridged.iloc[290:420]).advance(bridged.iloc[:700])
    assert_rows_equal(state, bridged.iloc[:700])


def test_every_bundled_market_and_a_real_price_scale_agree(btc):
    for path in sorted((BUNDLED_DATA_DIR / "upbit-1h").glob("*.csv")):
        candles = load_candle_csv(path)
        state = FeatureState.start(candles.iloc[:MIN_HISTORY], path.stem)
        for end in range(MIN_HISTORY + 1, len(candles) + 1, 7):
            state = state.advance(candles.iloc[:end])
        assert_rows_equal(state, candles.iloc[:state_rows(state, candles)])


def state_rows(state: FeatureState, candles: pd.DataFrame) -> int:
    return candles.index.get_loc(state.last_at) + 1


def test_a_hole_too_long_to_bridge_is_refused_and_nothing_changes(btc):
    state = FeatureState.start(btc.iloc[:300], "KRW-BTC")
    with pytest.raises(HoleError, match="8 candles missing"):
        state.advance(btc.iloc[308:320])
    assert state.last_at == btc.index[299] and state.advance(btc.iloc[:300]) is state
    with pytest.raises(InsufficientHistoryError):
        FeatureState.start(btc.iloc[:MIN_HISTORY - 1], "KRW-BTC")


class CountingSource(MemorySource):
    def __init__(self, series, interval_seconds):
        super().__init__(series, interval_seconds)
        self.counts: list[int] = []

    def closed_candles(self, market, count, now):
        self.counts.append(count)
        return super().closed_candles(market, count, now)


def close_of(candles: pd.DataFrame, i: int) -> datetime:
    return (candles.index[i] + pd.Timedelta(hours=1)).to_pydatetime()


def test_the_live_feed_fetches_only_new_candles_and_predicts_what_the_full_computation_would(btc):
    source = CountingSource({"KRW-BTC": btc}, 3600)
    manager = MultiCoinModelManager(markets=["KRW-BTC"])
    feed = LiveFeed(source, manager, lambda: ["KRW-BTC"], 3600)
    first = 500
    for i in range(first, first + 30):
        inputs, errors = feed.inputs(close_of(btc, i))
        assert not errors and inputs["KRW-BTC"].signal.timestamp == btc.index[i]
    assert source.counts[0] == HISTORY and source.counts[1:] == [2] * 29  # the newest candle plus the known one
    state = feed.states["KRW-BTC"]
    run = btc.iloc[first + 1 - HISTORY:first + 30]  # what the feed has seen since it started
    assert_rows_equal(state, run)
    full = feature_matrix(run)[-24:].astype(np.float32)
    expected = manager.predict("KRW-BTC", full)
    assert inputs["KRW-BTC"].signal.buy_probability == pytest.approx(expected.buy_probability, abs=1e-6)
    assert inputs["KRW-BTC"].signal.sell_probability == pytest.approx(expected.sell_probability, abs=1e-6)
    calls = len(source.counts)
    assert feed.inputs(close_of(btc, first + 29)) == ({}, {}) and len(source.counts) == calls  # nothing new, no request
    later, _ = feed.inputs(close_of(btc, first + 33))  # three cycles missed: one request catches up
    assert source.counts[-1] == 5 and later["KRW-BTC"].signal.timestamp == btc.index[first + 33]
    assert_rows_equal(feed.states["KRW-BTC"], btc.iloc[first + 1 - HISTORY:first + 34])


def test_the_live_feed_starts_again_from_history_after_a_long_hole_or_a_long_absence(btc):
    holed = btc.drop(btc.index[700:710])  # a 10-candle exchange outage
    source = CountingSource({"KRW-BTC": holed}, 3600)
    feed = LiveFeed(source, MultiCoinModelManager(markets=["KRW-BTC"]), lambda: ["KRW-BTC"], 3600)
    feed.inputs(close_of(btc, 699))
    inputs, errors = feed.inputs(close_of(btc, 715))  # the hole ends the run: not enough candles since
    assert inputs == {} and str(errors["KRW-BTC"]) == ("warming up: 144 more candles of history needed before its "
                                                        "first signal")  # 6 candles since the hole, 150 needed
    assert source.counts[-1] == HISTORY
    inputs, errors = feed.inputs(close_of(btc, 710 + MIN_HISTORY))
    assert not errors and inputs["KRW-BTC"].signal.timestamp == btc.index[710 + MIN_HISTORY]
    assert_rows_equal(feed.states["KRW-BTC"], btc.iloc[710:711 + MIN_HISTORY])
    feed.inputs(close_of(btc, 1100))  # 240 candles later: a fresh history, not a long catch-up
    assert source.counts[-1] == HISTORY and feed.states["KRW-BTC"].last_at == btc.index[1100]


def test_columns_are_found_by_name_and_a_missing_one_is_named(btc):
    shuffled = btc[["close", "volume", "low", "open", "high"]]
    state = FeatureState.start(btc.iloc[:300], "KRW-BTC")
    assert np.array_equal(state.advance(shuffled.iloc[:320]).rows, state.advance(btc.iloc[:320]).rows)
    with pytest.raises(CandleDataError, match="candles lack volume"):
        state.advance(btc.drop(columns=["volume"]).iloc[:320])
