"""The Recorder: follows pairs for the live-only feeds, writes them continuously, starts and stops
cleanly, keeps going (with growing pauses) while a source fails."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd
import pytest

from engine.config._feeds import load_feeds
from engine.feeds.recorder import Recorder, live_feeds
from engine.feeds.service import FeedService
from engine.feeds.store import read_series
from engine.store import create_engine_for, session_factory, upgrade_async
from tests.fakes.binance_market import FakeMarket, walk_candles
from tests.fakes.binance_server import FakeBinance

T0_MS = int(pd.Timestamp("2024-01-02", tz="UTC").value // 1_000_000)
MIN = 60_000
SCOPE = "binance:ETH/BTC"
FEEDS = """\
feeds:
  book: {source: orderbook}
  flow: {source: trades}
  px: {source: exchange, pair: ETH/BTC}
"""


class FakeTime:
    """The recorder's clock and sleep, moving the fake exchange's clock: minutes pass in milliseconds."""

    def __init__(self, server: FakeBinance):
        self.server = server
        self.slept: list[float] = []

    def time(self) -> float:
        return self.server.clock() / 1000

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.server.now_ms = self.server.clock() + int(seconds * 1000)
        await asyncio.sleep(0.02)


@pytest.fixture
async def sessions(tmp_path: Path):
    engine = create_engine_for(f"sqlite+aiosqlite:///{tmp_path / 'engine.db'}")
    await upgrade_async(engine)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
def server():
    candles = walk_candles("2024-01-01", "2024-01-03", start_price=0.05)
    with FakeBinance([FakeMarket.spot("ETH/BTC", candles)], now_ms=T0_MS + 30_000) as fake:
        fake.book.set_book("ETH/BTC", bids=[("0.0500", "2")], asks=[("0.0502", "1")])
        for i in range(40):
            fake.book.add_trade("ETH/BTC", T0_MS + i * 15_000, "0.05", "1", buyer_maker=i % 2 == 0)
        yield fake


def make_service(tmp_path: Path, sessions, server: FakeBinance, url: str | None = None) -> FeedService:
    (tmp_path / "feeds.yaml").write_text(FEEDS)
    url = url or server.url
    return FeedService(
        load_feeds(tmp_path),
        sessions,
        root=tmp_path,
        base_urls={"orderbook": url, "trades": url},
        clock=lambda: server.clock() * 1_000_000,
        retries=0,
    )


async def wait_for(condition, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def test_the_recorder_writes_books_and_trades_until_stopped(tmp_path: Path, sessions, server) -> None:
    service = make_service(tmp_path, sessions, server)
    clock = FakeTime(server)
    seen: list = []
    recorder = Recorder(
        service, scopes=(SCOPE,), on_observations=seen.extend, clock=clock.time, sleep=clock.sleep
    )
    assert recorder.feeds == live_feeds(service) == ("book", "flow")  # px has history: not recorded
    try:
        await recorder.start()
        await recorder.start()  # idempotent
        assert recorder.running
        await wait_for(lambda: all(s.rounds >= 3 for s in recorder.stats.values()))
    finally:
        await recorder.stop()
        await recorder.stop()
    assert not recorder.running
    requests = len(server.requests)
    await asyncio.sleep(0.2)
    assert len(server.requests) == requests  # nothing runs after stop()
    async with sessions() as session:
        book = await read_series(session, f"book.imbalance@{SCOPE}")
        trades = await read_series(session, f"flow.trade_count@{SCOPE}")
    assert len(book) >= 3 and book.value.tolist() == [pytest.approx(1 / 3)] * len(book)
    # Every stored bucket of the first ten minutes holds four trades (one each 15 s).
    early = [v for v, e in zip(trades.value, trades.event_time, strict=True) if e < (T0_MS + 10 * MIN) * 1e6]
    assert len(trades) >= 2 and early and set(early) == {4.0}
    assert {o.series.split(".")[0] for o in seen} == {"book", "flow"}
    await service.aclose()


async def test_rounds_are_aligned_to_the_refresh_and_pause_longer_after_failures(
    tmp_path: Path, sessions, server
) -> None:
    service = make_service(tmp_path, sessions, server, url="http://127.0.0.1:9")
    clock = FakeTime(server)
    recorder = Recorder(service, feeds=("book",), scopes=(SCOPE,), clock=clock.time, sleep=clock.sleep)
    server.now_ms = T0_MS + 30_000
    assert recorder.delay("book") == pytest.approx(30 + 2)  # the next minute, plus 2 s to settle
    try:
        await recorder.start()
        await wait_for(lambda: recorder.stats["book"].failures >= 3)
        assert recorder.running  # a failing source never stops the recorder
    finally:
        await recorder.stop()
    stats = recorder.stats["book"]
    assert "Unreachable" in (stats.last_error or "") or "orderbook" in (stats.last_error or "")
    # Pauses: 1, 2, 4 ... refreshes after 1, 2, 3 failures (on top of the wait for the grid).
    server.now_ms = T0_MS  # on the grid
    stats.failures = 3
    assert recorder.delay("book") == pytest.approx(60 + 2 + 60 * 4)
    stats.failures = 30
    assert recorder.delay("book") == pytest.approx(60 + 2 + 600)
    await service.aclose()


async def test_followed_pairs_change_while_recording(tmp_path: Path, sessions, server) -> None:
    server.market_data.add(FakeMarket.spot("BNB/BTC", walk_candles("2024-01-01", "2024-01-03", seed=2)))
    server.book.set_book("BNB/BTC", bids=[("0.0100", "5")], asks=[("0.0101", "5")])
    service = make_service(tmp_path, sessions, server)
    recorder = Recorder(service, feeds=("book",))
    with pytest.raises(KeyError, match="nope"):
        Recorder(service, feeds=("nope",))
    recorder.follow((SCOPE, "binance:BNB/BTC", SCOPE))
    assert recorder.scopes == (SCOPE, "binance:BNB/BTC")
    result = await recorder.run_once("book")
    assert {o.series.split("@")[1] for o in result.observations} == {SCOPE, "binance:BNB/BTC"}
    recorder.unfollow((SCOPE,))
    result = await recorder.run_once("book")
    assert {o.series.split("@")[1] for o in result.observations} == {"binance:BNB/BTC"}
    assert recorder.stats["book"].rounds == 2 and recorder.stats["book"].failures == 0
    await service.aclose()


async def test_stop_lets_a_round_in_progress_finish_its_write(tmp_path: Path, sessions, server) -> None:
    service = make_service(tmp_path, sessions, server)
    clock = FakeTime(server)
    recorder = Recorder(service, feeds=("book",), scopes=(SCOPE,), clock=clock.time, sleep=clock.sleep)
    server.faults.add("/api/v3/depth", delay=0.5)  # the first snapshot is slow to come
    await recorder.start()
    await wait_for(lambda: "book" in recorder._busy)
    await recorder.stop()
    assert not recorder.running and recorder.stats["book"].rounds == 1
    async with sessions() as session, session.begin():  # the write lock is free
        assert len(await read_series(session, f"book.mid@{SCOPE}")) == 1
    # Stopped while waiting for the next round: at once.
    await recorder.start()
    await wait_for(lambda: recorder.stats["book"].rounds >= 2)
    await recorder.stop(grace_s=0.1)
    assert not recorder.running
    await service.aclose()
