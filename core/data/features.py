"""How is a feature built? The 46 scale-free, strictly causal features and the (24, 46) window.

Every feature at step t is computed from candles at or before t only (rolling windows and
recursive averages run forward in time; nothing is back-filled). Levels are expressed as ratios to
the close, so a model does not learn one coin's price scale. The first `WARMUP_ROWS` rows of a
contiguous run of candles are left out instead of being filled. The table of names, formulas and
windows is `FEATURE_TABLE` below and `docs/features.md`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.data.candles import candles_from_records, find_gaps

SEQUENCE_LENGTH = 24
WARMUP_ROWS = 126  # longest look-back (SMA 100) plus room for the recursive averages to settle
MIN_HISTORY = WARMUP_ROWS + SEQUENCE_LENGTH  # 150 candles build one window
MAX_TOLERATED_MISSING = 6  # an exchange maintenance hole is bridged; a longer one starts a new run (no window straddles it)

# (name, formula, window) in the order the model sees them.
FEATURE_TABLE: tuple[tuple[str, str, str], ...] = (
    ("ret_1", "log(close_t / close_t-1)", "1"),
    ("ret_3", "log(close_t / close_t-3)", "3"),
    ("ret_6", "log(close_t / close_t-6)", "6"),
    ("ret_12", "log(close_t / close_t-12)", "12"),
    ("ret_24", "log(close_t / close_t-24)", "24"),
    ("ret_48", "log(close_t / close_t-48)", "48"),
    ("range_ratio", "(high - low) / close", "1"),
    ("body_ratio", "close / open - 1", "1"),
    ("upper_wick", "(high - max(open, close)) / close", "1"),
    ("lower_wick", "(min(open, close) - low) / close", "1"),
    ("close_location", "(close - low) / (high - low); 0.5 when high = low", "1"),
    ("atr_ratio_14", "ATR (Wilder) / close", "14"),
    ("volatility_5", "std of ret_1", "5"),
    ("volatility_20", "std of ret_1", "20"),
    ("volatility_ratio", "volatility_5 / volatility_20", "5, 20"),
    ("price_to_sma_5", "close / SMA(close) - 1", "5"),
    ("price_to_sma_10", "close / SMA(close) - 1", "10"),
    ("price_to_sma_20", "close / SMA(close) - 1", "20"),
    ("price_to_sma_50", "close / SMA(close) - 1", "50"),
    ("price_to_sma_100", "close / SMA(close) - 1", "100"),
    ("price_to_ema_5", "close / EMA(close) - 1", "5"),
    ("price_to_ema_10", "close / EMA(close) - 1", "10"),
    ("price_to_ema_20", "close / EMA(close) - 1", "20"),
    ("price_to_ema_50", "close / EMA(close) - 1", "50"),
    ("macd_ratio", "(EMA12 - EMA26) / close", "12, 26"),
    ("macd_signal_ratio", "EMA9(EMA12 - EMA26) / close", "12, 26, 9"),
    ("macd_hist_ratio", "macd_ratio - macd_signal_ratio", "12, 26, 9"),
    ("rsi_14", "RSI (Wilder) / 100", "14"),
    ("stoch_k_14", "(close - min low) / (max high - min low)", "14"),
    ("stoch_d_3", "SMA of stoch_k_14", "3"),
    ("roc_5", "close / close_t-5 - 1", "5"),
    ("roc_10", "close / close_t-10 - 1", "10"),
    ("roc_20", "close / close_t-20 - 1", "20"),
    ("bb_position", "(close - lower) / (upper - lower), bands SMA20 +- 2 sd", "20"),
    ("bb_width", "(upper - lower) / SMA20", "20"),
    ("volume_change", "log(volume_t / volume_t-1), clipped to +-10", "1"),
    ("volume_ma_ratio_20", "volume / SMA(volume) ", "20"),
    ("volume_zscore_100", "z-score of log(volume)", "100"),
    ("obv_slope_10", "(OBV_t - OBV_t-10) / sum(volume), in [-1, 1]", "10"),
    ("obv_slope_20", "(OBV_t - OBV_t-20) / sum(volume), in [-1, 1]", "20"),
    ("dist_high_24", "close / max(high) - 1", "24"),
    ("dist_low_24", "close / min(low) - 1", "24"),
    ("hour_sin", "sin(2 pi hour / 24), hour of the candle's open in UTC", "-"),
    ("hour_cos", "cos(2 pi hour / 24)", "-"),
    ("dow_sin", "sin(2 pi weekday / 7)", "-"),
    ("dow_cos", "cos(2 pi weekday / 7)", "-"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(name for name, _, _ in FEATURE_TABLE)
N_FEATURES = len(FEATURE_NAMES)
assert N_FEATURES == 46, N_FEATURES

_TINY = 1e-12
EMA_SPANS = (5, 10, 12, 20, 26, 50)


class InsufficientHistoryError(ValueError):
    """Too few (contiguous) candles to build one window; `needed`: how many more it takes, if known."""

    def __init__(self, message: str, needed: int | None = None):
        super().__init__(message)
        self.needed = needed


@dataclass(frozen=True)
class FeatureWindow:
    """The model's input for one market at one candle: unscaled features, oldest step first."""

    market: str
    timestamp: pd.Timestamp  # open time of the last candle in the window
    close: float
    sequence: np.ndarray = field(repr=False)  # (24, 46) float32

    @property
    def tabular(self) -> np.ndarray:
        """The last step's features (46,), the LightGBM head's tabular input."""
        return self.sequence[-1]

    def __getitem__(self, key: str):  # the user guide indexes the result like a dict
        if key == "feature_names":
            return list(FEATURE_NAMES)
        return getattr(self, key)


def _wilder(x: pd.Series, period: int) -> pd.Series:
    return x.ewm(alpha=1.0 / period, adjust=False).mean()


def feature_matrix(candles: pd.DataFrame, recursions: dict[str, float] | None = None) -> np.ndarray:
    """Features for every row of one contiguous run, (n, 46) float64; warm-up rows are NaN.

    With `recursions`, the last value of every recursive average is written into it: the state from
    which core.feature_state carries the features forward one candle at a time.
    """
    o, h, l, c, v = (candles[k].astype(np.float64) for k in ("open", "high", "low", "close", "volume"))
    log_c = np.log(c)
    ret1 = log_c.diff()
    cols: dict[str, pd.Series | np.ndarray] = {}
    for lag in (1, 3, 6, 12, 24, 48):
        cols[f"ret_{lag}"] = log_c - log_c.shift(lag)
    rng = h - l
    cols["range_ratio"] = rng / c
    cols["body_ratio"] = c / o - 1
    cols["upper_wick"] = (h - np.maximum(o, c)) / c
    cols["lower_wick"] = (np.minimum(o, c) - l) / c
    cols["close_location"] = ((c - l) / rng.where(rng > 0)).fillna(0.5).where(c.notna())
    prev_c = c.shift(1)
    true_range = pd.concat([rng, (h - prev_c).abs(), (l - prev_c).abs()], axis=1).max(axis=1, skipna=False)
    atr = _wilder(true_range, 14)
    cols["atr_ratio_14"] = atr / c
    vol5 = ret1.rolling(5).std()
    vol20 = ret1.rolling(20).std()
    cols["volatility_5"] = vol5
    cols["volatility_20"] = vol20
    cols["volatility_ratio"] = vol5 / (vol20 + _TINY)
    for n in (5, 10, 20, 50, 100):
        cols[f"price_to_sma_{n}"] = c / c.rolling(n).mean() - 1
    emas = {n: c.ewm(span=n, adjust=False).mean() for n in EMA_SPANS}
    for n in (5, 10, 20, 50):
        cols[f"price_to_ema_{n}"] = c / emas[n] - 1
    macd = emas[12] - emas[26]
    signal = macd.ewm(span=9, adjust=False).mean()
    cols["macd_ratio"] = macd / c
    cols["macd_signal_ratio"] = signal / c
    cols["macd_hist_ratio"] = (macd - signal) / c
    delta = c.diff()
    gain = _wilder(delta.clip(lower=0), 14)
    loss = _wilder((-delta).clip(lower=0), 14)
    cols["rsi_14"] = (gain / (gain + loss + _TINY)).where(delta.notna())
    low14 = l.rolling(14).min()
    high14 = h.rolling(14).max()
    stoch = ((c - low14) / (high14 - low14).where(high14 > low14)).fillna(0.5).where(low14.notna())
    cols["stoch_k_14"] = stoch
    cols["stoch_d_3"] = stoch.rolling(3).mean()
    for n in (5, 10, 20):
        cols[f"roc_{n}"] = c / c.shift(n) - 1
    mid = c.rolling(20).mean()
    sd = c.rolling(20).std(ddof=0)
    upper, lower = mid + 2 * sd, mid - 2 * sd
    cols["bb_position"] = ((c - lower) / (upper - lower).where(upper > lower)).fillna(0.5).where(mid.notna())
    cols["bb_width"] = (upper - lower) / mid
    log_v = np.log(v + _TINY)
    cols["volume_change"] = (log_v - log_v.shift(1)).clip(-10, 10)
    cols["volume_ma_ratio_20"] = v / (v.rolling(20).mean() + _TINY)
    cols["volume_zscore_100"] = ((log_v - log_v.rolling(100).mean()) / (log_v.rolling(100).std() + 1e-6)).clip(-10, 10)
    obv = (np.sign(delta.fillna(0)) * v).cumsum()
    for n in (10, 20):
        cols[f"obv_slope_{n}"] = (obv - obv.shift(n)) / (v.rolling(n).sum() + _TINY)
    cols["dist_high_24"] = c / h.rolling(24).max() - 1
    cols["dist_low_24"] = c / l.rolling(24).min() - 1
    index = candles.index
    hour = index.hour.to_numpy() + index.minute.to_numpy() / 60.0
    dow = index.day_of_week.to_numpy() + hour / 24.0
    cols["hour_sin"] = np.sin(2 * np.pi * hour / 24)
    cols["hour_cos"] = np.cos(2 * np.pi * hour / 24)
    cols["dow_sin"] = np.sin(2 * np.pi * dow / 7)
    cols["dow_cos"] = np.cos(2 * np.pi * dow / 7)

    if recursions is not None:
        last = {f"ema_{n}": series for n, series in emas.items()}
        last.update(macd_signal=signal, atr=atr, gain=gain, loss=loss)
        recursions.update({name: float(series.iloc[-1]) for name, series in last.items()})
    matrix = np.column_stack([np.asarray(cols[name], dtype=np.float64) for name in FEATURE_NAMES])
    matrix[: min(WARMUP_ROWS, len(matrix))] = np.nan
    return matrix


@dataclass(frozen=True)
class FeatureHistory:
    """Features of a whole history, split into contiguous runs at holes.

    `values[i]` belongs to candle `index[i]`; `window_ends` are the rows that end a full
    24-step window lying inside one run (all rows valid).
    """

    index: pd.DatetimeIndex
    values: np.ndarray  # (n, 46) float64, NaN where no feature exists (warm-up)
    run_id: np.ndarray  # (n,) int, contiguous run of each row
    window_ends: np.ndarray  # (m,) int

    def windows(self, ends: np.ndarray | None = None, dtype=np.float32) -> np.ndarray:
        """Stack windows ending at `ends` (default: all) into (m, 24, 46)."""
        ends = self.window_ends if ends is None else np.asarray(ends)
        if len(ends) == 0:
            return np.zeros((0, SEQUENCE_LENGTH, N_FEATURES), dtype)
        lo = int(ends.min()) - SEQUENCE_LENGTH + 1
        rows = self.values[lo:int(ends.max()) + 1].astype(dtype)  # convert only the rows the windows span
        return rows[(ends - lo)[:, None] + np.arange(-SEQUENCE_LENGTH + 1, 1)[None, :]]


def build_feature_history(candles: pd.DataFrame, interval_seconds: int) -> FeatureHistory:
    """Features for a whole history at once (training, evaluation, backtests)."""
    n = len(candles)
    run_id = np.zeros(n, dtype=np.int64)
    for gap in find_gaps(candles, interval_seconds):
        if gap.missing > MAX_TOLERATED_MISSING:
            run_id[candles.index.get_loc(gap.end):] += 1
    values = np.full((n, N_FEATURES), np.nan)
    starts = np.flatnonzero(np.r_[True, run_id[1:] != run_id[:-1]])
    stops = np.r_[starts[1:], n]
    for a, b in zip(starts, stops):
        values[a:b] = feature_matrix(candles.iloc[a:b])
    valid = np.isfinite(values).all(axis=1)
    # a window ending at t is usable when rows t-23..t are valid and in t's run
    csum = np.r_[0, np.cumsum(valid)]
    ends = np.arange(SEQUENCE_LENGTH - 1, n)
    full = (csum[ends + 1] - csum[ends + 1 - SEQUENCE_LENGTH]) == SEQUENCE_LENGTH
    same_run = run_id[ends] == run_id[ends - SEQUENCE_LENGTH + 1]
    return FeatureHistory(candles.index, values, run_id, ends[full & same_run])


def last_run(candles: pd.DataFrame, market: str, interval_seconds: int = 3600) -> pd.DataFrame:
    """The candles after the last hole too long to bridge; InsufficientHistoryError if fewer than MIN_HISTORY."""
    if len(candles) < MIN_HISTORY:
        raise InsufficientHistoryError(
            f"{market}: {len(candles)} candles given, at least {MIN_HISTORY} are needed to build one window",
            needed=MIN_HISTORY - len(candles))
    gaps = [g for g in find_gaps(candles, interval_seconds) if g.missing > MAX_TOLERATED_MISSING]
    run = candles.loc[gaps[-1].end:] if gaps else candles
    if len(run) < MIN_HISTORY:
        raise InsufficientHistoryError(
            f"{market}: only {len(run)} contiguous candles since the hole after {gaps[-1].start.isoformat()},"
            f" at least {MIN_HISTORY} are needed", needed=MIN_HISTORY - len(run))
    return run


def latest_window(candles: pd.DataFrame, market: str, interval_seconds: int = 3600) -> FeatureWindow:
    """The window ending at the last candle, from the last 250 candles of its run (the user-guide API;
    live cycles carry features forward with core.feature_state instead). Needs MIN_HISTORY candles."""
    run = last_run(candles, market, interval_seconds)
    values = feature_matrix(run.iloc[-(MIN_HISTORY + 100):])
    sequence = values[-SEQUENCE_LENGTH:]
    if not np.isfinite(sequence).all():
        raise InsufficientHistoryError(f"{market}: features are not defined for the last {SEQUENCE_LENGTH} candles")
    return FeatureWindow(market, run.index[-1], float(run["close"].iloc[-1]), sequence.astype(np.float32))


def build_features_from_market_data(candles, market: str, interval_seconds: int = 3600) -> FeatureWindow:
    """User-guide API: candles as a DataFrame or a list of dicts (oldest first, >= 150 rows)."""
    frame = candles_from_records(candles, source=f"{market} candles")
    return latest_window(frame, market, interval_seconds)
