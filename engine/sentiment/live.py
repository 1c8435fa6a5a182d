"""News inside ``engine run``: while at least one bot's rules read ``sentiment.*``, ``news.*`` or
``events.*``, the project's sources are fetched every ``interval`` and what is stored extends the
runtime's shared series reader, so live bots see news through the same join as a backtest.

Started only on live market data (never on a replay, which reads what the store recorded) and only when
the project has a ``sentiment.yaml`` (no file: no network calls a user did not ask for). Writes take
the runtime's SQLite write lock; a failing fetch is logged and retried at the next interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from engine.feeds.context import uses_external_series

__all__ = ["NAMESPACES", "NewsScheduler", "news_scheduler_for", "reads_news", "seconds_to_half_minute"]

log = logging.getLogger("engine.sentiment")
NAMESPACES = frozenset({"sentiment", "news", "events"})
DEFAULT_INTERVAL_S = 300.0


def seconds_to_half_minute(now_s: float) -> float:
    """Seconds from ``now_s`` (epoch) to the next hh:mm:30."""
    return (30.0 - now_s % 60.0) % 60.0


def reads_news(plan: object) -> bool:
    """Whether a compiled plan reads one of the news namespaces."""
    if not uses_external_series(plan):
        return False
    return any(node.op == "feed" and node.args[0] in NAMESPACES for node in plan.nodes)  # type: ignore[attr-defined]


class NewsScheduler:
    """Fetches every source each ``interval`` seconds while any bot follows news."""

    def __init__(self, pipeline: Any, interval: float = DEFAULT_INTERVAL_S):
        self.pipeline = pipeline
        self.interval = interval
        self.followers: set[str] = set()
        self.task: asyncio.Task[None] | None = None
        self.rounds = 0

    def follow(self, bot: str, reads: bool) -> None:
        if reads:
            self.followers.add(bot)
        else:
            self.followers.discard(bot)
        if self.followers and self.task is None:
            self.task = asyncio.create_task(self.run(), name="engine:news")
        elif not self.followers and self.task is not None:
            self.task.cancel()
            self.task = None

    async def run(self) -> None:
        while True:
            if self.interval >= 60:
                # Candles close on the minute: fetching and writing at the half minute keeps the news'
                # database writes (the SQLite write lock, the commit's fsync) away from the closes.
                await asyncio.sleep(seconds_to_half_minute(time.time()))
            try:
                report = await self.pipeline.ingest()
                self.rounds += 1
                for source, error in report.errors.items():
                    log.warning("news source %s failed: %s", source, error)
            except asyncio.CancelledError:
                raise
            except Exception:  # news never stops the engine
                log.exception("news ingestion failed")
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None
        await self.pipeline.aclose()


def news_scheduler_for(
    root: Path,
    factory: Any,
    reader: Any,
    write_lock: asyncio.Lock | None,
    store_secrets: Mapping[str, str] | None = None,
    *,
    own_process: bool = False,
    orders_written: Callable[[], Awaitable[None]] | None = None,
) -> NewsScheduler | None:
    """The scheduler of the project at ``root``, or None without a valid ``sentiment.yaml``;
    ``store_secrets``: the key store's plaintexts, for ``store:NAME`` keys. ``own_process``: the work
    runs in a process of its own (engine/sentiment/news_child.py), as ``engine run`` does whenever its
    database can be opened by another process; otherwise on this event loop."""
    from dsl import DiagnosticError
    from engine.sentiment.config import SENTIMENT_FILE, load_sentiment_config
    from engine.sentiment.news_process import NewsProcess, shareable_url
    from engine.sentiment.pipeline import NewsPipeline

    if not (root / SENTIMENT_FILE).is_file():
        return None
    url = shareable_url(factory) if own_process else None
    on_observations = reader.extend if reader else None
    try:
        config = load_sentiment_config(root)
        pipeline: Any
        if url is not None:
            _check_keys(config, store_secrets or {})  # here, once, rather than a failing child each round
            pipeline = NewsProcess(
                root,
                url,
                write_lock=write_lock,
                on_observations=on_observations,
                store_secrets=store_secrets,
                orders_written=orders_written,
            )
        else:
            pipeline = NewsPipeline(
                config,
                factory,
                root=root,
                write_lock=write_lock,
                on_observations=on_observations,
                store_secrets=store_secrets,
            )
    except DiagnosticError as exc:
        log.error("sentiment.yaml: news is not fetched: %s", exc.diagnostics[0].headline())
        return None
    return NewsScheduler(pipeline, float(config.seconds("refresh")))


def _check_keys(config: Any, store_secrets: Mapping[str, str]) -> None:
    """Every key the sources and the model name resolves (DiagnosticError otherwise), as building the
    pipeline would check them."""
    import os

    from engine.config._secrets import resolve_secret

    for source in config.sources:
        if source.key:
            resolve_secret(source.key, environ=os.environ, store=store_secrets, what=f"the {source.kind} key")
    if config.model.enabled:
        resolve_secret(config.model.key, environ=os.environ, store=store_secrets, what="the model API key")
