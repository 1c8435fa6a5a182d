"""Every HTTP fault shape against every HTTP source, through real sockets: 429 with Retry-After (waited
out, then the data), 429 without it, 418 and 403 bans, 5xx, timeouts, refused connections, bodies cut
off mid-way, and answers that are not JSON. Each becomes the error of engine.feeds.http the scheduler
acts on, with the service's name."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.config._feeds import ServiceSettings
from engine.feeds.http import BadResponse, Banned, FeedHttpClient, RateLimited, ServerError, Unreachable
from engine.feeds.sources import calendar as calendar_source
from engine.feeds.sources import http_json
from engine.feeds.sources.base import SourceSetup
from engine.feeds.sources.coingecko import CoinGeckoSource
from engine.feeds.sources.cryptocompare import CryptoCompareSource
from engine.feeds.sources.yahoo import YahooSource
from tests.fakes.feed_services import (
    FakeCoinGecko,
    FakeCryptoCompare,
    FakeJsonApi,
    FakeYahoo,
    FeedServer,
    fetch_request,
)

NOW = 1_717_243_200 + 15 * 3600  # 2024-06-01 15:00 UTC (a Saturday)
CAL = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART:20240612T180000Z\nSUMMARY:FOMC\nEND:VEVENT\nEND:VCALENDAR\n"


def _client(service: str, url: str, retries: int) -> FeedHttpClient:
    return FeedHttpClient(service, url, per_minute=600, retries=retries, backoff=0.01, timeout=1.0)


def _per_host(kind: str, retries: int, tmp: Path) -> Any:
    options = {"retries": retries, "backoff": 0.01, "timeout_s": 1.0}
    setup = SourceSetup(kind, ServiceSettings(), None, None, str(tmp), options=options)
    return (http_json if kind == "http_json" else calendar_source).build(setup)


# name -> (server factory, path prefix to break, source factory(server, retries, tmp), request(server))
CASES: dict[str, tuple[Callable[[], FeedServer], str, Callable[..., Any], Callable[[Any], Any]]] = {
    "coingecko": (
        lambda: FakeCoinGecko(now_s=NOW),
        "/api/v3/simple/price",
        lambda s, r, _t: CoinGeckoSource(_client("coingecko", s.base_url, r)),
        lambda s: fetch_request(
            "btc", ("price",), since_s=NOW - 60, now_s=NOW, source="coingecko", coin="bitcoin"
        ),
    ),
    "cryptocompare": (
        lambda: FakeCryptoCompare(now_s=NOW),
        "/data/v2/histohour",
        lambda s, r, _t: CryptoCompareSource(_client("cryptocompare", s.url, r)),
        lambda s: fetch_request(
            "btc", ("price",), since_s=NOW - 3600, now_s=NOW, source="cryptocompare", symbol="BTC"
        ),
    ),
    "yahoo": (
        lambda: FakeYahoo(now_s=NOW),
        "/v8/finance/chart",
        lambda s, r, _t: YahooSource(_client("yahoo", s.url, r)),
        lambda s: fetch_request(
            "spx", ("close",), since_s=NOW - 5 * 86_400, now_s=NOW, source="yahoo", symbol="^GSPC"
        ),
    ),
    "http_json": (
        lambda: FakeJsonApi("/v1/x", [{"t": NOW - 60, "v": 1.5}]),
        "/v1/x",
        lambda s, r, t: _per_host("http_json", r, t),
        lambda s: fetch_request(
            "mine", now_s=NOW, source="http_json", url=s.url + "/v1/x", time="t", values={"v": "v"}
        ),
    ),
    "calendar": (
        lambda: _calendar_server(),
        "/files/",
        lambda s, r, t: _per_host("calendar", r, t),
        lambda s: fetch_request("macro", now_s=NOW, source="calendar", path=s.url + "/files/macro.ics"),
    ),
}


def _calendar_server() -> FakeJsonApi:
    server = FakeJsonApi()
    server.texts["/files/macro.ics"] = CAL
    return server


FAULTS: dict[str, tuple[Callable[[FeedServer, str], None], type[Exception] | None, str]] = {
    "429 with Retry-After": (
        lambda s, p: s.fail(p, 429, "slow down", headers={"Retry-After": "1"}),
        None,
        "",
    ),
    "429 without Retry-After": (
        lambda s, p: s.fail(p, 429, '{"error": "Too Many Requests"}'),
        RateLimited,
        "HTTP 429",
    ),
    "418": (lambda s, p: s.fail(p, 418, "I'm a teapot", headers={"Retry-After": "0"}), Banned, "HTTP 418"),
    "403": (
        lambda s, p: s.fail(p, 403, "<html>Forbidden</html>", headers={"Retry-After": "0"}),
        Banned,
        "HTTP 403",
    ),
    "5xx": (lambda s, p: s.fail(p, 502, "<html>Bad Gateway</html>"), ServerError, "HTTP 502"),
    "timeout": (lambda s, p: s.slow(p, 2.5), Unreachable, "timed out"),
    "truncated": (lambda s, p: s.truncate(p), Unreachable, ""),
    "not JSON": (
        lambda s, p: s.fail(p, 200, "<html><body>We'll be back soon</body></html>"),
        BadResponse,
        "",
    ),
}


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("name", list(CASES))
async def test_fault(name: str, fault: str, tmp_path: Path) -> None:
    make_server, prefix, make_source, make_request = CASES[name]
    breaks, error, words = FAULTS[fault]
    with make_server() as server:
        source = make_source(server, 1 if error is None else 0, tmp_path)
        breaks(server, prefix)
        try:
            if error is None:
                assert await source.fetch(make_request(server)), f"{name}: no data after waiting"
                first, second = server.calls(prefix)[:2]
                assert second.at - first.at >= 0.95, f"{name}: Retry-After not honoured"
            else:
                with pytest.raises(error) as raised:
                    await source.fetch(make_request(server))
                assert str(raised.value).startswith(f"{name}: ") and words in str(raised.value)
        finally:
            await _close(source)


@pytest.mark.parametrize("name", list(CASES))
async def test_connection_refused(name: str, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _server, _prefix, make_source, make_request = CASES[name]

    class Gone:
        url = f"http://127.0.0.1:{port}"
        base_url = url + "/api/v3"

    source = make_source(Gone(), 0, tmp_path)
    with pytest.raises(Unreachable):
        await source.fetch(make_request(Gone()))
    await _close(source)


async def _close(source: Any) -> None:
    await source.aclose()
    if getattr(source, "http", None) is not None:  # the clients the FeedService would own
        await source.http.aclose()
