"""Which markets are watched now? One list, changed by command, read by the feed and the reconciler."""
from __future__ import annotations

from typing import Iterable


class Watchlist:
    def __init__(self, markets: Iterable[str], fixed: bool = False):
        self._markets = tuple(markets)
        self.fixed = fixed  # a replay's markets are those of its data

    @property
    def markets(self) -> tuple[str, ...]:
        return self._markets

    def __call__(self) -> tuple[str, ...]:
        return self._markets

    def replace(self, markets: Iterable[str]) -> None:
        if self.fixed:
            raise ValueError("the markets of a replay are those of its data and cannot change")
        self._markets = tuple(markets)
