"""Upbit's KRW-market order rules, shared by the paper and the live exchange."""
from __future__ import annotations

import math

FEE_RATE = 0.0005  # per side
MIN_ORDER_KRW = 5_000

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


def tick_size(price_krw: float, small_tick: float = 0.1) -> float:
    """Tick of the KRW grid at `price_krw`; below 100 KRW Upbit publishes a tick per market (`small_tick`)."""
    for floor, tick in _TICKS:
        if price_krw >= floor:
            return tick
    return small_tick


def round_to_tick(price_krw: float, direction: str = "nearest") -> float:
    tick = tick_size(price_krw)
    steps = price_krw / tick
    if direction == "down":
        steps = math.floor(steps + 1e-9)
    elif direction == "up":
        steps = math.ceil(steps - 1e-9)
    else:
        steps = round(steps)
    return round(steps * tick, 10)


def buy_cost_krw(amount_krw: float) -> float:
    """Cash a market buy of `amount_krw` reserves: the amount plus Upbit's fee."""
    return amount_krw * (1 + FEE_RATE)


def max_buy_amount_krw(cash_krw: float) -> int:
    """Largest whole-KRW market buy whose amount plus fee fits in `cash_krw`."""
    return int(math.floor(cash_krw / (1 + FEE_RATE)))
