"""News items in the SQL store: insert once across sources, merge the same story, model results."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from engine.feeds.observations import Observation, check_observation
from engine.sentiment.dedup import canonical_url, same_story, title_key, title_words
from engine.sentiment.items import NewsItem
from engine.sentiment.scorer import LocalScore
from engine.store._sql import upsert_insert
from engine.store.models import FeedObservation
from engine.store.models import NewsItem as NewsRow

__all__ = [
    "SavePlan",
    "SaveResult",
    "ScoredItem",
    "Story",
    "StoryIndex",
    "content_hash",
    "cover_batch",
    "plan_items",
    "recent_items",
    "save_items",
    "set_model_result",
    "write_new_observations",
    "write_plan",
]

# Rows per INSERT statement; the loop is yielded between statements.
WRITE_CHUNK = 32
# Rows read per page when recent_items looks for the items about one coin.
RECENT_PAGE = 500
# Reposts of one story arrive within this of each other; older items are not compared by title.
STORY_WINDOW_NS = 48 * 3600 * 1_000_000_000


def content_hash(title: str, summary: str) -> str:
    """The model cache key: the text the model would read (same text, same answer)."""
    return hashlib.sha256(f"{title}\n{summary}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ScoredItem:
    item: NewsItem
    coins: tuple[str, ...]
    local: LocalScore
    fetched_at: int
    available_at: int
    events: tuple[str, ...] = ()


@dataclass(slots=True)
class SaveResult:
    added: list[NewsRow] = field(default_factory=list)
    same_url: int = 0  # the same link again (a refetch, or another aggregator's copy)
    same_story: int = 0  # another outlet's near-identical title, merged into the first item


@dataclass(slots=True)
class Story:
    """What dedup needs of a stored item, kept in memory so a fetch never reloads whole rows."""

    id: int
    url_key: str
    published_at: int
    words: frozenset[str]
    source: str
    also_from: list[str]
    coins: list[str]


class StoryIndex:
    """The stored stories of a time range, loaded once (light columns) and extended as items are
    added. One per ingesting process; the unique URL key in the table still guards against others."""

    def __init__(self) -> None:
        self.by_url: dict[str, Story] = {}
        self.by_id: dict[int, Story] = {}
        self.by_word: dict[str, set[int]] = {}  # word -> stories whose title has it
        self.low: int | None = None
        self.high: int | None = None

    def _add(self, story: Story) -> None:
        self.by_url[story.url_key] = story
        self.by_id[story.id] = story
        for word in story.words:
            self.by_word.setdefault(word, set()).add(story.id)

    def _renumber(self, old: int, new: int) -> None:
        story = self.by_id.pop(old)
        story.id = new
        self.by_id[new] = story
        for word in story.words:
            ids = self.by_word[word]
            ids.discard(old)
            ids.add(new)

    async def _load(self, session: AsyncSession, condition: Any) -> None:
        rows = await session.execute(
            select(
                NewsRow.id,
                NewsRow.url_key,
                NewsRow.published_at,
                NewsRow.title,
                NewsRow.source,
                NewsRow.also_from,
                NewsRow.coins,
            ).where(condition)
        )
        for id_, url_key, published, title, source, also_from, coins in rows:
            if id_ not in self.by_id:
                self._add(
                    Story(id_, url_key, published, title_words(title), source, list(also_from), list(coins))
                )

    async def cover(self, session: AsyncSession, low: int, high: int, urls: set[str]) -> None:
        if self.low is None or self.high is None:
            await self._load(session, (NewsRow.published_at >= low) & (NewsRow.published_at <= high))
            self.low, self.high = low, high
        else:
            if low < self.low:
                await self._load(session, (NewsRow.published_at >= low) & (NewsRow.published_at < self.low))
                self.low = low
            if high > self.high:
                await self._load(session, (NewsRow.published_at > self.high) & (NewsRow.published_at <= high))
                self.high = high
        missing = urls - self.by_url.keys()
        if missing:  # old items (outside the range) or another process's
            await self._load(session, NewsRow.url_key.in_(missing))

    def twin(self, words: frozenset[str], published: int) -> Story | None:
        # Near-identical titles share most words, so they share a word few titles have: look only at
        # stories sharing one of this title's five rarest stored words (not a scan of every story). At a
        # Jaccard of 0.75 a title of up to 12 words has at most 3 words its twin lacks, so 5 suffice.
        rare = sorted((len(self.by_word[w]), w) for w in words if w in self.by_word)[:5]
        candidates = set().union(*(self.by_word.get(w, set()) for _, w in rare)) if rare else set()
        for story_id in sorted(candidates):
            story = self.by_id[story_id]
            if abs(story.published_at - published) <= STORY_WINDOW_NS and same_story(story.words, words):
                return story
        return None


@dataclass(slots=True)
class SavePlan:
    """What a batch changes in the store, found by reading only: the rows to insert (under provisional
    negative ids in the index) and the stored rows that gain an outlet or a coin. Empty: nothing to write."""

    result: SaveResult = field(default_factory=SaveResult)
    inserts: dict[int, dict[str, Any]] = field(default_factory=dict)  # provisional id -> row values
    updates: dict[int, Story] = field(default_factory=dict)  # stored id -> its story (new also_from/coins)

    def __bool__(self) -> bool:
        return bool(self.inserts or self.updates)


def _row_values(entry: ScoredItem, url_key: str) -> dict[str, Any]:
    item = entry.item
    return {
        "url_key": url_key,
        "title_key": title_key(item.title),
        "content_hash": content_hash(item.title, item.summary),
        "source": item.source,
        "source_kind": item.source_kind,
        "external_id": item.external_id,
        "url": item.url,
        "title": item.title,
        "summary": item.summary,
        "lang": item.lang,
        "published_at": item.published_at,
        "fetched_at": entry.fetched_at,
        "available_at": entry.available_at,
        "coins": list(entry.coins),
        "also_from": [],
        "local_score": entry.local.score,
        "local_why": entry.local.why(),
        "model_status": "not_called",
        "events": list(entry.events),
    }


def plan_items(scored: Sequence[ScoredItem], index: StoryIndex) -> SavePlan:
    """Match a batch against the index (which must cover it: :meth:`StoryIndex.cover`): an item whose
    canonical URL is stored, or whose title is near-identical to an item published within 48 h, merges
    into that story (its outlet added to ``also_from``); the others become rows to insert. Pure CPU, no
    database: callers run it in a worker thread. New rows enter the index under provisional negative ids,
    so a later item of the same batch merges into them; the index must be dropped if the plan is not
    written."""
    plan = SavePlan()
    for entry in scored:
        time.sleep(0)  # in a worker thread: the GIL goes to a waiting event loop now, not in 5 ms
        item = entry.item
        url_key = canonical_url(item.url)
        words = title_words(item.title)
        known = index.by_url.get(url_key)
        twin = known if known is not None else index.twin(words, item.published_at)
        if twin is not None:
            if known is not None:
                plan.result.same_url += 1
            else:
                plan.result.same_story += 1
            if _merge(twin, item.source, entry.coins):
                pending = plan.inserts.get(twin.id)
                if pending is not None:  # not inserted yet: it will be inserted with these values
                    pending["also_from"], pending["coins"] = list(twin.also_from), list(twin.coins)
                else:
                    plan.updates[twin.id] = twin
            continue
        provisional = -(len(plan.inserts) + 1)
        plan.inserts[provisional] = _row_values(entry, url_key)
        index._add(Story(provisional, url_key, item.published_at, words, item.source, [], list(entry.coins)))
    return plan


async def cover_batch(session: AsyncSession, scored: Sequence[ScoredItem], index: StoryIndex) -> None:
    """Load into ``index`` (reads only) the stored stories a batch may repeat."""
    if scored:
        await index.cover(
            session,
            min(s.item.published_at for s in scored) - STORY_WINDOW_NS,
            max(s.item.published_at for s in scored) + STORY_WINDOW_NS,
            {canonical_url(s.item.url) for s in scored},
        )


async def write_plan(session: AsyncSession, plan: SavePlan, index: StoryIndex) -> SaveResult:
    """Write a plan inside the caller's transaction; the new rows are returned as detached copies."""
    result = plan.result
    for story_id, story in plan.updates.items():
        await session.execute(
            update(NewsRow).where(NewsRow.id == story_id).values(also_from=story.also_from, coins=story.coins)
        )
    if not plan.inserts:
        return result
    # An executemany of one cached statement (compiling a many-row VALUES statement costs ~15 ms of the
    # event loop per call), then the ids by URL key. A URL another process stored since the plan was
    # read is skipped (ON CONFLICT DO NOTHING): its row has another fetch time or source, so it is not
    # counted as added; the index learns its id all the same.
    values = list(plan.inserts.values())
    statement = upsert_insert(session, NewsRow.__table__).on_conflict_do_nothing(index_elements=["url_key"])
    for start in range(0, len(values), WRITE_CHUNK):
        await session.execute(statement, values[start : start + WRITE_CHUNK])
        await asyncio.sleep(0)  # let the bots' coroutines run between statements
    stored = await session.execute(
        select(NewsRow.url_key, NewsRow.id, NewsRow.fetched_at, NewsRow.source).where(
            NewsRow.url_key.in_([v["url_key"] for v in values])
        )
    )
    found = {key: (int(id_), fetched, source) for key, id_, fetched, source in stored.all()}
    for provisional, value in plan.inserts.items():
        row = found.get(value["url_key"])
        if row is None:
            continue
        index._renumber(provisional, row[0])
        if (row[1], row[2]) == (value["fetched_at"], value["source"]):
            result.added.append(NewsRow(id=row[0], **value))
        else:
            result.same_url += 1
    return result


async def write_new_observations(session: AsyncSession, observations: Sequence[Observation]) -> int:
    """The observations of newly inserted items (nothing stored can revise them, so no reads), as an
    executemany of one cached statement; a malformed one is skipped. Returns the rows written."""
    fetched = time.time_ns()
    rows = [
        {
            "series": o.series,
            "event_time": o.event_time,
            "available_at": o.available_at,
            "value": float(o.value),
            "source": o.source,
            "fetched_at": fetched,
        }
        for o in observations
        if check_observation(o) is None
    ]
    if not rows:
        return 0
    statement = upsert_insert(session, FeedObservation.__table__).on_conflict_do_nothing()
    result = await session.execute(statement, rows)
    count = getattr(result, "rowcount", -1)
    # A driver that cannot count an executemany says -1: then the rows sent (conflicts are rare here).
    return int(count) if isinstance(count, int) and count >= 0 else len(rows)


async def save_items(
    session: AsyncSession, scored: Sequence[ScoredItem], index: StoryIndex | None = None
) -> SaveResult:
    """Read, plan and write a batch in the caller's transaction (:func:`plan_items`). ``index``: the
    caller's StoryIndex (kept across calls); a fresh one is loaded otherwise. When the transaction
    fails, the caller must drop the index (it may hold uncommitted rows). The live pipeline instead reads
    and plans outside any write transaction and writes only a non-empty plan."""
    index = index if index is not None else StoryIndex()
    await cover_batch(session, scored, index)
    return await write_plan(session, plan_items(scored, index), index)


def _merge(story: Story, source: str, coins: Sequence[str]) -> bool:
    """Add an outlet and coins to a story (in memory); whether anything changed (a refetch of a known
    item changes nothing and costs no write)."""
    changed = False
    if source != story.source and source not in story.also_from:
        story.also_from = [*story.also_from, source]
        changed = True
    if set(coins) - set(story.coins):
        story.coins = sorted(set(story.coins) | set(coins))
        changed = True
    return changed


async def set_model_result(
    session: AsyncSession,
    item_id: int,
    *,
    status: str,
    why: str,
    score: float | None = None,
    confidence: float | None = None,
    at: int | None = None,
    events: Sequence[str] | None = None,
) -> None:
    values: dict[str, object] = {"model_status": status, "model_why": why[:1000]}
    if score is not None:
        values.update(model_score=score, model_confidence=confidence, model_at=at)
    if events is not None:
        values["events"] = list(events)
    await session.execute(update(NewsRow).where(NewsRow.id == item_id).values(**values))


async def recent_items(
    session: AsyncSession, *, coin: str | None = None, since_ns: int | None = None, limit: int | None = 100
) -> list[NewsRow]:
    """Newest first. ``coin`` filters in Python (JSON containment differs between back ends), reading
    pages of rows newest first until ``limit`` items about the coin are found (a page that refreshes
    every few seconds never loads the whole table for a rare coin's last items)."""
    query = select(NewsRow).order_by(NewsRow.published_at.desc(), NewsRow.id.desc())
    if since_ns is not None:
        query = query.where(NewsRow.published_at >= since_ns)
    if limit is None:
        rows = list((await session.execute(query)).scalars())
        return [r for r in rows if coin is None or coin.lower() in r.coins]
    if coin is None:
        return list((await session.execute(query.limit(limit))).scalars())
    wanted, offset = coin.lower(), 0
    found: list[NewsRow] = []
    page = max(4 * limit, RECENT_PAGE)
    while len(found) < limit:
        rows = list((await session.execute(query.offset(offset).limit(page))).scalars())
        found.extend(r for r in rows if wanted in r.coins)
        if len(rows) < page:
            break
        offset += page
    return found[:limit]
