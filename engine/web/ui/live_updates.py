"""Pages that re-read the store when it changed, told by the server's shared tails, not on a timer.

Each page used to re-read its tables every 3 s whether or not anything had happened: 200 open pages
were hundreds of queries a second on a quiet engine. Now a page watches the server's one tail per table
(:mod:`engine.web.live_tail`: events, trades, candle closes; fed at once by this process's commits and
within a second by another process's) and re-reads only when a row that concerns it arrived:

- at most once per ``REFRESH_GAP`` seconds however many rows arrive (a fast replay of 100 bots closes
  hundreds of candles a second: one re-read per page per second, not one per row);
- once per ``SAFETY_SECONDS`` without a row, for what no tail carries (a bot row edited by hand);
- a cheap in-memory check every ``CHECK_SECONDS`` moves the re-read into the page's own UI context
  (a tail's task is no page's context), so a change shows within ``CHECK_SECONDS`` of its delivery.

Each re-read checks the page's session first (:func:`follow_store` does it for the page), so a revoked
session's page gets no more data, stops following and goes to the login page at the first change.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from nicegui import ui

from engine.web.api.context import WebContext
from engine.web.live_tail import CANDLES, EVENTS, TRADES, StoreTail, TailSource, shared_tail
from engine.web.ui.shell import current_user

__all__ = ["ALL_TABLES", "CHECK_SECONDS", "REFRESH_GAP", "SAFETY_SECONDS", "LiveFollow", "follow_store"]

ALL_TABLES = (EVENTS, TRADES, CANDLES)
CHECK_SECONDS = 0.25
REFRESH_GAP = 1.0
SAFETY_SECONDS = 30.0


@dataclass(eq=False)
class LiveFollow:
    """One page's watch on the tails; :meth:`stop` ends it (the page's client going away does too)."""

    refresh: Callable[[], Awaitable[None]]
    concerns: Callable[[Any], bool] | None
    tails: list[StoreTail] = field(default_factory=list)
    dirty: bool = False
    last: float = field(default_factory=time.monotonic)
    timer: Any = None
    refreshes: int = 0  # re-reads done (tests and the bench count them)

    def note(self, rows: list[Any]) -> None:
        if not self.dirty and (self.concerns is None or any(self.concerns(row) for row in rows)):
            self.dirty = True

    async def check(self) -> None:
        now = time.monotonic()
        due = now - self.last >= SAFETY_SECONDS
        if (self.dirty and now - self.last >= REFRESH_GAP) or due:
            self.dirty, self.last = False, now
            self.refreshes += 1
            await self.refresh()

    def stop(self) -> None:
        for tail in self.tails:
            tail.unwatch(self.note)
        self.tails.clear()
        if self.timer is not None:
            self.timer.cancel()


async def follow_store(
    ctx: WebContext,
    refresh: Callable[[], Awaitable[None]],
    *,
    tables: Iterable[TailSource] = ALL_TABLES,
    concerns: Callable[[Any], bool] | None = None,
    browser: str | None = None,
    check_session: bool = True,
) -> LiveFollow:
    """Call ``refresh`` (in this page's context) after rows of ``tables`` that ``concerns`` the page
    (all, by default) were committed, once the user's session is found still valid (else the page
    stops following and goes to the login page). Call it while building the page. ``browser``: the
    page's browser id, when known; ``check_session=False``: ``refresh`` checks the session itself."""

    async def signed_in_refresh() -> None:
        if check_session and await current_user(ctx, browser) is None:
            follow.stop()
            ui.navigate.to("/login")
            return
        await refresh()

    follow = LiveFollow(signed_in_refresh, concerns)
    for source in tables:
        tail = shared_tail(ctx.live_tails, ctx.reads(), source)
        await tail.watch(follow.note)
        follow.tails.append(tail)
    follow.timer = ui.timer(CHECK_SECONDS, follow.check)
    ui.context.client.on_delete(follow.stop)
    return follow


def for_bot(bot_id: int) -> Callable[[Any], bool]:
    """Rows of one bot (its events, trades and candle closes)."""
    return lambda row: getattr(row, "bot_id", None) == bot_id
