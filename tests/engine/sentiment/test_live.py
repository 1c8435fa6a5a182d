"""News inside `engine run`: the scheduler fetches while a bot reads news and extends the shared reader."""

from __future__ import annotations

import asyncio
from pathlib import Path

from dsl import Source, compile_expression
from engine.config._project import project_registry
from engine.feeds.store import SeriesReader
from engine.sentiment.live import news_scheduler_for, reads_news, seconds_to_half_minute
from tests.engine.sentiment.news_fakes import news_server


def test_which_plans_read_news(tmp_path: Path) -> None:
    registry = project_registry(tmp_path)
    plan = lambda text: compile_expression(Source(text, "<rule>"), registry, "1h", {})  # noqa: E731
    assert reads_news(plan("sentiment.btc.score > 0"))
    assert reads_news(plan("close > 1 and events.eth.hack_24h == 0"))
    assert not reads_news(plan("rsi(close, 14) < 30"))


async def test_scheduler_fetches_while_followed_and_extends_the_reader(sessions, tmp_path: Path) -> None:
    assert news_scheduler_for(tmp_path, sessions, SeriesReader(), None) is None  # no sentiment.yaml
    with news_server() as server:
        (tmp_path / "sentiment.yaml").write_text(
            "default_feeds: false\nrefresh: 1s\nsources:\n"
            f"  - kind: cryptocompare\n    base_url: {server.url}\n"
        )
        reader = SeriesReader()
        lock = asyncio.Lock()
        scheduler = news_scheduler_for(tmp_path, sessions, reader, lock)
        assert scheduler is not None and scheduler.interval == 1.0
        scheduler.follow("bot-a", False)
        assert scheduler.task is None  # nobody reads news: nothing is fetched
        scheduler.follow("bot-a", True)
        for _ in range(100):
            if scheduler.rounds:
                break
            await asyncio.sleep(0.05)
        assert scheduler.rounds >= 1
        assert len(reader.series("news.btc.item")) == 2 and len(reader.series("events.all.hack")) == 1
        scheduler.follow("bot-a", False)
        assert scheduler.task is None
        calls = len(server.requests)
        await asyncio.sleep(1.2)
        assert len(server.requests) == calls  # stopped with its last follower
        await scheduler.stop()


def test_fetches_wait_for_the_half_minute() -> None:
    assert seconds_to_half_minute(1_700_000_000.0) == 10.0  # hh:mm:20 -> 10 s
    assert seconds_to_half_minute(1_700_000_010.0) == 0.0
    assert seconds_to_half_minute(1_700_000_015.0) == 55.0
