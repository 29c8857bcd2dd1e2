"""SIGKILL at random points of the real `autotrader run` in live mode against a local fake Upbit:
after every kill the database and the exchange's books agree (nothing sent twice, nothing executed
that the database does not know of, no fill lost or invented, cash rebuilt equal to the account's
KRW, the trading day's start unchanged), and a restart settles what was open without announcing a
deposit that never happened."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine, select

from core.data.candles import load_candle_csv
from core.storage.books import load_books
from core.storage.schema import (
    cash_flows,
    fills,
    orders,
    outbox,
    positions,
    signals,
    trading_days,
)
from tests.alerts import text
from tests.conftest import DATA
from tests.fakes.upbit_exchange import FakeExchangeBook
from tests.fakes.upbit_server import FakeUpbit
from tests.test_telegram_e2e import autotrader

KILLS = 12
MIN_ORDERS = 10
TIME_BOUND_SECONDS = 240
MARKETS = ("KRW-BTC", "KRW-ETH")
EAGER = ["--set", "decision_rule=threshold", "--set", "buy_threshold=0.05", "--set", "sell_threshold=0.05", "--set", "cooldown_hours=0",
         "--set", "stop_loss=0.004", "--set", "take_profit=0.004", "--set", "max_consecutive_losses=1000",
         "--set", "daily_loss_limit=0.9"]  # trade often, so that kills land between sending and storing


class Market:
    """Candles that advance one hour every `step` seconds, and prices that follow them."""

    def __init__(self, step: float = 0.35):
        self.series = {m: load_candle_csv(DATA / "upbit-1h" / f"{m}_1h.csv") for m in MARKETS}
        self.book = FakeExchangeBook(self.price, krw=2_000_000, order_latency=0.1)
        self.server = FakeUpbit(self.series, now=self.series["KRW-BTC"].index[300], exchange=self.book)
        self.step = step
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._advance, daemon=True)

    def price(self, market: str) -> float:
        frame = self.series[market]
        return float(frame[frame.index <= self.server.now]["close"].iloc[-1])

    def _advance(self) -> None:
        while not self._stop.wait(self.step):
            self.server.now += pd.Timedelta(hours=1)

    def __enter__(self) -> "Market":
        self.server.__enter__()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.server.__exit__(*exc)


def check(db_url: str, book: FakeExchangeBook, strict: bool, day_starts: dict | None = None) -> dict:
    """The invariants that hold whenever no process runs; `strict`: nothing left to settle either.
    `day_starts` (day -> starting equity first seen) must not move from one kill to the next."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = {r.identifier: r for r in conn.execute(select(orders))}
            fill_rows = conn.execute(select(fills)).all()
            stored_positions = {r.market: float(r.volume) for r in conn.execute(select(positions))}
            funded = conn.execute(select(cash_flows)).all()
            days = {r.day: float(r.start_equity_krw) for r in conn.execute(select(trading_days))}
            texts = [text(r) for r in conn.execute(select(outbox))]
            reasons = [r[0] or "" for r in conn.execute(select(signals.c.decision_reason))]
        books = load_books(engine)
    finally:
        engine.dispose()
    assert len(funded) <= 1, "only the first reconciliation records a cash flow here: no deposit was made"
    assert not any("deposit" in t or "withdrawal" in t for t in texts)
    assert not any("books not sane" in r or "daily loss limit" in r for r in reasons)
    if day_starts is not None:
        for day, start in days.items():
            assert day_starts.setdefault(day, start) == pytest.approx(start), f"the start of {day} moved"
    with book.lock:
        exchange_orders = {i: dict(o) for i, o in book.orders.items()}
        holdings = {m: v for m, v in book.holdings().items() if v > 1e-12}
    assert book.rejected_duplicates == 0 and book.auth_failures == []
    assert set(exchange_orders) <= set(rows), "an order reached the exchange that the database never stored"
    filled = {}
    for fill in fill_rows:
        assert fill.order_identifier not in filled, "two fills for one order"
        filled[fill.order_identifier] = float(fill.volume)
    for identifier, volume in filled.items():
        if identifier.startswith("external-"):
            continue
        assert float(exchange_orders[identifier]["executed_volume"]) == pytest.approx(volume, rel=1e-9)
    open_rows = [r for r in rows.values() if r.state in ("pending", "unknown")]
    expected = dict(stored_positions)  # what the books will hold once the open orders are settled
    for row in open_rows:
        executed = float(exchange_orders.get(row.identifier, {}).get("executed_volume", 0))
        sign = 1 if row.side == "bid" else -1
        expected[row.market] = expected.get(row.market, 0.0) + sign * executed
        if strict:
            assert row.identifier not in exchange_orders, f"order {row.identifier} executed but was never settled"
    expected = {m: v for m, v in expected.items() if v > 1e-12}
    assert expected.keys() == holdings.keys()
    for market, volume in holdings.items():
        assert expected[market] == pytest.approx(volume, rel=1e-9)
    if funded and not open_rows:  # cash as a restart rebuilds it: the account's KRW, nothing to adopt
        assert books.cash_krw == pytest.approx(book.krw, abs=1.0)
    return {"orders": len(exchange_orders), "open": len(open_rows)}


def start(market: Market, db_url: str, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MARKETS", "TELEGRAM_", "AUTOTRADER_", "MAX_"))}
    env.update({"AUTOTRADER_MODE": "live", "UPBIT_ACCESS_KEY": market.book.access_key,
                "UPBIT_SECRET_KEY": market.book.secret_key, "UPBIT_API_URL": market.server.url,
                "DATABASE_URL": db_url, "CYCLE_SECONDS": "0.3", "MARKETS": ",".join(MARKETS),
                "MAX_ORDER_KRW": "300000", "MAX_DAILY_KRW": "1000000000", "DAILY_SUMMARY_UTC": "off"})
    return subprocess.Popen([autotrader(), "run", *EAGER], env=env, cwd=log.parent, stdin=subprocess.DEVNULL,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)


def wait_started(process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while "Ready: start-up done" not in log.read_text():
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


def test_sigkill_at_random_points_loses_nothing_and_sends_nothing_twice(db_url, tmp_path):
    rng = random.Random(20261124)
    began = time.monotonic()
    day_starts: dict = {}
    with Market() as market:
        kills, caught_mid_order = 0, 0
        while kills < KILLS or len(market.book.orders) < MIN_ORDERS:  # enough kills, landing among enough orders
            assert time.monotonic() - began < TIME_BOUND_SECONDS, \
                f"only {kills} kills and {len(market.book.orders)} orders in time"
            log = tmp_path / f"run{kills}.log"
            process = start(market, db_url, log)
            wait_started(process, log)
            time.sleep(rng.uniform(0.3, 4.0))
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            kills += 1
            time.sleep(0.3)  # an order the process sent just before dying may still be arriving
            caught_mid_order += check(db_url, market.book, strict=False, day_starts=day_starts)["open"] > 0
        log = tmp_path / "final.log"
        final = start(market, db_url, log)  # a last restart settles everything, then stops cleanly
        wait_started(final, log)
        time.sleep(2.0)
        final.send_signal(signal.SIGTERM)
        assert final.wait(timeout=60) == 0, log.read_text()
        figures = check(db_url, market.book, strict=True, day_starts=day_starts)
    print(f"{kills} kills, {caught_mid_order} with an order left open, {figures['orders']} orders on the exchange")
    text = log.read_text()
    assert "LIVE TRADING" in text and market.book.secret_key not in text
    assert figures["orders"] >= MIN_ORDERS


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def rows(db_url: str, table, *where) -> list:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(table).where(*where)).all()
    finally:
        engine.dispose()


def test_a_restart_after_sigkill_trades_on_and_announces_only_the_real_deposit(db_url, tmp_path):
    """Trade, SIGKILL, deposit while down, restart: cash equals the account, the deposit is announced
    once (and nothing else is), the day keeps its start plus the deposit, and the next BUY trades."""
    with Market() as market:
        first = start(market, db_url, tmp_path / "first.log")
        wait_started(first, tmp_path / "first.log")
        wait_for(lambda: any(r.side == "bid" for r in rows(db_url, fills)), 60, "a first buy")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        time.sleep(0.3)
        check(db_url, market.book, strict=False)
        days_before = {r.day: float(r.start_equity_krw) for r in rows(db_url, trading_days)}
        buys_before = len([r for r in rows(db_url, fills) if r.side == "bid"])
        with market.book.lock:
            market.book.krw += 100_000  # deposited in the Upbit app while the bot was down
        second = start(market, db_url, tmp_path / "second.log")
        wait_started(second, tmp_path / "second.log")
        wait_for(lambda: len([r for r in rows(db_url, fills) if r.side == "bid"]) > buys_before, 60,
                 "a buy after the restart")
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0, (tmp_path / "second.log").read_text()
        texts = [text(r) for r in rows(db_url, outbox)]
        moved = [t for t in texts if "deposit" in t or "withdrawal" in t]
        assert len(moved) == 1 and "a deposit of KRW 100,000" in moved[0], moved
        flows = rows(db_url, cash_flows)
        assert [f.kind for f in flows] == ["funding", "deposit"] and float(flows[1].amount_krw) == pytest.approx(100_000)
        days_after = {r.day: float(r.start_equity_krw) for r in rows(db_url, trading_days)}
        for day, start_equity in days_before.items():  # the deposit is capital, not a day's profit
            assert days_after[day] == pytest.approx(start_equity + 100_000, abs=1.0)
        if not rows(db_url, orders, orders.c.state.in_(("pending", "unknown"))):
            engine = create_engine(db_url)
            try:
                assert load_books(engine).cash_krw == pytest.approx(market.book.krw, abs=1.0)
            finally:
                engine.dispose()
        reasons = [r.decision_reason or "" for r in rows(db_url, signals)]
        assert not any("books not sane" in r or "daily loss limit" in r for r in reasons)
