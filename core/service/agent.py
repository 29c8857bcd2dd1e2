"""The running agent: one trading cycle, its persisted settings and its state, whatever drives it.

The runtime holds one Agent, whatever drives it (console, Telegram, replay); commands reach it through
core.service.commands. A command and a cycle never run at once: the runtime runs both under one lock.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

from sqlalchemy.engine import Engine

from core.i18n import _
from core.service.defaults import chosen_defaults
from core.service.registry import Caller
from core.storage.outbox import enqueue
from core.storage.settings_store import (
    audit,
    load_risk_settings,
    save_markets,
    save_risk_settings,
)
from core.trading.cycle import TradingCycle
from core.trading.events import EventKind, event
from core.trading.reasons import Reason
from core.trading.types import RiskSettings, StepResult
from core.trading.watchlist import Watchlist


class Agent:
    def __init__(self, *, mode: str, watchlist: Watchlist, interval: str, cycle: TradingCycle, db: Engine,
                 defaults: RiskSettings = RiskSettings(), manager=None):
        self.mode = mode
        self.manager = manager  # the model manager, for /model
        self.watchlist = watchlist  # the feed and the reconciler read the same list
        self.interval = interval
        self.cycle = cycle
        self.db = db
        self.risk = load_risk_settings(db, defaults)
        self.now: datetime | None = None  # the clock of the latest cycle (simulated in replay)
        self.last_cycle_seconds: float | None = None
        self.next_cycle_at: datetime | None = None
        self.cycles = 0
        self.changes: list[tuple[datetime, str, str]] = []  # settings changed by command: (when, who, what)
        self.no_signal: dict[str, object] = {}  # market -> why its latest step had no signal (warming up, an error)

    @property
    def markets(self) -> tuple[str, ...]:
        return self.watchlist.markets

    @property
    def rules(self):
        """The exchange's trading rules: costs, minimum order, tick sizes."""
        return self.cycle.exchange.rules

    @property
    def model_defaults(self) -> dict:
        """What the model's walk-forward chose for the decision parameters ({} without a model)."""
        return chosen_defaults(self.manager.root) if self.manager is not None else {}

    @property
    def portfolio(self):
        return self.cycle.portfolio

    @property
    def prices(self) -> dict[str, float]:
        return self.cycle.prices

    def run_cycle(self, now: datetime) -> list[StepResult]:
        started = time.perf_counter()
        results = self.cycle.run(now, self.risk)
        for result in results:
            if result.signal is None:
                self.no_signal[result.market] = result.warming_up or result.error  # in words when shown
            else:
                self.no_signal.pop(result.market, None)
        self.now = now
        self.last_cycle_seconds = time.perf_counter() - started
        self.cycles += 1
        return results

    def change_settings(self, new: RiskSettings, caller: Caller, command: str) -> dict[str, object]:
        """Persist, audit and announce a settings change in one transaction; returns what changed."""
        at = self.clock()
        with self.db.begin() as conn:
            diff = save_risk_settings(conn, self.risk, new, at)
            detail = ", ".join(f"{k}={v}" for k, v in diff.items()) or "no change"
            audit(conn, at, caller.user_id, caller.source, command, detail, True)
            if diff:
                enqueue(conn, event(EventKind.SYSTEM, "settings_changed", at, by=str(caller),
                                    changes={k: (v.value if hasattr(v, "value") else v) for k, v in diff.items()}))
        self.risk = new
        if diff:
            self.changes.append((at, str(caller), detail))
        return diff

    def change_markets(self, action: str, market: str, caller: Caller) -> tuple[str, ...]:
        """Add or remove a watched market (persisted; wins over MARKETS at the next start)."""
        if self.watchlist.fixed:
            raise ValueError(_("the markets of a replay are those of its data and cannot change"))
        if action == "add":
            if market in self.markets:
                raise ValueError(_("already watching {market}").format(market=market))
            markets = self.markets + (market,)
        else:
            if market not in self.markets:
                raise ValueError(_("not watching {market}").format(market=market))
            if market in self.portfolio.positions:
                raise ValueError(_("{market} has an open position: sell it first (/sell {market})").format(market=market))
            markets = tuple(m for m in self.markets if m != market)
        at = self.clock()
        with self.db.begin() as conn:
            save_markets(conn, markets, at)
            audit(conn, at, caller.user_id, caller.source, "markets", f"{action} {market}", True)
            enqueue(conn, event(EventKind.SYSTEM, "markets_changed", at, by=str(caller), action=action, market=market,
                                markets=list(markets)))
        self.watchlist.replace(markets)
        return markets

    def refuse(self, caller: Caller, command: str, why: str) -> None:
        """Record a control command that was refused or failed."""
        with self.db.begin() as conn:
            audit(conn, self.clock(), caller.user_id, caller.source, command, why, False)

    def sell(self, market: str, caller: Caller, command: str) -> StepResult:
        result = self.cycle.sell_now(market, self.clock(), Reason("manual_sale", by=str(caller)))
        with self.db.begin() as conn:
            audit(conn, self.clock(), caller.user_id, caller.source, command,
                  result.error or f"sold {market}", result.error is None)
        return result

    def buy(self, market: str, amount_krw: float | None, caller: Caller) -> StepResult:
        """A buy by command, refused (ValueError, audited) by the same guards as the engine's buys."""
        if market not in self.markets:
            raise ValueError(_("not watching {market}: /markets add {market} first").format(market=market))
        try:
            result = self.cycle.buy_now(market, amount_krw, self.clock(), self.risk, str(caller))
        except ValueError as exc:
            self.refuse(caller, "buy", f"refused: {exc}")
            raise
        with self.db.begin() as conn:
            audit(conn, self.clock(), caller.user_id, caller.source, "buy",
                  result.error or f"bought {market} for {result.fill.funds_krw:,.0f} KRW", result.error is None)
        return result

    def clock(self) -> datetime:
        return self.now or datetime.now(timezone.utc)
