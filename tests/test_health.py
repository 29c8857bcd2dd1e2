"""`autotrader health`, Docker's HEALTHCHECK: healthy while the agent stores cycles on schedule, and one
line saying why not otherwise (exit 1), on SQLite and PostgreSQL, never with the database password."""
import re
from datetime import datetime, timedelta, timezone

import pytest

from core.service.liveness import Heartbeat, allowed_age, duration, judge
from core.storage.journal import Journal
from core.storage.outbox import enqueue_now
from core.trading.events import EventKind, event
from core.trading.portfolio import Portfolio
from tests.test_cli import run_cli

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


def beat(cycle=None, started=None, stopped=None) -> Heartbeat:
    return Heartbeat(last_cycle_at=cycle, started_at=started, stopped_at=stopped)


def test_a_cycle_within_two_periods_and_the_grace_is_healthy_and_an_older_one_is_not():
    assert allowed_age(HOUR) == timedelta(hours=2, minutes=5)
    fresh = judge(beat(cycle=NOW - timedelta(minutes=50), started=NOW - timedelta(days=3)), NOW, HOUR)
    assert fresh.healthy and fresh.reason == "last cycle 50 min ago"
    stale = judge(beat(cycle=NOW - timedelta(hours=2, minutes=6), started=NOW - timedelta(days=3)), NOW, HOUR)
    assert not stale.healthy
    assert stale.reason == ("last cycle 2 h 6 min ago (2026-03-02 09:54:00 UTC); with a cycle every 1 h at most "
                            "2 h 5 min is expected")
    assert judge(beat(cycle=NOW - timedelta(seconds=50)), NOW, timedelta(seconds=10), timedelta(seconds=60)).healthy
    assert not judge(beat(cycle=NOW - timedelta(seconds=70)), NOW, timedelta(seconds=10), timedelta(seconds=60)).healthy


def test_a_fresh_start_is_healthy_until_its_first_cycle_is_overdue():
    started = judge(beat(cycle=NOW - timedelta(days=2), started=NOW - timedelta(minutes=3)), NOW, HOUR)
    assert started.healthy and started.reason == "started 3 min ago, first cycle not stored yet"
    assert judge(beat(started=NOW - timedelta(seconds=20)), NOW, HOUR).reason == \
        "started 20 s ago, first cycle not stored yet"
    late = judge(beat(started=NOW - timedelta(hours=3)), NOW, HOUR)
    assert not late.healthy and late.reason.startswith("started 3 h ago, first cycle not stored yet")


def test_a_stopped_agent_and_one_that_never_started_are_unhealthy():
    stopped = judge(beat(cycle=NOW - timedelta(minutes=1), started=NOW - HOUR, stopped=NOW - timedelta(seconds=30)),
                    NOW, HOUR)
    assert not stopped.healthy and stopped.reason == "the agent stopped at 2026-03-02 11:59:30 UTC"
    # started again after a stop: the new start counts
    assert judge(beat(cycle=NOW - HOUR, stopped=NOW - timedelta(minutes=2), started=NOW - timedelta(minutes=1)),
                 NOW, HOUR).healthy
    never = judge(beat(), NOW, HOUR)
    assert not never.healthy and never.reason == "no trading cycle stored yet and the agent has not started"


def test_durations_read_as_people_say_them():
    assert [duration(s) for s in (0, 119, 120, 3600, 3660, 86400, 90000)] == \
        ["0 s", "119 s", "2 min", "1 h", "1 h 1 min", "1 d", "1 d 1 h"]


def health(db_url: str, *args: str, **env: str):
    return run_cli("health", *args, env={"DATABASE_URL": db_url, "CANDLE_INTERVAL": "1h", **env}, timeout=60)


def test_the_health_command_reads_the_agents_database(db_url):
    from core.storage.database import open_database

    empty = health(db_url)
    assert empty.returncode == 1 and empty.stdout == ""
    assert "yet: the agent has not started" in empty.stderr  # SQLite: no file; PostgreSQL: no tables
    assert len(empty.stderr.strip().splitlines()) == 1

    engine = open_database(db_url)
    try:
        now = datetime.now(timezone.utc)
        enqueue_now(engine, event(EventKind.SYSTEM, "started", now - timedelta(minutes=1), mode="paper"))
        started = health(db_url)
        assert started.returncode == 0
        assert re.fullmatch(r"healthy: started 6\d s ago, first cycle not stored yet", started.stdout.strip())

        Journal(engine).record_cycle(now - timedelta(seconds=5), Portfolio(principal_krw=1e6, cash_krw=1e6), {})
        assert re.fullmatch(r"healthy: last cycle \d+ s ago", health(db_url).stdout.strip())
        overdue = health(db_url, "--max-age", "2")
        assert overdue.returncode == 1 and "unhealthy: last cycle " in overdue.stderr
        assert "at most 2 s is expected" in overdue.stderr
        assert health(db_url, "--max-age", "2", CYCLE_SECONDS="1").returncode == 1

        enqueue_now(engine, event(EventKind.SYSTEM, "stopped", now))
        stopped = health(db_url)
        assert stopped.returncode == 1 and "unhealthy: the agent stopped at" in stopped.stderr
    finally:
        engine.dispose()


@pytest.mark.parametrize("url, expected", [
    ("postgresql+psycopg://bot:s3cret-pw@127.0.0.1:9/autotrader", "cannot connect"),
    ("sqlite:////nonexistent-dir/bot.db", "no database at sqlite:////nonexistent-dir/bot.db yet"),
])
def test_an_unreachable_database_is_unhealthy_in_one_line_without_its_password(url, expected):
    result = health(url)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert expected in result.stderr and "s3cret-pw" not in result.stderr + result.stdout


def test_bad_usage_is_exit_2():
    result = run_cli("health", "--max-age", "0", timeout=60)
    assert result.returncode == 2 and "--max-age: expected a positive number of seconds" in result.stderr
