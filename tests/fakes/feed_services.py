"""Local servers speaking the wire formats of the public data services the feed sources call
(CoinGecko v3, CryptoCompare min-api, Yahoo's chart API, any JSON API, a calendar URL), for tests.

    with FakeCoinGecko(now_s=START + 100 * DAY) as gecko:
        client = FeedHttpClient("coingecko", gecko.url, per_minute=60)
        gecko.fail("/simple/price", 429, {"status": {...}}, headers={"retry-after": "1"})

Every server serves deterministic data up to its clock (``now_s``, the data cut: what the service
knew then), logs each request with its time (``count_in_window`` checks a rate limit), and takes
queued faults per path prefix: an HTTP status with a body, a delay (timeouts), a truncated body, a
dropped connection.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit
from zoneinfo import ZoneInfo

__all__ = [
    "FakeCoinGecko",
    "FakeCryptoCompare",
    "FakeJsonApi",
    "FakeYahoo",
    "FeedServer",
    "Reply",
    "Seen",
    "wave",
]

HOUR = 3600
DAY = 86_400


def wave(t: float, base: float, *, scale: float = 0.05, period: float = 7 * DAY) -> float:
    """A deterministic value at time ``t``: what every fake serves for the same instant, whatever the
    question (so a cut and a full fetch agree on shared points)."""
    return round(base * (1 + scale * math.sin(t / period * 2 * math.pi) + scale / 3 * math.cos(t / 5_003)), 6)


@dataclass(slots=True)
class Reply:
    status: int = 200
    body: Any = None  # JSON-able, or str/bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float  # time.monotonic()


@dataclass(slots=True)
class _Fault:
    prefix: str
    reply: Reply | None = None
    delay: float = 0.0
    truncate: bool = False
    drop: bool = False


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timeouts, dropped connections) is part of the tests, not news."""


class FeedServer:
    """The HTTP server, request log and fault queue shared by the fakes."""

    def __init__(self, now_s: int | None = None):
        self.now_s = now_s
        self.requests: list[Seen] = []
        self.routes: list[tuple[re.Pattern[str], Callable[..., Reply]]] = []
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # ----- clock, routes, faults -----------------------------------------------------------------
    def now(self) -> int:
        return int(time.time()) if self.now_s is None else self.now_s

    def route(self, pattern: str, handler: Callable[..., Reply]) -> None:
        """``handler(query, headers, *groups)`` for paths matching ``pattern`` (a full-match regex)."""
        self.routes.append((re.compile(pattern), handler))

    def fail(
        self,
        prefix: str,
        status: int,
        body: Any = "",
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        for _ in range(times):
            self._faults.append(_Fault(prefix, reply=Reply(status, body, headers or {})))

    def slow(self, prefix: str, seconds: float, times: int = 1) -> None:
        for _ in range(times):
            self._faults.append(_Fault(prefix, delay=seconds))

    def truncate(self, prefix: str, times: int = 1) -> None:
        """Answer 200 with a Content-Length larger than the body sent, then close."""
        for _ in range(times):
            self._faults.append(_Fault(prefix, truncate=True))

    def drop(self, prefix: str, times: int = 1) -> None:
        for _ in range(times):
            self._faults.append(_Fault(prefix, drop=True))

    def _take(self, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if path.startswith(fault.prefix):
                    self._faults.remove(fault)
                    return fault
        return None

    def count_in_window(self, seconds: float = 60.0, prefix: str = "") -> int:
        """The most requests (under ``prefix``) that arrived within any ``seconds``-long window."""
        times = sorted(r.at for r in self.requests if r.path.startswith(prefix))
        best, start = 0, 0
        for end, at in enumerate(times):
            while at - times[start] >= seconds:
                start += 1
            best = max(best, end - start + 1)
        return best

    def calls(self, prefix: str = "") -> list[Seen]:
        return [r for r in self.requests if r.path.startswith(prefix)]

    # ----- serving --------------------------------------------------------------------------------
    def answer(self, path: str, query: dict[str, str], headers: dict[str, str]) -> Reply:
        for pattern, handler in self.routes:
            match = pattern.fullmatch(path)
            if match:
                return handler(query, headers, *match.groups())
        return Reply(404, {"error": "Not Found"})

    def start(self) -> FeedServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                path = unquote(parts.path)
                query = dict(parse_qsl(parts.query, keep_blank_values=True))
                headers = {k.lower(): v for k, v in self.headers.items()}
                fake.requests.append(Seen(path, query, headers, time.monotonic()))
                fault = fake._take(path)
                if fault is not None and fault.delay:
                    time.sleep(fault.delay)
                if fault is not None and fault.drop:
                    self.close_connection = True
                    self.connection.close()
                    return
                reply = (
                    fault.reply if fault is not None and fault.reply else fake.answer(path, query, headers)
                )
                body = reply.body
                data = (
                    body
                    if isinstance(body, bytes)
                    else (body if isinstance(body, str) else json.dumps(body)).encode()
                )
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if "content-type" not in {k.lower() for k in reply.headers}:
                    kind = "application/json" if not isinstance(body, str | bytes) else "text/plain"
                    self.send_header("Content-Type", kind)
                if fault is not None and fault.truncate:
                    self.send_header("Content-Length", str(len(data) + 500))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"


# ----- CoinGecko v3 ------------------------------------------------------------------------------
COINS = {"bitcoin": ("btc", 60_000.0, 19_700_000.0), "ethereum": ("eth", 3_000.0, 120_000_000.0)}


class FakeCoinGecko(FeedServer):
    """``/simple/price``, ``/coins/{id}/market_chart`` (5-minute, hourly or daily points by ``days``, the
    last one live and off the grid) and ``/global``. ``key``: when set, calls must send it in
    ``x-cg-demo-api-key``."""

    def __init__(self, now_s: int | None = None, key: str | None = None):
        super().__init__(now_s)
        self.key = key
        self.route(r"/api/v3/simple/price", self._price)
        self.route(r"/api/v3/coins/([^/]+)/market_chart", self._chart)
        self.route(r"/api/v3/global", self._global)

    @property
    def base_url(self) -> str:
        return self.url + "/api/v3"

    def _refused(self, headers: dict[str, str]) -> Reply | None:
        if self.key is not None and headers.get("x-cg-demo-api-key") != self.key:
            return Reply(401, {"status": {"error_code": 10002, "error_message": "API Key Missing"}})
        return None

    @staticmethod
    def price_at(coin: str, t: float) -> float:
        return wave(t, COINS[coin][1])

    def _price(self, query: dict[str, str], headers: dict[str, str]) -> Reply:
        refused = self._refused(headers)
        if refused:
            return refused
        vs, now = query.get("vs_currencies", "usd"), self.now()
        out: dict[str, Any] = {}
        for coin in query.get("ids", "").split(","):
            if coin in COINS:
                price = self.price_at(coin, now)
                out[coin] = {
                    vs: price,
                    f"{vs}_market_cap": price * COINS[coin][2],
                    f"{vs}_24h_vol": wave(now, 3e10, scale=0.2),
                    f"{vs}_24h_change": round((price / self.price_at(coin, now - DAY) - 1) * 100, 4),
                    "last_updated_at": now - 30,
                }
        return Reply(200, out)

    def _chart(self, query: dict[str, str], headers: dict[str, str], coin: str) -> Reply:
        refused = self._refused(headers)
        if refused:
            return refused
        if coin not in COINS:
            return Reply(404, {"error": "coin not found"})
        days, now = int(query.get("days", "1")), self.now()
        step = 300 if days <= 1 else HOUR if days <= 90 else DAY
        first = (now - days * DAY) // step * step + step
        grid = list(range(first, now - (now % step) + 1, step))
        if days > 90:
            grid = [t for t in grid if t <= now]
        stamps = [*grid, now - 7]  # the live last point, off the grid
        supply = COINS[coin][2]
        return Reply(
            200,
            {
                "prices": [[t * 1000, self.price_at(coin, t)] for t in stamps],
                "market_caps": [[t * 1000, self.price_at(coin, t) * supply] for t in stamps],
                "total_volumes": [[t * 1000, wave(t, 3e10, scale=0.2)] for t in stamps],
            },
        )

    def _global(self, query: dict[str, str], headers: dict[str, str]) -> Reply:
        refused = self._refused(headers)
        if refused:
            return refused
        now = self.now()
        share = {"btc": wave(now, 52.0, scale=0.02), "eth": wave(now, 15.0, scale=0.02)}
        return Reply(
            200,
            {
                "data": {
                    "active_cryptocurrencies": 13_690,
                    "market_cap_percentage": share,
                    "total_market_cap": {"usd": 2.4e12},
                    "updated_at": now - 60,
                }
            },
        )

    def rate_limit(self, prefix: str = "/api/v3", retry_after: str | None = "1", times: int = 1) -> None:
        body = {
            "status": {"error_code": 429, "error_message": "You've exceeded the Rate Limit. Please visit ..."}
        }
        self.fail(prefix, 429, body, headers={"retry-after": retry_after} if retry_after else {}, times=times)


# ----- CryptoCompare min-api ---------------------------------------------------------------------
class FakeCryptoCompare(FeedServer):
    """``/data/v2/histohour`` and ``histoday`` (``limit`` + 1 bars ending at ``toTs``, the bar in progress
    included, zeros before ``listed_s``), ``/data/social/coin/histo/day`` (needs ``authorization:
    Apikey KEY``). ``quota``: calls left before every answer is the HTTP-200 ``Type: 99`` error."""

    def __init__(self, now_s: int | None = None, key: str | None = None, listed_s: int = 0):
        super().__init__(now_s)
        self.key = key
        self.listed_s = listed_s
        self.quota: int | None = None
        self.route(r"/data/v2/histohour", lambda q, h: self._histo(q, h, HOUR))
        self.route(r"/data/v2/histoday", lambda q, h: self._histo(q, h, DAY))
        self.route(r"/data/social/coin/histo/day", self._social)

    @staticmethod
    def close_at(t: float) -> float:
        return wave(t, 60_010.0)  # a little off CoinGecko's, like two real services

    def _over_quota(self) -> Reply | None:
        if self.quota is None:
            return None
        if self.quota <= 0:
            return Reply(
                200,
                {
                    "Response": "Error",
                    "Message": "You are over your rate limit please upgrade your account!",
                    "HasWarning": False,
                    "Type": 99,
                    "RateLimit": {"calls_made": {"second": 1, "minute": 1}, "max_calls": {"month": 100000}},
                    "Data": {},
                },
            )
        self.quota -= 1
        return None

    def _histo(self, query: dict[str, str], headers: dict[str, str], period: int) -> Reply:
        over = self._over_quota()
        if over:
            return over
        if query.get("fsym", "").upper() not in ("BTC", "ETH"):
            return Reply(
                200,
                {
                    "Response": "Error",
                    "Message": "fsym param is invalid. (fsym does not exist)",
                    "Type": 2,
                    "Data": {},
                },
            )
        now = self.now()
        limit = min(2000, int(query.get("limit", "30")))
        to_ts = min(int(query.get("toTs", now)), now)
        last = to_ts // period * period
        bars = []
        for stamp in range(last - limit * period, last + period, period):
            if stamp < self.listed_s:
                bars.append(
                    {
                        "time": stamp,
                        "open": 0,
                        "high": 0,
                        "low": 0,
                        "close": 0,
                        "volumefrom": 0,
                        "volumeto": 0,
                    }
                )
                continue
            # The bar in progress shows the price so far.
            close = self.close_at(min(stamp + period, now))
            volume = wave(stamp, 4e8, scale=0.3, period=3 * DAY)
            bars.append(
                {
                    "time": stamp,
                    "high": close * 1.01,
                    "low": close * 0.99,
                    "open": self.close_at(stamp),
                    "volumefrom": volume / close,
                    "volumeto": volume,
                    "close": close,
                    "conversionType": "direct",
                    "conversionSymbol": "",
                }
            )
        data = {"Aggregated": False, "TimeFrom": bars[0]["time"], "TimeTo": bars[-1]["time"], "Data": bars}
        return Reply(
            200, {"Response": "Success", "Message": "", "HasWarning": False, "Type": 100, "Data": data}
        )

    def _social(self, query: dict[str, str], headers: dict[str, str]) -> Reply:
        if self.key is None or headers.get("authorization") != f"Apikey {self.key}":
            return Reply(
                200,
                {
                    "Response": "Error",
                    "Message": "You need a valid auth key or api key to access this endpoint",
                    "Type": 1,
                },
            )
        over = self._over_quota()
        if over:
            return over
        now = self.now()
        today = now // DAY * DAY
        limit = int(query.get("limit", "30"))
        rows = [
            {
                "time": day,
                "comments": 10,
                "posts": int(wave(day, 1000.0, scale=0.1)),
                "followers": int(50_000 + (day - 1_600_000_000) // DAY * 7),
                "points": 1,
                "reddit_subscribers": 4_000_000,
            }
            for day in range(today - limit * DAY, today + DAY, DAY)
        ]
        return Reply(200, {"Response": "Success", "Message": "", "Type": 100, "Data": rows})


# ----- Yahoo Finance chart -----------------------------------------------------------------------
class FakeYahoo(FeedServer):
    """``/v8/finance/chart/{symbol}`` daily bars of New York sessions (09:30-16:00, weekdays; the session
    in progress shows its last trade); ``null_closes``: session opens (s) whose close is null."""

    ZONE = ZoneInfo("America/New_York")

    def __init__(self, now_s: int | None = None, symbols: tuple[str, ...] = ("^GSPC",)):
        super().__init__(now_s)
        self.symbols = symbols
        self.null_closes: set[int] = set()
        self.half_day = False  # today's regular session ends at 13:00 (meta.currentTradingPeriod)
        self.route(r"/v8/finance/chart/(.+)", self._chart)

    def sessions(self, start: int, end: int) -> list[int]:
        """Open times (s) of the sessions opening in [start, end]."""
        day = datetime.fromtimestamp(start, self.ZONE).date()
        out = []
        while True:
            opening = datetime(day.year, day.month, day.day, 9, 30, tzinfo=self.ZONE)
            stamp = int(opening.timestamp())
            if stamp > end:
                return out
            if day.weekday() < 5 and stamp >= start:
                out.append(stamp)
            day += timedelta(days=1)

    @staticmethod
    def close_stamp(opened: int) -> int:
        local = datetime.fromtimestamp(opened, FakeYahoo.ZONE)
        return int(local.replace(hour=16, minute=0).timestamp())

    def _chart(self, query: dict[str, str], headers: dict[str, str], symbol: str) -> Reply:
        if symbol not in self.symbols:
            return Reply(
                404,
                {
                    "chart": {
                        "result": None,
                        "error": {
                            "code": "Not Found",
                            "description": "No data found, symbol may be delisted",
                        },
                    }
                },
            )
        now = self.now()
        opens = self.sessions(
            int(query.get("period1", now - 30 * DAY)), min(int(query.get("period2", now)), now)
        )
        closes: list[float | None] = []
        for opened in opens:
            close = wave(min(self.close_stamp(opened), now), 5_000.0)
            closes.append(None if opened in self.null_closes else close)
        today = datetime.fromtimestamp(now, self.ZONE).date()
        regular_start = int(datetime(today.year, today.month, today.day, 9, 30, tzinfo=self.ZONE).timestamp())
        closing = 13 if self.half_day else 16
        regular_end = int(
            datetime(today.year, today.month, today.day, closing, 0, tzinfo=self.ZONE).timestamp()
        )
        offset = int(datetime.fromtimestamp(now, self.ZONE).utcoffset().total_seconds())  # type: ignore[union-attr]
        period = {"timezone": "EST", "start": regular_start, "end": regular_end, "gmtoffset": offset}
        meta = {
            "currency": "USD",
            "symbol": symbol,
            "exchangeName": "SNP",
            "instrumentType": "INDEX",
            "gmtoffset": offset,
            "timezone": "EST",
            "exchangeTimezoneName": "America/New_York",
            "regularMarketPrice": wave(now, 5_000.0),
            "currentTradingPeriod": {"pre": period, "regular": period, "post": period},
            "dataGranularity": "1d",
        }
        quote = {
            "open": [wave(o, 5_000.0) for o in opens],
            "high": [None if c is None else c * 1.01 for c in closes],
            "low": [None if c is None else c * 0.99 for c in closes],
            "close": closes,
            "volume": [int(wave(o, 3e9, scale=0.2)) for o in opens],
        }
        result = {
            "meta": meta,
            "timestamp": opens,
            "indicators": {"quote": [quote], "adjclose": [{"adjclose": closes}]},
        }
        return Reply(200, {"chart": {"result": [result], "error": None}})

    def throttle(self, times: int = 1) -> None:
        self.fail(
            "/v8/finance/chart",
            429,
            "Too Many Requests\r\n",
            headers={"Content-Type": "text/plain"},
            times=times,
        )


# ----- any JSON API, and calendar files over HTTP ----------------------------------------------------
class FakeJsonApi(FeedServer):
    """Serves ``body`` (any JSON) at ``path``; ``key_param``/``key_header``: the key calls must carry
    (``401 {"error": "invalid key"}`` otherwise). ``texts`` serves plain files (calendars) by path."""

    def __init__(
        self,
        path: str = "/v1/series",
        body: Any = None,
        *,
        key: str | None = None,
        key_param: str | None = None,
        key_header: str | None = None,
    ):
        super().__init__()
        self.body = body
        self.key, self.key_param, self.key_header = key, key_param, key_header
        self.texts: dict[str, str] = {}
        self.route(re.escape(path), self._json)
        self.route(
            r"(/files/.+)",
            lambda q, h, p: Reply(200, self.texts[p]) if p in self.texts else Reply(404, "no such file"),
        )

    def _json(self, query: dict[str, str], headers: dict[str, str]) -> Reply:
        if self.key is not None:
            given = (
                query.get(self.key_param or "")
                if self.key_param
                else headers.get((self.key_header or "").lower())
            )
            if given != self.key:
                return Reply(401, {"error": "invalid key", "echo": given})
        return Reply(200, self.body() if callable(self.body) else self.body)


def iso(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fetch_request(
    name: str, members: tuple[str, ...] | None = None, *, since_s: int | None = None, now_s: int, **feed: Any
) -> Any:
    """A FetchRequest for a feed declared as ``feed`` (the keys of a feeds.yaml entry)."""
    from engine.config._feeds import Feed, ResolvedFeed
    from engine.feeds.sources.base import FetchRequest

    resolved = ResolvedFeed(name, Feed(**feed))
    return FetchRequest(
        resolved,
        members if members is not None else resolved.members,
        None if since_s is None else since_s * 1_000_000_000,
        now_s * 1_000_000_000,
    )
