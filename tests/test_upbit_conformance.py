"""Upbit as it really answers, not as we would like it to: answers without `identifier`, orders whose
trades are not listed yet, 418 blocks, numeric error names, `prevented` orders, plain-text 429s, hours
without trades. Each case runs against the local fake Upbit (tests/fakes), which answers that way."""
from __future__ import annotations

import time
from types import SimpleNamespace

import pandas as pd
import pytest
from sqlalchemy import select

from core.data.candles import find_gaps
from core.storage.database import open_database
from core.storage.schema import fills, orders
from core.upbit.errors import (
    DEFAULT_BLOCK_SECONDS,
    UpbitAuthError,
    UpbitRateLimitError,
    UpbitRequestError,
    UpbitServerError,
    block_seconds,
    error_for_response,
    error_from_http,
)
from core.upbit.exchange import UpbitExchange, fill_of
from core.upbit.quotation import UpbitQuotationClient
from core.upbit.ratelimit import EXCHANGE_LIMITS, RateLimiter
from tests.fakes.feeds import BUY, HOLD, SELL, ScriptedFeed, hour
from tests.fakes.upbit_server import FakeUpbit
from tests.test_agent import count
from tests.test_live_exchange import PRICE, alerts, api_for, assert_books_match, live_cycle


def test_an_answer_without_identifier_is_settled_by_the_identifier_we_asked_for(db_url, upbit):
    server, book = upbit
    book.answers_identifier = False  # as a real 2025 look-up of a market sell answered
    db = open_database(db_url)
    feed = ScriptedFeed().at(1, "KRW-BTC", BUY, PRICE).at(2, "KRW-BTC", SELL, PRICE).at(3, "KRW-BTC", HOLD, PRICE)
    cycle = live_cycle(db, server, book, feed)
    cycle.run(hour(1))
    cycle.run(hour(2))
    cycle.run(hour(3))
    with db.connect() as conn:
        stored = sorted(r.order_identifier for r in conn.execute(select(fills)))
    assert stored == sorted(book.orders) and len(stored) == 2
    assert_books_match(db, cycle, book)
    db.dispose()


def test_unexpected_answer_shapes_are_typed_errors_never_a_crash():
    with pytest.raises(UpbitServerError, match="no market or side"):
        fill_of({"executed_volume": "0.1", "trades": [{"funds": "1000"}]}, "id-1")
    with pytest.raises(UpbitServerError, match="expected an object"):
        fill_of(["not", "an", "order"], "id-1")
    with pytest.raises(UpbitServerError, match="not a list"):
        fill_of({"market": "KRW-BTC", "side": "bid", "executed_volume": "0.1", "trades": "none"}, "id-1")
    assert fill_of({"market": "KRW-BTC", "side": "ask", "state": "wait"}, "id-1") is None  # nulls omitted

    class Api:
        def order(self, identifier=None, uuid=None):
            return ["a", "list"]

        def accounts(self):
            return ["KRW"]

    exchange = UpbitExchange(Api())
    with pytest.raises(UpbitServerError):
        exchange.lookup("id-1")
    with pytest.raises(UpbitServerError):
        exchange.balances()


def test_a_market_buy_is_never_booked_at_its_krw_total_as_a_unit_price():
    """For ord_type=price Upbit's `price` is the order's KRW total: 10,000 KRW for 0.33333333 coins is
    30,000 KRW a coin, never 3,333 KRW of funds."""
    order = {"market": "KRW-XRP", "side": "bid", "ord_type": "price", "price": "10000", "state": "cancel",
             "executed_volume": "0.33333333", "paid_fee": "5", "trades": []}
    with pytest.raises(UpbitServerError, match="asked again later"):
        fill_of(order, "id-1")
    fill = fill_of({**order, "executed_funds": "9999.99"}, "id-1")
    assert fill.funds_krw == pytest.approx(9999.99) and fill.price_krw == pytest.approx(9999.99 / 0.33333333)
    limit = fill_of({**order, "ord_type": "limit", "price": "30000"}, "id-1")  # a limit order's price is per coin
    assert limit.funds_krw == pytest.approx(0.33333333 * 30000)


def test_an_order_whose_trades_are_not_listed_yet_is_booked_from_its_funds_or_asked_again(db_url, upbit):
    server, book = upbit
    db = open_database(db_url)
    feed = ScriptedFeed().at(1, "KRW-BTC", BUY, PRICE).at(2, "KRW-BTC", HOLD, PRICE).at(3, "KRW-BTC", HOLD, PRICE)
    cycle = live_cycle(db, server, book, feed)
    book.fault("GET /v1/order", *["no_funds"] * 60)  # only the volume is known for the rest of the cycle
    first = cycle.run(hour(1))
    assert first[0].fill is None and first[0].order_state == "unknown"
    assert count(db, fills) == 0  # nothing booked from a guess
    book.faults.clear()
    book.fault("GET /v1/order", "no_trades")  # trades still missing, executed_funds there
    cycle.run(hour(2))
    with db.connect() as conn:
        fill = conn.execute(select(fills)).one()
    assert float(fill.funds_krw) == pytest.approx(300_000) and float(fill.price_krw) == pytest.approx(PRICE)
    assert_books_match(db, cycle, book)
    db.dispose()


def test_a_418_stops_every_request_until_the_stated_time_and_an_order_is_never_resent(upbit):
    server, book = upbit
    book.block_seconds = 1.0
    api = api_for(server, book)
    book.fault("POST /v1/orders", "418")
    with pytest.raises(UpbitRateLimitError) as caught:
        api.place_order(market="KRW-BTC", side="bid", ord_type="price", price="10000", identifier="id-1")
    assert caught.value.blocked and "HTTP 418" in str(caught.value) and "no request is sent before then" in str(caught.value)
    assert book.requests.count("POST /v1/orders") == 1  # one request for one place_order, never three
    sent = len(book.requests)
    for _ in range(3):  # every group waits, reads included, without a request
        with pytest.raises(UpbitRateLimitError) as again:
            api.accounts()
        assert str(again.value) == str(caught.value)  # the same text, so that it is told once
    assert len(book.requests) == sent and book.requests_while_blocked == 0
    time.sleep(1.1)
    assert api.accounts()[0]["currency"] == "KRW"  # resumes after the stated time


def test_a_418_in_the_cycle_is_told_once_and_trading_resumes(db_url, upbit):
    server, book = upbit
    book.block_seconds = 1.0
    db = open_database(db_url)
    feed = (ScriptedFeed().at(1, "KRW-BTC", BUY, PRICE).at(2, "KRW-BTC", BUY, PRICE)
            .at(3, "KRW-BTC", BUY, PRICE).at(4, "KRW-BTC", HOLD, PRICE))
    cycle = live_cycle(db, server, book, feed)
    book.fault("POST /v1/orders", "418")
    cycle.run(hour(1))
    cycle.run(hour(2))  # still blocked: refused without a request, not announced again
    told = [a for a in alerts(db) if "HTTP 418" in a]
    assert len(told) == 1 and "until" in told[0]
    assert book.requests_while_blocked == 0 and not book.orders
    time.sleep(1.1)
    cycle.run(hour(3))
    cycle.run(hour(4))
    assert len(book.orders) == 1 and "KRW-BTC" in cycle.portfolio.positions
    assert count(db, orders, orders.c.state == "failed") == 2
    assert_books_match(db, cycle, book)
    db.dispose()


def test_block_times_are_read_from_the_answer_or_assumed_long():
    assert block_seconds("IP blocked for 60 seconds") == 60
    assert block_seconds("요청이 제한되었습니다. 10분 후 다시 시도") == 600
    assert block_seconds("no time given") is None
    response = SimpleNamespace(status_code=418, headers={}, text="blocked",
                               json=lambda: {"error": {"name": 418, "message": "blocked"}})
    error = error_from_http(response)
    assert error.blocked and error.retry_after == DEFAULT_BLOCK_SECONDS and error.name == "418"


@pytest.mark.parametrize("state, executed, booked", [("prevented", 0.3, True), ("prevented_none", 0.0, False)])
def test_a_prevented_order_is_final_with_its_executed_part(db_url, upbit, state, executed, booked):
    server, book = upbit
    db = open_database(db_url)
    feed = ScriptedFeed().at(1, "KRW-BTC", BUY, PRICE).at(2, "KRW-BTC", HOLD, PRICE)
    cycle = live_cycle(db, server, book, feed)
    book.fault("POST /v1/orders", state)
    started = time.monotonic()
    result = cycle.run(hour(1))[0]
    assert time.monotonic() - started < 1.0  # final at once: not polled until the settle time runs out
    assert (result.fill is not None) is booked
    if booked:
        assert result.fill.funds_krw == pytest.approx(executed * 300_000)
    else:
        assert "cancelled" in (result.error or "") and count(db, fills) == 0
    cycle.run(hour(2))
    assert_books_match(db, cycle, book)
    db.dispose()


def test_error_names_are_text_whatever_upbit_sends(upbit):
    server, book = upbit
    api = api_for(server, book)
    with pytest.raises(UpbitRequestError) as caught:
        api._call("GET", "/v1/nowhere", None, "default")
    assert caught.value.name == "404" and "Code not found" in str(caught.value)
    assert isinstance(error_for_response(401, "no_authorization_i_p", "IP not allowed"), UpbitAuthError)


def test_a_plain_text_429_without_retry_after_is_waited_out_and_retried(upbit):
    server, book = upbit
    api = api_for(server, book)
    book.fault("GET /v1/accounts", "429_plain")
    assert api.accounts()[0]["currency"] == "KRW"
    assert book.requests.count("GET /v1/accounts") == 2
    response = SimpleNamespace(status_code=429, headers={}, text="Too many API requests.",
                               json=lambda: (_ for _ in ()).throw(ValueError("not JSON")))
    error = error_from_http(response)
    assert isinstance(error, UpbitRateLimitError) and not error.blocked and "Too many API requests." in str(error)


def test_the_limits_are_upbits_and_follow_remaining_req_without_min():
    assert EXCHANGE_LIMITS == {"order": 12, "default": 30}
    now, slept = [0.0], []
    limiter = RateLimiter(EXCHANGE_LIMITS, clock=lambda: now[0], sleep=lambda s: (slept.append(s), now.__setitem__(0, now[0] + s)))
    limiter.observe("group=order; sec=0")  # min= is deprecated and may be absent
    limiter.acquire("order")
    assert slept and sum(slept) == pytest.approx(1.0)
    for _ in range(11):  # one under 12 a second
        limiter.acquire("order")
    assert sum(slept) > 1.0


def test_hours_without_trades_have_no_candle_and_are_reported_as_gaps():
    index = pd.date_range("2025-10-01", periods=30, freq="h", tz="UTC").delete([10, 11, 20])
    frame = pd.DataFrame({"open": 100.0, "high": 101.0, "low": 99.0, "close": 100.5, "volume": 1.0, "value": 100.5},
                         index=index)
    with FakeUpbit({"KRW-BTC": frame}) as server:
        client = UpbitQuotationClient(server.url, sleep=lambda s: None)
        candles = client.candles_page("KRW-BTC", "1h", to=pd.Timestamp("2025-10-03", tz="UTC").to_pydatetime())
        with pytest.raises(UpbitRequestError) as caught:
            client.candles_page("KRW-NOPE", "1h")
    assert len(candles) == 27 and len(find_gaps(candles, 3600)) == 2
    assert caught.value.name == "404"
