"""Live trading against a local fake Upbit (127.0.0.1) that checks JWTs, keeps its own books and
injects faults: every fault at each step leaves no duplicate order, no lost fill, books equal to the
exchange's after reconciliation, and an alert that says what happened."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from core.service.reconcile import Reconciler
from core.storage.books import load_books
from core.storage.database import open_database
from core.storage.journal import Journal
from core.storage.schema import fills, orders, outbox, positions, signals
from core.trading.cycle import TradingCycle
from core.trading.types import OrderLimits
from core.upbit.errors import UpbitAuthError, UpbitOrderNotFoundError
from core.upbit.exchange import UpbitExchange
from core.upbit.exchange_api import UpbitExchangeAPI
from core.upbit.ratelimit import EXCHANGE_LIMITS, RateLimiter
from tests.alerts import text
from tests.fakes.feeds import BUY, HOLD, SELL, ScriptedFeed, hour
from tests.fakes.upbit_exchange import LIVE_PRICE, LIVE_START_KRW
from tests.test_agent import count

PRICE = LIVE_PRICE  # the fake exchange fills every market order at this price (the `upbit` fixture)
START_KRW = LIVE_START_KRW


def api_for(server, book, secret=None, timeout=0.3):
    """A client with short timeouts, back-offs and cool-downs (the real ones are seconds)."""
    limiter = RateLimiter(EXCHANGE_LIMITS, cool_down_seconds=0.5)
    return UpbitExchangeAPI(server.url, book.access_key, secret or book.secret_key, timeout=timeout, limiter=limiter,
                            sleep=lambda s: time.sleep(min(s, 0.05)))


def live_cycle(db, server, book, feed, limits=OrderLimits()):
    exchange = UpbitExchange(api_for(server, book), settle_seconds=1.0, poll_seconds=0.05)
    portfolio = load_books(db)  # as in live mode: the first reconciliation funds the books
    reconciler = Reconciler(db, exchange, lambda: ["KRW-BTC"])
    cycle = TradingCycle(feed, exchange, portfolio, recorder=Journal(db), limits=limits,
                         reconciler=reconciler)
    cycle.reconcile(hour(0))
    return cycle


def assert_books_match(db, cycle, book):
    """The database, the in-memory portfolio and the exchange agree; nothing is left open."""
    with db.connect() as conn:
        stored = {r.market: float(r.volume) for r in conn.execute(select(positions))}
        open_orders = conn.execute(select(orders).where(orders.c.state.in_(("pending", "unknown")))).all()
        fill_ids = [r.order_identifier for r in conn.execute(select(fills))
                    if not r.order_identifier.startswith("external-")]  # adopted differences
    exchange_holdings = {m: v for m, v in book.holdings().items() if v > 1e-12}
    assert open_orders == []
    assert stored.keys() == exchange_holdings.keys()
    for market, volume in exchange_holdings.items():
        assert stored[market] == pytest.approx(volume, rel=1e-9)
        assert cycle.portfolio.positions[market].volume == pytest.approx(volume, rel=1e-9)
    assert cycle.portfolio.cash_krw == pytest.approx(book.krw, abs=1.0)
    executed = [i for i, o in book.orders.items() if float(o["executed_volume"]) > 0]
    assert sorted(fill_ids) == sorted(executed)  # every executed order has exactly one fill, nothing else
    assert book.rejected_duplicates == 0 and book.auth_failures == []


def alerts(db):
    with db.connect() as conn:
        return [text(r) for r in conn.execute(select(outbox).order_by(outbox.c.id))]


def test_requests_are_signed_and_a_bad_secret_is_a_typed_error_without_the_key(upbit):
    server, book = upbit
    api = api_for(server, book)
    assert api.accounts()[0]["currency"] == "KRW"
    placed = api.place_order(market="KRW-BTC", side="bid", ord_type="price", price="10000", identifier="id-1")
    assert placed["identifier"] == "id-1"
    assert api.order(identifier="id-1")["executed_volume"] != "0"
    with pytest.raises(UpbitOrderNotFoundError):
        api.order(identifier="nope")
    wrong = api_for(server, book, secret="not-the-secret-but-long-enough-for-hs256")
    with pytest.raises(UpbitAuthError) as caught:
        wrong.accounts()
    assert "jwt_verification" in str(caught.value) and "not-the-secret-but-long-enough-for-hs256" not in str(caught.value)
    assert "not-the-secret-but-long-enough-for-hs256" not in repr(wrong) and book.secret_key not in repr(api)


BUY_FAULTS = ["timeout_before", "timeout_after", "drop_after", "500", "500_after", "429", "malformed", "partial"]


@pytest.mark.parametrize("fault", BUY_FAULTS)
def test_a_fault_while_buying_leaves_one_order_and_matching_books(db_url, upbit, fault):
    server, book = upbit
    db = open_database(db_url)
    feed = ScriptedFeed().at(1, "KRW-BTC", BUY, PRICE).at(2, "KRW-BTC", HOLD, PRICE).at(3, "KRW-BTC", HOLD, PRICE)
    cycle = live_cycle(db, server, book, feed)
    book.fault("POST /v1/orders", fault)
    cycle.run(hour(1))
    cycle.run(hour(2))  # reconciliation settles what the fault left open
    assert len(book.orders) <= 1
    assert_books_match(db, cycle, book)
    if fault in ("timeout_before", "500"):  # never executed: written off, announced
        assert not book.orders and count(db, orders, orders.c.state == "failed") == 1
        assert any("BUY order failed" in a for a in alerts(db)) and any("never reached the exchange" in a for a in alerts(db))
    elif fault == "429":  # rejected before execution: sent again after the wait, bought once
        assert len(book.orders) == 1 and count(db, fills) == 1
    else:
        assert len(book.orders) == 1 and count(db, fills) == 1 and "KRW-BTC" in cycle.portfolio.positions
    if fault == "partial":  # judged by executed volume: 60% of the amount
        assert float(book.orders[next(iter(book.orders))]["executed_volume"]) * PRICE == pytest.approx(0.6 * 300_000)
    restarted = live_cycle(db, server, book, feed)  # a restart rebuilds the same books
    assert_books_match(db, restarted, book)
    db.dispose()


@pytest.mark.parametrize("fault", ["timeout_before", "timeout_after", "500_after", "malformed", "partial"])
def test_a_fault_while_selling_leaves_one_order_and_matching_books(db_url, upbit, fault):
    server, book = upbit
    db = open_database(db_url)
    feed = ScriptedFeed().at(1, "KRW-BTC", BUY, PRICE).at(2, "KRW-BTC", SELL, PRICE).at(3, "KRW-BTC", HOLD, PRICE)
    cycle = live_cycle(db, server, book, feed)
    cycle.run(hour(1))
    book.fault("POST /v1/orders", fault)
    cycle.run(hour(2))
    cycle.run(hour(3))
    assert len(book.orders) <= 2
    assert_books_match(db, cycle, book)
    db.dispose()


@pytest.mark.parametrize("fault", ["500", "timeout_before", "malformed", "429"])
def test_a_lookup_that_fails_after_a_lost_answer_is_settled_by_reconciliation(db_url, upbit, fault):
    server, book = upbit
    db = open_database(db_url)
    feed = ScriptedFeed().at(1, "KRW-BTC", BUY, PRICE).at(2, "KRW-BTC", HOLD, PRICE)
    cycle = live_cycle(db, server, book, feed)
    book.fault("POST /v1/orders", "timeout_after")
    book.fault("GET /v1/order", *[fault] * 40)  # the exchange stays unreadable for the rest of the cycle
    results = cycle.run(hour(1))
    assert results[0].order_state == "unknown" and count(db, orders, orders.c.state == "unknown") == 1
    assert any("settled by reconciliation" in a for a in alerts(db))
    book.faults.clear()
    time.sleep(0.6)  # after three 429s in a row the client pauses that group (0.5 s here, 30 s for real)
    cycle.run(hour(2))
    assert_books_match(db, cycle, book)
    assert any("settled after a lost answer" in a for a in alerts(db))
    db.dispose()


@pytest.mark.parametrize("amount, name", [(3_000, "under_min_total_bid"), (2_000_000, "insufficient_funds_bid")])
def test_rejected_orders_are_explained_and_nothing_changes(db_url, upbit, amount, name):
    server, book = upbit
    db = open_database(db_url)
    cycle = live_cycle(db, server, book, ScriptedFeed())
    cycle.reconcile(hour(1))
    from core.trading.types import Decision

    decision = Decision(market="KRW-BTC", approved=True, action="BUY", investment_ratio=amount / START_KRW,
                        reason="test")
    cycle.prices["KRW-BTC"] = PRICE
    result = cycle._guarded(lambda: cycle.execute("KRW-BTC", None, decision, PRICE, hour(1)))
    assert result.fill is None and name in result.error and result.order_state == "failed"
    assert count(db, orders, orders.c.state == "failed") == 1 and not book.orders
    assert any(name in a for a in alerts(db))
    assert_books_match(db, cycle, book)
    db.dispose()


def test_a_coin_sold_by_hand_is_adopted_recorded_and_announced_to_admins(db_url, upbit):
    server, book = upbit
    db = open_database(db_url)
    feed = ScriptedFeed().at(1, "KRW-BTC", BUY, PRICE).at(2, "KRW-BTC", HOLD, PRICE)
    cycle = live_cycle(db, server, book, feed)
    cycle.run(hour(1))
    with book.lock:  # sold by hand in the Upbit app
        volume = book.coins["BTC"][0]
        book.coins["BTC"][0] = 0.0
        book.krw += volume * PRICE * (1 - 0.0005)
    cycle.run(hour(2))
    assert "KRW-BTC" not in cycle.portfolio.positions
    assert_books_match(db, cycle, book)
    with db.connect() as conn:
        adopted = conn.execute(select(orders).where(orders.c.kind == "external")).one()
        notice = conn.execute(select(outbox).where(outbox.c.kind == "account")).all()
    assert adopted.side == "ask" and adopted.state == "done"
    assert any("less than the books" in text(n) for n in notice)
    restarted = live_cycle(db, server, book, feed)
    assert "KRW-BTC" not in restarted.portfolio.positions
    db.dispose()


def test_order_limits_cap_each_buy_and_the_day(db_url, upbit):
    server, book = upbit
    db = open_database(db_url)
    feed = ScriptedFeed()
    for i, market in enumerate(["KRW-BTC", "KRW-ETH", "KRW-XRP"], start=1):
        feed.at(i, market, BUY, PRICE)
    cycle = live_cycle(db, server, book, feed, OrderLimits(max_order_krw=50_000, max_daily_krw=80_000))
    cycle.reconciler.markets = lambda: ["KRW-BTC", "KRW-ETH", "KRW-XRP"]
    first, second, third = (cycle.run(hour(i))[0] for i in (1, 2, 3))
    assert first.fill.funds_krw == 50_000 and second.fill.funds_krw == 30_000
    assert third.fill is None and "buy refused: daily buy limit of 80,000 KRW" in third.error
    assert len(book.orders) == 2
    assert_books_match(db, cycle, book)
    db.dispose()


def deposit_alerts(db):
    return [a for a in alerts(db) if "deposit" in a or "withdrawal" in a]


def test_a_restart_keeps_cash_and_the_day_start_and_trades_on(db_url, upbit):
    """Issue 21: trade, restart, and the books equal the account without a false deposit alarm."""
    server, book = upbit
    db = open_database(db_url)
    feed = ScriptedFeed().at(1, "KRW-BTC", BUY, PRICE).at(2, "KRW-BTC", HOLD, PRICE).at(3, "KRW-ETH", BUY, PRICE)
    cycle = live_cycle(db, server, book, feed)
    assert any("the books start from it (first reconciliation)" in a for a in alerts(db))
    cycle.run(hour(1))
    cycle.run(hour(2))
    before = cycle.portfolio.account(cycle.prices)
    assert before.cash_krw == pytest.approx(START_KRW - 300_000 * 1.0005) == pytest.approx(book.krw)
    restarted = live_cycle(db, server, book, feed)
    restarted.prices.update(cycle.prices)
    after = restarted.portfolio.account(restarted.prices)
    assert after.cash_krw == pytest.approx(book.krw, abs=1.0) and deposit_alerts(db) == []
    assert restarted.portfolio.day == cycle.portfolio.day == "2025-10-01"
    assert after.day_start_equity_krw == pytest.approx(before.day_start_equity_krw) == pytest.approx(START_KRW)
    assert after.day_return == pytest.approx(before.day_return)
    restarted.reconciler.markets = lambda: ["KRW-BTC", "KRW-ETH"]
    step, = restarted.run(hour(3))
    assert step.decision.approved and step.fill is not None  # the next BUY trades: no daily-loss halt
    assert deposit_alerts(db) == []
    assert_books_match(db, restarted, book)
    with db.connect() as conn:
        reasons = [r[0] or "" for r in conn.execute(select(signals.c.decision_reason))]
    assert not any("books not sane" in r or "daily loss" in r or "-" in r.split("KRW")[0] for r in reasons)
    db.dispose()


def test_a_deposit_while_the_bot_is_down_is_announced_once(db_url, upbit):
    server, book = upbit
    db = open_database(db_url)
    feed = ScriptedFeed().at(1, "KRW-BTC", BUY, PRICE).at(2, "KRW-BTC", HOLD, PRICE)
    cycle = live_cycle(db, server, book, feed)
    cycle.run(hour(1))
    day_start = cycle.portfolio.day_start_equity_krw
    with book.lock:
        book.krw += 100_000  # deposited in the Upbit app while the bot was down
    restarted = live_cycle(db, server, book, feed)
    assert len(deposit_alerts(db)) == 1 and "a deposit of KRW 100,000" in deposit_alerts(db)[0]
    assert restarted.portfolio.cash_krw == pytest.approx(book.krw, abs=1.0)
    assert restarted.portfolio.day_start_equity_krw == pytest.approx(day_start + 100_000)  # capital, not profit
    assert restarted.portfolio.principal_krw == pytest.approx(START_KRW + 100_000)
    again = live_cycle(db, server, book, feed)
    again.run(hour(2))
    assert len(deposit_alerts(db)) == 1 and again.portfolio.cash_krw == pytest.approx(book.krw, abs=1.0)
    with book.lock:
        book.krw -= 50_000  # a withdrawal while running
    again.run(hour(3))
    assert "a withdrawal of KRW 50,000" in deposit_alerts(db)[-1] and len(deposit_alerts(db)) == 2
    db.dispose()
