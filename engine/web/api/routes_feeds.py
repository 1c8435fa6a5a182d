"""``GET /feeds/status``: each feed's freshness and each source's health (any signed-in role).

The same figures as ``engine feeds status`` and the ``/feeds`` page (:mod:`engine.web.feed_lines`),
read from the store; no key is read, and stored errors are masked again before they are sent."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from engine.web.api.deps import DB, Ctx, Reader
from engine.web.api.validation import StrictJsonRoute
from engine.web.feed_lines import load_feed_status

__all__ = ["FeedOut", "FeedStatusOut", "SourceOut", "router"]

router = APIRouter(prefix="/feeds", tags=["feeds"], route_class=StrictJsonRoute)


class FeedOut(BaseModel):
    name: str
    sources: list[str]  # fallback order
    members: list[str]
    state: str  # fresh | stale | empty
    last_known: datetime | None  # newest available_at, UTC
    age_s: float | None
    max_age_s: float
    observations: int
    series: int
    stored_from: list[str]
    generated: bool  # some stored values are generated demo data, not market data


class SourceOut(BaseModel):
    name: str
    state: str  # ok | degraded | down | not called
    last_success: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    down_since: datetime | None
    calls: int
    failures: int
    calls_per_minute: float | None  # the limit its client keeps to


class FeedStatusOut(BaseModel):
    now: datetime
    config: str | None  # the feeds.yaml read; None: built-in feeds only
    problems: list[str]  # its errors (then only the built-in feeds are listed)
    feeds: list[FeedOut]
    sources: list[SourceOut]


@router.get("/status", response_model=FeedStatusOut)
async def feeds_status(_: Reader, ctx: Ctx, db: DB) -> FeedStatusOut:
    """Freshness per feed (fresh, stale past its ``max_age``, empty) and health per source (ok,
    degraded, down; last success, last error, calls and failures, the calls-per-minute limit)."""
    status = await load_feed_status(db, ctx.bots_dir, ctx.box)
    return FeedStatusOut(
        now=status.now,
        config=status.config,
        problems=list(status.problems),
        feeds=[FeedOut.model_validate(f, from_attributes=True) for f in status.feeds],
        sources=[SourceOut.model_validate(s, from_attributes=True) for s in status.sources],
    )
