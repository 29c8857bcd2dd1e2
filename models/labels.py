"""What is the model asked to predict? Labels from the forward return, net of Upbit's fees."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from models.signal import BUY, HOLD, SELL

UPBIT_FEE_RATE = 0.0005  # per side, KRW markets


@dataclass(frozen=True)
class LabelSpec:
    """BUY when buying now and selling `horizon` candles later gains more than `threshold` after both
    fees; SELL when being out of the market over that span beats being in by more than `threshold`
    after both fees (the fall pays for a round trip); HOLD otherwise."""

    horizon: int = 12
    threshold: float = 0.005
    fee_rate: float = UPBIT_FEE_RATE

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ValueError(f"horizon must be at least 1 candle, got {self.horizon}")
        if not 0 <= self.threshold < 1:
            raise ValueError(f"threshold must be in [0, 1), got {self.threshold}")

    def to_dict(self) -> dict:
        return asdict(self) | {
            "definition": "r = close[t+horizon]/close[t]-1; BUY if (1+r)(1-fee)^2-1 > threshold; "
            "SELL if (1-fee)^2/(1+r)-1 > threshold; else HOLD",
            "classes": ["SELL", "HOLD", "BUY"],
        }


def forward_returns(candles: pd.DataFrame, horizon: int, interval_seconds: int) -> np.ndarray:
    """close[t + horizon intervals] / close[t] - 1, matched by timestamp; NaN where that candle is missing."""
    stamps = candles.index.asi8
    target = stamps + horizon * interval_seconds * 1_000_000
    pos = np.searchsorted(stamps, target)
    pos_clipped = np.minimum(pos, len(stamps) - 1)
    found = (pos < len(stamps)) & (stamps[pos_clipped] == target)
    close = candles["close"].to_numpy(dtype=np.float64)
    out = np.full(len(stamps), np.nan)
    out[found] = close[pos_clipped[found]] / close[found] - 1.0
    return out


def label_returns(returns: np.ndarray, spec: LabelSpec) -> np.ndarray:
    """Class index per row (SELL=0, HOLD=1, BUY=2); -1 where the forward return is unknown."""
    keep = (1.0 - spec.fee_rate) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        long_gain = (1.0 + returns) * keep - 1.0
        flat_gain = keep / (1.0 + returns) - 1.0
    labels = np.full(returns.shape, HOLD, dtype=np.int64)
    labels[long_gain > spec.threshold] = BUY
    labels[flat_gain > spec.threshold] = SELL
    labels[~np.isfinite(returns)] = -1
    return labels


def net_long_return(returns: np.ndarray, fee_rate: float = UPBIT_FEE_RATE) -> np.ndarray:
    """Return of buying now and selling after the horizon, both fees paid."""
    return (1.0 + returns) * (1.0 - fee_rate) ** 2 - 1.0
