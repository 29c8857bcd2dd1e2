"""Longer answers for users: day-by-day results and what the models are, as plain data."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Engine

from core.storage.database import from_db_time
from core.storage.schema import equity_snapshots, fills, signals

log = logging.getLogger(__name__)


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
    period: str = "day"  # day | week | month: what each row's `day` starts


def period_start(day: date, period: str) -> date:
    if period == "week":
        return day - timedelta(days=day.weekday())  # Monday
    if period == "month":
        return day.replace(day=1)
    return day


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
class WalkForwardLine:
    """The shipped strategy out of sample, from the model's metadata, beside buy-and-hold and the trend rule."""

    first: str
    last: str
    folds: int
    strategy: dict  # total_return, sharpe, max_drawdown, trades, profit_factor, exposure
    buy_and_hold: dict
    trend: dict


@dataclass(frozen=True)
class ModelView:
    rows: tuple[ModelRow, ...]
    walkforward: WalkForwardLine | None = None
    registry: object | None = None  # core.service.serving.RegistryView: versions, challengers, training


def daily(engine: Engine, trades, principal_krw: float, days: int, period: str = "day") -> DailyView:
    """Equity at the end of each of the last `days` days (weeks, months) with a cycle, the change on
    the one before, and the round trips closed in it (UTC)."""
    with engine.connect() as conn:
        snapshots = conn.execute(select(equity_snapshots.c.at, equity_snapshots.c.equity_krw)
                                 .order_by(equity_snapshots.c.id)).all()
    closing: dict[date, float] = {}
    for at, equity in snapshots:
        closing[period_start(from_db_time(at).date(), period)] = float(equity)
    rows, previous = [], principal_krw
    for day, equity in sorted(closing.items()):
        closed = [t for t in trades if period_start(t.closed_at.date(), period) == day]
        rows.append(DayRow(day, equity, equity - previous, equity / previous - 1.0 if previous else 0.0, len(closed),
                           sum(t.proceeds_krw - t.cost_krw for t in closed)))
        previous = equity
    return DailyView(tuple(rows[-days:]), period)


def models(manager, markets, registry=None) -> ModelView:
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
    return ModelView(tuple(rows), walkforward_line(manager.root / "global" / "model_metadata.json"), registry)


def walkforward_line(path: Path) -> WalkForwardLine | None:
    """The walk-forward summary `train --walkforward` stored; None when the model has none or it is unreadable."""
    try:
        summary = json.loads(path.read_text()).get("walkforward")
        folds = summary["folds"]
        return WalkForwardLine(folds[0]["test"][0][:10], folds[-1]["test"][1][:10], len(folds), summary["overall"],
                               summary["baselines"]["buy_and_hold"], summary["baselines"]["trend"])
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None



@dataclass(frozen=True)
class ChartData:
    """What /chart draws: recent candles, the model's BUY/SELL signals and the bot's fills."""

    market: str
    candles: object  # DataFrame: open, high, low, close indexed by open time
    signals: tuple[tuple[datetime, str], ...]  # (candle open time, BUY | SELL)
    fills: tuple[tuple[datetime, str, float], ...]  # (time, bid | ask, price)


@dataclass(frozen=True)
class EquityData:
    """What /equity draws: the equity per cycle, buy-and-hold of the watched markets from the same start
    and equity (empty when their candles cannot be had), and the fills as marks."""

    times: tuple[datetime, ...]
    equity_krw: tuple[float, ...]
    hold_times: tuple[datetime, ...] = ()
    hold_krw: tuple[float, ...] = ()
    trades: tuple[tuple[datetime, str], ...] = ()  # (time, bid | ask)


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


HOLD_CANDLES = 24 * 60  # buy-and-hold is drawn over the last 60 days of hourly candles at most


def equity_data(engine: Engine, feed=None, markets=(), now: datetime | None = None) -> EquityData:
    with engine.connect() as conn:
        rows = conn.execute(select(equity_snapshots.c.at, equity_snapshots.c.equity_krw)
                            .order_by(equity_snapshots.c.id)).all()
        done = conn.execute(select(fills.c.filled_at, fills.c.side).order_by(fills.c.id)).all()
    times, equity = tuple(from_db_time(t) for t, _ in rows), tuple(float(e) for _, e in rows)
    hold_times, hold = (), ()
    if feed is not None and markets and len(times) > 1:
        try:
            hold_times, hold = _buy_and_hold(feed, markets, times, equity, now or times[-1])
        except Exception as exc:  # a source that cannot answer now: the picture goes without the comparison
            log.info("no buy-and-hold comparison for the equity picture: %s", exc)
            hold_times, hold = (), ()
    return EquityData(times, equity, hold_times, hold, tuple((from_db_time(t), side) for t, side in done))


def _buy_and_hold(feed, markets, times, equity, now: datetime):
    """Equal parts of the first snapshot's equity in each watched market, at its closes since then."""
    start = pd.Timestamp(times[0])
    paths = []
    for market in markets:
        candles = feed.candles(market, HOLD_CANDLES, now)
        if len(candles) == 0:
            continue
        closes = candles["close"]
        closes.index = closes.index + (candles.index[1] - candles.index[0] if len(candles) > 1 else pd.Timedelta(0))
        closes = closes[closes.index >= start]
        if len(closes) > 1:
            paths.append(closes / closes.iloc[0])
    if not paths:
        return (), ()
    mean = pd.concat(paths, axis=1).ffill().bfill().mean(axis=1) * equity[0]
    return tuple(t.to_pydatetime() for t in mean.index), tuple(float(v) for v in mean.to_numpy())
