"""What is a market? Upbit's QUOTE-BASE names (KRW-BTC), checked, and the markets watched by default."""
from __future__ import annotations

import re

DEFAULT_MARKETS = ("KRW-BTC", "KRW-ETH", "KRW-XRP", "KRW-SOL")
MARKET_PATTERN = re.compile(r"^[A-Z0-9]{2,10}-[A-Z0-9]{1,15}$")


class InvalidMarket(ValueError):
    """Not a market name; the message shows the form expected."""


def parse_market(text: str) -> str:
    market = text.strip().upper()
    if not MARKET_PATTERN.match(market):
        raise InvalidMarket(f"invalid market {text!r}: expected QUOTE-BASE such as KRW-BTC")
    return market


def parse_markets(text: str, variable: str = "MARKETS") -> tuple[str, ...]:
    """A comma list of markets, duplicates dropped; `variable` names the setting or option in errors."""
    items = [item for item in (part.strip() for part in text.split(",")) if item]
    if not items:
        raise InvalidMarket(f"{variable} is empty: give a comma list such as KRW-BTC,KRW-ETH")
    try:
        return tuple(dict.fromkeys(parse_market(item) for item in items))
    except InvalidMarket as exc:
        raise InvalidMarket(f"{variable}: {exc}") from None
