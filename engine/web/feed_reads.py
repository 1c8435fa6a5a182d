"""What the store holds per feed series, read incrementally for the web app.

``engine feeds status`` aggregates the whole ``feed_observations`` table (a count, the first event
time and the newest ``available_at`` per series, and the sources each came from): about a second for
a million rows on SQLite (``bench/web_feeds.py``). The feeds page re-reads every few seconds per
open browser, so the web process keeps those aggregates per database and only adds the rows stored
since (rows are only ever added: the store is insert-only). Where ids may commit out of order
(PostgreSQL sequences under concurrent writers) a row could be skipped, so the whole table is read
again every :data:`RESYNC_S` seconds anyway.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.store.models import FeedObservation

__all__ = ["RESYNC_S", "StoredSeries", "stored_series"]

RESYNC_S = 300.0

StoredSeries = tuple[list[tuple[str, int, int, int]], dict[str, set[str]]]


@dataclass(frozen=True, slots=True)
class _Snapshot:
    last_id: int
    read_at: float  # monotonic
    series: dict[str, tuple[int, int, int]]  # series -> (observations, first event_time, last available_at)
    origins: dict[str, frozenset[str]]


# Per database (its AsyncEngine): a test's or a restarted app's new engine starts afresh.
_SNAPSHOTS: WeakKeyDictionary[object, _Snapshot] = WeakKeyDictionary()


async def _aggregate(db: AsyncSession, where: ColumnElement[bool]) -> _Snapshot:
    obs = FeedObservation
    rows = await db.execute(
        select(obs.series, func.count(), func.min(obs.event_time), func.max(obs.available_at))
        .where(where)
        .group_by(obs.series)
    )
    series = {s: (int(n), int(first), int(last)) for s, n, first, last in rows.all()}
    origins: dict[str, set[str]] = {}
    for s, source in (await db.execute(select(obs.series, obs.source).where(where).distinct())).all():
        origins.setdefault(s, set()).add(source)
    return _Snapshot(0, 0.0, series, {s: frozenset(o) for s, o in origins.items()})


def _merged(old: _Snapshot, new: _Snapshot, last_id: int) -> _Snapshot:
    series = dict(old.series)
    for name, (n, first, last) in new.series.items():
        if name in series:
            n0, first0, last0 = series[name]
            series[name] = (n0 + n, min(first0, first), max(last0, last))
        else:
            series[name] = (n, first, last)
    origins = dict(old.origins)
    for name, sources in new.origins.items():
        origins[name] = origins.get(name, frozenset()) | sources
    return _Snapshot(last_id, old.read_at, series, origins)


async def stored_series(db: AsyncSession, *, now: float | None = None) -> StoredSeries:
    """``(list_series, stored_sources)`` as :mod:`engine.feeds.store` answers them, from the kept
    aggregates plus the rows added since (the newest id is a primary-key lookup)."""
    now = time.monotonic() if now is None else now
    key = db.bind
    top = int(await db.scalar(select(func.max(FeedObservation.id))) or 0)
    old = _SNAPSHOTS.get(key) if key is not None else None
    if old is None or now - old.read_at > RESYNC_S or top < old.last_id:
        fresh = await _aggregate(db, FeedObservation.id <= top)
        snap = _Snapshot(top, now, fresh.series, fresh.origins)
    elif top > old.last_id:
        added = await _aggregate(db, (FeedObservation.id > old.last_id) & (FeedObservation.id <= top))
        snap = _merged(old, added, top)
    else:
        snap = old
    if key is not None:
        _SNAPSHOTS[key] = snap
    stored = [(name, n, first, last) for name, (n, first, last) in sorted(snap.series.items())]
    return stored, {name: set(sources) for name, sources in snap.origins.items()}
