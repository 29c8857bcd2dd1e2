"""How do we reach the database? One engine per process, migrated to head before use."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy.engine import Engine

from core.storage.connect import DatabaseError, make_engine
from core.storage.migrate import upgrade

__all__ = ["DatabaseError", "open_database", "to_db_time", "from_db_time"]


def open_database(url: str, migrate: bool = True) -> Engine:
    """An engine on `url`; with `migrate`, every migration has run (an empty database gets every table).
    DatabaseError (one line, no password) when the database cannot be used."""
    if migrate:
        upgrade(url)
    return make_engine(url)


def to_db_time(value: datetime) -> datetime:
    """Times are written as UTC; naive input is taken to be UTC already."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def from_db_time(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes: they were written as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
