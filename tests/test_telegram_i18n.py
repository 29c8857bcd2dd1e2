"""The real `autotrader run` in Korean against the local Bot API server: a command menu per language,
the keyboard of common commands on /start, a Refresh button that edits its message in place, alerts
in each chat's own language, and a chat's language kept across a restart."""
from __future__ import annotations

import json
import time

from tests.fakes.telegram_server import FakeTelegram
from tests.test_telegram_e2e import ADMIN, VIEWER, start, wait_ready


def markup(sent) -> dict:
    raw = sent.params.get("reply_markup")
    return json.loads(raw) if isinstance(raw, str) else (raw or {})


def stop(bot) -> None:
    bot.terminate()
    assert bot.wait(60) == 0


def test_korean_by_default_english_by_choice_per_chat(short_data, tmp_path):
    korean = {"BOT_LANGUAGE": "ko", "DISPLAY_TIMEZONE": "Asia/Seoul"}
    # SQLite only: the language's storage is tested on both databases in tests/test_i18n.py
    args = ["--replay", str(short_data), "--markets", "KRW-BTC", "--speed", "4", "--db", f"sqlite:///{tmp_path}/r.db"]
    with FakeTelegram() as tg:
        bot = start(tg, args, tmp_path / "bot.log", korean)
        try:
            wait_ready(tg, bot)
            menus = {code: {c["command"]: c["description"] for c in tg.menus[code]} for code in ("ko", "en")}
            assert menus["ko"]["status"].startswith("모드") and menus["en"]["status"].startswith("mode")
            assert set(menus["ko"]) == set(menus["en"]) and {c["command"] for c in tg.commands} == set(menus["ko"])
            assert tg.commands[0]["description"] == tg.menus["ko"][0]["description"]  # the default menu: BOT_LANGUAGE

            tg.message(ADMIN, "/start")
            welcome = tg.wait_for(lambda s: s.chat_id == ADMIN and "등록 완료" in s.text, what="/start in Korean")
            keyboard = [b["text"] for row in markup(welcome)["keyboard"] for b in row]
            assert "/status" in keyboard and "/balance" in keyboard and markup(welcome)["resize_keyboard"] is True
            tg.message(VIEWER, "/start")
            tg.wait_for(lambda s: s.chat_id == VIEWER and "조회자" in s.text, what="the viewer's /start")

            tg.message(VIEWER, "/language en")
            tg.wait_for(lambda s: s.chat_id == VIEWER and s.text == "From now on this chat reads the bot in English.",
                        what="/language en")
            tg.message(ADMIN, "/threshold buy 0.3")
            tg.message(ADMIN, "/set decision_rule threshold")
            tg.wait_for(lambda s: s.chat_id == ADMIN and "decision_rule을(를) threshold(으)로" in s.text, what="/set")
            # alerts are put in words per chat: Korean for the admin, English for the viewer who chose it
            tg.wait_for(lambda s: s.chat_id == ADMIN and s.text.startswith("<b>체결</b>") and "매수" in s.text, 60,
                        "a Korean fill alert")
            tg.wait_for(lambda s: s.chat_id == VIEWER and s.text.startswith("<b>Fill</b>") and "Bought" in s.text, 60,
                        "an English fill alert")

            tg.message(ADMIN, "/status")
            status = tg.wait_for(lambda s: s.chat_id == ADMIN and s.text.startswith("모드:"), what="/status")
            assert "KST" in status.text and "원" in status.text
            [[button]] = markup(status)["inline_keyboard"]
            assert button == {"text": "🔄 새로고침", "callback_data": "refresh:/status"}
            time.sleep(1.0)  # a few candles later the status has changed
            press = tg.press(ADMIN, button["callback_data"], status)
            edited = tg.wait_for(lambda s: s.method == "editMessageText"
                                 and s.params["message_id"] == status.params["message_id"], what="the refreshed status")
            assert edited.text.startswith("모드:") and edited.text != status.text
            assert markup(edited)["inline_keyboard"][0][0]["callback_data"] == "refresh:/status"
            deadline = time.monotonic() + 10
            while press not in tg.answered:
                assert time.monotonic() < deadline, "the Refresh press was not answered"
                time.sleep(0.05)

            tg.message(VIEWER, "/balance")
            balance = tg.wait_for(lambda s: s.chat_id == VIEWER and s.text.startswith("Cash KRW "), what="/balance")
            assert markup(balance)["inline_keyboard"][0][0] == {"text": "🔄 Refresh", "callback_data": "refresh:/balance"}
            tg.message(ADMIN, "/positions")  # a reply without a Refresh button
            positions = tg.wait_for(lambda s: s.chat_id == ADMIN and s.text.startswith("KRW-BTC: "), what="/positions")
            assert "inline_keyboard" not in markup(positions)
            tg.message(ADMIN, "/sell KRW-BTC")
            question = tg.wait_for(lambda s: s.chat_id == ADMIN and "매도할까요" in s.text, what="the question")
            assert [b["text"] for b in markup(question)["inline_keyboard"][0]] == ["예, 매도", "취소"]
        finally:
            stop(bot)



def test_a_chats_language_is_kept_across_a_restart(tmp_path):
    from core.data.candles import load_candle_csv
    from tests.conftest import DATA
    from tests.fakes.upbit_server import FakeUpbit

    btc = load_candle_csv(DATA / "upbit-1h" / "KRW-BTC_1h.csv")
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/bot.db", "CYCLE_SECONDS": "1", "MARKETS": "KRW-BTC", "BOT_LANGUAGE": "ko",
           "DISPLAY_TIMEZONE": "Asia/Seoul"}
    with FakeUpbit({"KRW-BTC": btc}) as upbit, FakeTelegram() as tg:
        env["UPBIT_API_URL"] = upbit.url
        bot = start(tg, [], tmp_path / "first.log", env)
        try:
            wait_ready(tg, bot)
            tg.message(VIEWER, "/language en")
            tg.wait_for(lambda s: s.chat_id == VIEWER and s.text.startswith("From now on"), what="/language en")
        finally:
            stop(bot)
        before = len(tg.sent)
        bot = start(tg, [], tmp_path / "second.log", env)
        try:
            wait_ready(tg, bot)
            tg.message(VIEWER, "/health")
            tg.message(ADMIN, "/health")
            later = lambda s: s in tg.sent[before:]  # noqa: E731
            tg.wait_for(lambda s: later(s) and s.chat_id == VIEWER and s.text.startswith("autotrader ")
                        and " mode, up " in s.text, what="English after the restart")
            tg.wait_for(lambda s: later(s) and s.chat_id == ADMIN and "모드, 가동" in s.text,
                        what="Korean after the restart")
        finally:
            stop(bot)
