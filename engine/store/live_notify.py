"""PostgreSQL ``NOTIFY`` at each write commit, and a listener that wakes whoever follows the store.

The web server follows the store with one tail per table (``engine.web.live_tail``). Commits made in its
own process wake the tails at once; a separate ``engine run`` used to be seen only at the tails' next
tick (1 s). On PostgreSQL every transaction that writes now also sends ``NOTIFY engine_live`` (delivered
by the server at commit, never for a rollback), and :class:`CommitListener` holds one connection per
process that ``LISTEN``s and calls back at once. SQLite has no such thing: there the tick stays.

The notification carries nothing: it only says "read now". A reader that misses one (its connection
dropped and is being made again) still reads at its next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

__all__ = ["CHANNEL", "CommitListener", "on_write_commit"]

CHANNEL = "engine_live"
RETRY_SECONDS = 5.0
log = logging.getLogger("engine.store")


_WROTE = "engine.store.wrote"
_ON_WRITE_COMMIT: list[Callable[[], None]] = []


def on_write_commit(callback: Callable[[], None]) -> None:
    """Call ``callback`` after each commit in this process that wrote something (the web server's
    tails read at once; other processes hear the NOTIFY). Never after a read or a rollback."""
    _ON_WRITE_COMMIT.append(callback)


@event.listens_for(Session, "after_flush")
def _wrote(session: Session, _context: Any) -> None:
    session.info[_WROTE] = True


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    if session.info.pop(_WROTE, False):
        for callback in list(_ON_WRITE_COMMIT):
            callback()


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_WROTE, None)


@event.listens_for(Session, "before_commit")
def _notify_with_the_commit(session: Session) -> None:
    # before_commit runs before the commit's own flush: pending objects count as writes too.
    if not (session.info.get(_WROTE) or session.new or session.dirty or session.deleted):
        return
    try:
        bind = session.get_bind()
    except Exception:  # a session without a bind: nothing to notify through
        return
    if bind.dialect.name != "postgresql":
        return
    session.connection().exec_driver_sql(f"NOTIFY {CHANNEL}")


class CommitListener:
    """One ``LISTEN`` connection of this process; ``wake`` is called (on the event loop) at each write
    commit of any process on the database. Reconnects after a failure; :meth:`close` ends it."""

    def __init__(self, url: URL, wake: Callable[[], None], needed: Callable[[], bool] = lambda: True) -> None:
        # Channels are database-wide: connection options such as a search_path do not matter here (and
        # asyncpg would take an ``options`` query parameter for a server setting of that name).
        query = {k: v for k, v in url.query.items() if k != "options"}
        self.dsn = url.set(drivername="postgresql", query=query).render_as_string(hide_password=False)
        self.wake = wake
        self.needed = needed  # checked every few seconds: False ends the listener (nobody follows)
        self.notifications = 0
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="store:listen")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _heard(self, *_args: Any) -> None:
        self.notifications += 1
        self.wake()

    async def _run(self) -> None:
        import asyncpg

        while True:
            connection = None
            try:
                connection = await asyncpg.connect(self.dsn)
                await connection.add_listener(CHANNEL, self._heard)
                self.listening.set()
                closed = asyncio.Event()
                connection.add_termination_listener(lambda _c, done=closed: done.set())
                self.wake()  # commits made while not listening: read them now
                while not closed.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(closed.wait(), RETRY_SECONDS)
                    if not self.needed():
                        return
                log.warning("the LISTEN connection for live updates closed; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database restarting or unreachable: the tick still reads
                log.warning("LISTEN for live updates failed (%s); retrying in %g s", exc, RETRY_SECONDS)
            finally:
                self.listening.clear()
                if connection is not None and not connection.is_closed():
                    with contextlib.suppress(Exception):
                        await connection.close()
            await asyncio.sleep(RETRY_SECONDS)
