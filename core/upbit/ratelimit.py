"""How fast may we call Upbit? A request budget per rate-limit group, shared by every thread.

Upbit limits requests per second per group and reports what is left in each answer's
`Remaining-Req` header (`group=order; min=...; sec=N`; `min` is deprecated and ignored). The limiter
keeps one request under the published rate, waits for the next second when the header says the
budget is spent, backs off with jitter on 429, and after a few 429s in a row stops sending to that
group for a while: persisting through 429s is what earns a 418. A 418 blocks the IP or account for
the time Upbit states; until then nothing at all is sent (`block`), and repeating the violation would
only lengthen it.

Limits (docs.upbit.com/kr/reference/rate-limits, and the change log's "order rate limit update",
effective 2026-08-21): exchange API per pocket (sub-accounts count separately) `order` 12/s (was 8),
`default` 30/s; quotation API per IP 10/s in each group, named `market`, `candle`, `trade`,
`ticker` and `orderbook` in the docs (the older plural names are kept for headers that still use them).
"""
from __future__ import annotations

import random
import re
import threading
import time
from collections import deque
from datetime import datetime, timedelta, timezone
from typing import Callable

from core.upbit.errors import UpbitRateLimitError

QUOTATION_LIMITS = {"market": 10, "candle": 10, "trade": 10, "ticker": 10, "orderbook": 10, "candles": 10,
                    "trades": 10}
EXCHANGE_LIMITS = {"order": 12, "default": 30}
_HEADER = re.compile(r"group=([\w-]+).*?sec=(\d+)")


class RateLimiter:
    def __init__(self, limits: dict[str, int], *, default_limit: int = 10, max_consecutive_429: int = 3,
                 cool_down_seconds: float = 30.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.limits = dict(limits)
        self.default_limit = default_limit
        self.max_consecutive_429 = max_consecutive_429
        self.cool_down_seconds = cool_down_seconds
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._sent: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}
        self._rejections: dict[str, int] = {}
        self._banned_until = 0.0  # a 418: nothing is sent to any group before this (clock time)
        self._ban_text = ""

    def acquire(self, group: str) -> None:
        """Wait until a request to `group` keeps under its budget, then count it as sent.

        Raises UpbitRateLimitError without sending while the group cools down after repeated 429s.
        """
        limit = max(1, self.limits.get(group, self.default_limit) - 1)  # one under the published rate
        while True:
            with self._lock:
                now = self._clock()
                if now < self._banned_until:
                    raise UpbitRateLimitError(self._ban_text, status=418, name="blocked",
                                              retry_after=self._banned_until - now, blocked=True)
                if self._rejections.get(group, 0) >= self.max_consecutive_429:
                    left = self._blocked_until.get(group, 0.0) - now
                    if left > 0:
                        raise UpbitRateLimitError(f"Upbit {group} requests paused for {left:.1f} s after repeated "
                                                  f"429 answers (to avoid a 418 ban)", status=429, retry_after=left)
                    self._rejections[group] = 0
                sent = self._sent.setdefault(group, deque())
                while sent and now - sent[0] >= 1.0:
                    sent.popleft()
                wait = self._blocked_until.get(group, 0.0) - now
                if wait <= 0 and len(sent) >= limit:
                    wait = 1.0 - (now - sent[0])
                if wait <= 0:
                    sent.append(now)
                    return
            self._sleep(wait)

    def observe(self, remaining_req: str | None) -> None:
        """Read `Remaining-Req` (group=order; min=...; sec=N): with nothing left, wait out the second."""
        match = _HEADER.search(remaining_req or "")
        if not match:
            return
        group, left = match.group(1), int(match.group(2))
        with self._lock:
            self._rejections[group] = 0
            if left <= 0:
                self._blocked_until[group] = max(self._blocked_until.get(group, 0.0), self._clock() + 1.0)

    def succeeded(self, group: str) -> None:
        with self._lock:
            self._rejections[group] = 0

    def rejected(self, group: str, retry_after: float | None = None) -> float:
        """A 429 for `group`: block it for a jittered back-off that grows with each 429 in a row."""
        with self._lock:
            count = self._rejections.get(group, 0) + 1
            self._rejections[group] = count
            if count >= self.max_consecutive_429:
                delay = self.cool_down_seconds
            else:
                delay = max(retry_after or 0.0, 0.5 * 2 ** (count - 1)) * (0.75 + random.random() / 2)
            self._blocked_until[group] = self._clock() + delay
            return delay

    def block(self, seconds: float, cause: str = "") -> str:
        """Upbit answered 418: send nothing to any group for `seconds`. Returns the text every refused
        request carries until then (the same each time, so that it is announced once)."""
        with self._lock:
            until = self._clock() + max(1.0, seconds)
            if until > self._banned_until:
                self._banned_until = until
                wall = datetime.now(timezone.utc) + timedelta(seconds=max(1.0, seconds))
                self._ban_text = (f"Upbit blocked this IP or account (HTTP 418) until {wall:%Y-%m-%d %H:%M:%S} UTC; "
                                  f"no request is sent before then" + (f" ({cause})" if cause else ""))
            return self._ban_text

    @property
    def blocked(self) -> bool:
        with self._lock:
            return self._clock() < self._banned_until
