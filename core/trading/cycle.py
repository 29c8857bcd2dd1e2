"""One trading cycle: signals -> decide -> execute -> portfolio -> events, the same for every mode.

What differs between backtest, replay and live is only where signals and prices come from (a
SignalFeed) and which exchange fills the orders; this module is the one code path after that.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Protocol, Sequence

import numpy as np
import pandas as pd

from core.features import SEQUENCE_LENGTH, build_feature_history
from core.trading.engine import TradingEngine
from core.trading.portfolio import Portfolio
from core.trading.types import Decision, Fill, RiskSettings
from core.upbit.errors import UpbitError
from models.signal import MLSignal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MarketInput:
    signal: MLSignal
    price_krw: float  # the latest closed candle's close


class SignalFeed(Protocol):
    def inputs(self, now: datetime) -> tuple[dict[str, MarketInput], dict[str, str]]:
        """Signal and price per market as of `now`, and an error text per market that has none."""


@dataclass(frozen=True)
class StepResult:
    market: str
    at: datetime
    signal: MLSignal | None
    decision: Decision | None
    fill: Fill | None
    error: str | None


class PrecomputedFeed:
    """Signals for a whole candle history computed once, in batches (backtest and replay).

    Uses the same features and models as live; a window at candle t needs only candles <= t.
    """

    def __init__(self, series: dict[str, pd.DataFrame], manager, interval_seconds: int):
        self.interval = pd.Timedelta(seconds=interval_seconds)
        self.manager = manager
        self._rows: dict[str, dict] = {}
        self._errors: dict[str, str] = {}
        for market, candles in series.items():
            history = build_feature_history(candles, interval_seconds)
            ends = history.window_ends
            try:
                model = manager.get_model(market)
                proba = model.predict_proba(history.windows(ends)) if len(ends) else np.zeros((0, 3))
                model_id = model.model_id
            except Exception as exc:  # a broken model must not stop the other markets
                self._errors[market] = f"model unavailable: {exc}"
                proba, model_id = None, None
            self._rows[market] = {
                "index": candles.index, "close": candles["close"].to_numpy(),
                "ends": ends, "proba": proba, "model_id": model_id,
            }

    def inputs(self, now: datetime) -> tuple[dict[str, MarketInput], dict[str, str]]:
        out, errors = {}, {}
        candle_open = pd.Timestamp(now) - self.interval
        for market, rows in self._rows.items():
            pos = rows["index"].searchsorted(candle_open)
            if pos >= len(rows["index"]) or rows["index"][pos] != candle_open:
                continue  # no candle closed for this market now
            if market in self._errors:
                errors[market] = self._errors[market]
                continue
            k = np.searchsorted(rows["ends"], pos)
            if k >= len(rows["ends"]) or rows["ends"][k] != pos:
                errors[market] = f"not enough contiguous history for a {SEQUENCE_LENGTH}-candle window yet"
                continue
            signal = MLSignal.from_probabilities(market, rows["proba"][k], timestamp=candle_open.to_pydatetime(),
                                                 model_id=rows["model_id"])
            out[market] = MarketInput(signal, float(rows["close"][pos]))
        return out, errors


class TradingCycle:
    def __init__(self, feed: SignalFeed, exchange, portfolio: Portfolio, settings: Callable[[], RiskSettings],
                 engine: TradingEngine | None = None, on_step: Callable[[StepResult], None] | None = None,
                 new_identifier: Callable[[], str] = lambda: uuid.uuid4().hex):
        self.feed = feed
        self.exchange = exchange
        self.portfolio = portfolio
        self.settings = settings
        self.engine = engine or TradingEngine()
        self.on_step = on_step
        self.new_identifier = new_identifier
        self.prices: dict[str, float] = {}

    def run(self, now: datetime) -> Sequence[StepResult]:
        inputs, errors = self.feed.inputs(now)
        self.prices.update({m: i.price_krw for m, i in inputs.items()})
        self.portfolio.mark(self.prices, now)
        results = [StepResult(m, now, None, None, None, e) for m, e in errors.items()]
        settings = self.settings()
        for market, item in inputs.items():
            results.append(self.step(market, item, settings, now))
        if self.on_step is not None:
            for result in results:
                self.on_step(result)
        return results

    def step(self, market: str, item: MarketInput, settings: RiskSettings, now: datetime) -> StepResult:
        account = self.portfolio.account(self.prices)
        position = self.portfolio.positions.get(market)
        decision = self.engine.decide(item.signal, position, account, settings, item.price_krw, now)
        if not decision.approved:
            return StepResult(market, now, item.signal, decision, None, None)
        try:
            if decision.action == "BUY":
                amount = int(decision.investment_ratio * account.equity_krw)
                fill = self.exchange.buy_market(market, amount, self.new_identifier(), item.price_krw, now)
            else:
                volume = position.volume * decision.investment_ratio
                fill = self.exchange.sell_market(market, volume, self.new_identifier(), item.price_krw, now)
        except UpbitError as exc:
            log.warning("%s %s failed: %s", market, decision.action, exc)
            return StepResult(market, now, item.signal, decision, None, str(exc))
        self.portfolio.apply(fill, decision.kind)
        return StepResult(market, now, item.signal, decision, fill, None)
