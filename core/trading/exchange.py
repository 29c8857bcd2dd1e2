"""What is an exchange to the trading cycle? The Exchange protocol, its rules and its neutral errors.

The cycle, the reconciler and the shock guard know only this module: the paper exchange raises these
errors itself, the Upbit adapter (core.upbit) maps Upbit's answers onto them. The rules (fee,
minimum order, price tick) belong to the exchange object, so a second exchange brings its own.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Protocol

from core.trading.types import Fill


class ExchangeError(RuntimeError):
    """An exchange failed us; `name` is the exchange's own error name when it gave one."""

    def __init__(self, message: str, *, status: int | None = None, name: str | None = None):
        super().__init__(message)
        self.status = status
        self.name = name


class ExchangeUnreachable(ExchangeError):
    """No answer (refused, reset, timed out): the request may or may not have arrived."""


class ExchangeTimeout(ExchangeUnreachable):
    """No answer in time: the request may or may not have been executed."""


class ExchangeFailure(ExchangeError):
    """The exchange answered with a failure of its own (5xx) or with something that is not an answer."""


class RateLimited(ExchangeError):
    """Too many requests: nothing was executed; wait `retry_after` seconds (or longer when `blocked`)."""

    def __init__(self, message: str, *, status: int | None = None, name: str | None = None,
                 retry_after: float = 1.0, blocked: bool = False):
        super().__init__(message, status=status, name=name)
        self.retry_after = retry_after
        self.blocked = blocked  # a ban for persisting (Upbit's 418), not a plain 429


class OrderRejected(ExchangeError):
    """The exchange refused the request as it stands (a bad market, parameter or order)."""


class AccessDenied(OrderRejected):
    """Keys invalid or expired, a permission missing, or this machine's address not allowed."""


class InsufficientFunds(OrderRejected):
    pass


class BelowMinimum(OrderRejected):
    pass


class OrderNotFound(OrderRejected):
    """The exchange has no order by that identifier."""


class OrderOutcomeUnknown(ExchangeError):
    """Sent, but neither the answer nor a look-up says what became of it: reconciliation settles it."""


class OrderCancelled(ExchangeError):
    """The exchange cancelled the order with nothing executed."""


@dataclass(frozen=True)
class ExchangeRules:
    """Fee per side, smallest order and price grid of an exchange's KRW markets."""

    fee_rate: float
    min_order_krw: int
    tick_size: Callable[[float], float]
    slippage_allowance: float = 0.0005  # per side: what a market order is expected to lose to the spread

    @property
    def round_trip_cost(self) -> float:
        """What buying and selling again costs, fees and expected slippage both ways (0.2% on Upbit)."""
        return 2 * (self.fee_rate + self.slippage_allowance)

    def round_to_tick(self, price_krw: float, direction: str = "nearest") -> float:
        tick = self.tick_size(price_krw)
        steps = price_krw / tick
        if direction == "down":
            steps = math.floor(steps + 1e-9)
        elif direction == "up":
            steps = math.ceil(steps - 1e-9)
        else:
            steps = round(steps)
        return round(steps * tick, 10)

    def buy_cost_krw(self, amount_krw: float) -> float:
        """Cash a market buy of `amount_krw` reserves: the amount plus the fee."""
        return amount_krw * (1 + self.fee_rate)

    def max_buy_amount_krw(self, cash_krw: float) -> int:
        """Largest whole-KRW market buy whose amount plus fee fits in `cash_krw`."""
        return int(math.floor(cash_krw / (1 + self.fee_rate)))


@dataclass(frozen=True)
class OrderStatus:
    identifier: str
    state: str  # wait | watch | done | cancel | prevented
    fill: Fill | None  # what executed so far (None: nothing)
    final: bool = False  # the order will not change any more


@dataclass(frozen=True)
class Balances:
    krw: float  # available + locked
    coins: dict[str, tuple[float, float]]  # market (KRW-XXX) -> (volume incl. locked, average buy price)


class Exchange(Protocol):
    rules: ExchangeRules

    def buy_market(self, market: str, amount_krw: int, identifier: str, price_krw: float, at: datetime) -> Fill:
        """Buy for `amount_krw` (plus the fee); idempotent on `identifier`."""

    def sell_market(self, market: str, volume: float, identifier: str, price_krw: float, at: datetime) -> Fill:
        """Sell `volume`; idempotent on `identifier`."""

    def lookup(self, identifier: str, at: datetime | None = None) -> OrderStatus | None:
        """What became of an order; None when the exchange has none by that identifier."""

    def balances(self) -> Balances: ...

    def snapshot(self) -> object | None:
        """State to restore if the step that changes it cannot be stored (None: cannot be undone)."""

    def restore(self, state: object) -> None: ...
