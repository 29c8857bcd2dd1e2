"""A local stand-in for Upbit's WebSocket quotation API on 127.0.0.1 (`websockets` on its own thread).

Takes Upbit's subscription message (`[{"ticket"}, {"type": "trade", "codes": [...]}, {"format"}]`),
answers a text "PING" with `{"status":"UP"}`, and sends trade frames as Upbit does: binary frames of
JSON with the DEFAULT field names. `/websocket/v1/private` checks the Authorization header's JWT
against the book's keys (as REST does) and sends `myOrder`/`myAsset` frames (`account_event`).
Faults: `drop()` cuts every connection, `silent = True` answers
nothing (a stalled line), `refuse = True` turns new connections away, `send_raw(b"...")` sends any
frame (malformed JSON, an error object).
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from datetime import datetime, timezone

import websockets


class FakeUpbitStream:
    def __init__(self, book=None):
        self.book = book  # tests.fakes.upbit_exchange.FakeExchangeBook: the keys the private stream accepts
        self.private_clients: set = set()
        self.auth_failures = 0
        self.subscriptions: list[list] = []  # every request message received, parsed
        self.connections = 0
        self.silent = False
        self.refuse = False
        self._clients: dict = {}  # socket -> subscribed codes
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._sequence = 0
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/websocket/v1"

    @property
    def private_url(self) -> str:
        return self.url + "/private"

    def __enter__(self) -> "FakeUpbitStream":
        threading.Thread(target=self._serve, daemon=True).start()
        assert self._ready.wait(10), "the fake stream did not start"
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start():
            quiet = logging.getLogger("tests.fake_upbit_stream")
            quiet.setLevel(logging.WARNING)  # the bot's own logs are what tests read
            self._server = await websockets.serve(self._client, "127.0.0.1", 0, logger=quiet)
            self.port = self._server.sockets[0].getsockname()[1]

        self._loop.run_until_complete(start())
        self._ready.set()
        self._loop.run_forever()

    async def _close(self) -> None:
        self._server.close()
        for socket in list(self._clients):
            await socket.close()

    async def _client(self, socket) -> None:
        if self.refuse:
            await socket.close(1013, "try again later")
            return
        if socket.request.path.rstrip("/").endswith("/private"):
            await self._private(socket)
            return
        self.connections += 1
        self._clients[socket] = set()
        try:
            async for message in socket:
                if self.silent:
                    continue
                if message == "PING":
                    await socket.send(b'{"status":"UP"}')
                    continue
                try:
                    request = json.loads(message)
                    codes = next(item["codes"] for item in request if isinstance(item, dict) and item.get("type"))
                except (ValueError, StopIteration, KeyError, TypeError):
                    await socket.send(b'{"error":{"name":"WRONG_FORMAT","message":"wrong format"}}')
                    continue
                self.subscriptions.append(request)
                self._clients[socket] = set(codes)
        except websockets.ConnectionClosed:
            pass
        finally:
            self._clients.pop(socket, None)

    async def _private(self, socket) -> None:
        import jwt

        header = socket.request.headers.get("Authorization", "")
        try:
            claims = jwt.decode(header.removeprefix("Bearer "), self.book.secret_key, algorithms=["HS256"])
            assert claims["access_key"] == self.book.access_key
        except Exception:
            self.auth_failures += 1
            await socket.send(b'{"error":{"name":"INVALID_AUTH","message":"invalid auth"}}')
            await socket.close(1008, "unauthorized")
            return
        self.private_clients.add(socket)
        try:
            async for message in socket:
                if message == "PING" and not self.silent:
                    await socket.send(b'{"status":"UP"}')
                elif message != "PING":
                    self.subscriptions.append(json.loads(message))
        except websockets.ConnectionClosed:
            pass
        finally:
            self.private_clients.discard(socket)

    def account_event(self, kind: str, **fields) -> None:
        """A myOrder or myAsset frame to every authenticated connection."""
        frame = json.dumps({"type": kind, "timestamp": int(time.time() * 1000), "stream_type": "REALTIME",
                            **fields}).encode()

        async def send():
            for socket in list(self.private_clients):
                await socket.send(frame)
        asyncio.run_coroutine_threadsafe(send(), self._loop).result(10)

    # what a test does
    def subscribed(self) -> set[str]:
        """The codes of the latest subscription of any live connection."""
        return set().union(*self._clients.values()) if self._clients else set()

    def wait_subscribed(self, codes: set[str], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.subscribed() != codes:
            assert time.monotonic() < deadline, f"subscribed to {self.subscribed()}, not {codes}"
            time.sleep(0.02)

    def trade(self, market: str, price: float, at: datetime | None = None) -> None:
        """One trade frame to every connection subscribed to `market`."""
        self._sequence += 1
        stamp = int((at or datetime.now(timezone.utc)).timestamp() * 1000)
        frame = {"type": "trade", "code": market, "trade_price": price, "trade_volume": 0.01, "ask_bid": "ASK",
                 "prev_closing_price": price, "change": "EVEN", "change_price": 0.0,
                 "trade_date": time.strftime("%Y-%m-%d", time.gmtime(stamp / 1000)),
                 "trade_time": time.strftime("%H:%M:%S", time.gmtime(stamp / 1000)), "trade_timestamp": stamp,
                 "timestamp": stamp + 3, "sequential_id": stamp * 1000 + self._sequence, "stream_type": "REALTIME"}
        self._broadcast(json.dumps(frame).encode(), market)

    def send_raw(self, frame: bytes | str) -> None:
        self._broadcast(frame, None)

    def drop(self) -> None:
        """Every connection cut as a network failure cuts it: no closing handshake."""
        def cut():
            for socket in list(self._clients):
                socket.transport.abort()
        self._loop.call_soon_threadsafe(cut)

    def _broadcast(self, frame, market: str | None) -> None:
        async def send():
            for socket, codes in list(self._clients.items()):
                if market is None or market in codes:
                    try:
                        await socket.send(frame)
                    except websockets.ConnectionClosed:
                        pass
        asyncio.run_coroutine_threadsafe(send(), self._loop).result(10)
