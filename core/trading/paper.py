"""PaperExchange: a KRW wallet that fills market orders the way Upbit would, without money.

Market buy by KRW amount, market sell by volume, filled at the latest price with configurable
slippage rounded to the KRW tick grid, 0.05% fee per side, 5,000 KRW minimum, the buy's fee
reserved up front, balances never negative, and every order idempotent on its identifier.
"""
from __future__ import annotations

from datetime import datetime

from core.trading.rules import FEE_RATE, MIN_ORDER_KRW, buy_cost_krw, round_to_tick
from core.trading.types import Fill
from core.upbit.errors import UpbitInsufficientFundsError, UpbitRequestError, UpbitUnderMinimumError


class PaperExchange:
    def __init__(self, start_krw: float, slippage: float = 0.0005):
        if start_krw < 0:
            raise ValueError("start_krw must not be negative")
        self.cash_krw = float(start_krw)
        self.holdings: dict[str, float] = {}
        self.slippage = slippage
        self._orders: dict[str, Fill] = {}

    def order(self, identifier: str) -> Fill | None:
        return self._orders.get(identifier)

    def buy_market(self, market: str, amount_krw: int, identifier: str, price_krw: float, at: datetime) -> Fill:
        if identifier in self._orders:
            return self._orders[identifier]
        amount_krw = int(amount_krw)
        if amount_krw < MIN_ORDER_KRW:
            raise UpbitUnderMinimumError(f"paper {market}: buy of {amount_krw:,} KRW is under the 5,000 KRW minimum",
                                         name="under_min_total_bid")
        if buy_cost_krw(amount_krw) > self.cash_krw + 1e-6:
            raise UpbitInsufficientFundsError(
                f"paper {market}: buy of {amount_krw:,} KRW plus fee exceeds {self.cash_krw:,.0f} KRW available",
                name="insufficient_funds_bid")
        fill_price = round_to_tick(price_krw * (1 + self.slippage), "up")
        volume = amount_krw / fill_price
        fee = amount_krw * FEE_RATE
        self.cash_krw -= amount_krw + fee
        self.holdings[market] = self.holdings.get(market, 0.0) + volume
        fill = Fill(market, "bid", identifier, fill_price, volume, fee, float(amount_krw), at)
        self._orders[identifier] = fill
        return fill

    def sell_market(self, market: str, volume: float, identifier: str, price_krw: float, at: datetime) -> Fill:
        if identifier in self._orders:
            return self._orders[identifier]
        held = self.holdings.get(market, 0.0)
        if volume <= 0 or volume > held * (1 + 1e-12):
            raise UpbitRequestError(f"paper {market}: cannot sell {volume} with {held} held", name="insufficient_funds_ask")
        fill_price = round_to_tick(price_krw * (1 - self.slippage), "down")
        funds = volume * fill_price
        if funds < MIN_ORDER_KRW:
            raise UpbitUnderMinimumError(f"paper {market}: sale worth {funds:,.0f} KRW is under the 5,000 KRW minimum",
                                         name="under_min_total_ask")
        fee = funds * FEE_RATE
        self.cash_krw += funds - fee
        remaining = held - volume
        if remaining <= held * 1e-12:
            self.holdings.pop(market, None)
        else:
            self.holdings[market] = remaining
        fill = Fill(market, "ask", identifier, fill_price, volume, fee, funds, at)
        self._orders[identifier] = fill
        return fill
