"""Which model versions exist, and which one serves? The registry (table model_versions).

A version's row is written only once its artifacts are complete and checked (core.service.retraining
loads them and predicts a probe window first); a training that produced nothing usable is a row with
status `failed` and no path, so that /model can say why. Exactly one version is `serving` once the
bot has started; promoting one retires the other in the same transaction.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection, Engine

from core.storage.database import from_db_time, to_db_time
from core.storage.schema import model_versions

SERVING, CHALLENGER, REJECTED, RETIRED, FAILED = "serving", "challenger", "rejected", "retired", "failed"
STATUSES = (SERVING, CHALLENGER, REJECTED, RETIRED, FAILED)


@dataclass(frozen=True)
class ModelVersion:
    version: int
    model_id: str
    created_at: datetime
    status: str
    path: str | None
    data_first: datetime | None
    data_last: datetime | None
    markets: tuple[str, ...]
    parameters: dict = field(default_factory=dict)
    validation: dict = field(default_factory=dict)
    recent: dict = field(default_factory=dict)
    promoted_at: datetime | None = None
    promoted_by: str | None = None
    reason: str = ""


def _version(row) -> ModelVersion:
    m = row._mapping
    return ModelVersion(m["version"], m["model_id"], from_db_time(m["created_at"]), m["status"], m["path"],
                        from_db_time(m["data_first"]), from_db_time(m["data_last"]), tuple(m["markets"] or ()),
                        dict(m["parameters"] or {}), dict(m["validation"] or {}), dict(m["recent"] or {}),
                        from_db_time(m["promoted_at"]), m["promoted_by"], m["reason"] or "")


def versions(engine: Engine, limit: int | None = None) -> list[ModelVersion]:
    """Newest first."""
    query = select(model_versions).order_by(model_versions.c.version.desc())
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        return [_version(r) for r in conn.execute(query)]


def get(engine: Engine, version: int) -> ModelVersion | None:
    with engine.connect() as conn:
        row = conn.execute(select(model_versions).where(model_versions.c.version == version)).first()
    return None if row is None else _version(row)


def serving(engine: Engine) -> ModelVersion | None:
    with engine.connect() as conn:
        row = conn.execute(select(model_versions).where(model_versions.c.status == SERVING)
                           .order_by(model_versions.c.version.desc())).first()
    return None if row is None else _version(row)


def by_path(engine: Engine, path: str) -> ModelVersion | None:
    with engine.connect() as conn:
        row = conn.execute(select(model_versions).where(model_versions.c.path == path)
                           .order_by(model_versions.c.version.desc())).first()
    return None if row is None else _version(row)


def next_version(conn: Connection) -> int:
    return (conn.execute(select(func.max(model_versions.c.version))).scalar() or 0) + 1


def serving_version(conn: Connection) -> int | None:
    """The serving version's number, inside a transaction."""
    return conn.execute(select(model_versions.c.version).where(model_versions.c.status == SERVING)).scalar()


def add(conn: Connection, *, model_id: str, created_at: datetime, status: str, path: str | None,
        markets, data_first: datetime | None = None, data_last: datetime | None = None,
        parameters: dict | None = None, validation: dict | None = None, recent: dict | None = None,
        reason: str = "", promoted_by: str | None = None) -> int:
    """A new row with the next version number; a `serving` one retires whichever served before."""
    if status not in STATUSES:
        raise ValueError(f"unknown model status {status!r}")
    number = next_version(conn)
    if status == SERVING:
        _retire_serving(conn, reason=f"replaced by version {number}")
    conn.execute(model_versions.insert().values(
        version=number, model_id=model_id[:128], created_at=to_db_time(created_at), status=status, path=path,
        data_first=None if data_first is None else to_db_time(data_first),
        data_last=None if data_last is None else to_db_time(data_last), markets=list(markets),
        parameters=parameters or {}, validation=validation or {}, recent=recent or {}, reason=reason,
        promoted_at=to_db_time(created_at) if status == SERVING else None,
        promoted_by=promoted_by if status == SERVING else None))
    return number


def _retire_serving(conn: Connection, reason: str) -> None:
    conn.execute(update(model_versions).where(model_versions.c.status == SERVING)
                 .values(status=RETIRED, reason=reason))


def promote(conn: Connection, version: int, at: datetime, by: str, reason: str) -> None:
    """`version` serves from now on; the one serving before is retired."""
    _retire_serving(conn, reason=f"replaced by version {version}")
    conn.execute(update(model_versions).where(model_versions.c.version == version)
                 .values(status=SERVING, promoted_at=to_db_time(at), promoted_by=by[:64], reason=reason))


def set_status(conn: Connection, version: int, status: str, reason: str) -> None:
    if status not in STATUSES or status == SERVING:
        raise ValueError(f"set_status cannot make a version {status!r}; promote() does that")
    conn.execute(update(model_versions).where(model_versions.c.version == version)
                 .values(status=status, reason=reason))


def previous_serving(engine: Engine) -> ModelVersion | None:
    """The version that served before the one serving now (the target of a rollback): the retired
    version promoted most recently before it, with its artifacts still recorded."""
    current = serving(engine)
    with engine.connect() as conn:
        query = select(model_versions).where(model_versions.c.status == RETIRED,
                                             model_versions.c.path.is_not(None),
                                             model_versions.c.promoted_at.is_not(None))
        if current is not None:
            query = query.where(model_versions.c.version != current.version)
            if current.promoted_at is not None:
                query = query.where(model_versions.c.promoted_at <= to_db_time(current.promoted_at))
        row = conn.execute(query.order_by(model_versions.c.promoted_at.desc(),
                                          model_versions.c.version.desc())).first()
    return None if row is None else _version(row)
