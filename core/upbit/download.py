"""`autotrader download`: Upbit candles into the one CSV format, resumable.

Upbit pages backwards in time (newest first). Each fetched page is appended to
`<file>.partial` at once, so an interrupted download continues from the oldest candle it already
has; when the span is complete, the pages are merged with any existing file and written atomically.
A second run on a complete file fetches only what closed since its last candle.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import pandas as pd

from core.data.candles import (
    COLUMNS,
    load_candle_csv,
    validate_candles,
    write_candle_csv,
)
from core.upbit.quotation import UpbitQuotationClient, closed_only

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DownloadResult:
    market: str
    path: Path
    new_candles: int
    total_candles: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None


def _append_partial(path: Path, page: pd.DataFrame) -> None:
    out = page.loc[:, list(COLUMNS)].copy()
    out.index = out.index.strftime("%Y-%m-%dT%H:%M:%SZ")
    out.index.name = "timestamp"
    out.to_csv(path, mode="a", header=not path.exists(), float_format="%.10g")


def _read_partial(path: Path) -> pd.DataFrame:
    """Pages are appended newest first: sort before the usual validation."""
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    raw = raw.sort_values("timestamp").drop_duplicates("timestamp", keep="last").reset_index(drop=True)
    return validate_candles(raw, source=str(path), first_line=2, line_word="row")


def download_market(client: UpbitQuotationClient, market: str, interval: str, interval_seconds: int, since: datetime,
                    out_dir: Path, now: datetime | None = None, on_page: Callable[[int], None] | None = None) -> DownloadResult:
    now = now or datetime.now(timezone.utc)
    since_ts = pd.Timestamp(since).tz_convert("UTC") if pd.Timestamp(since).tzinfo else pd.Timestamp(since).tz_localize("UTC")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{market}_{interval}.csv"
    partial = target.with_name(target.name + ".partial")
    existing = load_candle_csv(target) if target.exists() else None
    floor = since_ts if existing is None else max(since_ts, existing.index[-1] + pd.Timedelta(seconds=interval_seconds))
    if existing is not None and existing.index[0] > since_ts:
        floor = since_ts  # the file starts later than asked: fill in the older part too

    to: datetime | None = None
    if partial.exists():
        resumed = _read_partial(partial)
        if len(resumed):
            to = resumed.index[0].to_pydatetime()
            log.info("%s: resuming before %s", market, to.isoformat())
    while True:
        page = client.candles_page(market, interval, to=to)
        page = closed_only(page, interval_seconds, now)
        page = page[page.index >= floor]
        if existing is not None:
            page = page[~page.index.isin(existing.index)]
        if page.empty:
            break
        _append_partial(partial, page)
        if on_page is not None:
            on_page(len(page))
        to = page.index[0].to_pydatetime()
        if page.index[0] <= floor:
            break

    fetched = _read_partial(partial) if partial.exists() else None
    frames = [f for f in (existing, fetched) if f is not None and len(f)]
    if not frames:
        raise ValueError(f"{market}: Upbit returned no closed candles since {since_ts.isoformat()}")
    merged = pd.concat(frames).sort_index()
    merged = merged[~merged.index.duplicated(keep="last")]
    tmp = target.with_name(target.name + ".tmp")
    write_candle_csv(merged, tmp)
    os.replace(tmp, target)
    if partial.exists():
        partial.unlink()
    new = 0 if fetched is None else len(fetched)
    return DownloadResult(market, target, new, len(merged), merged.index[0], merged.index[-1])
