"""Typed failures of Upbit's REST API, each one of the neutral exchange errors the cycle knows.
Messages carry Upbit's error name and message, never keys."""
from __future__ import annotations

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
    "no_authorization_ip": UpbitAuthError,
    "out_of_scope": UpbitAuthError,
}


def error_from_http(response) -> UpbitError:
    """The typed error for a failed HTTP answer (a requests.Response): Upbit's error name and message
    from its JSON body when there is one, and Retry-After for rate limits."""
    name = message = None
    try:
        body = response.json().get("error", {})
        name, message = body.get("name"), body.get("message")
    except (ValueError, AttributeError):
        pass
    try:
        retry_after = float(response.headers.get("Retry-After") or 1)
    except ValueError:
        retry_after = 1.0
    return error_for_response(response.status_code, name, message, retry_after)


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
