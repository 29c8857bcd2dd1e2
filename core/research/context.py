"""Context the walk-forward can judge beside the 46 features: a separate block of columns for the
head only, never part of the (24, 46) sequence the LSTM and the serving path read.

Groups (`walkforward --context cross,long`):
  cross  btc_ret_24 (BTC's 24-candle log return), btc_vol_24 (the standard deviation of its hourly
         log returns over 24 candles), breadth_24 (the share of the watched markets whose 24-candle
         return is positive)
  long   ret_168 (the market's own 7-day log return), ema200_dist (close / EMA(close, 200) - 1)
Every column at candle t uses candles up to t only. The block rides in a FeatureHistory as extra
columns after the 46, so that windows, purging and the precomputed feed work unchanged;
ContextModel reads its last step into the head.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import pandas as pd

from core.data.features import N_FEATURES
from models.dataset import MarketData
from models.hybrid import HybridModel, check_sequences

GROUPS = {"cross": ("btc_ret_24", "btc_vol_24", "breadth_24"), "long": ("ret_168", "ema200_dist")}


def parse_groups(text: str) -> tuple[str, ...]:
    groups = tuple(g.strip() for g in text.split(",") if g.strip())
    unknown = [g for g in groups if g not in GROUPS]
    if unknown or not groups:
        raise ValueError(f"--context: expected a comma list of {', '.join(GROUPS)}, got {text!r}")
    return groups


def column_names(groups: Sequence[str]) -> tuple[str, ...]:
    return tuple(name for g in groups for name in GROUPS[g])


def context_frames(candles: dict[str, pd.DataFrame], groups: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Per market, the context columns indexed by candle open time (causal: rolling and shifted only)."""
    closes = {m: c["close"].astype(float) for m, c in candles.items()}
    log_closes = {m: np.log(c) for m, c in closes.items()}
    out: dict[str, pd.DataFrame] = {m: pd.DataFrame(index=c.index) for m, c in closes.items()}
    if "cross" in groups:
        btc = next((m for m in closes if m.split("-")[-1] == "BTC"), None)
        if btc is None:
            raise ValueError("--context cross needs BTC among the markets")
        btc_log = log_closes[btc]
        btc_ret = btc_log - btc_log.shift(24)
        btc_vol = btc_log.diff().rolling(24).std()
        up = pd.DataFrame({m: (lc - lc.shift(24)) > 0 for m, lc in log_closes.items()})
        known = pd.DataFrame({m: (lc - lc.shift(24)).notna() for m, lc in log_closes.items()})
        breadth = up.sum(axis=1) / known.sum(axis=1).replace(0, np.nan)
        for m, frame in out.items():
            frame["btc_ret_24"] = btc_ret.reindex(frame.index)
            frame["btc_vol_24"] = btc_vol.reindex(frame.index)
            frame["breadth_24"] = breadth.reindex(frame.index)
    if "long" in groups:
        for m, frame in out.items():
            frame["ret_168"] = log_closes[m] - log_closes[m].shift(168)
            frame["ema200_dist"] = closes[m] / closes[m].ewm(span=200, adjust=False).mean() - 1
    return {m: frame[list(column_names(groups))] for m, frame in out.items()}


def with_context(datasets: Sequence[MarketData], candles: dict[str, pd.DataFrame],
                 groups: Sequence[str]) -> list[MarketData]:
    """The same market data with the context block appended to every feature row (NaN -> 0)."""
    frames = context_frames(candles, groups)
    out = []
    for d in datasets:
        block = frames[d.market].reindex(d.history.index).to_numpy(np.float64)
        values = np.hstack([d.history.values, np.nan_to_num(block, nan=0.0, posinf=0.0, neginf=0.0)])
        out.append(replace(d, history=replace(d.history, values=values)))
    return out


@dataclass
class ContextModel(HybridModel):
    """A hybrid whose head also reads the context block's last step; its windows are (m, 24, 46 + k)."""

    context_size: int = 0

    def predict_proba(self, sequences, calibrated: bool = True) -> np.ndarray:
        x = np.asarray(sequences, dtype=np.float32)
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[2] != N_FEATURES + self.context_size:
            raise ValueError(f"Invalid sequence data: expected (24, {N_FEATURES + self.context_size}), got {x.shape}")
        scaled = self.scale(check_sequences(x[..., :N_FEATURES]))
        return self.head_proba(self.embed(scaled), scaled, calibrated, extra=x[:, -1, N_FEATURES:])

    def predict_history(self, history, ends: np.ndarray, calibrated: bool = True) -> np.ndarray:
        return self.predict_proba(history.windows(ends), calibrated)
