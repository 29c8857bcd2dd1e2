"""Upbit's exchange API (accounts, orders), called over REST with our own timeouts and typed errors.

pyupbit's `Upbit` client is not used for trading: it hard-codes the host, sets no timeout, returns
None or an error dict instead of raising, and its order helpers drop `identifier`, which is what
makes an order idempotent here. Requests are signed as Upbit documents (core.upbit.auth).

Retrying: reads are retried on 429, 5xx, timeouts and malformed answers. An order is sent again
only after a 429 (Upbit rejects those before executing anything); after a timeout, a lost
connection or a 5xx the caller must look the identifier up instead (core.upbit.exchange). Nothing
is retried after a 418: every group stops until the block Upbit states has passed.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Callable

import requests

from core.upbit.auth import authorization, query_string
from core.upbit.errors import (
    UpbitNetworkError,
    UpbitRateLimitError,
    UpbitServerError,
    UpbitTimeoutError,
    error_from_http,
)
from core.upbit.ratelimit import EXCHANGE_LIMITS, RateLimiter

log = logging.getLogger(__name__)

RATE_LIMIT_RETRIES = 2


class UpbitExchangeAPI:
    def __init__(self, base_url: str, access_key: str, secret_key: str, *, timeout: float = 5.0,
                 read_retries: int = 3, limiter: RateLimiter | None = None, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        if not access_key or not secret_key:
            raise ValueError("Upbit trading needs an access key and a secret key")
        self.base_url = base_url.rstrip("/")
        self._access_key = access_key
        self._secret_key = secret_key
        self.timeout = timeout
        self.read_retries = read_retries
        self.limiter = limiter or RateLimiter(EXCHANGE_LIMITS, sleep=sleep)
        self.session = session or requests.Session()
        self._sleep = sleep

    def __repr__(self) -> str:  # keys stay out of logs and tracebacks
        return f"UpbitExchangeAPI({self.base_url!r})"

    def accounts(self) -> list[dict]:
        rows = self._call("GET", "/v1/accounts", None, "default")
        if not isinstance(rows, list):
            raise UpbitServerError(f"Upbit /v1/accounts: expected a list, got {type(rows).__name__}")
        return rows

    def place_order(self, *, market: str, side: str, ord_type: str, identifier: str,
                    price: str | None = None, volume: str | None = None) -> dict:
        params = {"market": market, "side": side, "ord_type": ord_type}
        if price is not None:
            params["price"] = price
        if volume is not None:
            params["volume"] = volume
        params["identifier"] = identifier
        return self._call("POST", "/v1/orders", params, "order")

    def order(self, *, identifier: str | None = None, uuid: str | None = None) -> dict:
        """One order with its trades; UpbitOrderNotFoundError if the exchange has none by that key."""
        params = {"uuid": uuid} if uuid else {"identifier": identifier}
        return self._call("GET", "/v1/order", params, "default")

    def cancel(self, *, identifier: str | None = None, uuid: str | None = None) -> dict:
        params = {"uuid": uuid} if uuid else {"identifier": identifier}
        return self._call("DELETE", "/v1/order", params, "default", retries=0)

    def _call(self, method: str, path: str, params: dict | None, group: str, retries: int | None = None):
        retries = (0 if method == "POST" else self.read_retries) if retries is None else retries
        attempt = 0
        while True:
            try:
                return self._once(method, path, params, group)
            except UpbitRateLimitError as exc:  # rejected before execution: safe to send again, after the wait
                if exc.blocked or attempt >= RATE_LIMIT_RETRIES or self._cooling(group):
                    raise  # never after a 418: repeating the violation lengthens the block
            except (UpbitNetworkError, UpbitServerError) as exc:
                if attempt >= retries:
                    raise
                delay = min(4.0, 0.25 * 2 ** attempt)
                log.warning("%s; retrying in %.2f s", exc, delay)
                self._sleep(delay)
            attempt += 1

    def _cooling(self, group: str) -> bool:
        return self.limiter._rejections.get(group, 0) >= self.limiter.max_consecutive_429

    def _once(self, method: str, path: str, params: dict | None, group: str):
        self.limiter.acquire(group)
        query = query_string(params)
        headers = {"Authorization": authorization(self._access_key, self._secret_key, query),
                   "Accept": "application/json"}
        url = self.base_url + path
        try:
            if method == "POST":
                headers["Content-Type"] = "application/json; charset=utf-8"
                response = self.session.post(url, data=json.dumps(params), headers=headers, timeout=self.timeout)
            else:
                response = self.session.request(method, url + (f"?{query}" if query else ""), headers=headers,
                                                timeout=self.timeout)
        except requests.Timeout:
            raise UpbitTimeoutError(f"Upbit {method} {path} did not answer within {self.timeout:g} s") from None
        except requests.RequestException as exc:
            raise UpbitNetworkError(f"Upbit {method} {path} unreachable ({exc.__class__.__name__})") from None
        self.limiter.observe(response.headers.get("Remaining-Req"))
        if response.status_code in (200, 201):
            self.limiter.succeeded(group)
            try:
                return response.json()
            except ValueError:
                raise UpbitServerError(f"Upbit {method} {path} answered {response.status_code} with malformed JSON",
                                       status=response.status_code) from None
        error = error_from_http(response)
        if isinstance(error, UpbitRateLimitError) and error.blocked:
            text = self.limiter.block(error.retry_after, str(error))
            log.error("%s", text)
            raise UpbitRateLimitError(text, status=418, name=error.name, retry_after=error.retry_after, blocked=True)
        if isinstance(error, UpbitRateLimitError):
            delay = self.limiter.rejected(group, error.retry_after)
            log.warning("%s; %s requests wait %.1f s", error, group, delay)
        raise error
