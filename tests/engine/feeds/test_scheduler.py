"""The runtime's feed scheduler: feeds refresh on their schedules into the shared reader, and feeds
sharing a service never exceed its rate limit (the fake server counts)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from engine.config._feeds import load_feeds
from engine.feeds.service import FeedService
from engine.feeds.store import SeriesReader
from engine.runtime.feed_refresh import FeedScheduler
from engine.store import create_engine_for, session_factory, upgrade_async
from tests.engine.feeds.test_fear_greed_service import fng_days, fng_route
from tests.fakes.json_service import JsonService


@pytest.fixture
async def sessions(tmp_path: Path):
    engine = create_engine_for(f"sqlite+aiosqlite:///{tmp_path / 'engine.db'}")
    await upgrade_async(engine)
    yield session_factory(engine)
    await engine.dispose()


async def test_refreshes_reach_the_reader_and_a_shared_limit_holds(sessions, tmp_path: Path) -> None:
    with JsonService({"/fng/": fng_route(fng_days(3))}) as server:
        (tmp_path / "feeds.yaml").write_text(
            f"services:\n  fear_greed: {{base_url: '{server.url}', calls_per_minute: 4}}\nfeeds:\n"
            + "".join(f"  mood{i}: {{source: fear_greed, refresh: 1s}}\n" for i in range(3))
        )
        service = FeedService(load_feeds(tmp_path), sessions, root=tmp_path, retries=0)
        reader = SeriesReader()
        scheduler = FeedScheduler(service, reader, tick=0.05)
        scheduler.follow("bot-a", {"mood0": set(), "mood1": set()})
        scheduler.follow("bot-b", {"mood1": set(), "mood2": set()})
        task = asyncio.create_task(scheduler.run())
        await asyncio.sleep(3.0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await service.aclose()
    # Three feeds wanting a call a second, one service allowing 4 a minute: exactly 4 reached it.
    assert len(server.requests) == 4
    assert scheduler.refreshes == 4
    assert sum(len(reader.series(f"mood{i}.value")) for i in range(3)) >= 3
    # The last bot following a feed stops it.
    scheduler.unfollow("bot-a")
    assert set(scheduler.followed) == {"mood1", "mood2"}
