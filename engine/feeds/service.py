"""Refreshing feeds: each feed's fallback chain of sources, writes to the point-in-time store, source
health, and the events a user sees when a source degrades, goes down or recovers.

One ``FeedService`` serves ``engine feeds fetch`` (backfill) and the runtime's scheduler alike. A source
that fails is marked degraded, the next source of the chain is tried for the members still missing, and
nothing stops: a bot never stops because a feed failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.config._feeds import LoadedFeeds, ResolvedFeed
from engine.config._secrets import resolve_secret
from engine.feeds.http import FeedError, FeedHttpClient, RateLimiter
from engine.feeds.namespace import series_for
from engine.feeds.observations import Observation
from engine.feeds.sources.base import SOURCE_MODULES, FetchRequest, Source, SourceSetup, build_source
from engine.feeds.store import last_event_time, new_observations, save_health, write_observations
from engine.observability import category_logger, log_event
from engine.store.enums import EventCategory
from engine.store.events import record_event
from engine.store.models import FeedHealth

__all__ = ["FeedService", "RefreshResult"]

log = logging.getLogger("engine.feeds")
api_log = category_logger("api_calls")


@dataclass(slots=True)
class RefreshResult:
    feed: str
    added: int = 0
    observations: list[Observation] = field(default_factory=list)  # everything the sources answered
    new: list[Observation] = field(default_factory=list)  # what was stored (revisions stamped)
    used: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    missing: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.missing


class FeedService:
    """The sources of one project, with one HTTP client and rate limiter per service."""

    def __init__(
        self,
        feeds: LoadedFeeds,
        sessions: async_sessionmaker[AsyncSession],
        *,
        root: Path,
        store_secrets: Mapping[str, str] | None = None,
        environ: Mapping[str, str] | None = None,
        base_urls: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], int] = time.time_ns,
        retries: int = 3,
        backoff: float = 1.0,
        write_lock: asyncio.Lock | None = None,
    ):
        self.feeds = feeds
        self.sessions = sessions
        self.root = root
        self.store_secrets = dict(store_secrets or {})
        self.environ = environ if environ is not None else os.environ
        self.base_urls = dict(base_urls or {})
        self.transport = transport
        self.clock = clock
        self.retries = retries
        self.backoff = backoff
        # The runtime's SQLite write lock: a feed write never holds the database while orders wait.
        self.write_lock = write_lock
        self._http: dict[str, FeedHttpClient] = {}
        self._sources: dict[str, Source] = {}
        self._states: dict[str, str] = {}
        self._health_written: dict[str, float] = {}
        self.down_after_s = float(_seconds(feeds.alerts.down_after))

    # ----- sources -----------------------------------------------------------------------------
    def key_for(self, kind: str) -> str | None:
        ref = self.feeds.service(kind).key
        if ref is None:
            return None
        return resolve_secret(ref, environ=self.environ, store=self.store_secrets, what=f"the {kind} API key")

    def source(self, kind: str) -> Source:
        if kind not in self._sources:
            module = importlib.import_module(SOURCE_MODULES[kind]) if kind in SOURCE_MODULES else None
            service = self.feeds.service(kind)
            key = self.key_for(kind)
            http = None
            base = self.base_urls.get(kind) or service.base_url or getattr(module, "BASE_URL", None)
            if base:
                per_minute = float(service.calls_per_minute or getattr(module, "CALLS_PER_MINUTE", 30))
                http = FeedHttpClient(
                    kind,
                    base,
                    per_minute=per_minute,
                    timeout=float(_seconds(service.timeout)) if service.timeout else 20.0,
                    retries=self.retries,
                    backoff=self.backoff,
                    secrets=(key,) if key else (),
                    limiter=RateLimiter(per_minute),
                    transport=self.transport,
                )
                self._http[kind] = http
            options = {
                # Sources that open clients of their own (http_json and calendar URLs, one per host)
                # retry like this service's, and resolve per-feed keys from the same places.
                "retries": self.retries,
                "backoff": self.backoff,
                "timeout_s": float(_seconds(service.timeout)) if service.timeout else 20.0,
                "resolve_key": lambda ref, kind=kind: resolve_secret(
                    ref, environ=self.environ, store=self.store_secrets, what=f"a {kind} feed key"
                ),
            }
            self._sources[kind] = build_source(
                SourceSetup(kind, service, key, http, str(self.root), options=options)
            )
        return self._sources[kind]

    def calls_used(self, kind: str) -> tuple[int, float] | None:
        """(calls in the last minute, limit per minute) for a service with an HTTP client; for sources
        with a client per host (http_json, calendar URLs), the busiest host's."""
        http = self._http.get(kind)
        if http is not None:
            return (http.limiter.used, http.limiter.per_minute)
        busiest = getattr(self._sources.get(kind), "busiest", None)
        return busiest() if callable(busiest) else None

    async def aclose(self) -> None:
        # Successes not yet written (see _health) are written now: calls and last success are not lost.
        for kind, state in list(self._states.items()):
            if state == "ok":
                await self._health(kind, ok=True, force=True)
        for source in self._sources.values():
            await source.aclose()
        for http in self._http.values():
            await http.aclose()
        self._sources.clear()
        self._http.clear()

    # ----- refresh -----------------------------------------------------------------------------
    async def refresh(
        self, name: str, *, backfill: bool = False, scopes: tuple[str, ...] = ()
    ) -> RefreshResult:
        feed = self.feeds.feeds[name]
        result = RefreshResult(name)
        wanted = list(feed.members)
        for kind in feed.kinds:
            members = tuple(m for m in wanted if m in (kind.members or feed.members))
            if not members:
                continue
            # From the members asked of this source: one the chain never fills (CryptoCompare's
            # followers without a key) must not send CoinGecko back to a full history every refresh.
            since = await self._since(feed, list(members), scopes)
            request = FetchRequest(feed, members, since, self.clock(), backfill, scopes)
            try:
                source = self.source(kind.name)
                observations = await source.fetch(request)
            except Exception as exc:  # a failing source, or a bug in one, must not stop the others
                if isinstance(exc, FeedError | LookupError):
                    message = str(exc)
                    log_event(api_log, "feed source failed", feed=name, source=kind.name, error=message)
                else:
                    message = f"{kind.name}: unexpected {type(exc).__name__}: {exc}"
                    log.exception("feed source %s crashed", kind.name)
                result.errors[kind.name] = message
                await self._health(kind.name, ok=False, error=message, feed=name)
                continue
            got = {o.series for o in observations}
            covered = [
                m
                for m in members
                if any(s.startswith(series_for(feed, m, None)) for s in got) or not observations
            ]
            # Values "current at the fetch" were known when the answer came, not when it was asked.
            answered = self.clock()
            observations = [
                replace(o, available_at=answered) if o.available_at == request.now_ns else o
                for o in observations
            ]
            # Read without the write lock which values are new; most refreshes bring none, and then
            # never touch the lock a candle's orders wait on.
            async with self.sessions() as session:
                new = await new_observations(session, observations, answered)
            if new:
                async with self._writing(), self.sessions() as session, session.begin():
                    result.added += await write_observations(session, new, stamped=True)
            result.observations.extend(observations)
            result.new.extend(new)
            result.used.append(kind.name)
            await self._health(kind.name, ok=True, feed=name)
            wanted = [m for m in wanted if m not in covered]
            if not wanted:
                break
        result.missing = tuple(wanted)
        return result

    async def _since(self, feed: ResolvedFeed, members: list[str], scopes: tuple[str, ...]) -> int | None:
        """Where a refresh resumes: per scope, the member furthest behind among those stored (a member
        never stored, such as a keyed one without its key or a quiet bucket's ratio, does not force a
        full backfill); over the scopes, the one furthest behind; None while any scope has nothing."""
        resume: list[int] = []
        async with self.sessions() as session:
            for scope in scopes or (None,):
                stored = [
                    t
                    for m in members
                    if (t := await last_event_time(session, series_for(feed, m, scope))) is not None
                ]
                if not stored:
                    return None
                resume.append(min(stored))
        return min(resume)

    async def _health(
        self, kind: str, *, ok: bool, error: str | None = None, feed: str = "", force: bool = False
    ) -> None:
        # A success of a source already known healthy is bookkeeping (last success, calls): written at most
        # once a minute, so steady refreshes do not queue on the database a candle's orders need.
        now = time.monotonic()
        recent = now - self._health_written.get(kind, -1e9) < 60.0
        if ok and not force and self._states.get(kind) == "ok" and recent:
            return
        self._health_written[kind] = now
        calls = self._http[kind].calls if kind in self._http else 0
        own = getattr(self._sources.get(kind), "take_calls", None)
        if callable(own):  # calls through the clients a source opens per host
            calls += own()
        async with self._writing(), self.sessions() as session, session.begin():
            previous = await session.get(FeedHealth, kind)
            # The state survives restarts: a source already down stays down without a second alert.
            before = previous.state if previous is not None else "ok"
            row = await save_health(
                session, kind, ok=ok, error=error, calls=calls, down_after_s=self.down_after_s
            )
            if kind in self._http:
                self._http[kind].calls = 0
            self._states[kind] = row.state
            if row.state == before:
                return
            if row.state == "ok":
                text = f"feed source {kind} recovered"
            elif row.state == "degraded":
                text = f"feed source {kind} degraded: {error}"
            else:
                since = row.down_since.strftime("%Y-%m-%d %H:%M") if row.down_since else "?"
                text = f"feed source {kind} down since {since} UTC: {error}"
            data = {"source": kind, "feed": feed, "state": row.state}
            # Only "down" is an error event: the runtime's Alerts turn error events into notifications,
            # and a source that stumbles once and recovers is not worth waking anyone.
            category = EventCategory.ERROR if row.state == "down" else EventCategory.SYSTEM
            await record_event(session, category, f"feed_{row.state}", text, data=data)

    def _writing(self) -> Any:
        return self.write_lock if self.write_lock is not None else contextlib.nullcontext()

    def states(self) -> dict[str, str]:
        return dict(self._states)


def _seconds(duration: str | None) -> int:
    from dsl.timeframes import parse_duration

    return parse_duration(duration) if duration else 0
