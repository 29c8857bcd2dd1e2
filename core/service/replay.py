"""`autotrader run --replay`: the agent over historical candles on a simulated clock.

The same feed, cycle, engine and paper exchange as a backtest, plus what a running agent has: a
database journal, persisted settings, commands between candles and alerts. A replay is a simulation,
so it writes to a database of its own that must start empty; it never mixes with a real account.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.engine import Engine, make_url

from core.service.agent import Agent
from core.storage.books import fund_paper_account
from core.storage.database import open_database
from core.storage.journal import Journal
from core.storage.schema import fills, signals
from core.trading.backtest import BacktestResult, Simulation, prepare
from core.trading.cycle import TradingCycle
from core.trading.paper import PaperExchange
from core.trading.portfolio import Portfolio
from core.trading.types import RiskSettings
from core.trading.watchlist import Watchlist

DEFAULT_REPLAY_DB = "replay.db"


class ReplayDatabaseError(ValueError):
    """The replay database already holds a history."""


def replay_database(url: str | None) -> Engine:
    """An empty, migrated database for a replay: the default SQLite file is recreated each time; any
    other URL must not hold signals or fills already (a replay never writes into a real history)."""
    if url is None:
        path = Path(DEFAULT_REPLAY_DB)
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    engine = open_database(url)
    with engine.connect() as conn:
        used = conn.execute(select(func.count()).select_from(signals)).scalar() + \
            conn.execute(select(func.count()).select_from(fills)).scalar()
    if used:
        engine.dispose()
        shown = make_url(url).render_as_string(hide_password=True)
        raise ReplayDatabaseError(f"{shown} already holds {used} signal/fill rows; a replay needs an empty database")
    return engine


@dataclass
class Replay:
    agent: Agent
    series: dict[str, pd.DataFrame]
    ticks: pd.DatetimeIndex
    start_krw: float
    interval_seconds: int
    data_dir: Path | None = None

    def run(self, after_tick: Callable[[int, datetime], None] | None = None) -> BacktestResult:
        return self.simulation().run(after_tick)

    def simulation(self) -> Simulation:
        """Step by step, for drivers that tick on a timer (the Telegram bot's job queue)."""
        def run_cycle(now: datetime):
            results = self.agent.run_cycle(now)
            later = self.ticks[self.ticks > pd.Timestamp(now)]
            self.agent.next_cycle_at = later[0].to_pydatetime() if len(later) else None
            return results

        return Simulation(self.ticks, run_cycle, self.agent.cycle, self.series, self.start_krw, self.interval_seconds,
                          changes=lambda: list(self.agent.changes))


def open_replay(data_dir: Path, markets: Sequence[str], manager, db: Engine, *, interval: str = "1h",
                interval_seconds: int = 3600, start_krw: float = 1_000_000, defaults: RiskSettings = RiskSettings(),
                slippage: float = 0.0005, new_identifier: Callable[[], str] = lambda: uuid.uuid4().hex) -> Replay:
    series, feed, ticks = prepare(data_dir, markets, manager, interval, interval_seconds)
    fund_paper_account(db, start_krw, ticks[0].to_pydatetime())  # the replay's books rebuild like an account's
    cycle = TradingCycle(feed, PaperExchange(start_krw, slippage), Portfolio(start_krw, start_krw),
                         recorder=Journal(db), new_identifier=new_identifier)
    agent = Agent(mode="paper (replay)", watchlist=Watchlist(markets, fixed=True), interval=interval, cycle=cycle,
                  db=db, defaults=defaults, manager=manager)
    return Replay(agent, series, ticks, start_krw, interval_seconds, Path(data_dir))


def pacer(speed: float, clock: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], None] = time.sleep) -> Callable[[int], None]:
    """Hold tick i until i / speed seconds after the first; speed 0 means as fast as possible."""
    started = clock()

    def wait(i: int) -> None:
        if speed > 0:
            delay = started + (i + 1) / speed - clock()
            if delay > 0:
                sleep(delay)

    return wait
