"""A local stand-in for Upbit's quotation API on 127.0.0.1, speaking its real HTTP shapes.

Serves `/v1/candles/minutes/<unit>` and `/v1/candles/days` from an in-memory series (newest first,
`to` exclusive, at most 200, the forming candle included like the real API) and `/v1/ticker`.
Faults are queued per request: `server.faults.append(429)` answers the next candle request with 429.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pandas as pd


class FakeUpbit:
    def __init__(self, series: dict[str, pd.DataFrame], interval_seconds: int = 3600, now: pd.Timestamp | None = None,
                 exchange=None):
        self.series = series
        self.exchange = exchange  # tests.fakes.upbit_exchange.FakeExchangeBook: accounts and orders
        self.interval_seconds = interval_seconds
        self.now = now
        self.faults: list[int] = []
        self.requests: list[str] = []
        self.fail_after: int | None = None  # answer 500 to every candle request after this many
        self.listed_extra = ["BTC-ETH", "USDT-BTC"]  # /v1/market/all lists these beside the series
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "FakeUpbit":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def candles(self, market: str, to: str | None, count: int) -> list[dict]:
        frame = self.series[market]
        if self.now is not None:  # the forming candle is the one that opened at or before now
            frame = frame[frame.index <= self.now]
        if to:
            frame = frame[frame.index < pd.Timestamp(to)]
        frame = frame.iloc[-count:][::-1]
        return [
            {
                "market": market,
                "candle_date_time_utc": ts.strftime("%Y-%m-%dT%H:%M:%S"),
                "candle_date_time_kst": (ts + pd.Timedelta(hours=9)).strftime("%Y-%m-%dT%H:%M:%S"),
                "opening_price": row.open,
                "high_price": row.high,
                "low_price": row.low,
                "trade_price": row.close,
                "timestamp": int(ts.timestamp() * 1000),
                "candle_acc_trade_price": row.value,
                "candle_acc_trade_volume": row.volume,
                "unit": self.interval_seconds // 60,
            }
            for ts, row in frame.iterrows()
        ]

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _send(self, status: int, body, headers: dict | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _exchange(self, method: str) -> None:
                from tests.fakes.upbit_exchange import Hang

                url = urlparse(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) if method == "POST" else b""
                try:
                    status, answer, headers = fake.exchange.handle(method, url.path, url.query, body, self.headers)
                except Hang as hang:
                    time.sleep(hang.args[0])
                    self.close_connection = True
                    return
                if isinstance(answer, bytes):  # a malformed answer, as is
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                    return
                self._send(status, answer, headers)

            def do_POST(self) -> None:
                self._exchange("POST")

            def do_DELETE(self) -> None:
                self._exchange("DELETE")

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if fake.exchange is not None and url.path in ("/v1/accounts", "/v1/order"):
                    return self._exchange("GET")
                fake.requests.append(self.path)
                if url.path.startswith("/v1/candles/"):
                    candle_requests = sum(1 for r in fake.requests if r.startswith("/v1/candles/"))
                    if fake.fail_after is not None and candle_requests > fake.fail_after:
                        return self._send(500, {"error": {"name": "server_error", "message": "injected"}})
                    if fake.faults:
                        status = fake.faults.pop(0)
                        return self._send(status, {"error": {"name": "too_many_requests" if status == 429 else "server_error",
                                                             "message": "injected"}}, {"Retry-After": "0"})
                    market = query.get("market", "")
                    if market not in fake.series:
                        return self._send(404, {"error": {"name": 404, "message": "Code not found"}})  # as Upbit
                    count = min(int(query.get("count", 200)), 200)
                    rows = fake.candles(market, query.get("to"), count)
                    return self._send(200, rows, {"Remaining-Req": "group=candles; min=599; sec=9"})
                if url.path == "/v1/market/all":  # every series, and markets of other quotes as Upbit lists them
                    listed = sorted(fake.series) + fake.listed_extra
                    return self._send(200, [{"market": m, "korean_name": m, "english_name": m} for m in listed])
                if url.path == "/v1/ticker":
                    markets = query.get("markets", "").split(",")
                    rows = [{"market": m, "trade_price": float(fake.series[m]["close"].iloc[-1])} for m in markets if m in fake.series]
                    return self._send(200, rows)
                self._send(404, {"error": {"name": 404, "message": "Code not found"}})

        return Handler
