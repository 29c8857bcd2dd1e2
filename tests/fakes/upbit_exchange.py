"""A local stand-in for Upbit's exchange API (accounts, orders) with its own books and injectable faults.

It checks each request's JWT the way Upbit does (HS256 with the secret key, the access key, a nonce
never seen before, the SHA-512 `query_hash` of the exact query string or JSON body sent), keeps KRW
and coin balances, fills market orders at the price `price_of(market)` gives with Upbit's 0.05% fee,
and rejects what Upbit rejects (under 5,000 KRW, insufficient funds, a reused identifier).

Faults are queued per route, e.g. `book.fault("POST /v1/orders", "timeout_after")`:
  timeout_before  hang past the client's timeout, then drop the connection; nothing executed
  timeout_after   execute, then hang past the client's timeout and drop the connection
  drop_after      execute, then close the connection without an answer
  500 / 500_after answer 500 without / after executing
  429             answer 429 (never executed, as on Upbit)
  malformed       execute (orders), then answer 200 with a body that is not JSON
  partial         a market order that executes only 60% and ends in state cancel
  prevented       a market order stopped by self-trade prevention after 30% (state prevented)
  prevented_none  the same with nothing executed
  429_plain       429 with a plain-text body and no Retry-After header, as Upbit's edge sends it
  418             block every request for `block_seconds` (stated in the answer's text); each request
                  while blocked answers 418 again and lengthens the block, as on Upbit
  no_trades       (GET /v1/order) the order's trades list comes back empty, executed_funds still there
  no_funds        (GET /v1/order) neither trades nor executed_funds: only the volume is known yet

Like the real API it is rude by default: null fields are omitted, counts are strings
(`trades_count: "0"`), error names may be numbers (`{"name": 404, ...}`), and with
`answers_identifier = False` a look-up omits `identifier` (Upbit returns it only for some orders).
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid as uuidlib
from datetime import datetime, timezone
from typing import Callable

import jwt

from core.upbit.auth import query_string

FEE = 0.0005
LIVE_PRICE = 100_000_000.0  # what the `upbit` test fixture fills every market order at
LIVE_START_KRW = 1_000_000


class Hang(Exception):
    """Sleep, then close the connection without an answer (optionally after executing)."""


class FakeExchangeBook:
    def __init__(self, price_of: Callable[[str], float], *, krw: float = 1_000_000, access_key: str = "test-access",
                 secret_key: str = "test-secret-key-0123456789abcdefghijklmn", hang_seconds: float = 1.0,
                 order_latency: float = 0.0):
        self.price_of = price_of
        self.access_key = access_key
        self.secret_key = secret_key
        self.hang_seconds = hang_seconds
        self.order_latency = order_latency  # seconds an order takes to arrive at the matching engine
        self.krw = float(krw)
        self.coins: dict[str, list[float]] = {}  # currency -> [balance, avg_buy_price]
        self.orders: dict[str, dict] = {}  # identifier -> order
        self.faults: dict[str, list[str]] = {}
        self.rejected_duplicates = 0  # orders refused for reusing an identifier
        self.answers_identifier = True
        self.block_seconds = 2.0
        self.blocked_until = 0.0  # time.monotonic() before which every request answers 418
        self.requests_while_blocked = 0
        self.auth_failures: list[str] = []
        self.requests: list[str] = []
        self._nonces: set[str] = set()
        self.lock = threading.RLock()

    def fault(self, route: str, *names: str) -> None:
        with self.lock:
            self.faults.setdefault(route, []).extend(names)

    def holdings(self) -> dict[str, float]:
        """Market -> coins held (balance), for comparing with the bot's positions."""
        with self.lock:
            return {f"KRW-{c}": b for c, (b, _) in self.coins.items() if b > 0}

    # -- the HTTP side ---------------------------------------------------------------------------
    def handle(self, method: str, path: str, raw_query: str, body: bytes, headers) -> tuple[int, object, dict]:
        route = f"{method} {path}"
        with self.lock:
            self.requests.append(route)
            fault = self.faults.get(route, []).pop(0) if self.faults.get(route) else None
        params = json.loads(body or b"{}") if method == "POST" else _parse(raw_query)
        signed = query_string(params) if method == "POST" else raw_query
        problem = self._check_jwt(headers.get("Authorization", ""), signed)
        if problem:
            self.auth_failures.append(problem)
            return 401, {"error": {"name": problem, "message": "JWT check failed"}}, {}
        with self.lock:
            if fault == "418":
                self.blocked_until = time.monotonic() + self.block_seconds
            if time.monotonic() < self.blocked_until:
                if fault != "418":
                    self.requests_while_blocked += 1
                    self.blocked_until += self.block_seconds  # persisting lengthens the block
                left = self.blocked_until - time.monotonic()
                return 418, {"error": {"name": 418, "message": f"IP blocked for {left:.0f} seconds "
                                                                f"(too many requests)"}}, {}
        if fault == "timeout_before":
            raise Hang(self.hang_seconds)
        if fault == "429_plain":
            return 429, b"Too many API requests.", {}
        if fault == "429":
            return 429, {"error": {"name": "too_many_requests", "message": "injected"}}, {"Retry-After": "0"}
        if fault == "500":
            return 500, {"error": {"name": "server_error", "message": "injected"}}, {}
        if route == "GET /v1/accounts":
            status, answer = 200, self._accounts()
        elif route == "POST /v1/orders":
            time.sleep(self.order_latency)
            status, answer = self._place(params, share={"partial": 0.6, "prevented": 0.3, "prevented_none": 0.0}
                                         .get(fault, 1.0), prevented=fault in ("prevented", "prevented_none"))
        elif route == "GET /v1/order":
            status, answer = self._lookup(params)
            if status == 200:
                answer = self._answered(answer, fault)
        elif route == "DELETE /v1/order":
            status, answer = self._lookup(params)
        else:
            return 404, {"error": {"name": 404, "message": "Code not found"}}, {}
        if fault in ("timeout_after", "drop_after"):
            raise Hang(self.hang_seconds if fault == "timeout_after" else 0.0)
        if fault == "500_after":
            return 500, {"error": {"name": "server_error", "message": "injected after executing"}}, {}
        if fault == "malformed":
            return 200, b"{\"uuid\": \"broken", {}
        group = "order" if route == "POST /v1/orders" else "default"
        return status, answer, {"Remaining-Req": f"group={group}; min=900; sec=7"}

    def _check_jwt(self, header: str, signed: str) -> str | None:
        if not header.startswith("Bearer "):
            return "jwt_verification"
        try:
            payload = jwt.decode(header[7:], self.secret_key, algorithms=["HS256"])
        except jwt.PyJWTError:
            return "jwt_verification"
        if payload.get("access_key") != self.access_key:
            return "invalid_access_key"
        nonce = payload.get("nonce")
        with self.lock:
            if not nonce or nonce in self._nonces:
                return "nonce_used"
            self._nonces.add(nonce)
        if signed:
            if payload.get("query_hash_alg") != "SHA512" or \
                    payload.get("query_hash") != hashlib.sha512(signed.encode()).hexdigest():
                return "invalid_query_payload"
        elif "query_hash" in payload:
            return "invalid_query_payload"
        return None

    # -- the books -------------------------------------------------------------------------------
    def _accounts(self) -> list[dict]:
        with self.lock:
            rows = [{"currency": "KRW", "balance": f"{self.krw:.4f}", "locked": "0", "avg_buy_price": "0",
                     "avg_buy_price_modified": False, "unit_currency": "KRW"}]
            for currency, (balance, avg) in sorted(self.coins.items()):
                if balance > 0:
                    rows.append({"currency": currency, "balance": f"{balance:.8f}", "locked": "0",
                                 "avg_buy_price": f"{avg:.4f}", "avg_buy_price_modified": False,
                                 "unit_currency": "KRW"})
            return rows

    def _answered(self, order: dict, fault: str | None) -> dict:
        """A look-up's answer as Upbit shapes it: nulls omitted, maybe no identifier, maybe no trades yet."""
        out = {k: v for k, v in order.items() if v is not None}
        if not self.answers_identifier:
            out.pop("identifier", None)
        if fault in ("no_trades", "no_funds"):
            out["trades"], out["trades_count"] = [], "0"
        if fault == "no_funds":
            out.pop("executed_funds", None)
        return out

    def _place(self, params: dict, share: float = 1.0, prevented: bool = False) -> tuple[int, dict]:
        market, side, ord_type = params.get("market", ""), params.get("side"), params.get("ord_type")
        identifier = params.get("identifier")
        currency = market.split("-")[-1]
        with self.lock:
            if identifier in self.orders:
                self.rejected_duplicates += 1
                return 400, {"error": {"name": "create_order_error", "message": "identifier already used"}}
            price = float(self.price_of(market))
            partial = share < 1.0
            if side == "bid" and ord_type == "price":
                amount = float(params["price"])
                if amount < 5000:
                    return 400, {"error": {"name": "under_min_total_bid", "message": "minimum 5000 KRW"}}
                if amount * (1 + FEE) > self.krw + 1e-9:
                    return 400, {"error": {"name": "insufficient_funds_bid", "message": "not enough KRW"}}
                funds = amount * share
                volume = round(funds / price, 8)  # Upbit's volumes have 8 decimals
                self.krw -= funds * (1 + FEE)
                held = self.coins.setdefault(currency, [0.0, 0.0])
                if volume > 0:
                    held[1] = (held[0] * held[1] + funds) / (held[0] + volume)
                    held[0] += volume
                state = "cancel"  # Upbit's filled market buys usually end so: judge by executed volume
                requested = {"price": params["price"], "volume": None}
            elif side == "ask" and ord_type == "market":
                requested_volume = float(params["volume"])
                held = self.coins.get(currency, [0.0, 0.0])
                if requested_volume > held[0] + 1e-12:
                    return 400, {"error": {"name": "insufficient_funds_ask", "message": "not enough coins"}}
                if requested_volume * price < 5000:
                    return 400, {"error": {"name": "under_min_total_ask", "message": "minimum 5000 KRW"}}
                volume = round(requested_volume * share, 8)
                funds = volume * price
                held[0] -= volume
                self.krw += funds * (1 - FEE)
                state = "cancel" if partial else "done"
                requested = {"price": None, "volume": params["volume"]}
            else:
                return 400, {"error": {"name": "invalid_parameter", "message": "unsupported order"}}
            if prevented:
                state = "prevented"
            now = datetime.now(timezone.utc).isoformat()
            order = {"uuid": str(uuidlib.uuid4()), "side": side, "ord_type": ord_type, **requested,
                     "state": state, "market": market, "created_at": now, "identifier": identifier,
                     "executed_volume": f"{volume:.8f}", "paid_fee": f"{funds * FEE:.8f}",
                     "executed_funds": f"{funds:.8f}", "trades_count": "1" if volume > 0 else "0",
                     "remaining_volume": "0", "trades": [{"market": market, "uuid": str(uuidlib.uuid4()),
                                                          "price": f"{price}", "volume": f"{volume:.8f}",
                                                          "funds": f"{funds:.8f}", "side": side, "created_at": now}]
                     if volume > 0 else []}
            self.orders[identifier] = order
            answer = {k: v for k, v in order.items() if k != "trades" and v is not None}
            return 201, {**answer, "state": "wait", "executed_volume": "0", "executed_funds": "0", "trades_count": "0"}

    def _lookup(self, params: dict) -> tuple[int, dict]:
        with self.lock:
            order = self.orders.get(params.get("identifier")) or next(
                (o for o in self.orders.values() if o["uuid"] == params.get("uuid")), None)
        if order is None:
            return 404, {"error": {"name": "order_not_found", "message": "order not found"}}
        return 200, order


def _parse(raw: str) -> dict:
    out = {}
    for pair in filter(None, raw.split("&")):
        key, _, value = pair.partition("=")
        out[key] = value
    return out
