"""Between candle closes: has a held coin's price just collapsed? The price-shock guard.

Fed every trade price of Upbit's stream as it arrives (core/upbit/stream.py), or ticker prices
every 30 seconds while the stream is down; reports a fall beyond any enabled threshold (default -2.5% in
1 minute, -4% in 3, -6% in 5), measured from the highest price seen within that window. Only falls:
the product's first version also bought on sudden surges and its own post-mortem blamed those buys.
"""
from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

from core.trading.reasons import Reason
from core.trading.types import RiskSettings


WINDOWS = (60, 180, 300)  # seconds: the 1-, 3- and 5-minute windows of shock_drop_1m/3m/5m


class PriceShockGuard:
    """The highest price of each window, kept as a falling queue per window (a price that can never be
    a window's peak again is dropped), so a stream of many trades a second costs O(1) per trade."""

    def __init__(self):
        self._peaks: dict[str, dict[int, deque[tuple[datetime, float]]]] = {}

    def observe(self, market: str, price_krw: float, now: datetime, settings: RiskSettings) -> Reason | None:
        """Record a price; the reason to sell if it is a shock, else None."""
        peaks = self._peaks.setdefault(market, {seconds: deque() for seconds in WINDOWS})
        for seconds, queue in peaks.items():
            while queue and queue[-1][1] <= price_krw:
                queue.pop()
            queue.append((now, price_krw))
            span = timedelta(seconds=seconds)
            while now - queue[0][0] > span:
                queue.popleft()
        for seconds, drop in settings.shock_windows:
            queue = peaks.get(seconds)
            if not queue:
                continue
            fall = price_krw / queue[0][1] - 1.0
            if fall <= -drop:
                return Reason("price_shock", fall=fall, minutes=seconds // 60, limit=drop)
        return None

    def forget(self, market: str) -> None:
        self._peaks.pop(market, None)


def sell_on_shock(agent, guard: PriceShockGuard, prices: dict[str, float], now: datetime) -> list:
    """Feed ticker prices of held markets to the guard; sell each one in shock through the emergency path."""
    results = []
    for market, price in prices.items():
        reason = guard.observe(market, price, now, agent.risk)
        if reason is not None and market in agent.portfolio.positions:
            results.append(agent.cycle.shock_sell(market, price, now, reason))
            guard.forget(market)
    return results
