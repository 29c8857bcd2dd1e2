"""The agent on a real SQLite database: one transaction per step, rollback, persisted settings,
pause semantics, emergency sells, restart from the stored fills, and the console commands."""
import io
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.console import ConsoleChat
from core.service.agent import Agent
from core.service.commands import CommandService
from core.service.reconcile import Reconciler
from core.service.registry import CONSOLE, Caller
from core.storage.books import fund_paper_account, load_books
from core.storage.journal import Journal
from core.storage.outbox import due
from core.storage.schema import (
    audit_log,
    equity_snapshots,
    fills,
    orders,
    positions,
    settings,
    signals,
)
from core.storage.settings_store import load_markets, load_risk_settings
from core.trading.cycle import TradingCycle
from core.trading.paper import PaperExchange
from core.trading.types import RiskSettings
from core.trading.watchlist import Watchlist
from tests.alerts import alert_texts, text
from tests.fakes.feeds import BUY, EMERGENCY, HOLD, SELL, ScriptedFeed, expected_return, hour

START_KRW = 1_000_000
VIEWER = Caller(user_id=42, source="telegram", role="viewer")


def count(db, table, *where):
    with db.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar()


def make_agent(db, feed, journal=None):
    """The paper agent as `autotrader run` assembles it: the wallet funded once, the books loaded from the database."""
    fund_paper_account(db, START_KRW, hour(0))
    exchange = PaperExchange(0, slippage=0)
    watchlist = Watchlist(load_markets(db) or ["KRW-BTC", "KRW-ETH"])
    cycle = TradingCycle(feed, exchange, load_books(db, exchange), recorder=journal or Journal(db),
                         reconciler=Reconciler(db, exchange, watchlist))
    return Agent(mode="paper", watchlist=watchlist, interval="1h", cycle=cycle, db=db)


def chat(agent):
    out = io.StringIO()
    return ConsoleChat(CommandService(agent), out), out


def test_each_step_is_stored_with_its_signal_order_fill_position_and_alert(db):
    feed = ScriptedFeed().at(1, "KRW-BTC", BUY, 100_000_000).at(1, "KRW-ETH", HOLD, 5_000_000)
    feed.at(2, "KRW-BTC", SELL, 101_000_000).at(2, "KRW-ETH", HOLD, 5_000_000)
    agent = make_agent(db, feed)
    agent.run_cycle(hour(1))
    assert count(db, signals) == 2 and count(db, orders) == 1 and count(db, fills) == 1
    with db.connect() as conn:
        row = conn.execute(select(positions)).one()
        eth = conn.execute(select(signals).where(signals.c.market == "KRW-ETH")).one()
    assert row.market == "KRW-BTC" and float(row.cost_krw) == pytest.approx(300_000 * 1.0005)
    assert eth.decision_action == "HOLD" and eth.decision_approved is False and eth.decision_reason == (
        "expected return +0.06%, not above the 0.95% a trade needs")
    agent.run_cycle(hour(2))
    assert count(db, positions) == 0 and count(db, fills) == 2 and count(db, equity_snapshots) == 2
    texts = [text(a) for a in due(db, hour(3))]
    assert any(t.startswith("Bought") for t in texts) and any("Sold" in t and "P/L" in t for t in texts)


class FailingJournal(Journal):
    """Breaks inside the transaction, after the signal, order and fill rows were written."""

    def __init__(self, db, fail_at):
        super().__init__(db)
        self.fail_at = fail_at

    def write_step(self, conn, result, portfolio, events):
        super().write_step(conn, result, portfolio, events)
        if result.at == self.fail_at and result.fill is not None:
            raise RuntimeError("disk full")


def test_a_failure_mid_step_rolls_the_step_back_and_the_other_markets_go_on(db):
    feed = ScriptedFeed().at(1, "KRW-BTC", BUY, 100_000_000).at(1, "KRW-ETH", BUY, 5_000_000)
    feed.at(2, "KRW-BTC", BUY, 100_000_000).at(2, "KRW-ETH", HOLD, 5_000_000)
    agent = make_agent(db, feed, FailingJournal(db, hour(1)))
    results = agent.run_cycle(hour(1))
    assert [r.error is not None for r in results] == [True, True]  # both buys failed to store: both undone
    assert count(db, signals) == 0 and count(db, fills) == 0 and count(db, positions) == 0
    assert count(db, orders, orders.c.state == "pending") == 2  # stored before sending, settled by reconciliation
    assert agent.portfolio.cash_krw == START_KRW and agent.cycle.exchange.cash_krw == START_KRW
    assert not agent.portfolio.positions and not agent.cycle.exchange.holdings
    assert sum("could not store the step, undone: RuntimeError" in t for t in alert_texts(db)) == 2
    agent.run_cycle(hour(2))  # reconciliation writes the undone orders off; the next cycle trades normally
    assert count(db, orders, orders.c.state == "failed") == 2 and count(db, orders, orders.c.state == "pending") == 0
    assert count(db, fills) == 1 and "KRW-BTC" in agent.portfolio.positions


class BulkFailingJournal(Journal):
    """Cannot store the steps that sent no order (they are written together, once per cycle)."""

    def record_steps(self, results, portfolio):
        raise RuntimeError("database locked")


def test_steps_without_orders_are_stored_together_and_a_failed_write_is_reported_not_lost_silently(db):
    feed = ScriptedFeed().at(1, "KRW-BTC", BUY, 100_000_000).at(1, "KRW-ETH", HOLD, 5_000_000)
    feed.at(2, "KRW-BTC", HOLD, 100_000_000).at(2, "KRW-ETH", HOLD, 5_000_000)
    agent = make_agent(db, feed, BulkFailingJournal(db))
    buy, hold = agent.run_cycle(hour(1))
    assert buy.fill is not None and buy.error is None  # a step with an order is committed on its own
    assert hold.error == "could not store the step, undone: RuntimeError" and hold.decision.action == "HOLD"
    assert count(db, signals) == 1 and count(db, fills) == 1 and "KRW-BTC" in agent.portfolio.positions
    assert sum("KRW-ETH" in t and "could not store the step" in t for t in alert_texts(db)) == 1
    agent.cycle.recorder = Journal(db)
    agent.run_cycle(hour(2))
    assert count(db, signals) == 3


def test_settings_persist_across_restarts_and_every_change_is_audited(db):
    agent = make_agent(db, ScriptedFeed())
    service = CommandService(agent)
    service.handle("/threshold buy 0.6", CONSOLE)
    service.handle("/set max_positions 2", CONSOLE)
    service.handle("/pause", CONSOLE)
    again = make_agent(db, ScriptedFeed())
    assert again.risk == RiskSettings(buy_threshold=0.6, max_positions=2, paused=True)
    assert load_risk_settings(db).paused is True
    with db.connect() as conn:
        audited = [(r.source, r.command, r.detail, r.succeeded) for r in conn.execute(select(audit_log).order_by(audit_log.c.id))]
    assert audited == [("console", "threshold", "buy_threshold=0.6", True), ("console", "set", "max_positions=2", True),
                       ("console", "pause", "paused=True", True)]
    assert count(db, settings) == 3


def test_paused_agent_records_signals_opens_nothing_but_still_sells_in_an_emergency(db):
    feed = ScriptedFeed().at(1, "KRW-BTC", BUY, 100_000_000)
    feed.at(2, "KRW-BTC", HOLD, 100_000_000).at(2, "KRW-ETH", BUY, 5_000_000)
    feed.at(3, "KRW-BTC", EMERGENCY, 99_500_000)
    agent = make_agent(db, feed)
    agent.run_cycle(hour(1))
    CommandService(agent).handle("/pause", CONSOLE)
    agent.run_cycle(hour(2))
    assert "KRW-ETH" not in agent.portfolio.positions and count(db, signals) == 3
    with db.connect() as conn:
        refused = conn.execute(select(signals.c.decision_reason).where(signals.c.market == "KRW-ETH")).scalar()
    assert refused == "trading is paused: no new positions"
    result, = agent.run_cycle(hour(3))
    assert result.decision.kind == "emergency" and result.fill is not None and not agent.portfolio.positions
    first = due(db, hour(4))[0]
    assert first.kind == "emergency" and text(first).startswith("EMERGENCY SELL KRW-BTC")


def test_restart_rebuilds_the_books_from_the_stored_fills(db):
    feed = ScriptedFeed().at(1, "KRW-BTC", BUY, 100_000_000).at(1, "KRW-ETH", BUY, 5_000_000)
    feed.at(2, "KRW-ETH", SELL, 5_100_000).at(3, "KRW-BTC", HOLD, 104_000_000)
    agent = make_agent(db, feed)
    for i in (1, 2, 3):
        agent.run_cycle(hour(i))
    wallet = PaperExchange(0, slippage=0)
    books = load_books(db, wallet)
    assert books.cash_krw == pytest.approx(agent.portfolio.cash_krw) == pytest.approx(wallet.cash_krw)
    assert books.positions == agent.portfolio.positions  # peak price included (104,000,000 after hour 3)
    assert books.positions["KRW-BTC"].peak_price_krw == 104_000_000
    assert [t.return_ratio for t in books.trades] == pytest.approx([t.return_ratio for t in agent.portfolio.trades])
    assert wallet.holdings == pytest.approx(agent.cycle.exchange.holdings)


def test_console_commands_reply_and_explain_bad_arguments(db):
    feed = ScriptedFeed().at(1, "KRW-BTC", BUY, 100_000_000).at(1, "KRW-ETH", BUY, 5_000_000)
    agent = make_agent(db, feed)
    agent.run_cycle(hour(1))
    console, out = chat(agent)
    replies = {line: console.answer(line) for line in (
        "/status", "/positions", "/balance", "/profit", "/signals", "/settings", "/help")}
    assert "trading active" in replies["/status"] and "Open positions: 2" in replies["/status"]
    assert "KRW-BTC: 0.003 at avg KRW 100,000,000" in replies["/positions"]
    assert "Equity" in replies["/balance"] and "Fees paid KRW 300" in replies["/balance"]
    assert "Closed trades 0" in replies["/profit"]
    assert "KRW-ETH @ 2025-10-01 00:00 UTC: BUY (buy 0.70" in replies["/signals"]
    assert "buy_threshold = 0.55" in replies["/settings"]
    assert "/sellall" in replies["/help"]
    bad = {
        "/threshold buy": "usage: /threshold buy|sell|emergency <0..1>",
        "/threshold up 0.5": "usage: /threshold buy|sell|emergency <0..1>",
        "/threshold sell 1.5": "sell_threshold must be between 0 and 1",
        "/set stop_loss": "expected a parameter and a value",
        "/set leverage 10": "unknown parameter 'leverage'",
        "/set max_positions 2.5": "max_positions needs a whole number",
        "/profit soon": "days must be a whole number",
        "/sell": "usage: /sell <market>",
        "/sell bitcoin!": "invalid market",
        "/sell KRW-XRP": "no open position in KRW-XRP",
        "/sellall now": "takes no arguments",
        "/moon": "unknown command /moon",
        "hello": "commands start with /",
    }
    for line, expected in bad.items():
        reply = console.answer(line)
        assert reply.startswith("Error:") and expected in reply and "\n" not in reply, (line, reply)
    assert agent.risk == RiskSettings()  # nothing changed by bad input
    sold = console.answer("/sell krw-btc")
    assert sold.startswith("KRW-BTC: sold 0.003 at KRW 100,000,000")
    assert console.answer("/sellall").startswith("KRW-ETH: sold")
    assert console.answer("/sellall") == "No open positions to sell."
    assert count(db, orders, orders.c.kind == "manual") == 2
    assert count(db, audit_log, audit_log.c.command.in_(["sell", "sellall"])) == 2


def test_viewers_may_look_but_not_touch(db):
    agent = make_agent(db, ScriptedFeed())
    service = CommandService(agent)
    assert "/pause" not in str(service.handle("/help", VIEWER))
    for line in ("/pause", "/threshold buy 0.1", "/sellall"):
        assert "for admins only" in service.handle(line, VIEWER).text
    assert agent.risk == RiskSettings()
    assert count(db, audit_log, audit_log.c.succeeded.is_(False), audit_log.c.user_id == 42) == 3


def test_console_prints_replies_and_alerts_emergencies_first(db):
    feed = ScriptedFeed().at(1, "KRW-BTC", BUY, 100_000_000).at(2, "KRW-BTC", EMERGENCY, 99_000_000)
    agent = make_agent(db, feed)
    console, out = chat(agent)
    agent.run_cycle(hour(1))
    agent.run_cycle(hour(2))
    for line in ("/status", "/pause"):
        console.answer(line)
    assert console.flush_alerts(hour(2) + timedelta(minutes=1)) >= 3
    lines = out.getvalue().splitlines()
    alerts = [line for line in lines if line.startswith("[")]
    assert "EMERGENCY: EMERGENCY SELL KRW-BTC" in alerts[0]
    assert console.flush_alerts(hour(3)) == 0  # each alert printed once


def test_price_shock_guard_sells_a_falling_coin_even_when_paused(db):
    from datetime import datetime, timezone

    from core.trading.shock import PriceShockGuard

    guard, risk = PriceShockGuard(), RiskSettings()
    t0 = datetime(2025, 10, 1, 12, tzinfo=timezone.utc)
    assert guard.observe("KRW-BTC", 100_000_000, t0, risk) is None
    assert guard.observe("KRW-BTC", 98_000_000, t0 + timedelta(seconds=30), risk) is None  # -2.0%
    assert "within 1 min" in guard.observe("KRW-BTC", 97_400_000, t0 + timedelta(seconds=50), risk)  # -2.6%
    slow = PriceShockGuard()
    for i, price in enumerate([100, 98.6, 97.2, 95.9]):  # -4.1% in 3 minutes, never -2.5% in one
        reason = slow.observe("KRW-ETH", price, t0 + timedelta(minutes=i), risk)
    assert reason is not None and "within 3 min" in reason
    off = RiskSettings().with_value("shock_drop_1m", "0").with_value("shock_drop_3m", "0").with_value("shock_drop_5m", "0")
    assert PriceShockGuard().observe("KRW-BTC", 1, t0, off) is None and not off.shock_windows

    feed = ScriptedFeed().at(1, "KRW-BTC", BUY, 100_000_000)
    agent = make_agent(db, feed)
    agent.run_cycle(hour(1))
    CommandService(agent).handle("/pause", CONSOLE)
    result = agent.cycle.shock_sell("KRW-BTC", 97_000_000, hour(1) + timedelta(minutes=20), "price shock: test")
    assert result.decision.kind == "emergency" and result.fill.price_krw == 97_000_000 and not agent.portfolio.positions
    assert text(due(db, hour(2))[0]).startswith("EMERGENCY SELL KRW-BTC: price shock")


def test_in_a_replay_the_shock_guard_judges_each_candles_low(db):
    from core.trading.types import MarketInput
    from models.signal import MLSignal

    class Candles:
        def inputs(self, now):
            probabilities = BUY if now == hour(1) else HOLD
            signal = MLSignal.from_probabilities("KRW-BTC", probabilities, timestamp=now,
                                                 expected_return=expected_return(probabilities))
            low = {1: 99_000_000, 2: 95_000_000, 3: 93_000_000}[(now - hour(0)).seconds // 3600]
            return {"KRW-BTC": MarketInput(signal=signal, price_krw=100_000_000, open_krw=100_000_000, low_krw=low)}, {}

    agent = make_agent(db, Candles())
    agent.run_cycle(hour(1))
    agent.run_cycle(hour(2))  # -5% open to low: within the guard's widest limit (-6%)
    assert "KRW-BTC" in agent.portfolio.positions
    result, = agent.run_cycle(hour(3))  # -7%: sold at the -6% trigger price, not at the close
    assert result.decision.kind == "emergency" and result.decision.reason.startswith("price shock")
    assert result.fill.price_krw == 94_000_000


def test_daily_model_and_markets_commands(db):
    from models.manager import MultiCoinModelManager

    feed = ScriptedFeed().at(1, "KRW-BTC", BUY, 100_000_000).at(25, "KRW-BTC", SELL, 102_000_000)
    agent = make_agent(db, feed)
    agent.manager = MultiCoinModelManager(markets=["KRW-BTC", "KRW-SOL"])
    agent.watchlist.replace(("KRW-BTC", "KRW-SOL"))
    for i in (1, 25):
        agent.run_cycle(hour(i))
    console, _ = chat(agent)
    daily = console.answer("/daily 5").splitlines()
    assert daily[0].startswith("2025-10-01: equity") and "0 trades closed" in daily[0]
    assert daily[1].startswith("2025-10-02: equity") and "1 trade closed" in daily[1]
    assert "days must be a whole number" in console.answer("/daily -3")
    model = console.answer("/model")
    assert "KRW-BTC: hybrid-global" in model and "(global)" in model and "KRW-SOL: " in model and "validation log-loss" in model
    assert not agent.manager.loaded_paths  # /model reads metadata, loads no weights

    agent.watchlist.replace(("KRW-BTC",))
    assert console.answer("/markets add krw-xrp") == "Watching: KRW-BTC, KRW-XRP"
    assert "already watching" in console.answer("/markets add KRW-XRP")
    assert "usage: /markets" in console.answer("/markets drop KRW-XRP")
    feed.at(40, "KRW-BTC", BUY, 100_000_000)  # after the 6-hour cooldown
    agent.run_cycle(hour(40))
    assert "open position: sell it first" in console.answer("/markets remove KRW-BTC")
    assert make_agent(db, ScriptedFeed()).markets == ("KRW-BTC", "KRW-XRP")  # persisted over the start list
    assert console.answer("/markets remove KRW-XRP") == "Watching: KRW-BTC"
    assert "for admins only" in CommandService(agent).handle("/markets add KRW-ETH", VIEWER).text


def test_chart_and_equity_pictures(db, tmp_path):
    from datetime import timezone

    import pandas as pd

    class WithCandles(ScriptedFeed):
        def candles(self, market, count, now):
            index = pd.date_range("2025-09-30 20:00", periods=5, freq="h", tz=timezone.utc)
            return pd.DataFrame({"open": 1e8, "high": 1.01e8, "low": 0.99e8, "close": 1e8}, index=index)

    feed = WithCandles().at(1, "KRW-BTC", BUY, 100_000_000).at(2, "KRW-BTC", SELL, 100_500_000)
    agent = make_agent(db, feed)
    for i in (1, 2):
        agent.run_cycle(hour(i))
    console, _ = chat(agent)
    console.pictures = tmp_path / "charts"
    reply = console.answer("/chart KRW-BTC")
    assert reply.startswith("KRW-BTC: 5 candles, 2 BUY/SELL signals, 2 fills; picture written to")
    assert (tmp_path / "charts" / "chart-KRW-BTC.png").read_bytes()[:4] == b"\x89PNG"
    assert "picture written" in console.answer("/equity")
    assert (tmp_path / "charts" / "equity.png").read_bytes()[:4] == b"\x89PNG"
    assert "usage: /chart <market>" in console.answer("/chart")


def test_daily_summary_is_data_rendered_as_text(db):
    from bot.messages import RENDERERS
    from core.runtime.runtime import summary_params

    agent = make_agent(db, ScriptedFeed().at(1, "KRW-BTC", BUY, 100_000_000))
    agent.run_cycle(hour(1))
    params = summary_params(CommandService(agent))
    assert params["days"][0]["day"] == "2025-10-01" and params["positions"][0]["market"] == "KRW-BTC"
    text = RENDERERS["daily_summary"](None, params)
    assert text.startswith("Daily summary\n2025-10-01: equity") and "Cash " in text and "KRW-BTC: 0.003" in text


def test_sales_can_ask_for_confirmation_after_checking_their_arguments(db):
    agent = make_agent(db, ScriptedFeed().at(1, "KRW-BTC", BUY, 100_000_000))
    agent.run_cycle(hour(1))
    service = CommandService(agent)
    ask = service.handle("/sell krw-btc", CONSOLE, confirmed=False)
    assert ask.question == "Sell the whole KRW-BTC position now at market price?" and ask.command == "/sell krw-btc"
    assert "KRW-BTC" in agent.portfolio.positions  # nothing sold yet
    assert "no open position in KRW-ETH" in service.handle("/sell KRW-ETH", CONSOLE, confirmed=False).text
    assert "for admins only" in service.handle("/sellall", VIEWER, confirmed=False).text
    assert service.handle("/sellall", CONSOLE, confirmed=False).command == "/sellall"
    assert service.handle(ask.command, CONSOLE).results[0].fill is not None


def test_a_confirmation_works_once_for_the_asker_until_it_expires(db):
    agent = make_agent(db, ScriptedFeed().at(1, "KRW-BTC", BUY, 100_000_000).at(1, "KRW-ETH", BUY, 5_000_000))
    agent.run_cycle(hour(1))
    clock = [1000.0]
    service = CommandService(agent, clock=lambda: clock[0])
    admin, other = (Caller(user_id=uid, source="telegram", role="admin") for uid in (1, 2))
    ask = service.handle("/sell KRW-BTC", admin, confirmed=False)
    assert "only the person who sent the command" in service.confirm(ask.key, other).text
    assert service.confirm(ask.key, admin).results[0].fill is not None
    assert "expired or was answered already" in service.confirm(ask.key, admin).text  # pressed twice: nothing more
    late = service.handle("/sell KRW-ETH", admin, confirmed=False)
    clock[0] += 121
    assert "expired" in service.confirm(late.key, admin).text and "KRW-ETH" in agent.portfolio.positions
    cancelled = service.handle("/sellall", admin, confirmed=False)
    assert service.cancel(cancelled.key) and not service.cancel(cancelled.key)
    assert "expired" in service.confirm(cancelled.key, admin).text


def test_a_new_command_is_one_declaration_and_every_front_end_has_it(db):
    from bot.telegram_bot import menu
    from bot.views import render
    from core.service.registry import REGISTRY, Source, commands_for

    service = CommandService(make_agent(db, ScriptedFeed()))
    assert render(service.handle("/version", CONSOLE)).startswith("autotrader 0.")
    assert "version" in REGISTRY and "/version" in render(service.handle("/help", CONSOLE))
    assert "version" in [c.command for c in menu()]
    assert {c.name for c in commands_for(Source.CONSOLE)} == set(REGISTRY) - {"start", "alerts"}
    assert "unknown command /start" in render(service.handle("/start", CONSOLE))  # Telegram only
