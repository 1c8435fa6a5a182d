"""News items in the SQL store: insert once across sources, merge the same story, model results."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from engine.sentiment.dedup import canonical_url, same_story, title_key, title_words
from engine.sentiment.items import NewsItem
from engine.sentiment.scorer import LocalScore
from engine.store.models import NewsItem as NewsRow

__all__ = ["SaveResult", "ScoredItem", "content_hash", "recent_items", "save_items", "set_model_result"]

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


async def save_items(session: AsyncSession, scored: Sequence[ScoredItem]) -> SaveResult:
    """Insert new items; an item whose canonical URL is stored, or whose title is near-identical to an
    item published within 48 h, is merged into that row (its outlet added to ``also_from``)."""
    result = SaveResult()
    if not scored:
        return result
    low = min(s.item.published_at for s in scored) - STORY_WINDOW_NS
    high = max(s.item.published_at for s in scored) + STORY_WINDOW_NS
    urls = {canonical_url(s.item.url) for s in scored}
    rows = (
        (
            await session.execute(
                select(NewsRow).where(
                    (NewsRow.url_key.in_(urls))
                    | ((NewsRow.published_at >= low) & (NewsRow.published_at <= high))
                )
            )
        )
        .scalars()
        .all()
    )
    by_url = {row.url_key: row for row in rows}
    recent = [(row, title_words(row.title)) for row in rows]
    for entry in scored:
        item = entry.item
        url_key = canonical_url(item.url)
        row = by_url.get(url_key)
        if row is not None:
            result.same_url += 1
            _merge(row, item.source, entry.coins)
            continue
        words = title_words(item.title)
        twin = next(
            (
                r
                for r, w in recent
                if abs(r.published_at - item.published_at) <= STORY_WINDOW_NS and same_story(w, words)
            ),
            None,
        )
        if twin is not None:
            result.same_story += 1
            _merge(twin, item.source, entry.coins)
            continue
        row = NewsRow(
            url_key=url_key,
            title_key=title_key(item.title),
            content_hash=content_hash(item.title, item.summary),
            source=item.source,
            source_kind=item.source_kind,
            external_id=item.external_id,
            url=item.url,
            title=item.title,
            summary=item.summary,
            lang=item.lang,
            published_at=item.published_at,
            fetched_at=entry.fetched_at,
            available_at=entry.available_at,
            coins=list(entry.coins),
            also_from=[],
            local_score=entry.local.score,
            local_why=entry.local.why(),
            model_status="not_called",
            events=list(entry.events),
        )
        session.add(row)
        by_url[url_key] = row
        recent.append((row, words))
        result.added.append(row)
    await session.flush()
    return result


def _merge(row: NewsRow, source: str, coins: Sequence[str]) -> None:
    if source != row.source and source not in row.also_from:
        row.also_from = [*row.also_from, source]
    if set(coins) - set(row.coins):
        row.coins = sorted(set(row.coins) | set(coins))


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
    """Newest first. ``coin`` filters in Python (JSON containment differs between back ends)."""
    query = select(NewsRow).order_by(NewsRow.published_at.desc())
    if since_ns is not None:
        query = query.where(NewsRow.published_at >= since_ns)
    rows = list((await session.execute(query)).scalars())
    if coin is not None:
        rows = [r for r in rows if coin.lower() in r.coins]
    return rows[:limit] if limit is not None else rows
