"""External series inside ``engine run``: the reader every bot's rules share, and the scheduler that
refreshes the followed feeds on their schedules.

The reader loads each series from the store on first use and is extended in place with what each
refresh stores, so a live bot reads through the same arrays and the same as-of join as a backtest. The
scheduler runs on the runtime's loop: HTTP is awaited, each refresh is its own task, and writes take the
runtime's SQLite write lock so a feed never holds the database while a candle's orders wait. It never
runs on a replay (a replay reads what the store recorded, like a backtest).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.feeds.context import uses_external_series
from engine.feeds.service import FeedService
from engine.feeds.store import SeriesReader

__all__ = ["FeedScheduler", "FeedsControl", "followed_feeds"]

log = logging.getLogger("engine.feeds")
STORE_FOLLOW_SECONDS = 5.0  # how soon another process's stored observations reach the bots
FOLLOW_BATCH = 5000


def followed_feeds(plan: object, declared: Iterable[str]) -> set[str]:
    """The declared feeds a compiled plan reads."""
    if not uses_external_series(plan):
        return set()
    names = set(declared)
    return {node.args[0] for node in plan.nodes if node.op == "feed" and node.args[0] in names}


@dataclass
class _Followed:
    next_due: float
    scopes: set[str] = field(default_factory=set)
    running: bool = False


class FeedScheduler:
    """Refreshes each followed feed every ``refresh`` seconds (first refresh at once, resuming from the
    store); followers are bots, counted so a feed stops when its last bot stops."""

    def __init__(
        self,
        service: FeedService,
        reader: SeriesReader,
        *,
        clock=time.monotonic,
        tick: float = 1.0,
    ):
        self.service = service
        self.reader = reader
        self.clock = clock
        self.tick = tick
        self._followed: dict[str, _Followed] = {}
        self._by_bot: dict[str, dict[str, set[str]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.refreshes = 0

    def follow(self, bot: str, feeds: dict[str, set[str]]) -> None:
        """Set the feeds (name -> scopes for per-pair feeds) bot ``bot`` reads; replaces its earlier set."""
        self._by_bot[bot] = feeds
        self._rebuild()

    def unfollow(self, bot: str) -> None:
        self._by_bot.pop(bot, None)
        self._rebuild()

    def _rebuild(self) -> None:
        wanted: dict[str, set[str]] = {}
        for feeds in self._by_bot.values():
            for name, scopes in feeds.items():
                wanted.setdefault(name, set()).update(scopes)
        for name in list(self._followed):
            if name not in wanted:
                del self._followed[name]
        now = self.clock()
        for name, scopes in wanted.items():
            entry = self._followed.get(name)
            if entry is None:
                self._followed[name] = _Followed(now, set(scopes))
            elif not scopes <= entry.scopes:
                entry.scopes = set(scopes)
                entry.next_due = now  # a new pair: fetch it now

    @property
    def followed(self) -> dict[str, set[str]]:
        return {name: set(entry.scopes) for name, entry in self._followed.items()}

    async def run(self) -> None:
        try:
            while True:
                now = self.clock()
                for name, entry in list(self._followed.items()):
                    if not entry.running and entry.next_due <= now:
                        entry.running = True
                        task = asyncio.create_task(self._refresh(name, entry), name=f"feed:{name}")
                        self._tasks.add(task)
                        task.add_done_callback(self._tasks.discard)
                await asyncio.sleep(self.tick)
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _refresh(self, name: str, entry: _Followed) -> None:
        feed = self.service.feeds.feeds.get(name)
        try:
            if feed is None:
                return
            result = await self.service.refresh(name, scopes=tuple(sorted(entry.scopes)))
            self.reader.extend(result.new)
            self.refreshes += 1
        except asyncio.CancelledError:
            raise
        except Exception:  # a feed never stops the engine
            log.exception("feed %s refresh failed", name)
        finally:
            entry.running = False
            if feed is not None:
                entry.next_due = self.clock() + feed.refresh_s


class FeedsControl:
    """The runtime's part that owns the feed reader and scheduler (a mixin of ``Runtime``)."""

    config: Any
    factory: Any
    feed: Any
    cache: Any  # BotFileCache
    slots: dict[str, Any]
    control_lock: asyncio.Lock
    _stop: asyncio.Event
    _write_lock: asyncio.Lock | None
    _tasks: list[asyncio.Task[None]]
    _apply_reload: Any
    feed_reader: SeriesReader | None = None
    feed_scheduler: FeedScheduler | None = None
    feed_service: FeedService | None = None
    news_scheduler: Any = None  # engine.sentiment.live.NewsScheduler when sentiment.yaml exists
    stored_keys: dict[str, str] | None = None  # the key store's plaintexts, for store:NAME keys

    def _project_root(self) -> Path:
        from engine.config._project import find_project_root

        return find_project_root(Path(self.config.bots_dir))

    async def _start_feeds(self) -> None:
        """The shared reader always (rules read stored series even on a replay); the scheduler only on
        live market data, with refreshing on, and when the project's feeds.yaml is valid."""
        from engine.config._feeds import load_feeds
        from engine.feeds.store import store_reader
        from engine.runtime.feed import ReplayFeed
        from engine.store.db import given_url

        bind = self.factory.kw.get("bind")
        # With its PostgreSQL options (a schema of its own): the reader opens an engine of its own.
        url = given_url(bind).render_as_string(hide_password=False) if bind is not None else None
        self.feed_reader = store_reader(url)
        if self.config.watch:
            self._tasks.append(asyncio.create_task(self._watch_feeds(), name="engine:watch-feeds"))
        if isinstance(self.feed, ReplayFeed):
            return  # a replay reads what the store recorded, like a backtest: nothing new mid-run
        self._tasks.append(
            asyncio.create_task(self._follow_stored_observations(), name="engine:feeds-follow")
        )
        if not getattr(self.config, "refresh_feeds", True):
            return
        root = self._project_root()
        from engine.sentiment.live import news_scheduler_for

        self.stored_keys = await self._load_stored_keys()
        # News is fetched, parsed, scored and stored in a process of its own: on this loop it moved the
        # candle-close-to-order p99 by milliseconds (docs/sentiment.md, "Inside engine run").
        self.news_scheduler = news_scheduler_for(
            root,
            self.factory,
            self.feed_reader,
            self._write_lock,
            self.stored_keys,
            own_process=True,
            orders_written=getattr(getattr(self, "committer", None), "urgent_written", None),
        )
        loaded = load_feeds(root)
        if loaded.diagnostics:
            log.error("feeds.yaml is invalid, feeds are not refreshed: %s", loaded.diagnostics[0].headline())
            return
        self._start_scheduler(loaded, root)

    def _start_scheduler(self, loaded: Any, root: Path) -> None:
        assert self.feed_reader is not None
        self.feed_service = FeedService(
            loaded, self.factory, root=root, write_lock=self._write_lock, store_secrets=self.stored_keys
        )
        self.feed_scheduler = FeedScheduler(self.feed_service, self.feed_reader)
        self._feeds_task = asyncio.create_task(self.feed_scheduler.run(), name="engine:feeds")
        self._tasks.append(self._feeds_task)

    async def _follow_stored_observations(self) -> None:
        """What another process stores (``engine feeds fetch``, ``engine sentiment fetch``, a second
        engine) reaches the bots' reader within ``STORE_FOLLOW_SECONDS``: one query by id each time,
        rows this engine stored itself (and extended the reader with) are not added twice."""
        from engine.feeds.store import newest_observation_id, observations_after

        assert self.feed_reader is not None
        async with self.factory() as session:
            last = await newest_observation_id(session)
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), STORE_FOLLOW_SECONDS)
            if self._stop.is_set():
                return
            try:
                while True:
                    async with self.factory() as session:
                        rows, last = await observations_after(session, last, FOLLOW_BATCH)
                    if rows:
                        self.feed_reader.extend(rows)
                    if len(rows) < FOLLOW_BATCH:
                        break
            except Exception as exc:  # a busy or briefly unreachable store: the next round reads on
                log.warning("reading observations stored by other processes failed: %s", exc)

    async def _load_stored_keys(self) -> dict[str, str]:
        """The encrypted key store's keys (``store:NAME`` in feeds.yaml and sentiment.yaml), opened with
        the engine's secret key; none when nothing is stored. A key that does not open them is reported
        and the feeds and news go on with ``env:`` keys only (a source naming a stored key then fails
        with "no secret named ..." in its health, not the engine)."""
        from engine.exchanges.keystore import load_key_store
        from engine.web.auth.crypto import SecretBoxError

        home = Path(os.environ.get("ENGINE_HOME") or "var")
        try:
            return await load_key_store(self.factory, home)
        except SecretBoxError as exc:
            log.error("the key store cannot be opened (%s): feeds and news use env: keys only", exc)
            return {}

    async def _watch_feeds(self) -> None:
        """Hot reload of feeds.yaml (the project folder, not recursively: only that file)."""
        from watchfiles import awatch

        root = self._project_root()
        only = lambda _change, path: Path(path).name == "feeds.yaml"  # noqa: E731
        async for _changes in awatch(
            root, recursive=False, watch_filter=only, stop_event=self._stop, debounce=200, step=50
        ):
            try:
                await self.reload_feeds()
            except Exception:
                log.exception("feeds.yaml reload failed")

    async def reload_feeds(self) -> bool:
        """Apply a changed feeds.yaml: validated first (an invalid file changes nothing and is reported
        as a reload/invalid event); then the scheduler follows the new feeds and every bot whose rules
        read a namespace is recompiled against them, at its next candle close like any reload."""
        from engine.config._feeds import load_feeds
        from engine.feeds.context import uses_external_series
        from engine.runtime.feed import ReplayFeed
        from engine.store.enums import EventCategory
        from engine.store.events import record_event

        root = self._project_root()
        loaded = load_feeds(root, "feeds.yaml")
        if loaded.diagnostics:
            message = "feeds.yaml is invalid, the running feeds are kept: " + "; ".join(
                d.headline() for d in loaded.diagnostics[:3]
            )
            log.error(message)
            async with self.factory() as session, session.begin():
                await record_event(
                    session, EventCategory.RELOAD, "invalid", message, data={"file": "feeds.yaml"}
                )
            return False
        if self.feed_scheduler is not None and not isinstance(self.feed, ReplayFeed):
            # Only the feed scheduler restarts: news fetching (sentiment.yaml) goes on as it was.
            await self._stop_feed_scheduler()
            self._start_scheduler(loaded, root)
        # Recompile what reads namespaces (their meaning may have changed: members, max_age, lag).
        self.cache.entries = {
            path: entry
            for path, entry in self.cache.entries.items()
            if not uses_external_series(entry.bot.strategy.plan)
        }
        bots = await asyncio.to_thread(self.cache.load, self.config.bots_dir)
        async with self.control_lock:
            for name, bot in bots.bots.items():
                slot = self.slots.get(name)
                runner = slot.runner if slot is not None else None
                if (
                    runner is not None
                    and uses_external_series(bot.strategy.plan)
                    and bot.model.pairs == list(runner.pairs)
                    and bot.strategy.timeframe == runner.timeframe
                ):
                    runner.replace(bot)
            await self._apply_reload(bots)
            for name, slot in self.slots.items():
                self._follow_feeds(name, slot.runner._next or slot.runner.loaded)
        async with self.factory() as session, session.begin():
            await record_event(
                session, EventCategory.RELOAD, "feeds", "feeds.yaml reloaded", data={"file": "feeds.yaml"}
            )
        return True

    def _follow_feeds(self, name: str, loaded: Any) -> None:
        if self.news_scheduler is not None:
            from engine.sentiment.live import reads_news

            self.news_scheduler.follow(name, reads_news(loaded.strategy.plan))
        if self.feed_scheduler is None or self.feed_service is None:
            return
        declared = self.feed_service.feeds.feeds
        names = followed_feeds(loaded.strategy.plan, declared)
        exchange = loaded.model.exchange.name
        scopes = {
            n: ({f"{exchange}:{pair}" for pair in loaded.model.pairs} if declared[n].per_pair else set())
            for n in names
        }
        self.feed_scheduler.follow(name, scopes)

    def _unfollow_feeds(self, name: str) -> None:
        if self.news_scheduler is not None:
            self.news_scheduler.follow(name, False)
        if self.feed_scheduler is not None:
            self.feed_scheduler.unfollow(name)

    async def _stop_feeds(self) -> None:
        if self.news_scheduler is not None:
            await self.news_scheduler.stop()
            self.news_scheduler = None
        await self._stop_feed_scheduler()

    async def _stop_feed_scheduler(self) -> None:
        task = getattr(self, "_feeds_task", None)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self.feed_service is not None:
            await self.feed_service.aclose()
            self.feed_service = None
        self.feed_scheduler = None
