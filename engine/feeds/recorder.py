"""Recording the series that have no public history (order books, trades) while something follows them.

A :class:`Recorder` runs one task per feed on the caller's event loop: each refreshes its feed for the
followed ``exchange:PAIR`` scopes at every multiple of the feed's ``refresh`` (plus a couple of seconds,
so a trade bucket that just ended is complete), through :meth:`FeedService.refresh` (which writes the
store and records the source's health). A failing source is retried later with a growing pause, and
the recorder never stops because of it. ``engine feeds record`` and ``engine run`` own one each.

    recorder = Recorder(service, scopes=("binance:BTC/USDT",))
    await recorder.start()
    ...
    recorder.follow(("binance:ETH/USDT",))   # a bot started on another pair
    await recorder.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.feeds.observations import Observation

if TYPE_CHECKING:
    from engine.feeds.service import FeedService, RefreshResult

__all__ = ["FeedStats", "Recorder", "live_feeds"]

log = logging.getLogger("engine.feeds")
MAX_PAUSE_S = 600.0


@dataclass(slots=True)
class FeedStats:
    rounds: int = 0
    added: int = 0
    failures: int = 0  # in a row
    last_error: str | None = None
    last_ok: float | None = None  # wall clock, seconds


def live_feeds(service: FeedService) -> tuple[str, ...]:
    """The project's feeds without public history (every source of their chain is live-only)."""
    return tuple(
        name
        for name, feed in service.feeds.feeds.items()
        if feed.kinds and all(not k.history for k in feed.kinds)
    )


class Recorder:
    """Follows ``scopes`` (``exchange:PAIR``) for ``feeds`` (default: :func:`live_feeds`)."""

    def __init__(
        self,
        service: FeedService,
        feeds: Sequence[str] | None = None,
        scopes: Iterable[str] = (),
        *,
        on_observations: Callable[[list[Observation]], object] | None = None,
        settle_s: float = 2.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ):
        self.service = service
        self.feeds = tuple(feeds) if feeds is not None else live_feeds(service)
        unknown = [f for f in self.feeds if f not in service.feeds.feeds]
        if unknown:
            raise KeyError(f"no feed named {', '.join(unknown)} in this project")
        self.scopes: tuple[str, ...] = tuple(dict.fromkeys(scopes))
        self.on_observations = on_observations
        self.settle_s = settle_s
        self.clock = clock
        self.sleep = sleep
        self.stats: dict[str, FeedStats] = {name: FeedStats() for name in self.feeds}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._busy: set[str] = set()  # feeds in the middle of a round
        self._stopping = False

    @property
    def running(self) -> bool:
        return any(not task.done() for task in self._tasks.values())

    def follow(self, scopes: Iterable[str]) -> None:
        """Add pairs; the next round of every feed covers them."""
        self.scopes = tuple(dict.fromkeys((*self.scopes, *scopes)))

    def unfollow(self, scopes: Iterable[str]) -> None:
        gone = set(scopes)
        self.scopes = tuple(s for s in self.scopes if s not in gone)

    async def start(self) -> None:
        """Start one task per feed (idempotent)."""
        for name in self.feeds:
            task = self._tasks.get(name)
            if task is None or task.done():
                self._tasks[name] = asyncio.create_task(self._loop(name), name=f"feed-recorder:{name}")

    async def stop(self, grace_s: float = 30.0) -> None:
        """Stop every task and wait for it. A task waiting for its next round is cancelled at once; one
        in the middle of a round finishes it first (up to ``grace_s``), because cancelling a store write
        half-way can leave its connection holding SQLite's write lock. Idempotent."""
        tasks, self._tasks = dict(self._tasks), {}
        self._stopping = True
        try:
            for name, task in tasks.items():
                if name not in self._busy:
                    task.cancel()
            if tasks:
                _, late = await asyncio.wait(tasks.values(), timeout=grace_s)
                for task in late:
                    task.cancel()
            for task in tasks.values():
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        finally:
            self._stopping = False

    async def run_once(self, name: str) -> RefreshResult:
        """One refresh of one feed for the followed scopes, now."""
        stats = self.stats.setdefault(name, FeedStats())
        result = await self.service.refresh(name, scopes=self.scopes)
        stats.rounds += 1
        stats.added += result.added
        if result.errors and not result.used:
            stats.failures += 1
            stats.last_error = "; ".join(result.errors.values())
        else:
            stats.failures = 0
            stats.last_ok = self.clock()
        if result.observations and self.on_observations is not None:
            self.on_observations(result.observations)
        return result

    def delay(self, name: str) -> float:
        """Seconds until the feed's next round: the next multiple of its refresh (plus the settle
        time), later after failures (refresh x 2^(failures-1), at most 10 minutes)."""
        refresh = self.service.feeds.feeds[name].refresh_s
        now = self.clock()
        wait = refresh - now % refresh + self.settle_s
        failures = self.stats[name].failures
        if failures:
            wait += min(MAX_PAUSE_S, refresh * 2 ** (failures - 1))
        return wait

    async def _loop(self, name: str) -> None:
        while not self._stopping:
            await self.sleep(self.delay(name))
            if self._stopping:
                return
            if not self.scopes and self.service.feeds.feeds[name].model.pair is None:
                continue  # nothing followed yet
            self._busy.add(name)
            try:
                await self.run_once(name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store or a bug: log, pause, carry on
                stats = self.stats[name]
                stats.failures += 1
                stats.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("feed recorder %s: round failed", name)
            finally:
                self._busy.discard(name)
