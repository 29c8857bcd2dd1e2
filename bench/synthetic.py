"""Candles for benchmarks: the bundled real candles, in KRW, and synthetic markets resampled from them.

Binance's USDT candles become KRW candles at a fixed 1,400 KRW per USDT (features are scale-free, so
only the price level changes). A synthetic market is a block bootstrap of real hours: day-long
blocks of one real coin's candles, each expressed relative to the close before it, drawn at random
and chained from a random starting price, so that returns, ranges and volumes keep their real
distribution and short-range structure.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.data.bundled import BUNDLED_DATA_DIR
from core.data.candles import load_candle_csv, resolve_candle_file
from core.data.markets import DEFAULT_MARKETS

KRW_PER_USDT = 1_400.0
BINANCE = BUNDLED_DATA_DIR / "binance-1h"
BLOCK = 24


def real_krw_candles(markets=DEFAULT_MARKETS, start: str | None = None, end: str | None = None) -> dict[str, pd.DataFrame]:
    """The bundled Binance history of each market's coin, priced in KRW, optionally cut to [start, end)."""
    out = {}
    for market in markets:
        candles = load_candle_csv(resolve_candle_file(BINANCE, market, "1h", same_base_fallback=True))
        candles = candles.loc[start:end] if start or end else candles
        if end is not None:
            candles = candles[candles.index < pd.Timestamp(end, tz="UTC")]
        for column in ("open", "high", "low", "close"):
            candles[column] = candles[column] * KRW_PER_USDT
        if "value" in candles:
            candles["value"] = candles["close"] * candles["volume"]
        out[market] = candles
    return out


def write_candle_dir(series: dict[str, pd.DataFrame], directory: Path) -> Path:
    """Write series as `<MARKET>_1h.csv` files (the format every command reads)."""
    directory.mkdir(parents=True, exist_ok=True)
    for market, candles in series.items():
        frame = candles[["open", "high", "low", "close", "volume"]].copy()
        frame.index = frame.index.strftime("%Y-%m-%dT%H:%M:%SZ")
        frame.rename_axis("timestamp").to_csv(directory / f"{market}_1h.csv")
    return directory


def resampled_markets(n: int, rows: int, seed: int = 1, end: str = "2025-10-31T23:00Z") -> dict[str, pd.DataFrame]:
    """`n` synthetic KRW markets of `rows` hourly candles each, on one clock ending at `end`."""
    rng = np.random.default_rng(seed)
    sources = []
    for candles in real_krw_candles(DEFAULT_MARKETS, start="2022-01-01").values():
        c = candles["close"].to_numpy()
        prev = np.r_[c[0], c[:-1]]
        relative = np.column_stack([candles[k].to_numpy() / prev for k in ("open", "high", "low", "close")])
        sources.append((relative[1:], candles["volume"].to_numpy()[1:]))
    index = pd.date_range(end=pd.Timestamp(end), periods=rows, freq="h", name="timestamp")
    out = {}
    for i in range(n):
        relative, volume = sources[i % len(sources)]
        starts = rng.integers(0, len(relative) - BLOCK, size=-(-rows // BLOCK))
        picks = np.concatenate([np.arange(s, s + BLOCK) for s in starts])[:rows]
        rel, vol = relative[picks], volume[picks] * rng.uniform(0.1, 10.0)
        close = 10 ** rng.uniform(1, 8) * np.cumprod(rel[:, 3])
        prev = np.r_[close[0] / rel[0, 3], close[:-1]]
        frame = pd.DataFrame({"open": rel[:, 0] * prev, "high": rel[:, 1] * prev, "low": rel[:, 2] * prev,
                              "close": close, "volume": vol}, index=index)
        frame["high"] = frame[["open", "high", "close"]].max(axis=1)  # one ulp of rounding in the chaining
        frame["low"] = frame[["open", "low", "close"]].min(axis=1)
        frame["value"] = frame["close"] * frame["volume"]
        out[f"KRW-S{i:03d}"] = frame
    return out
