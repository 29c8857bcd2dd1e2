"""Where do signals and prices come from? The live feed (newest closed candles, fetched when the
cycle runs, paper and live trading) and the precomputed feed (a whole history at once, backtest and
replay). Both use the same features and models.

LiveFeed:
The first cycle fetches each market's last HISTORY closed candles and starts a FeatureState from the
run they end with; later cycles fetch only the candles closed since (one request per market) and
carry the features forward, the same numbers as recomputing the whole run. A hole too long to
bridge, a lost thread (the newest known candle missing from the answer) or a long absence starts the
state again from a full history. All markets' windows are predicted in one batch. A candle already
judged (before a restart, say) is not judged again.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from core.data.candles import CandleDataError
from core.data.feature_state import FeatureState, HoleError
from core.data.features import (
    FEATURE_NAMES,
    MIN_HISTORY,
    FeatureHistory,
    FeatureWindow,
    InsufficientHistoryError,
    build_feature_history,
    last_run,
)
from core.data.sources import CandleSource, SourceUnavailable
from core.trading.types import MarketInput, SourceDown, WarmingUp
from models.signal import MLSignal

log = logging.getLogger(__name__)

VOLATILITY = FEATURE_NAMES.index("volatility_20")  # std of hourly log returns over 20 candles
HISTORY = 399  # candles of a fresh start: two of Upbit's 200-candle pages, the forming one dropped
CATCH_UP = 150  # more candles missed than this: start again from a full history rather than carry forward


class LiveFeed:
    def __init__(self, source: CandleSource, manager, markets: Callable[[], Sequence[str]], interval_seconds: int,
                 judged: dict[str, datetime] | None = None):
        self.source = source
        self.manager = manager
        self.markets = markets
        self.interval_seconds = interval_seconds
        self.judged: dict[str, datetime] = dict(judged or {})  # market -> open time of the last candle judged
        self.states: dict[str, FeatureState] = {}

    def candles(self, market: str, count: int, now: datetime):
        """The last `count` closed candles (for charts)."""
        return self.source.closed_candles(market, count, now)

    def use_manager(self, manager, now: datetime) -> None:
        """Another model from the next cycle on (the features do not depend on the model)."""
        self.manager = manager

    def inputs(self, now: datetime) -> tuple[dict[str, MarketInput], dict[str, str | WarmingUp]]:
        windows, errors = [], {}
        for market in self.markets():
            try:
                window = self.window(market, now)
            except InsufficientHistoryError as exc:
                errors[market] = WarmingUp(exc.needed)
                continue
            except SourceUnavailable as exc:
                errors[market] = SourceDown(str(exc))
                continue
            except CandleDataError as exc:
                errors[market] = str(exc)
                continue
            if window is not None:
                windows.append(window)
        signals = self.manager.predict_batch(windows) if windows else {}
        out = {}
        for window in windows:
            out[window.market] = MarketInput(signal=signals[window.market], price_krw=float(window.close),
                                             volatility=float(window.sequence[-1, VOLATILITY]))
            self.judged[window.market] = window.timestamp.to_pydatetime()
        return out, errors

    def prime(self, now: datetime) -> dict[str, str]:
        """At start-up: fetch every market's history, start its features and load its model, judging
        nothing, so that the first cycle only fetches one candle per market. Returns errors by market."""
        windows, errors = [], {}
        for market in self.markets():
            try:
                windows.append(self.state(market, now).window())
            except InsufficientHistoryError as exc:
                errors[market] = str(WarmingUp(exc.needed))
            except (CandleDataError, SourceUnavailable) as exc:
                errors[market] = str(exc)
        for market, signal in (self.manager.predict_batch(windows) if windows else {}).items():
            if not signal.ok:
                errors[market] = signal.error
        return errors

    def closes(self) -> dict[str, float]:
        """The latest close of every market whose features are up to date (prices for the books)."""
        return {market: float(state.tail[-1, 3]) for market, state in self.states.items()}

    def window(self, market: str, now: datetime) -> FeatureWindow | None:
        """The market's window at its newest closed candle, or None if that candle was judged already."""
        state = self.state(market, now)
        judged = self.judged.get(market)
        if judged is not None and state.last_at.to_pydatetime() <= judged:
            return None  # no new candle since the last cycle
        return state.window()

    def state(self, market: str, now: datetime) -> FeatureState:
        """The market's features up to its newest closed candle: carried forward, or started afresh."""
        return self._carried(market, now) or self._started(market, now)

    def _started(self, market: str, now: datetime) -> FeatureState:
        """A state from a full history (first cycle, or after a hole); the old one is dropped first."""
        self.states.pop(market, None)
        candles = self.source.closed_candles(market, HISTORY, now)
        if candles.empty:
            raise CandleDataError("no closed candles returned")
        state = FeatureState.start(last_run(candles, market, self.interval_seconds), market, self.interval_seconds)
        self.states[market] = state
        return state

    def _carried(self, market: str, now: datetime) -> FeatureState | None:
        """The market's state moved up to the newest closed candle, or None when it must start again."""
        state = self.states.get(market)
        if state is None:
            return None
        step = pd.Timedelta(seconds=self.interval_seconds)
        behind = int((pd.Timestamp(now) - step - state.last_at) // step)
        if behind <= 0:
            return state
        if behind > CATCH_UP:
            return None
        candles = self.source.closed_candles(market, behind + 1, now)
        if state.last_at not in candles.index:  # the answer does not reach back to what we know
            return None
        try:
            self.states[market] = state = state.advance(candles)
            return state
        except HoleError as exc:
            log.info("%s; starting its features again from history", exc)
            return None


class PrecomputedFeed:
    """Signals for a whole candle history computed once, in batches (backtest and replay).

    Uses the same features and models as live; a window at candle t needs only candles <= t.
    Features are computed over each market's whole history (as in training), windows and model
    inference only for the candles that close within [first, last] when those are given.
    """

    CHUNK = 8192  # windows per inference batch: bounds memory on long histories

    def __init__(self, series: dict[str, pd.DataFrame], manager, interval_seconds: int,
                 first: pd.Timestamp | None = None, last: pd.Timestamp | None = None,
                 histories: dict[str, FeatureHistory] | None = None):
        self.interval = pd.Timedelta(seconds=interval_seconds)
        self.manager = manager
        self.series = series
        self._histories = dict(histories or {})  # features already computed over the same candles (walk-forward)
        self._at: dict[str, dict[int, MarketInput | str]] = {}  # market -> close time (ns) -> input or error
        for market, candles in series.items():
            self._at[market] = self._precompute(market, candles, interval_seconds, first, last)

    def _precompute(self, market: str, candles: pd.DataFrame, interval_seconds: int, first, last) -> dict:
        closes = candles.index + self.interval
        wanted = np.ones(len(candles), dtype=bool)
        if first is not None:
            wanted &= closes >= first
        if last is not None:
            wanted &= closes <= last
        history = self._histories.get(market) or build_feature_history(candles, interval_seconds)
        ends = history.window_ends[wanted[history.window_ends]]
        closed_ns = closes.as_unit("ns").asi8
        needed = candles_to_first_window(history.run_id)
        out: dict[int, MarketInput | str | WarmingUp] = {
            int(ns): WarmingUp(int(k)) for ns, k in zip(closed_ns[wanted], needed[wanted])}
        try:
            model = self.manager.get_model(market)
            proba = np.concatenate([model.predict_history(history, ends[i:i + self.CHUNK])
                                    for i in range(0, len(ends), self.CHUNK)]) if len(ends) else np.zeros((0, 3))
        except Exception as exc:  # a broken model must not stop the other markets
            error = f"model unavailable: {exc}"
            return {ns: error for ns in out}
        opened = [t.to_pydatetime() for t in candles.index[ends]]
        signals = MLSignal.from_probability_rows(market, proba, opened, model_id=model.model_id,
                                                 expected_returns=model.expected_returns(proba))
        o, l, c = (candles[k].to_numpy(np.float64)[ends].tolist() for k in ("open", "low", "close"))
        vol = history.values[ends, VOLATILITY].tolist()
        for ns, signal, open_krw, low_krw, close_krw, v in zip(closed_ns[ends].tolist(), signals, o, l, c, vol):
            out[ns] = MarketInput(signal=signal, price_krw=close_krw, open_krw=open_krw, low_krw=low_krw, volatility=v)
        return out

    def use_manager(self, manager, now: datetime) -> None:
        """Another model for every candle that closes after `now`: those signals are computed again
        (the features too: they are not kept, a backtest's memory stays what it was)."""
        self.manager = manager
        after = pd.Timestamp(now) + pd.Timedelta(seconds=1)
        for market, candles in self.series.items():
            kept = {ns: item for ns, item in self._at[market].items() if ns < after.value}
            self._at[market] = kept | self._precompute(market, candles, int(self.interval.total_seconds()), after,
                                                       None)

    def candles(self, market: str, count: int, now: datetime) -> pd.DataFrame:
        """The last `count` candles closed by `now` (for charts)."""
        series = self.series.get(market)
        if series is None:
            return pd.DataFrame()
        return series[series.index + self.interval <= pd.Timestamp(now)].iloc[-count:]

    def inputs(self, now: datetime) -> tuple[dict[str, MarketInput], dict[str, str]]:
        out, errors = {}, {}
        ns = pd.Timestamp(now).value
        for market, at in self._at.items():
            item = at.get(ns)
            if item is None:
                continue  # no candle closed for this market now
            if isinstance(item, (str, WarmingUp)):
                errors[market] = item
            else:
                out[market] = item
        return out, errors


def candles_to_first_window(run_id: np.ndarray) -> np.ndarray:
    """For each candle, how many more candles its run needs before it ends a first full window (at
    least 1: a candle without a window needs one more at the least)."""
    n = len(run_id)
    index = np.arange(n)
    starts = np.maximum.accumulate(np.where(np.r_[True, run_id[1:] != run_id[:-1]], index, 0)) if n else index
    return np.maximum(1, starts + MIN_HISTORY - 1 - index)
