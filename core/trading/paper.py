"""PaperExchange: a KRW wallet that fills market orders the way Upbit would, without money.

Market buy by KRW amount, market sell by volume, filled at the latest price with configurable
slippage rounded to the KRW tick grid, the exchange's fee per side and minimum order, the buy's fee
reserved up front, balances never negative, and every order idempotent on its identifier. It raises
the same neutral errors (core.trading.exchange) as the live adapter maps Upbit's answers to.
"""
from __future__ import annotations

from datetime import datetime

from core.trading.exchange import (
    Balances,
    BelowMinimum,
    ExchangeRules,
    InsufficientFunds,
    OrderRejected,
    OrderStatus,
)
from core.trading.rules import UPBIT_KRW
from core.trading.types import Fill


class PaperExchange:
    def __init__(self, start_krw: float, slippage: float = 0.0005, rules: ExchangeRules = UPBIT_KRW):
        if start_krw < 0:
            raise ValueError("start_krw must not be negative")
        self.rules = rules
        self.cash_krw = float(start_krw)
        self.holdings: dict[str, float] = {}
        self.slippage = slippage
        self._orders: dict[str, Fill] = {}

    def order(self, identifier: str) -> Fill | None:
        return self._orders.get(identifier)

    def lookup(self, identifier: str, at: datetime | None = None) -> OrderStatus | None:
        """Reconciliation asks the paper wallet the same question as Upbit: does this order exist?"""
        fill = self._orders.get(identifier)
        return None if fill is None else OrderStatus(identifier, "done", fill, final=True)

    def balances(self) -> Balances:
        return Balances(self.cash_krw, {m: (v, 0.0) for m, v in self.holdings.items()})

    def deposit(self, amount_krw: float) -> None:
        """KRW in (or out, negative) other than by a fill: the wallet's funding, replayed at a restart."""
        self.cash_krw += float(amount_krw)

    def book(self, fill: Fill) -> None:
        """Enter a fill in the wallet (every order goes through here; a restart replays stored fills)."""
        if fill.identifier in self._orders:
            return
        if fill.side == "bid":
            self.cash_krw -= fill.funds_krw + fill.fee_krw
            self.holdings[fill.market] = self.holdings.get(fill.market, 0.0) + fill.volume
        else:
            self.cash_krw += fill.funds_krw - fill.fee_krw
            held = self.holdings.get(fill.market, 0.0)
            remaining = held - fill.volume
            if remaining <= held * 1e-12:
                self.holdings.pop(fill.market, None)
            else:
                self.holdings[fill.market] = remaining
        self._orders[fill.identifier] = fill

    def snapshot(self) -> tuple:
        return self.cash_krw, dict(self.holdings), dict(self._orders)

    def restore(self, state: tuple) -> None:
        """Undo the orders since `snapshot()` (a step whose record could not be stored never happened)."""
        self.cash_krw, holdings, orders = state
        self.holdings, self._orders = dict(holdings), dict(orders)

    def buy_market(self, market: str, amount_krw: int, identifier: str, price_krw: float, at: datetime) -> Fill:
        if identifier in self._orders:
            return self._orders[identifier]
        amount_krw = int(amount_krw)
        minimum = self.rules.min_order_krw
        if amount_krw < minimum:
            raise BelowMinimum(f"paper {market}: buy of {amount_krw:,} KRW is under the {minimum:,} KRW minimum",
                               name="under_min_total_bid")
        if self.rules.buy_cost_krw(amount_krw) > self.cash_krw + 1e-6:
            raise InsufficientFunds(f"paper {market}: buy of {amount_krw:,} KRW plus fee exceeds "
                                    f"{self.cash_krw:,.0f} KRW available", name="insufficient_funds_bid")
        fill_price = self.rules.round_to_tick(price_krw * (1 + self.slippage), "up")
        fill = Fill(market=market, side="bid", identifier=identifier, price_krw=fill_price,
                    volume=amount_krw / fill_price, fee_krw=amount_krw * self.rules.fee_rate,
                    funds_krw=float(amount_krw), at=at)
        self.book(fill)
        return fill

    def sell_market(self, market: str, volume: float, identifier: str, price_krw: float, at: datetime) -> Fill:
        if identifier in self._orders:
            return self._orders[identifier]
        held = self.holdings.get(market, 0.0)
        if volume <= 0 or volume > held * (1 + 1e-12):
            raise OrderRejected(f"paper {market}: cannot sell {volume} with {held} held", name="insufficient_funds_ask")
        fill_price = self.rules.round_to_tick(price_krw * (1 - self.slippage), "down")
        funds = volume * fill_price
        minimum = self.rules.min_order_krw
        if funds < minimum:
            raise BelowMinimum(f"paper {market}: sale worth {funds:,.0f} KRW is under the {minimum:,} KRW minimum",
                               name="under_min_total_ask")
        fill = Fill(market=market, side="ask", identifier=identifier, price_krw=fill_price, volume=volume,
                    fee_krw=funds * self.rules.fee_rate, funds_krw=funds, at=at)
        self.book(fill)
        return fill
