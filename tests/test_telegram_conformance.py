"""Telegram as it really sends updates: edited messages, channel posts, anonymous group admins,
messages without a sender, old button presses and presses without data, commands sent in groups.
The real `autotrader run` against the local Bot API server (tests/fakes/telegram_server.py)."""
from __future__ import annotations

import time

import pytest

from tests.fakes.telegram_server import FakeTelegram
from tests.test_telegram_e2e import ADMIN, VIEWER, start, wait_ready

GROUP, CHANNEL = -100123, -100777


def replies(tg: FakeTelegram, chat: int) -> list[str]:
    return [s.text for s in tg.to(chat) if not s.text.startswith("<b>")]


def settle(tg: FakeTelegram, chat: int, expected: str, what: str):
    return tg.wait_for(lambda s: s.chat_id == chat and expected in s.text, 30, what)


def test_only_new_messages_from_known_people_run_commands_and_every_button_is_answered(short_data, tmp_path,
                                                                                       db_url):
    with FakeTelegram() as tg:
        bot = start(tg, ["--replay", str(short_data), "--markets", "KRW-BTC", "--speed", "4", "--db", db_url],
                    tmp_path / "bot.log")
        try:
            wait_ready(tg, bot)
            tg.message(ADMIN, "/start")
            settle(tg, ADMIN, "Registered: you are an admin", "/start")

            # editing an old message into a command runs nothing
            tg.edit(ADMIN, "/pause")
            tg.message(ADMIN, "/status")
            status = settle(tg, ADMIN, "Mode: paper", "/status after an edit")
            assert "paused" not in status.text.lower().split("\n")[0]

            # channel posts, anonymous admins and sender-less messages: nobody to authorise, nothing runs
            tg.channel_post(CHANNEL, "/sellall")
            tg.anonymous(GROUP, "/pause")
            tg.without_sender(GROUP, "/pause")
            settle(tg, GROUP, "cannot be authorised; send them as yourself", "the anonymous refusal")

            # old presses, presses without data: answered, and nothing happens
            stale = tg.press(ADMIN, "yes:0123456789abcdef", message_id=42)
            empty = tg.press(ADMIN, None, message_id=43)
            stranger = tg.press(99999, "yes:whatever", message_id=44)
            deadline = time.monotonic() + 30
            while not {stale, empty, stranger} <= set(tg.answered):
                assert time.monotonic() < deadline, f"unanswered presses: {tg.answered}"
                time.sleep(0.1)
            settle(tg, ADMIN, "expired or was answered already", "the stale button")

            # /start in a group registers the sender's private chat, never the group
            tg.message(VIEWER, "/start", chat_id=GROUP, chat_type="supergroup")
            settle(tg, GROUP, "Alerts go to your private chat with me, not to this group", "/start in a group")
            tg.message(VIEWER, "/alerts group on", chat_id=GROUP, chat_type="supergroup")
            settle(tg, GROUP, "only an admin may send alerts to a group", "a viewer's /alerts group on")
            tg.message(ADMIN, "/alerts group on", chat_id=GROUP, chat_type="supergroup")
            settle(tg, GROUP, "every member of this group will see", "the admin's /alerts group on")

            tg.message(ADMIN, "/status")
            final = settle(tg, ADMIN, "Mode: paper", "the last /status")
            assert bot.poll() is None  # still running after all of it
        finally:
            bot.terminate()
            bot.wait(timeout=60)
    log = (tmp_path / "bot.log").read_text()
    assert "Traceback" not in log, log[-3000:]
    assert "paused" not in final.text.lower().split("\n")[0]
    assert not any("sold" in t.lower() for t in replies(tg, CHANNEL))
    assert [s.text for s in tg.to(CHANNEL)] == []  # a channel is never written to
    group = [s.text for s in tg.to(GROUP)]
    assert sum("cannot be authorised" in t for t in group) == 1  # told once per chat


@pytest.mark.parametrize("chat_type", ["group", "supergroup"])
def test_alerts_reach_a_group_only_when_an_admin_asks_for_it(db_url, chat_type):
    from datetime import datetime, timezone

    from core.service.control import alerts, start as start_command
    from core.service.registry import Caller, Role, Source, UsageError
    from core.storage.database import open_database
    from core.storage.users import subscribers

    db = open_database(db_url)

    class Ctx:
        def __init__(self, caller):
            self.caller = caller
            self.agent = type("A", (), {"db": db, "clock": staticmethod(lambda: datetime.now(timezone.utc))})()

    member = Caller(user_id=VIEWER, source=Source.TELEGRAM, role=Role.VIEWER, chat_id=GROUP, chat_type=chat_type)
    admin = Caller(user_id=ADMIN, source=Source.TELEGRAM, role=Role.ADMIN, chat_id=GROUP, chat_type=chat_type)
    start_command(Ctx(member))
    start_command(Ctx(admin))
    chats = {s.user_id: s.chat_id for s in subscribers(db, {VIEWER: "viewer", ADMIN: "admin"})}
    assert chats == {VIEWER: VIEWER, ADMIN: ADMIN}  # private chats, not the group
    with pytest.raises(UsageError, match="only an admin"):
        alerts(Ctx(member), "group", "on")
    assert "every member of this group" in alerts(Ctx(admin), "group", "on").text
    assert {s.user_id: s.chat_id for s in subscribers(db, {ADMIN: "admin"})} == {ADMIN: GROUP}
    alerts(Ctx(admin), "group", "off")
    assert {s.user_id: s.chat_id for s in subscribers(db, {ADMIN: "admin"})} == {ADMIN: ADMIN}
    private = Caller(user_id=ADMIN, source=Source.TELEGRAM, role=Role.ADMIN, chat_id=ADMIN, chat_type="private")
    with pytest.raises(UsageError, match="in the group"):
        alerts(Ctx(private), "group", "on")
    db.dispose()
