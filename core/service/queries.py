"""The commands that only read: status, positions, money, signals, models, pictures, health.

Each is declared once with `@command` (core.service.registry) and answers with plain data
(core.service.replies, core.service.reports); bot/views.py says it in words.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from core.i18n import N_, _
from core.data.markets import InvalidMarket, parse_market
from core.service import about, reports
from core.service.registry import Arg, Role, UsageError, command, commands_for
from core.service.replies import (
    BalanceView,
    HealthView,
    HelpView,
    PositionsView,
    PositionView,
    ProfitView,
    SettingsView,
    SignalRow,
    SignalsView,
    StatusView,
    VersionView,
)
from core.storage.database import from_db_time
from core.storage.schema import equity_snapshots, signals
from core.trading.engine import entry_bar


def market(text: str) -> str:
    try:
        return parse_market(text)
    except InvalidMarket:
        raise UsageError(_("invalid market {text!r}: expected QUOTE-BASE such as KRW-BTC").format(text=text[:64])) \
            from None


def days(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 3650:
        raise UsageError(_("days must be a whole number from 1 to 3650, got {text!r}").format(text=text[:64]))
    return int(text)


def positions(agent) -> tuple[PositionView, ...]:
    p, prices = agent.portfolio, agent.prices
    fee = agent.cycle.exchange.rules.fee_rate
    views = []
    for name, pos in sorted(p.positions.items()):
        price = prices.get(name, pos.avg_price_krw)
        value = pos.value_krw(price)
        cost = p.entry_cost_krw.get(name, pos.cost_krw)
        net = value * (1 - fee)  # if sold now at the latest price, after the sale fee
        views.append(PositionView(name, pos.volume, pos.avg_price_krw, price, value, net - cost,
                                  net / cost - 1.0 if cost else 0.0, pos.opened_at))
    return tuple(views)


@command("help", "/help", N_("this list"))
def help_(ctx):
    listed = commands_for(ctx.caller.source, ctx.caller.role)
    return HelpView(tuple(sorted(listed, key=lambda c: c.role == Role.ADMIN)))


@command("status", "/status", N_("mode, paused or not, last cycle, markets, open positions, market data"))
def status(ctx):
    a = ctx.agent
    return StatusView(a.mode, a.risk.paused, a.now, a.last_cycle_seconds, a.next_cycle_at, a.markets,
                      positions(a), a.portfolio.cash_krw, a.portfolio.equity(a.prices), ctx.service.health())


@command("positions", "/positions", N_("open positions with unrealised P/L"))
def positions_(ctx):
    return PositionsView(positions(ctx.agent))


@command("balance", "/balance", N_("cash, positions and equity in KRW"))
def balance(ctx):
    p, prices = ctx.agent.portfolio, ctx.agent.prices
    equity = p.equity(prices)
    return BalanceView(p.cash_krw, equity - p.cash_krw, equity, p.principal_krw, p.fees_krw)


@command("profit", N_("/profit [days]"), N_("realised profit and equity change (all time, or the last N days)"),
         args=(Arg("days", days, optional=True),))
def profit(ctx, period: int | None = None):
    agent = ctx.agent
    p, now = agent.portfolio, agent.clock()
    since = now - timedelta(days=period) if period else None
    trades = [t for t in p.trades if since is None or t.closed_at >= since]
    returns = [t.return_ratio for t in trades]
    start = p.principal_krw
    if since is not None:
        query = select(equity_snapshots.c.equity_krw).where(equity_snapshots.c.at >= since).order_by(
            equity_snapshots.c.at).limit(1)
        with agent.db.connect() as conn:
            first = conn.execute(query).scalar()
        start = float(first) if first is not None else p.equity(agent.prices)
    return ProfitView(period, len(trades), sum(r > 0 for r in returns), sum(t.proceeds_krw - t.cost_krw for t in trades),
                      max(returns, default=None), min(returns, default=None), start, p.equity(agent.prices))


@command("signals", "/signals", N_("the latest model signal per market and what the engine did with it"))
def signals_(ctx):
    agent = ctx.agent
    rows, waiting = [], []
    with agent.db.connect() as conn:
        for name in agent.markets:
            r = conn.execute(select(signals).where(signals.c.market == name)
                             .order_by(signals.c.candle_at.desc()).limit(1)).first()
            if name in agent.no_signal or r is None:
                why = agent.no_signal.get(name)
                waiting.append((name, str(why) if why is not None else _("no cycle has judged it yet")))
            if r is not None:
                rows.append(SignalRow(name, from_db_time(r.candle_at), r.action, r.buy_probability,
                                      r.hold_probability, r.sell_probability, r.confidence, r.emergency_score,
                                      r.decision_action, r.decision_reason, r.expected_return,
                                      r.decision_reason_data))
    return SignalsView(tuple(rows), tuple(waiting), agent.risk.decision_rule, entry_bar(agent.risk, agent.rules))


@command("daily", N_("/daily [days]"), N_("equity and result day by day (default the last 7 days)"),
         args=(Arg("days", days, optional=True),))
def daily(ctx, period: int = 7):
    p = ctx.agent.portfolio
    return reports.daily(ctx.agent.db, p.trades, p.principal_krw, period)


@command("model", "/model", N_("the serving model version, its figures, and the latest challengers"))
def model(ctx):
    if ctx.agent.manager is None:
        raise ValueError(_("no model information in this mode"))
    models = getattr(ctx.service, "models", None)
    return reports.models(ctx.agent.manager, ctx.agent.markets, models.view() if models is not None else None)


@command("chart", N_("/chart <market>"), N_("picture of recent candles with signals, entries and exits"),
         args=(Arg("market", market),))
def chart(ctx, name: str):
    try:
        return reports.chart_data(ctx.agent.db, ctx.agent.cycle.feed, name, ctx.agent.clock())
    except Exception as exc:  # a source that times out or knows no such market
        raise ValueError(_("no chart for {market}: {error}").format(market=name, error=exc)) from None


@command("equity", "/equity", N_("picture of the equity curve with drawdown, beside buy-and-hold"))
def equity(ctx):
    agent = ctx.agent
    data = reports.equity_data(agent.db, agent.cycle.feed, agent.markets, agent.clock())
    if len(data.times) < 2:
        raise ValueError(_("not enough cycles yet for an equity curve"))
    return data


@command("settings", "/settings", N_("thresholds and risk parameters in force"))
def settings(ctx):
    agent = ctx.agent
    return SettingsView(agent.risk, tuple(agent.model_defaults.items()), entry_bar(agent.risk, agent.rules),
                        agent.rules.round_trip_cost)


@command("health", "/health", N_("last cycle, market data and Telegram contact, uptime, version, mode"))
def health(ctx):
    a = ctx.agent
    return HealthView(a.mode, about.version(), ctx.service.started_at, datetime.now(timezone.utc), a.now,
                      a.last_cycle_seconds, ctx.service.health())


@command("version", "/version", N_("the running version, its mode and Python"))
def version(ctx):
    return VersionView(about.version(), ctx.agent.mode, about.python())
