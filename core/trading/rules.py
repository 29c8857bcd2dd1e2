"""Upbit's KRW-market order rules: 0.05% fee per side, 5,000 KRW minimum, the KRW price tick grid.

Both exchanges (paper and live Upbit) carry these rules as their `rules`; nothing else reads them
from here, so another exchange brings its own ExchangeRules.
"""
from __future__ import annotations

from core.trading.exchange import ExchangeRules

# (lower bound of price, tick) for KRW markets, highest first
_TICKS = (
    (1_000_000, 1_000),
    (500_000, 500),
    (100_000, 100),
    (50_000, 50),
    (10_000, 10),
    (5_000, 5),
    (100, 1),
)


def upbit_krw_tick(price_krw: float, small_tick: float = 0.1) -> float:
    """Tick of the KRW grid at `price_krw`; below 100 KRW Upbit publishes a tick per market (`small_tick`)."""
    for floor, tick in _TICKS:
        if price_krw >= floor:
            return tick
    return small_tick


UPBIT_KRW = ExchangeRules(fee_rate=0.0005, min_order_krw=5_000, tick_size=upbit_krw_tick)
