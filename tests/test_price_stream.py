"""Upbit's trade stream for the price-shock guard, against a local WebSocket server that speaks Upbit's
frames (tests/fakes/upbit_stream.py): frames read as Upbit sends them, a fall sold exactly once as it
arrives, re-subscription when the markets change or the line comes back, silence and drops noticed,
and the REST guard taking over while the stream is down."""
from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta, timezone

from core.runtime.runtime import Runtime
from core.service.commands import CommandService
from core.service.settings import Settings, load_settings
from core.storage.outbox import due
from core.upbit.stream import Trade, TradeStream, parse_frame, subscription
from tests.alerts import text
from tests.fakes.feeds import BUY, ScriptedFeed, hour
from tests.fakes.upbit_stream import FakeUpbitStream
from tests.test_agent import make_agent

PRICE = 100_000_000


def test_frames_are_read_as_upbit_sends_them():
    default = {"type": "trade", "code": "KRW-BTC", "trade_price": 101.5, "trade_timestamp": 1_700_000_000_000}
    simple = {"ty": "trade", "cd": "KRW-ETH", "tp": 7.0, "ttms": 1_700_000_000_000}
    assert parse_frame(json.dumps(default).encode()) == Trade("KRW-BTC", 101.5, datetime.fromtimestamp(1_700_000_000,
                                                                                                        timezone.utc))
    assert parse_frame(json.dumps(simple)).market == "KRW-ETH"
    assert parse_frame(b'{"status":"UP"}') == {"status": "UP"}
    assert parse_frame(b'{"error":{"name":"INVALID_PARAM","message":"x"}}')["error"]["name"] == "INVALID_PARAM"
    for broken in (b"\xff\xfe", b"not json", b"[1,2]", b'{"type":"trade","code":"KRW-BTC","trade_price":"x"}',
                   b'{"type":"trade","code":"KRW-BTC","trade_price":-1,"trade_timestamp":1}', b'{"type":"ticker"}'):
        assert parse_frame(broken) is None, broken
    request = json.loads(subscription(["krw-eth", "KRW-BTC"], ticket="t"))
    assert request == [{"ticket": "t"}, {"type": "trade", "codes": ["KRW-BTC", "KRW-ETH"], "is_only_realtime": True},
                       {"format": "DEFAULT"}]


def test_the_stream_subscribes_again_on_a_change_a_drop_and_a_silence():
    got, states = [], []

    async def scenario(fake: FakeUpbitStream):
        stream = TradeStream(fake.url, got.append, on_state=lambda up, why: states.append(up), stale_seconds=0.6,
                             ping_seconds=0.1, backoff=(0.05,))
        await stream.set_markets(["KRW-BTC"])
        runner = asyncio.create_task(stream.run())
        try:
            await until(lambda: fake.subscribed() == {"KRW-BTC"})
            fake.trade("KRW-BTC", 100.0)
            fake.send_raw(b"garbage")  # ignored, the stream stays up
            fake.send_raw(b'{"error":{"name":"INVALID_PARAM","message":"bad code"}}')
            fake.trade("KRW-BTC", 99.0)
            await until(lambda: [t.price_krw for t in got] == [100.0, 99.0])
            assert stream.up
            await stream.set_markets(["KRW-BTC", "KRW-XRP"])  # on the live connection
            await until(lambda: fake.subscribed() == {"KRW-BTC", "KRW-XRP"})
            assert fake.connections == 1
            fake.drop()
            await until(lambda: fake.connections >= 2 and fake.subscribed() == {"KRW-BTC", "KRW-XRP"})
            await until(lambda: states == [True, False, True])  # down at the drop, up on the new line
            fake.silent = True  # no answer to PING, no trades: down after stale_seconds, and a new line
            await until(lambda: states == [True, False, True, False])
            fake.silent = False
            await until(lambda: fake.connections >= 3 and stream.up,
                        state=lambda: (fake.connections, stream.up, states, stream.subscriptions))
        finally:
            stream.stop()
            await asyncio.wait_for(runner, 5)
        assert stream.subscriptions >= 4 and states[0] is True and True in states[1:]

    with FakeUpbitStream() as fake:
        asyncio.run(scenario(fake))


async def until(condition, seconds: float = 15.0, state=lambda: "") -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"condition not met in time {state()}"
        await asyncio.sleep(0.01)


class Tickers:
    """The REST guard's prices (core.upbit.quotation's `tickers`), set by the test."""

    def __init__(self, prices: dict[str, float]):
        self.prices = prices

    def tickers(self, markets):
        return {m: self.prices[m] for m in markets if m in self.prices}


def holding_runtime(db, url: str, tickers=None) -> Runtime:
    feed = ScriptedFeed().at(1, "KRW-BTC", BUY, PRICE).at(1, "KRW-ETH", BUY, 5_000_000)
    agent = make_agent(db, feed)
    agent.run_cycle(hour(1))
    assert set(agent.portfolio.positions) == {"KRW-BTC", "KRW-ETH"}
    return Runtime(settings=Settings(), service=CommandService(agent), stream_url=url, tickers=tickers)


def sales(db) -> list[str]:
    return [text(a) for a in due(db, datetime.now(timezone.utc) + timedelta(days=1), limit=500)
            if a.name == "emergency_sold"]


def test_a_fall_in_the_stream_is_sold_once_as_it_arrives(db):
    with FakeUpbitStream() as fake:
        runtime = holding_runtime(db, fake.url)

        async def scenario():
            stopped = asyncio.Event()
            streaming = asyncio.create_task(runtime.stream_forever(stopped.is_set, refresh_seconds=0.05))
            await until(lambda: fake.subscribed() == {"KRW-BTC", "KRW-ETH"})
            start = datetime.now(timezone.utc)
            for i, price in enumerate([PRICE, PRICE * 0.99, PRICE * 0.98, PRICE * 0.97, PRICE * 0.96, PRICE * 0.95]):
                fake.trade("KRW-BTC", price, start + timedelta(seconds=i))
            fake.trade("KRW-ETH", 5_000_000, start)
            await until(lambda: "KRW-BTC" not in runtime.agent.portfolio.positions)
            await asyncio.sleep(0.3)  # the later, lower frames of the fall arrive too: nothing more to sell
            stopped.set()
            await asyncio.wait_for(streaming, 5)

        asyncio.run(scenario())
        sold = sales(db)
        assert len(sold) == 1 and "KRW-BTC" in sold[0] and "price shock: -3.00% within 1 min (limit -2.5%)" in sold[0], sold
        assert set(runtime.agent.portfolio.positions) == {"KRW-ETH"}


def test_the_stream_dies_mid_fall_and_the_rest_guard_still_sells(db):
    tickers = Tickers({"KRW-BTC": PRICE, "KRW-ETH": 5_000_000})
    with FakeUpbitStream() as fake:
        runtime = holding_runtime(db, fake.url, tickers)

        async def scenario():
            stopped = asyncio.Event()
            streaming = asyncio.create_task(runtime.stream_forever(stopped.is_set, refresh_seconds=0.05))
            await until(lambda: runtime.stream.up)
            now = datetime.now(timezone.utc)
            fake.trade("KRW-BTC", PRICE, now)
            fake.trade("KRW-BTC", PRICE * 0.99, now + timedelta(seconds=1))
            await asyncio.sleep(0.2)
            runtime._shock(now)  # the REST job while the stream is up: it leaves the guard to the stream
            fake.refuse = True
            fake.drop()  # the line dies in the middle of the fall
            await until(lambda: runtime.stream.up is False)
            tickers.prices["KRW-BTC"] = PRICE * 0.97
            runtime._shock(now + timedelta(seconds=30))  # the REST fallback's next poll sees the rest of the fall
            assert "KRW-BTC" not in runtime.agent.portfolio.positions
            fake.refuse = False
            await until(lambda: runtime.stream.up)
            stopped.set()
            await asyncio.wait_for(streaming, 5)

        asyncio.run(scenario())
        assert len(sales(db)) == 1
        names = [a.name for a in due(db, datetime.now(timezone.utc) + timedelta(days=1), limit=500)]
        assert names.count("price_stream_down") == 1 and names.count("price_stream_back") == 1


def test_the_stream_is_on_for_upbit_and_off_for_another_server():
    assert load_settings({}, env_file=None).upbit_ws_url == "wss://api.upbit.com/websocket/v1"
    assert load_settings({"UPBIT_API_URL": "http://127.0.0.1:9"}, env_file=None).upbit_ws_url is None
    chosen = load_settings({"UPBIT_API_URL": "http://127.0.0.1:9", "UPBIT_WS_URL": "ws://127.0.0.1:8/websocket/v1"},
                           env_file=None)
    assert chosen.upbit_ws_url == "ws://127.0.0.1:8/websocket/v1"
    assert load_settings({"UPBIT_WS_URL": "off"}, env_file=None).upbit_ws_url is None
    import pytest

    from core.service.settings import SettingsError
    with pytest.raises(SettingsError, match="UPBIT_WS_URL"):
        load_settings({"UPBIT_WS_URL": "http://x"}, env_file=None)


def test_the_running_agent_streams_its_markets_and_follows_markets_add(tmp_path):
    """The real `autotrader run` (console, paper, live candles from a local Upbit) subscribes to its
    markets on the local stream, again after /markets add, and stops cleanly on SIGTERM."""
    import os
    import signal
    import subprocess

    from core.data.candles import load_candle_csv
    from tests.conftest import DATA
    from tests.fakes.upbit_server import FakeUpbit
    from tests.test_telegram_e2e import autotrader

    candles = {m: load_candle_csv(DATA / "upbit-1h" / f"{m}_1h.csv") for m in ("KRW-BTC", "KRW-ETH")}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MARKETS", "TELEGRAM_", "AUTOTRADER_", "UPBIT_"))}
    with FakeUpbit(candles) as upbit, FakeUpbitStream() as stream:
        env.update({"DATABASE_URL": f"sqlite:///{tmp_path}/agent.db", "CYCLE_SECONDS": "1", "MARKETS": "KRW-BTC",
                    "UPBIT_API_URL": upbit.url, "UPBIT_WS_URL": stream.url})
        agent = subprocess.Popen([autotrader(), "run"], env=env, cwd=tmp_path, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            stream.wait_subscribed({"KRW-BTC"}, 60)
            agent.stdin.write("/markets add KRW-ETH\n")
            agent.stdin.flush()
            stream.wait_subscribed({"KRW-BTC", "KRW-ETH"}, 30)
            assert stream.connections == 1  # the same line, subscribed again
        finally:
            agent.send_signal(signal.SIGTERM)
            out, _ = agent.communicate(timeout=60)
    assert agent.returncode == 0, out
    assert "Watching: KRW-BTC, KRW-ETH" in out and "Traceback" not in out


def live_runtime(db, server, book, fake, feed, secret=None) -> Runtime:
    """A live agent on the fake exchange whose account stream is the fake's private one."""
    from core.service.agent import Agent
    from core.trading.watchlist import Watchlist
    from core.upbit.auth import authorization
    from core.upbit.stream import private_subscription
    from tests.test_live_exchange import live_cycle

    cycle = live_cycle(db, server, book, feed)
    agent = Agent(mode="live", watchlist=Watchlist(["KRW-BTC"]), interval="1h", cycle=cycle, db=db)
    keys = book.access_key, secret or book.secret_key

    def account(on_event, on_state):
        return TradeStream(fake.private_url, on_event, on_state=on_state, request=private_subscription,
                           headers=lambda: {"Authorization": authorization(*keys)}, backoff=(0.1,))
    return Runtime(settings=Settings(), service=CommandService(agent), private_stream=account)


def test_an_order_event_books_a_lost_fill_once_before_the_next_cycle(db, upbit):
    from sqlalchemy import select

    from core.storage.schema import fills, orders
    server, book = upbit
    feed = ScriptedFeed().at(1, "KRW-BTC", BUY, 50_000_000)
    with FakeUpbitStream(book) as fake:
        runtime = live_runtime(db, server, book, fake, feed)
        book.fault("POST /v1/orders", "timeout_after")  # placed, but the answer is lost
        book.fault("GET /v1/order", *["500"] * 40)  # and the look-ups fail for the rest of the cycle
        [result] = runtime.agent.run_cycle(hour(1))
        assert result.order_state == "unknown" and "KRW-BTC" not in runtime.agent.portfolio.positions
        book.faults.clear()
        [identifier] = list(book.orders)

        async def scenario():
            stopped = asyncio.Event()
            streaming = asyncio.create_task(runtime.stream_forever(stopped.is_set, refresh_seconds=0.05))
            await until(lambda: runtime.private.up)
            for _ in range(3):  # Upbit may say it more than once: one fill all the same
                fake.account_event("myOrder", code="KRW-BTC", identifier=identifier, state="done", ask_bid="BID")
            fake.account_event("myAsset", assets=[{"currency": "BTC", "balance": 0.006}])
            await until(lambda: "KRW-BTC" in runtime.agent.portfolio.positions)
            await asyncio.sleep(0.5)
            stopped.set()
            await asyncio.wait_for(streaming, 5)

        asyncio.run(scenario())
    with db.connect() as conn:
        assert len(conn.execute(select(fills).where(fills.c.order_identifier == identifier)).all()) == 1
        assert conn.execute(select(orders.c.state).where(orders.c.identifier == identifier)).scalar() == "done"
    assert book.auth_failures == [] and fake.auth_failures == 0


def test_a_missed_event_is_found_by_the_next_cycles_reconciliation(db, upbit):
    server, book = upbit
    feed = ScriptedFeed().at(1, "KRW-BTC", BUY, 50_000_000).at(2, "KRW-BTC", BUY, 50_000_000)
    with FakeUpbitStream(book) as fake:
        runtime = live_runtime(db, server, book, fake, feed)
        book.fault("POST /v1/orders", "timeout_after")
        book.fault("GET /v1/order", *["500"] * 40)
        runtime.agent.run_cycle(hour(1))
        book.faults.clear()
        assert "KRW-BTC" not in runtime.agent.portfolio.positions  # no event came
        [identifier] = list(book.orders)
        runtime.agent.cycle.reconcile(hour(2))  # as before every cycle: settled from REST
        assert "KRW-BTC" in runtime.agent.portfolio.positions
    from sqlalchemy import select

    from core.storage.schema import fills
    with db.connect() as conn:
        assert len(conn.execute(select(fills).where(fills.c.order_identifier == identifier)).all()) == 1


class Collected(logging.Handler):
    """Every record any logger passes to the root while a test runs, at DEBUG."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_a_refused_key_is_said_without_the_key(db, upbit):
    server, book = upbit
    secret = "the-wrong-s3cr3t-key-value-0123456789"
    from core.redaction import register
    register([secret])  # as the CLI does with the keys it reads
    root, collected = logging.getLogger(), Collected()
    level = root.level
    root.addHandler(collected)
    root.setLevel(logging.DEBUG)
    try:
        with FakeUpbitStream(book) as fake:
            runtime = live_runtime(db, server, book, fake, ScriptedFeed(), secret=secret)

            async def scenario():
                stopped = asyncio.Event()
                streaming = asyncio.create_task(runtime.stream_forever(stopped.is_set, refresh_seconds=0.05))
                await until(lambda: fake.auth_failures >= 2 and runtime.private.up is False)
                stopped.set()
                await asyncio.wait_for(streaming, 5)

            asyncio.run(scenario())
    finally:
        root.removeHandler(collected)
        root.setLevel(level)
    logged = "\n".join(collected.lines)
    assert "account stream is down" in logged, logged[-2000:]
    assert secret not in logged and book.secret_key not in logged
    assert "Bearer" not in logged and "Authorization" not in logged  # not the signed token either, even at DEBUG
    names = [a.name for a in due(db, datetime.now(timezone.utc) + timedelta(days=1), limit=500)]
    assert names.count("account_stream_down") == 1
