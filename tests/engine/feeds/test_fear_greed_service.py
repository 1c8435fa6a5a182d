"""The Fear & Greed source through a local server speaking alternative.me's wire format, driven by the
FeedService: backfill, resume, faults, health and events, and keys that never leak."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.config._feeds import load_feeds
from engine.feeds.service import FeedService
from engine.feeds.store import read_health, read_series
from engine.store import create_engine_for, session_factory, upgrade_async
from engine.store.models import Event
from tests.fakes.json_service import JsonService

DAY = 86_400
START = 1_704_067_200  # 2024-01-01


def fng_days(count: int) -> list[dict[str, str]]:
    # Newest first, values as strings, as the service sends them.
    return [
        {"value": str(20 + i % 60), "value_classification": "Fear", "timestamp": str(START + i * DAY)}
        for i in reversed(range(count))
    ]


def fng_route(days: list[dict[str, str]]):
    def route(query: dict[str, str]):
        limit = int(query.get("limit", "1"))
        rows = days if limit == 0 else days[:limit]
        return 200, {}, {"name": "Fear and Greed Index", "data": rows, "metadata": {"error": None}}

    return route


@pytest.fixture
async def sessions(tmp_path: Path):
    engine = create_engine_for(f"sqlite+aiosqlite:///{tmp_path / 'engine.db'}")
    await upgrade_async(engine)
    yield session_factory(engine)
    await engine.dispose()


def service_for(url: str, sessions, tmp_path: Path, clock_s: int, **kw) -> FeedService:
    feeds = load_feeds(tmp_path)
    return FeedService(
        feeds,
        sessions,
        root=tmp_path,
        base_urls={"fear_greed": url},
        clock=lambda: clock_s * 1_000_000_000,
        retries=kw.pop("retries", 1),
        backoff=0.01,
        **kw,
    )


async def test_backfill_then_resume_asks_only_for_what_is_missing(sessions, tmp_path: Path) -> None:
    days = fng_days(30)
    with JsonService({"/fng/": fng_route(days)}) as server:
        service = service_for(server.url, sessions, tmp_path, START + 30 * DAY)
        first = await service.refresh("fear_greed", backfill=True)
        assert first.added == 30 and first.used == ["fear_greed"]
        assert server.requests[0].query == {"limit": "0", "format": "json"}
        # A restart: a new service on the same store fetches a short window and stores nothing twice.
        again = service_for(server.url, sessions, tmp_path, START + 31 * DAY)
        second = await again.refresh("fear_greed")
        assert second.added == 0
        assert int(server.requests[1].query["limit"]) <= 4
        await service.aclose()
        await again.aclose()
    async with sessions() as session:
        series = await read_series(session, "fear_greed.value")
    assert len(series) == 30
    # Published at 00:00 UTC of its day, counted from 00:10 (the feed's lag).
    assert int(series.available_at[0] - series.event_time[0]) == 600 * 1_000_000_000


async def test_faults_mark_the_source_and_it_recovers_by_itself(sessions, tmp_path: Path) -> None:
    days = fng_days(3)
    with JsonService({"/fng/": fng_route(days)}) as server:
        service = service_for(server.url, sessions, tmp_path, START + 3 * DAY, retries=0)
        # Each fault shape, one after the other: nothing is stored, nothing raises.
        faults = [
            (500, "upstream exploded", {}),
            (429, "slow down", {}),
            (418, "banned", {"Retry-After": "0"}),
            (200, '{"data": [', {}),
            (200, "<html>maintenance</html>", {}),
            (200, '{"name": "x", "data": null}', {}),
            (200, '{"data": [], "metadata": {"error": "Invalid limit"}}', {}),
        ]
        for status, body, headers in faults:
            server.fail("/fng/", status, body, headers)
            result = await service.refresh("fear_greed")
            assert result.added == 0 and result.missing == ("value",) and "fear_greed" in result.errors
            service.source("fear_greed").http.limiter.blocked_until = 0  # 418 blocks the limiter
        # Schema drift in single rows: strings that are not numbers, nulls, missing keys are skipped.
        server.fail(
            "/fng/",
            200,
            {
                "data": [
                    {"value": "abc", "timestamp": str(START)},
                    {"value": None},
                    {"timestamp": "1"},
                    days[0],
                ]
            },
        )
        drift = await service.refresh("fear_greed")
        assert drift.added == 1
        recovered = await service.refresh("fear_greed")
        assert recovered.ok
        await service.aclose()
    async with sessions() as session:
        health = {h.source: h for h in await read_health(session)}
        events = (await session.scalars(select(Event).order_by(Event.id))).all()
    assert health["fear_greed"].state == "ok" and health["fear_greed"].failures == len(faults)
    kinds = [e.kind for e in events]
    assert kinds[0] == "feed_degraded" and "feed_ok" in kinds
    assert "HTTP 500" in events[0].message


async def test_a_429_with_retry_after_is_waited_out(sessions, tmp_path: Path) -> None:
    with JsonService({"/fng/": fng_route(fng_days(2))}) as server:
        service = service_for(server.url, sessions, tmp_path, START + 2 * DAY, retries=2)
        server.fail("/fng/", 429, "", {"Retry-After": "1"})
        result = await service.refresh("fear_greed")
        assert result.added == 2
        gap = server.requests[1].time - server.requests[0].time
        assert gap >= 0.95
        await service.aclose()


async def test_connection_refused_and_down_after_is_an_error_event(sessions, tmp_path: Path) -> None:
    """Down longer than alerts.down_after: one error event, which the runtime's alerts notify."""
    (tmp_path / "feeds.yaml").write_text("alerts: {down_after: 1s}\n")
    service = service_for("http://127.0.0.1:9", sessions, tmp_path, START)
    first = await service.refresh("fear_greed")
    assert "fear_greed" in first.errors
    import asyncio

    await asyncio.sleep(1.1)
    await service.refresh("fear_greed")
    await service.refresh("fear_greed")
    await service.aclose()
    async with sessions() as session:
        events = (await session.scalars(select(Event).order_by(Event.id))).all()
    assert [(e.category, e.kind) for e in events] == [("system", "feed_degraded"), ("error", "feed_down")]


async def test_keys_never_reach_logs_or_errors(sessions, tmp_path: Path) -> None:
    from engine.observability import setup_logging

    (tmp_path / "feeds.yaml").write_text("services:\n  fear_greed: {key: env:FNG_SECRET}\n")
    secret = "sk-very-secret-123"
    installed = setup_logging(tmp_path / "logs", mode="paper", console="none", level=logging.DEBUG)
    try:
        with JsonService({}) as server:
            service = FeedService(
                load_feeds(tmp_path),
                sessions,
                root=tmp_path,
                base_urls={"fear_greed": server.url},
                environ={"FNG_SECRET": secret},
                retries=0,
            )
            http = service.source("fear_greed").http
            server.fail(f"/{secret}", 500, f"echo {secret}")
            with pytest.raises(Exception) as raised:
                await http.get_json(f"/{secret}", {"api_key": secret})
            assert secret not in str(raised.value)
            await service.aclose()
    finally:
        installed.flush()
        installed.close()
    written = "".join(p.read_text() for p in (tmp_path / "logs").glob("*.jsonl"))
    assert "feed call" in written and secret not in written


async def test_a_member_never_stored_does_not_force_a_full_backfill(sessions, tmp_path: Path) -> None:
    """A feed with a member nobody provides (a keyed member without its key) resumes from the others."""
    from engine.feeds.observations import Observation
    from engine.feeds.store import write_observations

    service = service_for("http://127.0.0.1:9", sessions, tmp_path, START + 40 * DAY)
    btc = service.feeds.feeds["btc"]
    stamp = (START + 30 * DAY) * 1_000_000_000
    async with sessions() as session, session.begin():
        await write_observations(session, [Observation("btc.price", stamp, stamp, 1.0, "t")])
    assert await service._since(btc, list(btc.members), ()) == stamp
    await service.aclose()


async def test_a_url_keeps_its_own_query_beside_the_parameters() -> None:
    from engine.feeds.http import FeedHttpClient

    with JsonService({"/q": lambda q: (200, {}, q)}) as server:
        client = FeedHttpClient("t", server.url, per_minute=60, retries=0)
        assert await client.get_json(f"{server.url}/q?a=1") == {"a": "1"}
        assert await client.get_json(f"{server.url}/q?a=1", {"b": 2}) == {"a": "1", "b": "2"}
        await client.aclose()
