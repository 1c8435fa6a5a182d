"""Fake Etherscan API V2 and Whale Alert servers on 127.0.0.1, speaking their wire formats.

    with FakeEtherscan(api_key="K", now_s=...) as etherscan:
        etherscan.add_transfer(time_s, sender, receiver, "180000000", decimals=6)
        etherscan.fail(status=429)                       # the next call gets an HTTP 429
        etherscan.body_error("Max calls per sec rate limit reached (3/sec)")   # the next: HTTP 200, status "0"

Etherscan: ``/v2/api`` (``module=account&action=tokentx``, ``module=block&action=getblocknobytime``),
every error an HTTP 200 with ``status: "0"``: bad key, unsupported chain, window too large (page x
offset > ``max_window``), calls above ``per_second`` a second, "No transactions found". Blocks are
``(time - GENESIS) // 12``. Whale Alert: ``/v1/transactions`` with ``api_key``, ``min_value`` (USD),
``start``, ``currency``, ``limit`` and ``cursor``; ``transactions`` absent when ``count`` is 0; 401 for
a bad key, 429 over ``per_minute``. Both serve only what exists at their clock (``now_s``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["GENESIS", "FakeEtherscan", "FakeWhaleAlert", "Logged"]

GENESIS = 1_438_269_973  # Ethereum's first block (2015-07-30)


@dataclass(frozen=True, slots=True)
class Logged:
    path: str
    query: dict[str, str]
    time: float


@dataclass
class _Canned:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class _Server:
    """Threaded HTTP server: routes are ``path -> handler(query) -> (status, body, headers)``; canned
    answers queued with :meth:`fail` go first."""

    def __init__(self) -> None:
        self.requests: list[Logged] = []
        self.canned: list[_Canned] = []
        self._lock = threading.Lock()
        self.routes: dict[str, Callable[[dict[str, str]], tuple[int, Any, dict[str, str]]]] = {}

    def __enter__(self) -> Any:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query, keep_blank_values=True))
                with owner._lock:
                    owner.requests.append(Logged(parts.path, query, time.monotonic()))
                    canned = owner.canned.pop(0) if owner.canned else None
                if canned is not None:
                    time.sleep(canned.delay)
                    status, body, headers = canned.status, canned.body, canned.headers
                elif parts.path in owner.routes:
                    status, body, headers = owner.routes[parts.path](query)
                else:
                    status, body, headers = 404, {"error": "not found"}, {}
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def fail(
        self, status: int, body: Any = b"", headers: dict[str, str] | None = None, delay: float = 0.0
    ) -> None:
        with self._lock:
            self.canned.append(_Canned(status, body, headers or {}, delay))

    def calls(self, **match: str) -> list[Logged]:
        with self._lock:
            return [r for r in self.requests if all(r.query.get(k) == v for k, v in match.items())]


class FakeEtherscan(_Server):
    def __init__(
        self, *, api_key: str, now_s: int, max_window: int = 10_000, per_second: int = 1000, chains=(1, 56)
    ):
        super().__init__()
        self.api_key = api_key
        self.now_s = now_s
        self.max_window = max_window
        self.per_second = per_second
        self.chains = set(chains)
        self.transfers: dict[int, list[dict[str, Any]]] = {c: [] for c in self.chains}
        self._recent: list[float] = []
        self.routes["/v2/api"] = self._api

    @staticmethod
    def block_at(time_s: int) -> int:
        return (time_s - GENESIS) // 12

    def add_transfer(
        self,
        time_s: int,
        sender: str,
        receiver: str,
        value: str,
        *,
        token: str = "0xdac17f958d2ee523a2206206994597c13d831ec7",
        decimals: int = 6,
        chain: int = 1,
        tx: str | None = None,
    ) -> None:
        n = len(self.transfers[chain])
        self.transfers[chain].append(
            {
                "blockNumber": str(self.block_at(time_s)),
                "timeStamp": str(time_s),
                "hash": tx or f"0x{n:064x}",
                "nonce": str(n),
                "blockHash": f"0x{self.block_at(time_s):064x}",
                "from": sender,
                "contractAddress": token,
                "to": receiver,
                "value": value,
                "tokenName": "Tether USD",
                "tokenSymbol": "USDT",
                "tokenDecimal": str(decimals),
                "transactionIndex": "1",
                "gas": "70000",
                "gasPrice": "20000000000",
                "gasUsed": "41309",
                "cumulativeGasUsed": "100000",
                "input": "deprecated",
                "confirmations": "12",
            }
        )

    def add_raw(self, row: dict[str, Any], chain: int = 1) -> None:
        self.transfers[chain].append(row)

    def body_error(self, result: str, message: str = "NOTOK") -> None:
        self.fail(200, {"status": "0", "message": message, "result": result})

    def _error(self, result: str, message: str = "NOTOK") -> tuple[int, Any, dict[str, str]]:
        return 200, {"status": "0", "message": message, "result": result}, {}

    def _api(self, q: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        now = time.monotonic()
        with self._lock:
            self._recent = [t for t in self._recent if now - t < 1.0]
            self._recent.append(now)
            over = len(self._recent) > self.per_second
        if q.get("apikey") != self.api_key:
            return self._error("Invalid API Key (#err2)|ETH1")
        if over:
            return self._error("Max calls per sec rate limit reached (3/sec)")
        try:
            chain = int(q.get("chainid", ""))
        except ValueError:
            chain = -1
        if chain not in self.chains:
            return self._error("Missing or unsupported chainid parameter (required for v2 api)")
        if q.get("module") == "block" and q.get("action") == "getblocknobytime":
            return (
                200,
                {"status": "1", "message": "OK", "result": str(self.block_at(int(q["timestamp"])))},
                {},
            )
        if q.get("module") != "account" or q.get("action") != "tokentx":
            return self._error("Error! Missing Or invalid Module name")
        page, offset = int(q.get("page", "1")), int(q.get("offset", "10000"))
        if page * offset > self.max_window:
            return self._error(
                f"Result window is too large, PageNo x Offset size must be less than or equal to {self.max_window}"
            )
        start, end = int(q.get("startblock", "0")), int(q.get("endblock", "99999999"))
        address, contract = q.get("address", "").lower(), q.get("contractaddress", "").lower()
        rows = []
        for row in self.transfers[chain]:
            try:
                block, stamp = int(row["blockNumber"]), int(row["timeStamp"])
            except (KeyError, ValueError):
                block, stamp = start, 0  # malformed rows are served where they sit
            if stamp > self.now_s or not start <= block <= end:
                continue
            if contract and str(row.get("contractAddress", "")).lower() != contract:
                continue
            if address and address not in (str(row.get("from", "")).lower(), str(row.get("to", "")).lower()):
                continue
            rows.append(row)
        rows.sort(key=lambda r: int(r["blockNumber"]) if str(r.get("blockNumber", "")).isdigit() else 0)
        rows = rows[(page - 1) * offset : page * offset]
        if not rows:
            return 200, {"status": "0", "message": "No transactions found", "result": []}, {}
        return 200, {"status": "1", "message": "OK", "result": rows}, {}


class FakeWhaleAlert(_Server):
    def __init__(self, *, api_key: str, now_s: int, per_minute: int = 1000):
        super().__init__()
        self.api_key = api_key
        self.now_s = now_s
        self.per_minute = per_minute
        self.transactions: list[dict[str, Any]] = []
        self._recent: list[float] = []
        self.routes["/v1/transactions"] = self._transactions

    def add(
        self,
        time_s: int,
        amount: float,
        *,
        symbol: str = "usdt",
        from_type: str = "unknown",
        to_type: str = "unknown",
        usd: float | None = None,
    ) -> None:
        n = len(self.transactions)
        owner = lambda kind: "binance" if kind == "exchange" else ""  # noqa: E731
        self.transactions.append(
            {
                "blockchain": "ethereum",
                "symbol": symbol,
                "id": str(1_000_000 + n),
                "transaction_type": "transfer",
                "hash": f"{n:064x}",
                "from": {"address": f"0x{n:040x}", "owner": owner(from_type), "owner_type": from_type},
                "to": {"address": f"0x{n + 1:040x}", "owner": owner(to_type), "owner_type": to_type},
                "timestamp": time_s,
                "amount": amount,
                "amount_usd": usd if usd is not None else amount,
                "transaction_count": 1,
            }
        )

    def _transactions(self, q: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        now = time.monotonic()
        with self._lock:
            self._recent = [t for t in self._recent if now - t < 60.0]
            self._recent.append(now)
            over = len(self._recent) > self.per_minute
        if q.get("api_key") != self.api_key:
            return 401, {"result": "error", "message": "invalid api_key"}, {}
        if over:
            return 429, {"result": "error", "message": "usage limit reached"}, {}
        try:
            start = int(q["start"])
            min_value = float(q.get("min_value", "500000"))
            limit = int(q.get("limit", "100"))
        except (KeyError, ValueError):
            return 400, {"result": "error", "message": "invalid parameter: start"}, {}
        currency = q.get("currency")
        chosen = [
            t
            for t in self.transactions
            if isinstance(t.get("timestamp"), int)
            and start <= t["timestamp"] <= self.now_s
            and float(t.get("amount_usd") or 0) >= min_value
            and (currency is None or str(t.get("symbol")).lower() == currency)
        ]
        # The cursor holds the index of the next transaction (Whale Alert's is opaque too).
        offset = int(q["cursor"].rsplit("-", 1)[1], 16) if q.get("cursor") else 0
        page = chosen[offset : offset + limit]
        body: dict[str, Any] = {
            "result": "success",
            "cursor": f"2bc7e46-2bc7e46-{offset + len(page):x}",
            "count": len(page),
        }
        if page:
            body["transactions"] = page
        return 200, body, {}
