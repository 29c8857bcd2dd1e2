"""What does the account hold after a restart? The books rebuilt from what was stored.

Cash is every stored cash flow (the paper wallet's funding, the live account's KRW adopted at the
first reconciliation, deposits and withdrawals found later) plus every fill; positions come from the
fills; the trading day resumes from its stored starting equity. Nothing is taken from the exchange
here: a restart whose books equal the account has nothing to adopt and nothing to announce.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection, Engine

from core.storage.database import from_db_time, to_db_time
from core.storage.schema import cash_flows, fills, orders, positions, trading_days
from core.trading.portfolio import Portfolio
from core.trading.types import DecisionKind, Fill, Side

FUNDING, DEPOSIT, WITHDRAWAL = "funding", "deposit", "withdrawal"


@dataclass(frozen=True)
class CashFlow:
    at: datetime
    amount_krw: float  # positive: money in
    kind: str  # funding | deposit | withdrawal
    reason: str


def stored_fills(engine: Engine) -> list[tuple[Fill, str]]:
    """Every fill with the kind of the order that caused it, in the order they happened."""
    query = (select(fills, orders.c.kind).join(orders, orders.c.identifier == fills.c.order_identifier)
             .order_by(fills.c.id))
    with engine.connect() as conn:
        return [(Fill(market=r.market, side=Side(r.side), identifier=r.order_identifier, price_krw=float(r.price_krw),
                      volume=float(r.volume), fee_krw=float(r.fee_krw), funds_krw=float(r.funds_krw),
                      at=from_db_time(r.filled_at)), DecisionKind(r.kind)) for r in conn.execute(query)]


def stored_cash_flows(engine: Engine) -> list[CashFlow]:
    with engine.connect() as conn:
        return [CashFlow(from_db_time(r.at), float(r.amount_krw), r.kind, r.reason)
                for r in conn.execute(select(cash_flows).order_by(cash_flows.c.id))]


def has_cash_flows(conn: Connection) -> bool:
    return bool(conn.execute(select(func.count()).select_from(cash_flows)).scalar())


def record_cash_flow(conn: Connection, flow: CashFlow) -> None:
    conn.execute(cash_flows.insert().values(at=to_db_time(flow.at), amount_krw=flow.amount_krw, kind=flow.kind,
                                            reason=flow.reason))


def save_trading_day(conn: Connection, portfolio: Portfolio, at: datetime) -> None:
    """The day's starting equity as the portfolio holds it now (a new day, or one moved by a cash flow)."""
    if portfolio.day is None:
        return
    conn.execute(delete(trading_days).where(trading_days.c.day == portfolio.day))
    conn.execute(trading_days.insert().values(day=portfolio.day, start_equity_krw=portfolio.day_start_equity_krw,
                                              updated_at=to_db_time(at)))


def fund_paper_account(engine: Engine, start_krw: float, at: datetime) -> float:
    """The paper wallet's funding: `start_krw` the first time, recorded as a cash flow; afterwards the
    stored flows decide (a changed PAPER_START_KRW does not rewrite a history). Returns their total."""
    with engine.begin() as conn:
        if not has_cash_flows(conn):
            record_cash_flow(conn, CashFlow(at, float(start_krw), FUNDING, "paper wallet opened (PAPER_START_KRW)"))
        return float(conn.execute(select(func.sum(cash_flows.c.amount_krw))).scalar() or 0.0)


def load_books(engine: Engine, exchange=None) -> Portfolio:
    """The portfolio as the stored cash flows and fills leave it (and the paper wallet, if given,
    booked the same way), with the trailing-stop peaks and the latest trading day it stored."""
    portfolio = Portfolio(0.0, 0.0)
    for flow in stored_cash_flows(engine):
        portfolio.add_cash_flow(flow.amount_krw)
        if exchange is not None:
            exchange.deposit(flow.amount_krw)
    for fill, kind in stored_fills(engine):
        portfolio.apply(fill, kind)
        if exchange is not None:
            exchange.book(fill)
    with engine.connect() as conn:
        for row in conn.execute(select(positions)):
            position = portfolio.positions.get(row.market)
            if position is not None:
                portfolio.positions[row.market] = replace(position, peak_price_krw=float(row.peak_price_krw),
                                                          renewed_at=from_db_time(row.renewed_at) or position.renewed_at)
        day = conn.execute(select(trading_days).order_by(trading_days.c.day.desc()).limit(1)).first()
    if day is not None:
        portfolio.day, portfolio.day_start_equity_krw = day.day, float(day.start_equity_krw)
    return portfolio
