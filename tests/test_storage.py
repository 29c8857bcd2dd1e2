"""Migrations build and remove every table, on SQLite and on PostgreSQL."""
from sqlalchemy import create_engine, inspect

from core.storage.migrate import downgrade, upgrade
from core.storage.schema import metadata
from tests.test_cli import run_cli

TABLES = {"settings", "signals", "orders", "fills", "positions", "equity_snapshots", "users", "outbox", "audit_log",
          "cash_flows", "trading_days", "chat_languages", "model_versions"}


def tables(url):
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(db_url):
    url = db_url
    upgrade(url)
    assert tables(url) == TABLES == set(metadata.tables)
    engine = create_engine(url)
    orders = {c["name"] for c in inspect(engine).get_columns("orders")}
    assert {"identifier", "market", "side", "state", "kind"} <= orders
    assert any(u["column_names"] == ["identifier"] for u in inspect(engine).get_unique_constraints("orders")) or \
        any(i["unique"] and i["column_names"] == ["identifier"] for i in inspect(engine).get_indexes("orders"))
    signal_columns = {c["name"] for c in inspect(engine).get_columns("signals")}
    assert {"decision_action", "decision_approved", "decision_reason"} <= signal_columns  # migration 0002
    engine.dispose()
    downgrade(url, "0004")
    assert tables(url) == TABLES - {"cash_flows", "trading_days", "chat_languages", "model_versions"}
    upgrade(url)
    downgrade(url, "0008")
    assert tables(url) == TABLES - {"model_versions"}
    upgrade(url)
    downgrade(url, "0001")
    engine = create_engine(url)
    assert "decision_reason" not in {c["name"] for c in inspect(engine).get_columns("signals")}
    engine.dispose()
    downgrade(url, "base")
    assert tables(url) == set()
    upgrade(url)
    assert tables(url) == TABLES


def test_db_upgrade_cli_uses_database_url(db_url):
    url = db_url
    result = run_cli("db", "upgrade", env={"DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert tables(url) == TABLES
    bad = run_cli("db", "upgrade", env={"DATABASE_URL": "nosuchdriver://x/y"})
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
