"""Alerts from the outbox to Telegram chats, at least once and in order.

Each broadcast alert is first copied once per subscribed chat that wants its kind; then each chat's
alerts go out highest priority first (emergency sells), oldest first within a priority. A 429 waits
the `retry_after` Telegram asks for, a network error or 5xx backs off exponentially with jitter, and
a chat that failed is not sent later alerts in the same round, so nothing overtakes what is stuck.
An alert stays pending in the database until Telegram accepted it: a restart sends what was left.
"""
from __future__ import annotations

import asyncio
import html
import logging
import random
from datetime import datetime, timedelta, timezone
from typing import Callable

from telegram.error import (
    BadRequest,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
)

from bot.messages import event_text, label
from core.i18n import language
from core.redaction import redact
from core.storage.outbox import (
    Alert,
    due,
    fan_out,
    mark_failed,
    mark_retry,
    mark_sent,
    waiting_chats,
)
from core.storage.users import Subscriber

log = logging.getLogger(__name__)

TELEGRAM_LIMIT = 4096
MAX_BACKOFF_SECONDS = 60.0


def split_text(text: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Pieces under Telegram's limit, cut at line ends where possible."""
    pieces, current = [], ""
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            pieces.append(current)
            current = line
        else:
            current = candidate
    if current or not pieces:
        pieces.append(current)
    return pieces


def alert_html(alert: Alert) -> str:
    return f"<b>{label(alert.kind)}</b>\n{html.escape(redact(event_text(alert)))}"


def backoff_seconds(attempts: int, rng: random.Random = random.Random()) -> float:
    return min(MAX_BACKOFF_SECONDS, 2.0 ** attempts) * (0.5 + rng.random() / 2)


class AlertDispatcher:
    def __init__(self, db, bot, subscribers: Callable[[], list[Subscriber]],
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc), monitor=None):
        self.db = db
        self.bot = bot
        self.subscribers = subscribers
        self.clock = clock
        self.monitor = monitor  # core.trading.health.ServiceMonitor of Telegram: told of each answer
        self._round = asyncio.Lock()  # the timer and the cycle both ask for rounds: never two at once

    async def deliver(self) -> int:
        """One round: returns how many alerts Telegram accepted."""
        async with self._round:
            return await self._deliver()

    async def _deliver(self) -> int:
        now = self.clock()
        chats = {s.chat_id: s for s in self.subscribers()}
        fan_out(self.db, lambda kind: [c for c, s in chats.items() if s.preference(kind) != "off"], now)
        stuck = waiting_chats(self.db, now)
        sent = 0
        for alert in due(self.db, now, limit=200):
            if alert.chat_id is None or alert.chat_id in stuck:
                continue
            subscriber = chats.get(alert.chat_id)
            if subscriber is None:
                mark_failed(self.db, alert.id, "chat no longer subscribed")
                continue
            try:
                with language(subscriber.language):  # rendered in the chat's language as it is sent
                    pieces = split_text(alert_html(alert))
                for piece in pieces:
                    await self.bot.send_message(alert.chat_id, piece, parse_mode="HTML",
                                                disable_notification=subscriber.preference(alert.kind) == "silent")
            except RetryAfter as exc:
                wait = exc.retry_after.total_seconds() if isinstance(exc.retry_after, timedelta) else float(exc.retry_after)
                mark_retry(self.db, alert.id, f"rate limited, retry after {wait:g} s", now + timedelta(seconds=wait))
                stuck.add(alert.chat_id)
            except (Forbidden, BadRequest) as exc:
                log.warning("alert %s to chat %s undeliverable: %s", alert.id, alert.chat_id, exc)
                mark_failed(self.db, alert.id, f"{exc.__class__.__name__}: {exc}")
            except (NetworkError, TelegramError) as exc:
                delay = backoff_seconds(alert.attempts)
                if self.monitor is not None:
                    self.monitor.failed(exc)
                log.info("alert %s not delivered (%s); retried in %.0f s", alert.id, exc, delay)
                mark_retry(self.db, alert.id, f"{exc.__class__.__name__}: {exc}", now + timedelta(seconds=delay))
                stuck.add(alert.chat_id)
            else:
                mark_sent(self.db, alert.id, now)
                if self.monitor is not None:
                    self.monitor.ok()
                sent += 1
        return sent
