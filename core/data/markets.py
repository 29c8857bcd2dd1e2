"""What is a market? Upbit's QUOTE-BASE names (KRW-BTC), checked, and the markets watched by default."""
from __future__ import annotations

import re

DEFAULT_MARKETS = ("KRW-BTC", "KRW-ETH", "KRW-XRP", "KRW-SOL")
# Candles quoted in USDT (the bundled Binance history) are simulated at this many KRW per USDT, so that
# Upbit's KRW tick grid and 5,000 KRW minimum apply at a realistic price level (the features are
# scale-free: only fills, ticks and minimums depend on the level). It moved between 1,200 and 1,485.
KRW_PER_USDT = 1_400.0
MARKET_PATTERN = re.compile(r"^[A-Z0-9]{2,10}-[A-Z0-9]{1,15}$")


class InvalidMarket(ValueError):
    """Not a market name; the message shows the form expected."""


def parse_market(text: str) -> str:
    market = text.strip().upper()
    if not MARKET_PATTERN.match(market):
        raise InvalidMarket(f"invalid market {text!r}: expected QUOTE-BASE such as KRW-BTC")
    return market


def quote(market: str) -> str:
    return market.split("-", 1)[0]


def priced_in_krw(candles, source: str):
    """`candles` with prices in KRW, `source` being the market or candle file they are quoted as: as
    they are in KRW, at KRW_PER_USDT in USDT; InvalidMarket for another quote."""
    q = quote(source)
    if q == "KRW":
        return candles
    if q != "USDT":
        raise InvalidMarket(f"{source}: only KRW markets, or USDT ones at {KRW_PER_USDT:,.0f} KRW per USDT, can be "
                            f"simulated")
    out = candles.copy()
    for column in ("open", "high", "low", "close"):
        out[column] = out[column] * KRW_PER_USDT
    if "value" in out:
        out["value"] = out["value"] * KRW_PER_USDT
    return out


def parse_markets(text: str, variable: str = "MARKETS") -> tuple[str, ...]:
    """A comma list of markets, duplicates dropped; `variable` names the setting or option in errors."""
    items = [item for item in (part.strip() for part in text.split(",")) if item]
    if not items:
        raise InvalidMarket(f"{variable} is empty: give a comma list such as KRW-BTC,KRW-ETH")
    try:
        return tuple(dict.fromkeys(parse_market(item) for item in items))
    except InvalidMarket as exc:
        raise InvalidMarket(f"{variable}: {exc}") from None
