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
import logging
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


def followed_feeds(plan: object, declared: Iterable[str]) -> set[str]:
    """The declared feeds a compiled plan reads."""
    if not uses_external_series(plan):
        return set()
    names = set(declared)
    return {node.args[0] for node in plan.nodes if node.op == "feed" and node.args[0] in names}  # type: ignore[attr-defined]


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
            self.reader.extend(result.observations)
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
    _write_lock: asyncio.Lock | None
    _tasks: list[asyncio.Task[None]]
    feed_reader: SeriesReader | None = None
    feed_scheduler: FeedScheduler | None = None
    feed_service: FeedService | None = None

    def _project_root(self) -> Path:
        from engine.config._project import find_project_root

        return find_project_root(Path(self.config.bots_dir))

    async def _start_feeds(self) -> None:
        """The shared reader always (rules read stored series even on a replay); the scheduler only on
        live market data, with refreshing on, and when the project's feeds.yaml is valid."""
        from engine.config._feeds import load_feeds
        from engine.feeds.store import store_reader
        from engine.runtime.feed import ReplayFeed

        bind = self.factory.kw.get("bind")
        url = bind.url.render_as_string(hide_password=False) if bind is not None else None
        self.feed_reader = store_reader(url)
        if isinstance(self.feed, ReplayFeed) or not getattr(self.config, "refresh_feeds", True):
            return
        root = self._project_root()
        loaded = load_feeds(root)
        if loaded.diagnostics:
            log.error("feeds.yaml is invalid, feeds are not refreshed: %s", loaded.diagnostics[0].headline())
            return
        self.feed_service = FeedService(loaded, self.factory, root=root, write_lock=self._write_lock)
        self.feed_scheduler = FeedScheduler(self.feed_service, self.feed_reader)
        self._tasks.append(asyncio.create_task(self.feed_scheduler.run(), name="engine:feeds"))

    def _follow_feeds(self, name: str, loaded: Any) -> None:
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
        if self.feed_scheduler is not None:
            self.feed_scheduler.unfollow(name)

    async def _stop_feeds(self) -> None:
        if self.feed_service is not None:
            await self.feed_service.aclose()
            self.feed_service = None
        self.feed_scheduler = None
