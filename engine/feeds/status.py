"""What ``engine feeds status``, ``engine status`` and the web app show about feeds: each feed's
freshness and each source's health, read from the store (works while another process runs)."""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.config._feeds import LoadedFeeds
from engine.feeds.observations import NS_PER_SECOND
from engine.feeds.store import list_series, read_health, stored_sources
from engine.store.models import FeedHealth

__all__ = ["FeedFreshness", "SourceHealth", "feed_overview", "overview_in", "overview_of"]


@dataclass(frozen=True, slots=True)
class FeedFreshness:
    feed: str
    sources: str
    members: str
    series: int
    observations: int
    last_known_ns: int | None  # newest available_at
    max_age_s: float
    stored_from: str = ""  # the sources the stored values came from ("generated": demo data)

    def age_s(self, now_ns: int | None = None) -> float | None:
        if self.last_known_ns is None:
            return None
        return ((now_ns or time.time_ns()) - self.last_known_ns) / NS_PER_SECOND

    def state(self, now_ns: int | None = None) -> str:
        age = self.age_s(now_ns)
        if age is None:
            return "empty"
        return "fresh" if age <= self.max_age_s else "stale"


@dataclass(frozen=True, slots=True)
class SourceHealth:
    source: str
    state: str
    last_success: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    down_since: datetime | None
    calls: int
    failures: int


async def feed_overview(
    sessions: async_sessionmaker[AsyncSession], feeds: LoadedFeeds
) -> tuple[list[FeedFreshness], list[SourceHealth]]:
    async with sessions() as session:
        return await overview_in(session, feeds)


async def overview_in(
    session: AsyncSession, feeds: LoadedFeeds
) -> tuple[list[FeedFreshness], list[SourceHealth]]:
    """:func:`feed_overview` in a session the caller holds (a web request's own)."""
    stored = await list_series(session)
    origins = await stored_sources(session)
    health = await read_health(session)
    return overview_of(stored, origins, health, feeds)


def overview_of(
    stored: Sequence[tuple[str, int, int, int]],
    origins: Mapping[str, Collection[str]],
    health: Sequence[FeedHealth],
    feeds: LoadedFeeds,
) -> tuple[list[FeedFreshness], list[SourceHealth]]:
    """The overview from what the store holds (pure): ``stored`` as :func:`list_series` gives it,
    ``origins`` as :func:`stored_sources`, ``health`` as :func:`read_health`."""
    rows: list[FeedFreshness] = []
    for name, feed in sorted(feeds.feeds.items()):
        mine = [s for s in stored if s[0].split(".", 1)[0] == name]
        rows.append(
            FeedFreshness(
                feed=name,
                sources=" > ".join(k.name for k in feed.kinds),
                members=", ".join(feed.members),
                series=len(mine),
                observations=sum(s[1] for s in mine),
                last_known_ns=max((s[3] for s in mine), default=None),
                max_age_s=feed.max_age_s,
                stored_from=", ".join(sorted({o for s in mine for o in origins.get(s[0], ())})),
            )
        )
    sources = [
        SourceHealth(
            h.source,
            h.state,
            h.last_success,
            h.last_error,
            h.last_error_at,
            h.down_since,
            h.calls,
            h.failures,
        )
        for h in health
    ]
    return rows, sources
