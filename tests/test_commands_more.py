"""The commands users of other trading bots expect (/buy, /trades, /performance, /weekly, /monthly,
/logs), the restart-then-command case, and a fuzz of the command parser: no input makes a command
raise; every bad one gets one line."""
from __future__ import annotations

import logging
import random

from sqlalchemy import select

from core.service.commands import CommandService
from core.service.logbook import RECENT
from core.service.registry import CONSOLE, REGISTRY, Caller
from core.storage.schema import audit_log, orders
from tests.fakes.feeds import BUY, HOLD, SELL, ScriptedFeed, hour
from tests.test_agent import VIEWER, chat, count, make_agent

PRICE = 100_000_000.0


def test_buy_goes_through_the_engines_guards_asks_first_and_is_audited(db):
    feed = ScriptedFeed().at(1, "KRW-BTC", HOLD, PRICE).at(1, "KRW-ETH", HOLD, 5_000_000.0)
    agent = make_agent(db, feed)
    console, _ = chat(agent)
    assert "no price for KRW-BTC yet" in console.answer("/buy KRW-BTC")  # before the first cycle after a start
    agent.run_cycle(hour(1))
    service = CommandService(agent)
    ask = service.handle("/buy KRW-BTC 50000", CONSOLE, confirmed=False)
    assert "Buy KRW-BTC for KRW 50,000 now at market price" in ask.question
    assert "KRW-BTC" not in agent.portfolio.positions  # nothing bought before "Yes"
    bought = service.confirm(ask.key, CONSOLE)
    assert bought.result.fill is not None and bought.result.fill.funds_krw == 50_000
    assert "KRW-BTC" in agent.portfolio.positions
    assert console.answer("/buy KRW-BTC").startswith("Error: KRW-BTC is held already")
    assert count(db, orders, orders.c.kind == "manual") == 1
    console.answer("/pause")
    assert "not bought: trading is paused" in console.answer("/buy KRW-ETH")
    console.answer("/resume")
    assert "order of 3,000 KRW is under the 5,000 KRW minimum" in console.answer("/buy KRW-ETH 3000")
    full = console.answer("/buy KRW-ETH")  # no amount: a full position
    assert full.startswith("KRW-ETH: bought") and "for KRW 299,99" in full  # 30% of equity after the first buy's fee
    assert "for admins only" in service.handle("/buy KRW-BTC", VIEWER).text
    assert "not watching KRW-SOL" in console.answer("/buy KRW-SOL")
    with db.connect() as conn:
        rows = conn.execute(select(audit_log.c.detail, audit_log.c.succeeded).where(audit_log.c.command == "buy")).all()
    assert any(ok and "bought KRW-BTC" in d for d, ok in rows) and any(not ok and "paused" in d for d, ok in rows)


def test_trades_performance_and_periods_after_round_trips(db):
    feed = (ScriptedFeed().at(1, "KRW-BTC", BUY, PRICE).at(1, "KRW-ETH", BUY, 5_000_000.0)
            .at(30, "KRW-BTC", SELL, PRICE * 1.05).at(30, "KRW-ETH", SELL, 4_800_000.0))
    agent = make_agent(db, feed)
    agent.run_cycle(hour(1))
    agent.run_cycle(hour(30))
    console, _ = chat(agent)
    trades = console.answer("/trades")
    assert trades.startswith("Last 2 of 2 closed trades")
    assert "KRW-BTC: 2025-10-01 01:00 UTC -> 2025-10-02 06:00 UTC, KRW 100,000,000 -> KRW 105,000,000, exit model" in trades
    assert console.answer("/trades 1").startswith("Last 1 of 2")
    performance = console.answer("/performance").splitlines()
    assert performance[0].startswith("KRW-BTC: 1 trade, 1 won, KRW +") and performance[1].startswith("KRW-ETH: 1 trade, 0 won, KRW -")
    assert console.answer("/weekly").startswith("week of 2025-09-29: equity")
    assert console.answer("/monthly").startswith("2025-10: equity")
    for line, expected in {"/trades 0": "from 1 to 500", "/trades many": "from 1 to 500",
                           "/weekly 1000": "from 1 to 120", "/monthly -1": "from 1 to 120"}.items():
        assert expected in console.answer(line), line


def test_logs_are_for_admins_and_masked(db):
    from core.redaction import register

    register(["s3cr3t-token-value"])
    logging.getLogger().addHandler(RECENT)
    try:
        logging.getLogger("tests").warning("Upbit said no to s3cr3t-token-value")
    finally:
        logging.getLogger().removeHandler(RECENT)
    agent = make_agent(db, ScriptedFeed())
    console, _ = chat(agent)
    shown = console.answer("/logs 5")
    assert "Upbit said no to" in shown and "s3cr3t-token-value" not in shown
    assert "for admins only" in CommandService(agent).handle("/logs", VIEWER).text
    assert "from 1 to 200" in console.answer("/logs 9999")


def test_no_input_makes_a_command_raise(db):
    """Random text, unicode, very long arguments and every command with wrong arguments: one line back."""
    feed = ScriptedFeed().at(1, "KRW-BTC", BUY, PRICE)
    agent = make_agent(db, feed)
    agent.run_cycle(hour(1))
    service = CommandService(agent)
    admin = Caller(user_id=1, source="console", role="admin")
    rng = random.Random(7)
    pieces = ["", " ", "0", "-1", "1e309", "nan", "KRW-BTC", "krw-eth", "BTC", "on", "off", "yes", "🚀", "비트코인",
              "매수", "x" * 5000, "\x00", "\u202e", "%s", "{}", "/", "//", "--", "0.5", "99999999999999999999"]
    lines = [f"/{name}" for name in REGISTRY]
    for name in REGISTRY:
        for _ in range(12):
            lines.append(" ".join([f"/{name}"] + rng.choices(pieces, k=rng.randint(1, 4))))
    for _ in range(300):
        lines.append("".join(rng.choice(pieces + ["/", " "]) for _ in range(rng.randint(1, 6))))
    for line in lines:
        for caller in (admin, VIEWER):
            reply = service.handle(line, caller, confirmed=False)
            assert reply is not None, line
            text = getattr(reply, "text", None)
            if text is not None:
                assert "failed unexpectedly" not in text, (line, text)
