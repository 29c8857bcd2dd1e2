"""Longer answers for users: day-by-day results and what the models are, as plain data."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine

from core.storage.database import from_db_time
from core.storage.schema import equity_snapshots, fills, signals


@dataclass(frozen=True)
class DayRow:
    day: date
    equity_krw: float  # at the day's last cycle
    change_krw: float
    change_ratio: float
    trades: int
    realised_krw: float


@dataclass(frozen=True)
class DailyView:
    rows: tuple[DayRow, ...]


@dataclass(frozen=True)
class ModelRow:
    market: str
    model_id: str
    scope: str  # global | the market's own head
    trained_on: str  # first .. last candle of the training data
    test_start: str
    validation_log_loss: float | None
    validation_auc_buy: float | None
    error: str | None = None


@dataclass(frozen=True)
class ModelView:
    rows: tuple[ModelRow, ...]


def daily(engine: Engine, trades, principal_krw: float, days: int) -> DailyView:
    """Equity at the end of each of the last `days` days with a cycle, the change on the day before,
    and the round trips closed that day."""
    with engine.connect() as conn:
        snapshots = conn.execute(select(equity_snapshots.c.at, equity_snapshots.c.equity_krw)
                                 .order_by(equity_snapshots.c.id)).all()
    closing: dict[date, float] = {}
    for at, equity in snapshots:
        closing[from_db_time(at).date()] = float(equity)
    rows, previous = [], principal_krw
    for day, equity in sorted(closing.items()):
        closed = [t for t in trades if t.closed_at.date() == day]
        rows.append(DayRow(day, equity, equity - previous, equity / previous - 1.0 if previous else 0.0, len(closed),
                           sum(t.proceeds_krw - t.cost_krw for t in closed)))
        previous = equity
    return DailyView(tuple(rows[-days:]))


def models(manager, markets) -> ModelView:
    """From each market's model_metadata.json, without loading any weights."""
    rows = []
    for market in markets:
        path: Path = manager.model_path(market) / "model_metadata.json"
        try:
            meta = json.loads(path.read_text())
            sources = meta.get("sources", {})
            first = min((s["first"] for s in sources.values()), default="?")[:10]
            last = max((s["last"] for s in sources.values()), default="?")[:10]
            metrics = meta.get("validation_metrics", {})
            rows.append(ModelRow(market, meta.get("model_id", "?"), meta.get("scope", "?"), f"{first} .. {last}",
                                 meta.get("splits", {}).get("test_start", "?")[:10], metrics.get("log_loss"),
                                 metrics.get("roc_auc_buy")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            rows.append(ModelRow(market, "-", "-", "-", "-", None, None, f"{path}: {exc.__class__.__name__}"))
    return ModelView(tuple(rows))



@dataclass(frozen=True)
class ChartData:
    """What /chart draws: recent candles, the model's BUY/SELL signals and the bot's fills."""

    market: str
    candles: object  # DataFrame: open, high, low, close indexed by open time
    signals: tuple[tuple[datetime, str], ...]  # (candle open time, BUY | SELL)
    fills: tuple[tuple[datetime, str, float], ...]  # (time, bid | ask, price)


@dataclass(frozen=True)
class EquityData:
    times: tuple[datetime, ...]
    equity_krw: tuple[float, ...]


def chart_data(engine: Engine, feed, market: str, now: datetime, count: int = 120) -> ChartData:
    candles = feed.candles(market, count, now)
    if len(candles) == 0:
        raise ValueError(f"no candles for {market}")
    start = candles.index[0].to_pydatetime()
    with engine.connect() as conn:
        sigs = conn.execute(select(signals.c.candle_at, signals.c.decision_action).where(
            signals.c.market == market, signals.c.candle_at >= start,
            signals.c.decision_action.in_(["BUY", "SELL"]))).all()
        done = conn.execute(select(fills.c.filled_at, fills.c.side, fills.c.price_krw).where(
            fills.c.market == market, fills.c.filled_at >= start)).all()
    return ChartData(market, candles, tuple((from_db_time(t), a) for t, a in sigs),
                     tuple((from_db_time(t), side, float(price)) for t, side, price in done))


def equity_data(engine: Engine) -> EquityData:
    with engine.connect() as conn:
        rows = conn.execute(select(equity_snapshots.c.at, equity_snapshots.c.equity_krw)
                            .order_by(equity_snapshots.c.id)).all()
    return EquityData(tuple(from_db_time(t) for t, _ in rows), tuple(float(e) for _, e in rows))
