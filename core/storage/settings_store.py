"""Which thresholds and risk parameters are in force? Persisted settings and the audit log of changes."""
from __future__ import annotations

import logging
from dataclasses import fields, replace
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection, Engine

from core.redaction import redact
from core.storage.database import to_db_time
from core.storage.schema import audit_log
from core.storage.schema import settings as settings_table
from core.trading.types import RiskSettings

log = logging.getLogger(__name__)

MARKETS_KEY = "markets"
PRINCIPAL_KEY = "live_principal_krw"  # written before cash flows existed (0005); ignored now


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def load_risk_settings(engine: Engine, defaults: RiskSettings = RiskSettings()) -> RiskSettings:
    """Stored values over `defaults`; a stored value that no longer validates is ignored with a warning."""
    with engine.connect() as conn:
        rows = {r.name: r.value for r in conn.execute(select(settings_table))}
    risk = defaults
    for name, value in rows.items():
        if name in (MARKETS_KEY, PRINCIPAL_KEY):
            continue
        if name == "paused":
            risk = replace(risk, paused=value == "true")
            continue
        try:
            risk = risk.with_value(name, value)
        except ValueError as exc:
            log.warning("stored setting ignored: %s", exc)
    return risk


def changed(old: RiskSettings, new: RiskSettings) -> dict[str, object]:
    return {f.name: getattr(new, f.name) for f in fields(new) if getattr(new, f.name) != getattr(old, f.name)}


def save_risk_settings(conn: Connection, old: RiskSettings, new: RiskSettings, at: datetime) -> dict[str, object]:
    """Write what changed between `old` and `new` (inside the caller's transaction); returns the changes."""
    diff = changed(old, new)
    for name, value in diff.items():
        conn.execute(delete(settings_table).where(settings_table.c.name == name))
        conn.execute(settings_table.insert().values(name=name, value=_text(value), updated_at=to_db_time(at)))
    return diff


def audit(conn: Connection, at: datetime, user_id: int | None, source: str, command: str, detail: str,
          succeeded: bool) -> None:
    conn.execute(audit_log.insert().values(at=to_db_time(at), user_id=user_id, source=source, command=command[:64],
                                           detail=redact(detail), succeeded=succeeded))


def load_markets(engine: Engine) -> tuple[str, ...] | None:
    """The watched markets as changed by /markets, or None if never changed."""
    with engine.connect() as conn:
        value = conn.execute(select(settings_table.c.value).where(settings_table.c.name == MARKETS_KEY)).scalar()
    return tuple(value.split(",")) if value else None


def save_markets(conn: Connection, markets: tuple[str, ...], at: datetime) -> None:
    conn.execute(delete(settings_table).where(settings_table.c.name == MARKETS_KEY))
    conn.execute(settings_table.insert().values(name=MARKETS_KEY, value=",".join(markets), updated_at=to_db_time(at)))
