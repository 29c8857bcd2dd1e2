"""Do our books match the exchange? Reconciliation, at start and before every cycle.

1. Orders left `pending` (sent, no answer: a crash or a timeout) or `unknown` are looked up by their
   identifier. Executed volume becomes a fill, booked with its position in one transaction; an
   order the exchange never received is written off once it is older than a grace period (an order
   still in flight when the process died may land a moment later). Until then its market is not
   traded, so nothing can be sent twice.
2. Balances: for every watched or held market, the coins on the account are compared with the
   position in the books. A difference (a coin sold by hand in the Upbit app, say) is adopted as an
   `external` fill at the latest price, recorded, and announced to admins; the bot does not trade
   against it. Coins of markets the bot neither watches nor holds are left alone. KRW on the account
   that the books do not explain is recorded as a cash flow (the live account's funding the first
   time, later a deposit or a withdrawal) and announced; the books rebuilt after a restart include
   it, so a restart finds nothing to adopt.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Sequence

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from core.storage.books import (
    DEPOSIT,
    FUNDING,
    WITHDRAWAL,
    CashFlow,
    has_cash_flows,
    record_cash_flow,
    save_trading_day,
)
from core.storage.database import from_db_time, to_db_time
from core.storage.journal import write_position
from core.storage.outbox import enqueue
from core.storage.schema import fills, orders
from core.trading.events import EventKind, event, fill_params
from core.trading.exchange import Exchange, ExchangeError
from core.trading.portfolio import Portfolio
from core.trading.types import OPEN_ORDER_STATES, DecisionKind, Fill, OrderState, Side

log = logging.getLogger(__name__)

GRACE = timedelta(seconds=30)  # how long an order the exchange does not know may still be in flight
CASH_TOLERANCE_KRW = 1.0


@dataclass(frozen=True)
class Reconciliation:
    unsettled: frozenset[str]  # markets with an order still open: not traded this cycle
    books_checked: bool  # balances compared with the exchange (the books are reconciled)


class Reconciler:
    def __init__(self, db: Engine, exchange: Exchange, markets: Callable[[], Sequence[str]], *, grace: timedelta = GRACE):
        self.db = db
        self.exchange = exchange
        self.markets = markets
        self.grace = grace

    def open_markets(self) -> set[str]:
        with self.db.connect() as conn:
            return {r.market for r in conn.execute(select(orders.c.market).where(orders.c.state.in_(OPEN_ORDER_STATES)))}

    def run(self, portfolio: Portfolio, prices: dict[str, float], now: datetime) -> Reconciliation:
        """Settle what can be settled, then compare balances if every order is accounted for."""
        unsettled = self.settle_orders(portfolio, now)
        if unsettled:  # balances mean something only once every order is accounted for
            return Reconciliation(frozenset(unsettled), False)
        try:
            self.adopt_balances(portfolio, prices, now)
        except ExchangeError as exc:
            log.warning("balances not compared this time: %s", exc)
            return Reconciliation(frozenset(), False)
        return Reconciliation(frozenset(), True)

    def settle_orders(self, portfolio: Portfolio, now: datetime) -> set[str]:
        with self.db.connect() as conn:
            rows = conn.execute(select(orders).where(orders.c.state.in_(OPEN_ORDER_STATES)).order_by(orders.c.id)).all()
        unsettled = set()
        for row in rows:
            try:
                status = self.exchange.lookup(row.identifier, now)
            except ExchangeError as exc:
                log.warning("order %s (%s) not settled yet: %s", row.identifier, row.market, exc)
                unsettled.add(row.market)
                continue
            if status is None:
                if now - from_db_time(row.created_at) < self.grace:
                    unsettled.add(row.market)
                    continue
                self._close(row, OrderState.FAILED, "the exchange never received it; nothing was traded", now,
                            "order_never_arrived")
            elif not status.final:
                unsettled.add(row.market)
            elif status.fill is None:
                self._close(row, OrderState.CANCEL, "cancelled by the exchange with nothing executed", now,
                            "order_cancelled_empty")
            else:
                self._book(row, status.fill, portfolio, now)
        return unsettled

    def _close(self, row, state: OrderState, reason: str, now: datetime, name: str) -> None:
        with self.db.begin() as conn:
            conn.execute(update(orders).where(orders.c.identifier == row.identifier)
                         .values(state=state, reason=reason, updated_at=to_db_time(now)))
            enqueue(conn, event(EventKind.ACCOUNT, name, now, row.market, identifier=row.identifier, side=row.side))

    def _book(self, row, fill: Fill, portfolio: Portfolio, now: datetime) -> None:
        """A fill the cycle never stored (lost answer, crash): book it now, order, fill and position at once."""
        saved = portfolio.snapshot()
        with self.db.connect() as conn:
            known = conn.execute(select(fills.c.id).where(fills.c.order_identifier == row.identifier)).first()
        try:
            with self.db.begin() as conn:
                if known is None:
                    portfolio.apply(fill, DecisionKind(row.kind))
                    _insert_fill(conn, fill)
                    write_position(conn, portfolio, fill.market, now)
                conn.execute(update(orders).where(orders.c.identifier == row.identifier).values(
                    state=OrderState.DONE, reason="settled by reconciliation", volume=fill.volume,
                    amount_krw=fill.funds_krw if fill.side == Side.BID else row.amount_krw, updated_at=to_db_time(now)))
                enqueue(conn, event(EventKind.ACCOUNT, "order_settled", now, fill.market, identifier=row.identifier,
                                    **fill_params(fill)))
        except Exception:
            portfolio.restore(saved)
            raise

    def adopt_balances(self, portfolio: Portfolio, prices: dict[str, float], now: datetime) -> None:
        balances = self.exchange.balances()
        for market in sorted(set(self.markets()) | set(portfolio.positions)):
            held, avg_price = balances.coins.get(market, (0.0, 0.0))
            position = portfolio.positions.get(market)
            ours = position.volume if position is not None else 0.0
            if abs(held - ours) <= 1e-9 + 1e-7 * max(held, ours):
                continue
            price = prices.get(market) or avg_price or (position.avg_price_krw if position else 0.0)
            if position is None and held * price < self.exchange.rules.min_order_krw:
                continue  # dust the bot never owned and could not sell
            self._adopt(market, held - ours, price, portfolio, now)
        if abs(balances.krw - portfolio.cash_krw) > CASH_TOLERANCE_KRW:
            self._adopt_cash(balances.krw, portfolio, now)

    def _adopt_cash(self, account_krw: float, portfolio: Portfolio, now: datetime) -> None:
        """KRW the books do not explain becomes a cash flow, stored with the day's moved start and the
        announcement in one transaction."""
        difference = account_krw - portfolio.cash_krw
        saved = portfolio.snapshot()
        try:
            with self.db.begin() as conn:
                if not has_cash_flows(conn):
                    flow = CashFlow(now, difference, FUNDING, "KRW on the account at the first reconciliation")
                    notice = event(EventKind.ACCOUNT, "cash_funding", now, account_krw=account_krw)
                else:
                    kind = DEPOSIT if difference > 0 else WITHDRAWAL
                    flow = CashFlow(now, difference, kind, f"the account held {account_krw:,.0f} KRW, the books "
                                                           f"{portfolio.cash_krw:,.0f} KRW")
                    notice = event(EventKind.ACCOUNT, "cash_moved", now, account_krw=account_krw,
                                   books_krw=portfolio.cash_krw, flow=kind, amount_krw=abs(difference))
                record_cash_flow(conn, flow)
                portfolio.add_cash_flow(difference)
                save_trading_day(conn, portfolio, now)
                enqueue(conn, notice)
        except Exception:
            portfolio.restore(saved)
            raise

    def _adopt(self, market: str, difference: float, price: float, portfolio: Portfolio, now: datetime) -> None:
        side = Side.BID if difference > 0 else Side.ASK
        volume = abs(difference)
        fill = Fill(market=market, side=side, identifier=f"external-{uuid.uuid4().hex}", price_krw=price, volume=volume,
                    fee_krw=0.0, funds_krw=volume * price, at=now)
        saved = portfolio.snapshot()
        try:
            with self.db.begin() as conn:
                at = to_db_time(now)
                conn.execute(orders.insert().values(
                    identifier=fill.identifier, market=market, side=side, ord_type="external", volume=volume,
                    amount_krw=None, state=OrderState.DONE, reason="adopted from the exchange's balance",
                    kind=DecisionKind.EXTERNAL,
                    created_at=at, updated_at=at))
                portfolio.apply(fill, DecisionKind.EXTERNAL)
                _insert_fill(conn, fill)
                write_position(conn, portfolio, market, now)
                held = portfolio.positions[market].volume if market in portfolio.positions else 0.0
                enqueue(conn, event(EventKind.ACCOUNT, "coin_adopted", now, market, volume=volume,
                                    more=side == Side.BID, price_krw=price, position_volume=held))
        except Exception:
            portfolio.restore(saved)
            raise


def _insert_fill(conn, fill: Fill) -> None:
    conn.execute(fills.insert().values(
        order_identifier=fill.identifier, market=fill.market, side=fill.side, price_krw=fill.price_krw,
        volume=fill.volume, funds_krw=fill.funds_krw, fee_krw=fill.fee_krw, filled_at=to_db_time(fill.at)))
