"""The commands about closed trades and periods: /trades, /performance, /weekly, /monthly.

Round trips come from the books (every fill since the account began, core.storage.books); P/L is
after both fees. Periods are UTC days, Monday-started weeks and calendar months.
"""
from __future__ import annotations

from dataclasses import dataclass

from core.i18n import N_, _
from core.service import reports
from core.service.registry import Arg, UsageError, command
from core.trading.types import ClosedTrade


def count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 500:
        raise UsageError(_("expected a whole number from 1 to 500, got {text!r}").format(text=text[:64]))
    return int(text)


@dataclass(frozen=True)
class TradesView:
    trades: tuple[ClosedTrade, ...]  # newest first
    total: int  # closed trades in all


@dataclass(frozen=True)
class MarketPerformance:
    market: str
    trades: int
    wins: int
    realised_krw: float
    mean_return: float


@dataclass(frozen=True)
class PerformanceView:
    rows: tuple[MarketPerformance, ...]  # best first


@command("trades", N_("/trades [n]"), N_("the last n closed trades (default 10): entry, exit, reason, P/L after fees"),
         args=(Arg("n", count, optional=True),))
def trades(ctx, n: int = 10):
    closed = ctx.agent.portfolio.trades
    return TradesView(tuple(reversed(closed[-n:])), len(closed))


def performance_rows(closed) -> tuple[MarketPerformance, ...]:
    by_market: dict[str, list[ClosedTrade]] = {}
    for t in closed:
        by_market.setdefault(t.market, []).append(t)
    rows = [MarketPerformance(m, len(ts), sum(t.return_ratio > 0 for t in ts),
                              sum(t.proceeds_krw - t.cost_krw for t in ts), sum(t.return_ratio for t in ts) / len(ts))
            for m, ts in by_market.items()]
    return tuple(sorted(rows, key=lambda r: r.realised_krw, reverse=True))


@command("performance", "/performance", N_("realised profit per market, after fees"))
def performance(ctx):
    return PerformanceView(performance_rows(ctx.agent.portfolio.trades))


def periods(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 120:
        raise UsageError(_("expected a whole number of periods from 1 to 120, got {text!r}").format(text=text[:64]))
    return int(text)


@command("weekly", N_("/weekly [n]"), N_("equity and result week by week (default the last 4 weeks)"),
         args=(Arg("n", periods, optional=True),))
def weekly(ctx, n: int = 4):
    p = ctx.agent.portfolio
    return reports.daily(ctx.agent.db, p.trades, p.principal_krw, n, period="week")


@command("monthly", N_("/monthly [n]"), N_("equity and result month by month (default the last 6 months)"),
         args=(Arg("n", periods, optional=True),))
def monthly(ctx, n: int = 6):
    p = ctx.agent.portfolio
    return reports.daily(ctx.agent.db, p.trades, p.principal_krw, n, period="month")
