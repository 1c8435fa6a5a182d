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


async def test_a_stored_key_reaches_the_news_source_inside_engine_run(
    sessions, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """`store:NAME` keys of sentiment.yaml (and feeds.yaml) are opened from the encrypted key store by
    engine run's feed start-up; they used to work only in `engine sentiment fetch`."""
    from engine.runtime.feed_refresh import FeedsControl
    from engine.store.models import ApiSecret
    from engine.web.auth.crypto import load_secret_box, mask

    key = "cc-stored-KEY-1234567890"
    monkeypatch.delenv("ENGINE_SECRET_KEY", raising=False)
    monkeypatch.setenv("ENGINE_HOME", str(tmp_path / "home"))
    box = load_secret_box(tmp_path / "home")
    async with sessions() as db, db.begin():
        db.add(ApiSecret(name="cc", kind="exchange", ciphertext=box.encrypt(key), masked=mask(key)))

    class Engine(FeedsControl):  # the runtime's part that starts feeds and news
        factory = sessions

    stored = await Engine()._load_stored_keys()
    assert stored == {"cc": key}
    with news_server() as server:
        (tmp_path / "sentiment.yaml").write_text(
            "default_feeds: false\nrefresh: 1s\nsources:\n"
            f"  - kind: cryptocompare\n    base_url: {server.url}\n    key: store:cc\n"
        )
        scheduler = news_scheduler_for(tmp_path, sessions, SeriesReader(), asyncio.Lock(), stored)
        assert scheduler is not None
        await scheduler.pipeline.ingest()
        await scheduler.stop()
    assert server.requests and server.requests[0].headers.get("authorization") == f"Apikey {key}"
