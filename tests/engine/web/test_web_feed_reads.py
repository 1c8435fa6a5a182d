"""The web app's incremental read of the feed store's aggregates gives exactly what a full read gives
(``list_series`` and ``stored_sources``), after rows, new series and new sources are added, after a
resync, and per database."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.feeds.observations import NS_PER_SECOND, Observation
from engine.feeds.store import list_series, stored_sources, write_observations
from engine.store import create_engine_for, session_factory, upgrade_async
from engine.web import feed_reads
from engine.web.feed_reads import RESYNC_S, stored_series

T0 = 1_704_067_200 * NS_PER_SECOND
MINUTE = 60 * NS_PER_SECOND


def obs(series: str, minute: int, source: str = "coingecko", value: float = 1.0) -> Observation:
    return Observation(series, T0 + minute * MINUTE, T0 + (minute + 1) * MINUTE, value, source)


@pytest.fixture
async def sessions(tmp_path: Path):
    engine = create_engine_for(f"sqlite:///{tmp_path / 'engine.db'}")
    await upgrade_async(engine)
    yield session_factory(engine)
    await engine.dispose()


async def _write(sessions, observations: list[Observation]) -> None:
    async with sessions() as db, db.begin():
        await write_observations(db, observations)


async def _both(sessions, now: float) -> tuple[object, object]:
    async with sessions() as db:
        kept = await stored_series(db, now=now)
        full = (await list_series(db), await stored_sources(db))
    return kept, (sorted(full[0]), full[1])


async def test_kept_aggregates_equal_a_full_read_as_rows_arrive(sessions, monkeypatch) -> None:
    reads: list[object] = []
    aggregate = feed_reads._aggregate

    async def counted(db, where):  # type: ignore[no-untyped-def]
        reads.append(str(where))
        return await aggregate(db, where)

    monkeypatch.setattr(feed_reads, "_aggregate", counted)
    assert await _both(sessions, 0.0) == (([], {}), ([], {}))
    await _write(sessions, [obs("btc.price", m) for m in range(100)])
    kept, full = await _both(sessions, 1.0)
    assert kept == full and full[0] == [("btc.price", 100, T0, T0 + 100 * MINUTE)]
    # Older and newer rows of a known series, a second source for it, and a new series.
    await _write(sessions, [obs("btc.price", -5, "cryptocompare"), obs("btc.price", 200, value=2.0)])
    await _write(sessions, [obs("spx.close", m, "generated") for m in range(3)])
    kept, full = await _both(sessions, 2.0)
    assert kept == full
    assert full[1] == {"btc.price": {"coingecko", "cryptocompare"}, "spx.close": {"generated"}}
    # Nothing new: no aggregate query at all; the same answer.
    before = len(reads)
    assert (await _both(sessions, 3.0))[0] == full
    assert len(reads) == before
    # A re-fetch of stored values adds no row and changes nothing.
    await _write(sessions, [obs("btc.price", m) for m in range(10)])
    assert (await _both(sessions, 4.0))[0] == full
    assert "feed_observations.id > " in reads[2]  # the second and later reads were incremental
    # After RESYNC_S the whole table is read again.
    await _write(sessions, [obs("eth.price", 1)])
    kept, full = await _both(sessions, 4.0 + RESYNC_S + 1)
    assert kept == full and "feed_observations.id >" not in reads[-1]


async def test_each_database_keeps_its_own_aggregates(tmp_path: Path) -> None:
    answers = []
    for name in ("one", "two"):
        engine = create_engine_for(f"sqlite:///{tmp_path / name}.db")
        await upgrade_async(engine)
        sessions = session_factory(engine)
        await _write(sessions, [obs(f"{name}.value", 0)])
        async with sessions() as db:
            answers.append(await stored_series(db))
        await engine.dispose()
    assert [a[0][0][0] for a in answers] == ["one.value", "two.value"]
