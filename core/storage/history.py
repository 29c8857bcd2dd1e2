"""Does a database hold a trading history? What a destructive command must not drop unasked."""
from __future__ import annotations

from sqlalchemy import func, inspect, select
from sqlalchemy.exc import SQLAlchemyError

from core.storage.connect import make_engine, problem
from core.storage.schema import fills, orders


def trading_history(url: str) -> str | None:
    """'12 orders, 10 fills' when the database holds any, else None (also for a database without tables)."""
    engine = make_engine(url)
    try:
        present = set(inspect(engine).get_table_names())
        counts = []
        with engine.connect() as conn:
            for table in (orders, fills):
                if table.name in present:
                    n = conn.execute(select(func.count()).select_from(table)).scalar() or 0
                    if n:
                        counts.append(f"{n} {table.name}")
        return ", ".join(counts) or None
    except SQLAlchemyError as exc:
        raise problem(url, exc) from None
    finally:
        engine.dispose()
