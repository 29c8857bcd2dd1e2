"""The price-shock guard on Upbit's trade stream, live mode: from a crossing trade frame leaving the
local stream server to the sell order's POST reaching the local fake exchange (both on 127.0.0.1)."""
from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.stats import Figure
from core.runtime.runtime import Runtime
from core.service.agent import Agent
from core.service.commands import CommandService
from core.service.reconcile import Reconciler
from core.service.settings import Settings
from core.storage.books import load_books
from core.storage.database import open_database
from core.storage.journal import Journal
from core.trading.cycle import TradingCycle
from core.trading.types import RiskSettings
from core.trading.watchlist import Watchlist
from core.upbit.exchange import UpbitExchange
from core.upbit.exchange_api import UpbitExchangeAPI
from tests.fakes.feeds import BUY, ScriptedFeed
from tests.fakes.upbit_exchange import LIVE_PRICE, FakeExchangeBook
from tests.fakes.upbit_server import FakeUpbit
from tests.fakes.upbit_stream import FakeUpbitStream


def stream_figures(samples: int = 20) -> list[Figure]:
    book = FakeExchangeBook(lambda market: LIVE_PRICE, krw=10_000_000)
    arrived: list[float] = []
    place = book._place

    def timed_place(params, *args, **kwargs):
        if params.get("side") == "ask":
            arrived.append(time.perf_counter())
        return place(params, *args, **kwargs)

    book._place = timed_place
    feed = ScriptedFeed()  # candle times after the wall clock: each sale (at wall time) precedes the next buy
    base = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    times = [base + timedelta(hours=i) for i in range(samples)]
    for at in times:
        feed.script.setdefault(at, {})["KRW-BTC"] = (BUY, LIVE_PRICE)
    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, FakeUpbit({}, exchange=book) as server, FakeUpbitStream() as stream:
        db = open_database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        api = UpbitExchangeAPI(server.url, book.access_key, book.secret_key, timeout=2.0)
        exchange = UpbitExchange(api, settle_seconds=1.0, poll_seconds=0.01)
        watchlist = Watchlist(["KRW-BTC"])
        cycle = TradingCycle(feed, exchange, load_books(db), recorder=Journal(db),
                             reconciler=Reconciler(db, exchange, watchlist))
        # each sample buys again right after the last sale: no cooldown, no losing-streak or daily-loss halt
        agent = Agent(mode="live", watchlist=watchlist, interval="1h", cycle=cycle, db=db,
                      defaults=RiskSettings(cooldown_hours=0, max_consecutive_losses=10_000, daily_loss_limit=1.0))
        runtime = Runtime(settings=Settings(), service=CommandService(agent), stream_url=stream.url)

        async def measure() -> None:
            stopped = asyncio.Event()
            streaming = asyncio.create_task(runtime.stream_forever(stopped.is_set, refresh_seconds=0.05))
            for at in times:
                async with runtime.lock:  # as the runtime runs its cycles: never beside a shock sale
                    await asyncio.to_thread(agent.run_cycle, at)  # buys KRW-BTC again
                while stream.subscribed() != {"KRW-BTC"} or not runtime.stream.up:
                    await asyncio.sleep(0.01)
                now = datetime.now(timezone.utc)
                await asyncio.to_thread(stream.trade, "KRW-BTC", LIVE_PRICE, now)  # the peak
                await asyncio.sleep(0.05)
                before = len(arrived)
                sent = time.perf_counter()
                await asyncio.to_thread(stream.trade, "KRW-BTC", LIVE_PRICE * 0.96, now + timedelta(seconds=1))
                deadline = time.perf_counter() + 10
                while len(arrived) == before and time.perf_counter() < deadline:
                    await asyncio.sleep(0.001)
                if len(arrived) > before:
                    latencies.append((arrived[before] - sent) * 1000)
                while "KRW-BTC" in agent.portfolio.positions and time.perf_counter() < deadline:
                    await asyncio.sleep(0.005)
            stopped.set()
            await asyncio.wait_for(streaming, 10)

        asyncio.run(measure())
        db.dispose()
    return [Figure("shock_stream_to_sell_post", tuple(latencies), "ms", "< 200 ms",
                   f"live mode, {len(latencies)} of {samples} falls sold; frame sent on 127.0.0.1 to the sell "
                   f"order's POST at the fake exchange")]
