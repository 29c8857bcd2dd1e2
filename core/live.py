"""Signals from the newest closed candles, fetched when the cycle runs (paper and live trading).

Each market's latest 250 closed candles become one feature window; all windows are predicted in one
batch. A candle already judged (before a restart, say) is not judged again.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Callable, Sequence

from core.candles import CandleDataError
from core.features import InsufficientHistoryError, latest_window
from core.sources import CandleSource
from core.trading.cycle import MarketInput
from core.upbit.errors import UpbitError

log = logging.getLogger(__name__)

HISTORY = 250  # candles fetched per market: MIN_HISTORY plus room for a tolerated hole


class LiveFeed:
    def __init__(self, source: CandleSource, manager, markets: Callable[[], Sequence[str]], interval_seconds: int,
                 judged: dict[str, datetime] | None = None):
        self.source = source
        self.manager = manager
        self.markets = markets
        self.interval_seconds = interval_seconds
        self.judged: dict[str, datetime] = dict(judged or {})  # market -> open time of the last candle judged

    def candles(self, market: str, count: int, now: datetime):
        """The last `count` closed candles (for charts)."""
        return self.source.closed_candles(market, count, now)

    def inputs(self, now: datetime) -> tuple[dict[str, MarketInput], dict[str, str]]:
        windows, errors = [], {}
        for market in self.markets():
            try:
                candles = self.source.closed_candles(market, HISTORY, now)
                if candles.empty:
                    errors[market] = "no closed candles returned"
                    continue
                last = candles.index[-1].to_pydatetime()
                if market in self.judged and last <= self.judged[market]:
                    continue  # no new candle since the last cycle
                windows.append(latest_window(candles, market, self.interval_seconds))
            except (InsufficientHistoryError, CandleDataError, UpbitError) as exc:
                errors[market] = str(exc)
        signals = self.manager.predict_batch(windows) if windows else {}
        out = {}
        for window in windows:
            out[window.market] = MarketInput(signals[window.market], float(window.close))
            self.judged[window.market] = window.timestamp.to_pydatetime()
        return out, errors
