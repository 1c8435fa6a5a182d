"""A fake Binance REST server for tests: real HTTP on 127.0.0.1, spoken to by the real ccxt client.

    with FakeBinance([FakeMarket.spot("ETH/BTC", walk_candles("2024-01-01", "2024-01-10"))]) as server:
        exchange = ccxt.async_support.binance(server.ccxt_config())
        server.faults.add("/api/v3/klines", status=429, retry_after=1)   # next klines call is rate-limited

Layers, so that later issues can extend it without touching the core:

* :class:`FakeBinance` owns the HTTP server thread, the clock (``now_ms``), the request log and the fault
  queue; every request goes through :meth:`FakeBinance.dispatch`.
* :class:`Router` maps (method, path) to handlers. Each route declares its ``security`` the way Binance's docs
  do: ``NONE`` (public), ``API_KEY`` (needs the X-MBX-APIKEY header) or ``SIGNED`` (also a ``timestamp``
  within ``recvWindow`` and an HMAC-SHA256 ``signature`` of the query string and body, checked here
  against :attr:`FakeBinance.api_keys`).
* Endpoint groups register themselves on the router: the public market-data endpoints live in
  ``tests/fakes/binance_market.py``. Account and order endpoints (``/api/v3/account``, ``/api/v3/order``,
  ``openOrders``, ``myTrades``) belong in a sibling module registering ``SIGNED`` routes the same way.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "BinanceError",
    "FakeBinance",
    "Fault",
    "Faults",
    "Request",
    "Response",
    "Router",
]


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    raw_query: str
    body: bytes
    headers: dict[str, str]

    def params(self) -> dict[str, str]:
        """Query and form-body parameters together, as Binance reads them."""
        merged = dict(self.query)
        if self.body and "json" not in self.headers.get("content-type", ""):
            merged.update(parse_qsl(self.body.decode(), keep_blank_values=True))
        return merged


@dataclass(slots=True)
class Response:
    status: int = 200
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # sent as is instead of JSON (HTML error pages, garbage)


class BinanceError(Exception):
    """An error answered the way Binance does: an HTTP status and ``{"code": ..., "msg": ...}``."""

    def __init__(self, status: int, code: int, msg: str):
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


Handler = Callable[[Request], Any]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    security: str = "NONE"  # NONE | API_KEY | SIGNED
    weight: int = 1


class Router:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}

    def add(
        self, method: str, path: str, handler: Handler, *, security: str = "NONE", weight: int = 1
    ) -> None:
        if security not in ("NONE", "API_KEY", "SIGNED"):
            raise ValueError(f"unknown security {security}")
        self.routes[(method.upper(), path)] = Route(method.upper(), path, handler, security, weight)

    def find(self, method: str, path: str) -> Route | None:
        return self.routes.get((method.upper(), path))


@dataclass(slots=True)
class Fault:
    """One injected misbehaviour for the next ``times`` requests whose path starts with ``path``."""

    path: str | None
    times: int
    status: int | None = None
    retry_after: float | None = None
    delay: float = 0.0
    drop: bool = False
    body: bytes | None = None
    after: int = 0  # matching requests to let through untouched before the fault starts
    method: str | None = None  # only requests of this HTTP method (default: any)


class Faults:
    """Thread-safe queue of faults, consumed in order of addition by matching requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Fault] = []

    def add(
        self,
        path: str | None = None,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        delay: float = 0.0,
        drop: bool = False,
        body: bytes | None = None,
        times: int = 1,
        after: int = 0,
        method: str | None = None,
    ) -> Fault:
        """``status`` answers with that HTTP status (429/418 get Binance's rate-limit body and, with
        ``retry_after``, a Retry-After header); ``delay`` sleeps before answering normally (or before the
        fault); ``drop`` closes the connection without any answer. aiohttp (under ccxt) silently resends a
        request once when a reused keep-alive connection is dropped, so use ``times=2`` for the client to
        see a dropped connection. ``after`` lets that many matching requests through first. ``method``
        limits the fault to one HTTP method (``GET`` look-ups of an order, not its ``POST``)."""
        fault = Fault(
            path, times, status, retry_after, delay, drop, body, after, method.upper() if method else None
        )
        with self._lock:
            self._items.append(fault)
        return fault

    def take(self, path: str, method: str | None = None) -> Fault | None:
        with self._lock:
            for fault in self._items:
                if fault.method is not None and method is not None and fault.method != method.upper():
                    continue
                if fault.path is None or path.startswith(fault.path):
                    if fault.after > 0:
                        fault.after -= 1
                        return None
                    fault.times -= 1
                    if fault.times <= 0:
                        self._items.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def pending(self) -> int:
        with self._lock:
            return sum(f.times for f in self._items)


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    method: str
    path: str
    params: dict[str, str]
    status: int  # 0 when the connection was dropped


class FakeBinance:
    """The server. Use as a context manager, or call :meth:`start` / :meth:`stop`."""

    def __init__(self, markets: Iterable[Any] = (), *, now_ms: int | None = None):
        from tests.fakes import binance_market

        self.router = Router()
        self.faults = Faults()
        self.requests: list[LoggedRequest] = []
        self.api_keys: dict[str, str] = {}  # api key -> secret, for API_KEY and SIGNED routes
        self.now_ms = now_ms
        self.market_data = binance_market.MarketData(self, markets)
        self.market_data.register(self.router)
        from tests.fakes import binance_book

        self.book = binance_book.BookData(self)  # order book and public trades
        self.book.register(self.router)
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ----------------------------------------------------------------------

    def start(self) -> FakeBinance:
        server = _QuietServer(("127.0.0.1", 0), _make_handler(self))
        server.daemon_threads = True
        self._httpd = server
        # A short poll interval keeps stop() quick (shutdown waits for the loop to notice).
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-binance", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeBinance:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def clock(self) -> int:
        """Server time in ms: ``now_ms`` when set (tests pin it), else the wall clock."""
        return self.now_ms if self.now_ms is not None else int(time.time() * 1000)

    def ccxt_urls(self) -> dict[str, str]:
        """``urls['api']`` entries pointing ccxt's binance class at this server."""
        base = self.url
        return {
            "public": f"{base}/api/v3",
            "private": f"{base}/api/v3",
            "v1": f"{base}/api/v1",
            "fapiPublic": f"{base}/fapi/v1",
            "fapiPublicV2": f"{base}/fapi/v2",
            "fapiPublicV3": f"{base}/fapi/v3",
            "fapiPrivate": f"{base}/fapi/v1",
            "fapiPrivateV2": f"{base}/fapi/v2",
            "fapiPrivateV3": f"{base}/fapi/v3",
            "sapi": f"{base}/sapi/v1",
        }

    def ccxt_config(self, *, futures: bool = False, **extra: Any) -> dict[str, Any]:
        """A ccxt constructor config that talks to this server only: spot (and linear futures) markets,
        no currency or margin look-ups, a tiny rate limit so tests stay fast."""
        import ccxt.async_support as ccxt_async

        urls = dict(ccxt_async.binance().describe()["urls"])
        urls["api"] = {**urls["api"], **self.ccxt_urls()}
        config: dict[str, Any] = {
            "urls": urls,
            "enableRateLimit": True,
            "rateLimit": 1,
            "timeout": 5000,
            "options": {
                "fetchMarkets": {"types": ["spot", "linear"] if futures else ["spot"]},
                "fetchCurrencies": False,
                "fetchMargins": False,
            },
        }
        config.update(extra)
        return config

    # ---- request handling ---------------------------------------------------------------

    def log(self, request: Request, status: int) -> None:
        with self._lock:
            self.requests.append(LoggedRequest(request.method, request.path, request.params(), status))

    def calls(self, path: str) -> list[LoggedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def dispatch(self, request: Request) -> Response:
        route = self.router.find(request.method, request.path)
        if route is None:
            return Response(404, {"code": -1, "msg": f"fake Binance has no {request.method} {request.path}"})
        try:
            self._authorise(route, request)
            result = route.handler(request)
        except BinanceError as exc:
            return Response(exc.status, {"code": exc.code, "msg": exc.msg})
        response = result if isinstance(result, Response) else Response(200, result)
        response.headers.setdefault("x-mbx-used-weight", str(route.weight))
        response.headers.setdefault("x-mbx-used-weight-1m", str(route.weight))
        return response

    def _authorise(self, route: Route, request: Request) -> None:
        if route.security == "NONE":
            return
        key = request.headers.get("x-mbx-apikey")
        if not key or key not in self.api_keys:
            raise BinanceError(401, -2014, "API-key format invalid.")
        if route.security == "API_KEY":
            return
        params = request.params()
        if "signature" not in params:
            raise BinanceError(
                400, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed."
            )
        timestamp = int(params.get("timestamp", "0") or 0)
        window = int(params.get("recvWindow", "5000"))
        if not timestamp or not (timestamp - 1000 <= self.clock() <= timestamp + window):
            raise BinanceError(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        # Binance signs the query string followed directly by the body, without the signature itself.
        payload = _without_signature(request.raw_query) + _without_signature(request.body.decode())
        expected = hmac.new(self.api_keys[key].encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, params["signature"]):
            raise BinanceError(400, -1022, "Signature for this request is not valid.")


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or are killed reset their connections; that is not a server bug.
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _make_handler(server: FakeBinance) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def do_PUT(self) -> None:
            self._serve()

        def do_DELETE(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(
                method=self.command,
                path=parts.path,
                query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                raw_query=parts.query,
                body=body,
                headers={k.lower(): v for k, v in self.headers.items()},
            )
            fault = server.faults.take(request.path, request.method)
            if fault is not None and fault.delay:
                time.sleep(fault.delay)
            if fault is not None and fault.drop:
                server.log(request, 0)
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault is not None and fault.status is not None:
                response = _fault_response(fault)
            else:
                response = server.dispatch(request)
            server.log(request, response.status)
            self._send(response)

        def _send(self, response: Response) -> None:
            body = response.raw if response.raw is not None else json.dumps(response.payload).encode()
            try:
                self.send_response(response.status)
                content_type = "text/html" if response.raw is not None else "application/json;charset=UTF-8"
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (timeout): nothing to answer

    return _Handler


def _without_signature(text: str) -> str:
    return "&".join(part for part in text.split("&") if part and not part.startswith("signature="))


def _fault_response(fault: Fault) -> Response:
    status = int(fault.status or 500)
    headers = {}
    if fault.retry_after is not None:
        headers["Retry-After"] = f"{fault.retry_after:g}"
    if fault.body is not None:
        return Response(status, raw=fault.body, headers=headers)
    if status in (418, 429):
        payload = {
            "code": -1003,
            "msg": "Too many requests; current limit of IP is 6000 requests per minute.",
        }
        return Response(status, payload, headers)
    if status >= 500:
        return Response(status, raw=f"<html><body><h1>{status}</h1></body></html>".encode(), headers=headers)
    return Response(
        status, {"code": -1000, "msg": "An unknown error occurred while processing the request."}, headers
    )
