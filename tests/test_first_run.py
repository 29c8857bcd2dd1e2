"""Issue 22: the paths a new user falls into, through the real CLI where the point is about the CLI."""
from __future__ import annotations

import io
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from core import redaction
from core.data.candles import load_candle_csv, write_candle_csv
from tests.alerts import text
from tests.conftest import DATA, ROOT
from tests.fakes.telegram_server import FakeTelegram
from tests.test_cli import run_cli


def one_line_error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, (result.returncode, result.stderr)
    return lines[0]


@pytest.fixture(scope="module")
def short_replay(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("replay")
    write_candle_csv(load_candle_csv(DATA / "upbit-1h" / "KRW-BTC_1h.csv").iloc[-200:], out / "KRW-BTC_1h.csv")
    return out


def test_a_token_telegram_refuses_is_one_masked_line_and_never_printed(short_replay, tmp_path):
    token = "987654321:AAH-not-the-bots-token-XYZW"
    with FakeTelegram() as tg:  # answers 401 to any other token, as Telegram does
        result = run_cli("-v", "run", "--replay", str(short_replay), "--markets", "KRW-BTC", "--db",
                         f"sqlite:///{tmp_path / 'r.db'}", cwd=tmp_path,
                         env={"TELEGRAM_BOT_TOKEN": token, "TELEGRAM_API_BASE_URL": tg.base_url,
                              "TELEGRAM_ADMIN_IDS": "1"})
    assert token not in result.stdout + result.stderr
    assert token.split(":")[1] not in result.stdout + result.stderr
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == ("autotrader run: Telegram rejected the bot token (…XYZW); "
                                                      "check TELEGRAM_BOT_TOKEN")


def test_every_stored_or_shown_text_passes_the_same_redaction(db_url):
    from datetime import datetime, timezone

    from core.storage.database import open_database
    from core.storage.outbox import due, enqueue_now, mark_retry
    from core.storage.schema import audit_log
    from core.storage.settings_store import audit
    from core.trading.events import EventKind, event

    secret = "upbit-secret-key-0123456789"
    redaction.register([secret])
    try:
        db = open_database(db_url)
        now = datetime.now(timezone.utc)
        enqueue_now(db, event(EventKind.ERROR, "skipped", now, "KRW-BTC", error=f"HTTP 401 for key {secret}"))
        alert = due(db, now)[0]
        assert secret not in text(alert) and "***" in text(alert)
        mark_retry(db, alert.id, f"boom {secret}", now)
        with db.begin() as conn:
            audit(conn, now, 1, "telegram", "set", f"detail {secret}", False)
        with db.connect() as conn:
            assert secret not in conn.execute(select(audit_log.c.detail)).scalar()
        out = io.StringIO()
        from bot.console import ConsoleChat

        ConsoleChat(None, out).print(f"reply with {secret}")
        assert secret not in out.getvalue()
        db.dispose()
    finally:
        redaction.forget_all()


def _history_db(path: Path) -> str:
    url = f"sqlite:///{path}"
    from core.storage.database import open_database

    open_database(url).dispose()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO orders (identifier, market, side, ord_type, state, kind, created_at, updated_at) "
                     "VALUES ('x1', 'KRW-BTC', 'bid', 'price', 'done', 'signal', '2025-01-01', '2025-01-01')")
    return url


def test_db_downgrade_needs_a_target_and_never_drops_a_history_unasked(tmp_path):
    url = _history_db(tmp_path / "live.db")
    env = {"DATABASE_URL": url}
    assert "needs a target revision" in one_line_error(run_cli("db", "downgrade", env=env))
    refused = one_line_error(run_cli("db", "downgrade", "base", "--yes", env=env))
    assert "holds a trading history (1 orders)" in refused and "--force" in refused and "copy the file" in refused
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    assert run_cli("db", "upgrade", env={"DATABASE_URL": empty}).returncode == 0
    assert "add --yes" in one_line_error(run_cli("db", "downgrade", "base", env={"DATABASE_URL": empty}))
    step = run_cli("db", "downgrade", "0004", "--force", env=env)
    assert step.returncode == 0 and "backup" in step.stdout
    with sqlite3.connect(tmp_path / "live.db") as conn:  # one step down: the orders are still there
        assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 1
    gone = run_cli("db", "downgrade", "base", "--yes", "--force", env=env)
    assert gone.returncode == 0 and "done" in gone.stdout


@pytest.mark.slow
def test_train_never_overwrites_the_shipped_models(small_dataset, tmp_path):
    shipped = ROOT / "models" / "artifacts"
    before = {p.name: p.stat().st_mtime_ns for p in (shipped / "global").iterdir()}
    refused = one_line_error(run_cli("train", "--data", str(small_dataset), "--markets", "KRW-BTC", "--out",
                                     str(shipped), "--quiet"))
    assert "shipped models" in refused and "MODEL_DIR" in refused
    result = run_cli("train", "--data", str(small_dataset), "--markets", "KRW-BTC", "--epochs", "1", "--quiet",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    made = sorted((tmp_path / "models").glob("trained-*"))
    assert len(made) == 1 and (made[0] / "global" / "model_metadata.json").is_file()
    assert f"MODEL_DIR={Path('models') / made[0].name}" in result.stdout
    assert {p.name: p.stat().st_mtime_ns for p in (shipped / "global").iterdir()} == before


@pytest.mark.parametrize("url, expected", [
    ("postgresql+psycopg://bot:hunter2secret@127.0.0.1:9/trading", "cannot connect"),
    ("sqlite:///{tmp}/no/such/folder/bot.db", "folder"),
    ("mysql://bot:hunter2secret@127.0.0.1/trading", "the mysql driver is not installed"),
])
def test_a_database_that_cannot_be_used_is_one_line_naming_the_setting(url, expected, tmp_path):
    url = url.format(tmp=tmp_path)
    for args in (("db", "upgrade"), ("run",)):
        line = one_line_error(run_cli(*args, env={"DATABASE_URL": url, "UPBIT_API_URL": "http://127.0.0.1:9"},
                                      cwd=tmp_path, timeout=60))
        assert line.startswith(f"autotrader {args[0]}: DATABASE_URL ") and expected in line
        assert "hunter2secret" not in line


def test_version_and_argument_mistakes_are_explained(tmp_path):
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("autotrader 0.")
    line = one_line_error(run_cli("backtest", "--start", "2025-10-10", "--end", "2025-10-01"))
    assert "--start 2025-10-10T00:00:00+00:00 is after --end 2025-10-01T00:00:00+00:00" in line
    line = one_line_error(run_cli("run", "--replay", str(DATA / "upbit-1h" / "KRW-BTC_1h.csv"), cwd=tmp_path))
    assert "is a file; give the directory that holds it" in line and "<MARKET>_<interval>.csv" in line


def test_pictures_read_in_krw_with_legends_and_a_buy_and_hold_comparison(btc, tmp_path):
    from datetime import timedelta

    from bot.charts import chart_figure, equity_figure
    from core.service.reports import ChartData, EquityData

    candles = btc.iloc[-120:]
    times = [t.to_pydatetime() for t in candles.index]
    chart = chart_figure(ChartData("KRW-BTC", candles, ((times[10], "BUY"), (times[50], "SELL")),
                                   ((times[11], "bid", float(candles["close"].iloc[11])),)))
    ax = chart.axes[0]
    chart.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert labels and all("," in t for t in labels) and ax.yaxis.get_offset_text().get_text() == ""
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "candle closed up (red rises)" in legend and "candle closed down (blue falls)" in legend
    assert {"model BUY", "model SELL", "bot bought", "bot sold"} <= set(legend)
    dates = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert 3 <= len(dates) <= 9  # spaced, not one label per candle
    equity = tuple(1_000_000 + 1000 * i for i in range(100))
    data = EquityData(tuple(times[:100]), equity, tuple(times[:100]), tuple(1_000_000 - 500 * i for i in range(100)),
                      ((times[5] + timedelta(minutes=1), "bid"), (times[40], "ask")))
    figure = equity_figure(data)
    top = figure.axes[0]
    figure.canvas.draw()
    assert {"the bot's equity", "buy and hold (watched markets, equal weights)", "buy", "sale"} <= {
        t.get_text() for t in top.get_legend().get_texts()}
    assert all("," in t.get_text() for t in top.get_yticklabels() if t.get_text())


def test_equity_data_compares_with_buy_and_hold_and_marks_the_fills(db_url, btc):
    from core.data.sources import MemorySource
    from core.service.reports import equity_data
    from core.storage.database import open_database
    from core.storage.schema import equity_snapshots, fills, orders

    db = open_database(db_url)
    closes = btc.index[-50:] + (btc.index[1] - btc.index[0])
    with db.begin() as conn:
        for i, at in enumerate(closes):
            conn.execute(equity_snapshots.insert().values(at=at.to_pydatetime(), cash_krw=1e6, equity_krw=1e6 + i,
                                                          open_positions=0))
        conn.execute(orders.insert().values(identifier="o1", market="KRW-BTC", side="bid", ord_type="price",
                                            state="done", kind="signal", created_at=closes[3], updated_at=closes[3]))
        conn.execute(fills.insert().values(order_identifier="o1", market="KRW-BTC", side="bid", price_krw=1.0,
                                           volume=1.0, funds_krw=1.0, fee_krw=0.0, filled_at=closes[3].to_pydatetime()))
    class Feed:  # what the cycle's feed offers charts: the last candles closed by a time
        candles = MemorySource({"KRW-BTC": btc}, 3600).closed_candles

    data = equity_data(db, Feed(), ["KRW-BTC"], closes[-1].to_pydatetime())
    assert len(data.hold_krw) == 50 and data.hold_krw[0] == pytest.approx(1e6)
    last = float(btc["close"].iloc[-1] / btc["close"].iloc[-50])
    assert data.hold_krw[-1] == pytest.approx(1e6 * last)
    assert [side for _, side in data.trades] == ["bid"]
    db.dispose()


def test_warming_up_is_information_said_once_and_signals_say_why(db_url):
    from bot.views import render
    from core.service.commands import CommandService
    from core.service.registry import CONSOLE
    from core.storage.database import open_database
    from core.storage.outbox import due
    from core.trading.types import WarmingUp
    from tests.fakes.feeds import HOLD, ScriptedFeed, hour
    from tests.test_agent import make_agent

    db = open_database(db_url)
    feed = ScriptedFeed()
    for i in range(1, 6):
        feed.at(i, "KRW-BTC", HOLD, 100_000_000)
        feed.errors[hour(i)] = {"KRW-ETH": WarmingUp(10 - i)}
    agent = make_agent(db, feed)
    for i in range(1, 6):
        agent.run_cycle(hour(i))
    alerts = due(db, hour(6), limit=500)
    told = [a for a in alerts if "KRW-ETH" in text(a)]
    assert len(told) == 1 and told[0].kind == "system"
    assert text(told[0]) == "KRW-ETH is warming up: 9 more candles of history needed before its first signal"
    assert not [a for a in alerts if a.kind == "error"]
    reply = render(CommandService(agent).handle("/signals", CONSOLE))
    assert "KRW-ETH: no signal now: warming up: 5 more candles of history needed before its first signal" in reply
    db.dispose()


def test_the_fragmented_replay_starts_without_an_error_line(tmp_path):
    """Runs of ~200 candles between ~300-candle holes: each run warms up again; it is said once."""
    candles = load_candle_csv(DATA / "upbit-1h-fragmented-2020-2022" / "KRW-BTC_1h.csv.gz").iloc[:1200]
    write_candle_csv(candles, tmp_path / "KRW-BTC_1h.csv")
    result = run_cli("run", "--replay", str(tmp_path), "--markets", "KRW-BTC",
                     "--speed", "0", "--db", f"sqlite:///{tmp_path / 'r.db'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    warming = [line for line in lines if "warming up" in line]
    assert len(warming) == 1 and "System: KRW-BTC is warming up: 149 more candles" in warming[0]
    assert not [line for line in lines if "] error:" in line]


def test_settings_that_switch_trading_off_are_accepted_with_a_warning(db_url):
    from bot.views import render
    from core.service.commands import CommandService
    from core.service.registry import CONSOLE
    from core.storage.database import open_database
    from tests.fakes.feeds import ScriptedFeed
    from tests.test_agent import make_agent

    db = open_database(db_url)
    service = CommandService(make_agent(db, ScriptedFeed()))
    ask = lambda line: render(service.handle(line, CONSOLE))  # noqa: E731
    assert ask("/set max_positions 0") == ("max_positions set to 0 (was 3).\nWarning: no position will open (limit 0); "
                                           "/pause says the same more clearly.")
    assert "Warning: the model's SELL fires whenever sell > buy" in ask("/threshold sell 0")
    assert "Warning: no BUY can ever fire" in ask("/threshold buy 1")
    assert "Warning: the stop-loss is off" in ask("/set stop_loss 0")
    refused = ask("/set stop_loss 1")
    assert refused.startswith("Error: stop_loss 100%: a price cannot fall 100% or more; use 0 to switch the stop-loss off")
    assert "Warning" not in ask("/set cooldown_hours 12")
    settings = ask("/settings")
    assert "stop_loss = 0.0%" in settings and "cooldown_hours = 12 h" in settings and "max_position_ratio = 30.0%" in settings
    assert "buy_threshold = 1.00" in settings and "paused = no" in settings
    db.dispose()


class Lines:
    """A process's output read line by line in the background, with bounded waits."""

    def __init__(self, stream):
        import threading

        self.lines: list[str] = []
        self._thread = threading.Thread(target=lambda: [self.lines.append(line) for line in stream], daemon=True)
        self._thread.start()

    def wait_for(self, needle: str, timeout: float) -> float:
        started = time.monotonic()
        while not any(needle in line for line in self.lines):
            assert time.monotonic() - started < timeout, f"no {needle!r} within {timeout} s: {self.lines[-20:]}"
            time.sleep(0.05)
        return time.monotonic() - started

    def text(self) -> str:
        return "".join(self.lines)


def _spawn(args, env, cwd):
    import os
    import subprocess

    from tests.test_telegram_e2e import autotrader

    full = {k: v for k, v in os.environ.items() if not k.startswith(("MARKETS", "TELEGRAM_", "AUTOTRADER_", "UPBIT_"))}
    full.update(env)
    return subprocess.Popen([autotrader(), *args], env=full, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1)


def test_with_upbit_unreachable_commands_are_answered_and_the_outage_is_said_once(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}", "UPBIT_API_URL": "http://127.0.0.1:9",
           "CYCLE_SECONDS": "0.5", "MARKETS": "KRW-BTC,KRW-ETH,KRW-XRP,KRW-SOL"}
    bot = _spawn(["run"], env, tmp_path)
    out, err = Lines(bot.stdout), Lines(bot.stderr)
    try:
        out.wait_for("Type /help", 60)
        bot.stdin.write("/status\n")
        bot.stdin.flush()
        assert out.wait_for("Mode: paper; trading active", 3) < 3  # answered during start-up, not after it
        err.wait_for("Upbit market data cannot be reached", 20)
        out.wait_for("⚠️ Error: No market data: Upbit", 10)
        time.sleep(3)  # several cycles, every one of them without market data
        bot.stdin.write("/status\n/health\n")
        bot.stdin.flush()
        out.wait_for("Upbit market data: UNREACHABLE since", 10)
        bot.send_signal(signal.SIGTERM)
        assert bot.wait(timeout=30) == 0
    finally:
        if bot.poll() is None:
            bot.kill()
    warnings = err.text()
    assert warnings.count("cannot be reached") == 1 and "retrying" not in warnings
    assert out.text().count("No market data") == 1  # one alert per outage, not one per market and cycle
    assert "is not ready to trade yet" not in warnings  # the outage was said once already


def test_with_telegram_unreachable_the_bot_trades_says_so_and_delivers_later(tmp_path, btc):
    from datetime import datetime, timezone

    from sqlalchemy import func

    from core.storage.database import open_database
    from core.storage.schema import outbox, signals
    from core.storage.users import register
    from tests.fakes.upbit_server import FakeUpbit

    url = f"sqlite:///{tmp_path / 'bot.db'}"
    db = open_database(url)
    register(db, 111, 111, "admin", datetime.now(timezone.utc))

    def count(table, *where) -> int:
        with db.connect() as conn:
            return conn.execute(select(func.count()).select_from(table).where(*where)).scalar()

    with FakeUpbit({"KRW-BTC": btc}) as upbit, FakeTelegram() as tg:
        tg.outage.add("getMe")  # Telegram answers 502 Bad Gateway for a while
        env = {"DATABASE_URL": url, "UPBIT_API_URL": upbit.url, "CYCLE_SECONDS": "1", "MARKETS": "KRW-BTC",
               "TELEGRAM_BOT_TOKEN": tg.token, "TELEGRAM_API_BASE_URL": tg.base_url, "TELEGRAM_ADMIN_IDS": "111",
               "DAILY_SUMMARY_UTC": "off"}
        bot = _spawn(["run"], env, tmp_path)
        out, err = Lines(bot.stdout), Lines(bot.stderr)
        try:
            assert err.wait_for("Telegram cannot be reached", 30) < 30
            assert "trading goes on and alerts wait in the database" in err.text()
            deadline = time.monotonic() + 30
            while count(signals) == 0:  # the cycle runs although Telegram does not answer
                assert time.monotonic() < deadline, err.text()[-2000:]
                time.sleep(0.2)
            assert count(outbox, outbox.c.status == "pending") >= 1 and not tg.sent
            tg.outage.clear()
            out.wait_for("Telegram bot connected", 90)
            tg.wait_for(lambda s: s.chat_id == 111 and "autotrader started" in s.text, 30, "the alerts kept meanwhile")
            bot.send_signal(signal.SIGTERM)
            assert bot.wait(timeout=60) == 0
        finally:
            if bot.poll() is None:
                bot.kill()
        assert err.text().count("Telegram cannot be reached") == 1 and "Telegram is reachable again" in err.text()
    db.dispose()
