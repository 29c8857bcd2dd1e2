"""`autotrader backtest`: the trading cycle over candle files on a simulated clock, paper exchange,
compared with buy-and-hold of the same markets in equal weights."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from core.data.sources import CsvReplaySource
from core.trading.cycle import TradingCycle
from core.trading.feeds import PrecomputedFeed
from core.trading.paper import PaperExchange
from core.trading.performance import performance
from core.trading.portfolio import Portfolio
from core.trading.types import RiskSettings, StepResult


@dataclass(frozen=True)
class OpenPosition:
    """A position still open when the data ended: valued at the market's last close, not sold (no
    sale fee deducted)."""

    market: str
    volume: float
    avg_price_krw: float
    price_krw: float
    value_krw: float


@dataclass
class BacktestResult:
    equity: pd.Series
    buy_and_hold: pd.Series
    metrics: dict
    buy_and_hold_metrics: dict
    steps: list[StepResult] = field(default_factory=list)
    open_positions: tuple[OpenPosition, ...] = ()
    settings_changes: tuple[tuple[datetime, str, str], ...] = ()  # (when, who, what) during a replay
    invested: pd.Series | None = None  # per tick: a position was open after it
    fees: pd.Series | None = None  # per tick: KRW of fees paid in it

    def decisions(self) -> list[tuple]:
        """(time, market, action, approved, kind) of every decision: what two runs must agree on."""
        return [(s.at, s.market, s.decision.action, s.decision.approved, s.decision.kind)
                for s in self.steps if s.decision is not None]

    def to_json(self) -> dict:
        return {
            "strategy": self.metrics,
            "buy_and_hold": self.buy_and_hold_metrics,
            "period": [self.equity.index[0].isoformat(), self.equity.index[-1].isoformat()],
            "ticks": len(self.equity),
            "open_positions": [vars(p) for p in self.open_positions],
            "settings_changes": [{"at": at.isoformat(), "by": who, "change": what}
                                 for at, who, what in self.settings_changes],
        }


def identifiers(prefix: str = "bt") -> Callable[[], str]:
    """Deterministic order identifiers, so two runs over the same candles are comparable."""
    counter = iter(range(10**12))
    return lambda: f"{prefix}-{next(counter):08d}"


def buy_and_hold_curve(series: dict[str, pd.DataFrame], ticks: pd.DatetimeIndex, start_krw: float,
                       interval: pd.Timedelta, fee_rate: float) -> pd.Series:
    """Equal KRW in each market at its first close on the timeline, bought with the fee, held to the end
    (a market with no candle in the period keeps its share in cash)."""
    per_market = start_krw / len(series)
    total = np.zeros(len(ticks))
    for candles in series.values():
        closes = candles["close"]
        closes.index = closes.index + interval  # known at the candle's close
        path = closes.reindex(ticks, method="ffill")
        first = path.first_valid_index()
        if first is None:  # no candle of this market closes in the period: its share stays in cash
            total += per_market
            continue
        volume = per_market / (1 + fee_rate) / path[first]
        total += np.where(path.notna(), path.fillna(0) * volume, per_market)
    return pd.Series(total, index=ticks)


def prepare(data_dir: Path, markets: Sequence[str], manager, interval: str, interval_seconds: int,
            start: pd.Timestamp | None = None, end: pd.Timestamp | None = None):
    """Candles, their precomputed signal feed and the clock ticks of a simulation over `data_dir`."""
    source = CsvReplaySource(data_dir, markets, interval, interval_seconds)
    ticks = source.timeline()
    if start is not None:
        ticks = ticks[ticks >= start]
    if end is not None:
        ticks = ticks[ticks <= end]
    if len(ticks) < 2:
        raise ValueError("a simulation needs at least two candle closes in the chosen period")
    feed = PrecomputedFeed(source.series, manager, interval_seconds, ticks[0], ticks[-1])
    return source.series, feed, ticks


class Simulation:
    """Drives a cycle over clock ticks one at a time (backtest, replay in a loop or on a timer) and
    reports the figures of the ticks run so far."""

    def __init__(self, ticks: pd.DatetimeIndex, run_cycle: Callable[[datetime], list[StepResult]],
                 cycle: TradingCycle, series: dict[str, pd.DataFrame], start_krw: float, interval_seconds: int,
                 changes: Callable[[], list] = list):
        self.ticks, self.run_cycle, self.cycle, self.series = ticks, run_cycle, cycle, series
        self.start_krw, self.interval_seconds = start_krw, interval_seconds
        self.changes = changes  # the settings changed by command so far (a replay's agent knows them)
        self.equity = np.empty(len(ticks))
        self.invested = np.zeros(len(ticks), dtype=bool)
        self.fees = np.zeros(len(ticks))
        self.done = 0
        self.exposed = 0
        self.steps: list[StepResult] = []

    @property
    def finished(self) -> bool:
        return self.done >= len(self.ticks)

    def advance(self) -> datetime:
        """Run the next tick; returns its time."""
        now = self.ticks[self.done].to_pydatetime()
        self.steps.extend(self.run_cycle(now))
        portfolio = self.cycle.portfolio
        self.equity[self.done] = portfolio.equity(self.cycle.prices)
        self.invested[self.done] = bool(portfolio.positions)
        self.fees[self.done] = portfolio.fees_krw
        self.exposed += bool(portfolio.positions)
        self.done += 1
        return now

    def run(self, after_tick: Callable[[int, datetime], None] | None = None) -> BacktestResult:
        """Every remaining tick, `after_tick(i, now)` after each; then the figures."""
        while not self.finished:
            now = self.advance()
            if after_tick is not None:
                after_tick(self.done - 1, now)
        return self.result()

    def result(self) -> BacktestResult:
        if self.done < 2:
            raise ValueError("fewer than two candle closes were run: no figures to report")
        ticks = self.ticks[:self.done]
        curve = pd.Series(self.equity[:self.done], index=ticks)
        trades = self.cycle.portfolio.trades
        fee = self.cycle.exchange.rules.fee_rate
        metrics = performance(curve, [t.return_ratio for t in trades],
                              [(t.closed_at - t.opened_at).total_seconds() / 3600 for t in trades],
                              self.exposed / self.done, self.cycle.portfolio.fees_krw, self.interval_seconds, fee)
        hold = buy_and_hold_curve(self.series, ticks, self.start_krw, pd.Timedelta(seconds=self.interval_seconds), fee)
        hold_metrics = performance(hold, [], [], 1.0, self.start_krw * fee / (1 + fee), self.interval_seconds, fee)
        hold_metrics["trades"] = len(self.series)
        prices = self.cycle.prices
        still_open = tuple(OpenPosition(m, p.volume, p.avg_price_krw, prices.get(m, p.avg_price_krw),
                                        p.value_krw(prices.get(m, p.avg_price_krw)))
                           for m, p in sorted(self.cycle.portfolio.positions.items()))
        fees = np.diff(np.r_[0.0, self.fees[:self.done]])
        return BacktestResult(curve, hold, metrics, hold_metrics, self.steps, still_open, tuple(self.changes()),
                              pd.Series(self.invested[:self.done], index=ticks), pd.Series(fees, index=ticks))


def simulate(ticks: pd.DatetimeIndex, run_cycle: Callable[[datetime], list[StepResult]], cycle: TradingCycle,
             series: dict[str, pd.DataFrame], start_krw: float, interval_seconds: int,
             after_tick: Callable[[int, datetime], None] | None = None) -> BacktestResult:
    """Drive `run_cycle` over every tick (backtest and replay alike) and report the figures."""
    return Simulation(ticks, run_cycle, cycle, series, start_krw, interval_seconds).run(after_tick)


def run_backtest(data_dir: Path, markets: Sequence[str], manager, *, interval: str = "1h", interval_seconds: int = 3600,
                 start_krw: float = 1_000_000, settings: RiskSettings = RiskSettings(), slippage: float = 0.0005,
                 start: pd.Timestamp | None = None, end: pd.Timestamp | None = None) -> BacktestResult:
    series, feed, ticks = prepare(data_dir, markets, manager, interval, interval_seconds, start, end)
    cycle = TradingCycle(feed, PaperExchange(start_krw, slippage), Portfolio(start_krw, start_krw),
                         new_identifier=identifiers())
    return simulate(ticks, lambda now: cycle.run(now, settings), cycle, series, start_krw, interval_seconds)


