"""What is a candle, and how is a candle file read and checked?

One format everywhere (download, replay, train, evaluate, backtest): a CSV with header
`timestamp,open,high,low,close,volume[,value]`, ISO-8601 UTC timestamps of the candle's open time,
one row per *closed* candle, one file per market named `<MARKET>_<interval>.csv` (gzip allowed as
`.csv.gz`). In memory a series is a DataFrame indexed by a UTC DatetimeIndex with float columns
open, high, low, close, volume, value.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from core.data.intervals import INTERVAL_SECONDS  # noqa: F401 - the candle units, where readers look for them

COLUMNS = ("open", "high", "low", "close", "volume", "value")
REQUIRED = ("timestamp", "open", "high", "low", "close", "volume")


class CandleDataError(ValueError):
    """Candle data that cannot be used; the message says where (file, line) and why."""


@dataclass(frozen=True)
class Gap:
    """Missing candles between two present ones (`start` is the last candle before the hole)."""

    start: pd.Timestamp
    end: pd.Timestamp
    missing: int

    def __str__(self) -> str:
        return f"{self.missing} candle(s) missing after {self.start.isoformat()} (next {self.end.isoformat()})"


def candle_path(data_dir: Path, market: str, interval: str) -> Path | None:
    """The file holding `market`'s candles in `data_dir`, or None.

    A KRW market's model may be trained on the same coin quoted elsewhere (e.g. Binance's USDT-BTC
    for KRW-BTC): features are scale-free. That substitution is only done when asked for with
    `same_base_fallback` in `resolve_candle_file`, never silently here.
    """
    for suffix in (".csv", ".csv.gz"):
        path = Path(data_dir) / f"{market}_{interval}{suffix}"
        if path.is_file():
            return path
    return None


def resolve_candle_file(data_dir: Path, market: str, interval: str, same_base_fallback: bool = False) -> Path:
    path = candle_path(data_dir, market, interval)
    if path is not None:
        return path
    if same_base_fallback:
        base = market.split("-", 1)[1]
        matches = sorted(
            p for p in Path(data_dir).glob(f"*-{base}_{interval}.csv*") if p.name.endswith((".csv", ".csv.gz"))
        )
        if matches:
            return matches[0]
    raise CandleDataError(f"no candle file for {market} ({interval}) in {data_dir}: expected {market}_{interval}.csv")


def list_markets(data_dir: Path, interval: str) -> list[str]:
    names = []
    for path in sorted(Path(data_dir).glob(f"*_{interval}.csv*")):
        if path.name.endswith((".csv", ".csv.gz")):
            names.append(path.name.split("_", 1)[0])
    return names


def load_candle_csv(path: str | Path) -> pd.DataFrame:
    """Read and validate one candle file. Raises CandleDataError naming the file and line."""
    path = Path(path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise CandleDataError(f"{path}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise CandleDataError(f"{path}: not a readable CSV ({exc.__class__.__name__}: {str(exc).splitlines()[0]})") from None
    return validate_candles(raw, source=str(path), first_line=2)


def candles_from_records(records: pd.DataFrame | Sequence[Mapping] | Iterable[Mapping], source: str = "candles") -> pd.DataFrame:
    """Validate candles given as a DataFrame or a list of dicts (the user-guide API).

    Accepts Upbit's own key names (`candle_date_time_utc`, `opening_price`, `trade_price`, ...).
    """
    if isinstance(records, pd.DataFrame):
        frame = records.copy()
        if "timestamp" not in frame.columns and isinstance(frame.index, pd.DatetimeIndex):
            frame = frame.rename_axis("timestamp").reset_index()
    else:
        frame = pd.DataFrame(list(records))
    if "candle_date_time_utc" in frame.columns:
        # Upbit's own `timestamp` is the last trade's epoch ms, not the candle's open time
        frame = frame.drop(columns=[c for c in ("timestamp",) if c in frame.columns])
    frame = frame.rename(columns=_UPBIT_NAMES)
    return validate_candles(frame, source=source, first_line=0, line_word="row")


_UPBIT_NAMES = {
    "candle_date_time_utc": "timestamp",
    "opening_price": "open",
    "high_price": "high",
    "low_price": "low",
    "trade_price": "close",
    "candle_acc_trade_volume": "volume",
    "candle_acc_trade_price": "value",
}


def validate_candles(raw: pd.DataFrame, source: str, first_line: int, line_word: str = "line") -> pd.DataFrame:
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        raise CandleDataError(f"{source}: missing column(s) {', '.join(missing)}; header must be {','.join(REQUIRED)}[,value]")
    if len(raw) == 0:
        raise CandleDataError(f"{source}: no candles")

    def where(i: int) -> str:
        return f"{source}, {line_word} {first_line + int(i)}"

    stamps = raw["timestamp"]
    if pd.api.types.is_datetime64_any_dtype(stamps):
        ts = pd.to_datetime(stamps, utc=True)
    else:
        ts = pd.to_datetime(stamps.astype(str), utc=True, format="ISO8601", errors="coerce")
    bad = np.flatnonzero(ts.isna().to_numpy())
    if bad.size:
        raise CandleDataError(f"{where(bad[0])}: timestamp {raw['timestamp'].iloc[bad[0]]!r} is not ISO-8601")

    out = {}
    for col in COLUMNS:
        if col not in raw.columns:
            continue
        values = pd.to_numeric(raw[col], errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise CandleDataError(f"{where(bad[0])}: {col} {raw[col].iloc[bad[0]]!r} is not a finite number")
        out[col] = values
    for col in ("open", "high", "low", "close"):
        bad = np.flatnonzero(out[col] <= 0)
        if bad.size:
            raise CandleDataError(f"{where(bad[0])}: {col} must be positive, got {out[col][bad[0]]}")
    bad = np.flatnonzero(out["volume"] < 0)
    if bad.size:
        raise CandleDataError(f"{where(bad[0])}: volume must not be negative, got {out['volume'][bad[0]]}")
    top = np.maximum(out["open"], out["close"])
    bottom = np.minimum(out["open"], out["close"])
    bad = np.flatnonzero((out["high"] < top * (1 - 1e-9)) | (out["low"] > bottom * (1 + 1e-9)))
    if bad.size:
        raise CandleDataError(f"{where(bad[0])}: high/low do not enclose open and close")
    if "value" not in out:
        out["value"] = out["close"] * out["volume"]

    index = pd.DatetimeIndex(ts).as_unit("us")
    steps = np.diff(index.asi8)
    bad = np.flatnonzero(steps == 0)
    if bad.size:
        raise CandleDataError(f"{where(bad[0] + 1)}: duplicate timestamp {index[bad[0] + 1].isoformat()}")
    bad = np.flatnonzero(steps < 0)
    if bad.size:
        raise CandleDataError(
            f"{where(bad[0] + 1)}: timestamp {index[bad[0] + 1].isoformat()} is before the previous row (not sorted)"
        )
    frame = pd.DataFrame({c: out[c] for c in COLUMNS}, index=index)
    frame.index.name = "timestamp"
    return frame


def find_gaps(candles: pd.DataFrame, interval_seconds: int) -> list[Gap]:
    """Holes in a series: consecutive candles further apart than one interval."""
    stamps = candles.index.asi8  # microseconds since the epoch
    step_us = interval_seconds * 1_000_000
    diffs = np.diff(stamps)
    holes = np.flatnonzero(diffs > step_us)
    return [
        Gap(candles.index[i], candles.index[i + 1], int(diffs[i] // step_us) - 1)
        for i in holes
    ]


def write_candle_csv(candles: pd.DataFrame, path: str | Path) -> None:
    """Write a series in the one CSV format (timestamps as ISO-8601 with a Z)."""
    out = candles.loc[:, list(COLUMNS)].copy()
    out.index = out.index.strftime("%Y-%m-%dT%H:%M:%SZ")
    out.index.name = "timestamp"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, float_format="%.10g")
