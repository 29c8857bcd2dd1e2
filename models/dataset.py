"""Which rows does a model learn from and which is it judged on? Market data sets and the
chronological, purged split shared by training and evaluation."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from core.data.candles import find_gaps, load_candle_csv, resolve_candle_file
from core.data.features import SEQUENCE_LENGTH, FeatureHistory, build_feature_history
from models.labels import LabelSpec, forward_returns, label_returns

SPLITS = ("lstm_train", "head_train", "validation", "test")
PURGED = -1


@dataclass(frozen=True)
class MarketData:
    market: str
    source: Path
    history: FeatureHistory
    returns: np.ndarray  # forward return per row over the label horizon (NaN where unknown)
    labels: np.ndarray  # class per row, -1 where unknown
    n_gaps: int

    @property
    def first(self) -> pd.Timestamp:
        return self.history.index[0]

    @property
    def last(self) -> pd.Timestamp:
        return self.history.index[-1]


def load_market(data_dir: Path, market: str, interval: str, interval_seconds: int, spec: LabelSpec,
                same_base_fallback: bool = True) -> MarketData:
    path = resolve_candle_file(Path(data_dir), market, interval, same_base_fallback=same_base_fallback)
    candles = load_candle_csv(path)
    history = build_feature_history(candles, interval_seconds)
    returns = forward_returns(candles, spec.horizon, interval_seconds)
    return MarketData(market, path, history, returns, label_returns(returns, spec), len(find_gaps(candles, interval_seconds)))


@dataclass(frozen=True)
class SplitPlan:
    """Three timestamps cut time into lstm_train | head_train | validation | test.

    A window ending at candle t belongs to a split only if all of its 24 candles lie inside that
    split and its label's horizon ends inside it too. Between the last labelled candle of one split
    and the first window of the next there are then at least horizon + sequence length candles.
    """

    head_start: pd.Timestamp
    validation_start: pd.Timestamp
    test_start: pd.Timestamp
    horizon: int
    interval_seconds: int
    train_start: pd.Timestamp | None = None  # a rolling window: nothing older is learnt from
    test_end: pd.Timestamp | None = None  # a walk-forward fold: its test period ends here

    @classmethod
    def from_span(cls, first: pd.Timestamp, last: pd.Timestamp, spec: LabelSpec, interval_seconds: int,
                  fractions: Sequence[float] = (0.60, 0.75, 0.85)) -> "SplitPlan":
        span = last - first

        def cut(f: float) -> pd.Timestamp:
            return (first + span * f).floor("h")

        return cls(cut(fractions[0]), cut(fractions[1]), cut(fractions[2]), spec.horizon, interval_seconds)

    def to_dict(self) -> dict:
        out = {
            "head_start": self.head_start.isoformat(),
            "validation_start": self.validation_start.isoformat(),
            "test_start": self.test_start.isoformat(),
            "purge_candles": self.horizon + SEQUENCE_LENGTH,
        }
        if self.train_start is not None:
            out["train_start"] = self.train_start.isoformat()
        if self.test_end is not None:
            out["test_end"] = self.test_end.isoformat()
        return out

    @classmethod
    def from_dict(cls, data: dict, horizon: int, interval_seconds: int) -> "SplitPlan":
        ts = {k: pd.Timestamp(data[k]) for k in ("head_start", "validation_start", "test_start")}
        return cls(ts["head_start"], ts["validation_start"], ts["test_start"], horizon, interval_seconds)

    def assign(self, index: pd.DatetimeIndex, ends: np.ndarray) -> np.ndarray:
        """Split id (0..3) of each window end, or PURGED."""
        step = pd.Timedelta(seconds=self.interval_seconds)
        end_time = index[ends]
        start_time = end_time - step * (SEQUENCE_LENGTH - 1)
        label_time = end_time + step * self.horizon
        first = self.train_start if self.train_start is not None else index[0] - step * 10**6
        bounds = [first, self.head_start, self.validation_start, self.test_start, self.test_end]
        out = np.full(len(ends), PURGED, dtype=np.int64)
        for split in range(4):
            lo, hi = bounds[split], bounds[split + 1]
            inside = start_time >= lo
            if hi is not None:
                inside &= label_time < hi
            out[np.asarray(inside)] = split
        return out


def labelled_windows(data: MarketData, plan: SplitPlan, split: int) -> np.ndarray:
    """Window ends of `split` that carry a label."""
    ends = data.history.window_ends
    chosen = ends[plan.assign(data.history.index, ends) == split]
    return chosen[data.labels[chosen] >= 0]


def out_of_sample_windows(data: MarketData, test_start: pd.Timestamp, interval_seconds: int) -> np.ndarray:
    """Labelled windows lying wholly at or after `test_start` (for data sets other than the training one)."""
    ends = data.history.window_ends
    step = pd.Timedelta(seconds=interval_seconds)
    start_time = data.history.index[ends] - step * (SEQUENCE_LENGTH - 1)
    chosen = ends[np.asarray(start_time >= test_start)]
    return chosen[data.labels[chosen] >= 0]
