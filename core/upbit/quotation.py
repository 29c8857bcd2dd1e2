"""Upbit's public quotation API (candles, tickers): timeouts, typed errors, `UPBIT_API_URL`, 429 back-off.

pyupbit's `get_ohlcv` hard-codes the host, sets no timeout and returns None on failure, so candles
are fetched here with the REST API directly.
"""
from __future__ import annotations

import logging
import random
import re
import time
from datetime import datetime, timezone
from typing import Callable

import pandas as pd
import requests

from core.data.candles import INTERVAL_SECONDS, candles_from_records
from core.trading.health import ServiceMonitor
from core.upbit.errors import (
    UpbitNetworkError,
    UpbitRateLimitError,
    UpbitServerError,
    UpbitTimeoutError,
    error_from_http,
)

log = logging.getLogger(__name__)

MAX_CANDLES_PER_REQUEST = 200
NETWORK_RETRIES = 2  # a connection refused or timed out is tried twice more, a 429 or 5xx up to max_retries
_REMAINING = re.compile(r"sec=(\d+)")


def candle_endpoint(interval: str) -> str:
    if interval not in INTERVAL_SECONDS:
        raise ValueError(f"unknown candle interval {interval!r}")
    if interval == "1d":
        return "/v1/candles/days"
    minutes = INTERVAL_SECONDS[interval] // 60
    return f"/v1/candles/minutes/{minutes}"


class UpbitQuotationClient:
    def __init__(self, base_url: str = "https://api.upbit.com", *, timeout: float = 5.0, max_retries: int = 4,
                 session: requests.Session | None = None, sleep: Callable[[float], None] = time.sleep,
                 monitor: ServiceMonitor | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.session = session or requests.Session()
        self._sleep = sleep
        self.monitor = monitor or ServiceMonitor("Upbit market data")

    def get_json(self, path: str, params: dict):
        """GET with retries on 429 and 5xx (exponential back-off with jitter); typed errors otherwise.

        While Upbit is known to be unreachable a request is tried once, not retried: a cycle over many
        markets then fails fast instead of waiting out every back-off, and commands are not held up.
        """
        retries = 0 if self.monitor.down else self.max_retries
        for attempt in range(retries + 1):
            try:
                response = self.session.get(self.base_url + path, params=params, timeout=self.timeout)
            except requests.Timeout:
                error: Exception = UpbitTimeoutError(f"Upbit {path} did not answer within {self.timeout:.0f} s")
            except requests.RequestException as exc:
                error = UpbitNetworkError(f"Upbit {path} unreachable ({exc.__class__.__name__})")
            else:
                if response.status_code == 200:
                    self._respect_remaining(response)
                    try:
                        answer = response.json()
                    except ValueError:
                        error = UpbitServerError(f"Upbit {path} answered with malformed JSON", status=200)
                    else:
                        self.monitor.ok()
                        return answer
                else:
                    error = self._error(response)
                    if not isinstance(error, (UpbitRateLimitError, UpbitServerError)) or response.status_code == 418:
                        self.monitor.ok()  # it answered: the request was wrong, the service is not down
                        raise error
            if attempt == retries or (isinstance(error, UpbitNetworkError) and attempt >= NETWORK_RETRIES):
                if not isinstance(error, UpbitRateLimitError):
                    self.monitor.failed(error)
                raise error
            delay = getattr(error, "retry_after", 0.5) * (2 ** attempt) * (0.75 + random.random() / 2)
            log.log(logging.WARNING if isinstance(error, UpbitRateLimitError) else logging.DEBUG,
                    "%s; retrying in %.1f s", error, delay)
            self._sleep(delay)
        raise AssertionError("unreachable")

    def _respect_remaining(self, response: requests.Response) -> None:
        match = _REMAINING.search(response.headers.get("Remaining-Req", ""))
        if match and int(match.group(1)) <= 0:
            self._sleep(1.0)  # the group's budget for this second is spent

    @staticmethod
    def _error(response: requests.Response):
        return error_from_http(response)

    def candles_page(self, market: str, interval: str, to: datetime | None = None,
                     count: int = MAX_CANDLES_PER_REQUEST) -> pd.DataFrame:
        """Up to 200 candles opening before `to` (default: now), oldest first, including a forming one."""
        params = {"market": market, "count": min(count, MAX_CANDLES_PER_REQUEST)}
        if to is not None:
            params["to"] = to.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows = self.get_json(candle_endpoint(interval), params)
        if not isinstance(rows, list):
            raise UpbitServerError(f"Upbit candles for {market}: expected a list, got {type(rows).__name__}")
        if not rows:
            return pd.DataFrame(columns=["open", "high", "low", "close", "volume", "value"])
        for row in rows:
            stamp = str(row.get("candle_date_time_utc", ""))
            row["candle_date_time_utc"] = stamp if stamp.endswith("Z") else stamp + "Z"
        return candles_from_records(sorted(rows, key=lambda r: r["candle_date_time_utc"]), source=f"Upbit {market} candles")

    def markets(self, quote: str = "KRW") -> list[str]:
        """Every market Upbit lists in `quote` (GET /v1/market/all), sorted: the KRW markets by default."""
        rows = self.get_json("/v1/market/all", {"is_details": "false"})
        if not isinstance(rows, list):
            raise UpbitServerError(f"Upbit market list: expected a list, got {type(rows).__name__}")
        prefix = f"{quote.upper()}-"
        return sorted({str(r["market"]) for r in rows if isinstance(r, dict) and str(r.get("market", "")).startswith(prefix)})

    def tickers(self, markets: list[str]) -> dict[str, float]:
        rows = self.get_json("/v1/ticker", {"markets": ",".join(markets)})
        return {row["market"]: float(row["trade_price"]) for row in rows}


def closed_only(candles: pd.DataFrame, interval_seconds: int, now: datetime | None = None) -> pd.DataFrame:
    """Drop candles still forming at `now` (Upbit always returns the current one)."""
    now = pd.Timestamp(now or datetime.now(timezone.utc))
    if now.tzinfo is None:
        now = now.tz_localize("UTC")
    closes = candles.index + pd.Timedelta(seconds=interval_seconds)
    return candles[closes <= now]
