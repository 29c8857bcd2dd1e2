"""Is a service we depend on answering? Up or down since when, told once per outage.

The market-data client and the Telegram front-end report each attempt; the monitor logs one warning
when a service stops answering, a reminder every `remind_seconds` while it stays down, and one line
when it is back, instead of one line per retry. /status and /health show its state.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

log = logging.getLogger("autotrader.health")


@dataclass(frozen=True)
class ServiceHealth:
    name: str
    up: bool | None  # None: not contacted yet
    last_success_at: datetime | None
    down_since: datetime | None
    error: str | None


class ServiceMonitor:
    def __init__(self, name: str, consequence: str = "", remind_seconds: float = 300.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.name = name
        self.consequence = consequence  # what goes on meanwhile, said with the first warning
        self.remind_seconds = remind_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._up: bool | None = None
        self._last_success: datetime | None = None
        self._down_since: datetime | None = None
        self._error: str | None = None
        self._reminded: datetime | None = None

    @property
    def down(self) -> bool:
        return self._up is False

    def ok(self) -> None:
        with self._lock:
            now = self._clock()
            if self._up is False:
                log.warning("%s is reachable again (down %.0f s since %s)", self.name,
                            (now - self._down_since).total_seconds(), f"{self._down_since:%Y-%m-%d %H:%M:%S} UTC")
            self._up, self._last_success, self._down_since, self._error = True, now, None, None

    def failed(self, error: object) -> None:
        with self._lock:
            now = self._clock()
            text = str(error)
            if self._up is not False:
                self._down_since, self._reminded = now, now
                log.warning("%s cannot be reached: %s%s", self.name, text,
                            f"; {self.consequence}" if self.consequence else "")
            elif (now - self._reminded).total_seconds() >= self.remind_seconds:
                self._reminded = now
                log.warning("%s still unreachable since %s: %s", self.name, f"{self._down_since:%Y-%m-%d %H:%M:%S} UTC",
                            text)
            else:
                log.debug("%s still unreachable: %s", self.name, text)
            self._up, self._error = False, text

    def health(self) -> ServiceHealth:
        with self._lock:
            return ServiceHealth(self.name, self._up, self._last_success, self._down_since, self._error)
