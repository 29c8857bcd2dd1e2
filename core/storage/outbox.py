"""Which alerts are waiting? The outbox: written with the step that caused the alert, read by a
dispatcher (console or Telegram) that marks each one sent, or due for another try.

Status: pending -> sent | failed (undeliverable); a broadcast (no chat) becomes `expanded` once a
copy per subscribed chat exists. Nothing is deleted, so a restart finds whatever was still pending.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Sequence

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Engine

from core.redaction import redact
from core.storage.database import from_db_time, to_db_time
from core.storage.schema import outbox
from core.trading.events import Event


@dataclass(frozen=True, kw_only=True)
class Alert:
    """An event waiting in the outbox (for one chat, or for every subscribed chat when `chat_id` is None)."""

    id: int
    kind: str
    name: str | None  # None: a row from before migration 0006, shown by its `text`
    params: dict
    market: str | None
    text: str | None
    priority: int
    chat_id: int | None
    attempts: int
    created_at: datetime


def _redacted(value):
    """Parameters are stored as they will be shown: with every secret masked, at any depth."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redacted(v) for v in value]
    return value


def enqueue(conn: Connection, event: Event, chat_id: int | None = None) -> None:
    conn.execute(outbox.insert().values(kind=str(event.kind), priority=event.priority, chat_id=chat_id, text=None,
                                        name=event.name, params=_redacted(dict(event.params)), market=event.market,
                                        status="pending", attempts=0, created_at=to_db_time(event.at)))


def alert_from_row(row) -> Alert:
    return Alert(id=row.id, kind=row.kind, name=row.name, params=dict(row.params or {}), market=row.market,
                 text=row.text, priority=row.priority, chat_id=row.chat_id, attempts=row.attempts,
                 created_at=from_db_time(row.created_at))


def enqueue_now(engine: Engine, event: Event, chat_id: int | None = None) -> None:
    with engine.begin() as conn:
        enqueue(conn, event, chat_id)


def due(engine: Engine, now: datetime, limit: int = 50) -> list[Alert]:
    """Pending alerts whose next attempt is due: highest priority first, then in the order they arose."""
    query = (select(outbox).where(outbox.c.status == "pending")
             .where((outbox.c.next_attempt_at.is_(None)) | (outbox.c.next_attempt_at <= to_db_time(now)))
             .order_by(outbox.c.priority.desc(), outbox.c.id).limit(limit))
    with engine.connect() as conn:
        return [alert_from_row(r) for r in conn.execute(query)]


def mark_sent(engine: Engine, alert_id: int, at: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(update(outbox).where(outbox.c.id == alert_id)
                     .values(status="sent", sent_at=to_db_time(at), attempts=outbox.c.attempts + 1))


def mark_retry(engine: Engine, alert_id: int, error: str, next_attempt_at: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(update(outbox).where(outbox.c.id == alert_id)
                     .values(attempts=outbox.c.attempts + 1, last_error=redact(error)[:500],
                             next_attempt_at=to_db_time(next_attempt_at)))


def mark_failed(engine: Engine, alert_id: int, error: str) -> None:
    """Give up on an alert that can never be delivered (e.g. the chat blocked the bot)."""
    with engine.begin() as conn:
        conn.execute(update(outbox).where(outbox.c.id == alert_id)
                     .values(status="failed", attempts=outbox.c.attempts + 1, last_error=redact(error)[:500]))


def fan_out(engine: Engine, recipients: Callable[[str], Sequence[int]], now: datetime) -> int:
    """Turn each pending broadcast alert (no chat) into one pending alert per chat that wants its kind,
    in one transaction per alert, keeping its kind, priority and time; returns how many were expanded."""
    query = select(outbox).where(outbox.c.status == "pending", outbox.c.chat_id.is_(None)).order_by(outbox.c.id)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    for row in rows:
        with engine.begin() as conn:
            for chat_id in recipients(row.kind):
                conn.execute(outbox.insert().values(kind=row.kind, priority=row.priority, chat_id=chat_id, text=row.text,
                                                    name=row.name, params=row.params, market=row.market,
                                                    status="pending", attempts=0, created_at=row.created_at))
            conn.execute(update(outbox).where(outbox.c.id == row.id).values(status="expanded", sent_at=to_db_time(now)))
    return len(rows)


def waiting_chats(engine: Engine, now: datetime) -> set[int]:
    """Chats with an alert held back until later (rate limit, outage): nothing may overtake it."""
    query = (select(outbox.c.chat_id).distinct().where(outbox.c.status == "pending", outbox.c.chat_id.is_not(None))
             .where(outbox.c.next_attempt_at > to_db_time(now)))
    with engine.connect() as conn:
        return {r[0] for r in conn.execute(query)}
