"""`autotrader run --replay`: the agent over historical candles with the console chat, then a summary."""
from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Sequence, TextIO

from bot.console import ConsoleChat
from bot.views import krw, when
from core.service.commands import CommandService
from core.service.replay import Replay, open_replay, pacer, replay_database
from core.storage.outbox import enqueue_now
from core.trading.backtest import BacktestResult
from core.trading.events import Event
from core.trading.types import RiskSettings


def run_replay_console(data_dir: Path, markets: Sequence[str], manager, *, db_url: str | None, speed: float,
                       interval: str, interval_seconds: int, start_krw: float, defaults: RiskSettings,
                       slippage: float, stdin: TextIO = sys.stdin, out: TextIO = sys.stdout) -> BacktestResult:
    db = replay_database(db_url)
    try:
        replay = open_replay(data_dir, markets, manager, db, interval=interval, interval_seconds=interval_seconds,
                             start_krw=start_krw, defaults=defaults, slippage=slippage)
        return _drive(replay, data_dir, speed, stdin, out)
    finally:
        db.dispose()


def _drive(replay: Replay, data_dir: Path, speed: float, stdin: TextIO, out: TextIO) -> BacktestResult:
    agent = replay.agent
    chat = ConsoleChat(CommandService(agent), out, echo=not stdin.isatty())
    first, last = replay.ticks[0].to_pydatetime(), replay.ticks[-1].to_pydatetime()
    pace = "as fast as possible" if speed <= 0 else f"{speed:g} candles per second"
    chat.print(f"Replaying {', '.join(agent.markets)} from {data_dir}: {when(first)} .. {when(last)}, "
               f"{len(replay.ticks)} candle closes, {pace}; paper wallet {krw(replay.start_krw)}.")
    chat.print("Type /help for commands. Alerts appear as they happen; a summary follows the last candle.")
    enqueue_now(agent.db, Event("system", f"Agent started in {agent.mode} mode on {', '.join(agent.markets)}", first))
    chat.listen(stdin)
    wait = pacer(speed)
    day = [first.date()]

    def after_tick(i: int, now: datetime) -> None:
        chat.flush_alerts(now)
        chat.pump()
        if now.date() != day[0]:  # one status line per simulated day
            day[0] = now.date()
            p = agent.portfolio
            chat.print(f"{when(now)}  equity {krw(p.equity(agent.prices))}  open positions {len(p.positions)}"
                       + ("  (paused)" if agent.risk.paused else ""))
        wait(i)

    result = replay.run(after_tick)
    enqueue_now(agent.db, Event("system", "Replay finished: end of the data", last))
    chat.flush_alerts(last)
    chat.pump()
    return result
