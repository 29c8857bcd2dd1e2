"""Where do candles come from? The CandleSource interface, candles in memory and CSV replay.

Every source hands out *closed* candles only, as of a given time, so that the same cycle code runs over a
simulated clock (replay, backtest) and the wall clock (live). Upbit's REST API is another source (core.upbit.source).
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Protocol, Sequence

import pandas as pd

from core.data.candles import CandleDataError, load_candle_csv, resolve_candle_file
from core.data.markets import priced_in_krw


class SourceUnavailable(RuntimeError):
    """Candles cannot be had from a source right now (network, rate limit, a failing server)."""


class CandleSource(Protocol):
    def closed_candles(self, market: str, count: int, now: datetime) -> pd.DataFrame:
        """The last `count` candles that closed at or before `now`, oldest first."""


class MemorySource:
    """Candles held in memory; `now` moves a simulated clock through them."""

    def __init__(self, series: dict[str, pd.DataFrame], interval_seconds: int):
        self.interval_seconds = interval_seconds
        self.series = dict(series)

    def closed_candles(self, market: str, count: int, now: datetime) -> pd.DataFrame:
        series = self.series.get(market)
        if series is None:
            raise CandleDataError(f"no candles for {market}")
        cutoff = pd.Timestamp(now) - pd.Timedelta(seconds=self.interval_seconds)
        end = series.index.searchsorted(cutoff, side="right")
        return series.iloc[max(0, end - count):end]

    def timeline(self) -> pd.DatetimeIndex:
        """Every candle close time present in any market, in order (the replay's clock ticks)."""
        stamps = pd.DatetimeIndex([])
        for series in self.series.values():
            stamps = stamps.union(series.index)
        return stamps + pd.Timedelta(seconds=self.interval_seconds)


class CsvReplaySource(MemorySource):
    """Candles from a data set directory (replay, backtest), priced in KRW (core.data.markets)."""

    def __init__(self, data_dir: Path, markets: Sequence[str], interval: str, interval_seconds: int):
        super().__init__({m: priced_in_krw(load_candle_csv(resolve_candle_file(Path(data_dir), m, interval)), m)
                          for m in markets}, interval_seconds)
