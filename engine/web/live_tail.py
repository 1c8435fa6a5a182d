"""One shared tail of a store table per server, fanned out to every socket and page that follows it:
the ``trades`` table for ``/trades/live``, the ``events`` table for ``/events/live``, and the
``equity_snapshots`` table (one row per bot per closed candle, written in the candle's own transaction)
for ``/candles/live``. The web pages watch the same tails (:meth:`StoreTail.watch`) and re-read only
when a row that concerns them arrives, instead of each re-reading the store on a timer.

Each socket used to poll the database itself every second (200 open pages: 200 trade queries and 200
session checks a second). Here one task per server and table reads the new rows once per ``interval``
while anyone listens, and hands each one to every subscriber's bounded queue. It works the same whether the
runtime runs in this process (``engine serve --run``) or in another (``engine run`` on the same
database): the store is the meeting point. Each tick costs two queries (sessions, trades) however many
sockets listen.

- Latency: a commit made in this process (the runtime of ``engine serve --run``, or the API) wakes
  the tails at once (a SQLAlchemy ``after_commit`` hook, only after a flush wrote something); another
  process's commits are read at the next tick (``interval``). Reads are at least ``MIN_GAP`` apart.
- Back-pressure: the tail never waits for a socket. A subscriber whose queue is full (a client that
  stopped reading) is marked dropped and its socket closed (1013, try again later); the others and the
  tail go on.
- Sessions: before each read, one query checks every subscriber's session (the rules of
  ``authenticate_access``); a socket whose session ended is closed (1008) before anything else reaches
  it, within one ``interval`` even when no trade comes.
- Resume point: a socket that reconnects with ``?after=<last id it saw>`` first gets the rows it missed
  (at most ``BACKFILL_LIMIT``), then the live ones, in id order, none twice.
- Pages: a watcher is a callback the tail calls with each batch of new rows, in the tail's task; it must
  only note what changed (a page re-reads in its own context). Watchers keep the tail running like
  sockets; their pages check their own session at each re-read.
- Role filtering: a source renders each row twice, for readers and for those who may act on bots
  (``detail``): an event's ``data`` (order ids, amounts, reasons, who changed a limit) goes only to
  TRADER and ADMIN sockets; a VIEWER gets what ``/logs/`` shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.store.live_notify import CommitListener, on_write_commit
from engine.store.models import AuthSession, EquitySnapshot, Event, Trade, User
from engine.web.api.schemas import CandleOut, EventOut, TradeOut

__all__ = [
    "BACKFILL_LIMIT",
    "CANDLES",
    "EVENTS",
    "TRADES",
    "StoreTail",
    "Subscriber",
    "TailSource",
    "Watcher",
    "shared_tail",
]

BACKFILL_LIMIT = 500
READ_LIMIT = 1000  # rows per read of a tail
MIN_GAP = 0.05  # seconds between two reads of one tail, however often it is nudged
log = logging.getLogger("engine.web")


@dataclass(frozen=True)
class TailSource:
    """A table with growing integer ids, and how one of its rows is shown: (to readers, in detail)."""

    model: Any
    render: Callable[[Any], tuple[str, str]]


def _trade(row: Trade) -> tuple[str, str]:
    text = TradeOut.model_validate(row).model_dump_json()
    return text, text


def _event(row: Event) -> tuple[str, str]:
    base = EventOut.model_validate(row).model_dump(mode="json")
    return json.dumps(base), json.dumps({**base, "data": row.data})


def _candle(row: EquitySnapshot) -> tuple[str, str]:
    text = CandleOut.model_validate(row).model_dump_json()
    return text, text


TRADES = TailSource(Trade, _trade)
EVENTS = TailSource(Event, _event)
CANDLES = TailSource(EquitySnapshot, _candle)
Watcher = Callable[[list[Any]], None]  # called with each batch of new rows (never awaits)
POLL_SECONDS = 1.0  # how often a tail checks the sessions and reads new rows of another process


def shared_tail(
    tails: dict[str, StoreTail], sessions: async_sessionmaker[AsyncSession], source: TailSource
) -> StoreTail:
    """The server's one tail of ``source``'s table (made at first use), shared by sockets and pages."""
    name = source.model.__tablename__
    if name not in tails:
        tails[name] = StoreTail(sessions, source, interval=POLL_SECONDS)
    return tails[name]


@dataclass(eq=False)
class Subscriber:
    queue: asyncio.Queue[tuple[int, str]]
    start: int  # trades up to this id are the backfill's; the tail delivers the later ones
    session_id: str
    role: str
    detail: bool = False  # may see the detailed rendering (TRADER, ADMIN)
    dropped: bool = False  # too slow: its queue filled up
    ended: bool = False  # its session ended (logout, revocation, role change, deactivation, expiry)

    def wake(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # a full queue wakes its reader anyway
            self.queue.put_nowait((0, ""))


class StoreTail:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        source: TailSource = TRADES,
        *,
        interval: float = 1.0,
        queue_size: int = 256,
    ) -> None:
        self.sessions = sessions
        self.source = source
        self.interval = interval
        self.queue_size = queue_size
        self.last_id: int | None = None
        self.queries = 0  # reads of the table by the tail (the bench counts them)
        self._subscribers: set[Subscriber] = set()
        self._watchers: list[Watcher] = []
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def listening(self) -> bool:
        return bool(self._subscribers or self._watchers)

    async def watch(self, watcher: Watcher) -> None:
        """Call ``watcher`` with each batch of rows committed from now on, until :meth:`unwatch`."""
        await self._start_from_newest()
        self._watchers.append(watcher)
        self._ensure_task()

    def unwatch(self, watcher: Watcher) -> None:
        with contextlib.suppress(ValueError):
            self._watchers.remove(watcher)

    async def subscribe(self, session_id: str, role: str, *, detail: bool = False) -> Subscriber:
        """A new subscriber (a signed-in socket) that receives every row committed after this call."""
        await self._start_from_newest()
        sub = Subscriber(asyncio.Queue(self.queue_size), self.last_id or 0, session_id, role, detail)
        self._subscribers.add(sub)
        self._ensure_task()
        return sub

    async def _start_from_newest(self) -> None:
        if not self._running():
            # No tail running (the first listener, or the first after a quiet spell): start from the
            # newest row, not from where an earlier tail stopped, or the new socket would be handed
            # everything in between at once.
            async with self.sessions() as db:
                newest = await db.scalar(select(func.max(self.source.model.id))) or 0
            if not self._running():  # another listener may have started it meanwhile
                self.last_id = newest

    def _ensure_task(self) -> None:
        if not self._running():
            name = f"web:tail:{self.source.model.__tablename__}"
            self._task = asyncio.create_task(self._run(), name=name)

    def _running(self) -> bool:
        # (A test client runs each connection on an event loop of its own: a task of another loop is dead.)
        task = self._task
        return task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop()

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)

    async def backfill(self, sub: Subscriber, after: int) -> list[tuple[int, str]]:
        """The rows a reconnecting socket missed: ``after < id <= sub.start``, rendered for it."""
        model = self.source.model
        async with self.sessions() as db:
            rows = (
                await db.scalars(
                    select(model)
                    .where(model.id > after, model.id <= sub.start)
                    .order_by(model.id.desc())
                    .limit(BACKFILL_LIMIT)
                )
            ).all()
        return [(row.id, self.source.render(row)[sub.detail]) for row in reversed(rows)]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def caught_up(self, timeout: float = 10.0) -> None:
        """Return once every row committed before this call was read and handed out (tests, and a
        page that must show its own write at once)."""
        if not self._running():  # nobody listens (or another event loop's tail): nothing to hand out
            return
        async with self.sessions() as db:
            newest = await db.scalar(select(func.max(self.source.model.id))) or 0
        deadline = time.monotonic() + timeout
        while self._running() and (self.last_id or 0) < newest and time.monotonic() < deadline:
            self.nudge()
            await asyncio.sleep(0.01)

    def nudge(self) -> None:
        """Something was committed in this process: read now rather than at the next tick."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)

    async def _run(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        _AWAKE.add(self)
        _listen_for_other_processes(self.sessions)
        # The first subscriber set last_id to the newest row: nothing to read before a tick or a nudge.
        while self.listening:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                if await self.poll() >= READ_LIMIT:  # a burst larger than one read: read on at once
                    self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:  # a busy or briefly unreachable database: try again at the next tick
                log.exception(
                    "reading new %s for the live sockets failed; retrying", self.source.model.__tablename__
                )
            await asyncio.sleep(MIN_GAP)  # a burst of commits: one read

    async def poll(self) -> int:
        """Check every subscriber's session, then read the rows committed since the last read and hand
        them out; returns how many. Two queries per tick, whatever the number of sockets."""
        last, model = self.last_id or 0, self.source.model
        async with self.sessions() as db:
            await self._end_sessions(db)
            rows = (
                await db.scalars(select(model).where(model.id > last).order_by(model.id).limit(READ_LIMIT))
            ).all()
        self.queries += 1
        if rows and self._subscribers:
            for row in rows:
                self.publish(row.id, self.source.render(row))
        elif rows:
            self.last_id = max(self.last_id or 0, rows[-1].id)
        if rows:
            for watcher in list(self._watchers):
                try:
                    watcher(list(rows))
                except Exception:  # one page's mistake must not stop the others' updates
                    log.exception("a page watching %s failed", self.source.model.__tablename__)
        return len(rows)

    async def _end_sessions(self, db: AsyncSession) -> None:
        """Wake and drop the subscribers whose session no longer holds, by the rules of
        :func:`engine.web.api.deps.authenticate_access` (a live session of an active user with 2FA,
        whose role is still the token's), for all of them in one query."""
        if not self._subscribers:
            return
        ids = {sub.session_id for sub in self._subscribers}
        rows = await db.execute(
            select(AuthSession.id, User.role)
            .join(User, User.id == AuthSession.user_id)
            .where(
                AuthSession.id.in_(ids),
                AuthSession.revoked_at.is_(None),
                AuthSession.expires_at > datetime.now(UTC),
                User.active.is_(True),
                User.totp_enabled.is_(True),
            )
        )
        live = {session_id: role for session_id, role in rows}
        for sub in list(self._subscribers):
            if live.get(sub.session_id) != sub.role:
                sub.ended = True
                self._subscribers.discard(sub)
                sub.wake()

    def publish(self, row_id: int, rendered: tuple[str, str]) -> None:
        """Hand one row to every subscriber, as its role may see it (never waits; a full queue drops
        its subscriber)."""
        self.last_id = max(self.last_id or 0, row_id)
        for sub in list(self._subscribers):
            if row_id <= sub.start:
                continue
            try:
                sub.queue.put_nowait((row_id, rendered[sub.detail]))
            except asyncio.QueueFull:
                sub.dropped = True
                self._subscribers.discard(sub)


# Commits made in this process (the runtime of ``engine serve --run``, the API's own writes) wake the
# tails at once; another process's commits (a separate ``engine run``) are read at the next tick.
_AWAKE: weakref.WeakSet[StoreTail] = weakref.WeakSet()


# PostgreSQL: one LISTEN connection per event loop and database hears every process's write commits
# (engine.store.live_notify) and wakes the tails at once instead of at their next tick.
_LISTENERS: dict[tuple[int, str], CommitListener] = {}


def _tails_running(loop: asyncio.AbstractEventLoop) -> bool:
    return any(tail._loop is loop and tail._running() for tail in list(_AWAKE))


def _wake_all() -> None:
    for tail in list(_AWAKE):
        tail.nudge()


def _listen_for_other_processes(sessions: async_sessionmaker[AsyncSession]) -> None:
    bind = sessions.kw.get("bind")
    if bind is None or bind.dialect.name != "postgresql":
        return
    loop = asyncio.get_running_loop()
    key = (id(loop), bind.url.render_as_string(hide_password=True))
    listener = _LISTENERS.get(key)
    if listener is None:
        for old in [
            k for k, v in _LISTENERS.items() if v._task is not None and v._task.get_loop().is_closed()
        ]:
            del _LISTENERS[old]  # listeners of event loops that have ended
        listener = _LISTENERS[key] = CommitListener(bind.url, _wake_all, lambda: _tails_running(loop))
    listener.start()


on_write_commit(_wake_all)  # a commit of this process that wrote something: read now
