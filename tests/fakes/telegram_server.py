"""A local Bot API server on 127.0.0.1 speaking Telegram's HTTP shapes, for python-telegram-bot.

Implements getMe, deleteWebhook, getUpdates (long polling over queued updates), sendMessage,
sendPhoto, editMessageText, answerCallbackQuery and setMyCommands. Faults: `fail(method, 429,
retry_after=2)` or `fail(method, 502)` answers the next call so; `outage.add(method)` answers 502 to
every call until removed.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from dataclasses import dataclass

from aiohttp import web

BOT = {"id": 999000, "is_bot": True, "first_name": "autotrader", "username": "autotrader_test_bot"}


def _markup(params: dict):
    markup = params.get("reply_markup")
    return json.loads(markup) if isinstance(markup, str) else markup


@dataclass
class Sent:
    method: str
    chat_id: int
    text: str
    params: dict


class FakeTelegram:
    def __init__(self, token: str = "123456:TEST-SECRET-TOKEN"):
        self.token = token
        self.updates: list[dict] = []
        self.sent: list[Sent] = []
        self.calls: list[str] = []
        self.commands: list | None = None  # the menu without a language_code
        self.menus: dict[str, list] = {}  # language_code -> the menu set for it
        self.answered: list[str] = []  # callback query ids answered
        self.faults: list[tuple[str, int, int | None]] = []
        self.outage: set[str] = set()
        self._contents: dict[tuple[int, int], tuple] = {}  # (chat, message) -> (text, markup), as Telegram keeps
        self._ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.port = 0

    # lifecycle
    def __enter__(self) -> "FakeTelegram":
        threading.Thread(target=self._serve, daemon=True).start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        self._runner = runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    # what tests do
    def message(self, user_id: int, text: str, chat_id: int | None = None, chat_type: str = "private") -> None:
        entities = []
        if text.startswith("/"):
            entities.append({"type": "bot_command", "offset": 0, "length": len(text.split()[0])})
        msg = {"message_id": next(self._message_ids), "date": int(time.time()),
               "chat": {"id": chat_id or user_id, "type": chat_type},
               "from": {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"}, "text": text,
               "entities": entities}
        self._queue({"message": msg})

    def press(self, user_id: int, data: str | None, on: Sent | None = None, message_id: int = 1,
              chat_id: int | None = None) -> str:
        """A button press (callback query) on a message we sent, or on an old one by id; data None is a
        press without callback data (a game button, or a client that dropped it). Returns its id."""
        message = {"message_id": on.params["message_id"] if on else message_id, "date": int(time.time()),
                   "chat": {"id": on.chat_id if on else (chat_id or user_id), "type": "private"}, "from": BOT,
                   "text": on.text if on else "an old question"}
        query_id = str(next(self._ids))
        query = {"id": query_id, "from": {"id": user_id, "is_bot": False, "first_name": "u"}, "chat_instance": "1",
                 "message": message}
        if data is not None:
            query["data"] = data
        self._queue({"callback_query": query})
        return query_id

    def edit(self, user_id: int, text: str, message_id: int = 1) -> None:
        """The user edits an old message of theirs into `text` (an `edited_message` update)."""
        msg = self._message_body(user_id, text, user_id, "private", message_id)
        msg["edit_date"] = int(time.time())
        self._queue({"edited_message": msg})

    def channel_post(self, chat_id: int, text: str) -> None:
        """A post in a channel the bot is in: no `from`, only the channel as `sender_chat`."""
        msg = self._message_body(None, text, chat_id, "channel")
        msg["sender_chat"] = {"id": chat_id, "type": "channel", "title": "a channel"}
        self._queue({"channel_post": msg})

    def anonymous(self, chat_id: int, text: str) -> None:
        """A group admin posting anonymously: `from` is Telegram's GroupAnonymousBot, `sender_chat` the group."""
        msg = self._message_body(None, text, chat_id, "supergroup")
        msg["from"] = {"id": 1087968824, "is_bot": True, "first_name": "Group", "username": "GroupAnonymousBot"}
        msg["sender_chat"] = {"id": chat_id, "type": "supergroup", "title": "a group"}
        self._queue({"message": msg})

    def without_sender(self, chat_id: int, text: str) -> None:
        """A group message with no `from` at all (e.g. forwarded automatically from a linked channel)."""
        msg = self._message_body(None, text, chat_id, "supergroup")
        msg["sender_chat"] = {"id": chat_id - 1, "type": "channel", "title": "linked channel"}
        msg["is_automatic_forward"] = True
        self._queue({"message": msg})

    def _message_body(self, user_id: int | None, text: str, chat_id: int, chat_type: str,
                      message_id: int | None = None) -> dict:
        entities = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}] if text.startswith("/") else []
        msg = {"message_id": message_id or next(self._message_ids), "date": int(time.time()),
               "chat": {"id": chat_id, "type": chat_type}, "text": text, "entities": entities}
        if user_id is not None:
            msg["from"] = {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"}
        return msg

    def fail(self, method: str, status: int, retry_after: int | None = None) -> None:
        with self._lock:
            self.faults.append((method, status, retry_after))

    def to(self, chat_id: int) -> list[Sent]:
        with self._lock:
            return [s for s in self.sent if s.chat_id == chat_id]

    def wait_for(self, predicate, timeout: float = 30.0, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                found = [s for s in self.sent if predicate(s)]
            if found:
                return found[0]
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; sent so far: {[(s.chat_id, s.text[:60]) for s in self.sent]}")

    def _queue(self, body: dict) -> None:
        with self._lock:
            self.updates.append({"update_id": next(self._ids), **body})

    # the HTTP side
    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        if request.content_type == "application/json":
            params = await request.json()
        else:
            params = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        with self._lock:
            self.calls.append(method)
            fault = next((f for f in self.faults if f[0] == method), None)
            if fault is not None:
                self.faults.remove(fault)
        if method in self.outage:
            fault = (method, 502, None)
        if fault is not None:
            _, status, retry_after = fault
            if status == 429:
                return web.json_response({"ok": False, "error_code": 429,
                                          "description": f"Too Many Requests: retry after {retry_after}",
                                          "parameters": {"retry_after": retry_after}}, status=429)
            return web.Response(status=status, text="Bad Gateway")
        if method == "editMessageText" and self._unchanged(params):  # as Telegram answers an edit that changes nothing
            return web.json_response({"ok": False, "error_code": 400, "description": "Bad Request: message is not "
                                      "modified: specified new message content and reply markup are exactly the "
                                      "same as a current content and reply markup of the message"}, status=400)
        result = await getattr(self, f"_{method}", self._unknown)(params)
        return web.json_response({"ok": True, "result": result})

    def _unchanged(self, params: dict) -> bool:
        key = (int(params["chat_id"]), int(params.get("message_id") or 0))
        with self._lock:
            return self._contents.get(key) == (params.get("text"), _markup(params))

    async def _unknown(self, params):
        return True

    async def _getMe(self, params):
        return {**BOT, "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}

    async def _deleteWebhook(self, params):
        return True

    async def _getUpdates(self, params):
        offset = int(params.get("offset") or 0)
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), 1.0)
        while True:
            with self._lock:
                self.updates = [u for u in self.updates if u["update_id"] >= offset]
                ready = list(self.updates)
            if ready or time.monotonic() >= deadline:
                return ready
            await asyncio.sleep(0.05)

    def _record(self, method: str, params: dict) -> dict:
        chat_id = int(params["chat_id"])
        message_id = int(params.get("message_id") or next(self._message_ids))
        text = params.get("text") or params.get("caption") or ""
        with self._lock:
            self.sent.append(Sent(method, chat_id, text, {**params, "message_id": message_id}))
            self._contents[(chat_id, message_id)] = (text, _markup(params))
        return {"message_id": message_id, "date": int(time.time()), "chat": {"id": chat_id, "type": "private"},
                "from": BOT, "text": text}

    async def _sendMessage(self, params):
        return self._record("sendMessage", params)

    async def _sendPhoto(self, params):
        return self._record("sendPhoto", params)

    async def _editMessageText(self, params):
        return self._record("editMessageText", params)

    async def _answerCallbackQuery(self, params):
        with self._lock:
            self.answered.append(str(params.get("callback_query_id")))
        return True

    async def _setMyCommands(self, params):
        commands = params.get("commands")
        commands = json.loads(commands) if isinstance(commands, str) else commands
        if params.get("language_code"):
            self.menus[params["language_code"]] = commands
        else:
            self.commands = commands
        return True
