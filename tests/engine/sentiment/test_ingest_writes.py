"""Ingestion keeps off the database writer when it has nothing to write, as feed refreshes do: what is
stored is found by reading, the runtime's write lock is taken (and a write transaction opened) only for
a batch that adds a story or gives a stored one a new outlet or coin, and scoring and deduplication run
in a worker thread, not on the event loop the bots share."""

from __future__ import annotations

import asyncio
import threading

from sqlalchemy import event, select

from engine.feeds.store import read_series
from engine.sentiment.config import SentimentConfig
from engine.sentiment.items import NewsItem
from engine.sentiment.pipeline import NewsPipeline
from engine.store.models import NewsItem as NewsRow

NS = 1_000_000_000
T0 = 1_767_225_600 * NS  # 2026-01-01
WRITES = ("INSERT", "UPDATE", "DELETE")


class CountingLock(asyncio.Lock):
    """The runtime's write lock, counting how often it was taken."""

    def __init__(self) -> None:
        super().__init__()
        self.taken = 0

    async def acquire(self) -> bool:
        self.taken += 1
        return await super().acquire()


def statements(sessions) -> list[str]:  # type: ignore[no-untyped-def]
    """Every SQL statement the pipeline's engine runs from now on (first word, upper case)."""
    seen: list[str] = []
    engine = sessions.kw["bind"].sync_engine

    @event.listens_for(engine, "before_cursor_execute")
    def _record(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement.lstrip().split(None, 1)[0].upper())

    return seen


def item(title: str, url: str, minutes: int, source: str = "coindesk.com", **kw) -> NewsItem:
    return NewsItem(source, "rss", url, title, T0 + minutes * 60 * NS, **kw)


BATCH = [
    item("Bitcoin ETF approval sends BTC to record highs", "https://coindesk.com/etf", 0),
    item("Ethereum bridge hacked, attackers drain $100M in an exploit", "https://coindesk.com/hack", 5),
    item("Solana outage halts the network for hours", "https://coindesk.com/sol", 10),
]


async def test_a_refetch_with_nothing_new_takes_no_write_lock_and_writes_nothing(sessions) -> None:
    lock = CountingLock()
    seen_by_reader: list[int] = []
    news = NewsPipeline(
        SentimentConfig(default_feeds=False),
        sessions,
        write_lock=lock,
        on_observations=lambda obs: seen_by_reader.append(len(obs)),
    )
    sql = statements(sessions)
    try:
        assert await news.store([], T0) == [] and sql == [] and lock.taken == 0  # nothing at all
        first = await news.store(BATCH, T0 + 11 * 60 * NS)
        assert len(first) == 3 and lock.taken == 1 and any(s in WRITES for s in sql)
        assert seen_by_reader and seen_by_reader[0] > 0

        sql.clear()
        again = await news.store(BATCH, T0 + 16 * 60 * NS)  # the next refresh: the same items
        assert again == [] and lock.taken == 1
        assert not [s for s in sql if s in WRITES], sql
        assert len(seen_by_reader) == 1  # nothing new for the bots' reader either

        # A fresh pipeline (a restart: empty index) finds them stored by reading, too.
        restarted = NewsPipeline(SentimentConfig(default_feeds=False), sessions, write_lock=lock)
        sql.clear()
        assert await restarted.store(BATCH, T0 + 21 * 60 * NS) == [] and lock.taken == 1
        assert not [s for s in sql if s in WRITES], sql
        await restarted.aclose()

        # Another outlet's copy of a stored story: one write (its outlet), no new row.
        sql.clear()
        copy = item("Solana outage halts network for hours", "https://decrypt.co/sol", 12, "decrypt.co")
        assert await news.store([copy], T0 + 26 * 60 * NS) == [] and lock.taken == 2
        assert [s for s in sql if s in WRITES] == ["UPDATE"]
        # One new item among known ones: written, with its observations.
        new = item("Ethereum rally: ETH surges to new highs as bulls return", "https://coindesk.com/eth", 20)
        added = await news.store([*BATCH, new], T0 + 31 * 60 * NS)
        assert [r.title for r in added] == [new.title] and lock.taken == 3
    finally:
        await news.aclose()
    async with sessions() as session:
        rows = {r.title: r for r in (await session.execute(select(NewsRow))).scalars()}
        everything = await read_series(session, "news.all.item")
    assert len(rows) == 4 and rows["Solana outage halts the network for hours"].also_from == ["decrypt.co"]
    assert len(everything) == 4  # one observation per stored item, none twice


async def test_scoring_and_dedup_run_off_the_event_loop(sessions) -> None:
    news = NewsPipeline(SentimentConfig(default_feeds=False), sessions)
    loop_thread = threading.get_ident()
    threads: set[int] = set()
    score = news.scorer.score

    def spy(*args, **kw):  # type: ignore[no-untyped-def]
        threads.add(threading.get_ident())
        return score(*args, **kw)

    news.scorer.score = spy  # type: ignore[method-assign]
    try:
        assert len(await news.store(BATCH, T0 + 11 * 60 * NS)) == 3
    finally:
        await news.aclose()
    assert threads and loop_thread not in threads
