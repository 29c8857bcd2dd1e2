"""Features carried forward one candle at a time (live cycles), equal to the full computation.

`core.features.feature_matrix` computes a whole run of candles at once (training, backtests). A live
cycle only adds one candle per market, so recomputing 150+ candles of indicators each time is waste:
`FeatureState` keeps what the next row needs (the last 100 candles, the value of every recursive
average, the last 24 feature rows) and `advance` computes only the new rows, with the same
formulas and the same arithmetic as pandas' recursions, so the rows equal those of `feature_matrix`
over the whole run (tests/test_feature_state.py holds them to 1e-9).

A state belongs to one contiguous run: a hole longer than MAX_TOLERATED_MISSING candles ends it,
and `advance` refuses (HoleError) so that the caller starts a new state from a fresh history.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from core.data.candles import CandleDataError
from core.data.features import (
    EMA_SPANS,
    FEATURE_NAMES,
    MAX_TOLERATED_MISSING,
    MIN_HISTORY,
    N_FEATURES,
    SEQUENCE_LENGTH,
    FeatureWindow,
    InsufficientHistoryError,
    feature_matrix,
)

OHLCV = ("open", "high", "low", "close", "volume")
TAIL = 101  # candles kept: SMA 100 and the volume z-score look back 100, ret_48 needs 49
_TINY = 1e-12
_NS_PER = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_COLUMN = {name: i for i, name in enumerate(FEATURE_NAMES)}
_ALPHAS = {**{f"ema_{n}": 2.0 / (n + 1.0) for n in EMA_SPANS}, "macd_signal": 2.0 / 10.0,
           "atr": 1.0 / 14.0, "gain": 1.0 / 14.0, "loss": 1.0 / 14.0}


class HoleError(ValueError):
    """The next candle comes after a hole that ends the run: start a new state from history."""


def _ewm(previous: float, x: float, alpha: float) -> float:
    """One step of pandas' ewm(adjust=False).mean(), with its very arithmetic (same float results)."""
    old = 1.0 - alpha
    return (old * previous + alpha * x) / (old + alpha)


@dataclass(frozen=True)
class FeatureState:
    market: str
    interval_seconds: int
    last_at: pd.Timestamp  # open time of the newest candle taken in
    tail: np.ndarray = field(repr=False)  # (<= TAIL, 5) open, high, low, close, volume, oldest first
    recursions: dict = field(repr=False)  # the last value of every recursive average
    rows: np.ndarray = field(repr=False)  # (24, 46) float64, the last feature rows

    @classmethod
    def start(cls, candles: pd.DataFrame, market: str, interval_seconds: int = 3600) -> "FeatureState":
        """A state from one contiguous run of at least MIN_HISTORY candles (no hole beyond tolerance)."""
        if len(candles) < MIN_HISTORY:
            raise InsufficientHistoryError(
                f"{market}: {len(candles)} contiguous candles, at least {MIN_HISTORY} are needed to build one window",
                needed=MIN_HISTORY - len(candles))
        recursions: dict[str, float] = {}
        matrix = feature_matrix(candles, recursions)
        rows = matrix[-SEQUENCE_LENGTH:]
        if not np.isfinite(rows).all():
            raise InsufficientHistoryError(f"{market}: features are not defined for the last {SEQUENCE_LENGTH} candles")
        tail = _ohlcv(candles)[-TAIL:]
        return cls(market, interval_seconds, candles.index[-1], tail, recursions, rows.copy())

    def window(self) -> FeatureWindow:
        return FeatureWindow(self.market, self.last_at, float(self.tail[-1, 3]), self.rows.astype(np.float32))

    def advance(self, candles: pd.DataFrame) -> "FeatureState":
        """Take in the candles newer than `last_at` (older ones are ignored); HoleError on a run-ending hole."""
        stamps = candles.index.asi8 * _NS_PER[candles.index.unit]
        first = int(np.searchsorted(stamps, self.last_at.value, side="right"))
        if first >= len(stamps):
            return self
        step = self.interval_seconds * 1_000_000_000
        gaps = np.diff(np.r_[self.last_at.value, stamps[first:]]) // step - 1
        if gaps.max() > MAX_TOLERATED_MISSING:
            at = int(np.argmax(gaps > MAX_TOLERATED_MISSING))
            before = self.last_at if at == 0 else candles.index[first + at - 1]
            raise HoleError(f"{self.market}: {int(gaps[at])} candles missing after {before.isoformat()}")
        values = _ohlcv(candles)[first:]
        tail, recursions, rows = self.tail, dict(self.recursions), self.rows
        for ns, candle in zip(stamps[first:], values):
            tail = np.concatenate([tail[1 - TAIL:] if len(tail) >= TAIL else tail, candle[None]])
            rows = np.concatenate([rows[1:], _next_row(tail, recursions, rows, int(ns))[None]])
        return replace(self, last_at=candles.index[-1], tail=tail, recursions=recursions, rows=rows)


def _ohlcv(candles: pd.DataFrame) -> np.ndarray:
    if tuple(candles.columns[:5]) == OHLCV:
        return candles.to_numpy(np.float64)[:, :5]
    where = candles.columns.get_indexer(OHLCV)
    if (where < 0).any():
        raise CandleDataError(f"candles lack {', '.join(c for c, i in zip(OHLCV, where) if i < 0)}")
    return candles.to_numpy(np.float64)[:, where]


def _std(x: np.ndarray, ddof: int) -> float:
    d = x - x.sum() / len(x)
    return math.sqrt(float(d @ d) / (len(x) - ddof))


def _next_row(tail: np.ndarray, rec: dict, rows: np.ndarray, open_ns: int) -> np.ndarray:
    """The feature row of the newest candle in `tail`; updates the recursive averages in `rec`."""
    o, h, l, c, v = (float(x) for x in tail[-1])
    high, low, close, volume = tail[:, 1], tail[:, 2], tail[:, 3], tail[:, 4]
    prev_c = float(close[-2])
    log_c = np.log(close)
    ret1 = np.diff(log_c[-21:])
    f = np.empty(N_FEATURES)
    for lag in (1, 3, 6, 12, 24, 48):
        f[_COLUMN[f"ret_{lag}"]] = log_c[-1] - log_c[-1 - lag]
    rng = h - l
    f[_COLUMN["range_ratio"]] = rng / c
    f[_COLUMN["body_ratio"]] = c / o - 1
    f[_COLUMN["upper_wick"]] = (h - max(o, c)) / c
    f[_COLUMN["lower_wick"]] = (min(o, c) - l) / c
    f[_COLUMN["close_location"]] = (c - l) / rng if rng > 0 else 0.5
    true_range = max(rng, abs(h - prev_c), abs(l - prev_c))
    rec["atr"] = _ewm(rec["atr"], true_range, _ALPHAS["atr"])
    f[_COLUMN["atr_ratio_14"]] = rec["atr"] / c
    vol5, vol20 = _std(ret1[-5:], 1), _std(ret1[-20:], 1)
    f[_COLUMN["volatility_5"]] = vol5
    f[_COLUMN["volatility_20"]] = vol20
    f[_COLUMN["volatility_ratio"]] = vol5 / (vol20 + _TINY)
    for n in (5, 10, 20, 50, 100):
        f[_COLUMN[f"price_to_sma_{n}"]] = c / float(np.mean(close[-n:])) - 1
    for n in EMA_SPANS:
        rec[f"ema_{n}"] = _ewm(rec[f"ema_{n}"], c, _ALPHAS[f"ema_{n}"])
    for n in (5, 10, 20, 50):
        f[_COLUMN[f"price_to_ema_{n}"]] = c / rec[f"ema_{n}"] - 1
    macd = rec["ema_12"] - rec["ema_26"]
    rec["macd_signal"] = _ewm(rec["macd_signal"], macd, _ALPHAS["macd_signal"])
    f[_COLUMN["macd_ratio"]] = macd / c
    f[_COLUMN["macd_signal_ratio"]] = rec["macd_signal"] / c
    f[_COLUMN["macd_hist_ratio"]] = (macd - rec["macd_signal"]) / c
    delta = c - prev_c
    rec["gain"] = _ewm(rec["gain"], max(delta, 0.0), _ALPHAS["gain"])
    rec["loss"] = _ewm(rec["loss"], max(-delta, 0.0), _ALPHAS["loss"])
    f[_COLUMN["rsi_14"]] = rec["gain"] / (rec["gain"] + rec["loss"] + _TINY)
    low14, high14 = float(low[-14:].min()), float(high[-14:].max())
    stoch = (c - low14) / (high14 - low14) if high14 > low14 else 0.5
    f[_COLUMN["stoch_k_14"]] = stoch
    f[_COLUMN["stoch_d_3"]] = (rows[-2, _COLUMN["stoch_k_14"]] + rows[-1, _COLUMN["stoch_k_14"]] + stoch) / 3
    for n in (5, 10, 20):
        f[_COLUMN[f"roc_{n}"]] = c / float(close[-1 - n]) - 1
    mid, sd = float(np.mean(close[-20:])), _std(close[-20:], 0)
    upper, lower = mid + 2 * sd, mid - 2 * sd
    f[_COLUMN["bb_position"]] = (c - lower) / (upper - lower) if upper > lower else 0.5
    f[_COLUMN["bb_width"]] = (upper - lower) / mid
    log_v = np.log(volume[-100:] + _TINY)
    f[_COLUMN["volume_change"]] = min(10.0, max(-10.0, float(log_v[-1] - log_v[-2])))
    f[_COLUMN["volume_ma_ratio_20"]] = v / (float(np.mean(volume[-20:])) + _TINY)
    z = (log_v[-1] - float(np.mean(log_v))) / (_std(log_v, 1) + 1e-6)
    f[_COLUMN["volume_zscore_100"]] = min(10.0, max(-10.0, float(z)))
    signed = np.sign(np.diff(close[-21:])) * volume[-20:]
    for n in (10, 20):
        f[_COLUMN[f"obv_slope_{n}"]] = float(signed[-n:].sum()) / (float(volume[-n:].sum()) + _TINY)
    f[_COLUMN["dist_high_24"]] = c / float(high[-24:].max()) - 1
    f[_COLUMN["dist_low_24"]] = c / float(low[-24:].min()) - 1
    seconds = open_ns // 1_000_000_000
    hour = (seconds % 86_400) // 3600 + (seconds % 3600) // 60 / 60.0  # as pandas: hour + minute / 60
    dow = (seconds // 86_400 + 3) % 7 + hour / 24.0  # 1970-01-01 was a Thursday (3)
    f[_COLUMN["hour_sin"]] = math.sin(2 * math.pi * hour / 24)
    f[_COLUMN["hour_cos"]] = math.cos(2 * math.pi * hour / 24)
    f[_COLUMN["dow_sin"]] = math.sin(2 * math.pi * dow / 7)
    f[_COLUMN["dow_cos"]] = math.cos(2 * math.pi * dow / 7)
    return f
