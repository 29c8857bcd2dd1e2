"""Candles from Upbit's quotation API as a CandleSource: closed candles only, paged 200 at a time."""
from __future__ import annotations

from datetime import datetime

import pandas as pd

from core.upbit.quotation import (
    MAX_CANDLES_PER_REQUEST,
    UpbitQuotationClient,
    closed_only,
)


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
