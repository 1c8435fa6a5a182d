"""Observations another process stores reach a running engine's reader (issue 12: news fetched by
`engine sentiment fetch` beside `engine run` reached the bots only after a restart; feeds the same)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.feeds.observations import Observation
from engine.feeds.store import SeriesReader, read_series, write_observations
from engine.runtime import feed_refresh
from engine.runtime.feed_refresh import FeedsControl
from engine.store import create_engine_for, session_factory, upgrade_async

NS = 1_000_000_000
T0 = 1_767_225_600 * NS  # 2026-01-01
SERIES = "news.eth.item"


@pytest.fixture
async def sessions(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = create_engine_for(f"sqlite+aiosqlite:///{tmp_path / 'engine.db'}")
    await upgrade_async(engine)
    yield session_factory(engine)
    await engine.dispose()


def _obs(minute: int, value: float) -> Observation:
    return Observation(SERIES, T0 + minute * 60 * NS, T0 + minute * 60 * NS + NS, value, "cryptocompare")


async def test_another_process_s_observations_reach_the_running_reader_once(sessions, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(feed_refresh, "STORE_FOLLOW_SECONDS", 0.02)

    async def load(key: str):  # type: ignore[no-untyped-def]
        async with sessions() as session:
            return await read_series(session, key)

    async with sessions() as session, session.begin():
        await write_observations(session, [_obs(0, 1.0)])
    reader = SeriesReader({SERIES: await load(SERIES)})  # what the bots read at start
    engine = SimpleNamespace(factory=sessions, feed_reader=reader, _stop=asyncio.Event())
    follower = asyncio.create_task(FeedsControl._follow_stored_observations(engine))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)

    # Another process stores two items: the running reader has them within the follow interval.
    async with sessions() as session, session.begin():
        await write_observations(session, [_obs(1, 2.0), _obs(2, 3.0)])
    for _ in range(200):
        if len(reader.series(SERIES)) == 3:
            break
        await asyncio.sleep(0.01)
    assert list(reader.series(SERIES).value) == [1.0, 2.0, 3.0]

    # This engine stores one itself and extends the reader at once: the follower does not add it again.
    mine = _obs(3, 4.0)
    async with sessions() as session, session.begin():
        await write_observations(session, [mine])
    reader.extend([mine])
    await asyncio.sleep(0.1)
    reader.extend([mine])  # and a second hand-over of the same row changes nothing
    assert list(reader.series(SERIES).value) == [1.0, 2.0, 3.0, 4.0]

    engine._stop.set()
    await asyncio.wait_for(follower, 5)
