"""What happened, for the record? The cycle's results written through the schema.

One transaction per market step: the signal with the engine's decision, the order, its fill, the
position as it now stands and the alerts the step raised are committed together or not at all.
core.storage.books rebuilds the portfolio and the paper wallet from them after a restart.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection, Engine

from core.redaction import redact
from core.storage.books import save_trading_day
from core.storage.database import from_db_time, to_db_time
from core.storage.outbox import enqueue
from core.storage.schema import equity_snapshots, fills, orders, positions, signals
from core.trading.events import Event, step_events
from core.trading.portfolio import Portfolio
from core.trading.reasons import reason_data


class Journal:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._last_error: dict[str, str] = {}  # market -> error already announced
        self._last_order_error: str | None = None  # the last order failure announced, for any market
        self._warming_told: set[str] = set()  # markets whose warm-up was announced (once each)

    def record_step(self, result, portfolio: Portfolio) -> list[Event]:
        """Store one market step atomically; returns the events queued for users."""
        events = [e for e in step_events(result) if not self._repeated(result, e)]
        with self.engine.begin() as conn:
            self.write_step(conn, result, portfolio, events)
        self._remember(result)
        return events

    def record_steps(self, results: list, portfolio: Portfolio) -> list[Event]:
        """Store many steps that placed no order (signals, decisions, skips) in one transaction: they
        change nothing but the record, so they need not be committed one by one."""
        for result in results:
            if result.order_id is not None or result.fill is not None:
                raise ValueError(f"{result.market}: a step with an order is stored on its own (record_step)")
        events = [e for r in results for e in step_events(r) if not self._repeated(r, e)]
        with self.engine.begin() as conn:
            rows = [signal_row(r) for r in results if r.signal is not None]
            if rows:
                conn.execute(signals.insert(), rows)
            for event in events:
                enqueue(conn, event)
        for result in results:
            self._remember(result)
        return events

    def _remember(self, result) -> None:
        if result.warming_up is not None:
            self._warming_told.add(result.market)
        if result.fill is not None:
            self._last_order_error = None
        if result.error is None:
            self._last_error.pop(result.market, None)
        elif result.decision is None or not result.decision.approved:
            self._last_error[result.market] = result.error
        elif result.order_state != "unknown":
            self._last_order_error = result.error

    def _repeated(self, result, event: Event) -> bool:
        """A market skipped for the same reason every candle is announced once, not every hour; a warm-up
        once per market; orders refused for the same reason (e.g. while Upbit blocks every request after
        a 418, the same text until the block ends) once until an order fills or fails otherwise."""
        if result.warming_up is not None:
            return result.market in self._warming_told
        if event.name == "order_failed" and result.order_state != "unknown":
            return result.error == self._last_order_error
        return event.kind == "error" and result.decision is None and self._last_error.get(result.market) == result.error

    def record_order(self, order, at: datetime) -> None:
        """An order about to be sent, committed first: if the process dies mid-send, reconciliation finds
        the row and asks the exchange what became of it."""
        with self.engine.begin() as conn:
            conn.execute(orders.insert().values(
                identifier=order.identifier, market=order.market, side=order.side, ord_type=order.ord_type,
                amount_krw=order.amount_krw, volume=order.volume, state="pending", reason="sent, no answer yet",
                kind=order.kind, candle_at=to_db_time(order.candle_at) if order.candle_at else None,
                created_at=to_db_time(at), updated_at=to_db_time(at)))

    def write_step(self, conn: Connection, result, portfolio: Portfolio, events: list[Event]) -> None:
        signal, decision, fill = result.signal, result.decision, result.fill
        if signal is not None:
            conn.execute(signals.insert().values(**signal_row(result)))
        if decision is not None and decision.approved and result.order_id is not None:
            at = to_db_time(result.at)
            values = dict(state="done" if fill is not None else (result.order_state or "failed"),
                          reason=redact(result.error or decision.reason), updated_at=at)
            if fill is not None:
                values.update(volume=fill.volume, amount_krw=fill.funds_krw if fill.side == "bid" else None)
            written = conn.execute(update(orders).where(orders.c.identifier == result.order_id).values(**values))
            if written.rowcount == 0:  # a cycle without record_order (tests of the journal alone)
                conn.execute(orders.insert().values(
                    identifier=result.order_id, market=result.market, side="bid" if decision.action == "BUY" else "ask",
                    ord_type="price" if decision.action == "BUY" else "market", kind=decision.kind,
                    candle_at=to_db_time(signal.timestamp) if signal is not None and signal.timestamp else None,
                    created_at=at, **values))
        if fill is not None:
            conn.execute(fills.insert().values(
                order_identifier=fill.identifier, market=fill.market, side=fill.side, price_krw=fill.price_krw,
                volume=fill.volume, funds_krw=fill.funds_krw, fee_krw=fill.fee_krw, filled_at=to_db_time(fill.at)))
            write_position(conn, portfolio, fill.market, result.at)
        for event in events:
            enqueue(conn, event)

    def record_events(self, events: list[Event]) -> None:
        with self.engine.begin() as conn:
            for event in events:
                enqueue(conn, event)

    def record_day(self, portfolio: Portfolio, at: datetime) -> None:
        """A trading day started: its starting equity, so that a restart keeps the daily-loss guard's reference."""
        with self.engine.begin() as conn:
            save_trading_day(conn, portfolio, at)

    def record_cycle(self, at: datetime, portfolio: Portfolio, prices: dict[str, float]) -> None:
        """The equity snapshot of a finished cycle, and the trailing-stop peaks the cycle moved."""
        with self.engine.begin() as conn:
            conn.execute(equity_snapshots.insert().values(
                at=to_db_time(at), cash_krw=portfolio.cash_krw, equity_krw=portfolio.equity(prices),
                open_positions=len(portfolio.positions)))
            for market, position in portfolio.positions.items():
                conn.execute(update(positions).where(positions.c.market == market).values(
                    peak_price_krw=position.peak_price_krw, updated_at=to_db_time(at),
                    renewed_at=to_db_time(position.renewed_at) if position.renewed_at else None))


def signal_row(result) -> dict:
    """The signals row of a step: what the model said and what the engine decided."""
    signal, decision = result.signal, result.decision
    return dict(
        market=result.market, candle_at=to_db_time(signal.timestamp or result.at),
        buy_probability=signal.buy_probability, sell_probability=signal.sell_probability,
        hold_probability=signal.hold_probability, confidence=signal.confidence,
        emergency_score=signal.emergency_score, expected_return=signal.expected_return, action=signal.action,
        model_id=signal.model_id, error=redact(signal.error) if signal.error else None, decision_action=decision.action if decision else None,
        decision_approved=decision.approved if decision else None,
        decision_reason=redact(decision.reason) if decision else None,
        decision_reason_data=reason_data(decision.reason) if decision else None)


def write_position(conn: Connection, portfolio: Portfolio, market: str, at: datetime) -> None:
    conn.execute(delete(positions).where(positions.c.market == market))
    position = portfolio.positions.get(market)
    if position is not None:
        conn.execute(positions.insert().values(
            market=market, volume=position.volume, avg_price_krw=position.avg_price_krw,
            cost_krw=portfolio.entry_cost_krw.get(market, position.cost_krw), peak_price_krw=position.peak_price_krw,
            opened_at=to_db_time(position.opened_at), updated_at=to_db_time(at),
            renewed_at=to_db_time(position.renewed_at) if position.renewed_at else None))


def last_candle_times(engine: Engine) -> dict[str, datetime]:
    """The newest candle each market has a stored signal or an order for: a restart does not judge it
    twice (an order sent just before a crash has no stored signal, but its candle was judged)."""
    judged: dict[str, datetime] = {}
    with engine.connect() as conn:
        for table in (signals, orders):
            query = (select(table.c.market, func.max(table.c.candle_at)).where(table.c.candle_at.is_not(None))
                     .group_by(table.c.market))
            for market, at in conn.execute(query):
                at = from_db_time(at)
                judged[market] = max(judged.get(market, at), at)
    return judged
