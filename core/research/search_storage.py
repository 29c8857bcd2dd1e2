"""Where an Optuna study is kept: the project's database, but never among its own tables.

Optuna migrates its own tables with Alembic and an `alembic_version` table of its own, which would
collide with the project's (migrations/). So on SQLite the study goes into a file beside the
database (`autotrader.db` -> `autotrader.optuna.db`), and on PostgreSQL into the schema `optuna` of
the same database, which every machine of a cluster can share.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SCHEMA = "optuna"


class SearchStorageError(RuntimeError):
    """A storage URL that cannot hold a study (one line, no password)."""


def shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparsable URL)"


@dataclass(frozen=True)
class SearchStorage:
    url: str  # the project's database URL, as DATABASE_URL gives it

    def target(self) -> tuple[str, dict]:
        """(Optuna's URL, engine options)."""
        from sqlalchemy.engine import make_url

        try:
            parsed = make_url(self.url)
        except Exception:
            raise SearchStorageError(f"search storage {shown(self.url)}: not an SQLAlchemy URL") from None
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            if parsed.database in (None, "", ":memory:"):
                raise SearchStorageError("search storage: an in-memory SQLite database cannot keep a search; "
                                         "give a file (sqlite:///autotrader.db)")
            path = Path(parsed.database)
            return parsed.set(database=str(path.with_name(path.name.removesuffix(path.suffix) + ".optuna.db"))
                              ).render_as_string(hide_password=False), {}
        if backend == "postgresql":
            return self.url, {"connect_args": {"options": f"-csearch_path={SCHEMA}"}}
        raise SearchStorageError(f"search storage {shown(self.url)}: SQLite or PostgreSQL only")

    def where(self) -> str:
        url, _ = self.target()
        return shown(url) + (f" (schema {SCHEMA})" if url.startswith("postgresql") else "")

    def optuna(self):
        """An Optuna RDBStorage (its schema created first on PostgreSQL)."""
        import optuna
        import sqlalchemy

        url, options = self.target()
        try:
            if options:
                engine = sqlalchemy.create_engine(url)
                try:
                    with engine.begin() as conn:
                        conn.execute(sqlalchemy.text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
                finally:
                    engine.dispose()
            return optuna.storages.RDBStorage(url, engine_kwargs=options)
        except sqlalchemy.exc.SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
            raise SearchStorageError(f"search storage {self.where()}: {reason}") from None
