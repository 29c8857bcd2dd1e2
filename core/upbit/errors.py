"""Typed failures of Upbit's REST API, each one of the neutral exchange errors the cycle knows.
Messages carry Upbit's error name and message, never keys."""
from __future__ import annotations

import re

from core.data.sources import SourceUnavailable
from core.trading.exchange import (
    AccessDenied,
    BelowMinimum,
    ExchangeError,
    ExchangeFailure,
    ExchangeTimeout,
    ExchangeUnreachable,
    InsufficientFunds,
    OrderCancelled,
    OrderNotFound,
    OrderOutcomeUnknown,
    OrderRejected,
    RateLimited,
)


class UpbitError(ExchangeError, SourceUnavailable):
    """Every Upbit failure is a neutral exchange error (core.trading.exchange) and, for the quotation
    API, a candle source being unavailable."""


class UpbitNetworkError(UpbitError, ExchangeUnreachable):
    """Connection refused, reset or DNS failure: the request may not have arrived."""


class UpbitTimeoutError(UpbitNetworkError, ExchangeTimeout):
    """No answer in time: the request may or may not have been executed."""


class UpbitRateLimitError(UpbitError, RateLimited):
    """429 (too many requests) or 418 (banned for persisting: `blocked`)."""


class UpbitServerError(UpbitError, ExchangeFailure):
    """5xx, or an answer that is not the JSON the endpoint promises."""


class UpbitRequestError(UpbitError, OrderRejected):
    """4xx other than rate limits: a bad market, parameter or order."""


class UpbitAuthError(UpbitRequestError, AccessDenied):
    """401: keys invalid, expired JWT, IP not on the allow-list."""


class UpbitInsufficientFundsError(UpbitRequestError, InsufficientFunds):
    pass


class UpbitUnderMinimumError(UpbitRequestError, BelowMinimum):
    pass


class UpbitOrderNotFoundError(UpbitRequestError, OrderNotFound):
    """404 order_not_found: the exchange has no order by that uuid or identifier."""


class UpbitOrderUnknownError(UpbitError, OrderOutcomeUnknown):
    """An order was sent but neither its answer nor a look-up by identifier says what became of it.

    Its database row stays open; reconciliation settles it once the exchange answers again."""


class UpbitOrderCancelledError(UpbitError, OrderCancelled):
    """The exchange cancelled the order with nothing executed."""


_BY_NAME = {
    "order_not_found": UpbitOrderNotFoundError,
    "insufficient_funds_bid": UpbitInsufficientFundsError,
    "insufficient_funds_ask": UpbitInsufficientFundsError,
    "under_min_total_bid": UpbitUnderMinimumError,
    "under_min_total_ask": UpbitUnderMinimumError,
    "invalid_access_key": UpbitAuthError,
    "jwt_verification": UpbitAuthError,
    "expired_access_key": UpbitAuthError,
    "nonce_used": UpbitAuthError,
    "no_authorization_i_p": UpbitAuthError,  # Upbit's own spelling of its IP allow-list error
    "no_authorization_ip": UpbitAuthError,
    "out_of_scope": UpbitAuthError,
}

# Upbit answers a 418 with "the time of the block" in its text, in no documented format; Retry-After
# when present wins. Without either, a first block is assumed to last this long (Upbit lengthens
# repeated ones, so waiting too little costs more than waiting too much).
DEFAULT_BLOCK_SECONDS = 300.0
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(초|분|시간|s\b|sec|second|m\b|min|minute|h\b|hour)", re.IGNORECASE)
_UNIT_SECONDS = {"초": 1, "s": 1, "sec": 1, "second": 1, "분": 60, "m": 60, "min": 60, "minute": 60,
                 "시간": 3600, "h": 3600, "hour": 3600}


def block_seconds(message: str | None) -> float | None:
    """The block time a 418's text states ("blocked for 60 seconds", "60초"), in seconds; None if none."""
    match = _DURATION.search(message or "")
    if not match:
        return None
    unit = match.group(2).lower()
    return float(match.group(1)) * _UNIT_SECONDS.get(unit, _UNIT_SECONDS.get(unit.rstrip("s"), 1))


def error_from_http(response) -> UpbitError:
    """The typed error for a failed HTTP answer (a requests.Response): Upbit's error name and message
    from its JSON body when there is one (a plain-text body is kept as the message), and the wait a
    rate limit asks for (Retry-After, or the block time a 418 states)."""
    name = message = None
    try:
        body = response.json()
        error = body.get("error", {}) if isinstance(body, dict) else {}
        if isinstance(error, dict):
            name, message = error.get("name"), error.get("message")
    except ValueError:
        message = (response.text or "").strip()[:200] or None
    if name is not None:
        name = str(name)  # Upbit sends some names as numbers: {"name": 404, "message": "Code not found"}
    if message is not None:
        message = str(message)
    try:
        retry_after = float(response.headers.get("Retry-After"))
    except (TypeError, ValueError):
        retry_after = None
    if response.status_code == 418 and retry_after is None:
        retry_after = block_seconds(message) or DEFAULT_BLOCK_SECONDS
    return error_for_response(response.status_code, name, message, retry_after if retry_after is not None else 1.0)


def error_for_response(status: int, name: str | None, message: str | None, retry_after: float = 1.0) -> UpbitError:
    text = f"Upbit HTTP {status}" + (f" {name}" if name else "") + (f": {message}" if message else "")
    if status in (418, 429):
        return UpbitRateLimitError(text, status=status, name=name, retry_after=retry_after, blocked=status == 418)
    if status >= 500:
        return UpbitServerError(text, status=status, name=name)
    cls = _BY_NAME.get(name or "")
    if cls is None:
        cls = UpbitAuthError if status == 401 else UpbitRequestError
    return cls(text, status=status, name=name)
