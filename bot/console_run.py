"""`autotrader run` without a Telegram token: the paper agent on live candles with the console chat.

One thread does everything in turn (cycle on each candle close or every CYCLE_SECONDS, the
price-shock guard every 30 s, commands typed on stdin, alerts printed), so nothing interleaves.
SIGTERM or Ctrl-C stops it between two steps.
"""
from __future__ import annotations

import signal
import sys
import time
from datetime import datetime, timezone
from typing import TextIO

from bot.console import ConsoleChat
from bot.runner import SHOCK_POLL_SECONDS, first_run
from core.service.agent import Agent
from core.service.commands import CommandService
from core.service.settings import Settings
from core.storage.outbox import enqueue_now
from core.trading.events import Event
from core.trading.shock import PriceShockGuard, sell_on_shock
from core.upbit.errors import UpbitError
from core.upbit.quotation import UpbitQuotationClient

TICK_SECONDS = 0.2


def run_console(settings: Settings, agent: Agent, stdin: TextIO = sys.stdin, out: TextIO = sys.stdout) -> None:
    chat = ConsoleChat(CommandService(agent), out, echo=not stdin.isatty())
    stop = []
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.append("SIGTERM"))
    now = datetime.now(timezone.utc)
    interval = settings.cycle_seconds or settings.interval_seconds
    next_cycle = now.timestamp() + min(1.0, settings.cycle_seconds) if settings.cycle_seconds else first_run(now, interval).timestamp()
    next_shock = now.timestamp() + SHOCK_POLL_SECONDS
    guard, tickers = PriceShockGuard(), UpbitQuotationClient(settings.upbit_api_url)
    agent.next_cycle_at = datetime.fromtimestamp(next_cycle, timezone.utc)
    chat.print(f"autotrader: {agent.mode} trading {', '.join(agent.markets)} on {settings.upbit_api_url} candles; first cycle "
               f"at {agent.next_cycle_at:%H:%M:%S} UTC. Type /help; Ctrl-C stops.")
    enqueue_now(agent.db, Event("system", f"autotrader started: {agent.mode} mode, {', '.join(agent.markets)}", now))
    chat.listen(stdin)
    try:
        while not stop:
            wall = time.time()
            if wall >= next_cycle:
                agent.run_cycle(datetime.now(timezone.utc))
                next_cycle += interval * max(1, int((wall - next_cycle) // interval) + 1)  # skip missed, no overlap
                agent.next_cycle_at = datetime.fromtimestamp(next_cycle, timezone.utc)
            if wall >= next_shock:
                next_shock = wall + SHOCK_POLL_SECONDS
                _guard(agent, guard, tickers, chat)
            chat.pump()
            chat.flush_alerts(datetime.now(timezone.utc))
            time.sleep(TICK_SECONDS)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        enqueue_now(agent.db, Event("system", "autotrader stopped", datetime.now(timezone.utc)))
        chat.flush_alerts(datetime.now(timezone.utc))


def _guard(agent: Agent, guard: PriceShockGuard, tickers: UpbitQuotationClient, chat: ConsoleChat) -> None:
    held = list(agent.portfolio.positions)
    if not held or not agent.risk.shock_windows:
        return
    try:
        prices = tickers.tickers(held)
    except UpbitError as exc:
        chat.print(f"price-shock guard could not read tickers: {exc}")
        return
    sell_on_shock(agent, guard, prices, datetime.now(timezone.utc))
