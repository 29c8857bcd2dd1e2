"""UpbitExchange: real orders behind the same interface as PaperExchange.

Market buy by KRW amount (`ord_type=price`), market sell by volume (`ord_type=market`), each with
the identifier the cycle stored before sending. When the answer to an order is lost (timeout,
dropped connection, 5xx, malformed JSON) the order is looked up by that identifier before anything
else; it is never sent twice. A fill is judged by executed volume: a market order that filled may
end in state `cancel` (or `prevented`), and a partly filled one is booked for what executed.
"""
from __future__ import annotations

import logging
import math
import time
from datetime import datetime, timezone
from typing import Callable

from core.trading.exchange import Balances, OrderStatus
from core.trading.rules import UPBIT_KRW
from core.trading.types import Fill
from core.upbit.errors import (
    UpbitNetworkError,
    UpbitOrderCancelledError,
    UpbitOrderNotFoundError,
    UpbitOrderUnknownError,
    UpbitRateLimitError,
    UpbitServerError,
)
from core.upbit.exchange_api import UpbitExchangeAPI

log = logging.getLogger(__name__)

# An order in one of these changes no more. `prevented`: self-trade prevention (since 2025-07) stopped
# it; what executed before that stays executed.
FINAL_STATES = ("done", "cancel", "prevented")


def _number(value) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        raise UpbitServerError(f"Upbit answered a malformed number {value!r}") from None


def _funds(order: dict, executed: float) -> float | None:
    """The KRW an order's executed part was worth: its trades, else `executed_funds`, else for a limit
    order executed volume x its unit price. None when the answer does not say (for `ord_type=price`
    Upbit's `price` is the order's KRW total, not a unit price, so it is never used as one)."""
    trades = order.get("trades") or []
    if not isinstance(trades, list):
        raise UpbitServerError(f"Upbit order: trades is a {type(trades).__name__}, not a list")
    funds = sum(_number(t.get("funds")) for t in trades if isinstance(t, dict))
    if funds > 0:
        return funds
    if _number(order.get("executed_funds")) > 0:
        return _number(order.get("executed_funds"))
    if order.get("ord_type") == "limit" and _number(order.get("price")) > 0:
        return executed * _number(order.get("price"))
    return None


def fill_of(order: dict, identifier: str, at: datetime | None = None) -> Fill | None:
    """What an order executed; None when nothing did. Upbit omits null fields (and `identifier` on
    orders created before 2024-10-18), so every field but market and side is optional; an answer that
    says something executed without saying for how much raises UpbitServerError (asked again later)."""
    if not isinstance(order, dict):
        raise UpbitServerError(f"Upbit order {identifier}: expected an object, got {type(order).__name__}")
    executed = _number(order.get("executed_volume"))
    if executed <= 0:
        return None
    market, side = order.get("market"), order.get("side")
    if not market or side not in ("bid", "ask"):
        raise UpbitServerError(f"Upbit order {identifier}: the answer has no market or side")
    funds = _funds(order, executed)
    if funds is None:
        raise UpbitServerError(f"Upbit order {identifier}: executed {executed} but the answer says neither its "
                               f"trades nor its funds yet; asked again later")
    return Fill(market=market, side=side, identifier=identifier, price_krw=funds / executed,
                volume=executed, fee_krw=_number(order.get("paid_fee")), funds_krw=funds,
                at=at or datetime.now(timezone.utc))


class UpbitExchange:
    rules = UPBIT_KRW

    def __init__(self, api: UpbitExchangeAPI, *, settle_seconds: float = 10.0, poll_seconds: float = 0.25,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic):
        self.api = api
        self.settle_seconds = settle_seconds
        self.poll_seconds = poll_seconds
        self._sleep = sleep
        self._clock = clock

    def buy_market(self, market: str, amount_krw: int, identifier: str, price_krw: float, at: datetime) -> Fill:
        return self._place(dict(market=market, side="bid", ord_type="price", identifier=identifier,
                                price=str(int(amount_krw))), at)

    def sell_market(self, market: str, volume: float, identifier: str, price_krw: float, at: datetime) -> Fill:
        volume = math.floor(volume * 1e8 + 1e-6) / 1e8  # 8 decimals, never more than held
        return self._place(dict(market=market, side="ask", ord_type="market", identifier=identifier,
                                volume=f"{volume:.8f}".rstrip("0").rstrip(".")), at)

    def _place(self, order: dict, at: datetime) -> Fill:
        identifier = order["identifier"]
        try:
            answer = self.api.place_order(**order)
        except (UpbitNetworkError, UpbitServerError) as exc:  # sent, answer lost: did it arrive?
            log.warning("%s %s: %s; looking the order up by its identifier", order["market"], order["side"], exc)
            status = self._find(identifier, exc)
            if status is None:  # most likely never arrived; it might still be in flight, so look again later
                raise UpbitOrderUnknownError(f"{exc}; the exchange has no such order yet, so most likely nothing was "
                                             f"traded (checked again by reconciliation)",
                                             status=getattr(exc, "status", None), name=getattr(exc, "name", None)) from None
        else:
            state = str(answer.get("state", "wait")) if isinstance(answer, dict) else "wait"
            status = OrderStatus(identifier, state, None, final=False)  # its fill comes from the look-up
        status = self._settled(identifier, status, at)
        if status.fill is None:
            if status.final:
                raise UpbitOrderCancelledError(f"Upbit cancelled order {identifier} with nothing executed",
                                               name="cancel")
            raise UpbitOrderUnknownError(f"order {identifier} still open after {self.settle_seconds:g} s; "
                                         f"it will be settled by reconciliation")
        return status.fill

    def _find(self, identifier: str, cause: Exception) -> OrderStatus | None:
        """Look an order up after a lost answer, retrying for a while; None if it surely does not exist."""
        deadline = self._clock() + self.settle_seconds
        while True:
            try:
                return self.lookup(identifier)
            except (UpbitNetworkError, UpbitServerError, UpbitRateLimitError) as exc:
                if self._clock() >= deadline:
                    raise UpbitOrderUnknownError(f"{cause}; looking order {identifier} up failed too ({exc}); "
                                                 f"it will be settled by reconciliation") from None
                self._sleep(self.poll_seconds)

    def _settled(self, identifier: str, status: OrderStatus, at: datetime) -> OrderStatus:
        """Poll until the order is done or cancelled (market orders take moments), or the time is up."""
        deadline = self._clock() + self.settle_seconds
        while not status.final and self._clock() < deadline:
            try:
                status = self.lookup(identifier, at) or status
            except (UpbitNetworkError, UpbitServerError, UpbitRateLimitError) as exc:
                log.warning("order %s: %s", identifier, exc)
            if not status.final:
                self._sleep(self.poll_seconds)
        return status

    def snapshot(self) -> None:
        return None  # a real order cannot be undone; the cycle stores each one before sending it

    def restore(self, state) -> None:
        raise NotImplementedError("a live exchange's orders cannot be undone")

    def lookup(self, identifier: str, at: datetime | None = None) -> OrderStatus | None:
        """The exchange's view of an order; None when it has no order by that identifier."""
        try:
            order = self.api.order(identifier=identifier)
        except UpbitOrderNotFoundError:
            return None
        fill = fill_of(order, identifier, at)  # checks the answer's shape too
        state = str(order.get("state"))
        return OrderStatus(identifier, state, fill, final=state in FINAL_STATES)

    def balances(self) -> Balances:
        krw, coins = 0.0, {}
        for row in self.api.accounts():
            if not isinstance(row, dict):
                raise UpbitServerError(f"Upbit /v1/accounts: a row is a {type(row).__name__}, not an object")
            amount = _number(row.get("balance")) + _number(row.get("locked"))
            currency = row.get("currency")
            if currency == "KRW":
                krw = amount
            elif (row.get("unit_currency") or "KRW") == "KRW" and amount > 0:
                coins[f"KRW-{currency}"] = (amount, _number(row.get("avg_buy_price")))
        return Balances(krw, coins)
