"""The feeds page and ``GET /feeds/status``: each feed's freshness and each source's health, as the
store knows them (:func:`engine.feeds.status.feed_overview`, the same figures as ``engine feeds status``).

The project's feeds are read from its ``feeds.yaml``, found as the runtime finds it: walking up from
the bots folder (``WebContext.bots_dir``). A source's limit is its service's ``calls_per_minute`` (or
the source's default). A stored error, already masked by the feed HTTP client when it was recorded,
is masked again here because it came from a remote service and is shown to every signed-in role:
the keys ``feeds.yaml`` names (``env:`` and ``store:`` references, read in memory for this and never
sent), the secrets the process resolved, and credential patterns.
"""

from __future__ import annotations

import importlib
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.config._feeds import LoadedFeeds, load_feeds
from engine.config._project import find_project_root
from engine.feeds.observations import NS_PER_SECOND
from engine.feeds.sources.base import SOURCE_MODULES
from engine.feeds.status import FeedFreshness, SourceHealth, overview_of
from engine.feeds.store import read_health
from engine.observability import SecretRegistry, redact_text
from engine.store.models import ApiSecret
from engine.web.auth.crypto import SecretBox, SecretBoxError
from engine.web.feed_reads import stored_series

__all__ = [
    "ERROR_CHARS",
    "FeedLine",
    "FeedStatus",
    "SourceLine",
    "calls_limit",
    "configured_secrets",
    "feed_status",
    "load_feed_status",
    "project_feeds",
]

ERROR_CHARS = 500  # a stored error is at most this long on the page and in the API
NOT_CALLED = "not called"  # a configured source with no health row yet


@dataclass(frozen=True, slots=True)
class FeedLine:
    name: str
    sources: tuple[str, ...]  # fallback order
    members: tuple[str, ...]
    state: str  # fresh | stale | empty
    last_known: datetime | None  # newest available_at
    age_s: float | None
    max_age_s: float
    observations: int
    series: int
    stored_from: tuple[str, ...]  # the sources the stored values came from
    generated: bool  # some stored values are generated demo data (``engine feeds synth``)


@dataclass(frozen=True, slots=True)
class SourceLine:
    name: str
    state: str  # ok | degraded | down | not called
    last_success: datetime | None
    last_error: str | None  # masked, at most ERROR_CHARS
    last_error_at: datetime | None
    down_since: datetime | None
    calls: int  # since the source was first called (the store's counter)
    failures: int
    calls_per_minute: float | None  # the limit the client keeps to; None: not an HTTP service


@dataclass(frozen=True, slots=True)
class FeedStatus:
    feeds: tuple[FeedLine, ...]
    sources: tuple[SourceLine, ...]
    config: str | None  # the feeds.yaml read, None: built-in feeds only
    problems: tuple[str, ...]  # its errors (then only the built-in feeds are listed)
    now: datetime

    @property
    def fetched(self) -> bool:
        """Whether anything was ever stored or called (else the page shows how to start)."""
        return any(f.observations for f in self.feeds) or any(s.state != NOT_CALLED for s in self.sources)


def project_feeds(bots_dir: Path) -> LoadedFeeds:
    """The feeds of the project the bots folder belongs to (as ``engine run`` finds them)."""
    return load_feeds(find_project_root(bots_dir), "feeds.yaml")


def calls_limit(loaded: LoadedFeeds, kind: str) -> float | None:
    """Calls per minute the source's client keeps to: the configured one, else the source's default."""
    configured = loaded.service(kind).calls_per_minute
    if configured:
        return float(configured)
    module = SOURCE_MODULES.get(kind)
    if module is None:
        return None
    default = getattr(importlib.import_module(module), "CALLS_PER_MINUTE", None)
    return None if default is None else float(default)


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)  # SQLite gives the stored UTC time back without its zone


async def configured_secrets(db: AsyncSession, loaded: LoadedFeeds, box: SecretBox | None) -> SecretRegistry:
    """The values of the keys the project's feeds use, to mask them (never to show or send them)."""
    refs = {s.key for s in loaded.services.values() if s.key}
    refs |= {f.model.key for f in loaded.feeds.values() if f.model.key}
    found = SecretRegistry()
    for ref in sorted(refs):
        if ref.startswith("env:"):
            found.register(os.environ.get(ref[4:]))
        elif ref.startswith("store:") and box is not None:
            token = await db.scalar(select(ApiSecret.ciphertext).where(ApiSecret.name == ref[6:]))
            try:
                found.register(box.decrypt(token) if token else None)
            except SecretBoxError:  # the app refuses to start with a wrong key; nothing to mask then
                continue
    return found


def _masked(error: str | None, secrets: SecretRegistry | None = None) -> str | None:
    if not error:
        return None
    text = redact_text(secrets.scrub(error) if secrets is not None else error)
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def _feed_line(row: FeedFreshness, now_ns: int) -> FeedLine:
    stored = tuple(s for s in row.stored_from.split(", ") if s)
    return FeedLine(
        name=row.feed,
        sources=tuple(row.sources.split(" > ")),
        members=tuple(m for m in row.members.split(", ") if m),
        state=row.state(now_ns),
        last_known=None
        if row.last_known_ns is None
        else datetime.fromtimestamp(row.last_known_ns / NS_PER_SECOND, UTC),
        age_s=row.age_s(now_ns),
        max_age_s=row.max_age_s,
        observations=row.observations,
        series=row.series,
        stored_from=stored,
        generated="generated" in stored,
    )


def feed_status(
    feeds: list[FeedFreshness],
    health: list[SourceHealth],
    loaded: LoadedFeeds,
    now_ns: int | None = None,
    secrets: SecretRegistry | None = None,
) -> FeedStatus:
    """The page's and the API's view (pure): every feed of the project, every source called so far,
    then the project's sources never called yet."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    lines = tuple(_feed_line(row, now_ns) for row in feeds)
    sources = [
        SourceLine(
            name=h.source,
            state=h.state,
            last_success=_utc(h.last_success),
            last_error=_masked(h.last_error, secrets),
            last_error_at=_utc(h.last_error_at),
            down_since=_utc(h.down_since),
            calls=h.calls,
            failures=h.failures,
            calls_per_minute=calls_limit(loaded, h.source),
        )
        for h in health
    ]
    called = {s.name for s in sources}
    configured = sorted({k.name for feed in loaded.feeds.values() for k in feed.kinds} - called)
    sources += [
        SourceLine(k, NOT_CALLED, None, None, None, None, 0, 0, calls_limit(loaded, k)) for k in configured
    ]
    return FeedStatus(
        feeds=lines,
        sources=tuple(sources),
        config=None if loaded.path is None else loaded.path.name,
        problems=tuple(redact_text(d.headline()) for d in loaded.diagnostics),
        now=datetime.fromtimestamp(now_ns / NS_PER_SECOND, UTC),
    )


async def load_feed_status(
    db: AsyncSession, bots_dir: Path, box: SecretBox | None = None, now_ns: int | None = None
) -> FeedStatus:
    """Read in ``db`` (the request's session, or the page's own); the observations' aggregates come
    from :mod:`engine.web.feed_reads` (kept, and extended by the rows added since). ``box`` opens the
    ``store:`` keys to mask."""
    loaded = project_feeds(bots_dir)
    stored, origins = await stored_series(db)
    feeds, health = overview_of(stored, origins, await read_health(db), loaded)
    secrets = await configured_secrets(db, loaded, box)
    return feed_status(feeds, health, loaded, now_ns, secrets)
