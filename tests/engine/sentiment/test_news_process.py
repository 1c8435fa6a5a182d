"""News in a process of its own (engine run's way): the rounds happen there, the bots' reader is extended
from what it stored, its writes wait for the runtime's write lock, its keys never reach its command line
or environment, and a process that dies is replaced at the next round."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.feeds.store import SeriesReader
from engine.sentiment.live import news_scheduler_for
from engine.sentiment.news_process import NewsProcess, NewsProcessError, shareable_url
from engine.store import session_factory
from engine.store.models import NewsItem as NewsRow
from tests.engine.sentiment.news_fakes import cc_news, news_server
from tests.fakes.json_service import JsonService


def _project(root: Path, base_url: str, key: str | None = None) -> None:
    source = f"  - kind: cryptocompare\n    base_url: {base_url}\n"
    if key:
        source += f"    key: {key}\n"
    (root / "sentiment.yaml").write_text(f"default_feeds: false\nrefresh: 1s\nsources:\n{source}")


async def _stored(sessions) -> int:  # type: ignore[no-untyped-def]
    async with sessions() as db:
        return int(await db.scalar(select(func.count()).select_from(NewsRow)) or 0)


async def test_a_round_in_the_news_process_extends_the_reader_and_waits_for_the_write_lock(
    sessions, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    with news_server() as server:
        _project(tmp_path, server.url)
        reader, lock = SeriesReader(), asyncio.Lock()
        waited: list[bool] = []

        async def orders_written() -> None:  # the runtime's committer: a close's order intents go first
            waited.append(scheduler.pipeline._holding)

        scheduler = news_scheduler_for(
            tmp_path, sessions, reader, lock, own_process=True, orders_written=orders_written
        )
        assert scheduler is not None and isinstance(scheduler.pipeline, NewsProcess)
        try:
            async with lock:  # a candle's orders are being written: news must wait
                round_ = asyncio.create_task(scheduler.pipeline.ingest())
                for _ in range(600):  # the process starts, fetches and asks for the lock
                    if scheduler.pipeline._holding or len(server.requests):
                        break
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.5)
                assert server.requests, "the process fetched"
                assert not round_.done() and await _stored(sessions) == 0, "nothing written without the lock"
            report = await asyncio.wait_for(round_, 60)
            assert report.added == 4 and report.fetched == {"cryptocompare": 5}
            assert await _stored(sessions) == 4
            # What it stored reached the reader through the pipe, before the store follower would.
            assert len(reader.series("news.btc.item")) == 2 and len(reader.series("events.all.hack")) == 1
            assert not lock.locked()
            assert waited and not any(waited)  # asked before the write lock was taken for news
            again = await asyncio.wait_for(scheduler.pipeline.ingest(), 60)
            assert again.added == 0 and scheduler.pipeline.started == 1  # one process, rounds on request
        finally:
            await scheduler.stop()
        assert scheduler.pipeline.process is None


async def test_a_news_process_that_dies_fails_its_round_and_is_replaced(sessions, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    slow = threading.Event()

    def slow_news(query: object) -> tuple[int, dict[str, str], object]:
        if slow.is_set():
            time.sleep(3)
        return 200, {}, cc_news()

    with JsonService({"/data/v2/news/": slow_news}) as server:
        _project(tmp_path, server.url)
        news = NewsProcess(tmp_path, shareable_url(sessions) or "", write_lock=asyncio.Lock())
        try:
            await asyncio.wait_for(news.ingest(), 60)
            assert news.process is not None
            news.process.kill()
            await news.process.wait()
            await asyncio.sleep(0.1)
            report = await asyncio.wait_for(news.ingest(), 60)  # a new process
            assert news.started == 2 and report.fetched == {"cryptocompare": 5}
            assert not news.write_lock.locked()  # type: ignore[union-attr]
            # Killed in the middle of a round (its fetch held up by a slow server): the round fails
            # and says so, and the lock is not left held.
            slow.set()
            calls = len(server.requests)
            round_ = asyncio.create_task(news.ingest())
            while len(server.requests) == calls:
                await asyncio.sleep(0.05)
            assert news.process is not None
            news.process.kill()
            with pytest.raises(NewsProcessError, match="exited"):
                await asyncio.wait_for(round_, 60)
            assert not news.write_lock.locked()  # type: ignore[union-attr]
        finally:
            await news.aclose()


async def test_keys_reach_the_news_process_on_its_input_only(sessions, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    key = "cc-stored-KEY-0987654321"
    with news_server() as server:
        _project(tmp_path, server.url, "store:cc")
        scheduler = news_scheduler_for(
            tmp_path, sessions, SeriesReader(), asyncio.Lock(), {"cc": key}, own_process=True
        )
        assert scheduler is not None
        try:
            await asyncio.wait_for(scheduler.pipeline.ingest(), 60)
            pid = scheduler.pipeline.process.pid
            for name in ("cmdline", "environ"):
                assert key.encode() not in Path(f"/proc/{pid}/{name}").read_bytes()
        finally:
            await scheduler.stop()
    assert server.requests[0].headers.get("authorization") == f"Apikey {key}"


async def test_a_key_that_does_not_resolve_is_reported_once_not_each_round(
    sessions, tmp_path: Path, caplog
) -> None:  # type: ignore[no-untyped-def]
    os.environ.pop("ENGINE_TEST_NO_SUCH_KEY", None)
    _project(tmp_path, "http://127.0.0.1:9", "env:ENGINE_TEST_NO_SUCH_KEY")
    assert news_scheduler_for(tmp_path, sessions, SeriesReader(), None, own_process=True) is None
    assert "news is not fetched" in caplog.text and "ENGINE_TEST_NO_SUCH_KEY" in caplog.text


def test_an_in_memory_database_keeps_news_on_the_loop() -> None:
    assert shareable_url(session_factory("sqlite+aiosqlite://")) is None
    assert shareable_url(session_factory("sqlite+aiosqlite:////tmp/x.db")) == "sqlite+aiosqlite:////tmp/x.db"
