"""What can users ask and order? The one command service behind the console chat and Telegram.

`CommandService.handle(text, caller)` parses a command line and returns plain data (a view, a
notice or a problem); bot/views.py turns it into text. Bad arguments give a Problem naming the
right form; control commands need an admin and are written to the audit log.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import select

from core.service import reports
from core.data.markets import InvalidMarket, parse_market
from core.service.agent import Agent, Caller
from core.storage.database import from_db_time
from core.storage.schema import equity_snapshots, signals
from core.trading.parameters import warning_for, with_unit
from core.trading.types import RiskSettings, StepResult


@dataclass(frozen=True)
class CommandSpec:
    name: str
    usage: str
    summary: str
    admin: bool = False


COMMANDS = (
    CommandSpec("help", "/help", "this list"),
    CommandSpec("status", "/status", "mode, paused or not, last cycle, markets, open positions"),
    CommandSpec("positions", "/positions", "open positions with unrealised P/L"),
    CommandSpec("balance", "/balance", "cash, positions and equity in KRW"),
    CommandSpec("profit", "/profit [days]", "realised profit and equity change (all time, or the last N days)"),
    CommandSpec("signals", "/signals", "the latest model signal per market and what the engine did with it"),
    CommandSpec("daily", "/daily [days]", "equity and result day by day (default the last 7 days)"),
    CommandSpec("model", "/model", "model per market: version, training data, validation metrics"),
    CommandSpec("chart", "/chart <market>", "picture of recent candles with signals, entries and exits"),
    CommandSpec("equity", "/equity", "picture of the equity curve with drawdown"),
    CommandSpec("settings", "/settings", "thresholds and risk parameters in force"),
    CommandSpec("pause", "/pause", "stop opening positions (exits and emergency sells still run)", True),
    CommandSpec("resume", "/resume", "open positions again", True),
    CommandSpec("threshold", "/threshold buy|sell|emergency <0..1>", "set a signal threshold", True),
    CommandSpec("set", "/set <parameter> <value>", "set a risk parameter (see /settings)", True),
    CommandSpec("sell", "/sell <market>", "sell a whole position now, e.g. /sell KRW-BTC", True),
    CommandSpec("sellall", "/sellall", "sell every open position now", True),
    CommandSpec("markets", "/markets [add|remove <market>]", "list, add or remove a watched market", True),
)
SPECS = {spec.name: spec for spec in COMMANDS}
THRESHOLDS = {"buy": "buy_threshold", "sell": "sell_threshold", "emergency": "emergency_threshold"}


@dataclass(frozen=True)
class Problem:
    text: str


@dataclass(frozen=True)
class Notice:
    text: str


@dataclass(frozen=True)
class HelpView:
    commands: tuple[CommandSpec, ...]


@dataclass(frozen=True)
class PositionView:
    market: str
    volume: float
    avg_price_krw: float
    price_krw: float
    value_krw: float
    pnl_krw: float  # if sold now at the latest price, after the sale fee, against the entry cost with its fee
    pnl_ratio: float
    opened_at: datetime


@dataclass(frozen=True)
class StatusView:
    mode: str
    paused: bool
    now: datetime | None
    last_cycle_seconds: float | None
    next_cycle_at: datetime | None
    markets: tuple[str, ...]
    positions: tuple[PositionView, ...]
    cash_krw: float
    equity_krw: float


@dataclass(frozen=True)
class PositionsView:
    positions: tuple[PositionView, ...]


@dataclass(frozen=True)
class BalanceView:
    cash_krw: float
    positions_krw: float
    equity_krw: float
    principal_krw: float
    fees_krw: float

    @property
    def total_return(self) -> float:
        return self.equity_krw / self.principal_krw - 1.0


@dataclass(frozen=True)
class ProfitView:
    days: int | None
    trades: int
    wins: int
    realised_krw: float
    best: float | None
    worst: float | None
    equity_start_krw: float
    equity_now_krw: float


@dataclass(frozen=True)
class SignalRow:
    market: str
    candle_at: datetime
    action: str
    buy: float
    hold: float
    sell: float
    confidence: float
    emergency_score: float
    decision: str | None
    reason: str | None


@dataclass(frozen=True)
class SignalsView:
    rows: tuple[SignalRow, ...]
    waiting: tuple[tuple[str, str], ...]  # (market, why it has no signal now)


@dataclass(frozen=True)
class SettingsView:
    risk: RiskSettings


@dataclass(frozen=True)
class Confirm:
    """Ask before doing it: `command` is what to run once the user agrees."""

    question: str
    command: str


@dataclass(frozen=True)
class SaleView:
    results: tuple[StepResult, ...]


def parse_command(text: str) -> tuple[str, list[str]] | None:
    """'/threshold@my_bot buy 0.6' -> ('threshold', ['buy', '0.6']); None if it is not a command."""
    parts = text.strip().split()
    if not parts or not parts[0].startswith("/") or len(parts[0]) < 2:
        return None
    return parts[0][1:].split("@", 1)[0].lower(), parts[1:]


class CommandService:
    def __init__(self, agent: Agent):
        self.agent = agent
        self._handlers: dict[str, Callable[[list[str], Caller], object]] = {
            name: getattr(self, f"cmd_{name}") for name in SPECS}

    def handle(self, text: str, caller: Caller, confirmed: bool = True):
        """`confirmed=False` (Telegram) makes a sale answer with a Confirm to ask first, once its
        arguments have been checked; the console sells at once."""
        self._confirmed = confirmed
        parsed = parse_command(text)
        if parsed is None:
            return Problem("commands start with /, e.g. /status; /help lists them")
        name, args = parsed
        spec = SPECS.get(name)
        if spec is None:
            return Problem(f"unknown command /{name}; /help lists them")
        if spec.admin and not caller.is_admin:
            self.agent.refuse(caller, name, "refused: not an admin")
            return Problem(f"/{name} is for admins only")
        try:
            return self._handlers[name](args, caller)
        except UsageError as exc:
            return Problem(f"{exc}; usage: {spec.usage}")

    # queries
    def cmd_help(self, args, caller):
        return HelpView(tuple(s for s in COMMANDS if caller.is_admin or not s.admin))

    def cmd_status(self, args, caller):
        a = self.agent
        return StatusView(a.mode, a.risk.paused, a.now, a.last_cycle_seconds, a.next_cycle_at, a.markets,
                          self._positions(), a.portfolio.cash_krw, a.portfolio.equity(a.prices))

    def cmd_positions(self, args, caller):
        return PositionsView(self._positions())

    def cmd_balance(self, args, caller):
        p, prices = self.agent.portfolio, self.agent.prices
        equity = p.equity(prices)
        return BalanceView(p.cash_krw, equity - p.cash_krw, equity, p.principal_krw, p.fees_krw)

    def cmd_profit(self, args, caller):
        days = _days(args, default=None)
        p, now = self.agent.portfolio, self.agent.clock()
        since = now - timedelta(days=days) if days else None
        trades = [t for t in p.trades if since is None or t.closed_at >= since]
        returns = [t.return_ratio for t in trades]
        start = p.principal_krw
        if since is not None:
            query = select(equity_snapshots.c.equity_krw).where(equity_snapshots.c.at >= since).order_by(
                equity_snapshots.c.at).limit(1)
            with self.agent.db.connect() as conn:
                first = conn.execute(query).scalar()
            start = float(first) if first is not None else p.equity(self.agent.prices)
        return ProfitView(days, len(trades), sum(r > 0 for r in returns),
                          sum(t.proceeds_krw - t.cost_krw for t in trades), max(returns, default=None),
                          min(returns, default=None), start, p.equity(self.agent.prices))

    def cmd_signals(self, args, caller):
        rows, waiting = [], []
        with self.agent.db.connect() as conn:
            for market in self.agent.markets:
                r = conn.execute(select(signals).where(signals.c.market == market)
                                 .order_by(signals.c.candle_at.desc()).limit(1)).first()
                if market in self.agent.no_signal or r is None:
                    waiting.append((market, self.agent.no_signal.get(market, "no cycle has judged it yet")))
                if r is not None:
                    rows.append(SignalRow(market, from_db_time(r.candle_at), r.action, r.buy_probability,
                                          r.hold_probability, r.sell_probability, r.confidence, r.emergency_score,
                                          r.decision_action, r.decision_reason))
        return SignalsView(tuple(rows), tuple(waiting))

    def cmd_daily(self, args, caller):
        days = _days(args, default=7)
        return reports.daily(self.agent.db, self.agent.portfolio.trades, self.agent.portfolio.principal_krw, days)

    def cmd_model(self, args, caller):
        if self.agent.manager is None:
            return Problem("no model information in this mode")
        return reports.models(self.agent.manager, self.agent.markets)

    def cmd_markets(self, args, caller):
        if not args:
            return Notice("Watching: " + ", ".join(self.agent.markets))
        if len(args) != 2 or args[0].lower() not in ("add", "remove"):
            raise UsageError("expected add or remove and a market")
        try:
            market = parse_market(args[1])
        except InvalidMarket as exc:
            raise UsageError(str(exc)) from None
        try:
            markets = self.agent.change_markets(args[0].lower(), market, caller)
        except ValueError as exc:
            return Problem(str(exc))
        return Notice(f"Watching: {', '.join(markets)}")

    def cmd_chart(self, args, caller):
        if len(args) != 1:
            raise UsageError("expected one market")
        try:
            market = parse_market(args[0])
        except InvalidMarket as exc:
            raise UsageError(str(exc)) from None
        try:
            return reports.chart_data(self.agent.db, self.agent.cycle.feed, market, self.agent.clock())
        except Exception as exc:  # a source that times out or knows no such market
            return Problem(f"no chart for {market}: {exc}")

    def cmd_equity(self, args, caller):
        data = reports.equity_data(self.agent.db, self.agent.cycle.feed, self.agent.markets, self.agent.clock())
        if len(data.times) < 2:
            return Problem("not enough cycles yet for an equity curve")
        return data

    def cmd_settings(self, args, caller):
        return SettingsView(self.agent.risk)

    # control
    def cmd_pause(self, args, caller):
        if self.agent.risk.paused:
            return Notice("Trading is already paused.")
        self.agent.change_settings(_with(self.agent.risk, paused=True), caller, "pause")
        return Notice("Trading paused: no new positions. Stop-loss, take-profit and emergency sells still run.")

    def cmd_resume(self, args, caller):
        if not self.agent.risk.paused:
            return Notice("Trading is not paused.")
        self.agent.change_settings(_with(self.agent.risk, paused=False), caller, "resume")
        return Notice("Trading resumed: new positions may open.")

    def cmd_threshold(self, args, caller):
        if len(args) != 2 or args[0].lower() not in THRESHOLDS:
            raise UsageError("expected which threshold and a value")
        return self._set(THRESHOLDS[args[0].lower()], args[1], caller, "threshold")

    def cmd_set(self, args, caller):
        if len(args) != 2:
            names = ", ".join(f.name for f in fields(RiskSettings) if f.name != "paused")
            raise UsageError(f"expected a parameter and a value; parameters: {names}")
        return self._set(args[0].lower(), args[1], caller, "set")

    def cmd_sell(self, args, caller):
        if len(args) != 1:
            raise UsageError("expected one market")
        try:
            market = parse_market(args[0])
        except InvalidMarket as exc:
            raise UsageError(str(exc)) from None
        if market not in self.agent.portfolio.positions:
            return Problem(f"no open position in {market}")
        if not self._confirmed:
            return Confirm(f"Sell the whole {market} position now at market price?", f"/sell {market}")
        return SaleView((self.agent.sell(market, caller, "sell"),))

    def cmd_sellall(self, args, caller):
        if args:
            raise UsageError("takes no arguments")
        markets = list(self.agent.portfolio.positions)
        if not markets:
            return Notice("No open positions to sell.")
        if not self._confirmed:
            return Confirm(f"Sell every open position now ({', '.join(sorted(markets))})?", "/sellall")
        return SaleView(tuple(self.agent.sell(m, caller, "sellall") for m in markets))

    def _set(self, name: str, value: str, caller: Caller, command: str):
        try:
            new = self.agent.risk.with_value(name, value)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        old = getattr(self.agent.risk, name)
        if not self.agent.change_settings(new, caller, command):
            return Notice(f"{name} is already {with_unit(name, old)}.")
        text = f"{name} set to {with_unit(name, getattr(new, name))} (was {with_unit(name, old)})."
        warning = warning_for(name, getattr(new, name))
        return Notice(text + (f"\nWarning: {warning}." if warning else ""))

    def _positions(self) -> tuple[PositionView, ...]:
        p, prices = self.agent.portfolio, self.agent.prices
        views = []
        for market, pos in sorted(p.positions.items()):
            price = prices.get(market, pos.avg_price_krw)
            value = pos.value_krw(price)
            cost = p.entry_cost_krw.get(market, pos.cost_krw)
            net = value * (1 - self.agent.cycle.exchange.rules.fee_rate)
            views.append(PositionView(market, pos.volume, pos.avg_price_krw, price, value, net - cost,
                                      net / cost - 1.0 if cost else 0.0, pos.opened_at))
        return tuple(views)


class UsageError(ValueError):
    """Bad arguments: the reply names the right form."""


def _days(args: list[str], default: int | None) -> int | None:
    if not args:
        return default
    if len(args) > 1 or not args[0].isdigit() or not 1 <= int(args[0]) <= 3650:
        raise UsageError(f"days must be a whole number from 1 to 3650, got {' '.join(args)!r}")
    return int(args[0])


def _with(risk: RiskSettings, **changes) -> RiskSettings:
    return replace(risk, **changes)
