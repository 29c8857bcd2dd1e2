"""The real `autotrader run` in a subprocess, talking to a local Bot API server, in paper mode over
replayed real candles: commands and roles, confirmations, persisted thresholds used by the next
cycle, pause with emergency sells, alerts to every subscribed chat, an outage, and no token in logs."""
import html
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, select

from core.data.candles import load_candle_csv
from core.storage.schema import outbox
from core.trading.events import PRIORITY
from tests.alerts import text
from tests.conftest import DATA, ROOT
from tests.fakes.telegram_server import FakeTelegram

ADMIN, ADMIN2, VIEWER, STRANGER = 111, 222, 333, 999
LABEL_KIND = {"🚨 EMERGENCY": "emergency", "Exit": "exit", "Fill": "fill", "Signal": "signal", "⚠️ Error": "error",
              "System": "system", "Summary": "summary"}


def autotrader() -> str:
    return shutil.which("autotrader") or str(Path(sys.executable).parent / "autotrader")


def start(tg: FakeTelegram, args: list[str], log_path: Path, extra_env: dict | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MARKETS", "MODEL_DIR", "AUTOTRADER_", "TELEGRAM_"))}
    env.update({"TELEGRAM_BOT_TOKEN": tg.token, "TELEGRAM_API_BASE_URL": tg.base_url,
                "TELEGRAM_ADMIN_IDS": f"{ADMIN},{ADMIN2}", "TELEGRAM_VIEWER_IDS": str(VIEWER), **(extra_env or {})})
    out = open(log_path, "w")
    return subprocess.Popen([autotrader(), "-v", "run", *args], env=env, stdout=out, stderr=subprocess.STDOUT,
                            cwd=ROOT, text=True)


def wait_ready(tg: FakeTelegram, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while "getUpdates" not in tg.calls:
        assert process.poll() is None, "autotrader exited before polling"
        assert time.monotonic() < deadline, "autotrader did not start polling"
        time.sleep(0.1)


def buttons(message) -> list[tuple[str, str]]:
    """(text, callback data) of each inline button under a message."""
    import json

    markup = json.loads(message.params["reply_markup"])
    return [(b["text"], b["callback_data"]) for row in markup["inline_keyboard"] for b in row]


def alerts(tg: FakeTelegram, chat: int) -> list[str]:
    return [s.text for s in tg.to(chat) if s.method == "sendMessage" and s.text.startswith("<b>")]


def test_the_bot_end_to_end_over_a_replay(short_data, tmp_path, db_url):
    log_path = tmp_path / "bot.log"
    with FakeTelegram() as tg:
        bot = start(tg, ["--replay", str(short_data), "--markets", "KRW-BTC", "--speed", "10", "--db", db_url], log_path)
        try:
            wait_ready(tg, bot)
            assert {c["command"] for c in tg.commands} >= {"status", "pause", "threshold", "sell", "start", "alerts"}
            for user in (ADMIN, ADMIN2, VIEWER):
                tg.message(user, "/start")
            tg.message(STRANGER, "/status")
            tg.message(STRANGER, "/pause")
            tg.message(VIEWER, "/pause")
            tg.message(VIEWER, "/status")
            tg.message(ADMIN, "/threshold buy 2")
            tg.message(ADMIN, "/threshold buy 0.3", chat_id=-1001, chat_type="supergroup")  # sender decides, not chat
            tg.wait_for(lambda s: s.chat_id == -1001 and "buy_threshold set to 0.30 (was 0.55)" in s.text
                        and "applies only after /set decision_rule threshold" in s.text, what="threshold")
            tg.message(ADMIN, "/set decision_rule threshold")
            tg.wait_for(lambda s: s.chat_id == ADMIN and "decision_rule set to threshold (was expected_return)" in s.text,
                        what="the threshold rule")
            assert any("Registered: you are a viewer" in s.text for s in tg.to(VIEWER))
            assert any("Registered: you are an admin" in s.text for s in tg.to(ADMIN2))
            assert [s.text for s in tg.to(VIEWER) if "admins only" in s.text] == ["Error: /pause is for admins only"]
            assert any(s.text.startswith("Mode: paper (replay)") for s in tg.to(VIEWER))
            assert any("buy_threshold must be between 0 and 1" in s.text for s in tg.to(ADMIN))

            # the new threshold is used by the next cycles: the bot buys, and every subscriber hears it
            for chat in (ADMIN, ADMIN2, VIEWER):
                tg.wait_for(lambda s, c=chat: s.chat_id == c and "Bought" in s.text, 60, f"a fill alert for {chat}")
            # /sell asks first; a viewer cannot press the admin's button; cancel sells nothing
            tg.message(ADMIN, "/sell KRW-BTC")
            question = tg.wait_for(lambda s: s.chat_id == ADMIN and "Sell the whole KRW-BTC" in s.text, what="question")
            yes, no = buttons(question)
            assert yes == ("Yes, sell", yes[1]) and no[0] == "Cancel"
            tg.press(VIEWER, yes[1], question)
            tg.wait_for(lambda s: s.method == "editMessageText" and "only the person who sent the command" in s.text,
                        what="refusal")
            tg.press(ADMIN, no[1], question)
            tg.wait_for(lambda s: s.method == "editMessageText" and s.text == "Cancelled: nothing done.", what="cancel")
            tg.press(ADMIN, yes[1], question)  # the same question, answered already: nothing is sold
            tg.wait_for(lambda s: s.method == "editMessageText" and "expired or was answered already" in s.text,
                        what="a used button")
            tg.message(VIEWER, "/positions")
            tg.wait_for(lambda s: s.chat_id == VIEWER and s.text.startswith("KRW-BTC: "), what="the position kept")

            # every query command answers a viewer
            queries = ["/help", "/balance", "/profit 7", "/daily", "/signals", "/model", "/settings", "/alerts"]
            before = len(tg.to(VIEWER))
            for line in queries:
                tg.message(VIEWER, line)
            deadline = time.monotonic() + 30
            while len([s for s in tg.to(VIEWER)[before:] if not s.text.startswith("<b>")]) < len(queries):
                assert time.monotonic() < deadline, [s.text[:40] for s in tg.to(VIEWER)[before:]]
                time.sleep(0.1)
            replies = "\n".join(s.text for s in tg.to(VIEWER)[before:])
            for expected in ("/chart", "Fees paid", "Profit, last 7 days", "equity", "KRW-BTC @", "hybrid-global",
                             "buy_threshold = 0.30", "emergency: on"):
                assert expected in replies, expected
            assert "/pause" not in replies.split("Commands:")[1].split("<b>")[0]  # viewers see no control commands

            tg.message(ADMIN, "/pause")
            tg.wait_for(lambda s: s.chat_id == ADMIN and s.text.startswith("Trading paused"), what="pause reply")
            bought_before = len([t for t in alerts(tg, ADMIN) if "Bought" in t])
            tg.message(ADMIN, "/threshold emergency 0.001")
            for chat in (ADMIN, ADMIN2, VIEWER):
                tg.wait_for(lambda s, c=chat: s.chat_id == c and "EMERGENCY SELL KRW-BTC" in s.text, 30,
                            f"the emergency alert for {chat}")

            tg.message(VIEWER, "/chart KRW-BTC")
            tg.message(VIEWER, "/equity")
            photo = tg.wait_for(lambda s: s.method == "sendPhoto" and s.chat_id == VIEWER, 30, "the chart")
            assert photo.text.startswith("KRW-BTC: 120 candles")
            tg.wait_for(lambda s: s.method == "sendPhoto" and s.text.startswith("Equity curve"), 30, "the equity picture")

            # Telegram goes down: changes still happen and their alerts wait, then arrive in order
            tg.outage.add("sendMessage")
            tg.message(ADMIN, "/set cooldown_hours 7")
            tg.message(ADMIN, "/set cooldown_hours 8")
            time.sleep(3)
            tg.outage.discard("sendMessage")
            tg.fail("sendMessage", 429, retry_after=1)
            tg.wait_for(lambda s: s.chat_id == ADMIN2 and "cooldown_hours=8" in s.text, 60, "alerts after the outage")
            bot.wait(timeout=120)  # the replay ends by itself
        finally:
            if bot.poll() is None:
                bot.kill()
        log = log_path.read_text()
        assert bot.returncode == 0, log[-3000:]
        assert "Summary:" in log and "| Total return |" in log
        assert tg.token not in log and tg.token.split(":")[1] not in log  # debug logging, yet no token
        assert [s.text for s in tg.to(STRANGER)] == ["This bot is private."]
        assert "ignored /pause from unauthorised user 999" in log

        # paused: nothing bought after the pause; the emergency sale went through
        assert len([t for t in alerts(tg, ADMIN) if "Bought" in t]) == bought_before
        changes = [t for t in alerts(tg, ADMIN2) if "cooldown_hours" in t]
        assert changes == ["<b>System</b>\nSettings changed by telegram user 111: cooldown_hours=7.0",
                           "<b>System</b>\nSettings changed by telegram user 111: cooldown_hours=8.0"]
        assert any("Replay finished" in t for t in alerts(tg, VIEWER))

        # every alert was delivered exactly once to each chat, in order within its priority
        engine = create_engine(db_url)
        with engine.connect() as conn:
            rows = conn.execute(select(outbox).where(outbox.c.chat_id.is_not(None)).order_by(outbox.c.id)).all()
        engine.dispose()
        assert rows and all(r.status == "sent" for r in rows)
        for chat in (ADMIN, ADMIN2, VIEWER):
            received = alerts(tg, chat)
            stored = [f"<b>{next(k for k, v in LABEL_KIND.items() if v == r.kind)}</b>\n{html.escape(text(r))}"
                      for r in rows if r.chat_id == chat]
            assert sorted(received) == sorted(stored)
            for level in set(PRIORITY.values()):
                kind_of = lambda t: LABEL_KIND[t[3:t.index("</b>")]]
                assert [t for t in received if PRIORITY[kind_of(t)] == level] == \
                    [t for t in stored if PRIORITY[kind_of(t)] == level]


def count_signals(engine) -> int:
    from core.storage.schema import signals

    with engine.connect() as conn:
        return len(conn.execute(select(signals)).all())


def test_alerts_pending_at_shutdown_are_delivered_after_a_restart(tmp_path, db_url):
    from datetime import datetime, timezone

    from core.storage.database import open_database
    from core.storage.schema import signals
    from core.storage.users import register
    from tests.fakes.upbit_server import FakeUpbit

    engine = open_database(db_url)
    register(engine, ADMIN, ADMIN, "admin", datetime.now(timezone.utc))
    btc = load_candle_csv(DATA / "upbit-1h" / "KRW-BTC_1h.csv")
    env = {"DATABASE_URL": db_url, "CYCLE_SECONDS": "1", "MARKETS": "KRW-BTC"}

    def stored(*where):
        with engine.connect() as conn:
            return conn.execute(select(outbox).where(*where).order_by(outbox.c.id)).all()

    with FakeUpbit({"KRW-BTC": btc}) as upbit, FakeTelegram() as tg:
        env["UPBIT_API_URL"] = upbit.url
        tg.outage.add("sendMessage")  # Telegram cannot deliver anything during the first run
        first = start(tg, [], tmp_path / "first.log", env)
        try:
            wait_ready(tg, first)
            deadline = time.monotonic() + 60
            while not stored(outbox.c.chat_id == ADMIN, outbox.c.attempts >= 1) or not count_signals(engine):
                assert time.monotonic() < deadline, (tmp_path / "first.log").read_text()[-3000:]
                time.sleep(0.2)
            with engine.connect() as conn:
                judged = conn.execute(select(signals)).all()
            assert len(judged) == 1  # the latest closed candle, judged once
            first.terminate()  # SIGTERM: finish, try to send, exit
            assert first.wait(timeout=60) == 0
        finally:
            if first.poll() is None:
                first.kill()
        pending = [text(r) for r in stored(outbox.c.chat_id == ADMIN, outbox.c.status == "pending")]
        assert pending[0].startswith("autotrader started: paper mode") and pending[-1] == "autotrader stopped"
        assert not [s for s in tg.sent if s.method == "sendMessage"]

        tg.outage.clear()
        second = start(tg, [], tmp_path / "second.log", env)
        try:
            tg.wait_for(lambda s: s.chat_id == ADMIN and s.text.endswith("autotrader stopped"), 60, "pending alerts")
            deadline = time.monotonic() + 30
            while len(alerts(tg, ADMIN)) <= len(pending):  # then the second run's own start alert
                assert time.monotonic() < deadline, "no start alert from the second run"
                time.sleep(0.1)
            time.sleep(2)  # a few more cycles: the candle already judged is not judged again
        finally:
            second.terminate()
            second.wait(timeout=60)
        received = alerts(tg, ADMIN)
        assert received[:len(pending)] == [f"<b>System</b>\n{html.escape(p)}" for p in pending]
        assert received[len(pending)].startswith("<b>System</b>\nautotrader started")
        with engine.connect() as conn:
            assert len(conn.execute(select(signals)).all()) == 1
        assert not [t for t in received if "Error" in t]
        for name in ("first.log", "second.log"):
            assert tg.token.split(":")[1] not in (tmp_path / name).read_text()
    engine.dispose()
