"""Alerts as users read them: outbox rows rendered by the bot's own words (bot/messages.py)."""
from __future__ import annotations

from sqlalchemy import select

from bot.messages import event_text
from core.storage.outbox import Alert, alert_from_row
from core.storage.schema import outbox


def text(row_or_alert) -> str:
    alert = row_or_alert if isinstance(row_or_alert, Alert) else alert_from_row(row_or_alert)
    return event_text(alert)


def alert_rows(engine, *where) -> list:
    with engine.connect() as conn:
        return conn.execute(select(outbox).where(*where).order_by(outbox.c.id)).all()


def alert_texts(engine, *where) -> list[str]:
    return [text(row) for row in alert_rows(engine, *where)]
