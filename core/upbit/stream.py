"""Upbit's WebSocket streams: the public trade stream (every trade price of the subscribed markets as
it happens, for the price-shock guard) and, in live mode, the private one (`myOrder`, `myAsset`: the
account's orders and balances changing, so reconciliation runs at once instead of at the next cycle).

One connection to `UPBIT_WS_URL` (wss://api.upbit.com/websocket/v1), one subscription request
`[{"ticket": ...}, {"type": "trade", "codes": [...], "is_only_realtime": true}, {"format": "DEFAULT"}]`,
sent again whenever the markets change. Upbit answers in binary frames of JSON; a text "PING" every
`ping_seconds` is answered `{"status": "UP"}`, so a quiet market is not mistaken for a dead line.
No frame for `stale_seconds` means the stream is down: the connection is dropped and made again
with jittered back-off, and the caller (core.runtime) polls REST prices meanwhile. An error frame
(`{"error": {"name": ..., "message": ...}}`) or a malformed one is logged, never raised. The
`websockets` library does the framing. The private stream (`.../websocket/v1/private`) is
authenticated by the same signed JWT as REST, in the Authorization header of each new connection;
it carries no prices, so it is judged alive by the same PING and "UP".
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Awaitable, Callable, Iterable

from core.redaction import redact

log = logging.getLogger(__name__)
# the websockets library logs each handshake's headers (the private stream's signed JWT among them) and
# every frame (the account's orders) at DEBUG: its logger for our connections never says that much
_WIRE = logging.getLogger(__name__ + ".wire")
_WIRE.setLevel(logging.INFO)

DEFAULT_URL = "wss://api.upbit.com/websocket/v1"
BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class Trade:
    market: str
    price_krw: float
    at: datetime  # the trade's time (Upbit's trade_timestamp)


@dataclass(frozen=True)
class AccountEvent:
    """An order of the account changed (myOrder) or its balances did (myAsset)."""

    kind: str  # myOrder | myAsset
    market: str | None = None
    identifier: str | None = None
    state: str | None = None


def private_subscription(ticket: str | None = None) -> str:
    return json.dumps([{"ticket": ticket or str(uuid.uuid4())}, {"type": "myOrder"}, {"type": "myAsset"},
                       {"format": "DEFAULT"}])


def subscription(markets: Iterable[str], ticket: str | None = None) -> str:
    """The request Upbit expects for the trades of `markets` (upper case, real-time only)."""
    codes = sorted({m.upper() for m in markets})
    return json.dumps([{"ticket": ticket or str(uuid.uuid4())},
                       {"type": "trade", "codes": codes, "is_only_realtime": True}, {"format": "DEFAULT"}])


def parse_frame(frame: str | bytes) -> Trade | AccountEvent | dict | None:
    """A trade, a status or error dict, or None for a frame that is not JSON of a known shape. Both the
    DEFAULT field names and the SIMPLE ones (ty, cd, tp, ttms) are read."""
    try:
        data = json.loads(frame.decode("utf-8") if isinstance(frame, bytes) else frame)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    if "error" in data or "status" in data:
        return data
    kind = data.get("type", data.get("ty"))
    if kind in ("myOrder", "myAsset"):
        market = data.get("code", data.get("cd"))
        return AccountEvent(kind, market if isinstance(market, str) else None,
                            data.get("identifier", data.get("id")) if kind == "myOrder" else None,
                            data.get("state", data.get("s")) if kind == "myOrder" else None)
    if kind != "trade":
        return None
    market, price = data.get("code", data.get("cd")), data.get("trade_price", data.get("tp"))
    stamp = data.get("trade_timestamp", data.get("ttms", data.get("timestamp", data.get("tms"))))
    try:
        price, stamp = float(price), int(stamp)
    except (TypeError, ValueError):
        return None
    if not isinstance(market, str) or not price > 0:
        return None
    return Trade(market, price, datetime.fromtimestamp(stamp / 1000, timezone.utc))


class TradeStream:
    """Keeps one subscription alive and hands each trade (or account event) to `on_trade`; `up` says
    whether it is live. `headers` makes the headers of each new connection (the private stream's JWT);
    `request` the subscription (default: the trades of `markets`)."""

    def __init__(self, url: str, on_trade: Callable[[Trade], Awaitable[None] | None], *,
                 on_state: Callable[[bool, str], None] = lambda up, why: None,
                 stale_seconds: float = 30.0, ping_seconds: float = 10.0,
                 backoff: tuple[float, ...] = BACKOFF_SECONDS, rng: random.Random | None = None,
                 headers: Callable[[], dict] | None = None, request: Callable[[], str] | None = None):
        self.url = url
        self.on_trade = on_trade
        self.headers = headers
        self.request = request
        self.on_state = on_state  # told once when the stream goes down and once when it is back
        self.stale_seconds = stale_seconds
        self.ping_seconds = ping_seconds
        self.backoff = backoff
        self.rng = rng or random.Random()
        self.markets: tuple[str, ...] = ()
        self.up: bool | None = None  # None: not connected yet
        self.subscriptions = 0  # requests sent (each connection, each change of markets)
        self._socket = None
        self._stopped = asyncio.Event()

    async def set_markets(self, markets: Iterable[str]) -> None:
        """Subscribe to these markets from now on (sent at once on a live connection)."""
        wanted = tuple(sorted({m.upper() for m in markets}))
        if wanted == self.markets:
            return
        self.markets = wanted
        socket = self._socket
        if socket is not None:
            try:
                await self._subscribe(socket)
            except Exception as exc:  # the connection is going; the next one subscribes to these
                log.debug("could not re-subscribe on the old connection: %s", exc)

    def stop(self) -> None:
        self._stopped.set()

    async def run(self) -> None:
        """Connect, subscribe and read until `stop()`; every failure is a reconnect after back-off."""
        import websockets

        attempt = 0
        while not self._stopped.is_set():
            if not self.markets and self.request is None:
                await self._wait(1.0)
                continue
            try:
                extra = self.headers() if self.headers is not None else None
                async with websockets.connect(self.url, ping_interval=20, ping_timeout=20, open_timeout=10,
                                              close_timeout=2, max_size=2 ** 20,
                                              additional_headers=extra, logger=_WIRE) as socket:
                    self._socket = socket
                    await self._subscribe(socket)
                    attempt = await self._read(socket, attempt)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._down(redact(f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__))
            finally:
                self._socket = None
            if self._stopped.is_set():
                break
            wait = self.backoff[min(attempt, len(self.backoff) - 1)] * (0.5 + self.rng.random() / 2)
            attempt += 1
            await self._wait(wait)
        self.up = False

    async def _subscribe(self, socket) -> None:
        await socket.send(self.request() if self.request is not None else subscription(self.markets))
        self.subscriptions += 1

    async def _read(self, socket, attempt: int) -> int:
        pinger = asyncio.create_task(self._ping(socket))
        try:
            while not self._stopped.is_set():
                try:
                    frame = await asyncio.wait_for(socket.recv(), timeout=self.stale_seconds)
                except asyncio.TimeoutError:
                    self._down(f"no frame for {self.stale_seconds:g} s")
                    return attempt
                parsed = parse_frame(frame)
                if parsed is None:
                    log.debug("ignored a frame Upbit's trade stream should not send: %r", frame[:200])
                    continue
                if isinstance(parsed, dict):
                    if "error" in parsed:  # not a sign of life: Upbit closes after it (a refused key, a bad request)
                        error = parsed.get("error") or {}
                        log.warning("Upbit's stream %s answered an error: %s %s", self.url.rsplit("/", 1)[-1],
                                    error.get("name") if isinstance(error, dict) else error,
                                    error.get("message", "") if isinstance(error, dict) else "")
                    else:
                        self._live()
                        attempt = 0
                    continue
                self._live()
                attempt = 0
                outcome = self.on_trade(parsed)
                if asyncio.iscoroutine(outcome):
                    await outcome
            return attempt
        finally:
            pinger.cancel()

    async def _ping(self, socket) -> None:
        """At once (Upbit's "UP" says the new line works before any trade), then every ping_seconds."""
        while True:
            await socket.send("PING")
            await asyncio.sleep(self.ping_seconds)

    def _live(self) -> None:
        if not self.up:
            self.up = True
            self.on_state(True, "")

    def _down(self, why: str) -> None:
        if self.up is not False:
            self.up = False
            self.on_state(False, why)
        else:
            log.debug("Upbit's trade stream still down: %s", why)

    async def _wait(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopped.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass
