"""``GET /news/``: the newest stored news items, all or about one coin (any signed-in role).

The same items as the ``/news`` page and ``engine sentiment news`` (:mod:`engine.web.news_lines`).
Titles and sources are returned as stored (JSON strings: a client shows them as text); ``link`` is the
item's URL only when it is an http(s) URL (what a client may make a link of), else null."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from engine.web.api.deps import DB, Reader
from engine.web.api.validation import StrictJsonRoute
from engine.web.news_lines import NEWS_ROWS, load_news

__all__ = ["NewsItemOut", "router"]

router = APIRouter(prefix="/news", tags=["news"], route_class=StrictJsonRoute)

Coin = Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9]{0,15}$", description="e.g. btc, eth")]
Limit = Annotated[int, Query(ge=1, le=500)]


class NewsItemOut(BaseModel):
    id: int
    published: datetime  # UTC
    known: datetime  # when a running bot could know it (its available_at)
    source: str
    also_from: list[str]  # other outlets with the same story
    title: str
    link: str | None  # http(s) only
    coins: list[str]
    score: float  # the model's where it answered, else the local score; in [-1, 1]
    scored_by: str  # local | model
    local_score: float
    model_score: float | None
    model_status: str  # not_called | ok | budget | timeout | invalid | ...
    events: list[str]


@router.get("/", response_model=list[NewsItemOut])
async def news(_: Reader, db: DB, coin: Coin = None, limit: Limit = NEWS_ROWS) -> list[NewsItemOut]:
    """The newest ``limit`` items, newest first; with ``coin``, only items tagged with it."""
    lines = await load_news(db, coin, limit)
    return [NewsItemOut.model_validate(line, from_attributes=True) for line in lines]
