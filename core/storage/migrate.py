"""`autotrader db upgrade|downgrade`: Alembic migrations run programmatically, on any SQLAlchemy URL."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.exc import SQLAlchemyError

from core.storage.connect import make_engine, problem

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def _run(database_url: str, action, revision: str) -> None:
    engine = make_engine(database_url, pragmas=False)
    try:
        with engine.begin() as connection:
            config = alembic_config(database_url)
            config.attributes["connection"] = connection
            action(config, revision)
    except SQLAlchemyError as exc:
        raise problem(database_url, exc) from None
    finally:
        engine.dispose()


def upgrade(database_url: str, revision: str = "head") -> None:
    _run(database_url, command.upgrade, revision)


def downgrade(database_url: str, revision: str) -> None:
    _run(database_url, command.downgrade, revision)


def current_revision(database_url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as exc:
        raise problem(database_url, exc) from None
    finally:
        engine.dispose()
