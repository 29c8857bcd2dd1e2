"""What would a plain rule have done on the same candles? The trend rule and the settings of every
simulated strategy, so that each one goes through the same cycle, sizing, fees and slippage.

The trend rule: long while a market's close is above its 200-candle EMA, flat otherwise. It is fed to
the trading cycle as signals whose expected return is +1 (trend on) or -1 (off), under the
expected-return rule with no margin, no stops and no guard: only its entries and exits differ from
the strategy's.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import numpy as np
import pandas as pd

from core.trading.types import MarketInput, RiskSettings
from models.signal import MLSignal

TREND_SPAN = 200
UP, DOWN = (0.0, 0.0, 1.0), (1.0, 0.0, 0.0)  # sell, hold, buy


def sleeve_settings(markets: int, base: RiskSettings = RiskSettings()) -> RiskSettings:
    """One equal sleeve of equity per market, every market allowed a position at once."""
    return replace(base, max_positions=markets, max_position_ratio=round(1.0 / markets, 6))


def trend_settings(markets: int) -> RiskSettings:
    return sleeve_settings(markets, RiskSettings(
        decision_rule="expected_return", entry_margin=0.0, max_hold_hours=0.0, stop_loss=0.0, take_profit=0.0,
        trailing_stop=0.0, cooldown_hours=0.0, max_consecutive_losses=10**6, daily_loss_limit=1.0,
        emergency_threshold=1.0, shock_drop_1m=0.0, shock_drop_3m=0.0, shock_drop_5m=0.0))


class TrendFeed:
    """The trend rule's signals for every candle close within [first, last], as a SignalFeed."""

    def __init__(self, series: dict[str, pd.DataFrame], interval_seconds: int, first: pd.Timestamp,
                 last: pd.Timestamp, span: int = TREND_SPAN):
        self.series = series
        self.interval = pd.Timedelta(seconds=interval_seconds)
        self._at: dict[str, dict[int, MarketInput]] = {}
        for market, candles in series.items():
            close = candles["close"].astype(np.float64)
            ema = close.ewm(span=span, adjust=False).mean()
            closes = candles.index + self.interval
            wanted = np.asarray((closes >= first) & (closes <= last)) & (np.arange(len(candles)) >= span)
            up = (close > ema).to_numpy()
            rows = np.flatnonzero(wanted)
            proba = np.where(up[rows, None], np.array(UP), np.array(DOWN))
            opened = [t.to_pydatetime() for t in candles.index[rows]]
            signals = MLSignal.from_probability_rows(market, proba, opened, model_id="trend-ema200",
                                                     expected_returns=np.where(up[rows], 1.0, -1.0))
            o, lo, c = (candles[k].to_numpy(np.float64)[rows].tolist() for k in ("open", "low", "close"))
            self._at[market] = {int(closes[i].value): MarketInput(signal=s, price_krw=ci, open_krw=oi, low_krw=li)
                                for i, s, oi, li, ci in zip(rows, signals, o, lo, c)}

    def inputs(self, now: datetime):
        ns = pd.Timestamp(now).value
        return {m: rows[ns] for m, rows in self._at.items() if ns in rows}, {}

    def candles(self, market: str, count: int, now: datetime) -> pd.DataFrame:
        series = self.series[market]
        return series[series.index + self.interval <= pd.Timestamp(now)].iloc[-count:]
