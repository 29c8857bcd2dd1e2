"""Is the agent alive? Asked from outside its process (`autotrader health`, Docker's HEALTHCHECK): when
was the last trading cycle stored, and is that recent enough for the schedule?

Every finished cycle stores an equity snapshot (core.storage.journal), whether it traded or not, and
the agent announces `started` and `stopped` in the outbox. So the agent is healthy while the newest of
its last snapshot and its start is younger than the allowed age (two cycle periods and five minutes,
by default): a fresh start is healthy until its first cycle is due, and a process that stopped
scheduling cycles is not. It says nothing of market data or Telegram: those outages have alerts of
their own and must not make Docker restart a bot that is waiting for them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, inspect, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from core.service.settings import Settings
from core.storage.connect import DatabaseError, make_engine, problem, shown_url
from core.storage.database import from_db_time
from core.storage.schema import equity_snapshots, outbox

GRACE = timedelta(minutes=5)  # a cycle's own run time and the delay after a candle's close


@dataclass(frozen=True, kw_only=True)
class Heartbeat:
    """What the database says of the agent's last signs of life (None: never)."""

    last_cycle_at: datetime | None
    started_at: datetime | None
    stopped_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class Verdict:
    healthy: bool
    reason: str  # one line, for a person reading `docker inspect` or the health command's output


def duration(seconds: float) -> str:
    """45 s, 12 min, 2 h 5 min, 3 d 1 h: the health line is read by people, in English like the logs."""
    seconds = int(round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60 % 60, seconds // 3600 % 24, seconds // 86400
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{seconds // 60} min"


def cycle_period(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.cycle_seconds or settings.interval_seconds)


def allowed_age(period: timedelta) -> timedelta:
    return 2 * period + GRACE


def read_heartbeat(engine: Engine) -> Heartbeat:
    def newest(query) -> datetime | None:
        return from_db_time(conn.execute(query).scalar())

    def announced(name: str):
        return select(func.max(outbox.c.created_at)).where(outbox.c.name == name)

    with engine.connect() as conn:
        return Heartbeat(last_cycle_at=newest(select(func.max(equity_snapshots.c.at))),
                         started_at=newest(announced("started")), stopped_at=newest(announced("stopped")))


def judge(beat: Heartbeat, now: datetime, period: timedelta, max_age: timedelta | None = None) -> Verdict:
    limit = allowed_age(period) if max_age is None else max_age
    signs = [t for t in (beat.last_cycle_at, beat.started_at) if t is not None]
    if not signs:
        return Verdict(healthy=False, reason="no trading cycle stored yet and the agent has not started")
    latest = max(signs)
    if beat.stopped_at is not None and beat.stopped_at >= latest:
        return Verdict(healthy=False, reason=f"the agent stopped at {beat.stopped_at:%Y-%m-%d %H:%M:%S} UTC")
    age = max(now - latest, timedelta(0))
    if beat.last_cycle_at is None or beat.last_cycle_at < latest:
        what = f"started {duration(age.total_seconds())} ago, first cycle not stored yet"
    else:
        what = f"last cycle {duration(age.total_seconds())} ago"
    if age > limit:
        return Verdict(healthy=False, reason=f"{what} ({latest:%Y-%m-%d %H:%M:%S} UTC); with a cycle every "
                                             f"{duration(period.total_seconds())} at most "
                                             f"{duration(limit.total_seconds())} is expected")
    return Verdict(healthy=True, reason=what)


def check(settings: Settings, now: datetime, max_age: timedelta | None = None) -> Verdict:
    """The verdict on the agent that uses DATABASE_URL. Only reads: no migration, no file created."""
    url = settings.database_url
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
            return Verdict(healthy=False, reason=f"no database at {shown_url(url)} yet: the agent has not started")
        engine = make_engine(url, pragmas=False)
    except DatabaseError as exc:
        return Verdict(healthy=False, reason=str(exc))
    except Exception as exc:  # a URL that does not parse
        return Verdict(healthy=False, reason=str(problem(url, exc)))
    try:
        tables = set(inspect(engine).get_table_names())
        if not {equity_snapshots.name, outbox.name} <= tables:
            return Verdict(healthy=False, reason=f"{shown_url(url)} has no autotrader tables yet: the agent has "
                                                 f"not started (it migrates the database first)")
        beat = read_heartbeat(engine)
    except SQLAlchemyError as exc:
        return Verdict(healthy=False, reason=str(problem(url, exc)))
    finally:
        engine.dispose()
    return judge(beat, now, cycle_period(settings), max_age)
