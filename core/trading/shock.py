"""Between candle closes: has a held coin's price just collapsed? The price-shock guard.

Fed ticker prices every few seconds; reports a fall beyond any enabled threshold (default -2.5% in
1 minute, -4% in 3, -6% in 5), measured from the highest price seen within that window. Only falls:
the product's first version also bought on sudden surges and its own post-mortem blamed those buys.
"""
from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

from core.trading.reasons import Reason
from core.trading.types import RiskSettings


class PriceShockGuard:
    def __init__(self):
        self._seen: dict[str, deque[tuple[datetime, float]]] = {}

    def observe(self, market: str, price_krw: float, now: datetime, settings: RiskSettings) -> Reason | None:
        """Record a price; the reason to sell if it is a shock, else None."""
        history = self._seen.setdefault(market, deque())
        history.append((now, price_krw))
        longest = max((s for s, _ in settings.shock_windows), default=300)
        while history and now - history[0][0] > timedelta(seconds=longest):
            history.popleft()
        for seconds, drop in settings.shock_windows:
            peak = max(p for t, p in history if now - t <= timedelta(seconds=seconds))
            fall = price_krw / peak - 1.0
            if fall <= -drop:
                return Reason("price_shock", fall=fall, minutes=seconds // 60, limit=drop)
        return None

    def forget(self, market: str) -> None:
        self._seen.pop(market, None)


def sell_on_shock(agent, guard: PriceShockGuard, prices: dict[str, float], now: datetime) -> list:
    """Feed ticker prices of held markets to the guard; sell each one in shock through the emergency path."""
    results = []
    for market, price in prices.items():
        reason = guard.observe(market, price, now, agent.risk)
        if reason is not None and market in agent.portfolio.positions:
            results.append(agent.cycle.shock_sell(market, price, now, reason))
            guard.forget(market)
    return results
