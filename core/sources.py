"""Where do candles come from? The CandleSource interface: CSV replay and Upbit's REST API.

Both hand out *closed* candles only, as of a given time, so that the same cycle code runs over a
simulated clock (replay, backtest) and the wall clock (live).
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Protocol, Sequence

import pandas as pd

from core.candles import CandleDataError, load_candle_csv, resolve_candle_file
from core.upbit.quotation import MAX_CANDLES_PER_REQUEST, UpbitQuotationClient, closed_only


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
    """Candles from a data set directory (replay, backtest)."""

    def __init__(self, data_dir: Path, markets: Sequence[str], interval: str, interval_seconds: int):
        super().__init__({m: load_candle_csv(resolve_candle_file(Path(data_dir), m, interval)) for m in markets},
                         interval_seconds)


class UpbitCandleSource:
    """Candles from Upbit, paging backwards 200 at a time, the forming candle dropped."""

    def __init__(self, client: UpbitQuotationClient, interval: str, interval_seconds: int):
        self.client = client
        self.interval = interval
        self.interval_seconds = interval_seconds

    def closed_candles(self, market: str, count: int, now: datetime) -> pd.DataFrame:
        pages: list[pd.DataFrame] = []
        have = 0
        to: datetime | None = None
        while have < count + 1:
            page = self.client.candles_page(market, self.interval, to=to)
            if page.empty:
                break
            pages.append(page)
            have += len(page)
            to = page.index[0].to_pydatetime()
            if len(page) < MAX_CANDLES_PER_REQUEST:
                break
        if not pages:
            return pd.DataFrame(columns=["open", "high", "low", "close", "volume", "value"])
        frame = pd.concat(pages[::-1]).sort_index()
        frame = frame[~frame.index.duplicated(keep="last")]
        return closed_only(frame, self.interval_seconds, now).iloc[-count:]
