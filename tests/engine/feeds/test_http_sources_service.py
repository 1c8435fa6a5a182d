"""The HTTP sources through the FeedService: the btc fallback chain (CoinGecko down, CryptoCompare takes
over, CoinGecko recovers by itself), each service's rate limit never exceeded as the fake servers count
it, and keys absent from logs, events, health rows and errors."""

from __future__ import annotations

import asyncio
import logging
import time
import types
from pathlib import Path

import pytest
from sqlalchemy import select

import engine.feeds.http as feed_http
from engine.config._feeds import load_feeds
from engine.feeds.http import FeedHttpClient, RateLimiter
from engine.feeds.service import FeedService
from engine.feeds.sources.coingecko import CoinGeckoSource
from engine.feeds.sources.cryptocompare import CryptoCompareSource
from engine.feeds.sources.yahoo import YahooSource
from engine.feeds.store import read_health
from engine.store import create_engine_for, session_factory, upgrade_async
from engine.store.models import Event, FeedHealth, FeedObservation
from tests.fakes.feed_services import (
    HOUR,
    FakeCoinGecko,
    FakeCryptoCompare,
    FakeJsonApi,
    FakeYahoo,
    fetch_request,
)

NOW = 1_717_243_200 + 13 * HOUR + 1234  # 2024-06-01 13:20:34 UTC


@pytest.fixture
async def sessions(tmp_path: Path):
    engine = create_engine_for(f"sqlite+aiosqlite:///{tmp_path / 'engine.db'}")
    await upgrade_async(engine)
    yield session_factory(engine)
    await engine.dispose()


async def sources_of(sessions, series: str) -> set[str]:
    async with sessions() as session:
        rows = await session.scalars(select(FeedObservation.source).where(FeedObservation.series == series))
        return set(rows.all())


async def test_coingecko_down_cryptocompare_takes_over_and_coingecko_recovers(
    sessions, tmp_path: Path
) -> None:
    # The built-in btc chain, with a short first history to keep the test quick.
    (tmp_path / "feeds.yaml").write_text(
        "feeds:\n  btc:\n    source: [coingecko, cryptocompare]\n    coin: bitcoin\n    symbol: BTC\n"
        "    history_days: 3\n"
    )
    with FakeCoinGecko(now_s=NOW) as gecko, FakeCryptoCompare(now_s=NOW) as cc:
        service = FeedService(
            load_feeds(tmp_path),
            sessions,
            root=tmp_path,
            base_urls={"coingecko": gecko.base_url, "cryptocompare": cc.url},
            clock=lambda: NOW * 1_000_000_000,
            retries=0,
            backoff=0.01,
        )
        healthy = await service.refresh("btc")
        assert healthy.used[0] == "coingecko" and not healthy.errors
        assert cc.calls("/data/v2/histohour") == []  # CryptoCompare was not needed for prices
        gecko.fail("/api/v3/simple/price", 500, "<html>502 Bad Gateway</html>")
        down = await service.refresh("btc")
        assert "HTTP 500" in down.errors["coingecko"] and down.used == ["cryptocompare"]
        assert "price" not in down.missing and cc.calls("/data/v2/histohour")
        assert service.states()["coingecko"] == "degraded"
        back = await service.refresh("btc")
        assert back.used[0] == "coingecko" and not back.errors
        # Resumed from CoinGecko's own members: no second 3-day history although btc.followers
        # (CryptoCompare, keyless here) was never stored.
        assert len(gecko.calls("/api/v3/coins/bitcoin/market_chart")) == 1
        await service.aclose()
    assert await sources_of(sessions, "btc.price") == {"coingecko", "cryptocompare"}
    async with sessions() as session:
        health = {h.source: h for h in await read_health(session)}
        events = [
            (e.kind, e.message) for e in (await session.scalars(select(Event).order_by(Event.id))).all()
        ]
    assert health["coingecko"].state == "ok" and health["coingecko"].failures == 1
    assert [k for k, _ in events] == ["feed_degraded", "feed_ok"]
    assert "coingecko" in events[0][1] and events[1][1] == "feed source coingecko recovered"


async def test_a_calendar_feed_is_covered_and_stored_through_the_service(sessions, tmp_path: Path) -> None:
    (tmp_path / "feeds.yaml").write_text("feeds:\n  macro: {source: calendar, path: cal.yaml}\n")
    (tmp_path / "cal.yaml").write_text(
        "events:\n  - {name: FOMC, kind: fomc, time: '2024-06-12T18:00:00Z'}\n"
    )
    service = FeedService(load_feeds(tmp_path), sessions, root=tmp_path, clock=lambda: NOW * 1_000_000_000)
    first = await service.refresh("macro")
    again = await service.refresh("macro")
    await service.aclose()
    assert first.ok and first.added == 1 and again.added == 0


async def test_keys_stay_out_of_logs_events_health_and_errors(sessions, tmp_path: Path) -> None:
    from engine.observability import setup_logging

    secret = "sk-feed-secret-98765"
    with FakeJsonApi("/v1/x", [{"t": NOW - 60, "v": 1}], key="another-key", key_param="token") as api:
        (tmp_path / "feeds.yaml").write_text(
            "feeds:\n  mine:\n    source: http_json\n"
            f"    url: {api.url}/v1/x\n    time: t\n    values: {{v: v}}\n"
            "    key_param: token\n    key: store:MINE_KEY\n"
        )
        installed = setup_logging(tmp_path / "logs", mode="paper", console="none", level=logging.DEBUG)
        try:
            service = FeedService(
                load_feeds(tmp_path),
                sessions,
                root=tmp_path,
                store_secrets={"MINE_KEY": secret},
                clock=lambda: NOW * 1_000_000_000,
                retries=0,
            )
            # The service answers 401 and echoes the wrong key it was given.
            result = await service.refresh("mine")
            await service.aclose()
        finally:
            installed.flush()
            installed.close()
        assert api.requests[0].query == {"token": secret}
    assert "HTTP 401" in result.errors["http_json"] and secret not in result.errors["http_json"]
    async with sessions() as session:
        events = " ".join(f"{e.message} {e.data}" for e in (await session.scalars(select(Event))).all())
        health = " ".join(str(h.last_error) for h in (await session.scalars(select(FeedHealth))).all())
    written = "".join(p.read_text() for p in (tmp_path / "logs").glob("*.jsonl"))
    assert "feed_degraded" not in events or secret not in events
    assert "HTTP 401" in health and "HTTP Request" in written
    for text in (events, health, written):
        assert secret not in text


# The limiter's minute lasts four real seconds: short enough for a test, long enough that a loaded
# machine's scheduling jitter (up to a second seen here) cannot bunch two windows' calls together.
FAST = 15.0


@pytest.fixture
def fast_minutes(monkeypatch):
    """Run the limiter's 60 s window FAST times faster: its clock and its sleeps both scaled."""

    def clock() -> float:
        return time.monotonic() * FAST

    async def sleep(seconds: float) -> None:
        await asyncio.sleep(seconds / FAST)

    monkeypatch.setattr(feed_http, "asyncio", types.SimpleNamespace(Lock=asyncio.Lock, sleep=sleep))
    return clock


@pytest.mark.slow
@pytest.mark.parametrize("service", ["coingecko", "cryptocompare", "yahoo"])
async def test_the_rate_limit_is_never_exceeded(fast_minutes, service: str) -> None:
    fake, make, feed = {
        "coingecko": (FakeCoinGecko, CoinGeckoSource, {"source": "coingecko", "coin": "bitcoin"}),
        "cryptocompare": (
            FakeCryptoCompare,
            CryptoCompareSource,
            {"source": "cryptocompare", "symbol": "BTC"},
        ),
        "yahoo": (FakeYahoo, YahooSource, {"source": "yahoo", "symbol": "^GSPC"}),
    }[service]
    with fake(now_s=NOW) as server:
        base = server.base_url if service == "coingecko" else server.url
        http = FeedHttpClient(
            service, base, per_minute=3, retries=0, limiter=RateLimiter(3, clock=fast_minutes)
        )
        source = make(http)
        request = fetch_request(
            "x", (("price",) if service != "yahoo" else ("close",)), since_s=NOW - 60, now_s=NOW, **feed
        )
        started = time.monotonic()
        await asyncio.gather(*(source.fetch(request) for _ in range(5)))
        elapsed = time.monotonic() - started
        await http.aclose()
    assert len(server.requests) == 5
    # 3 calls per (scaled) minute: 5 calls need two windows, and no window the server saw (less a
    # second for scheduling jitter) holds more than 3.
    assert elapsed >= 60 / FAST * 0.95
    assert server.count_in_window(60 / FAST - 1.0) <= 3


async def test_calls_through_per_host_clients_are_counted(sessions, tmp_path: Path) -> None:
    with FakeJsonApi("/v1/x", [{"t": NOW - 60, "v": 1}]) as api:
        (tmp_path / "feeds.yaml").write_text(
            f"feeds:\n  mine: {{source: http_json, url: '{api.url}/v1/x', time: t, values: {{v: v}}}}\n"
        )
        service = FeedService(
            load_feeds(tmp_path), sessions, root=tmp_path, clock=lambda: NOW * 1_000_000_000
        )
        assert service.calls_used("http_json") is None
        await service.refresh("mine")
        await service.refresh("mine")
        assert service.calls_used("http_json") == (2, 30.0)
        await service.aclose()
    async with sessions() as session:
        health = {h.source: h for h in await read_health(session)}
    assert health["http_json"].calls == 2
